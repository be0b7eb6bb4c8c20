import "../firmware/targets/node/index";
import { describe, expect, it } from "vitest";
import type { Timer } from "../firmware/port/clock";
import { IDLE, Scheduler, type OverrunHandler, type Task } from "../firmware/sched/scheduler";
import { after, CLOCK_MAX, due, elapsed, HORIZON, remaining } from "../firmware/sched/time";
import { VirtualClock } from "./probe/virtual-clock";

// The scheduler and the wrapped clock in-process, from source, on the virtual clock: every branch,
// with exact times and orders. (sched.test.ts runs the same scheduler built, on every runtime.)

/** A scheduler on a virtual clock whose timer calls are logged ("start <ms>", "stop"). */
function rig(start: number, sliceMs = 50, onOverrun?: OverrunHandler) {
  const vc = new VirtualClock(start);
  const calls: string[] = [];
  const timer: Timer = {
    armTimer: (ms, fn) => {
      calls.push(`start ${ms}`);
      vc.timer.armTimer(ms, fn);
    },
    disarmTimer: () => {
      calls.push("stop");
      vc.timer.disarmTimer();
    },
  };
  const s = new Scheduler(vc.clock, timer, sliceMs, onOverrun);
  return { vc, s, calls };
}

/** A task whose step is `body`; each run is logged as "name@ms since `base`". */
function task(name: string, log: string[], base: number, body: (now: number, run: number) => number): Task & { nows: number[] } {
  const nows: number[] = [];
  return {
    name,
    nows,
    step(now: number): number {
      nows.push(now);
      log.push(`${name}@${elapsed(base, now)}`);
      return body(now, nows.length);
    },
  };
}

describe("sched/time: the wrapped 31-bit clock", () => {
  it("elapsed goes forward, through the wrap", () => {
    expect(elapsed(5, 10)).toBe(5);
    expect(elapsed(7, 7)).toBe(0);
    expect(elapsed(CLOCK_MAX, 0)).toBe(1);
    expect(elapsed(CLOCK_MAX - 10, 5)).toBe(16);
    expect(elapsed(1, 0)).toBe(CLOCK_MAX);
  });

  it("after wraps past 2^31-1 and lands exactly on it", () => {
    expect(after(10, 5)).toBe(15);
    expect(after(CLOCK_MAX - 5, 5)).toBe(CLOCK_MAX);
    expect(after(CLOCK_MAX, 1)).toBe(0);
    expect(after(CLOCK_MAX - 3, 10)).toBe(6);
    expect(after(0, CLOCK_MAX)).toBe(CLOCK_MAX);
  });

  it("due holds from the deadline on, for less than HORIZON", () => {
    expect(due(100, 100)).toBe(true);
    expect(due(100, 99)).toBe(false);
    expect(due(CLOCK_MAX, 0)).toBe(true);
    expect(due(0, CLOCK_MAX)).toBe(false);
    expect(due(0, HORIZON - 1)).toBe(true);
    expect(due(0, HORIZON)).toBe(false);
  });

  it("remaining is 0 once due, else the distance, across the wrap", () => {
    expect(remaining(100, 100)).toBe(0);
    expect(remaining(100, 150)).toBe(0);
    expect(remaining(100, 40)).toBe(60);
    expect(remaining(5, CLOCK_MAX - 4)).toBe(10);
  });
});

