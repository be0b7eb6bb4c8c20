import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import * as tls from "node:tls";
import * as vm from "node:vm";
import * as zlib from "node:zlib";

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
  /** The board's flash for `require("Storage")`: one file per name in this directory. */
  storageDir?: string;
  /** Bytes of flash free for Storage (default 128 KB: the packed sensor node, about 75 KB, and its records). */
  storageFree?: number;
  /** Size of the pieces `net` delivers: 536 (ESP32, default) or 268 (ESP8266). */
  chunk?: number;
  /** Called when the program does something that crashes or misbehaves on the board. */
  fault?(what: string): void;
  /**
   * ESP32 flavour: a refused connection is thrown by `connect` itself (measured on ESP32 builds),
   * where ESP8266 reports it later with 'error' and 'close'.
   */
  esp32?: boolean;
  /** E.reboot(): the board restarts (a board process ends and is powered on again). Without it, a fault. */
  reboot?(): void;
}

/** Handles the stand-in keeps for one context (timers, sockets), so a test can tear it down. */
export interface StandinHandles {
  timers: Map<number, NodeJS.Timeout>;
  sockets: Set<net.Socket>;
  /** The Wi-Fi station (see setWifi). */
  wifi: { up: boolean; listeners: Record<string, Listener[]> };
  /** The console device: "Serial1" (the REPL on the board's UART) unless moved. */
  console: string;
  /** `data` listeners of Serial1 / LoopbackA. */
  serialListeners: Record<string, Listener[]>;
  /** Modules loaded from Storage files. */
  modules: Record<string, unknown>;
  /** Serial1.write output not yet ended by a newline. */
  serialOut: string;
}
const handlesOf = new WeakMap<vm.Context, StandinHandles>();

/**
 * The Wi-Fi station goes down or comes back: the `Wifi` module's 'disconnected' / 'connected'
 * listeners run (from the event loop), and while it is down a new connection fails.
 */
export function setWifi(ctx: vm.Context, up: boolean): void {
  const h = handlesOf.get(ctx);
  if (h === undefined || h.wifi.up === up) return;
  h.wifi.up = up;
  const ev = up ? "connected" : "disconnected";
  setImmediate(() => {
    for (const f of h.wifi.listeners[ev] ?? []) f(up ? { ip: "127.0.0.1" } : { reason: "8" });
  });
}

/**
 * Input typed on the board's UART. While Serial1 is the console it goes to the REPL: returns
 * false (the caller runs it). When the console was moved away (LoopbackA.setConsole()), Serial1's
 * `data` listeners get it, as on the board: returns true.
 */
export function serialInput(ctx: vm.Context, text: string): boolean {
  const h = handlesOf.get(ctx);
  if (h === undefined || h.console === "Serial1") return false;
  for (const f of h.serialListeners.Serial1 ?? []) f(text);
  return true;
}

/** True when nothing accepts connections at host:port (a synchronous probe, for the ESP32 flavour). */
function refusedNow(host: string, port: number): boolean {
  const probe = `require("net").connect(${port}, ${JSON.stringify(host)}).on("connect", () => process.exit(0)).on("error", () => process.exit(1))`;
  return spawnSync(process.execPath, ["-e", probe], { timeout: 5000 }).status === 1;
}

/** Stops every timer and socket a context started. */
export function disposeContext(ctx: vm.Context): void {
  const h = handlesOf.get(ctx);
  if (h === undefined) return;
  for (const t of h.timers.values()) clearTimeout(t);
  h.timers.clear();
  for (const s of h.sockets) s.destroy();
  h.sockets.clear();
}

type Listener = (this: unknown, x?: unknown) => void;

/**
 * Espruino's \`net\` (and \`tls\`) over Node sockets, as strict as the board: data is delivered as
 * 8-bit strings in board-sized pieces; \`write\` of anything but a string sends its text (a
 * Uint8Array becomes "67,68", as on the board); a connect callback together with
 * \`on('connect')\` is a fault (it crashes the interpreter). A refused connection is reported
 * asynchronously ('error' then 'close'), as on ESP8266.
 */
