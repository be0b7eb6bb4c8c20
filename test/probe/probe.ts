import { port } from "../../firmware/port/port";
import type { Bytes, Wire } from "../../firmware/port/bytes";

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

/**
 * A hex argument's bytes (probe-only: allocation is fine here). Iterates with for…of: on
 * Espruino `charCodeAt(i)` walks the string from its start, so indexing a long string is quadratic.
 */
export function argBytes(tok: string): Bytes {
  const o = port.bytes.out(argSize(tok) + 1);
  let k = -2;
  let high = 0;
  for (const ch of tok) {
    if (k >= 0) {
      if (k % 2 === 0) high = hexValue(ch.charCodeAt(0));
      else o.byte(high * 16 + hexValue(ch.charCodeAt(0)));
    }
    k = k + 1;
  }
  return port.bytes.bytesOf(o.toWire());
}

/** A text argument as the runtime's own string type. */
export function argText(tok: string): string {
  return port.bytes.textFrom(argBytes(tok), 0, argSize(tok));
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

/** Result: a Wire's bytes as hex. */
export function outWire(w: Wire): string {
  return outBytes(port.bytes.bytesOf(w), 0, port.bytes.wireLength(w));
}

/** Result: an integer, printed the same way on every runtime (Lua 5.3 would print 3.0 for a float). */
export function outInt(n: number): string {
  return "" + n;
}

/** Splits a string at every `sep`: each target's entry passes its native one. */
export type Split = (this: void, s: string, sep: string) => string[];

/**
 * Runs every case line of `input`; `emit` gets one line per case. Returns the case count.
 * Splitting is the entry's native split: indexing a long string is quadratic on Espruino, and
 * typescript-to-lua's split helper carries an integer literal 32-bit Lua reads as a float.
 */
export function runProbe(input: string, split: Split, emit: (this: void, line: string) => void): number {
  const lines = split(input, "\n");
  let cases = 0;
  for (const line of lines) {
    if (line.length === 0) continue;
    const words = split(line, " ");
    const args: string[] = [];
    for (let a = 2; a < words.length; a++) args[a - 2] = words[a];
    const op = ops[words[1]];
    emit(words[0] + " " + (op === undefined ? "!unknown-op:" + words[1] : op(args)));
    cases = cases + 1;
  }
  return cases;
}
