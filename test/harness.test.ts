import { describe, expect, it } from "vitest";
import { crossTarget } from "./harness/matrix";
import { lua51NoBit, RUNTIMES, runtimes } from "./harness/runtimes";
import { intCases } from "./fixtures/ints";

// The harness itself: each runtime runs the probe it was built for and reports wrong answers.

const EXPECTED_IMPL: Record<string, string> = {
  node: "node js",
  espruino: "espruino js",
  "espruino-real": "espruino js",
  lua51: "nodemcu lua-floor", // math.floor(a / b) with a correction
  lua53: "nodemcu lua-floordiv", // Lua 5.3's // compiled with load()
  fengari: "nodemcu lua-floordiv",
};

describe("runtime harness", () => {
  for (const name of RUNTIMES) {
    const rt = runtimes[name];
    const missing = rt.missing();
    it.skipIf(missing !== null)(`${name}: runs the built probe, reports its platform, flags unknown ops${missing ? ` (skipped: ${missing})` : ""}`, () => {
      const out = rt.run("0 port.info\n1 ints.idiv i:7 i:2\n2 no.such.op i:1");
      expect(out).toEqual([`0 ${EXPECTED_IMPL[name]}`, "1 3", "2 !unknown-op:no.such.op"]);
    });
  }

  const noBitMissing = lua51NoBit.missing();
  it.skipIf(noBitMissing !== null)(`lua5.1 without a bit library passes every int case (the firmware needs none)${noBitMissing ? ` (skipped: ${noBitMissing})` : ""}`, () => {
    expect(lua51NoBit.run("0 port.info")).toEqual(["0 nodemcu lua-floor"]);
    const input = intCases.map((c, k) => `${k} ${c.op} ${c.args.join(" ")}`).join("\n");
    const out = lua51NoBit.run(input);
    const wrong = intCases.filter((c, k) => out[k] !== `${k} ${c.expect}`).map((c) => c.name);
    expect(wrong).toEqual([]);
    expect(out.length).toBe(intCases.length);
  });
});

describe("a wrong expectation fails the runtime's test", () => {
  // crossTarget registers tests; this suite's single case expects a wrong answer on purpose,
  // and is declared as failing so the run stays green only if the harness really fails it.
  crossTarget("harness-self-check", [{ name: "7 / 2 is not 4", op: "ints.idiv", args: ["i:7", "i:2"], expect: "4" }], { expectFailure: true });
});
