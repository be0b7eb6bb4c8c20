import type { Clock, Timer } from "../../firmware/port/clock";
import { after, due, elapsed } from "../../firmware/sched/time";

/**
 * A virtual clock and its one-shot timer, in the firmware dialect so the same scenarios run on
 * every runtime. Time moves only through `advance`, which fires the timer at its due time (and
 * a timer started from inside a callback too, in order), so timing is counted, never slept.
 */
export class VirtualClock {
  t: number;
  /** Timer starts since creation: the scheduler must keep at most one pending. */
  starts = 0;
  /** Set when advance() stopped a timer that kept firing without time passing. */
  runaway = false;
  private armed = false;
  private deadline = 0;
  private fn: ((this: void) => void) | undefined = undefined;
  readonly clock: Clock;
  readonly timer: Timer;

  constructor(start: number) {
    this.t = start;
    this.clock = { clockNow: () => this.t };
    this.timer = {
      armTimer: (ms, fn) => {
        this.starts = this.starts + 1;
        this.armed = true;
        this.deadline = after(this.t, ms);
        this.fn = fn;
      },
      disarmTimer: () => {
        this.armed = false;
      },
    };
  }

  /** Moves time forward by `ms`, firing the timer whenever it comes due. */
  advance(ms: number): void {
    const end = after(this.t, ms);
    let left = ms;
    let firings = 0;
    while (this.armed && elapsed(this.t, this.deadline) <= left) {
      // Bounded: a real event loop lets time pass between zero-delay timers; this one counts them.
      firings = firings + 1;
      if (firings > 100000) {
        this.runaway = true;
        return;
      }
      const step = elapsed(this.t, this.deadline);
      left = left - step;
      this.t = this.deadline;
      this.armed = false;
      const fn = this.fn;
      if (fn !== undefined) fn();
    }
    this.t = end;
  }

  /** Spends time inside a task's step (a slow sensor read). */
  spend(ms: number): void {
    this.t = after(this.t, ms);
  }

  pending(): boolean {
    return this.armed && !due(this.deadline, this.t);
  }
}
