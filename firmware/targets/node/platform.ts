/**
 * The Platform (firmware/port/platform.ts) on Node: the host simulator's board. Sockets,
 * a table resolver (no DNS off the machine), file or RAM storage, a wrapped 31-bit clock that
 * can start anywhere (near its wrap, to prove the arithmetic), one timer, and the scheduler.
 */
import * as os from "node:os";
import "./index";
import type { Clock, Timer } from "../../port/clock";
import type { Link } from "../../port/link";
import { LOG_DEBUG, type LogSink } from "../../port/log";
import type { Storage } from "../../port/storage";
import type { Resolver, Transport } from "../../port/transport";
import { Scheduler } from "../../sched/scheduler";
import { CLOCK_MAX } from "../../sched/time";
import type { Platform } from "../../port/platform";
import { tableResolver } from "./resolver";
import { fileStorage, memoryStorage } from "./storage";
import { nodeTransport, type TlsSettings } from "./transport";

export interface NodePlatformOptions {
  /** Directory of the storage records (the board's flash); RAM when absent. */
  storageDir?: string;
  storage?: Storage;
  tls?: TlsSettings;
  /** Host name → address for the resolver. */
  hosts?: Record<string, string>;
  transport?: Transport;
  /** Source address of the board's connections (nodeTransport). */
  localAddress?: string;
  resolver?: Resolver;
  /** Where log lines go; `level` filters (0 error … 3 debug). Default: none. */
  log?: (level: number, line: string) => void;
  logLevel?: number;
  /** The clock's first reading (ms, wrapped to 31 bits). Default: a random point. */
  clockStart?: number;
  chipId?: string;
  /** Slice budget of the scheduler, ms. */
  sliceMs?: number;
  /** A simulated network link (the host has no Wi-Fi of its own): see simulatedLink. */
  link?: Link;
  /** Free heap the client sees (a board's figure, for the low-memory floor). */
  freeHeap?: () => number;
}

/** A network link the simulator switches: set(false) is a Wi-Fi drop, set(true) its return. */
export function simulatedLink(): Link & { set(up: boolean): void } {
  let up = true;
  let watcher: ((up: boolean) => void) | undefined;
  return {
    isUp: () => up,
    watchLink: (fn) => (watcher = fn),
    set: (v) => {
      if (v === up) return;
      up = v;
      // from the event loop, as a firmware's Wi-Fi event
      setImmediate(() => watcher?.(v));
    },
  };
}

/** A class, as the timer and the log below: one per board, methods on the prototype. */
class NodeClock implements Clock {
  private readonly t0 = performance.now();
  constructor(private readonly start: number) {}
  clockNow(): number {
    return (this.start + Math.floor(performance.now() - this.t0)) % (CLOCK_MAX + 1);
  }
}

export function nodeClock(start: number): Clock {
  return new NodeClock(start);
}

/** setTimeout's callback for every NodeTimer (given the timer: no closure per start). */
function fire(t: NodeTimer): void {
  t.handle = null;
  const fn = t.fn;
  t.fn = undefined;
  fn?.();
}

class NodeTimer implements Timer {
  handle: NodeJS.Timeout | null = null;
  fn: (() => void) | undefined = undefined;
  armTimer(ms: number, fn: () => void): void {
    if (this.handle !== null) clearTimeout(this.handle);
    this.fn = fn;
    this.handle = setTimeout(fire, ms, this);
  }
  disarmTimer(): void {
    if (this.handle !== null) clearTimeout(this.handle);
    this.handle = null;
    this.fn = undefined;
  }
}

export function nodeTimer(): Timer {
  return new NodeTimer();
}

class FilteredLog implements LogSink {
  constructor(private readonly level: number, private readonly sink: ((level: number, line: string) => void) | undefined) {}
  writeLog(l: number, line: string): void {
    if (this.sink && l <= this.level) this.sink(l, line);
  }
}

const random = (n: number): number => Math.floor(Math.random() * n);
/** The resolver of a platform given no host table: one for all of them. */
let plainResolver: Resolver | undefined;

export function nodePlatform(o: NodePlatformOptions = {}): Platform & { overruns: string[] } {
  const clock = nodeClock(o.clockStart ?? Math.floor(Math.random() * CLOCK_MAX));
  const log: LogSink = new FilteredLog(o.logLevel ?? LOG_DEBUG, o.log);
  const overruns: string[] = [];
  const sched = new Scheduler(clock, nodeTimer(), o.sliceMs ?? 100, (task, ms) => {
    overruns.push(`${task} ${ms} ms`);
    log.writeLog(1, `scheduler: task ${task} ran ${ms} ms (budget ${o.sliceMs ?? 100} ms)`);
  });
  return {
    clock,
    sched,
    transport: o.transport ?? nodeTransport(o.tls, o.localAddress),
    resolver: o.resolver ?? (o.hosts !== undefined ? tableResolver(o.hosts) : (plainResolver ??= tableResolver())),
    storage: o.storage ?? (o.storageDir !== undefined ? fileStorage(o.storageDir) : memoryStorage()),
    log,
    randomInt: random,
    chipId: o.chipId ?? os.hostname().replace(/[^A-Za-z0-9]/g, "").slice(0, 12),
    link: o.link,
    freeHeap: o.freeHeap,
    overruns,
  };
}
