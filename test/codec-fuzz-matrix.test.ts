import { expect, it } from "vitest";
import { arg, crossTarget, type Case } from "./harness/matrix";
import { runtimes } from "./harness/runtimes";

// The probe's own fuzzer on every runtime: mutated streams split at pseudo-random points with a
// generator that gives the same numbers everywhere. Lua turns an out-of-range read into an
// error (nil arithmetic), so a stray index fails the run; and every runtime must reach the same
// verdict on every stream, so the digests of counts must equal the Node build's.

const fuzz: Array<{ name: string; op: string; args: string[] }> = [1, 2].map((seed) => ({
  name: `fuzz seed ${seed}, 1200 streams, 16-byte buffer`, op: "codec.fuzz", args: [arg.int(seed), arg.int(1200), arg.int(16)],
}));

const reference = runtimes.node.missing() === null ? runtimes.node.run(fuzz.map((c, k) => `${k} ${c.op} ${c.args.join(" ")}`).join("\n")) : [];
const cases: Case[] = fuzz.map((c, k) => ({ ...c, expect: (reference[k] ?? "").slice(String(k).length + 1) }));

it("the reference digest exercises most decoder errors", () => {
  for (const c of cases) {
    const named = c.expect.split(" ").filter((w) => /^[a-z-]+=\d+$/.test(w) && !w.startsWith("packets=") && !w.startsWith("oversize="));
    expect(named.length, c.expect).toBeGreaterThanOrEqual(10);
    expect(Number(/packets=(\d+)/.exec(c.expect)?.[1])).toBeGreaterThan(300);
  }
});

crossTarget("codec-fuzz", cases);
