import type { Bytes, Wire } from "../../port/bytes";
import type { Link } from "../../port/link";
import type { LogSink } from "../../port/log";
import { STORAGE_FAILED, STORAGE_FULL, type Storage } from "../../port/storage";
import { find } from "../../port/text";
import type { TransportEvents } from "../../port/transport";
import { Scheduler } from "../../sched/scheduler";
import type { Platform } from "../../session/platform";

/**
 * The Platform on Espruino (ESP32, ESP8266): thin adapters over `net`/`tls`, `Storage`, `Wifi`,
 * the interpreter's timers and clock. No protocol logic lives here. Written with as few function
 * objects as the contracts allow: on the board each one costs variable slots for good.
 */

declare interface EspSocket {
  on(event: string, fn: (x: unknown) => void): void;
  write(data: string): boolean;
  end(): void;
}
declare interface EspNet {
  connect(opts: { host: string; port: number; ca?: string; key?: string; cert?: string }, cb: () => void): EspSocket;
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
declare interface WifiModule {
  on(event: string, fn: () => void): void;
  connect(ssid: string, options: { password?: string }, done: (err?: unknown) => void): void;
  getIP?(): { ip?: string } | undefined;
}

declare const global: { [name: string]: unknown };
declare function getTime(): number;
declare function getSerial(): string | undefined;
declare function setTimeout(fn: () => void, ms: number): number;
declare function clearTimeout(id: number): void;
declare function print(line: string): void;
declare const E: { toUint8Array(s: string): Uint8Array; CRC32(s: string): number };

/**
 * The interpreter's own modules (net, tls, Storage, Wifi). Looked up on `global` at call time: a
 * literal `require("…")` would make the bundler try to bundle the module.
 */
const req = (name: string): unknown => (global["require"] as (n: string) => unknown)(name);

/** A record's seal: its length (2 bytes) and the CRC-32 of its body (4 bytes), so a torn write is seen. */
function seal(body: string): string {
  const n = body.length;
  const c = E.CRC32(body);
  return String.fromCharCode((n >> 8) & 255, n & 255, (c >>> 24) & 255, (c >>> 16) & 255, (c >>> 8) & 255, c & 255);
}

/**
 * Storage over Espruino's flash `Storage`. Flash has no atomic rename, so a record is written as
 * `<key>~` first (complete, with a length and CRC-32 seal), then `<key>` is replaced and
 * `<key>~` erased. `read` takes `<key>~` when it is whole (an update that did not finish), else
 * `<key>`: after a power cut at any step it returns the old record or the new one.
 */
export function espruinoStorage(): Storage {
  const st = req("Storage") as EspStorage;
  return {
    write: (key, data: Wire) => {
      const body = (data as unknown as string) + seal(data as unknown as string);
      const need = body.length * 2 + 64;
      // Erased records stay in flash as trash until Storage compacts, which a write that does
      // not fit does by itself (measured on 2v29): trash counts as room.
      let room = st.getFree();
      if (room < need && st.getStats !== undefined) room = st.getStats().freeBytes + st.getStats().trashBytes;
      if (room < need) return STORAGE_FULL;
      try {
        if (!st.write(key + "~", body)) return STORAGE_FAILED;
        st.erase(key);
        if (!st.write(key, body)) return STORAGE_FAILED;
        st.erase(key + "~");
      } catch (e) {
        return find(String(e), "space") >= 0 ? STORAGE_FULL : STORAGE_FAILED;
      }
      return 0;
    },
    read: (key) => {
      // the newer copy when it is whole, else the record
      for (let k = 0; k < 2; k++) {
        const s = st.read(k === 0 ? key + "~" : key);
        if (s !== undefined && s.length >= 6) {
          const body = s.substring(0, s.length - 6);
          if (s.substring(s.length - 6) === seal(body)) return body as unknown as Wire;
        }
      }
      return undefined;
    },
    remove: (key) => {
      st.erase(key + "~");
      st.erase(key);
    },
    list: (prefix) => {
      const out: string[] = [];
      const names = st.list();
      for (let i = 0; i < names.length; i++) {
        let n = names[i];
        if (n.charAt(n.length - 1) === "~") n = n.substring(0, n.length - 1);
        if (n.substring(0, prefix.length) === prefix && out.indexOf(n) < 0) out.push(n);
      }
      return out;
    },
  };
}

/** Espruino's error text as the session's stable codes ("Connect failed (err 111)" is ECONNREFUSED). */
function closeCode(message: string): string {
  const m = message.toLowerCase();
  if (find(m, "refused") >= 0 || find(m, "err 111") >= 0) return "refused";
  if (find(m, "reset") >= 0 || find(m, "err 104") >= 0) return "reset";
  if (find(m, "timeout") >= 0 || find(m, "timed out") >= 0 || find(m, "err 110") >= 0) return "timeout";
  if (find(m, "not found") >= 0 || find(m, "dns") >= 0) return "not-found";
  if (find(m, "ssl") >= 0 || find(m, "tls") >= 0 || find(m, "certificate") >= 0) return "tls";
  return "io";
}

export interface EspruinoWifiOptions {
  /** Join this network now, and again after each drop. Without it the saved network is used. */
  ssid?: string;
  password?: string;
  /** Ms between rejoin attempts while the station is down [10000]. */
  rejoinMs?: number;
}

/**
 * The Wi-Fi station as the client's Link, over Espruino's `Wifi` module (ESP8266, ESP32):
 * `connected` / `disconnected` events, and a rejoin every `rejoinMs` while down when an SSID is
 * given (a failed join may report no `disconnected`: its callback schedules the next try too).
 * Undefined where the firmware has no Wifi module (the Linux build, wired boards).
 */
function espruinoLink(o: EspruinoWifiOptions): Link | undefined {
  let w: WifiModule;
  try {
    w = req("Wifi") as WifiModule;
  } catch (e) {
    return undefined;
  }
  const ip = w.getIP !== undefined ? w.getIP() : undefined;
  // unknown means up: dialling then decides, as without a link
  const link = { ok: ip === undefined || typeof ip.ip !== "string" || ip.ip !== "0.0.0.0", rejoining: false,
    watcher: undefined as ((this: void, up: boolean) => void) | undefined };
  const ssid = o.ssid;
  /** The station went up or down (`v`); while down, (re)join every rejoinMs. */
  const set = (v: boolean): void => {
    if (v !== link.ok) {
      link.ok = v;
      if (link.watcher !== undefined) link.watcher(v);
    }
    if (v || ssid === undefined || link.rejoining) return;
    link.rejoining = true;
    setTimeout(() => {
      link.rejoining = false;
      if (!link.ok) w.connect(ssid, { password: o.password }, (err) => set(err === undefined || err === null ? link.ok : false));
    }, o.rejoinMs !== undefined ? o.rejoinMs : 10000);
  };
  w.on("connected", () => set(true));
  w.on("disconnected", () => set(false));
  if (ssid !== undefined) w.connect(ssid, { password: o.password }, (err) => set(err === undefined || err === null ? link.ok : false));
  return { up: () => link.ok, watch: (fn) => { link.watcher = fn; } };
}

export interface EspruinoPlatformOptions {
  tls?: { ca?: string; key?: string; cert?: string };
  /** Log level: 0 errors … 3 debug (default 2). */
  logLevel?: number;
  /** Where log lines go instead of print (the app's console); logLevel is then the sink's to apply. */
  log?: LogSink;
  /** The board's storage, where the program made one already (one is enough). */
  storage?: Storage;
  /** Scheduler slice budget, ms (default 50: well under the watchdog). */
  sliceMs?: number;
  /** The Wi-Fi station to join and watch (default: watch the saved one); false: no link. */
  wifi?: EspruinoWifiOptions | false;
}

/**
 * The board's Platform for the session: `Petrel.connect(Petrel.espruinoPlatform({}), options)`.
 *
 * The transport: `net` / `tls`. Data arrives as 8-bit strings in 536-byte (ESP8266: 268) pieces:
 * each becomes a Uint8Array once (E.toUint8Array). A refused connection that `connect` throws at
 * once (ESP32) is reported later, like the asynchronous one (ESP8266). Only the connect callback
 * is used: adding `on('connect')` as well crashes the interpreter. Events reach the session only
 * for the latest open() (port/transport.ts).
 */
export function espruinoPlatform(o: EspruinoPlatformOptions): Platform {
  const level = o.logLevel !== undefined ? o.logLevel : 2;
  const log: LogSink = o.log !== undefined ? o.log : { write: (l, line) => { if (l <= level) print((l === 0 ? "E " : l === 1 ? "W " : "I ") + line); } };
  const serial = typeof getSerial === "function" ? getSerial() : undefined;
  const tls = o.tls;
  // the one timer, and the one connection
  const t = { id: -1, fn: undefined as ((this: void) => void) | undefined };
  const conn = { sock: undefined as EspSocket | undefined, ev: undefined as TransportEvents | undefined, reason: "", asked: false, n: 0 };
  const clock = { now: () => Math.floor(getTime() * 1000) % 2147483648 };
  /** Connection `n` has closed: its onClose, later, unless a newer open() took over. */
  const finish = (n: number): void => {
    const ev = conn.ev;
    if (n !== conn.n || ev === undefined) return;
    conn.ev = undefined;
    conn.sock = undefined;
    const r = conn.asked ? "" : conn.reason !== "" ? conn.reason : "closed";
    setTimeout(() => ev.onClose(r), 0);
  };
  return {
    clock,
    sched: new Scheduler(clock, {
      start: (ms, fn) => {
        if (t.id >= 0) clearTimeout(t.id);
        t.fn = fn;
        t.id = setTimeout(() => {
          t.id = -1;
          (t.fn as (this: void) => void)();
        }, ms);
      },
      stop: () => {
        if (t.id >= 0) clearTimeout(t.id);
        t.id = -1;
      },
    }, o.sliceMs !== undefined ? o.sliceMs : 50, (task, ms) => log.write(1, `task ${task} ran ${ms} ms`)),
    transport: {
      open: (host, port, secure, ev) => {
        const n = conn.n + 1;
        conn.n = n;
        conn.ev = ev;
        conn.reason = "";
        conn.asked = false;
        const opts: { host: string; port: number; ca?: string; key?: string; cert?: string } = { host: host, port: port };
        if (secure && tls !== undefined) {
          opts.ca = tls.ca;
          opts.key = tls.key;
          opts.cert = tls.cert;
        }
        try {
          const s = (req(secure ? "tls" : "net") as EspNet).connect(opts, () => {
            if (n === conn.n && conn.ev !== undefined) conn.ev.onOpen();
          });
          conn.sock = s;
          s.on("data", (d) => {
            if (n === conn.n && conn.ev !== undefined) conn.ev.onData(E.toUint8Array(d as string) as unknown as Bytes);
          });
          s.on("drain", () => {
            if (n === conn.n && conn.ev !== undefined) conn.ev.onWritable();
          });
          s.on("error", (e) => {
            const err = e as { message?: string } | undefined;
            if (n === conn.n && conn.reason === "") conn.reason = closeCode(err !== undefined && err.message !== undefined ? err.message : String(e));
          });
          s.on("close", () => finish(n));
        } catch (e) {
          conn.reason = closeCode(String(e));
          if (conn.reason === "io") conn.reason = "refused";
          finish(n);
        }
      },
      write: (data: Wire) => conn.sock !== undefined && conn.sock.write(data as unknown as string) !== false,
      close: () => {
        if (conn.sock === undefined) return;
        conn.asked = true;
        conn.sock.end();
      },
    },
    // `net` resolves names itself when it connects: the resolver passes the name through
    resolver: { resolve: (host, done) => setTimeout(() => done(host, ""), 0) },
    storage: o.storage !== undefined ? o.storage : espruinoStorage(),
    log,
    random: (n) => Math.floor(Math.random() * n),
    chipId: serial !== undefined ? serial.split("-").join("").substring(0, 12) : "espruino",
    /**
     * Free variables times their size in bytes. process.memory(false) skips the garbage collection
     * pass, so it is cheap on every publish; only a figure under the floor is measured again after
     * a collection (garbage is room).
     */
    freeHeap: (floor) => {
      const pr = global["process"] as { memory?(gc?: boolean): { free: number; blocksize: number } };
      if (pr.memory === undefined) return 1073741824;
      let m = pr.memory(false);
      if (floor !== undefined && m.free * m.blocksize < floor) m = pr.memory(true);
      return m.free * m.blocksize;
    },
    memory: () => {
      const pr = global["process"] as { memory?(): { usage: number; total: number } };
      if (pr.memory === undefined) return "not measured here";
      const m = pr.memory();
      return `${m.usage} of ${m.total} variable slots in use`;
    },
    link: o.wifi === false ? undefined : espruinoLink(o.wifi !== undefined ? o.wifi : {}),
  };
}