describe("sched/scheduler in-process", () => {
  it("runs periodic tasks at exact times across the wrap, in the order added within a pass", () => {
    const START = CLOCK_MAX - 999; // the clock wraps to 0 at +1000 ms
    const { vc, s } = rig(START);
    const log: string[] = [];
    const a = task("a", log, START, () => 1000);
    const b = task("b", log, START, () => 300);
    expect(s.enqueue(a, 0)).toBe(0);
    expect(s.enqueue(b, 200)).toBe(1);
    vc.advance(2500);
    expect(log).toEqual(["a@0", "b@200", "b@500", "b@800", "a@1000", "b@1100", "b@1400", "b@1700", "a@2000", "b@2000", "b@2300"]);
    expect(a.nows).toEqual([START, 0, 1000]);
    expect(s.passes).toBe(10);
    expect(s.overruns).toBe(0);
    expect(vc.t).toBe(1500);
    expect(s.nextIn()).toBe(100); // b at 2600, a at 3000
    expect(vc.pending()).toBe(true);
  });

  it("runs a 1 ms task on every millisecond through 2^31-1 and 0", () => {
    const { vc, s } = rig(CLOCK_MAX - 2);
    const t = task("tick", [], 0, () => 1);
    s.enqueue(t, 0);
    vc.advance(5);
    expect(t.nows).toEqual([CLOCK_MAX - 2, CLOCK_MAX - 1, CLOCK_MAX, 0, 1, 2]);
    expect(s.passes).toBe(6);
  });

  it("keeps a deadline across the wrap, and one just under HORIZON away", () => {
    const START = CLOCK_MAX - 10;
    const { vc, s } = rig(START);
    const log: string[] = [];
    s.enqueue(task("late", log, START, () => IDLE), 100);
    expect(s.nextIn()).toBe(100);
    vc.advance(99);
    expect(log).toEqual([]);
    expect(s.nextIn()).toBe(1);
    vc.advance(1);
    expect(log).toEqual(["late@100"]);
    expect(vc.t).toBe(89);
    s.enqueue(task("far", log, START, () => IDLE), HORIZON - 1);
    expect(s.nextIn()).toBe(HORIZON - 1);
  });

  it("nextIn is IDLE with no tasks or all idle, else the earliest remaining, 0 when overdue", () => {
    const { vc, s } = rig(1000);
    expect(s.nextIn()).toBe(IDLE);
    const noop = (n: string) => task(n, [], 0, () => IDLE);
    s.enqueue(noop("x"), 500);
    s.enqueue(noop("y"), 200);
    s.enqueue(noop("z"), 800);
    expect(s.nextIn()).toBe(200);
    s.cancel(1);
    expect(s.nextIn()).toBe(500);
    vc.spend(600); // time passes without the timer firing
    expect(s.nextIn()).toBe(0);
    s.cancel(0);
    expect(s.nextIn()).toBe(200); // z, due at 800 after the start
    s.cancel(2);
    expect(s.nextIn()).toBe(IDLE);
  });

  it("keeps the one timer armed for the earliest deadline and stops it when all are idle", () => {
    const { vc, s, calls } = rig(1000);
    const log: string[] = [];
    s.enqueue(task("a", log, 1000, () => 500), 500);
    s.enqueue(task("b", log, 1000, () => IDLE), 200);
    expect(calls).toEqual(["start 500", "start 200"]);
    s.cancel(1);
    s.cancel(0);
    expect(calls).toEqual(["start 500", "start 200", "start 500", "stop"]);
    expect(vc.pending()).toBe(false);
    vc.advance(1000);
    expect(log).toEqual([]);
    s.wake(1);
    expect(calls.slice(4)).toEqual(["start 0"]);
    vc.advance(0);
    expect(log).toEqual(["b@1000"]);
    expect(calls.slice(5)).toEqual(["stop"]); // b answered IDLE and a stays removed
    expect(vc.pending()).toBe(false);
    expect(s.passes).toBe(1);
  });

  it("does not touch the timer while a pass runs, and arms it once at its end", () => {
    const { vc, s, calls } = rig(0);
    const log: string[] = [];
    let during = -1;
    const other = task("other", log, 0, () => IDLE);
    const driver = task("driver", log, 0, (_now, run) => {
      if (run === 1) {
        const before = calls.length;
        s.wake(s.enqueue(other, 300)); // add, then wake: both only arm after the pass
        s.enqueue(task("late", log, 0, () => IDLE), 700);
        s.cancel(0);
        during = calls.length - before;
      }
      return 100;
    });
    s.enqueue(driver, 0);
    calls.length = 0;
    vc.advance(0);
    expect(during).toBe(0);
    // driver removed itself (that outranks its answer); other, added after it and woken, ran in
    // the same pass; only late is left.
    expect(log).toEqual(["driver@0", "other@0"]);
    expect(calls).toEqual(["start 700"]);
    vc.advance(1000);
    expect(log).toEqual(["driver@0", "other@0", "late@700"]);
    expect(calls).toEqual(["start 700", "stop"]);
  });

  it("later runs a callback once, at the start of the next pass, out of the caller's stack", () => {
    const { vc, s, calls } = rig(100);
    const log: string[] = [];
    const k = s.enqueue(task("t", log, 100, () => IDLE), 0);
    vc.advance(10);
    expect(log).toEqual(["t@0"]);
    expect(calls.slice(-1)).toEqual(["stop"]);
    s.later(() => {
      log.push("first");
      // handed on from inside a pass: waits for the next one
      s.later(() => log.push("second"));
      s.wake(k);
    });
    expect(log).toEqual(["t@0"]); // not run in the caller's stack
    expect(s.nextIn()).toBe(0);
    expect(calls.slice(-1)).toEqual(["start 0"]);
    vc.advance(0);
    // the callback came before the tasks of its pass; the one it handed on, in the pass after
    expect(log).toEqual(["t@0", "first", "t@10", "second"]);
    expect(s.passes).toBe(3);
    expect(s.nextIn()).toBe(IDLE);
    expect(vc.pending()).toBe(false);
  });

  it("an IDLE task runs only when woken", () => {
    const { vc, s } = rig(50);
    const log: string[] = [];
    const k = s.enqueue(task("c", log, 50, () => IDLE), 0);
    vc.advance(400);
    expect(log).toEqual(["c@0"]);
    expect(s.nextIn()).toBe(IDLE);
    expect(vc.pending()).toBe(false);
    s.wake(k);
    vc.advance(1000);
    expect(log).toEqual(["c@0", "c@400"]);
    expect(s.passes).toBe(2);
  });

  it("remove stops a task until woken, and its index stays taken", () => {
    const { vc, s } = rig(0);
    const log: string[] = [];
    const ka = s.enqueue(task("a", log, 0, () => 100), 0);
    s.enqueue(task("b", log, 0, () => 100), 0);
    vc.advance(250);
    s.cancel(ka);
    vc.advance(250);
    expect(log.filter((e) => e.startsWith("a"))).toEqual(["a@0", "a@100", "a@200"]);
    expect(log.filter((e) => e.startsWith("b"))).toEqual(["b@0", "b@100", "b@200", "b@300", "b@400", "b@500"]);
    expect(s.enqueue(task("c", log, 0, () => IDLE), 1000)).toBe(2);
    s.wake(ka);
    log.length = 0;
    vc.advance(100);
    expect(log).toEqual(["a@500", "a@600", "b@600"]);
  });

  it("a wake from inside a task's own step outranks its answer, delay or IDLE", () => {
    const { vc, s } = rig(0);
    const log: string[] = [];
    let k1 = -1;
    let k2 = -1;
    const selfWaker = task("w", log, 0, (_now, run) => {
      if (run === 1) s.wake(k1);
      return 5000;
    });
    const idler = task("i", log, 0, (_now, run) => {
      if (run === 1) s.wake(k2);
      return IDLE;
    });
    k1 = s.enqueue(selfWaker, 0);
    k2 = s.enqueue(idler, 0);
    vc.advance(6000);
    expect(log).toEqual(["w@0", "i@0", "w@0", "i@0", "w@5000"]);
    expect(s.passes).toBe(3);
    expect(s.nextIn()).toBe(4000); // w's later answer counts again once it has run
  });

  it("busy tasks take turns, one slice each per pass", () => {
    const { vc, s } = rig(0);
    const log: string[] = [];
    const busy = (n: string) => task(n, log, 0, (_now, run) => (run < 3 ? 0 : IDLE));
    s.enqueue(busy("d"), 0);
    s.enqueue(busy("e"), 0);
    vc.advance(10);
    expect(log).toEqual(["d@0", "e@0", "d@0", "e@0", "d@0", "e@0"]);
    expect(s.passes).toBe(3);
    expect(vc.runaway).toBe(false);
  });

  it("reports a slice over budget to the handler with its task and length, not one at the budget", () => {
    const reports: string[] = [];
    const { vc, s } = rig(0, 50, (name, ms) => reports.push(`${name}:${ms}`));
    const log: string[] = [];
    s.enqueue(task("slow", log, 0, () => {
      vc.spend(80);
      return 1000;
    }), 0);
    s.enqueue(task("edge", log, 0, () => {
      vc.spend(50);
      return 1000;
    }), 0);
    vc.advance(1500);
    expect(reports).toEqual(["slow:80", "slow:80"]);
    expect(s.overruns).toBe(2);
    // A next run is measured from the end of the slice; edge, due at 1130, waits for slow's slice.
    expect(log).toEqual(["slow@0", "edge@80", "slow@1080", "edge@1160"]);
  });

  it("counts an overrun with no handler and reschedules from the end of the slice", () => {
    const { vc, s } = rig(0, 50, undefined);
    const log: string[] = [];
    s.enqueue(task("slow", log, 0, (_now, run) => {
      if (run === 1) vc.spend(51);
      return run < 3 ? 100 : IDLE;
    }), 0);
    vc.advance(1000);
    expect(s.overruns).toBe(1);
    expect(log).toEqual(["slow@0", "slow@151", "slow@251"]);
  });
});
