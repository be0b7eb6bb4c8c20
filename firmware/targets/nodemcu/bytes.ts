import type { Bytes, BytesPort, Gather, Out, Wire } from "../../port/bytes";

/**
 * BytesPort for NodeMCU Lua: Bytes, Wires and text are all Lua strings, which are bytes already
 * (`#s` is the byte length, `string.byte`/`string.char`/`string.sub` are binary safe), so text is
 * never encoded twice and a packet costs one byte of heap per byte. A table slot would cost 16
 * bytes per byte (8 on a 32-bit build): packets are never kept as tables of numbers.
 *
 * Writing a packet: header bytes collect in a small table of numbers, turned into a string by one
 * `string.char(unpack(...))` whenever a string piece (a topic, a payload) follows; `toWire()` joins
 * the pieces with one `table.concat` (measured on 32-bit Lua 5.3: a 512-byte packet built so
 * leaves about 2 KB of garbage, against 140 KB for `s = s .. string.char(b)` per byte).
 */
const unpack = (_G["unpack"] ?? (_G["table"] as { unpack: unknown }).unpack) as (
  this: void, t: number[], i: number, j: number) => LuaMultiReturn<number[]>;

const str = (b: Bytes | Wire): string => b as unknown as string;

class Pieces implements Out, Gather {
  size = 0;
  private readonly parts: string[] = [];
  private count = 0;
  /** Header bytes not yet made a string piece. */
  private readonly nums: number[] = [];
  private pending = 0;

  byte(v: number): void {
    this.nums[this.pending] = v;
    this.pending = this.pending + 1;
    this.size = this.size + 1;
    // unpack puts its results on the C stack: keep each string.char call short
    if (this.pending === 200) this.piece("");
  }

  private piece(s: string): void {
    if (this.pending > 0) {
      this.parts[this.count] = string.char(...unpack(this.nums, 1, this.pending));
      this.count = this.count + 1;
      this.pending = 0;
    }
    if (s.length > 0) {
      this.parts[this.count] = s;
      this.count = this.count + 1;
    }
  }

  putText(s: string): void {
    this.piece(s);
    this.size = this.size + s.length;
  }

  copy(b: Bytes, start: number, end: number): void {
    this.piece(string.sub(str(b), start + 1, end));
    this.size = this.size + end - start;
  }

  /** Every piece as one string (the pieces are let go: nothing keeps a payload alive). */
  private joined(): string {
    this.piece("");
    const s = this.count === 1 ? this.parts[0] : table.concat(this.parts);
    for (let i = 0; i < this.count; i++) this.parts[i] = undefined as unknown as string;
    this.count = 0;
    if (s.length > 0) {
      this.parts[0] = s;
      this.count = 1;
    }
    return s;
  }

  toWire(): Wire {
    const s = this.count === 0 && this.pending === 0 ? "" : this.joined();
    this.discard();
    return s as unknown as Wire;
  }

  gathered(): Bytes {
    return (this.count === 0 && this.pending === 0 ? "" : this.joined()) as unknown as Bytes;
  }

  discard(): void {
    for (let i = 0; i < this.count; i++) this.parts[i] = undefined as unknown as string;
    this.count = 0;
    this.pending = 0;
    this.size = 0;
  }
}

export const luaBytes: BytesPort = {
  out: () => new Pieces(),
  gather: () => new Pieces(),
  textLength: (s) => s.length,
  textFrom: (b, start, end) => string.sub(str(b), start + 1, end),
  wireFrom: (b, start, end) => string.sub(str(b), start + 1, end) as unknown as Wire,
  bytesOf: (w) => w as unknown as Bytes,
  wireLength: (w) => str(w).length,
  textOf: (w) => str(w),
  wireOf: (s) => s as unknown as Wire,
  dup: (w) => {
    const b0 = string.byte(str(w), 1);
    // DUP is bit 3 of the first byte: set it by arithmetic (no bit library needed)
    const flagged = b0 % 16 >= 8 ? b0 : b0 + 8;
    return (string.char(flagged) + string.sub(str(w), 2)) as unknown as Wire;
  },
};
