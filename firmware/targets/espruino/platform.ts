import type { Bytes, Wire } from "../../port/bytes";
import type { Clock, Timer } from "../../port/clock";
import type { Link } from "../../port/link";
import type { LogSink } from "../../port/log";
import { STORAGE_FAILED, STORAGE_FULL, type Storage } from "../../port/storage";
import { find } from "../../port/text";
import type { Resolver, Transport, TransportEvents } from "../../port/transport";
import { Scheduler } from "../../sched/scheduler";
import type { Platform } from "../../port/platform";

/**
 * The Platform on Espruino (ESP32, ESP8266): thin adapters over `net`/`tls`, `Storage`, `Wifi`,
 * the interpreter's timers and clock. No protocol logic lives here.
 *
 * A board runs one platform, so its state lives in this module; the adapters the session calls
 * are the methods of one object (EspruinoBoard), the callbacks given to the interpreter top-level
 * functions: on the board a function made inside another costs about twice the variable slots of
 * one at the top level (it keeps its scope), and each costs them for as long as it exists. A
 * second espruinoPlatform() replaces the first. Socket events reach these functions with the
 * socket as `this`: events of a socket other than the current one are dropped.
 */

declare interface EspSocket {
  on(event: string, fn: (this: EspSocket, x: unknown) => void): void;
  write(data: string): boolean;
  end(): void;
}
declare interface EspNet {
  connect(opts: { host: string; port: number; ca?: string; key?: string; cert?: string }, cb: (this: EspSocket) => void): EspSocket;
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
declare interface EspProcess {
  memory?(gc?: boolean): { free: number; usage: number; total: number; blocksize: number };
}

declare const global: { [name: string]: unknown };
declare function getTime(): number;
declare function getSerial(): string | undefined;
declare function setTimeout(fn: Function, ms: number, a?: unknown, b?: unknown): number;
declare function clearTimeout(id: number): void;
declare function print(line: string): void;
declare const E: { toUint8Array(s: string): Uint8Array; CRC32(s: string): number };

/**
 * The interpreter's own modules (net, tls, Storage, Wifi). Looked up on `global` at call time: a
 * literal `require("…")` would make the bundler try to bundle the module.
 */
function req(name: string): unknown {
  return (global["require"] as (n: string) => unknown)(name);
}

// ---- Storage

/** A record's seal: its length (2 bytes) and the CRC-32 of its body (4 bytes), so a torn write is seen. */
function seal(body: string): string {
  const n = body.length;
  const c = E.CRC32(body);
  return String.fromCharCode((n >> 8) & 255, n & 255, (c >>> 24) & 255, (c >>> 16) & 255, (c >>> 8) & 255, c & 255);
}

function flash(): EspStorage {
  return req("Storage") as EspStorage;
}


/**
 * Storage over Espruino's flash `Storage`. Flash has no atomic rename, so a record is written as
 * `<key>~` first (complete, with a length and CRC-32 seal), then `<key>` is replaced and
 * `<key>~` erased. `read` takes `<key>~` when it is whole (an update that did not finish), else
 * `<key>`: after a power cut at any step it returns the old record or the new one.
 */
export function espruinoStorage(): Storage {
  return BOARD;
}

// ---- The connection

/** The current socket; why it closed (a session code); whether we asked; its events. */
const conn = { sock: undefined as EspSocket | undefined, ev: undefined as TransportEvents | undefined, reason: "", asked: false };

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

/** The current connection has ended: its onClose, later (never from inside open() or close()). */
function finish(): void {
  const ev = conn.ev;
  if (ev === undefined) return;
  conn.ev = undefined;
  conn.sock = undefined;
  setTimeout(ev.onClose, 0, conn.asked ? "" : conn.reason !== "" ? conn.reason : "closed");
}

function sockOpen(this: EspSocket): void {
  if (this === conn.sock && conn.ev !== undefined) conn.ev.onOpen();
}

function sockData(this: EspSocket, d: unknown): void {
  if (this === conn.sock && conn.ev !== undefined) conn.ev.onData(E.toUint8Array(d as string) as unknown as Bytes);
}

function sockDrain(this: EspSocket): void {
  if (this === conn.sock && conn.ev !== undefined) conn.ev.onWritable();
}

function sockError(this: EspSocket, e: unknown): void {
  const err = e as { message?: string } | undefined;
  if (this === conn.sock && conn.reason === "") conn.reason = closeCode(err !== undefined && err.message !== undefined ? err.message : String(e));
}

function sockClose(this: EspSocket): void {
  if (this === conn.sock) finish();
}


// ---- Time, log, memory

/** The options of the current platform, and its one timer. */
const state = {
  tls: undefined as { ca?: string; key?: string; cert?: string } | undefined,
  level: 2,
  timer: -1,
  fire: undefined as ((this: void) => void) | undefined,
  log: undefined as LogSink | undefined,
};

function tick(): void {
  state.timer = -1;
  (state.fire as (this: void) => void)();
}


function overrun(task: string, ms: number): void {
  (state.log as LogSink).writeLog(1, `task ${task} ran ${ms} ms`);
}



function random(n: number): number {
  return Math.floor(Math.random() * n);
}

function pr(): EspProcess {
  return global["process"] as EspProcess;
}

/**
 * Free variables times their size in bytes. process.memory(false) skips the garbage collection
 * pass, so it is cheap on every publish; only a figure under the floor is measured again after a
 * collection (garbage is room).
 */
function freeHeap(floor?: number): number {
  const p = pr();
  if (p.memory === undefined) return 1073741824;
  let m = p.memory(false);
  if (floor !== undefined && m.free * m.blocksize < floor) m = p.memory(true);
  return m.free * m.blocksize;
}

function memory(): string {
  const p = pr();
  if (p.memory === undefined) return "not measured here";
  const m = p.memory();
  return `${m.usage} of ${m.total} variable slots in use`;
}

// ---- Wi-Fi

export interface EspruinoWifiOptions {
  /** Join this network now, and again after each drop. Without it the saved network is used. */
  ssid?: string;
  password?: string;
  /** Ms between rejoin attempts while the station is down [10000]. */
  rejoinMs?: number;
}

/** The station: up, rejoining, its watcher, and what to join. */
const wifi = { ok: true, rejoining: false, watcher: undefined as ((this: void, up: boolean) => void) | undefined, o: {} as EspruinoWifiOptions };

function wifiJoin(): void {
  const o = wifi.o;
  (req("Wifi") as WifiModule).connect(o.ssid as string, { password: o.password }, wifiJoined);
}

function wifiJoined(err?: unknown): void {
  wifiSet(err === undefined || err === null ? wifi.ok : false);
}

function wifiRejoin(): void {
  wifi.rejoining = false;
  if (!wifi.ok) wifiJoin();
}

/** The station went up or down (`v`); while down, (re)join every rejoinMs when an SSID is given. */
function wifiSet(v: boolean): void {
  if (v !== wifi.ok) {
    wifi.ok = v;
    if (wifi.watcher !== undefined) wifi.watcher(v);
  }
  if (v || wifi.o.ssid === undefined || wifi.rejoining) return;
  wifi.rejoining = true;
  setTimeout(wifiRejoin, wifi.o.rejoinMs !== undefined ? wifi.o.rejoinMs : 10000);
}

function wifiUp(): void {
  wifiSet(true);
}

function wifiDown(): void {
  wifiSet(false);
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
  wifi.ok = ip === undefined || typeof ip.ip !== "string" || ip.ip !== "0.0.0.0";
  wifi.o = o;
  w.on("connected", wifiUp);
  w.on("disconnected", wifiDown);
  if (o.ssid !== undefined) wifiJoin();
  return BOARD;
}

/**
 * Every adapter the session calls (Storage, Transport, Resolver, Clock, Timer, LogSink, Link) as
 * the methods of one object: the board build merges a class's methods into one function
 * (tools/espruino-merge.mjs), where adapters in object literals would each keep a function of
 * their own (about four variable slots apiece, for good). The state stays in this module; no
 * method depends on `this`.
 */
class EspruinoBoard implements Storage, Transport, Resolver, Clock, Timer, LogSink, Link {
  /**
   * Storage over Espruino's flash `Storage` (see espruinoStorage). Erased records stay in flash as
   * trash until Storage compacts, which a write that does not fit does by itself (measured on
   * 2v29): trash counts as room.
   */
  putRecord(key: string, data: Wire): number {
    const st = flash();
    const body = (data as unknown as string) + seal(data as unknown as string);
    const need = body.length * 2 + 64;
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
  }

