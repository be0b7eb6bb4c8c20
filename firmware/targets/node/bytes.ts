import type { Bytes, BytesPort, Chunk, Wire } from "../../port/bytes";

/**
 * BytesPort for Node: buffers are Uint8Arrays, text is UTF-16 and is encoded to UTF-8 here
 * (by Buffer's native codec), chunks and writes are Buffers.
 */
const u8 = (b: Bytes): Uint8Array => b as unknown as Uint8Array;
/** Buffers made by `alloc` are Node Buffers already: no view object per call on the hot path. */
const view = (b: Bytes): Buffer => {
  const a = u8(b);
  return Buffer.isBuffer(a) ? a : Buffer.from(a.buffer, a.byteOffset, a.byteLength);
};

export const nodeBytes: BytesPort = {
  alloc: (n) => Buffer.alloc(n) as unknown as Bytes,
  size: (b) => u8(b).length,
  copy: (dst, dstOff, src, start, end) => {
    const s = u8(src);
    // A whole array copies natively with no allocation; a part would need a subarray view
    // (an allocation per call), so parts are copied by a loop.
    if (start === 0 && end === s.length) u8(dst).set(s, dstOff);
    else for (let i = start; i < end; i++) dst[dstOff + i - start] = src[i];
  },
  textLength: (s) => (s.isWellFormed() ? Buffer.byteLength(s, "utf8") : -1),
  writeText: (buf, off, s) => off + view(buf).write(s, off, "utf8"),
  readText: (buf, start, end) => view(buf).toString("utf8", start, end),
  chunkLength: (c) => (c as unknown as Uint8Array).length,
  chunkByte: (c, i) => (c as unknown as Uint8Array)[i],
  chunkAsBytes: (c) => c as unknown as Bytes,
  copyChunk: (dst, dstOff, c, from, to) => {
    const a = c as unknown as Uint8Array;
    for (let i = from; i < to; i++) dst[dstOff + i - from] = a[i];
  },
  toWire: (buf, start, end) => Buffer.from(u8(buf).subarray(start, end)) as unknown as Wire,
  wireAsChunk: (w) => w as unknown as Chunk,
};
