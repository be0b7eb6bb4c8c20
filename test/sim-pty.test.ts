import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { SerialPort } from "serialport";
import { afterAll, expect, it } from "vitest";
import { startBroker, type Broker } from "../host-sim/mosquitto";
import { until } from "./harness/wait";
import { watch } from "./harness/watch";

// `make sim`'s consoles as pseudo-terminals, opened with the `serialport` package as a USB board
// would be: every command and a validation error, a setting saved and found again after the
// simulator restarts over the same flash; and DEVICES=3 with its summary. Waits are bounded.

const SIM = path.resolve("dist/node/host-sim/sim.js");
const kids: ChildProcess[] = [];
const dirs: string[] = [];
let broker: Broker | undefined;
afterAll(async () => {
  for (const k of kids) k.kill("SIGKILL");
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  await broker?.close();
});

function sim(env: Record<string, string>) {
  const child = spawn(process.execPath, [SIM], { env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] });
  kids.push(child);
  const s = { out: "", code: undefined as number | null | undefined, child };
  child.stdout.on("data", (d: Buffer) => (s.out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (s.out += d.toString()));
  child.on("exit", (c) => (s.code = c));
  return s;
}

/** The pty's path from the simulator's output, once it printed it. */
async function ptyOf(s: { out: string }, id: string): Promise<string> {
  const re = new RegExp(`sim: ${id}'s console is also on (\\S+): make console PORT=`);
  await until(`${id}'s pseudo-terminal`, () => re.test(s.out), 15000);
  return (re.exec(s.out) as RegExpExecArray)[1];
}

/** A console session over the pty with serialport: `ask` types a line and returns what came back up to the next prompt. */
async function session(p: string) {
  const port = new SerialPort({ path: p, baudRate: 115200 });
  await new Promise<void>((res, rej) => port.on("open", () => res()).on("error", rej));
  let got = "";
  port.on("data", (d: Buffer) => (got += d.toString("latin1")));
  return {
    ask: async (line: string) => {
      // the line, then an empty one: that one's prompt and Enter ("petrel> " then CR LF) ends the reply
      const from = got.length;
      port.write(`${line}\r\r`);
      let reply: string[] | undefined;
      await until(`the reply to ${line}`, () => {
        const echo = got.indexOf(`${line}\r\n`, from);
        const end = echo < 0 ? -1 : got.indexOf("petrel> \r\n", echo + line.length);
        if (end < 0) return false;
        reply = got.slice(echo + line.length + 2, end).split("\n").map((l) => l.replace(/\r/g, "").replace(/^(petrel> )+/, ""))
          .filter((l) => l.length > 0 && !/^\[ *\d+\.\d{3}\] /.test(l));
        return true;
      }, 10000);
      return reply as string[];
    },
    close: () => new Promise<void>((res) => port.close(() => res())),
  };
}

it("the console through a pseudo-terminal with serialport: commands, a refusal, a setting saved over a restart", async () => {
  broker = await startBroker();
  const store = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-sim-pty-"));
  dirs.push(store);
  const env = { SIM_STORE: store, SIM_INTERVAL: "1", BROKER: `127.0.0.1:${broker.port}` };
  const first = sim(env);
  const p = await ptyOf(first, "petrel-sim1");
  expect(p).toBe(path.join(store, "tty"));
  await until("connected", () => first.out.includes("node: connected as petrel-sim1"), 15000);
  const con = await session(p);
  const help = await con.ask("help");
  for (const c of ["show", "get", "set", "unset", "save", "factory-reset", "status", "diag", "publish", "reboot", "pem", "repl"]) {
    expect(help.some((l) => l.startsWith(`${c} `)), `help lists ${c}: ${help.join(" / ")}`).toBe(true);
  }
  const show = await con.ask("show");
  expect(show, show.join(" / ")).toContain(`  brokers = 127.0.0.1:${broker!.port}`);
  expect(await con.ask("set interval 0")).toContain('error: interval must be a whole number from 1 to 86400 (got "0"); nothing was changed');
  expect(await con.ask("set interval 2")).toContain("interval = 2 (not saved yet)");
  expect((await con.ask("status")).some((l) => l === "unsaved settings: interval (save keeps them)")).toBe(true);
  expect(await con.ask("save")).toContain("saved (1 change)");
  expect((await con.ask("diag")).pop()).toBe("diag: every link works");
  expect(await con.ask("get nosuch")).toContain('error: unknown setting "nosuch"; show lists them');
  expect(await con.ask("frobnicate")).toContain('error: unknown command "frobnicate"; type help for the list');
  await con.close();
  first.child.kill("SIGTERM");
  await until("the first run to end", () => first.code !== undefined, 10000);
  expect(first.code).toBe(0);

  // the same flash again: the saved interval is there
  const second = sim(env);
  const con2 = await session(await ptyOf(second, "petrel-sim1"));
  expect((await con2.ask("get interval"))[0]).toMatch(/^interval = 2 /);
  await con2.close();
  second.child.kill("SIGTERM");
  await until("the second run to end", () => second.code !== undefined, 10000);
}, 60000);

