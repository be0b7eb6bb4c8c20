import type { Clock, Timer } from "../../port/clock";
import { LOG_INFO, type LogSink } from "../../port/log";
import type { Storage } from "../../port/storage";
import type { Resolver, Transport } from "../../port/transport";
import { Scheduler } from "../../sched/scheduler";
import { after } from "../../sched/time";
import type { Platform } from "../../port/platform";
import { nodemcuLink, type NodemcuWifiOptions } from "./link";
import { idiv } from "./luaint";
import { nodemcuStorage } from "./storage";
import { later, nodemcuTransport, type NodemcuTlsOptions } from "./transport";

/**
 * The Platform on NodeMCU (ESP8266 Lua 5.1, ESP32 Lua 5.3): thin adapters over `net`, `tmr`,
 * `file`/`io`, `node` and `print`. No protocol logic lives here.
 */

/**
 * A timer's longest single wait. ESP8266's `tmr` refuses more than 6,870,947 ms, and the clock
 * below must read `tmr.now()` at least once per wrap of it (2^31 µs, 35.8 minutes): a longer
 * wait is served in pieces of this size.
 */
export const TIMER_PIECE_MS = 1200000;

/**
 * The µs counter: `tmr.now()`, which wraps at 2^31. Builds without it (some ESP32 ones) have
 * `node.uptime()`, whose first result is taken for the same counter (per its documentation, not
 * measured here).
 */
function microseconds(): (this: void) => number {
  const tm = _G["tmr"] as TmrModule;
  if (tm.now !== undefined) return tm.now;
  return (_G["node"] as NodeModule).uptime as (this: void) => number;
}

/**
 * Milliseconds as the Clock contract wants them (wrapped at 31 bits, only forward) from the µs
 * counter that wraps every 35.8 minutes: each reading adds the µs elapsed since the previous one
 * (through the counter's wrap), carrying the sub-millisecond rest. Every value stays within 32-bit
 * signed integers, so it is exact on the ESP32's 32-bit Lua. It needs a reading at least once per
 * counter wrap, which the timer below guarantees even when the scheduler is idle.
 * `start` is the first reading (default: the µs counter's, in ms).
 */
export function nodemcuClock(start?: number): Clock {
  const us = microseconds();
  let last = us();
  let ms = start !== undefined ? start : idiv(last, 1000);
  let rest = 0;
  return {
    clockNow: () => {
      const t = us();
      let d = t - last;
      if (d < 0) d = d + 2147483647 + 1;
      last = t;
      let q = idiv(d, 1000);
      rest = rest + (d - q * 1000);
      if (rest >= 1000) {
        rest = rest - 1000;
        q = q + 1;
      }
      ms = after(ms, q);
      return ms;
    },
  };
}

/**
 * The Timer contract over one reused `tmr` object. A wait longer than TIMER_PIECE_MS is served
 * in pieces; while stopped, the same timer still fires every TIMER_PIECE_MS only to read the
 * clock (`tick`), so the ms clock never misses a wrap of the µs counter.
 */
export function nodemcuTimer(tick: (this: void) => void): Timer {
  const tm = _G["tmr"] as TmrModule;
  const t = tm.create();
  let fn: ((this: void) => void) | undefined = undefined;
  let left = 0;
  const arm = (ms: number): void => {
    const piece = ms > TIMER_PIECE_MS ? TIMER_PIECE_MS : ms < 1 ? 1 : ms;
    left = ms > piece ? ms - piece : 0;
    t.stop();
    t.alarm(piece, tm.ALARM_SINGLE, fire);
  };
  const fire = (): void => {
    tick();
    if (fn === undefined) {
      arm(TIMER_PIECE_MS);
      return;
    }
    if (left > 0) {
      arm(left);
      return;
    }
    const f = fn;
    fn = undefined;
    f();
    if (fn === undefined) arm(TIMER_PIECE_MS); // nothing started again: keep reading the clock
  };
  arm(TIMER_PIECE_MS);
  return {
    armTimer: (ms, f) => {
      fn = f;
      arm(ms);
    },
    disarmTimer: () => {
      if (fn === undefined) return;
      fn = undefined;
      arm(TIMER_PIECE_MS);
    },
  };
}

function isAddress(host: string): boolean {
  const [at] = string.find(host, "^%d+%.%d+%.%d+%.%d+$", 1, false);
  return at !== undefined;
}