  getRecord(key: string): Wire | undefined {
    // the newer copy when it is whole, else the record
    for (let k = 0; k < 2; k++) {
      const s = flash().read(k === 0 ? key + "~" : key);
      if (s !== undefined && s.length >= 6) {
        const body = s.substring(0, s.length - 6);
        if (s.substring(s.length - 6) === seal(body)) return body as unknown as Wire;
      }
    }
    return undefined;
  }

  dropRecord(key: string): void {
    flash().erase(key + "~");
    flash().erase(key);
  }

  listRecords(prefix: string): string[] {
    const out: string[] = [];
    const names = flash().list();
    for (let i = 0; i < names.length; i++) {
      let n = names[i];
      if (n.charAt(n.length - 1) === "~") n = n.substring(0, n.length - 1);
      if (n.substring(0, prefix.length) === prefix && out.indexOf(n) < 0) out.push(n);
    }
    return out;
  }

  /**
   * `net` / `tls`. Data arrives as 8-bit strings in 536-byte (ESP8266: 268) pieces: each becomes a
   * Uint8Array once (E.toUint8Array). A refused connection that `connect` throws at once (ESP32) is
   * reported later, like the asynchronous one (ESP8266). Only the connect callback is used: adding
   * `on('connect')` as well crashes the interpreter.
   */
  openStream(host: string, port: number, secure: boolean, ev: TransportEvents): void {
    // a socket still open is forgotten: its events no longer match conn.sock
    conn.sock = undefined;
    conn.ev = ev;
    conn.reason = "";
    conn.asked = false;
    const opts: { host: string; port: number; ca?: string; key?: string; cert?: string } = { host: host, port: port };
    const tls = state.tls;
    if (secure && tls !== undefined) {
      opts.ca = tls.ca;
      opts.key = tls.key;
      opts.cert = tls.cert;
    }
    try {
      const s = (req(secure ? "tls" : "net") as EspNet).connect(opts, sockOpen);
      conn.sock = s;
      s.on("data", sockData);
      s.on("drain", sockDrain);
      s.on("error", sockError);
      s.on("close", sockClose);
    } catch (e) {
      conn.reason = closeCode(String(e));
      if (conn.reason === "io") conn.reason = "refused";
      finish();
    }
  }