function netModule(secure: boolean, opts: StandinOptions, h: StandinHandles) {
  const chunk = opts.chunk ?? 536;
  const fault = opts.fault ?? ((what: string) => { throw new Error(what); });
  return {
    connect(o: { host: string; port: number; ca?: string; key?: string; cert?: string }, cb?: (this: unknown) => void) {
      const listeners: Record<string, Listener[]> = {};
      // as on the board, a socket's callbacks run with the socket as `this`
      const emit = (ev: string, x?: unknown) => { for (const f of listeners[ev] ?? []) f.call(api, x); };
      if (opts.esp32 === true && (!h.wifi.up || refusedNow(o.host, o.port))) throw new Error("Unable to connect");
      // no socket while the station is down: no route, reported later, as a refused connection is on ESP8266
      const sock = !h.wifi.up ? undefined : secure
        ? tls.connect({ host: o.host, port: o.port, ca: o.ca, key: o.key, cert: o.cert, servername: net.isIP(o.host) === 0 ? o.host : undefined })
        : net.connect({ host: o.host, port: o.port });
      if (sock === undefined) {
        setImmediate(() => {
          emit("error", { message: "no route to host" });
          emit("close");
        });
      } else {
        h.sockets.add(sock);
        sock.setNoDelay(true);
        sock.once(secure ? "secureConnect" : "connect", () => {
          if (cb) cb.call(api);
          emit("connect");
        });
        sock.on("data", (b: Buffer) => {
          for (let i = 0; i < b.length; i += chunk) emit("data", b.subarray(i, i + chunk).toString("latin1"));
        });
        sock.on("drain", () => emit("drain"));
        sock.on("error", (e: Error) => emit("error", { message: e.message }));
        sock.on("close", () => {
          h.sockets.delete(sock);
          emit("end");
          emit("close");
        });
      }
      const api = {
        on(ev: string, f: Listener) {
          if (ev === "connect" && cb) fault("net: a connect callback and on('connect') together crash Espruino");
          (listeners[ev] ??= []).push(f);
          return api;
        },
        write(data: unknown) {
          if (sock === undefined) return false;
          const bytes = typeof data === "string" ? Buffer.from(data, "latin1") : Buffer.from(String(data), "latin1");
          return sock.write(bytes);
        },
        end() {
          sock?.end();
        },
      };
      return api;
    },
  };
}

/** Espruino's \`Wifi\` (station side): events, getIP, connect (which just reports success when up). */
function wifiModule(h: StandinHandles) {
  return {
    on(ev: string, f: Listener) {
      if (ev !== "connected" && ev !== "disconnected") throw new Error(`Wifi.on: the stand-in has no "${ev}" event`);
      (h.wifi.listeners[ev] ??= []).push(f);
    },
    getIP() {
      return { ip: h.wifi.up ? "127.0.0.1" : "0.0.0.0" };
    },
    connect(ssid: string, _o: unknown, cb?: (err?: unknown) => void) {
      if (typeof ssid !== "string") throw new Error("Wifi.connect(ssid, options, callback)");
      setImmediate(() => cb?.(h.wifi.up ? undefined : "no AP found"));
    },
  };
}

