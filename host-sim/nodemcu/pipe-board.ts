/**
 * A simulated NodeMCU board in an interpreter that has no sockets, timers or firmware modules of
 * its own (NodeMCU's luac.cross, 64- or 32-bit): its stand-in's host layer is
 * host-pipe.lua, and this side serves it, relaying its sockets to real TCP on loopback. Host-only:
 * never shipped to a board.
 *
 *   const b = new PipeBoard({ command: [luacCross, "-F", "lfs.img", "-e", "driver.lua"], cwd: flash, env });
 *   await b.waitFor("connect"); b.type("status"); const exit = await b.stop();
 *
 * The board's stdout is its UART (lines in `lines`); requests come on its fd 3, answers go to its
 * fd 4 (protocol in host-pipe.lua). Those two are named pipes (FIFOs), not the socketpairs Node
 * makes for "pipe" stdio: luac.cross can only reach them by io.open("/dev/fd/N"), and Linux
 * refuses to open a socket that way (ENXIO). Each end is held by one side only, so either side
 * sees end-of-file when the other goes.
 *
 * Loopback only: connections to anything but 127.0.0.0/8 and ::1 fail at once (and are listed in
 * `offLoopback`), and only "localhost" and address literals resolve. Every wait is bounded: the
 * board's own waits by what it asks (at most MAX_WAIT_S), the whole run by `limitMs`, stop() by
 * its grace time.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import * as tls from "node:tls";

export interface PipeBoardOptions {
  /** The interpreter and its arguments, e.g. [luac-cross-53-32, "-F", img, "-e", driver]. */
  command: string[];
  /** The board's flash directory: its working directory. */
  cwd: string;
  /** Extra environment (undefined removes a variable). */
  env?: Record<string, string | undefined>;
  /** The whole run is cut (SIGKILL) after this long (default 60 s). */
  limitMs?: number;
}

export interface PipeExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Everything the board wrote on stderr. */
  stderr: string;
  /**
   * stderr less luac.cross's own notices, plus this side's findings (protocol faults, the run's
   * limit). luac.cross 5.3 exits 0 after an uncaught error, so any text here is a failure.
   */
  errors: string;
  /** Exit status 0, no signal, no errors. */
  ok: boolean;
}

/** What luac.cross prints on stderr when all is well (-F). */
const NOTICES = [/^LFS image loaded$/];
/** A board's wait is answered within this long, whatever it asks. */
const MAX_WAIT_S = 60;
/** Data goes to the board in pieces of at most one TCP segment, as NodeMCU receives it. */
const SEGMENT = 1460;

const loopback = (ip: string) => (net.isIPv4(ip) && ip.startsWith("127.")) || ip === "::1";

export class PipeBoard {
  /** The board's stdout (its UART), line by line, "\r" removed, empty lines kept. */
  readonly lines: string[] = [];
  /** Connections the board asked for off loopback (each failed at once). */
  readonly offLoopback: string[] = [];
  /** Requests served, waits answered, events delivered. */
  readonly stats = { requests: 0, waits: 0, events: 0 };
  /** Resolves once the board has exited (never rejects). */
  readonly exited: Promise<PipeExit>;

  private readonly child: ChildProcess;
  private readonly dir: string;
  private readonly req: net.Socket;
  private readonly rep: net.Socket;
  private readonly socks = new Map<number, net.Socket>();
  private readonly t0 = performance.now();
  private events: string[] = [];
  private typed: string[] = [];
  private consoleOn = false;
  private waiting: NodeJS.Timeout | undefined;
  private waitPending = false;
  private flushing = false;
  private stopping = false;
  private stderr = "";
  private outRest = "";
  private faults = "";
  private exit: PipeExit | undefined;
  private readonly listeners = new Set<() => void>();
  private readonly limit: NodeJS.Timeout;

