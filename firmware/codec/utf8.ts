import type { Bytes } from "../port/bytes";
import { CodecError } from "./constants";

/**
 * Checks buf[start..end) as an MQTT UTF-8 string (§1.5.3): well-formed UTF-8 (no overlong forms,
 * no surrogates, nothing above U+10FFFF) and no U+0000. Returns 0 or a CodecError.
 * Comparisons only: no bit operations, so it costs the same on every target.
 */
export function checkUtf8(buf: Bytes, start: number, end: number): number {
  let i = start;
  while (i < end) {
    const b = buf[i];
    if (b < 0x80) {
      if (b === 0) return CodecError.NullCharacter;
      i = i + 1;
      continue;
    }
    let need = 0;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b === 0xe0) { need = 2; lo = 0xa0; }
    else if ((b >= 0xe1 && b <= 0xec) || b === 0xee || b === 0xef) need = 2;
    else if (b === 0xed) { need = 2; hi = 0x9f; }
    else if (b === 0xf0) { need = 3; lo = 0x90; }
    else if (b >= 0xf1 && b <= 0xf3) need = 3;
    else if (b === 0xf4) { need = 3; hi = 0x8f; }
    else return CodecError.InvalidUtf8;
    // The continuation bytes buf[i+1..i+need] must lie inside the string.
    if (i + need >= end) return CodecError.InvalidUtf8;
    const c1 = buf[i + 1];
    if (c1 < lo || c1 > hi) return CodecError.InvalidUtf8;
    for (let k = 2; k <= need; k++) {
      const c = buf[i + k];
      if (c < 0x80 || c > 0xbf) return CodecError.InvalidUtf8;
    }
    i = i + need + 1;
  }
  return 0;
}
