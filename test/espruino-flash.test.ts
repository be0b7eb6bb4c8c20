import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { startRepl } from "../host-sim/espruino/repl";
import { disposeContext, runBundle, runScript } from "../host-sim/espruino/standin";
import { DIST, ROOT, runtimes } from "./harness/runtimes";
import { until } from "./harness/wait";

// make flash for an Espruino board: the espruino CLI writes the bundle and the boot guard to
// Storage through the board's REPL, and tools/flash.mjs reads each back (length and E.CRC32).
// Against the stand-in REPL always; against a real Espruino Linux binary with ESPRUINO set.

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
const tmp = (prefix: string) => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.push(d);
  return d;
};

interface Run { status: number | null; stdout: string; stderr: string }

/** Runs a command to its end (bounded); spawn, not spawnSync: a REPL in this process must answer. */
function run(exe: string, args: string[], ms = 240000): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(exe, args, { cwd: ROOT });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => child.kill("SIGKILL"), ms);
    child.on("close", (status) => {
      clearTimeout(t);
      resolve({ status, stdout, stderr });
    });
  });
}

const flashTool = (board: string, port: string) => run(process.execPath, [path.join(ROOT, "tools/flash.mjs"), "--board", board, "--port", port]);
const OK = (board: string) => new RegExp(`flash ${board}: app, app\\.config, app\\.commands, app\\.held, \\.bootcde, \\d+ bytes written to tcp://127\\.0\\.0\\.1:\\d+ \\(length and CRC-32 read back\\)`);

// Side by side: each packs its own board (dist/boards/<board>, removed and written again), each
// has its own REPL and flash, and most of a run is the CLI's paced writing.
describe("make flash for an Espruino board, through the espruino CLI to the stand-in's REPL", () => {
  it.concurrent("the sensor node lands in Storage as app, its lazy modules as app.<name>, the boot guard as .bootcde; after a reset a lazy module loads", async () => {
    const flash = tmp("petrel-esp-flash-");
    const repl = await startRepl({ storageDir: flash, esp32: true });
    let r: Run;
    try {
      r = await flashTool("esp32-espruino", `tcp://127.0.0.1:${repl.port}`);
      expect(r.status, `${r.stdout}\n${r.stderr}\n${repl.output().slice(-2000)}`).toBe(0);
    } finally {
      await repl.close();
    }
    expect(r.stdout).toMatch(OK("esp32-espruino"));
    const stored = (name: string) => fs.readFileSync(path.join(flash, Buffer.from(name, "latin1").toString("hex")));
    expect(stored("app").equals(fs.readFileSync(path.join(DIST, "boards/esp32-espruino/app.js")))).toBe(true);
    expect(stored("app.config").equals(fs.readFileSync(path.join(DIST, "boards/esp32-espruino/app.config.js")))).toBe(true);
    expect(stored("app.commands").equals(fs.readFileSync(path.join(DIST, "boards/esp32-espruino/app.commands.js")))).toBe(true);
    expect(stored("app.held").equals(fs.readFileSync(path.join(DIST, "boards/esp32-espruino/app.held.js")))).toBe(true);
    expect(stored(".bootcde").equals(fs.readFileSync(path.join(DIST, "espruino/boot.js")))).toBe(true);
    // (the board's own build: its profile's features, not every feature as dist/espruino's)
    // power on again: a new interpreter over the same flash; a lazy module loads from Storage as the app's loader does
    const ctx = runBundle(path.join(DIST, "espruino/petrel.js"), { print: () => {}, storageDir: flash });
    try {
      expect(runScript(ctx, `typeof new Function("P", require("Storage").read("app.config"))(Petrel.port).loadSettings`)).toBe("function");
    } finally {
      disposeContext(ctx);
    }
  }, 300000); // the CLI writes about 2 KB a second through the REPL: the Storage files and the boot guard take about a minute (80 s here), more beside other emulators

  it.concurrent("a character changed on the line (the length still right) is caught by the CRC-32 read-back, named, and the command fails", async () => {
    const flash = tmp("petrel-esp-flash-");
    const repl = await startRepl({ storageDir: flash, esp32: false, garble: 3 });
    let r: Run;
    try {
      r = await flashTool("esp8266-espruino", `tcp://127.0.0.1:${repl.port}`);
    } finally {
      await repl.close();
    }
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/flash: esp8266-espruino: (petrel|app|\.bootcde) reads back from the board as \d+\/\d+ \(length\/CRC-32\), not \d+\/\d+; fix: .*flash again/);
  }, 300000); // the CLI writes about 2 KB a second through the REPL: the Storage files and the boot guard take about a minute (80 s here), more beside other emulators
});

