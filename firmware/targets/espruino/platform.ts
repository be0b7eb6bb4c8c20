import type { Bytes, Wire } from "../../port/bytes";
import type { Clock, Timer } from "../../port/clock";
import type { LogSink } from "../../port/log";
import { STORAGE_FAILED, STORAGE_FULL, type Storage } from "../../port/storage";
import type { Resolver, Transport, TransportEvents } from "../../port/transport";
import { Scheduler } from "../../sched/scheduler";
import { espruinoLink, type EspruinoWifiOptions } from "./link";
import type { Platform } from "../../session/platform";

/**
 * The Platform on Espruino (ESP32, ESP8266): thin adapters over `net`/`tls`, `Storage`, the
 * interpreter's timers and clock. No protocol logic lives here.
 */

declare interface EspSocket {
  on(event: string, fn: (x: unknown) => void): void;
  write(data: string): boolean;
  end(): void;
}
declare interface EspNet {
  connect(opts: { host: string; port: number }, cb: () => void): EspSocket;
}
declare interface EspStorage {
  read(name: string): string | undefined;
  write(name: string, data: string): boolean;
  erase(name: string): void;
  list(): string[];
  getFree(): number;
  /** 2v29: freeBytes excludes erased files (trash), which a write reclaims by compacting. */
  getStats?(): { freeBytes: number; trashBytes: number };
}

declare const global: { [name: string]: unknown };

/**
 * The interpreter's own modules (net, tls, Storage). Looked up on `global` at call time: a
 * literal `require("…")` would make the bundler try to bundle the module, or wrap it in a shim
 * that uses Proxy and Error.
 */
function load(name: string): unknown {
  return (global["require"] as (n: string) => unknown)(name);
}
declare function getTime(): number;
declare function getSerial(): string | undefined;
declare function setTimeout(fn: () => void, ms: number): number;
declare function clearTimeout(id: number): void;
declare function print(line: string): void;
declare const E: { toString(a: Uint8Array): string; toUint8Array(s: string): Uint8Array; CRC32(s: string): number };

/** Milliseconds from the interpreter's clock (seconds, a double), wrapped to 31 bits. */
export const espruinoClock: Clock = {
  now: () => Math.floor(getTime() * 1000) % 2147483648,
};

/** One timer over setTimeout, as the contract asks: a start replaces the pending one. */
export function espruinoTimer(): Timer {
  let id = -1;
  return {
    start: (ms, fn) => {
      if (id >= 0) clearTimeout(id);
      id = setTimeout(() => {
        id = -1;
        fn();
      }, ms);
    },
    stop: () => {
      if (id >= 0) clearTimeout(id);
      id = -1;
    },
  };
}

/** Espruino's error text as the session's stable codes. */
function closeCode(message: string): string {
  const m = message.toLowerCase();
  if (m.indexOf("refused") >= 0) return "refused";
  if (m.indexOf("reset") >= 0) return "reset";
  if (m.indexOf("timeout") >= 0 || m.indexOf("timed out") >= 0) return "timeout";
  if (m.indexOf("not found") >= 0 || m.indexOf("dns") >= 0) return "not-found";
  if (m.indexOf("ssl") >= 0 || m.indexOf("tls") >= 0 || m.indexOf("certificate") >= 0) return "tls";
  return "io";
}

/**
 * The Transport over `net` / `tls`. Data arrives as 8-bit strings in 536-byte (ESP8266: 268)
 * pieces: each becomes a Uint8Array once (E.toUint8Array). A refused connection that `connect`
 * throws at once (ESP32) is reported later, like the asynchronous one (ESP8266). Only the connect
 * callback is used: adding `on('connect')` as well crashes the interpreter.
 */
export function espruinoTransport(tlsOptions: { ca?: string; key?: string; cert?: string } | undefined): Transport {
  let sock: EspSocket | undefined = undefined;
  let events: TransportEvents | undefined = undefined;
  let reason = "";
  let asked = false;
  const finish = (ev: TransportEvents) => {
    if (events !== ev) return;
    events = undefined;
    sock = undefined;
    const r = asked ? "" : reason !== "" ? reason : "closed";
    setTimeout(() => ev.onClose(r), 0);
  };
  return {
    open: (host, port, secure, ev) => {
      events = ev;
      reason = "";
      asked = false;
      const opts: { host: string; port: number; ca?: string; key?: string; cert?: string } = { host: host, port: port };
      if (secure && tlsOptions !== undefined) {
        if (tlsOptions.ca !== undefined) opts.ca = tlsOptions.ca;
        if (tlsOptions.key !== undefined) opts.key = tlsOptions.key;
        if (tlsOptions.cert !== undefined) opts.cert = tlsOptions.cert;
      }
      let s: EspSocket;
      try {
        s = (load(secure ? "tls" : "net") as EspNet).connect(opts, () => {
          if (events === ev) ev.onOpen();
        });
      } catch (e) {
        reason = closeCode(String(e));
        if (reason === "io") reason = "refused";
        finish(ev);
        return;
      }
      sock = s;
      s.on("data", (d) => {
        if (events === ev) ev.onData(E.toUint8Array(d as string) as unknown as Bytes);
      });
      s.on("drain", () => {
        if (events === ev) ev.onWritable();
      });
      s.on("error", (e) => {
        const err = e as { message?: string } | undefined;
        if (reason === "") reason = closeCode(err !== undefined && err.message !== undefined ? err.message : String(e));
      });
      s.on("close", () => finish(ev));
    },
    write: (data: Wire) => {
      if (sock === undefined) return false;
      return sock.write(data as unknown as string) !== false;
    },
    close: () => {
      if (sock === undefined) return;
      asked = true;
      sock.end();
    },
  };
}