/** `net.dns.resolve` on the board; an IP address is answered as itself, without a query. */
export function nodemcuResolver(): Resolver {
  return {
    lookUp: (host, done) => {
      if (isAddress(host)) {
        later(() => done(host, ""));
        return;
      }
      const net = _G["net"] as NetModule | undefined;
      const [ok] = pcall(() => {
        // ESP8266 calls back (socket, ip); some builds (ip): take the string argument.
        (net as NetModule).dns.resolve(host, (a, b) => {
          const ip = type(b) === "string" ? (b as string) : type(a) === "string" ? (a as string) : "";
          done(ip, ip === "" ? "not-found" : "");
        });
      });
      if (!ok) later(() => done("", "no-network"));
    },
  };
}

const LEVELS = ["E", "W", "I", "D"];

/** Log lines to `print` (the serial console), at `level` and below. */
export function nodemcuLog(level: number): LogSink {
  return {
    writeLog: (l, line) => {
      if (l <= level) print("petrel " + LEVELS[l] + " " + line);
    },
  };
}

export interface NodemcuPlatformOptions {
  /** Prefix of the storage files ("" on ESP8266's SPIFFS). */
  storageDir?: string;
  storage?: Storage;
  transport?: Transport;
  resolver?: Resolver;
  /** Log lines up to this level go to print (0 error … 3 debug) [2]. */
  logLevel?: number;
  log?: LogSink;
  /** The clock's first reading in ms (tests start it near the 31-bit wrap) [from tmr.now()]. */
  clockStart?: number;
  /** [node.chipid()] */
  chipId?: string;
  /** Slice budget of the scheduler, ms [100]. */
  sliceMs?: number;
  /** The Wi-Fi station to configure and watch (default: watch the saved one); false: no link. */
  wifi?: NodemcuWifiOptions | false;
  /** TLS settings for brokers marked `tls` (builds with the tls module). */
  tls?: NodemcuTlsOptions;
}

function chipId(): string {
  const node = _G["node"] as NodeModule | undefined;
  if (node === undefined || node.chipid === undefined) return "nodemcu";
  return tostring(node.chipid());
}

function random(n: number): number {
  const node = _G["node"] as NodeModule | undefined;
  if (n <= 1) return 0;
  if (node !== undefined && node.random !== undefined) return node.random(0, n - 1);
  return math.random(n) - 1;
}

declare function collectgarbage(this: void, opt: string): number;

/**
 * node.heap(): free bytes (a large figure where the build lacks it, so the floor never bites).
 * Under the floor it is read again after a full collection: garbage is room.
 */
function freeHeap(floor?: number): number {
  const node = _G["node"] as NodeModule | undefined;
  if (node === undefined || node.heap === undefined) return 1073741824;
  const n = node.heap();
  if (floor === undefined || n >= floor) return n;
  pcall(() => collectgarbage("collect")); // (a Lua without collector control has nothing to collect)
  return node.heap();
}

/** Builds the Platform the client needs from NodeMCU's modules. */
export function nodemcuPlatform(o?: NodemcuPlatformOptions): Platform {
  const opts: NodemcuPlatformOptions = o !== undefined ? o : {};
  const clock = nodemcuClock(opts.clockStart);
  const log = opts.log !== undefined ? opts.log : nodemcuLog(opts.logLevel !== undefined ? opts.logLevel : LOG_INFO);
  const slice = opts.sliceMs !== undefined ? opts.sliceMs : 100;
  const sched = new Scheduler(clock, nodemcuTimer(() => { clock.clockNow(); }), slice, (task, ms) => {
    log.writeLog(1, "scheduler: task " + task + " ran " + tostring(ms) + " ms (budget " + tostring(slice) + " ms)");
  });
  return {
    clock,
    sched,
    transport: opts.transport !== undefined ? opts.transport : nodemcuTransport(opts.tls),
    resolver: opts.resolver !== undefined ? opts.resolver : nodemcuResolver(),
    storage: opts.storage !== undefined ? opts.storage : nodemcuStorage({ dir: opts.storageDir }),
    log,
    randomInt: random,
    chipId: opts.chipId !== undefined ? opts.chipId : chipId(),
    freeHeap,
    // fengari has no collectgarbage: "unknown" there, never an error
    memory: () => {
      const [ok, kb] = pcall(() => {
        // twice: what the first cycle finalized (timers, sockets) is freed by the second
        collectgarbage("collect");
        collectgarbage("collect");
        return collectgarbage("count");
      });
      const node = _G["node"] as NodeModule | undefined;
      return `${ok ? `${math.floor((kb as number) * 1024)} bytes of Lua heap in use` : "Lua heap unknown"}${node !== undefined && node.heap !== undefined ? `, ${node.heap()} free` : ""}`;
    },
    link: opts.wifi === false ? undefined : nodemcuLink(opts.wifi !== undefined ? opts.wifi : {}),
  };
}