/**
 * The real interpreter's only TCP console is its telnet server, on the fixed port 2323. So the
 * board and the flash tool share a private network namespace (unshare -rn: its own loopback),
 * which keeps the port off the machine's and lets tests run side by side.
 */
function realMissing(): string | null {
  const m = runtimes["espruino-real"].missing();
  if (m !== null) return m;
  const u = spawnSync("unshare", ["-rn", "true"]);
  if (u.status !== 0) return "unshare -rn (a private network namespace for the binary's fixed telnet port 2323) is not permitted here";
  return null;
}
const realWhy = realMissing();

describe.skipIf(realWhy !== null)(`make flash to a real Espruino Linux binary over its telnet console${realWhy ? ` (skipped: ${realWhy})` : ""}`, () => {
  it("writes and verifies the five files; at the next power-on the boot guard starts the sensor node from Storage, its console answers, and repl hands the line back", async () => {
    const exe = process.env.ESPRUINO as string;
    const dir = tmp("petrel-esp-real-flash-");
    // The binary's stdin is a FIFO held open and never written. At end of file (/dev/null) its
    // input thread keeps reading and pushes characters into the event queue that the telnet
    // console fills from the main thread: an ASSERT in jsdevices.c (measured).
    // Every wait in the script is bounded.
    const script = [
      "set -e",
      "ip link set lo up",
      `cd ${JSON.stringify(dir)}`,
      "mkfifo stdin",
      `${JSON.stringify(exe)} --telnet < stdin > board.log 2>&1 &`,
      "board=$!",
      "exec 3>stdin",
      "trap 'kill -9 $board' EXIT",
      "for i in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/2323) 2>/dev/null && break; sleep 0.1; done",
      `cd ${JSON.stringify(ROOT)}`,
      `${JSON.stringify(process.execPath)} tools/flash.mjs --board esp8266-espruino --port tcp://127.0.0.1:2323`,
    ].join("\n");
    const r = await run("unshare", ["-rn", "bash", "-c", script]);
    const log = () => fs.existsSync(path.join(dir, "board.log")) ? fs.readFileSync(path.join(dir, "board.log"), "latin1").slice(-1500) : "";
    expect(r.status, `${r.stdout}\n${r.stderr}\n${log()}`).toBe(0);
    expect(r.stdout).toMatch(OK("esp8266-espruino"));

    // power on again over the same flash file: the boot guard runs from .bootcde
    const child = spawn(exe, [], { cwd: dir, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString("latin1")));
    try {
      await until("the boot guard's window, then the app's console", () => out.includes("console: type help for the commands"), 15000);
      expect(out).toContain("boot: press a key within 2.0 s for safe mode (the REPL, no app)");
      child.stdin.write("status\n");
      await until("the app's status", () => /node petrel-\w+: not connected/.test(out), 10000);
      child.stdin.write("repl\n");
      await until("the line handed back", () => out.includes("the serial line is the REPL's now"), 10000);
      child.stdin.write('print("loaded " + typeof petrelApp + " jsvars " + process.memory().usage)\n');
      await until("the app, at the REPL", () => out.includes("loaded object"), 10000);
      console.log(`[espruino-real] the sensor node running from Storage: ${/jsvars (\d+)/.exec(out)?.[1]} JsVars in use`);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n--- binary output ---\n${out.slice(-2000)}`);
    } finally {
      child.kill("SIGKILL");
    }
  }, 240000);
});