it("DEVICES=3: three boards with distinct ids, each console on its own pty, a summary line; SIM_COUNT ends it", async () => {
  const store = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-sim-devices-"));
  dirs.push(store);
  broker ??= await startBroker();
  const seen = await watch(broker.port, "petrel/+/telemetry");
  const s = sim({ SIM_STORE: store, SIM_INTERVAL: "1", SIM_COUNT: "2", DEVICES: "3", BROKER: `127.0.0.1:${broker.port}` });
  // the consoles in one line
  await until("the consoles' line", () => s.out.includes("sim: the consoles of"), 15000);
  expect(s.out).toContain(`sim: the consoles of petrel-sim1 … petrel-sim3 are on ${path.join(store, "tty1")} … tty3 (board K's is ttyK): make console PORT=${path.join(store, "tty1")}`);
  expect(s.out).not.toContain("console is also on");
  for (let k = 1; k <= 3; k++) expect(fs.existsSync(path.join(store, `tty${k}`))).toBe(true);
  await until("the simulator to end", () => s.code !== undefined, 30000);
  seen.stop();
  expect(s.code, s.out).toBe(0);
  expect(s.out).toContain("sim: 2 readings acknowledged by each of 3 boards");
  expect(s.out).toMatch(/sim: \d\/3 connected, \d+\.\d readings\/s sent, \d+\.\d acknowledged, \d+ reconnects, outboxes \d+ \(over the whole run\)/);
  const ids = new Set(seen.lines.map((l) => l.split("/")[1]));
  expect([...ids].sort()).toEqual(["petrel-sim1", "petrel-sim2", "petrel-sim3"]);
  for (let k = 1; k <= 3; k++) expect(fs.existsSync(path.join(store, `dev${k}`))).toBe(true);
}, 60000);

it("DEVICES past SIM_PTYS: the first boards have a console pty, the rest none and say so; all publish, from several loopback source addresses", async () => {
  const store = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-sim-fleet-"));
  dirs.push(store);
  broker ??= await startBroker();
  const mark = broker.log().length;
  const seen = await watch(broker.port, "petrel/+/telemetry");
  const s = sim({ SIM_STORE: store, SIM_INTERVAL: "1", SIM_COUNT: "2", DEVICES: "4", SIM_PTYS: "2", BROKER: `127.0.0.1:${broker.port}` });
  await until("the simulator to end", () => s.code !== undefined, 30000);
  seen.stop();
  expect(s.code, s.out).toBe(0);
  expect(s.out).toContain("sim: boards 3-4 have no console pseudo-terminal (SIM_PTYS=2, at most 500); their console output is dropped");
  expect(s.out).toContain(`sim: the consoles of petrel-sim1 … petrel-sim2 are on ${path.join(store, "tty1")} … tty2 (board K's is ttyK)`);
  expect(fs.existsSync(path.join(store, "tty3"))).toBe(false);
  expect(s.out).toContain("sim: 2 readings acknowledged by each of 4 boards");
  expect([...new Set(seen.lines.map((l) => l.split("/")[1]))].sort()).toEqual(["petrel-sim1", "petrel-sim2", "petrel-sim3", "petrel-sim4"]);
  // each board k connects from 127.0.0.(2 + k % 50)
  const sources = new Set([...broker.log().slice(mark).matchAll(/New connection from (127\.0\.0\.\d+):\d+/g)].map((m) => m[1]));
  for (const a of ["127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"]) expect(sources, [...sources].join(" ")).toContain(a);
}, 60000);

it("DEVICES and SIM_PTYS out of range are refused with the range", () => {
  for (const [env, msg] of [[{ DEVICES: "50001" }, "sim: DEVICES=50001 is not a number of boards from 1 to 50000"], [{ DEVICES: "3", SIM_PTYS: "501" }, "sim: SIM_PTYS=501 is not a number of console pseudo-terminals from 0 to 500"]] as const) {
    const r = spawnSync(process.execPath, [SIM], { env: { ...process.env, BROKER: "127.0.0.1:1", ...env }, encoding: "utf8", timeout: 20000 });
    expect(r.status).toBe(2);
    expect(r.stdout.replace(/\r/g, "")).toContain(msg);
  }
});