/** Espruino's flash \`Storage\` over a directory: names up to 28 characters, 8-bit string contents. */
function storageModule(opts: StandinOptions) {
  const dir = opts.storageDir;
  if (dir === undefined) return undefined;
  fs.mkdirSync(dir, { recursive: true });
  const file = (name: string) => {
    if (name.length === 0 || name.length > 28) throw new Error(`Storage: name "${name}" must be 1..28 characters`);
    return path.join(dir, Buffer.from(name, "latin1").toString("hex"));
  };
  const total = opts.storageFree ?? 131072;
  // As on the board, a replaced or erased file stays in flash as trash until a compaction, which
  // a write that does not fit runs by itself. Each file also costs a 32-byte header. Trash is
  // counted from the start of this context (the flash's history before it is taken as compacted).
  const HEADER = 32;
  let trash = 0;
  const stats = { compactions: 0 };
  const used = () => fs.readdirSync(dir).reduce((n, f) => n + fs.statSync(path.join(dir, f)).size + HEADER, 0);
  const sizeOf = (name: string) => (fs.existsSync(file(name)) ? fs.statSync(file(name)).size + HEADER : 0);
  // power cuts (stand-in only): the n-th mutation from now is cut (a write keeps half its bytes,
  // an erase does not happen), and every mutation after it throws until power returns
  let cutIn = 0;
  let powered = true;
  /** True when this mutation is the one cut (it then throws after doing its part). */
  const mutation = (): boolean => {
    if (!powered) throw new Error("stand-in: no power (flash call after a power cut)");
    if (cutIn > 0 && --cutIn === 0) {
      powered = false;
      return true;
    }
    return false;
  };
  const api = {
    write(name: string, data: string, offset?: number, size?: number) {
      const piece0 = Buffer.from(String(data), "latin1");
      const cut = mutation();
      const piece = cut ? piece0.subarray(0, piece0.length >> 1) : piece0;
      if (cut && offset === undefined) {
        fs.writeFileSync(file(name), piece);
        throw new Error("stand-in: power cut");
      }
      if (offset !== undefined && offset > 0) {
        // a later piece of a file created with its size: written in place (no new file)
        const f = file(name);
        if (!fs.existsSync(f)) throw new Error(`Storage: ${name} does not exist to write at offset ${offset}`);
        const cur = fs.readFileSync(f);
        if (offset + piece.length > cur.length) throw new Error(`Storage: write past the end of ${name} (created with ${cur.length} bytes)`);
        piece.copy(cur, offset);
        fs.writeFileSync(f, cur);
        if (cut) throw new Error("stand-in: power cut");
        return true;
      }
      // offset 0 with a size: the file is made that long (erased flash is 0xFF), this piece first
      const bytes = size !== undefined && size > piece.length ? Buffer.concat([piece, Buffer.alloc(size - piece.length, 0xff)]) : piece;
      if (used() + trash + bytes.length + HEADER > total) {
        trash = 0; // compacting
        stats.compactions++;
        opts.print("Compacting...");
      }
      if (used() + bytes.length + HEADER - sizeOf(name) > total) throw new Error("Storage: not enough free space");
      trash += sizeOf(name);
      fs.writeFileSync(file(name), bytes);
      if (cut) throw new Error("stand-in: power cut");
      return true;
    },
    read(name: string) {
      const f = file(name);
      return fs.existsSync(f) ? fs.readFileSync(f).toString("latin1") : undefined;
    },
    erase(name: string) {
      if (mutation()) throw new Error("stand-in: power cut");
      trash += sizeOf(name);
      fs.rmSync(file(name), { force: true });
    },
    list() {
      return fs.readdirSync(dir).map((f) => Buffer.from(f, "hex").toString("latin1"));
    },
    getFree() {
      return total - used() - trash;
    },
    getStats() {
      const u = used();
      return { totalBytes: total, freeBytes: total - u - trash, fileBytes: u, fileCount: fs.readdirSync(dir).length, trashBytes: trash, trashCount: -1 };
    },
    compact() {
      trash = 0;
      stats.compactions++;
    },
    /** Stand-in only: how often flash was compacted. */
    standinStats: stats,
    /** Stand-in only: cut the power at the n-th flash mutation from now (write or erase). */
    standinPowerCut(n: number) {
      cutIn = n;
    },
    /** Stand-in only: false from a power cut until standinPowerOn(). */
    standinPowered: () => powered,
    /** Stand-in only: power back on (the flash works again, nothing is cut). */
    standinPowerOn() {
      powered = true;
      cutIn = 0;
    },
  };
  return api;
}

/** Espruino's `E.toString(Uint8Array)`: one 8-bit character per byte. */
function eToString(a: Uint8Array): string {
  let s = "";
  for (let i = 0; i < a.length; i += 4096) {
    s += String.fromCharCode.apply(null, Array.prototype.slice.call(a, i, i + 4096) as number[]);
  }
  return s;
}

/**
 * Espruino's `E.toUint8Array(...args)` (in the context's own Uint8Array): each argument as bytes,
 * in order: a number is one byte, a string its 8-bit characters, an array or typed array each of
 * its elements so (recursively), as the interpreter does.
 */