  sendWire(data: Wire): boolean {
    return conn.sock !== undefined && conn.sock.write(data as unknown as string) !== false;
  }

  hangUp(): void {
    if (conn.sock === undefined) return;
    conn.asked = true;
    conn.sock.end();
  }

  // `net` resolves names itself when it connects: the resolver passes the name through
  lookUp(host: string, done: (this: void, address: string, error: string) => void): void {
    setTimeout(done, 0, host, "");
  }

  clockNow(): number {
    return Math.floor(getTime() * 1000) % 2147483648;
  }

  disarmTimer(): void {
    if (state.timer >= 0) clearTimeout(state.timer);
    state.timer = -1;
  }

  armTimer(ms: number, fn: (this: void) => void): void {
    if (state.timer >= 0) clearTimeout(state.timer);
    state.fire = fn;
    state.timer = setTimeout(tick, ms);
  }

  writeLog(l: number, line: string): void {
    if (l <= state.level) print((l === 0 ? "E " : l === 1 ? "W " : "I ") + line);
  }

  isUp(): boolean {
    return wifi.ok;
  }

  watchLink(fn: (this: void, up: boolean) => void): void {
    wifi.watcher = fn;
  }
}

const BOARD = new EspruinoBoard();

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
 * The board's Platform for the session: `Petrel.connect(Petrel.espruinoPlatform({}), options)`.
 * Events reach the session only for the latest open() (port/transport.ts).
 */
export function espruinoPlatform(o: EspruinoPlatformOptions): Platform {
  state.tls = o.tls;
  state.level = o.logLevel !== undefined ? o.logLevel : 2;
  const log = o.log !== undefined ? o.log : BOARD;
  state.log = log;
  const serial = typeof getSerial === "function" ? getSerial() : undefined;
  return {
    clock: BOARD,
    sched: new Scheduler(BOARD, BOARD, o.sliceMs !== undefined ? o.sliceMs : 50, overrun),
    transport: BOARD,
    resolver: BOARD,
    storage: BOARD,
    log,
    randomInt: random,
    chipId: serial !== undefined ? serial.split("-").join("").substring(0, 12) : "espruino",
    freeHeap: freeHeap,
    memory: memory,
    link: o.wifi === false ? undefined : espruinoLink(o.wifi !== undefined ? o.wifi : {}),
  };
}
