import type { Bytes, BytesPort, Gather, Out, Wire } from "../../port/bytes";

declare const E: { toString(a: Uint8Array): string; toUint8Array(s: string | string[]): Uint8Array };

/**
 * BytesPort for Espruino: Bytes are Uint8Arrays, Wires are 8-bit strings (`write` of a
 * Uint8Array would send the text "67,68"), and text is already UTF-8 bytes, copied as is.
 *
 * Espruino strings are chains of blocks: `charCodeAt(i)` walks from the start, so a loop over a
 * string is quadratic, and interpreted loops are slow anyway. Native calls are used instead
 * (measured on the 8-bit 2v29 build: a 16 KB string copies in 1.8 ms with `E.toUint8Array` and
 * `set`, 470 ms by `charCodeAt`; a 27-byte topic 18 µs against 404 µs). So socket chunks become
 * Uint8Arrays once, at the socket adapter, and packets are built as strings by native appends.
 *
 * Every function here costs RAM on the board (a few variable slots each, code in flash or not):
 * the operations are one class's methods, which the board build merges into one function.
 */
const EMPTY = new Uint8Array(0);

/** a[start..end) as a string (one copy), "" when empty. */
function slice(a: Bytes, start: number, end: number): string {
  // Espruino reads `new Uint8Array(buffer, offset, 0)` as "to the end": an empty range is special
  const u = a as unknown as Uint8Array;
  return end > start ? E.toString(new Uint8Array(u.buffer, u.byteOffset + start, end - start)) : "";
}

/**
 * A packet being written (Out) or gathered (Gather), as its pieces: no buffer is kept between
 * packets (a 512-byte one would hold some 45 of an ESP8266's 1,600 variable slots for good). The
 * pieces are joined once, at the end: appending to one string copies it at every append, which
 * for a 2 KB packet arriving in socket pieces held two copies at once. A gathered packet's pieces
 * are let go as soon as they are one Uint8Array (E.toUint8Array takes the list as it is).
 */
class Builder implements Out, Gather {
  size = 0;
  private p: string[] = [];
  byte(v: number): void {
    this.p.push(String.fromCharCode(v));
    this.size = this.size + 1;
  }
  putText(t: string): void {
    this.p.push(t);
    this.size = this.size + t.length;
  }
  copy(b: Bytes, start: number, end: number): void {
    this.p.push(slice(b, start, end));
    this.size = this.size + end - start;
  }
  toWire(): Wire {
    const w = this.p.join("");
    this.discard();
    return w as unknown as Wire;
  }
  discard(): void {
    this.p = [];
    this.size = 0;
  }
  /** (Gather) the bytes gathered, as a Uint8Array the decoder reads; the pieces are let go. */
  gathered(): Bytes {
    const p = this.p;
    this.p = [];
    return (this.size > 0 ? E.toUint8Array(p) : EMPTY) as unknown as Bytes;
  }
}

/**
 * The port's operations as the methods of one object: the board build merges a class's methods
 * into one function (tools/espruino-merge.mjs), where an object literal of functions would keep
 * one function per operation (a few variable slots each, for good).
 */
class EspruinoBytes implements BytesPort {
  out(_cap: number): Out {
    return new Builder();
  }
  gather(_cap: number): Gather {
    return new Builder();
  }
  textLength(s: string): number {
    return s.length;
  }
  textFrom(b: Bytes, start: number, end: number): string {
    return slice(b, start, end);
  }
  wireFrom(b: Bytes, start: number, end: number): Wire {
    return slice(b, start, end) as unknown as Wire;
  }
  bytesOf(w: Wire): Bytes {
    return ((w as unknown as string).length > 0 ? E.toUint8Array(w as unknown as string) : EMPTY) as unknown as Bytes;
  }
  wireLength(w: Wire): number {
    return (w as unknown as string).length;
  }
  textOf(w: Wire): string {
    return w as unknown as string;
  }
  wireOf(s: string): Wire {
    return s as unknown as Wire;
  }
  dup(w: Wire): Wire {
    return (String.fromCharCode((w as unknown as string).charCodeAt(0) | 8) + (w as unknown as string).substring(1)) as unknown as Wire;
  }
}

export const espruinoBytes: BytesPort = new EspruinoBytes();
