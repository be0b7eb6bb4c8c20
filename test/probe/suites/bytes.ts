import { port } from "../../../firmware/port/port";
import { argBytes, argChunk, argInt, argSize, argText, outBytes, outChunk, outInt, register } from "../probe";

// The byte-string contract on every runtime. Text arrives as the runtime's own string type.

/** UTF-8 length of a text. */
register("bytes.textLength", (a) => outInt(port.bytes.textLength(argText(a[0]))));

/** Text written at an offset into a buffer: the bytes, and the returned offset. */
register("bytes.writeText", (a) => {
  const s = argText(a[0]);
  const off = argInt(a[1]);
  const buf = port.bytes.alloc(off + port.bytes.textLength(s) + 1);
  const end = port.bytes.writeText(buf, off, s);
  return outInt(end) + " " + outBytes(buf, off, end);
});

/** Bytes → text → bytes: the text survives unchanged (nothing is encoded twice). */
register("bytes.roundTrip", (a) => {
  const src = argBytes(a[0]);
  const s = port.bytes.readText(src, 0, argSize(a[0]));
  const buf = port.bytes.alloc(port.bytes.textLength(s) + 1);
  const end = port.bytes.writeText(buf, 0, s);
  return outInt(end) + " " + outBytes(buf, 0, end) + " " + (s === argText(a[0]) ? "same" : "different");
});

/** A chunk's length, its byte at an index, and a copied range [from, to). */
register("bytes.chunk", (a) => {
  const c = argChunk(a[0]);
  const at = argInt(a[1]);
  const from = argInt(a[2]);
  const to = argInt(a[3]);
  const dst = port.bytes.alloc(to - from + 2);
  dst[0] = 170;
  port.bytes.copyChunk(dst, 1, c, from, to);
  return outInt(port.bytes.chunkLength(c)) + " " + outInt(port.bytes.chunkByte(c, at)) + " " +
    outBytes(dst, 0, to - from + 1);
});

/** A range of a buffer as a socket write, read back as a chunk. */
register("bytes.toWire", (a) => {
  const buf = argBytes(a[0]);
  return outChunk(port.bytes.wireAsChunk(port.bytes.toWire(buf, argInt(a[1]), argInt(a[2]))));
});

/** A fresh buffer is zero-filled. */
register("bytes.alloc", (a) => {
  const n = argInt(a[0]);
  const buf = port.bytes.alloc(n);
  return outBytes(buf, 0, n);
});
