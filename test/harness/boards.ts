import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { DIST, ROOT, runtimes, type RuntimeName } from "./runtimes";

/**
 * Simulated boards as processes, one per runtime of the matrix, each running the *built* board
 * agent (test/agent) and driven through its console: lines in on stdin, events out on stdout.
 *
 *   node           dist/node/test/agent/entry_node.js (file storage in the flash directory)
 *   espruino       dist/espruino/agent.js in the Espruino stand-in (net in 268-byte pieces, as on
 *                  an ESP8266; Storage in the flash directory)
 *   espruino-real  the same bundle on a real Espruino Linux binary (ESPRUINO=path); its console
 *                  lines come over a loopback socket (the binary's stdin thread races its event
 *                  queue on long input: an ASSERT in jsdevices.c), its prints on stdout; Storage
 *                  is espruino.flash in the flash directory
 *   lua51, lua53   dist/nodemcu-probe on the NodeMCU stand-in over luasocket (lua51: ESP8266 with
 *                  `file`; lua53: ESP32 with io.open)
 *   fengari        the same on the NodeMCU stand-in over Node sockets (ESP32 flavour)
 */
const AGENT_LUA = path.join(ROOT, "test/fixtures/nodemcu/agent.lua");
const STANDIN_DIR = path.join(ROOT, "host-sim/nodemcu");

/** Why a runtime cannot run boards here, or null. */
export function boardMissing(rt: RuntimeName): string | null {
  const m = runtimes[rt].missing();
  if (m !== null) return m;
  if (rt === "lua51" || rt === "lua53") {
    const exe = rt === "lua51" ? "lua5.1" : "lua5.3";
    if (spawnSync(exe, ["-e", 'require("socket")']).status !== 0) return `luasocket is not installed for ${exe} (Debian package lua-socket)`;
  }
  return null;
}

function command(rt: RuntimeName, flash: string, agentPort: number, boardEnv: Record<string, string>): { exe: string; args: string[]; env: Record<string, string> } {
  const lua = {
    PETREL_STANDIN_DIR: STANDIN_DIR,
    PETREL_LUA_DIST: path.join(DIST, "nodemcu-probe"),
    STANDIN_FLASH: flash,
    STANDIN_ESP32: rt === "lua51" ? "0" : "1",
    // tmr.now() 2 s before its 31-bit wrap: every scenario runs across it.
    STANDIN_US_START: String(2147483648 - 2000000),
  };
  switch (rt) {
    case "node":
      return { exe: process.execPath, args: [path.join(DIST, "node/test/agent/entry_node.js")], env: { PETREL_FLASH: flash } };
    case "espruino":
      return {
        exe: process.execPath,
        args: [path.join(DIST, "node/host-sim/espruino/board.js")],
        env: { PETREL_BUNDLE: path.join(DIST, "espruino/agent.js"), PETREL_FLASH: flash, PETREL_CHUNK: "268" },
      };
    case "espruino-real":
      // The interpreter exits once nothing is scheduled (a board never does): an idle interval.
      fs.writeFileSync(path.join(flash, "agent.js"), `var AGENT_PORT=${agentPort};setInterval(function(){},60000);\n` +
        (boardEnv.PETREL_CA === undefined ? "" : `var AGENT_CA=${JSON.stringify(fs.readFileSync(boardEnv.PETREL_CA, "latin1"))};\n`) +
        fs.readFileSync(path.join(DIST, "espruino/agent.js"), "latin1"), "latin1");
      return { exe: process.env.ESPRUINO as string, args: ["agent.js"], env: {} };
    case "lua51":
      return { exe: "lua5.1", args: [AGENT_LUA], env: lua };
    case "lua53":
      return { exe: "lua5.3", args: [AGENT_LUA], env: lua };
    case "fengari":
      return { exe: process.execPath, args: [path.join(DIST, "node/host-sim/nodemcu/fengari-board.js"), AGENT_LUA], env: lua };
    default:
      throw new Error(`${rt} has no sockets: it runs the probe's socket-free suites only`);
  }
}

