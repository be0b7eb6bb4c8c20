/**
 * Bytes and byte strings: what each runtime calls them, and how text becomes bytes.
 *
 * `Bytes` is a fixed-size, preallocated, mutable buffer of byte values 0..255, indexed from 0.
 * It is a `Uint8Array` on Node and Espruino and a Lua table of numbers on NodeMCU (Lua has no
 * typed arrays). It is typed as `number[]` so that typescript-to-lua shifts indexes to Lua's
 * 1-based tables; shared code must use only indexing on it (never `push`, `length`, `slice`,
 * or any other array method): sizes travel beside the buffer.
 *
 * `Chunk` is what the decoder reads (a socket's delivery) and `Wire` is what a socket takes:
 * - Node: `Uint8Array` (a `Buffer`) both ways.
 * - Espruino: `net` delivers 8-bit strings, which the socket adapter turns into a Uint8Array once
 *   (`E.toUint8Array`: indexing an Espruino string walks it from its start); writes are strings
 *   (`write` of a `Uint8Array` would send the text "67,68").
 * - NodeMCU: a Lua string (binary safe) both ways.
 *
 * Text (topic names, client ids, user names) is the runtime's own string type:
 * - Node: UTF-16 JavaScript strings, encoded to UTF-8 here.
 * - Espruino and Lua: strings are already bytes (a non-ASCII character is its UTF-8 bytes),
 *   so they are copied byte for byte and never encoded a second time.
 * So `textLength("°C")` is 3 on every runtime, and writing then reading text gives back the
 * same string on every runtime.
 *
 * Every function here is total on its documented inputs: it never throws. Ranges are the
 * caller's job (check capacity with `textLength` before `writeText`).
 */
export type Bytes = number[];

/** An inbound socket chunk (see above). Opaque to shared code. */
export interface Chunk { readonly __chunk?: never }
/** An outbound socket write (see above). Opaque to shared code. */
export interface Wire { readonly __wire?: never }

export interface BytesPort {
  /** A new zero-filled buffer of `n` bytes. Allocates: call at start-up, not per packet. */
  alloc(this: void, n: number): Bytes;
  /** Size in bytes of a buffer made by `alloc` (or a Uint8Array / byte table given by a user). */
  size(this: void, b: Bytes): number;
  /** Copies src[start..end) into dst at dstOff (regions may not overlap). Never allocates. */
  copy(this: void, dst: Bytes, dstOff: number, src: Bytes, start: number, end: number): void;
  /**
   * The UTF-8 byte length of a text string, or -1 when it has no UTF-8 form (a lone UTF-16
   * surrogate on Node; on Espruino and Lua strings are bytes, checked after writing).
   */
  textLength(this: void, s: string): number;
  /** Writes the UTF-8 bytes of `s` at `off`; returns the offset after them. */
  writeText(this: void, buf: Bytes, off: number, s: string): number;
  /** The text whose UTF-8 bytes are buf[start..end). Allocates the string. */
  readText(this: void, buf: Bytes, start: number, end: number): string;
  /** Number of bytes in an inbound chunk. */
  chunkLength(this: void, c: Chunk): number;
  /** Byte `i` (0-based) of an inbound chunk. */
  chunkByte(this: void, c: Chunk, i: number): number;
  /**
   * The chunk itself as Bytes when the runtime can index it as a buffer without copying (Node),
   * else undefined (Espruino and Lua chunks are strings: they are copied into a buffer).
   */
  chunkAsBytes(this: void, c: Chunk): Bytes | undefined;
  /** Copies chunk bytes [from, to) into dst at dstOff. */
  copyChunk(this: void, dst: Bytes, dstOff: number, c: Chunk, from: number, to: number): void;
  /** buf[start..end) as a socket write. Allocates (the runtime's socket needs its own copy). */
  toWire(this: void, buf: Bytes, start: number, end: number): Wire;
  /** A chunk made from a socket write (for loopback tests and stand-ins). */
  wireAsChunk(this: void, w: Wire): Chunk;
}
