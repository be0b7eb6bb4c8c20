import { arg, crossTarget, type Case } from "./harness/matrix";

// The cooperative scheduler on every runtime, on a virtual clock near the 31-bit wrap.
const times = (step: number, last: number) => Array.from({ length: Math.floor(last / step) + 1 }, (_, k) => k * step).join(",");

const cases: Case[] = [
  { name: "periodic tasks across the clock wrap run at exact times with one timer", op: "sched.scenario", args: [arg.int(1)],
    // a every 1000 ms and b every 300 ms for 5 s; a pass per distinct due time.
    expect: `a=${times(1000, 5000)} b=${times(300, 5000)} pending=1 passes=${new Set([...times(1000, 5000).split(","), ...times(300, 5000).split(",")]).size}` },
  { name: "an idle task runs only when woken, and an all-idle scheduler stops its timer", op: "sched.scenario", args: [arg.int(2)],
    expect: "runs=0,500 first=0 pending=0 next=-1" },
  { name: "busy tasks take turns, one slice each per pass", op: "sched.scenario", args: [arg.int(3)],
    expect: "order=d,e,d,e,d,e passes=3 runaway=0" },
  { name: "a slice over budget is reported with its task and length", op: "sched.scenario", args: [arg.int(4)],
    expect: "overruns=2 slow:80;slow:80;" },
  { name: "a wake from inside a task's own step outranks its answer", op: "sched.scenario", args: [arg.int(5)],
    expect: "runs=0,0,5000" },
];

crossTarget("sched", cases);
