import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect, it } from "vitest";

// `make sim` runs the built simulator: one sensor node, its own mosquitto, its console on
// stdin/stdout (lines here: stdin is a pipe). With SIM_COUNT it ends by itself once that many
// readings were acknowledged; its flash is a temp directory here.

it("make sim's node connects, publishes readings until SIM_COUNT are acknowledged, answers its console, then ends cleanly", () => {
  const store = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-sim-"));
  try {
    const r = spawnSync(process.execPath, [path.resolve("dist/node/host-sim/sim.js")], {
      env: { ...process.env, SIM_COUNT: "2", SIM_INTERVAL: "1", SIM_STORE: store, BROKER: "" },
      input: "show\nset interval 0\nstatus\n",
      encoding: "utf8",
      timeout: 30000,
    });
    const out = r.stdout.replace(/\r/g, "");
    expect(out).toMatch(/sim: started mosquitto on 127\.0\.0\.1:\d+/);
    const port = /started mosquitto on 127\.0\.0\.1:(\d+)/.exec(out)![1];
    expect(out).toContain(`sim: watch it with: mosquitto_sub -h 127.0.0.1 -p ${port} -t 'petrel/petrel-sim1/#' -v`);
    expect(out).toContain("node: connected as petrel-sim1");
    expect(out).toContain(`  brokers = 127.0.0.1:${port}`);
    expect(out).toContain("  interval = 1");
    expect(out).toContain('error: interval must be a whole number from 1 to 86400 (got "0"); nothing was changed');
    expect(out).toMatch(/node petrel-sim1: (not )?connected, up \d+ s, 0 reconnects, \d+ readings sent, 0 dropped, outbox \d+/);
    expect(out).toContain("sim: 2 readings sent and acknowledged");
    expect(out).toMatch(/sim: ending: \d+ readings sent, 0 dropped, outbox 0/);
    expect(r.status).toBe(0);
  } finally {
    fs.rmSync(store, { recursive: true, force: true });
  }
});
