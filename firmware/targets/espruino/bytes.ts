import type { Bytes, BytesPort, Chunk, Wire } from "../../port/bytes";

declare const E: { toString(a: Uint8Array): string; toUint8Array(s: string): Uint8Array };

/**
 * BytesPort for Espruino: buffers are Uint8Arrays; strings are 8-bit, so text is already UTF-8
 * bytes and is copied as is.
 *
 * Espruino strings are chains of blocks: `charCodeAt(i)` walks from the start, so a loop over a
 * string is quadratic, and interpreted loops are slow anyway. Native calls are used instead
 * (measured on the 8-bit 2v29 build: a 16 KB string copies in 1.8 ms with `E.toUint8Array` and
 * `set`, 470 ms by `charCodeAt`; a 27-byte topic 18 µs against 404 µs). So:
 * - a chunk is a Uint8Array: the socket adapter converts each `net` 'data' string once with
 *   `E.toUint8Array` (one transient copy of at most 536 bytes), and the decoder indexes it;
 * - a write is a string (`E.toString`): `write(Uint8Array)` would send the text "67,68".
 */
const u8 = (b: Bytes): Uint8Array => b as unknown as Uint8Array;
const arr = (c: Chunk): Uint8Array => c as unknown as Uint8Array;
const EMPTY = new Uint8Array(0);

/** a[start..end) without copying. Espruino reads `new Uint8Array(buffer, offset, 0)` as "to the end". */
function view(a: Uint8Array, start: number, end: number): Uint8Array {
  return end > start ? new Uint8Array(a.buffer, a.byteOffset + start, end - start) : EMPTY;
}

export const espruinoBytes: BytesPort = {
  alloc: (n) => new Uint8Array(n) as unknown as Bytes,
  size: (b) => u8(b).length,
  copy: (dst, dstOff, src, start, end) => {
    const s = u8(src);
    u8(dst).set(start === 0 && end === s.length ? s : view(s, start, end), dstOff);
  },
  textLength: (s) => s.length,
  writeText: (buf, off, s) => {
    if (s.length > 0) u8(buf).set(E.toUint8Array(s), off);
    return off + s.length;
  },
  readText: (buf, start, end) => (end > start ? E.toString(view(u8(buf), start, end)) : ""),
  chunkLength: (c) => arr(c).length,
  chunkByte: (c, i) => arr(c)[i],
  chunkAsBytes: (c) => c as unknown as Bytes,
  copyChunk: (dst, dstOff, c, from, to) => {
    u8(dst).set(view(arr(c), from, to), dstOff);
  },
  toWire: (buf, start, end) => (end > start ? E.toString(view(u8(buf), start, end)) : "") as unknown as Wire,
  wireAsChunk: (w) => E.toUint8Array(w as unknown as string) as unknown as Chunk,
};
