import type { Bytes, BytesPort, Chunk, Wire } from "../../port/bytes";

/**
 * BytesPort for Node: buffers are Uint8Arrays, text is UTF-16 and is encoded to UTF-8 here
 * (by Buffer's native codec), chunks and writes are Buffers.
 */
const u8 = (b: Bytes): Uint8Array => b as unknown as Uint8Array;
const view = (b: Bytes): Buffer => {
  const a = u8(b);
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
};

export const nodeBytes: BytesPort = {
  alloc: (n) => new Uint8Array(n) as unknown as Bytes,
  textLength: (s) => Buffer.byteLength(s, "utf8"),
  writeText: (buf, off, s) => off + view(buf).write(s, off, "utf8"),
  readText: (buf, start, end) => view(buf).toString("utf8", start, end),
  chunkLength: (c) => (c as unknown as Uint8Array).length,
  chunkByte: (c, i) => (c as unknown as Uint8Array)[i],
  copyChunk: (dst, dstOff, c, from, to) => {
    u8(dst).set((c as unknown as Uint8Array).subarray(from, to), dstOff);
  },
  toWire: (buf, start, end) => Buffer.from(u8(buf).subarray(start, end)) as unknown as Wire,
  wireAsChunk: (w) => w as unknown as Chunk,
};