/** Espruino's REPL decorations: the prompt, carriage returns and the erase-line sequence. */
const clean = (l: string) => l.replace(/\x1b\[J/g, "").replace(/\r/g, "").replace(/^>+/, "");

/** One board process. Lines it prints are kept in order; waits are bounded. */
export class Board {
  readonly lines: string[] = [];
  private stderr = "";
  private child: ChildProcess | undefined;
  private exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly exited: Promise<void>;
  /** The console socket (espruino-real), else undefined: lines go to stdin. */
  private console: net.Socket | undefined;
  private server: net.Server | undefined;
  /** Resolves once the board can take console lines. */
  private readonly ready: Promise<void>;
  private typing: Promise<void> = Promise.resolve();

  /** `env`: extra environment for the board process (e.g. STANDIN_HEAP). */
  constructor(readonly runtime: RuntimeName, readonly flash: string, private readonly env: Record<string, string> = {}) {
    let exited: () => void = () => {};
    this.exited = new Promise((resolve) => (exited = resolve));
    if (runtime !== "espruino-real") {
      this.start(0, exited);
      this.ready = Promise.resolve();
      return;
    }
    this.ready = new Promise((resolve) => {
      const server = net.createServer((sock) => {
        this.console = sock;
        sock.on("error", () => {});
        resolve();
      });
      this.server = server;
      server.listen(0, "127.0.0.1", () => this.start((server.address() as net.AddressInfo).port, () => {
        resolve(); // never connected: waits report the exit
        exited();
      }));
    });
  }

  private start(agentPort: number, exited: () => void): void {
    const c = command(this.runtime, this.flash, agentPort, this.env);
    const child = spawn(c.exe, c.args, { cwd: this.flash, env: { ...process.env, ...c.env, ...this.env }, stdio: ["pipe", "pipe", "pipe"] });
    this.child = child;
    let rest = "";
    child.stdout!.on("data", (d: Buffer) => {
      rest += d.toString("latin1");
      const parts = rest.split("\n");
      rest = parts.pop() as string;
      for (const p of parts) {
        const l = clean(p);
        if (l.length > 0) this.lines.push(l);
      }
    });
    child.stderr!.on("data", (d: Buffer) => (this.stderr += d.toString("latin1")));
    child.stdin!.on("error", () => {}); // a killed board: nothing more to type
    child.on("close", (code, signal) => {
      this.exit = { code, signal };
      this.server?.close();
      this.console?.destroy();
      exited();
    });
  }

  /** Types a console line (queued until the board's console is up). */
  send(line: string): void {
    this.typing = this.typing.then(() => this.ready).then(() => {
      if (this.exit !== undefined) return;
      if (this.console !== undefined) this.console.write(`${line}\n`);
      else this.child!.stdin!.write(`${line}\n`);
    });
  }

  /** What went wrong on the board: a stand-in fault, an agent error, or its exit. */
  private trouble(): string | undefined {
    const bad = this.lines.find((l) => l.startsWith("FAULT ") || l.startsWith("agent-error") || /^Uncaught|^lua: |^ASSERT/.test(l));
    if (bad !== undefined) return bad;
    if (this.exit !== undefined) return `the board exited (${this.exit.code ?? this.exit.signal})`;
    return undefined;
  }

  describe(): string {
    return `${this.runtime} board output:\n  ${this.lines.slice(-40).join("\n  ")}\nstderr:\n${this.stderr.slice(-3000)}`;
  }

  /** The index of the first line from `from` on that matches, once one does (bounded). */
  async waitFor(what: string, match: string | RegExp | ((l: string) => boolean), ms = 10000, from = 0): Promise<number> {
    const test = typeof match === "string" ? (l: string) => l === match : match instanceof RegExp ? (l: string) => match.test(l) : match;
    const deadline = Date.now() + ms;
    for (;;) {
      for (let i = from; i < this.lines.length; i++) if (test(this.lines[i])) return i;
      const t = this.trouble();
      if (t !== undefined) throw new Error(`waiting for ${what}: ${t}\n${this.describe()}`);
      if (Date.now() > deadline) throw new Error(`waiting for ${what}: not within ${ms} ms\n${this.describe()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** All lines matching, once there are `n` of them (bounded). */
  async waitCount(what: string, match: RegExp, n: number, ms = 10000): Promise<string[]> {
    let got: string[] = [];
    await this.waitFor(what, () => (got = this.lines.filter((l) => match.test(l))).length >= n, ms);
    return got;
  }

  /** Fails the test if the board reported a fault or an agent error. */
  check(): void {
    const bad = this.lines.find((l) => l.startsWith("FAULT ") || l.startsWith("agent-error"));
    if (bad !== undefined) throw new Error(`${bad}\n${this.describe()}`);
  }

  /** Power cut: SIGKILL, nothing runs after it. */
  async kill(): Promise<void> {
    await this.ready;
    if (this.exit === undefined) this.child?.kill("SIGKILL");
    await this.exited;
  }

  /** Ends the process (a quit line, then a bounded wait, then SIGKILL). */
  async stop(): Promise<void> {
    if (this.exit !== undefined) return;
    if (this.runtime === "espruino-real") return this.kill();
    this.send("quit");
    const t = setTimeout(() => this.child?.kill("SIGKILL"), 3000);
    await this.exited;
    clearTimeout(t);
  }
}
