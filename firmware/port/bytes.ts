/**
 * Bytes, packets and text: what each runtime calls them.
 *
 * `Bytes`: bytes to read, with `b[i]` and `b.length`, never written by shared code.
 * - Node: a Buffer (or any Uint8Array). Espruino: a Uint8Array (the socket adapter turns each
 *   `net` data string into one with `E.toUint8Array`: indexing an Espruino string walks its blocks).
 * - NodeMCU: a Lua string. The Lua build reads `b[i]` with `string.byte` (tools/tstl-bytes.cjs
 *   rewrites every index of a `Bytes` value), and `b.length` is `#b`, the byte length. So a
 *   packet costs one byte of heap per byte, not a table slot (16 bytes) per byte.
 *
 * `Wire`: what a socket sends and a flash record holds. Node: a Buffer. Espruino and NodeMCU: an
 * 8-bit string (Espruino's `socket.write(Uint8Array)` would send the text "67,68").
 *
 * `Out`: a packet written front to back, made once per client and reused (the encoders' target).
 * Node and Espruino write into one fixed Uint8Array; Lua gathers short strings. `toWire()` hands
 * the packet over as a Wire (the one copy a socket or the flash needs) and starts the next.
 *
 * `Gather`: a packet that arrives in pieces, collected for the decoder (the fixed receive buffer
 * on Node and Espruino; the pieces, joined once, on Lua).
 *
 * Text (topic names, client ids, user names) is the runtime's own string type:
 * - Node: UTF-16 JavaScript strings, encoded to UTF-8 here.
 * - Espruino and Lua: strings are already bytes (a non-ASCII character is its UTF-8 bytes), so
 *   they are copied byte for byte and never encoded a second time.
 * So `textLength("°C")` is 3 on every runtime, and writing then reading text gives back the same
 * string on every runtime.
 *
 * Every function here is total on its documented inputs: it never throws. Sizes are the caller's
 * job (measure with `textLength` before writing).
 */
export type Bytes = readonly number[] & { readonly __bytes?: never };

/** A socket write or a flash record (see above). Opaque to shared code. */
export interface Wire { readonly __wire?: never }

/** A packet being written (see above). */
export interface Out {
  /** Bytes written since the last toWire() or discard(). */
  size: number;
  byte(v: number): void;
  /** The UTF-8 bytes of a text (its textLength, measured by the caller). */
  putText(s: string): void;
  /** b[start..end). */
  copy(b: Bytes, start: number, end: number): void;
  /** What was written, as a Wire (allocates: the copy the socket or flash keeps); then empty. */
  toWire(): Wire;
  discard(): void;
}

/** A packet gathered from pieces (see above). */
export interface Gather {
  /** Bytes gathered since the last discard(). */
  size: number;
  /** Appends b[start..end). */
  copy(b: Bytes, start: number, end: number): void;
  /** The bytes gathered, readable until the next copy or discard. */
  gathered(): Bytes;
  discard(): void;
}

export interface BytesPort {
  /** A packet writer for packets of up to `cap` bytes. Allocates: call at start-up. */
  out(this: void, cap: number): Out;
  /** A gatherer for packets of up to `cap` bytes. Allocates: call at start-up. */
  gather(this: void, cap: number): Gather;
  /**
   * The UTF-8 byte length of a text, or -1 when it has no UTF-8 form (a lone UTF-16 surrogate on
   * Node; on Espruino and Lua strings are bytes, checked as UTF-8 where it matters).
   */
  textLength(this: void, s: string): number;
  /** The text whose UTF-8 bytes are b[start..end). Allocates the string. */
  textFrom(this: void, b: Bytes, start: number, end: number): string;
  /** b[start..end) as a Wire. Allocates. */
  wireFrom(this: void, b: Bytes, start: number, end: number): Wire;
  /** A Wire as Bytes to read (Node and Lua: itself; Espruino: a copy). */
  bytesOf(this: void, w: Wire): Bytes;
  wireLength(this: void, w: Wire): number;
  /** A Wire's bytes as text, and a text's UTF-8 bytes as a Wire (Espruino and Lua: the same string). */
  textOf(this: void, w: Wire): string;
  wireOf(this: void, s: string): Wire;
  /** A stored PUBLISH (whole packet) with its DUP flag set (MQTT-3.3.1-1). Allocates. */
  dup(this: void, w: Wire): Wire;
}
