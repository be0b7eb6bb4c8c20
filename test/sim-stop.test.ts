import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, expect, it } from "vitest";
import { until } from "./harness/wait";

// `make sim`'s way out: Ctrl-C at its terminal, and SIGINT, SIGHUP (a closed terminal) and
// SIGTERM each stop the board and leave nothing behind: no mosquitto, no socat, nothing listening
// on the broker's port, no broker directory, no pseudo-terminal link. And a `brokers` saved in
// the simulator's flash is reported at start, with how to go back (which is then followed).

const SIM = path.resolve("dist/node/host-sim/sim.js");
const kids: ChildProcess[] = [];
const dirs: string[] = [];
afterAll(() => {
  for (const k of kids) if (k.exitCode === null) k.kill("SIGKILL");
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

interface Run {
  child: ChildProcess;
  out: () => string;
  code: () => number | null | undefined;
}

function sim(store: string, argv?: string[]): Run {
  const [cmd, args] = argv === undefined ? [process.execPath, [SIM]] : [argv[0], argv.slice(1)];
  const child = spawn(cmd, args, { env: { ...process.env, SIM_STORE: store, SIM_INTERVAL: "1", BROKER: "" }, stdio: ["pipe", "pipe", "pipe"] });
  kids.push(child);
  let out = "";
  let code: number | null | undefined;
  child.stdout!.on("data", (d: Buffer) => (out += d.toString().replace(/\r/g, "")));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  child.on("exit", (c) => (code = c));
  return { child, out: () => out, code: () => code };
}

function store(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-sim-stop-"));
  dirs.push(d);
  return d;
}

/** Processes (other than this one) whose command line mentions `text`. */
function processesMentioning(text: string): string[] {
  const found: string[] = [];
  for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    if (Number(pid) === process.pid) continue;
    let cmdline = "";
    try {
      cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
    } catch {
      continue; // gone meanwhile
    }
    if (cmdline.includes(text)) found.push(`${pid}: ${cmdline}`);
  }
  return found;
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port });
    s.on("connect", () => {
      s.destroy();
      resolve(false);
    });
    s.on("error", () => resolve(true));
  });
}

/** Waits for a running board; returns its broker's port and directory and its console's link. */
async function started(run: Run, dir: string): Promise<{ port: number; brokerDir: string; tty: string }> {
  await until("the board to connect", () => run.out().includes("node: connected as petrel-sim1"), 20000);
  const m = /started mosquitto on 127\.0\.0\.1:(\d+) \(its log: (.*)\/mosquitto\.log\)/.exec(run.out());
  expect(m, run.out()).not.toBeNull();
  const tty = path.join(dir, "tty");
  expect(fs.existsSync(tty)).toBe(true);
  expect(processesMentioning(m![2]).length).toBeGreaterThan(0); // the broker runs, found by its directory
  expect(processesMentioning(tty).length).toBeGreaterThan(0); // and the console's socat
  return { port: Number(m![1]), brokerDir: m![2], tty };
}

async function expectNothingLeft(run: Run, at: { port: number; brokerDir: string; tty: string }): Promise<void> {
  await until("the simulator to exit", () => run.code() !== undefined, 15000);
  expect(run.code(), run.out()).toBe(0);
  await until("the broker and the console's socat to be gone", () => processesMentioning(at.brokerDir).length === 0 && processesMentioning(at.tty).length === 0, 5000);
  expect(await refused(at.port)).toBe(true);
  expect(fs.existsSync(at.brokerDir)).toBe(false);
  expect(fs.existsSync(at.tty)).toBe(false);
}

for (const [signal, says] of [
  ["SIGINT", "sim: stopping"],
  ["SIGHUP", "sim: stopping (the terminal hung up)"],
  ["SIGTERM", "sim: stopping (SIGTERM)"],
] as const) {
  it(`${signal} stops the board and removes the broker, its directory and the pseudo-terminal`, async () => {
    const dir = store();
    const run = sim(dir);
    const at = await started(run, dir);
    expect(run.out()).toContain("sim: Ctrl-C (or Ctrl-D) ends it");
    run.child.kill(signal);
    await expectNothingLeft(run, at);
    expect(run.out()).toContain(says);
    expect(run.out()).toMatch(/sim: ending: readings: \d+ queued, \d+ sent, \d+ acknowledged, \d+ dropped, \d+ in the outbox/);
  }, 60000);
}

it("Ctrl-C typed at the simulator's terminal ends it and cleans up", async () => {
  // `script` gives the simulator a real terminal (raw mode, keys one by one); what is written to
  // script's stdin is typed at it
  const dir = store();
  const run = sim(dir, ["script", "-qfec", `${process.execPath} ${SIM}`, "/dev/null"]);
  const at = await started(run, dir);
  run.child.stdin!.write("stat\x03");
  await expectNothingLeft(run, at);
  expect(run.out()).toContain("sim: stopping");
}, 60000);

it("a brokers saved in the simulator's flash is reported at start with how to go back, which works", async () => {
  const dir = store();
  const first = sim(dir);
  const at1 = await started(first, dir);
  first.child.stdin!.write("set brokers 127.0.0.1:1\nsave\n");
  await until("the setting saved", () => first.out().includes("saved (1 change)"), 10000);
  first.child.kill("SIGTERM");
  await expectNothingLeft(first, at1);

  const second = sim(dir);
  await until("the start-up notes", () => second.out().includes("ends it"), 20000);
  const port = /started mosquitto on 127\.0\.0\.1:(\d+)/.exec(second.out())![1];
  expect(second.out()).toContain(
    `sim: note: the board's flash has brokers = 127.0.0.1:1 saved, so it uses that, not the broker this simulator started (127.0.0.1:${port}); to go back type: unset brokers, then save, then reboot (or factory-reset)`,
  );
  expect(second.out()).not.toContain("node: connected as");
  second.child.stdin!.write("unset brokers\nsave\nreboot\n");
  await until("the board on the simulator's broker", () => second.out().includes(`mqtt: connected to 127.0.0.1:${port}`), 20000);
  second.child.kill("SIGTERM");
  await until("the simulator to exit", () => second.code() !== undefined, 15000);

  // with nothing saved against the defaults, no note
  const third = sim(dir);
  await until("the board to connect", () => third.out().includes("node: connected as petrel-sim1"), 20000);
  expect(third.out()).not.toContain("sim: note:");
  third.child.kill("SIGTERM");
  await until("the simulator to exit", () => third.code() !== undefined, 15000);
}, 90000);
