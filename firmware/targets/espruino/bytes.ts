import type { Bytes, BytesPort, Chunk, Wire } from "../../port/bytes";

declare const E: { toString(a: Uint8Array): string };

/**
 * BytesPort for Espruino: buffers are Uint8Arrays; strings are 8-bit, so text is already
 * UTF-8 bytes and is copied as is; `net` delivers strings and must be given strings
 * (`write(Uint8Array)` would send the text "67,68"), hence `E.toString` for writes.
 */
const u8 = (b: Bytes): Uint8Array => b as unknown as Uint8Array;
const str = (c: Chunk): string => c as unknown as string;

export const espruinoBytes: BytesPort = {
  alloc: (n) => new Uint8Array(n) as unknown as Bytes,
  size: (b) => u8(b).length,
  copy: (dst, dstOff, src, start, end) => {
    for (let i = start; i < end; i++) dst[dstOff + i - start] = src[i];
  },
  textLength: (s) => s.length,
  writeText: (buf, off, s) => {
    const n = s.length;
    for (let i = 0; i < n; i++) buf[off + i] = s.charCodeAt(i);
    return off + n;
  },
  readText: (buf, start, end) => E.toString(u8(buf).subarray(start, end)),
  chunkLength: (c) => str(c).length,
  chunkByte: (c, i) => str(c).charCodeAt(i),
  chunkAsBytes: () => undefined,
  copyChunk: (dst, dstOff, c, from, to) => {
    const s = str(c);
    for (let i = from; i < to; i++) dst[dstOff + i - from] = s.charCodeAt(i);
  },
  toWire: (buf, start, end) => E.toString(u8(buf).subarray(start, end)) as unknown as Wire,
  wireAsChunk: (w) => w as unknown as Chunk,
};
