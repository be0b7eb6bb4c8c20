import type { Bytes, BytesPort, Gather, Out, Wire } from "../../port/bytes";

/**
 * BytesPort for Node: Bytes and Wire are Buffers, text is UTF-16 and is encoded to UTF-8 here
 * (by Buffer's native codec). A packet is written into one fixed Buffer per client and copied
 * once into the Wire the socket keeps. Ranges are copied by a loop: Buffer's copy() and a
 * typed array's set() of a part both make a view object per call.
 */
const buf = (b: Bytes): Buffer => {
  const a = b as unknown as Uint8Array;
  return Buffer.isBuffer(a) ? a : Buffer.from(a.buffer, a.byteOffset, a.byteLength);
};

class BufferOut implements Out {
  size = 0;
  private readonly a: Buffer;
  constructor(cap: number) {
    this.a = Buffer.alloc(cap);
  }
  byte(v: number): void {
    this.a[this.size] = v;
    this.size = this.size + 1;
  }
  putText(s: string): void {
    this.size = this.size + this.a.write(s, this.size, "utf8");
  }
  copy(b: Bytes, start: number, end: number): void {
    const a = this.a;
    const at = this.size - start;
    for (let i = start; i < end; i++) a[at + i] = b[i];
    this.size = this.size + end - start;
  }
  toWire(): Wire {
    const w = Buffer.from(this.a.subarray(0, this.size));
    this.size = 0;
    return w as unknown as Wire;
  }
  discard(): void {
    this.size = 0;
  }
}

class BufferGather implements Gather {
  size = 0;
  private readonly a: Buffer;
  constructor(cap: number) {
    this.a = Buffer.alloc(cap);
  }
  copy(b: Bytes, start: number, end: number): void {
    const a = this.a;
    const at = this.size - start;
    for (let i = start; i < end; i++) a[at + i] = b[i];
    this.size = this.size + end - start;
  }
  gathered(): Bytes {
    return this.a as unknown as Bytes;
  }
  discard(): void {
    this.size = 0;
  }
}

export const nodeBytes: BytesPort = {
  out: (cap) => new BufferOut(cap),
  gather: (cap) => new BufferGather(cap),
  textLength: (s) => (s.isWellFormed() ? Buffer.byteLength(s, "utf8") : -1),
  textFrom: (b, start, end) => buf(b).toString("utf8", start, end),
  wireFrom: (b, start, end) => Buffer.from(buf(b).subarray(start, end)) as unknown as Wire,
  bytesOf: (w) => w as unknown as Bytes,
  wireLength: (w) => (w as unknown as Buffer).length,
  textOf: (w) => (w as unknown as Buffer).toString("utf8"),
  wireOf: (s) => Buffer.from(s, "utf8") as unknown as Wire,
  dup: (w) => {
    const c = Buffer.from(w as unknown as Buffer);
    c[0] = c[0] | 8;
    return c as unknown as Wire;
  },
};
