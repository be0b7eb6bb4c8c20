import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { DIST, runtimes } from "./harness/runtimes";

// Zero allocation on the hot path, counted (not timed): no garbage collection on Node over
// 1M packets in steady state, and a flat Lua heap with the collector stopped.

const NODE_ITERATIONS = 200_000; // 5 packets each: 1M packets

describe("codec allocates nothing per packet", () => {
  it(`Node build: zero garbage collections over ${NODE_ITERATIONS * 5} packets (${NODE_ITERATIONS * 2} encoded, ${NODE_ITERATIONS * 3} decoded)`, () => {
    const script = `
      const { PerformanceObserver } = require("node:perf_hooks");
      require(${JSON.stringify(path.join(DIST, "node/firmware/targets/node/index.js"))});
      const s = require(${JSON.stringify(path.join(DIST, "node/test/probe/suites/codec.js"))});
      const st = s.steadySetup(Buffer.from("21.5C,humidity=40"));
      s.steadyRun(st, 20000); // warm up: let V8 optimise before counting
      let gcs = 0;
      const obs = new PerformanceObserver((list) => { gcs += list.getEntries().length; });
      obs.observe({ entryTypes: ["gc"] });
      const before = st.packets;
      s.steadyRun(st, ${NODE_ITERATIONS});
      setTimeout(() => { obs.disconnect(); console.log(JSON.stringify({ gcs, packets: st.packets - before })); }, 50);
    `;
    const r = spawnSync(process.execPath, ["--max-semi-space-size=1", "-e", script], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split("\n").pop() as string);
    console.log(`[alloc] node: ${out.packets} packets decoded, ${out.gcs} garbage collections`);
    expect(out.packets).toBe(NODE_ITERATIONS * 3);
    expect(out.gcs).toBe(0);
  });

  const LUA_ITERATIONS = 20_000;
  for (const [name, exe, bit] of [["lua51", "lua5.1", true], ["lua53", "lua5.3", false]] as const) {
    const missing = runtimes[name].missing();
    it.skipIf(missing !== null)(`${name}: Lua heap flat over ${LUA_ITERATIONS * 5} packets with the collector stopped${missing ? ` (skipped: ${missing})` : ""}`, () => {
      const lua = [
        `package.path = ${JSON.stringify(path.join(DIST, "nodemcu-probe/?.lua"))} .. ";" .. package.path`,
        bit ? `bit = require("bit")` : "",
        `require("firmware.targets.nodemcu.index")`,
        `local s = require("test.probe.suites.codec")`,
        `local st = s.steadySetup("21.5C,humidity=40")`,
        `s.steadyRun(st, 1000)`,
        `collectgarbage("collect")`,
        `collectgarbage("stop")`,
        // Lua 5.3 regrows ~0.8 KB once after a full collection shrank its internal tables; steady state is after that.
        `s.steadyRun(st, 1000)`,
        `local before, p0 = collectgarbage("count"), st.packets`,
        `s.steadyRun(st, ${LUA_ITERATIONS})`,
        `print(string.format("%d %.3f", st.packets - p0, collectgarbage("count") - before))`,
      ].join("\n");
      const r = spawnSync(exe, ["-e", lua], { encoding: "utf8" });
      expect(r.status, r.stderr).toBe(0);
      const [packets, kb] = r.stdout.trim().split(" ").map(Number);
      console.log(`[alloc] ${name}: ${packets} packets decoded, heap grew ${kb} KB with the collector stopped`);
      expect(packets).toBe(LUA_ITERATIONS * 3);
      expect(kb).toBe(0);
    });
  }
  it.skip("fengari: not measured (its collectgarbage('count') reports the JavaScript heap, not Lua allocations)", () => {});
});
