import * as fs from "node:fs";
import * as vm from "node:vm";

/**
 * The Espruino stand-in: runs a built Espruino bundle in a V8 context that has only what
 * Espruino 2v29 has. What the board lacks is removed, so using it fails here as it would on
 * the board; syntax the board rejects is caught by the dialect guard on the bundle itself
 * (V8 is more lenient than Espruino's parser).
 *
 * Strings: board firmware has 8-bit strings, where a non-ASCII character is its UTF-8 bytes.
 * The stand-in reproduces that by reading the bundle as Latin-1, so every string literal in it
 * holds one character per UTF-8 byte, exactly as on the board.
 */

/** Globals Espruino 2v29 does not have (measured on the interpreter). */
const MISSING_GLOBALS = ["Map", "Set", "WeakMap", "WeakSet", "Symbol", "Proxy", "Reflect", "TextEncoder",
  "TextDecoder", "BigInt", "WeakRef", "FinalizationRegistry", "queueMicrotask", "structuredClone"];

/** Built-in members Espruino 2v29 does not have. */
const MISSING_MEMBERS: Array<[string, string]> = [
  ["Array", "from"], ["Array", "of"], ["Number", "isInteger"], ["Object", "freeze"],
  ["Promise.prototype", "finally"], ["Object.getPrototypeOf(Uint8Array)", "from"],
];

export interface StandinOptions {
  /** Called with each line the program prints (print / console.log). */
  print(line: string): void;
  /** Extra globals, e.g. a probe's input. */
  globals?: Record<string, unknown>;
}

/** Espruino's `E.toString(Uint8Array)`: one 8-bit character per byte. */
function eToString(a: Uint8Array): string {
  let s = "";
  for (let i = 0; i < a.length; i += 4096) {
    s += String.fromCharCode.apply(null, Array.prototype.slice.call(a, i, i + 4096) as number[]);
  }
  return s;
}

/** Espruino's `E.toUint8Array(string)`: the bytes of an 8-bit string (in the context's own Uint8Array). */
function eToUint8Array(ctx: vm.Context, s: string): Uint8Array {
  const a = new (vm.runInContext("Uint8Array", ctx) as Uint8ArrayConstructor)(s.length);
  for (let i = 0; i < s.length; i++) a[i] = s.charCodeAt(i) & 255;
  return a;
}

/**
 * Espruino quirks reproduced in the context: `new Uint8Array(buffer, offset, 0)` is a view to
 * the end of the buffer, not an empty one (measured on 2v29).
 */
const QUIRKS = `(() => {
  const U = Uint8Array;
  class EspruinoUint8Array extends U {
    constructor(a, offset, length) {
      if (a instanceof ArrayBuffer && length === 0) super(a, offset);
      else if (arguments.length === 3) super(a, offset, length);
      else if (arguments.length === 2) super(a, offset);
      else if (arguments.length === 1) super(a);
      else super();
    }
  }
  globalThis.Uint8Array = EspruinoUint8Array;
})();`;

export function createContext(opts: StandinOptions): vm.Context {
  const ctx = vm.createContext({});
  vm.runInContext(QUIRKS, ctx);
  const g = vm.runInContext("this", ctx) as Record<string, unknown>;
  for (const name of MISSING_GLOBALS) vm.runInContext(`delete globalThis[${JSON.stringify(name)}]`, ctx);
  for (const [owner, member] of MISSING_MEMBERS) vm.runInContext(`delete ${owner}.${member}`, ctx);
  const say = (...args: unknown[]) => opts.print(args.map((a) => String(a)).join(" "));
  g.print = say;
  g.console = { log: say };
  g.E = { toString: eToString, toUint8Array: (s: string) => eToUint8Array(ctx, s), toArrayBuffer: (s: string) => eToUint8Array(ctx, s).buffer };
  g.global = g;
  for (const [k, v] of Object.entries(opts.globals ?? {})) g[k] = v;
  return ctx;
}

/**
 * Runs source text in a stand-in context as the board would see it uploaded: its UTF-8 bytes as
 * 8-bit characters ("°" is two characters, as on the board).
 */
export function runScript(ctx: vm.Context, source: string): unknown {
  return vm.runInContext(Buffer.from(source, "utf8").toString("latin1"), ctx);
}

/** Runs a bundle file in a fresh stand-in context, as the board would run it. */
export function runBundle(file: string, opts: StandinOptions): vm.Context {
  const ctx = createContext(opts);
  vm.runInContext(fs.readFileSync(file, "latin1"), ctx, { filename: file });
  return ctx;
}
