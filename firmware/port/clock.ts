/**
 * Time, as the platform gives it to the firmware.
 *
 * Clock: `now()` is milliseconds as a wrapped 31-bit integer, 0..2^31-1, that only moves
 * forward and wraps to 0 after 2^31-1 (about 24.8 days). Never a growing float: NodeMCU's 32-bit
 * Lua cannot hold one, and single-precision floats lose milliseconds after 4.6 hours. Compare
 * times only through `elapsed`/`after`/`due` (sched/time.ts), which survive the wrap.
 * It must never throw, block or allocate.
 *
 * Timer: one one-shot timer. `start(ms, fn)` replaces any pending start and calls `fn` once,
 * no sooner than `ms` later, from the platform's event loop (never from inside `start`); `stop()`
 * cancels. Boards have few hardware timers, so the firmware owns exactly one and the scheduler
 * multiplexes it. Neither call may throw.
 */
export interface Clock {
  clockNow(this: void): number;
}

export interface Timer {
  armTimer(this: void, ms: number, fn: (this: void) => void): void;
  disarmTimer(this: void): void;
}
