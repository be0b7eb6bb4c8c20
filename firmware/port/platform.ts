import type { Clock } from "./clock";
import type { Link } from "./link";
import type { LogSink } from "./log";
import type { Storage } from "./storage";
import type { Resolver, Transport } from "./transport";
import type { Scheduler } from "../sched/scheduler";

/**
 * What the session needs from a board (or the host simulator), injected: the core never imports
 * a target. One transport carries one connection at a time; the scheduler is shared with the
 * rest of the firmware (the client adds one task to it).
 */
export interface Platform {
  clock: Clock;
  sched: Scheduler;
  transport: Transport;
  resolver: Resolver;
  storage: Storage;
  log: LogSink;
  /** A random integer 0..n-1 (n ≤ 2^30) for reconnect jitter. Never throws. */
  randomInt(this: void, n: number): number;
  /** The chip or host id the default client id is made from. */
  chipId: string;
  /**
   * Free heap in bytes (NodeMCU's node.heap(), Espruino's free JsVars times their size), where
   * the board can tell; the client refuses new work below `minFreeHeap` instead of running out.
   * Given `floor`, a figure under it is measured again after collecting garbage.
   */
  freeHeap?: (this: void, floor?: number) => number;
  /**
   * What the firmware holds of the board's memory now, after a garbage collection, as the
   * `status` command prints it: "<used> of <total> variable slots in use" (Espruino), "<used>
   * bytes of Lua heap in use, <free> free" (NodeMCU). Where the board can tell.
   */
  memory?: (this: void) => string;
  /** The network link (Wi-Fi), where the board has one: see port/link.ts. */
  link?: Link;
}
