import type { Clock, Timer } from "../port/clock";
import { after, due, elapsed, remaining } from "./time";

/** A task's answer when it has nothing to do until `wake()`. */
export const IDLE = -1;

/**
 * A unit of cooperative work: `step` runs one short slice to completion and says when it next
 * wants to run (ms from now, 0 = as soon as others had their turn) or IDLE.
 */
export interface Task {
  readonly name: string;
  step(now: number): number;
}

/** Called when a task's slice ran longer than the budget (a board's watchdog would bite). */
export type OverrunHandler = (this: void, task: string, ms: number) => void;

/**
 * The cooperative scheduler. Tasks run to completion in short slices and say when they next need
 * to run; the scheduler keeps one platform timer armed for the earliest deadline (boards have few
 * timers) and returns to the platform's event loop after every pass, so it never blocks it.
 * In one pass each due task runs at most once, in the order added: a task that always wants to
 * run again cannot starve the others. A slice longer than `sliceMs` is counted and reported.
 */
/** A task's modes (Scheduler.mode). */
const WAITING = 0;
const IDLE_MODE = 1;
const WOKEN = 2;

export class Scheduler {
  /** Slices that ran longer than `sliceMs`, since start. */
  overruns = 0;
  /** Passes run, since start. */
  passes = 0;

  private readonly tasks: Task[] = [];
  private readonly deadlines: number[] = [];
  /**
   * Each task's mode: WAITING (runs at its deadline), IDLE_MODE (until woken), WOKEN (due now; set by
   * wake(), which outranks the answer of a step it interrupts). Numbers, not two flag arrays: on
   * Espruino an array element that is a small number takes one variable slot, a boolean three.
   */
  private readonly mode: number[] = [];
  private count = 0;
  /** 0/1, not a boolean: on Espruino a boolean value takes a variable slot of its own, a small number none. */
  private running = 0;
  private readonly onTimer: (this: void) => void;
  /** What later() was given, to run at the start of the next pass. */
  private soon: ((this: void) => void)[] = [];

  constructor(private readonly clock: Clock, private readonly timer: Timer, private readonly sliceMs: number,
    private readonly onOverrun: OverrunHandler | undefined) {
    this.onTimer = () => this.pass();
  }

  /** Adds a task that first runs `delayMs` from now. Returns its index. */
  enqueue(task: Task, delayMs: number): number {
    const k = this.count;
    this.tasks[k] = task;
    this.deadlines[k] = after(this.clock.clockNow(), delayMs);
    this.mode[k] = WAITING;
    this.count = k + 1;
    this.arm();
    return k;
  }

  /**
   * Runs `fn` once, at the start of the next pass: out of the caller's stack. A callback deep in
   * a network read hands work on this way (a command that arrived, and its reply), so that on a
   * small board the read's buffers and frames are gone before it runs.
   */
  later(fn: (this: void) => void): void {
    this.soon.push(fn);
    this.arm();
  }

  /** Makes an idle or waiting task due now (new data arrived, a queue got room, …). */
  wake(k: number): void {
    this.deadlines[k] = this.clock.clockNow();
    this.mode[k] = WOKEN;
    this.arm();
  }

  /** Stops running a task until it is woken again (its index stays taken). */
  cancel(k: number): void {
    this.mode[k] = IDLE_MODE;
    this.arm();
  }

  /** Milliseconds until the earliest deadline, or IDLE when every task is idle. */
  nextIn(): number {
    if (this.soon.length > 0) return 0;
    const now = this.clock.clockNow();
    let best = IDLE;
    for (let k = 0; k < this.count; k++) {
      if (this.mode[k] !== IDLE_MODE) {
        const r = remaining(this.deadlines[k], now);
        if (best === IDLE || r < best) best = r;
      }
    }
    return best;
  }

  /** One pass: every task that is due runs one slice. Called by the timer. */
  pass(): void {
    this.running = 1;
    this.passes = this.passes + 1;
    // (what they hand on in turn waits for the next pass)
    const soon = this.soon;
    if (soon.length > 0) {
      this.soon = [];
      for (const fn of soon) fn();
    }
    const start = this.clock.clockNow();
    for (let k = 0; k < this.count; k++) {
      if (this.mode[k] !== IDLE_MODE && due(this.deadlines[k], start)) {
        const t0 = this.clock.clockNow();
        this.mode[k] = WAITING;
        const next = this.tasks[k].step(t0);
        const t1 = this.clock.clockNow();
        const spent = elapsed(t0, t1);
        if (spent > this.sliceMs) {
          this.overruns = this.overruns + 1;
          if (this.onOverrun !== undefined) this.onOverrun(this.tasks[k].name, spent);
        }
        const m = this.mode[k];
        if (m === WOKEN) this.mode[k] = WAITING; // woken during its own step: due again now (wake set the deadline)
        else if (m === WAITING) {
          if (next === IDLE) this.mode[k] = IDLE_MODE;
          else this.deadlines[k] = after(t1, next);
        }
      }
    }
    this.running = 0;
    this.arm();
  }

  /** Arms the one timer for the earliest deadline (not while a pass runs: it re-arms at its end). */
  private arm(): void {
    if (this.running === 1) return;
    const next = this.nextIn();
    if (next === IDLE) this.timer.disarmTimer();
    else this.timer.armTimer(next, this.onTimer);
  }
}
