import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startBroker, type Broker } from "../host-sim/mosquitto";
import { until } from "./harness/wait";
import { watch } from "./harness/watch";

// The built simulator's sensor node as a board process against a mosquitto that refuses
// anonymous clients: credentials typed at its console and saved, a reboot, then it connects with
// them. Everything the broker delivers (mosquitto_sub on #, not Petrel code) and everything the
// board prints is searched for the canary password; the will is checked by killing the board.

const CANARY = "canary-pass-K7v2q";
let broker: Broker;
const kids: ChildProcess[] = [];
const stops: Array<() => void> = [];
const dirs: string[] = [];

beforeAll(async () => {
  broker = await startBroker({ users: { node: CANARY, watcher: "watcher-pass" } });
});
afterAll(async () => {
  for (const k of kids) k.kill("SIGKILL");
  for (const stop of stops) stop();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  await broker?.close();
});

const SIM = path.resolve("dist/node/host-sim/sim.js");

it("credentials set and saved at the console reach the broker after a reboot, never any output; the will marks the node offline when it dies", async () => {
  const store = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-sim-app-"));
  dirs.push(store);
  const env = { ...process.env, SIM_STORE: store, SIM_INTERVAL: "1", BROKER: `127.0.0.1:${broker.port}` };

  // first boot: anonymous, refused by the broker; the credentials are typed and saved, then a
  // reboot (the simulator powers the board on again); with them the reading taken before the
  // reboot (kept in the outbox) and one after are acknowledged, and it ends (SIM_COUNT)
  const first = spawnSync(process.execPath, [SIM], {
    env: { ...env, SIM_COUNT: "2" }, encoding: "utf8", timeout: 30000,
    input: `set mqtt.user node\nset mqtt.pass ${CANARY}\nsave\nreboot\n`,
  });
  expect(first.status, first.stdout + first.stderr).toBe(0);
  expect(first.stdout).toContain("mqtt.pass = (set, hidden) (not saved yet; used from the next boot: save, then reboot)");
  expect(first.stdout).toContain("saved (2 changes)");
  expect(first.stdout).toContain("sim: petrel-sim1 reboots");
  expect(first.stdout).toContain("sim: 2 readings acknowledged");

  // everything the broker delivers, to a watcher of its own
  const watcher = await watch(broker.port, "#", { user: "watcher", pass: "watcher-pass" });
  stops.push(watcher.stop);
  const seen = watcher.lines;

  // second boot: the saved credentials; readings flow
  const board = spawn(process.execPath, [SIM], { env, stdio: ["pipe", "pipe", "pipe"] });
  kids.push(board);
  let out = "";
  board.stdout.on("data", (d: Buffer) => (out += d.toString()));
  board.stdin.write("show\nstatus\n");
  await until("two readings at the broker", () => seen.filter((l) => l.startsWith("petrel/petrel-sim1/telemetry ")).length >= 2, 15000);
  expect(seen.some((l) => l.startsWith("petrel/petrel-sim1/status ") && l.includes('"state":"online"'))).toBe(true);
  expect(out).toContain("  mqtt.pass = (set, hidden)");

  // power loss: no DISCONNECT; the broker publishes the will
  board.kill("SIGKILL");
  await until("the will at the broker", () => seen.some((l) => l === 'petrel/petrel-sim1/status {"state":"offline"}'), 15000);

  for (const text of [first.stdout, first.stderr, out, seen.join("\n")]) expect(text).not.toContain(CANARY);
});