/** `net` resolves names itself when it connects: the resolver passes the name through. */
export const espruinoResolver: Resolver = {
  resolve: (host, done) => {
    setTimeout(() => done(host, ""), 0);
  },
};

/** A record's seal: its length (2 bytes) and the CRC-32 of its body (4 bytes), so a torn write is seen. */
function seal(body: string): string {
  const n = body.length;
  const c = E.CRC32(body);
  return String.fromCharCode((n >> 8) & 255, n & 255, (c >>> 24) & 255, (c >>> 16) & 255, (c >>> 8) & 255, c & 255);
}

/** The body of a sealed record, or undefined when it is torn or foreign. */
function unseal(s: string | undefined): string | undefined {
  if (s === undefined || s.length < 6) return undefined;
  const body = s.substring(0, s.length - 6);
  return s.substring(s.length - 6) === seal(body) ? body : undefined;
}

/**
 * Storage over Espruino's flash `Storage`. Flash has no atomic rename, so a record is written as
 * `<key>~` first (complete, with a length and CRC-32 seal), then `<key>` is replaced and
 * `<key>~` erased. `read` takes `<key>~` when it is whole (an update that did not finish), else
 * `<key>`: after a power cut at any step it returns the old record or the new one.
 */
export function espruinoStorage(): Storage {
  const st = load("Storage") as EspStorage;
  return {
    write: (key, data: Wire) => {
      const body = (data as unknown as string) + seal(data as unknown as string);
      const need = body.length * 2 + 64;
      // Erased records stay in flash as trash until Storage compacts, which a write that does
      // not fit does by itself (measured on 2v29): trash counts as room.
      let room = st.getFree();
      if (room < need && st.getStats !== undefined) {
        const f = st.getStats();
        room = f.freeBytes + f.trashBytes;
      }
      if (room < need) return STORAGE_FULL;
      try {
        if (!st.write(key + "~", body)) return STORAGE_FAILED;
        st.erase(key);
        if (!st.write(key, body)) return STORAGE_FAILED;
        st.erase(key + "~");
      } catch (e) {
        return String(e).indexOf("space") >= 0 ? STORAGE_FULL : STORAGE_FAILED;
      }
      return 0;
    },
    read: (key) => {
      let body = unseal(st.read(key + "~"));
      if (body === undefined) body = unseal(st.read(key));
      return body as unknown as Wire | undefined;
    },
    remove: (key) => {
      st.erase(key + "~");
      st.erase(key);
    },
    list: (prefix) => {
      const out: string[] = [];
      const seen: { [name: string]: boolean } = {};
      const names = st.list();
      for (let i = 0; i < names.length; i++) {
        let n = names[i];
        if (n.charAt(n.length - 1) === "~") n = n.substring(0, n.length - 1);
        if (n.substring(0, prefix.length) === prefix && seen[n] !== true) {
          seen[n] = true;
          out.push(n);
        }
      }
      return out;
    },
  };
}

/** Log lines to `print` (the console), at `level` and below. */
export function espruinoLog(level: number): LogSink {
  return { write: (l, line) => { if (l <= level) print((l === 0 ? "E " : l === 1 ? "W " : "I ") + line); } };
}

export interface EspruinoPlatformOptions {
  tls?: { ca?: string; key?: string; cert?: string };
  /** Log level: 0 errors … 3 debug (default 2). */
  logLevel?: number;
  /** Where log lines go instead of print (the app's console); logLevel is then the sink's to apply. */
  log?: LogSink;
  /** Scheduler slice budget, ms (default 50: well under the watchdog). */
  sliceMs?: number;
  /** The Wi-Fi station to join and watch (default: watch the saved one); false: no link. */
  wifi?: EspruinoWifiOptions | false;
}

/**
 * Free JsVars times their size (blocksize bytes: 16 on ESP8266 and ESP32). process.memory(false)
 * skips the garbage collection pass, so it is cheap on every publish; only a figure under the
 * floor is measured again after a collection (garbage is room).
 */
function espruinoFreeHeap(floor?: number): number {
  const pr = global["process"] as { memory?: (this: unknown, gc: boolean) => { free: number; blocksize?: number } } | undefined;
  if (pr === undefined || pr.memory === undefined) return 1073741824;
  let m = pr.memory(false);
  const size = m.blocksize !== undefined ? m.blocksize : 16;
  if (floor !== undefined && m.free * size < floor) m = pr.memory(true);
  return m.free * size;
}

/** The board's Platform for the session: `Petrel.connect(Petrel.espruinoPlatform({}), options)`. */
export function espruinoPlatform(o: EspruinoPlatformOptions): Platform {
  const log = o.log !== undefined ? o.log : espruinoLog(o.logLevel !== undefined ? o.logLevel : 2);
  const slice = o.sliceMs !== undefined ? o.sliceMs : 50;
  const serial = typeof getSerial === "function" ? getSerial() : undefined;
  return {
    clock: espruinoClock,
    sched: new Scheduler(espruinoClock, espruinoTimer(), slice, (task, ms) => log.write(1, `task ${task} ran ${ms} ms`)),
    transport: espruinoTransport(o.tls),
    resolver: espruinoResolver,
    storage: espruinoStorage(),
    log: log,
    random: (n) => Math.floor(Math.random() * n),
    chipId: serial !== undefined ? serial.split("-").join("").substring(0, 12) : "espruino",
    freeHeap: espruinoFreeHeap,
    memory: () => {
      const m = (global["process"] as { memory(): { usage: number; total: number } }).memory();
      return `${m.usage} of ${m.total} variable slots in use`;
    },
    link: o.wifi === false ? undefined : espruinoLink(o.wifi !== undefined ? o.wifi : {}),
  };
}
