import { spawn } from "node:child_process";
import * as path from "node:path";
import { DIST, ROOT } from "./runtimes";

const STANDIN_DIR = path.join(ROOT, "host-sim/nodemcu");
const FIXTURES = path.join(ROOT, "test/fixtures/nodemcu");
const LUA_DIST = path.join(DIST, "nodemcu");

export interface LuaRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string[];
  stderr: string;
}

/**
 * Runs a fixture script (test/fixtures/nodemcu) on the NodeMCU stand-in under `exe` (lua5.1,
 * lua5.3, or node with fengari-board.js in `extra.args`), its flash in `flash` (also the working
 * directory), PETREL_LUA_DIST defaulting to dist/nodemcu. `killOn`: a line that cuts the power
 * (SIGKILL); `extra.input`: typed on the console at once. Bounded by `limitMs`.
 */
export function runLua(exe: string, esp32: boolean, script: string, flash: string, env: Record<string, string>, limitMs = 20000,
  killOn?: string, extra: { args?: string[]; input?: string } = {}): Promise<LuaRun> {
  return new Promise((resolve) => {
    const child = spawn(exe, [...(extra.args ?? []), path.join(FIXTURES, script)], {
      cwd: flash,
      env: {
        ...process.env,
        PETREL_STANDIN_DIR: STANDIN_DIR,
        PETREL_LUA_DIST: LUA_DIST,
        STANDIN_FLASH: flash,
        STANDIN_ESP32: esp32 ? "1" : "0",
        // tmr.now() 20 ms before its 31-bit wrap: the ms clock is read across it.
        STANDIN_US_START: String(2147483648 - 20000),
        ...env,
      },
      stdio: [extra.input !== undefined ? "pipe" : "ignore", "pipe", "pipe"],
    });
    if (extra.input !== undefined) {
      child.stdin!.on("error", () => {});
      child.stdin!.write(extra.input);
    }
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d: Buffer) => {
      stdout += d.toString("latin1");
      // The board loses power: SIGKILL, nothing runs after it.
      if (killOn !== undefined && stdout.split("\n").includes(killOn)) child.kill("SIGKILL");
    });
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString("latin1")));
    const timer = setTimeout(() => {
      stderr += `\n[killed after ${limitMs} ms]`;
      child.kill("SIGKILL");
    }, limitMs);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, out: stdout.split("\n").filter((l) => l.length > 0), stderr });
    });
  });
}
