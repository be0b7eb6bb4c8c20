/**
 * Arithmetic on the wrapped 31-bit millisecond clock (port/clock.ts). Every intermediate value
 * stays within 32-bit signed integers, so it is exact on NodeMCU's Lua 5.3 builds too: 2^31
 * itself is never written (`x + MAX + 1` is evaluated left to right and never exceeds MAX).
 */

/** The largest clock value, 2^31-1. */
export const CLOCK_MAX = 2147483647;

/** Durations and distances between times must stay below this, 2^30 ms (about 12.4 days). */
export const HORIZON = 1073741824;

/** Milliseconds from `from` to `to`, going forward through the wrap (0..2^31-1). */
export function elapsed(from: number, to: number): number {
  return to >= from ? to - from : to - from + CLOCK_MAX + 1;
}

/** The time `ms` after `t` (0 <= ms < 2^31), wrapped. */
export function after(t: number, ms: number): number {
  return ms <= CLOCK_MAX - t ? t + ms : ms - (CLOCK_MAX - t) - 1;
}

/** Whether `deadline` has come at `now` (they are less than HORIZON apart). */
export function due(deadline: number, now: number): boolean {
  return elapsed(deadline, now) < HORIZON;
}

/** Milliseconds left until `deadline` at `now`, 0 when it has come. */
export function remaining(deadline: number, now: number): number {
  return due(deadline, now) ? 0 : elapsed(now, deadline);
}
