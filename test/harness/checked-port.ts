/**
 * A Node port whose buffers and chunks throw on any out-of-bounds access, and on a write of
 * anything but an integer 0..255: the fuzzer runs the decoder through it so a stray index is a
 * test failure, not a silent undefined.
 */
import type { Bytes, BytesPort, Chunk } from "../../firmware/port/bytes";
import type { Port } from "../../firmware/port/port";
import { nodePort } from "../../firmware/targets/node/port";

export class OutOfBounds extends Error {}

const isIndex = (k: string | symbol): k is string => typeof k === "string" && k.length > 0 && k.charCodeAt(0) >= 45 && k.charCodeAt(0) <= 57;

function checked(u: Uint8Array, writable: boolean, what: string): Bytes {
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
    set(t, k, v) {
      if (!writable) throw new OutOfBounds(`${what}: write to a read-only chunk`);
      const i = Number(k);
      if (!isIndex(k) || !Number.isInteger(i) || i < 0 || i >= t.length) throw new OutOfBounds(`${what}: write [${String(k)}] of ${t.length} bytes`);
      if (!Number.isInteger(v) || v < 0 || v > 255) throw new OutOfBounds(`${what}: write of ${v} at [${k}]`);
      t[i] = v;
      return true;
    },
  }) as unknown as Bytes;
}

const raw = (c: Chunk) => c as unknown as Uint8Array;
function range(c: Uint8Array, from: number, to: number, what: string) {
  if (!(Number.isInteger(from) && Number.isInteger(to) && from >= 0 && from <= to && to <= c.length)) {
    throw new OutOfBounds(`${what}: range [${from}, ${to}) of ${c.length} bytes`);
  }
}

const base = nodePort.bytes;
const bytes: BytesPort = {
  ...base,
  alloc: (n) => checked(new Uint8Array(n), true, "buffer"),
  chunkAsBytes: (c) => checked(raw(c), false, "chunk"),
  chunkByte: (c, i) => {
    range(raw(c), i, i + 1, "chunkByte");
    return raw(c)[i];
  },
  copyChunk: (dst, dstOff, c, from, to) => {
    range(raw(c), from, to, "copyChunk");
    for (let k = from; k < to; k++) dst[dstOff + k - from] = raw(c)[k];
  },
  copy: (dst, dstOff, src, start, end) => {
    for (let k = start; k < end; k++) dst[dstOff + k - start] = src[k];
  },
};

export const checkedPort: Port = { target: "node", ints: nodePort.ints, bytes };
