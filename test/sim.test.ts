import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect, it } from "vitest";
import { until } from "./harness/wait";

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
    expect(out).toMatch(/node petrel-sim1: (not )?connected, up \d+ s, 0 reconnects, readings: \d+ queued, \d+ sent, \d+ acknowledged, 0 dropped, outbox \d+/);
    expect(out).toContain("sim: 2 readings acknowledged");
    const end = /sim: ending: readings: (\d+) queued, (\d+) sent, (\d+) acknowledged, 0 dropped, 0 in the outbox/.exec(out);
    expect(end, out).not.toBeNull();
    // everything acknowledged: as many sent, as many queued
    expect(new Set(end!.slice(1).map(Number)).size, end![0]).toBe(1);
    expect(r.status).toBe(0);
  } finally {
    fs.rmSync(store, { recursive: true, force: true });
  }
});

it("with no broker to take them, readings are queued, none sent or acknowledged, all in the outbox: status and the end line say so", async () => {
  const store = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-sim-"));
  // port 1 on loopback: refused at once; the readings wait in the outbox
  const child = spawn(process.execPath, [path.resolve("dist/node/host-sim/sim.js")], {
    env: { ...process.env, SIM_INTERVAL: "1", SIM_STORE: store, BROKER: "127.0.0.1:1" },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let out = "";
  let code: number | null | undefined;
  child.stdout.on("data", (d: Buffer) => (out += d.toString().replace(/\r/g, "")));
  child.on("exit", (c) => (code = c));
  try {
    const status = /readings: (\d+) queued, (\d+) sent, (\d+) acknowledged, 0 dropped, outbox (\d+)/g;
    const seen = () => [...out.matchAll(status)].map((m) => m.slice(1).map(Number));
    // one log line per failed attempt (below): the lines logged about the refusals
    const logged = () => out.split("\n").filter((l) => /^(petrel> )?\[ *\d+\.\d{3}\] /.test(l) && / mqtt: refused[ :]/.test(l));
    // ask until two readings are queued and two attempts have failed (bounded)
    for (let i = 0; i < 200 && !(seen().some(([q]) => q >= 2) && logged().length >= 2); i++) {
      child.stdin.write("status\n");
      await new Promise((r) => setTimeout(r, 100));
    }
    const [queued, sent, acked, outbox] = seen().find(([q]) => q >= 2) ?? [];
    expect(queued, out).toBeGreaterThanOrEqual(2);
    expect(sent).toBe(0);
    expect(acked).toBe(0);
    expect(outbox).toBe(queued);
    child.kill("SIGTERM");
    await until("the simulator to end", () => code !== undefined, 10000);
    const end = /sim: ending: readings: (\d+) queued, (\d+) sent, (\d+) acknowledged, 0 dropped, (\d+) in the outbox/.exec(out);
    expect(end, out).not.toBeNull();
    expect(Number(end![2])).toBe(0);
    expect(Number(end![3])).toBe(0);
    expect(Number(end![4])).toBe(Number(end![1]));
    // one log line per failed attempt, not also "connection ended" and the node's echo: the
    // client's warning for the first, then a short info line for each repeat of the same failure
    const lines = logged();
    expect(lines.length, out).toBeGreaterThanOrEqual(2);
    expect(lines[0]).toMatch(/^(petrel> )?\[ *\d+\.\d{3}\] warn  mqtt: refused: the broker's address refused the connection; fix: /);
    for (const l of lines.slice(1)) expect(l).toMatch(/^(petrel> )?\[ *\d+\.\d{3}\] info  mqtt: refused again \(attempt \d+\)$/);
    expect(out).not.toContain("connection ended");
    expect(out).not.toContain("node: refused");
  } finally {
    if (code === undefined) child.kill("SIGKILL");
    fs.rmSync(store, { recursive: true, force: true });
  }
});
