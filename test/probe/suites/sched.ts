import { IDLE, Scheduler, type Task } from "../../../firmware/sched/scheduler";
import { elapsed } from "../../../firmware/sched/time";
import { argInt, register } from "../probe";
import { VirtualClock } from "../virtual-clock";

// Scheduler scenarios on every runtime, on a virtual clock that starts 1.5 s before the wrap.
// Each returns a trace; times are milliseconds since the scenario started.

const START = 2147482147;

class Recorder implements Task {
  runs: number[] = [];
  constructor(readonly name: string, private readonly vc: VirtualClock, private readonly every: number,
    private readonly budget: number, private readonly spend: number) {}
  step(now: number): number {
    this.runs[this.runs.length] = elapsed(START, now);
    if (this.spend > 0) this.vc.spend(this.spend);
    if (this.runs.length >= this.budget) return IDLE;
    return this.every;
  }
}

const join = (xs: number[]) => {
  let s = "";
  for (let k = 0; k < xs.length; k++) s = s + (k > 0 ? "," : "") + xs[k];
  return s;
};

/** A task that records a shared log and wakes itself once from inside its own step. */
class SelfWaker implements Task {
  readonly name = "self";
  runs: number[] = [];
  index = 0;
  constructor(private readonly s: Scheduler) {}
  step(now: number): number {
    this.runs[this.runs.length] = elapsed(START, now);
    if (this.runs.length === 1) this.s.wake(this.index);
    return 5000;
  }
}

/** Two always-busy tasks: the order they ran in shows fairness. */
class Busy implements Task {
  left: number;
  constructor(readonly name: string, private readonly log: string[], n: number) {
    this.left = n;
  }
  step(): number {
    this.log[this.log.length] = this.name;
    this.left = this.left - 1;
    return this.left > 0 ? 0 : IDLE;
  }
}

register("sched.scenario", (a) => {
  const n = argInt(a[0]);
  const vc = new VirtualClock(START);
  let overruns = "";
  const s = new Scheduler(vc.clock, vc.timer, 50, (task, ms) => {
    overruns = overruns + task + ":" + ms + ";";
  });
  if (n === 1) {
    // Periodic tasks across the wrap: exact times, one timer.
    const a1 = new Recorder("a", vc, 1000, 1000, 0);
    const b1 = new Recorder("b", vc, 300, 1000, 0);
    s.enqueue(a1, 0);
    s.enqueue(b1, 0);
    vc.advance(5000);
    return "a=" + join(a1.runs) + " b=" + join(b1.runs) + " pending=" + (vc.pending() ? 1 : 0) + " passes=" + s.passes;
  }
  if (n === 2) {
    // An idle task runs only when woken; a finished task stops the timer.
    const c = new Recorder("c", vc, 0, 1, 0);
    const k = s.enqueue(c, 0);
    vc.advance(100);
    const afterFirst = join(c.runs);
    vc.advance(400);
    s.wake(k);
    vc.advance(1000);
    return "runs=" + join(c.runs) + " first=" + afterFirst + " pending=" + (vc.pending() ? 1 : 0) + " next=" + s.nextIn();
  }
  if (n === 3) {
    // Busy tasks take turns, one slice each per pass.
    const log: string[] = [];
    s.enqueue(new Busy("d", log, 3), 0);
    s.enqueue(new Busy("e", log, 3), 0);
    vc.advance(10);
    return "order=" + log.join(",") + " passes=" + s.passes + " runaway=" + (vc.runaway ? 1 : 0);
  }
  if (n === 4) {
    // A slow slice is reported with its task and length.
    s.enqueue(new Recorder("slow", vc, 1000, 2, 80), 0);
    s.enqueue(new Recorder("quick", vc, 1000, 2, 10), 0);
    vc.advance(3000);
    return "overruns=" + s.overruns + " " + overruns;
  }
  if (n === 5) {
    // A wake from inside the task's own step outranks its answer.
    const w = new SelfWaker(s);
    w.index = s.enqueue(w, 0);
    vc.advance(6000);
    return "runs=" + join(w.runs);
  }
  return "!no-scenario";
});
