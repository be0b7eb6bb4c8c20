import { port } from "../../firmware/port/port";
import type { Bytes, Chunk } from "../../firmware/port/bytes";

/**
 * The cross-target probe: the same program on every runtime of the matrix. It reads cases in
 * a line protocol, runs each through the built firmware, and emits one result line per case.
 *
 *   input:  <id> <op> <arg> <arg> …      arg: i:<decimal>  h:<hex bytes>  t:<hex of UTF-8 text>
 *   output: <id> <result>                 or  <id> !<reason> when the op is unknown
 *
 * Bytes and text travel as hex so the protocol is plain ASCII on every runtime; `t:` arguments
 * become the runtime's own text type (UTF-16 on Node, byte strings elsewhere) through the
 * BytesPort, exactly as a user's string would arrive.
 */
export type Op = (this: void, args: string[]) => string;

const ops: { [name: string]: Op | undefined } = {};

export function register(name: string, op: Op): void {
  ops[name] = op;
}

const HEX = "0123456789abcdef";

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  return c - 55;
}

/** An integer argument ("i:-12"). */
export function argInt(tok: string): number {
  let n = 0;
  let neg = false;
  for (let k = 2; k < tok.length; k++) {
    const c = tok.charCodeAt(k);
    if (c === 45) neg = true;
    else n = n * 10 + (c - 48);
  }
  return neg ? -n : n;
}

/** Number of bytes in a hex argument ("h:c2b0" or "t:c2b0"). */
export function argSize(tok: string): number {
  return port.ints.idiv(tok.length - 2, 2);
}

/** Fills `buf` from a hex argument at `off`; returns the byte count. */
export function argFill(tok: string, buf: Bytes, off: number): number {
  const n = argSize(tok);
  for (let k = 0; k < n; k++) {
    buf[off + k] = hexValue(tok.charCodeAt(2 + 2 * k)) * 16 + hexValue(tok.charCodeAt(3 + 2 * k));
  }
  return n;
}

/** A fresh buffer holding a hex argument's bytes (probe-only: allocation is fine here). */
export function argBytes(tok: string): Bytes {
  const n = argSize(tok);
  const buf = port.bytes.alloc(n > 0 ? n : 1);
  argFill(tok, buf, 0);
  return buf;
}

/** A text argument as the runtime's own string type. */
export function argText(tok: string): string {
  return port.bytes.readText(argBytes(tok), 0, argSize(tok));
}

/** A hex argument as an inbound socket chunk. */
export function argChunk(tok: string): Chunk {
  return port.bytes.wireAsChunk(port.bytes.toWire(argBytes(tok), 0, argSize(tok)));
}

function hexByte(b: number): string {
  return HEX.charAt(port.ints.idiv(b, 16)) + HEX.charAt(b % 16);
}

/** Result: bytes buf[start..end) as hex (built from short pieces: long concatenation chains are quadratic). */
export function outBytes(buf: Bytes, start: number, end: number): string {
  const pieces: string[] = [];
  let piece = "";
  let count = 0;
  for (let k = start; k < end; k++) {
    piece = piece + hexByte(buf[k]);
    if (piece.length >= 64) {
      pieces[count] = piece;
      count = count + 1;
      piece = "";
    }
  }
  pieces[count] = piece;
  return pieces.join("");
}

/** Result: a chunk's bytes as hex. */
export function outChunk(c: Chunk): string {
  let s = "";
  const n = port.bytes.chunkLength(c);
  for (let k = 0; k < n; k++) s = s + hexByte(port.bytes.chunkByte(c, k));
  return s;
}

/** Result: an integer, printed the same way on every runtime (Lua 5.3 would print 3.0 for a float). */
export function outInt(n: number): string {
  return "" + n;
}

function splitWords(line: string, words: string[]): number {
  let count = 0;
  let start = 0;
  const n = line.length;
  for (let k = 0; k <= n; k++) {
    if (k === n || line.charCodeAt(k) === 32) {
      if (k > start) {
        words[count] = line.substring(start, k);
        count = count + 1;
      }
      start = k + 1;
    }
  }
  return count;
}

/** Runs every case line of `input`; `emit` gets one line per case. Returns the case count. */
export function runProbe(input: string, emit: (this: void, line: string) => void): number {
  let cases = 0;
  let start = 0;
  const n = input.length;
  for (let k = 0; k <= n; k++) {
    if (k === n || input.charCodeAt(k) === 10) {
      if (k > start) {
        const words: string[] = [];
        const count = splitWords(input.substring(start, k), words);
        const args: string[] = [];
        for (let a = 2; a < count; a++) args[a - 2] = words[a];
        const op = ops[words[1]];
        emit(words[0] + " " + (op === undefined ? "!unknown-op:" + words[1] : op(args)));
        cases = cases + 1;
      }
      start = k + 1;
    }
  }
  return cases;
}
