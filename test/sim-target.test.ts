import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { SerialPort } from "serialport";
import { afterAll, describe, expect } from "vitest";
import { APP_TARGETS } from "../host-sim/app-boards";
import { boardMissing } from "./harness/boards";
import { needs } from "./harness/needs";
import { until } from "./harness/wait";

// `make sim TARGET=…` (host-sim/sim-board.ts) for each board runtime: the built simulator starts
// its own mosquitto, powers the board on, and this terminal (a pipe here) is its console; a
// reboot typed there powers the board on again with what was saved. Waits are bounded.

const SIM = path.resolve("dist/node/host-sim/sim-board.js");
const kids: ChildProcess[] = [];
const dirs: string[] = [];
afterAll(() => {
  for (const k of kids) k.kill("SIGKILL");
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describe("make sim TARGET=<runtime>", () => {
  for (const target of APP_TARGETS.filter((t) => t !== "node")) {
    needs(boardMissing(target), `[${target}] the console on the terminal and through its pty with serialport, a setting saved over a reboot, a clean stop`, async () => {
      const store = fs.mkdtempSync(path.join(os.tmpdir(), `petrel-simt-${target}-`));
      dirs.push(store);
      const sim = spawn(process.execPath, [SIM], { env: { ...process.env, TARGET: target, SIM_STORE: store, SIM_INTERVAL: "2" }, stdio: ["pipe", "pipe", "pipe"] });
      kids.push(sim);
      let out = "";
      sim.stdout.on("data", (d: Buffer) => (out += d.toString("latin1")));
      sim.stderr.on("data", (d: Buffer) => (out += d.toString("latin1")));
      let code: number | null | undefined;
      sim.on("exit", (c) => (code = c));
      const wait = (what: string | RegExp, from = 0) => until(`${target}: ${what}`, () => (typeof what === "string" ? out.indexOf(what, from) >= 0 : what.test(out.slice(from))), 20000)
        .catch((e) => { throw new Error(`${e.message}\n--- sim output ---\n${out.slice(-3000)}`); });
      await wait(`node: connected as sim-${target}`);
      expect(out).toMatch(new RegExp(`watch it with: mosquitto_sub -h 127\\.0\\.0\\.1 -p \\d+ -t 'petrel/sim-${target}/#' -v`));
      // its console through the pseudo-terminal, with serialport, as a USB board
      const port = new SerialPort({ path: path.join(store, "tty"), baudRate: 115200 });
      await new Promise<void>((res, rej) => port.on("open", () => res()).on("error", rej));
      let got = "";
      port.on("data", (d: Buffer) => (got += d.toString("latin1")));
      port.write("status\r");
      await until(`${target}: status through the pty`, () => new RegExp(`node sim-${target}: connected, up \\d+ s`).test(got), 10000);
      port.write("set qos 7\r");
      await until(`${target}: a refusal through the pty`, () => got.includes("error: qos must be a whole number from 0 to 2"), 10000);
      await new Promise<void>((res) => port.close(() => res()));
      sim.stdin.write("set keepalive 45\nsave\n");
      await wait("saved (1 change)");
      let mark = out.length;
      sim.stdin.write("reboot\n");
      await wait("sim: the board rebooted; powering it on again", mark);
      await wait(`node: connected as sim-${target}`, mark);
      mark = out.length;
      sim.stdin.write("get keepalive\n");
      await wait(/keepalive = 45 /, mark);
      sim.kill("SIGTERM");
      await until(`${target}: the simulator to end`, () => code !== undefined, 10000);
      expect(code).toBe(0);
    }, 90000);
  }
});
