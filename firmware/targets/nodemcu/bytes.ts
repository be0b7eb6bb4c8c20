import type { Bytes, BytesPort, Chunk, Wire } from "../../port/bytes";

/**
 * BytesPort for NodeMCU Lua: buffers are Lua tables of numbers (no typed arrays in Lua);
 * chunks, writes and text are Lua strings, which are bytes already (`#s` is the byte length,
 * `string.byte`/`string.char` are binary safe), so text is never encoded twice.
 */
const unpack = (_G["unpack"] ?? (_G["table"] as { unpack: unknown }).unpack) as (
  this: void, t: number[], i: number, j: number) => LuaMultiReturn<number[]>;

/** `string.char(unpack(...))` takes its arguments on the C stack: stay well under its limit. */
const PIECE = 2048;

function bytesToString(buf: Bytes, start: number, end: number): string {
  if (end - start <= PIECE) return string.char(...unpack(buf, start + 1, end));
  const parts: string[] = [];
  let n = 0;
  for (let i = start; i < end; i += PIECE) {
    const j = i + PIECE < end ? i + PIECE : end;
    n = n + 1;
    parts[n - 1] = string.char(...unpack(buf, i + 1, j));
  }
  return table.concat(parts);
}

const str = (c: Chunk): string => c as unknown as string;

export const luaBytes: BytesPort = {
  alloc: (n) => {
    const t: number[] = [];
    for (let i = 0; i < n; i++) t[i] = 0;
    return t;
  },
  size: (b) => b.length,
  copy: (dst, dstOff, src, start, end) => {
    for (let i = start; i < end; i++) dst[dstOff + i - start] = src[i];
  },
  textLength: (s) => s.length,
  writeText: (buf, off, s) => {
    const n = s.length;
    for (let i = 0; i < n; i++) buf[off + i] = string.byte(s, i + 1);
    return off + n;
  },
  readText: (buf, start, end) => bytesToString(buf, start, end),
  chunkLength: (c) => str(c).length,
  chunkByte: (c, i) => string.byte(str(c), i + 1),
  chunkAsBytes: () => undefined,
  copyChunk: (dst, dstOff, c, from, to) => {
    const s = str(c);
    for (let i = from; i < to; i++) dst[dstOff + i - from] = string.byte(s, i + 1);
  },
  toWire: (buf, start, end) => bytesToString(buf, start, end) as unknown as Wire,
  wireAsChunk: (w) => w as unknown as Chunk,
};