function eToUint8Array(ctx: vm.Context, ...args: unknown[]): Uint8Array {
  const out: number[] = [];
  const add = (x: unknown): void => {
    if (typeof x === "number") out.push(x & 255);
    else if (typeof x === "string") for (let i = 0; i < x.length; i++) out.push(x.charCodeAt(i) & 255);
    else if (x !== null && typeof x === "object" && typeof (x as ArrayLike<unknown>).length === "number") {
      for (const e of Array.from(x as ArrayLike<unknown>)) add(e);
    } else throw new TypeError(`E.toUint8Array: cannot take ${typeof x} (the board takes numbers, strings and arrays)`);
  };
  for (const a of args) add(a);
  const a = new (vm.runInContext("Uint8Array", ctx) as Uint8ArrayConstructor)(out.length);
  a.set(out);
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
  // Printing goes to the console device; moved to LoopbackA, it is not seen (as on the board).
  const say = (...args: unknown[]) => {
    if (h.console === "Serial1") opts.print(args.map((a) => String(a)).join(" "));
  };
  g.print = say;
  g.console = { log: say };
  g.E = { toString: eToString, toUint8Array: (...a: unknown[]) => eToUint8Array(ctx, ...a), toArrayBuffer: (s: string) => eToUint8Array(ctx, s).buffer,
    getConsole: () => h.console,
    reboot: () => (opts.reboot !== undefined ? opts.reboot() : opts.fault?.("E.reboot() called")),
    // E.CRC32: the standard CRC-32 of each element as a byte (strings: each character code)
    CRC32: (d: string | ArrayLike<number>) => zlib.crc32(typeof d === "string" ? Buffer.from(d, "latin1") : Uint8Array.from(Array.from(d, (x) => x & 255))) };
  const device = (name: string) => ({
    on(ev: string, f: Listener) {
      if (ev !== "data") throw new Error(`${name}.on: the stand-in has only the data event`);
      (h.serialListeners[name] ??= []).push(f);
    },
    removeAllListeners(ev: string) {
      if (ev === "data") h.serialListeners[name] = [];
    },
    setConsole() {
      h.console = name;
    },
    // Serial1's output is the board's UART: printed line by line ("\r" dropped), like print.
    write(d: string) {
      if (name !== "Serial1") return;
      const parts = (h.serialOut + String(d)).replace(/\r/g, "").split("\n");
      h.serialOut = parts.pop() as string;
      for (const l of parts) opts.print(l);
    },
  });
  g.atob = (s: string) => Buffer.from(s, "base64").toString("latin1");
  g.btoa = (s: string) => Buffer.from(s, "latin1").toString("base64");
  g.process = { env: { VERSION: "2v29", BOARD: opts.esp32 ? "ESP32" : "ESP8266_4MB", CONSOLE: "Serial1", MODULES: "Storage,net,tls,Wifi" } };
  g.Serial1 = device("Serial1");
  g.LoopbackA = device("LoopbackA");
  g.global = g;
  // Timers, clock and modules, as the interpreter has them (timer ids are numbers).
  const h: StandinHandles = { timers: new Map(), sockets: new Set(), wifi: { up: true, listeners: {} }, console: "Serial1", serialListeners: {}, modules: {}, serialOut: "" };
  handlesOf.set(ctx, h);
  let nextTimer = 1;
  // as Espruino: a string is code, run at global scope when the timer fires (the boot guard
  // starts the app so); arguments after the delay are passed to the function
  g.setTimeout = (fn: ((...a: unknown[]) => void) | string, ms: number, ...args: unknown[]) => {
    const id = nextTimer++;
    h.timers.set(id, setTimeout(() => {
      h.timers.delete(id);
      if (typeof fn === "string") vm.runInContext(fn, ctx);
      else fn(...args);
    }, ms));
    return id;
  };
  g.clearTimeout = (id: number) => {
    const t = h.timers.get(id);
    if (t !== undefined) clearTimeout(t);
    h.timers.delete(id);
  };
  const t0 = performance.now();
  g.getTime = () => (performance.now() - t0) / 1000;
  g.getSerial = () => "7ab1c2d3-0001";
  const storage = storageModule(opts);
  g.require = (name: string) => {
    if (name === "net") return netModule(false, opts, h);
    if (name === "tls") return netModule(true, opts, h);
    if (name === "Storage" && storage !== undefined) return storage;
    if (name === "Wifi") return wifiModule(h);
    // as Espruino: a Storage file of that name is a module (evaluated once, with `exports`)
    const code = storage?.read(name);
    if (code !== undefined) {
      if (!(name in h.modules)) {
        const exportsObj = vm.runInContext("({})", ctx) as Record<string, unknown>;
        h.modules[name] = exportsObj;
        const fn = vm.runInContext(`(function (exports, module) {${code}\n})`, ctx) as (e: unknown, m: unknown) => void;
        fn(exportsObj, { exports: exportsObj });
      }
      return h.modules[name];
    }
    throw new Error(`Module ${name} not found`);
  };
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