  constructor(opts: PipeBoardOptions) {
    const [exe, ...args] = opts.command;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-pipe-"));
    const reqPath = path.join(this.dir, "req");
    const repPath = path.join(this.dir, "rep");
    execFileSync("mkfifo", ["-m", "600", reqPath, repPath]);
    const { O_RDONLY, O_WRONLY, O_NONBLOCK } = fs.constants;
    // A FIFO opens for writing only once a reader holds it: each read end first.
    const reqRead = fs.openSync(reqPath, O_RDONLY | O_NONBLOCK);
    const reqWrite = fs.openSync(reqPath, O_WRONLY | O_NONBLOCK);
    const repRead = fs.openSync(repPath, O_RDONLY | O_NONBLOCK);
    const repWrite = fs.openSync(repPath, O_WRONLY | O_NONBLOCK);
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...process.env, ...opts.env })) if (v !== undefined) env[k] = v;
    // Its own process group, so a wrapper script and what it starts go together on kill().
    this.child = spawn(exe, args, { cwd: opts.cwd, env, stdio: ["ignore", "pipe", "pipe", reqWrite, repRead], detached: true });
    fs.closeSync(reqWrite);
    fs.closeSync(repRead);
    this.req = new net.Socket({ fd: reqRead, readable: true, writable: false });
    this.rep = new net.Socket({ fd: repWrite, readable: false, writable: true });
    this.rep.on("error", () => {}); // the board is gone: its exit says so
    this.req.on("error", () => {});

    let reqRest = "";
    this.req.on("data", (d: Buffer) => {
      reqRest += d.toString("latin1");
      let nl;
      while ((nl = reqRest.indexOf("\n")) >= 0) {
        const line = reqRest.slice(0, nl);
        reqRest = reqRest.slice(nl + 1);
        this.request(line);
      }
    });
    this.child.stdout!.on("data", (d: Buffer) => {
      this.outRest += d.toString("latin1");
      const parts = this.outRest.split("\n");
      this.outRest = parts.pop() as string;
      for (const p of parts) this.lines.push(p.replace(/\r/g, ""));
      this.notify();
    });
    this.child.stderr!.on("data", (d: Buffer) => (this.stderr += d.toString("latin1")));

    const limitMs = opts.limitMs ?? 60_000;
    this.limit = setTimeout(() => {
      this.fault(`killed after ${limitMs} ms (the run's limit)`);
      this.signal("SIGKILL");
    }, limitMs);

    this.exited = new Promise((resolve) => {
      const done = (code: number | null, signal: NodeJS.Signals | null) => {
        if (this.exit !== undefined) return;
        if (this.outRest.length > 0) this.lines.push(this.outRest.replace(/\r/g, ""));
        this.outRest = "";
        this.cleanup();
        const errors = this.stderr.split("\n").filter((l) => l.length > 0 && !NOTICES.some((n) => n.test(l))).join("\n") + this.faults;
        this.exit = { code, signal, stderr: this.stderr, errors, ok: code === 0 && signal === null && errors === "" };
        this.notify();
        resolve(this.exit);
      };
      this.child.on("error", (e) => {
        this.fault(`could not start ${exe}: ${e.message}`);
        done(null, null);
      });
      this.child.on("close", done);
    });
  }

  /**
   * What the board has written since its last newline, "\r" removed: a prompt waiting for input
   * ("petrel> ", "> ") is only here until the next line completes it.
   */
  get partial(): string {
    return this.outRest.replace(/\r/g, "");
  }

  /** Types a console line (delivered once the board's console is on, as a UART buffers it). */
  type(line: string): void {
    const ev = `line 0 ${Buffer.from(line + "\n", "latin1").toString("hex")}`;
    if (this.consoleOn) this.push(ev);
    else this.typed.push(ev);
  }

  /** The first line (from now or already printed) that matches; rejects after timeoutMs or on exit. */
  waitFor(match: string | RegExp | ((l: string) => boolean), timeoutMs = 10_000): Promise<string> {
    const test = typeof match === "string" ? (l: string) => l === match : match instanceof RegExp ? (l: string) => match.test(l) : match;
    return new Promise((resolve, reject) => {
      const check = () => {
        const hit = this.lines.find(test);
        if (hit !== undefined) return finish(() => resolve(hit));
        if (this.exit !== undefined) return finish(() => reject(new Error(`the board exited (${this.exit!.code ?? this.exit!.signal}) before ${String(match)}: ${this.describe()}`)));
      };
      const timer = setTimeout(() => finish(() => reject(new Error(`no line ${String(match)} within ${timeoutMs} ms: ${this.describe()}`))), timeoutMs);
      const finish = (then: () => void) => {
        clearTimeout(timer);
        this.listeners.delete(check);
        then();
      };
      this.listeners.add(check);
      check();
    });
  }

  /** The last lines and the errors so far, for a failure message. */
  describe(): string {
    return `\n--- stdout (last 40) ---\n${this.lines.slice(-40).join("\n")}\n--- stderr ---\n${this.stderr}${this.faults}`;
  }

  /**
   * A clean power-off: the board's next wait (or the one in progress) is answered "stop", and the
   * board exits 0 there. If it does not within graceMs (busy, or not waiting), it is killed.
   */
  stop(graceMs = 5000): Promise<PipeExit> {
    if (this.exit === undefined && !this.stopping) {
      this.stopping = true;
      if (this.waitPending) this.flush();
      const t = setTimeout(() => {
        this.fault(`did not stop within ${graceMs} ms`);
        this.signal("SIGKILL");
      }, graceMs);
      void this.exited.then(() => clearTimeout(t));
    }
    return this.exited;
  }

  /** A power cut: SIGKILL, nothing more runs on the board; its connections close with it. */
  kill(): Promise<PipeExit> {
    if (this.exit === undefined) this.signal("SIGKILL");
    return this.exited;
  }

  private signal(sig: NodeJS.Signals): void {
    try {
      process.kill(-this.child.pid!, sig);
    } catch {
      this.child.kill(sig);
    }
  }

  private fault(msg: string): void {
    this.faults += `\npipe-board: ${msg}`;
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }

  private clock(): string {
    return ((performance.now() - this.t0) / 1000).toFixed(6);
  }

  private answer(lines: string[]): void {
    this.rep.write(lines.map((l) => l + "\n").join("") + `T ${this.clock()}\n`);
  }

  private push(ev: string): void {
    this.events.push(ev);
    // Events of one callback (a chunk split in segments) go in one answer.
    if (this.waitPending && !this.flushing) {
      this.flushing = true;
      setImmediate(() => {
        this.flushing = false;
        if (this.waitPending) this.flush();
      });
    }
  }

  /** Answers the pending wait with every event so far (or "stop"). */
  private flush(): void {
    clearTimeout(this.waiting);
    this.waiting = undefined;
    this.waitPending = false;
    this.stats.waits++;
    if (this.stopping) {
      this.answer(["stop 0"]);
      return;
    }
    const evs = this.events;
    this.events = [];
    this.stats.events += evs.length;
    this.answer(evs);
  }

  private request(line: string): void {
    this.stats.requests++;
    const sp = line.indexOf(" ");
    const op = sp < 0 ? line : line.slice(0, sp);
    const rest = sp < 0 ? "" : line.slice(sp + 1);
    const f = rest.split(" ");
    switch (op) {
      case "H":
        // Both pipes are open on the board's side by now: their names are no longer needed, and
        // nothing is left behind if this process dies.
        fs.rmSync(this.dir, { recursive: true, force: true });
        this.answer([]);
        return;
      case "W": {
        const s = Number(rest);
        if (!Number.isFinite(s) || s < 0) return this.fault(`bad wait ${rest}`);
        this.waitPending = true;
        if (this.events.length > 0 || this.stopping || s === 0) return this.flush();
        this.waiting = setTimeout(() => this.flush(), Math.min(s, MAX_WAIT_S) * 1000);
        return;
      }
      case "C":
        return this.connect(Number(f[0]), Number(f[1]), f[2] ?? "", f[3]);
      case "S": {
        const id = Number(f[0]);
        const s = this.socks.get(id);
        if (s === undefined) return; // lost meanwhile: its event is on the way
        s.write(Buffer.from(f[1] ?? "", "hex"), () => {
          if (this.socks.get(id) === s) this.push(`sent ${id}`);
        });
        return;
      }
      case "X": {
        const id = Number(f[0]);
        const s = this.socks.get(id);
        this.socks.delete(id);
        s?.destroy();
        return;
      }
      case "K":
        this.consoleOn = true;
        for (const ev of this.typed) this.push(ev);
        this.typed = [];
        return;
      case "R": {
        const ip = net.isIP(rest) ? rest : rest === "localhost" ? "127.0.0.1" : undefined;
        this.answer(ip === undefined ? [] : [`a ${ip}`]);
        return;
      }
      case "L": {
        const out: string[] = [];
        let names: string[] = [];
        try {
          names = fs.readdirSync(rest);
        } catch {
          names = [];
        }
        for (const name of names) {
          const st = fs.statSync(path.join(rest, name), { throwIfNoEntry: false });
          if (st !== undefined && st.isFile() && !name.includes("\n")) out.push(`n ${st.size} ${name}`);
        }
        this.answer(out);
        return;
      }
      default:
        this.fault(`unknown request: ${line.slice(0, 80)}`);
        this.signal("SIGKILL");
    }
  }

  /** As the luasocket host reports: "open", then data/eof/reset; a refusal is "fail". */
  private connect(id: number, port: number, ip: string, ca: string | undefined): void {
    if (!loopback(ip) || !(port > 0 && port < 65536)) {
      this.offLoopback.push(`${ip}:${port}`);
      this.push(`fail ${id}`);
      return;
    }
    // TLS as the stand-in's tls module does it: the chain verified against the CA when one is
    // set (not the host name), or no verification at all.
    const s = ca === undefined
      ? net.connect({ host: ip, port })
      : tls.connect({ host: ip, port, ca: ca === "*" ? undefined : Buffer.from(ca, "hex").toString("latin1"), rejectUnauthorized: ca !== "*",
        checkServerIdentity: () => undefined });
    this.socks.set(id, s);
    let opened = false;
    const lost = () => {
      if (this.socks.get(id) !== s) return;
      this.socks.delete(id);
      s.destroy();
      this.push(`${opened ? "reset" : "fail"} ${id}`);
    };
    s.on(ca === undefined ? "connect" : "secureConnect", () => {
      opened = true;
      this.push(`open ${id}`);
    });
    s.on("data", (d: Buffer) => {
      for (let i = 0; i < d.length; i += SEGMENT) this.push(`data ${id} ${d.subarray(i, i + SEGMENT).toString("hex")}`);
    });
    s.on("end", () => {
      if (this.socks.get(id) !== s) return;
      this.socks.delete(id);
      s.destroy();
      this.push(`eof ${id}`);
    });
    s.on("error", lost);
    s.on("close", lost);
  }

  private cleanup(): void {
    clearTimeout(this.limit);
    clearTimeout(this.waiting);
    for (const s of this.socks.values()) s.destroy();
    this.socks.clear();
    this.req.destroy();
    this.rep.destroy();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
