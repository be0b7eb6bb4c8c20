/**
 * A Node port whose bytes throw on any out-of-bounds access: the fuzzer runs the decoder through
 * it (chunks wrapped with `checkedBytes`, gathered packets and every range checked) so a stray
 * index is a test failure, not a silent undefined. Packet writers throw on a write past their
 * capacity or of anything but an integer 0..255.
 */
import type { Bytes, BytesPort, Gather, Out, Wire } from "../../firmware/port/bytes";
import type { Port } from "../../firmware/port/port";
import { nodePort } from "../../firmware/targets/node/port";

export class OutOfBounds extends Error {}

const isIndex = (k: string | symbol): k is string => typeof k === "string" && k.length > 0 && k.charCodeAt(0) >= 45 && k.charCodeAt(0) <= 57;

/** `u` as Bytes that throw on an index outside it (and on any write). */
export function checkedBytes(u: Uint8Array, what = "chunk"): Bytes {
  return new Proxy(u, {
    get(t, k) {
      if (isIndex(k)) {
        const i = Number(k);
        if (!Number.isInteger(i) || i < 0 || i >= t.length) throw new OutOfBounds(`${what}: read [${k}] of ${t.length} bytes`);
        return t[i];
      }
      const v = Reflect.get(t, k, t);
      return typeof v === "function" ? v.bind(t) : v;
    },
    set() {
      throw new OutOfBounds(`${what}: a write to read-only bytes`);
    },
  }) as unknown as Bytes;
}

const raw = (c: Bytes) => c as unknown as Uint8Array;
function range(c: Bytes, from: number, to: number, what: string) {
  if (!(Number.isInteger(from) && Number.isInteger(to) && from >= 0 && from <= to && to <= raw(c).length)) {
    throw new OutOfBounds(`${what}: range [${from}, ${to}) of ${raw(c).length} bytes`);
  }
}

const base = nodePort.bytes;

class CheckedGather implements Gather {
  private readonly g: Gather;
  constructor(private readonly cap: number) {
    this.g = base.gather(cap);
  }
  get size(): number {
    return this.g.size;
  }
  copy(b: Bytes, from: number, to: number): void {
    range(b, from, to, "gather.copy");
    if (this.g.size + to - from > this.cap) throw new OutOfBounds(`gather.copy: ${this.g.size + to - from} bytes into ${this.cap}`);
    this.g.copy(b, from, to);
  }
  gathered(): Bytes {
    return checkedBytes(raw(this.g.gathered()).subarray(0, this.g.size), "gathered");
  }
  discard(): void {
    this.g.discard();
  }
}

class CheckedOut implements Out {
  private readonly o: Out;
  constructor(private readonly cap: number) {
    this.o = base.out(cap);
  }
  get size(): number {
    return this.o.size;
  }
  private room(n: number): void {
    if (this.o.size + n > this.cap) throw new OutOfBounds(`out: ${this.o.size + n} bytes into ${this.cap}`);
  }
  byte(v: number): void {
    if (!Number.isInteger(v) || v < 0 || v > 255) throw new OutOfBounds(`out: a byte of ${v}`);
    this.room(1);
    this.o.byte(v);
  }
  putText(s: string): void {
    this.room(base.textLength(s));
    this.o.putText(s);
  }
  copy(b: Bytes, start: number, end: number): void {
    range(b, start, end, "out.copy");
    this.room(end - start);
    this.o.copy(b, start, end);
  }
  toWire(): Wire {
    return this.o.toWire();
  }
  discard(): void {
    this.o.discard();
  }
}

const bytes: BytesPort = {
  ...base,
  out: (cap) => new CheckedOut(cap),
  gather: (cap) => new CheckedGather(cap),
  textFrom: (b, start, end) => {
    range(b, start, end, "text");
    return base.textFrom(b, start, end);
  },
  wireFrom: (b, start, end) => {
    range(b, start, end, "wire");
    return base.wireFrom(b, start, end);
  },
};

export const checkedPort: Port = { target: "node", ints: nodePort.ints, bytes };
