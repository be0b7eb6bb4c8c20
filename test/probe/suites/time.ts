import { after, due, elapsed, remaining } from "../../../firmware/sched/time";
import { argInt, outInt, register } from "../probe";

// Wrapped-clock arithmetic on every runtime (32-bit Lua overflows where doubles do not).
register("time.elapsed", (a) => outInt(elapsed(argInt(a[0]), argInt(a[1]))));
register("time.after", (a) => outInt(after(argInt(a[0]), argInt(a[1]))));
register("time.due", (a) => (due(argInt(a[0]), argInt(a[1])) ? "1" : "0"));
register("time.remaining", (a) => outInt(remaining(argInt(a[0]), argInt(a[1]))));
