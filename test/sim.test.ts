import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect, it } from "vitest";

// `make sim` runs the built simulator: one board, its own mosquitto, a QoS 1 counter published
// and received back. With SIM_COUNT it ends by itself; its flash is a temp directory here.

it("make sim's board publishes, receives and acknowledges a counter, then ends cleanly", () => {
  const store = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-sim-"));
  try {
    const r = spawnSync(process.execPath, [path.resolve("dist/node/host-sim/sim.js")], {
      env: { ...process.env, SIM_COUNT: "3", SIM_INTERVAL_MS: "50", SIM_STORE: store, BROKER: "" },
      encoding: "utf8",
      timeout: 30000,
    });
    expect(r.stdout).toMatch(/sim: started mosquitto on 127\.0\.0\.1:\d+/);
    expect(r.stdout).toMatch(/sim: connected \(session new\)/);
    for (let i = 1; i <= 3; i++) expect(r.stdout).toContain(`received petrel/petrel-sim/counter = ${i}`);
    expect(r.stdout).toContain("ending: published 3, acknowledged 3, received 3, outbox 0");
    expect(r.status).toBe(0);
  } finally {
    fs.rmSync(store, { recursive: true, force: true });
  }
});
