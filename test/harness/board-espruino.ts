import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
// @ts-expect-error: a plain .mjs module of the tools, without type declarations
import { loadProfile, packBoard } from "../../tools/boards.mjs";
import { PATIENCE, type BoardUnderTest } from "./board-scenario";
import { DIST, ROOT } from "./runtimes";

/**
 * An Espruino board profile as `make flash` leaves the board: its packed Storage files (`app`,
 * `app.config`, `app.commands`, `app.held`, `.bootcde`) in the flash of a board-sized 32-bit interpreter
 * (../shared/runtimes: espruino-esp8266, 1,600 slots; espruino-esp32, 3,400), booted with no
 * arguments so that it runs `.bootcde` from `espruino.flash` in its directory, the console on its
 * stdin/stdout. A power cut is SIGKILL (the interpreter handles SIGTERM); the flash file stays.
 *
 * The flash is written by the 64-bit `espruino-linux` beside the runtime (the same Storage
 * format), which runs a script of Storage.write calls: it has no process.env, and
 * fs.readFileSync gives the file's bytes as a string.
 *
 * Typing: the interpreter's stdin thread races its event queue on long or bursty input, so one
 * short line is written at a time, a few characters per write, and its answer waited for.
 */

export const PROMPT = "petrel> ";
/** How long a boot may take to reach the node's prompt (qemu on a loaded machine; the boot guard's window is 2 s). */
const BOOT_MS = 30_000;
/** What a line typed at the console may take to be answered, unless the caller says. */
const TYPE_MS = 10_000;
/** Typing: characters per write, and the pause between writes (ms). */
const TYPE_CHUNK = 8;
const TYPE_GAP_MS = 5;
/** Quiet after a short echo that counts as characters lost (ms), and how often a line is typed again. */
const LOST_MS = 5000;
const RETYPES = 2;
/** Largest difference between the ballast asked for and what it measures, in slots. */
const BALLAST_SLACK = 2;

/** The folder of prebuilt interpreters: PETREL_RUNTIMES, else ../shared/runtimes beside the repository. */
export function runtimesDir(): string {
  return process.env.PETREL_RUNTIMES !== undefined ? path.resolve(process.env.PETREL_RUNTIMES) : path.resolve(ROOT, "../shared/runtimes");
}

/** The board-sized interpreter of each Espruino board profile. */
export const ESPRUINO_BOARD_RUNTIMES: Record<string, string> = {
  "esp8266-espruino": "espruino-esp8266",
  "esp32-espruino": "espruino-esp32",
};

/** Why a board-sized Espruino runtime cannot run here (and how to get it), or null. */
export function espruinoBoardMissing(runtime: string): string | null {
  for (const exe of [runtime, "espruino-linux"]) {
    const p = path.join(runtimesDir(), exe);
    if (!fs.existsSync(p)) {
      return `${p} is missing: the board-sized Espruino interpreters are prebuilt in ../shared/runtimes (its README.md says how to build them ` +
        `from Espruino's sources: boards/LINUX.py without unicode strings, fixed variables, 32-bit); set PETREL_RUNTIMES to the folder that holds them`;
    }
  }
  if (!fs.existsSync(path.join(DIST, "espruino/boot.js"))) return "dist/espruino/boot.js is not built (make build)";
  if (spawnSync("sh", ["-c", "command -v mosquitto && command -v mosquitto_sub && command -v mosquitto_pub"]).status !== 0) {
    return "mosquitto and mosquitto-clients are not installed (Debian packages; make test installs them)";
  }
  return null;
}

/**
 * Packs a board into a private copy of dist (packBoard writes dist/boards/<name>/, which other
 * suites and `make BOARD=` also write): only the boot guard is taken from dist/espruino, the app
 * is bundled from the sources. Returns Storage name → file, and the directory to remove.
 */
export async function packEspruinoBoard(board: string): Promise<{ storage: Record<string, string>; dist: string }> {
  const dist = fs.mkdtempSync(path.join(os.tmpdir(), `petrel-pack-${board}-`));
  fs.mkdirSync(path.join(dist, "espruino"));
  fs.copyFileSync(path.join(DIST, "espruino/boot.js"), path.join(dist, "espruino/boot.js"));
  const r = (await packBoard(loadProfile(board), dist)) as { storage: Record<string, string> };
  return { storage: r.storage, dist };
}

/** Text as the console shows it: ANSI sequences out, each line what is left after its last carriage return. */
function screenLine(raw: string): string {
  const l = raw.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "").replace(/\r+$/, "");
  const cr = l.lastIndexOf("\r");
  return (cr >= 0 ? l.substring(cr + 1) : l).replace(/\s+$/, "");
}

function lines(raw: string): string[] {
  const parts = raw.split("\n");
  parts.pop(); // the line still being written (a prompt)
  return parts.map(screenLine);
}

/** The first sign in the output that the interpreter failed, as one line; undefined when none. */
function troubleIn(out: string): string | undefined {
  const m = /OUT OF MEMORY[^\n]*|ASSERT\([^\n]*\) FAILED[^\n]*|Uncaught [^\n]*|New interpreter error[^\n]*|HARD FAULT[^\n]*/.exec(out);
  return m !== null ? screenLine(m[0]).replace(/\s+/g, " ") : undefined;
}

/** Writes Storage files into `dir`/espruino.flash with espruino-linux. */
function writeFlash(dir: string, files: Record<string, { file?: string; prefix?: string; text?: string }>): void {
  const linux = path.join(runtimesDir(), "espruino-linux");
  const writes = Object.entries(files).map(([name, f]) => {
    const body = [f.prefix !== undefined ? JSON.stringify(f.prefix) : "", f.file !== undefined ? `F.readFileSync(${JSON.stringify(f.file)})` : "",
      f.text !== undefined ? JSON.stringify(f.text) : ""].filter((x) => x !== "").join("+");
    return `if(!S.write(${JSON.stringify(name)},${body}))print("WRITE FAILED ${name}");`;
  });
  const check = Object.keys(files).map((n) => `print("LEN ${n} "+S.read(${JSON.stringify(n)}).length);`);
  const script = path.join(dir, "write-flash.js");
  fs.writeFileSync(script, `var S=require("Storage"),F=require("fs");\n${writes.join("\n")}\n${check.join("\n")}\n`);
  fs.rmSync(path.join(dir, "espruino.flash"), { force: true });
  const r = spawnSync(linux, [script], { cwd: dir, encoding: "latin1", timeout: 30_000, input: "" });
  fs.rmSync(script, { force: true });
  if (r.status !== 0 || /WRITE FAILED|Uncaught|ERROR/.test(r.stdout)) throw new Error(`writing the flash failed (exit ${r.status}): ${r.stdout.slice(-1500)}${r.stderr}`);
  for (const [name, f] of Object.entries(files)) {
    const want = (f.prefix ?? "").length + (f.file !== undefined ? fs.statSync(f.file).size : 0) + (f.text ?? "").length;
    const got = new RegExp(`LEN ${name.replace(/\./g, "\\.")} (\\d+)`).exec(r.stdout);
    if (got === null || Number(got[1]) !== want) throw new Error(`flash: ${name} reads back ${got === null ? "nothing" : `${got[1]} bytes`}, written ${want}`);
  }
}

/** The code put in front of `.bootcde` to hold `n` slots: an array of `n` small integers (a slot each), kept in a global. */
function ballastCode(n: number): string {
  return `(function(){var b=[];for(var i=0;i<${n};i++)b.push(i);global.petrelBallast=b;})();\n`;
}

/** Boots `.bootcde` = `code` + a usage print on the runtime; the usage it prints. */
async function usageAfter(runtimeExe: string, code: string): Promise<number> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-ballast-"));
  try {
    writeFlash(dir, { ".bootcde": { text: `${code}print("USAGE="+process.memory().usage);\n` } });
    const child = spawn(runtimeExe, [], { cwd: dir, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString("latin1")));
    try {
      // the number's end too: a read can stop inside it
      for (let waited = 0; !/USAGE=\d+\r?\n/.test(out); waited += 20) {
        if (child.exitCode !== null || waited > BOOT_MS) throw new Error(`ballast calibration: no usage printed (${troubleIn(out) ?? "no answer"}): ${out.slice(-500)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      child.kill("SIGKILL");
    }
    return Number((/USAGE=(\d+)/.exec(out) as RegExpExecArray)[1]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The ballast code that takes `slots` slots on this runtime, measured: process.memory().usage at
 * boot with it, less without it. The count is corrected until the two are within a couple of slots.
 */
export async function calibrateBallast(runtimeExe: string, slots: number): Promise<{ code: string; slots: number }> {
  const base = await usageAfter(runtimeExe, "");
  let n = slots;
  let measured = 0;
  for (let attempt = 0; attempt < 4; attempt++) {
    measured = (await usageAfter(runtimeExe, ballastCode(n))) - base;
    if (Math.abs(measured - slots) <= BALLAST_SLACK) return { code: ballastCode(n), slots: measured };
    n += slots - measured;
  }
  throw new Error(`ballast: asked ${slots} slots, measured ${measured} after 4 corrections`);
}

export interface EspruinoBoardOptions {
  /** Slots taken before the node boots (code in front of `.bootcde`), calibrated at the first boot. */
  ballast?: number;
  /** Storage name → packed file; when missing, the board is packed at the first boot. */
  storage?: Record<string, string>;
}

export class EspruinoBoard implements BoardUnderTest {
  readonly unit = "slots";
  /** The ballast's measured size in slots (set at the first boot when a ballast was asked for). */
  ballastSlots = 0;
  private readonly dir: string;
  private storage: Record<string, string> | undefined;
  private packedDist: string | undefined;
  private flashed = false;
  private child: ChildProcess | undefined;
  private raw = "";
  /** Output of earlier boots (lines() is since the last boot; a report may want them all). */
  private earlier = "";
  private killing = false;
  private exited: string | undefined;
  /** Set when a typed line got no echo or no prompt: the board no longer answers its console. */
  private hung: string | undefined;
  /** Lines typed again after their end was lost on the way in (see type). */
  retyped = 0;

  constructor(readonly board: string, readonly runtimeExe: string, private readonly opts: EspruinoBoardOptions = {}) {
    this.runtime = path.basename(runtimeExe);
    this.storage = opts.storage;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `petrel-${board}-`));
  }

  readonly runtime: string;

  private async flash(): Promise<void> {
    if (this.storage === undefined) {
      const p = await packEspruinoBoard(this.board);
      this.storage = p.storage;
      this.packedDist = p.dist;
    }
    let prefix = "";
    if (this.opts.ballast !== undefined && this.opts.ballast > 0) {
      const b = await calibrateBallast(this.runtimeExe, this.opts.ballast);
      prefix = b.code;
      this.ballastSlots = b.slots;
    }
    const files: Record<string, { file: string; prefix?: string }> = {};
    for (const [name, file] of Object.entries(this.storage)) files[name] = name === ".bootcde" ? { file, prefix } : { file };
    writeFlash(this.dir, files);
    this.flashed = true;
  }

  async boot(): Promise<void> {
    if (this.child !== undefined) throw new Error("boot: the board is on; kill() first");
    if (!this.flashed) await this.flash();
    this.earlier += this.raw;
    this.raw = "";
    this.exited = undefined;
    this.hung = undefined;
    this.killing = false;
    const child = spawn(this.runtimeExe, [], { cwd: this.dir, stdio: ["pipe", "pipe", "pipe"] });
    this.child = child;
    child.stdout.on("data", (d: Buffer) => (this.raw += d.toString("latin1")));
    child.stderr.on("data", (d: Buffer) => { if (process.env.PETREL_BOARD_STDERR) process.stderr.write(d); }); // its start-up notes ("Size of JsVar is now 12 bytes")
    child.stdin.on("error", () => undefined); // a write racing its exit
    child.once("exit", (code, sig) => {
      if (!this.killing) this.exited = `the interpreter exited (${sig !== null ? sig : `status ${code}`})`;
      if (this.child === child) this.child = undefined;
    });
    const start = "console: type help";
    await this.wait("the node's console prompt", 0, () => {
      const at = this.raw.indexOf(start);
      return at >= 0 && this.raw.indexOf(PROMPT, at) >= 0;
    }, BOOT_MS, () => (/SAFE MODE[^\n]*/.exec(this.raw) ?? [undefined])[0]);
  }

  /**
   * Waits for `cond`; fails at once on trouble printed since `from` (or `bad`) or an exit, and
   * after `ms`. Trouble from before (a failed boot) does not stop the REPL being asked.
   */
  private async wait(what: string, from: number, cond: () => boolean, ms: number, bad?: () => string | undefined): Promise<void> {
    for (let waited = 0; ; waited += 10) {
      if (cond()) return;
      const found = (): string | undefined => troubleIn(this.raw.substring(from)) ?? this.exited ?? (bad !== undefined ? bad() : undefined);
      if (found() !== undefined) {
        // the rest of the report (its stack, "New interpreter error") is still coming: let it end first
        await this.settle();
        throw new Error(`${this.board}: ${found()} (waiting for ${what})`);
      }
      if (waited >= ms * PATIENCE) throw new Error(`${this.board}: gave up after ${ms * PATIENCE} ms waiting for ${what}; last output: ${lines(this.raw + "\n").slice(-6).join(" | ")}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Waits until nothing more has been printed for 300 ms (at most 3 s). */
  private async settle(): Promise<void> {
    let seen = -1;
    for (let waited = 0; waited < 3000 && this.raw.length !== seen; waited += 300) {
      seen = this.raw.length;
      await new Promise((r) => setTimeout(r, 300));
    }
  }

  async type(line: string, until?: RegExp, ms = TYPE_MS): Promise<string[]> {
    const child = this.child;
    if (child === undefined || this.exited !== undefined) throw new Error(`${this.board}: type(${line}): the board is off (${this.trouble() ?? "not booted"})`);
    const from = this.raw.length;
    // a few characters at a time, as a serial line brings them: the emulated interpreter's stdin
    // thread races its event queue, and a whole line in one write was seen to arrive garbled
    // (characters lost, others from the console's own redraw mixed in) on a loaded machine
    // Even so a loaded machine was seen to lose the end of a line ("set brokers 12" echoed, then
    // nothing): when the echo stops short and the board prints nothing more for a while, what
    // arrived is erased (DEL, which does nothing on an empty line) and the line typed again.
    const text = line + "\n";
    for (let attempt = 0; attempt <= RETYPES; attempt++) {
      if (attempt > 0) {
        this.retyped++;
        child.stdin?.write("\x7f".repeat(line.length + 1));
      }
      for (let i = 0; i < text.length; i += TYPE_CHUNK) {
        child.stdin?.write(text.substring(i, i + TYPE_CHUNK));
        if (i + TYPE_CHUNK < text.length) await new Promise((r) => setTimeout(r, TYPE_GAP_MS));
      }
      if (await this.echoed(line, from)) break;
    }
    // the echo of the line ends it; a log line redrawn meanwhile repeats what was typed so far
    let echoEnd = -1;
    const after = (): string => this.raw.substring(echoEnd);
    // the answer ends at the next prompt at the start of a line: the node's, or the REPL's
    const prompted = (): boolean => {
      const rest = after();
      return rest.startsWith(PROMPT) || rest.indexOf("\n" + PROMPT) >= 0 || /(^|\n)>/.test(rest);
    };
    try {
      await this.wait(`"${line}" to be answered${until !== undefined ? ` with ${until}` : ""}`, from, () => {
        if (echoEnd < 0) {
          const at = this.echoAt(line, from);
          if (at < 0) return false;
          echoEnd = at + line.length + 2;
        }
        return until !== undefined ? lines(after()).some((l) => until.test(l)) : prompted();
      }, ms);
    } catch (e) {
      // no echo, or no prompt after it: the console itself is stuck, not merely a late answer
      if (this.exited === undefined && (echoEnd < 0 || !prompted())) {
        this.hung = `the console stopped answering: "${line.slice(0, 60)}" got ${echoEnd < 0 ? "no echo" : "no prompt after it"} within ${ms} ms` +
          (this.retyped > 0 ? ` (${this.retyped} line(s) typed again after characters were lost)` : "");
      }
      throw e;
    }
    const got = lines(after());
    if (until === undefined) return got;
    const hit = got.findIndex((l) => until.test(l));
    return got.slice(0, hit + 1);
  }

  /** Where the echo of `line` (typed after `from`) is in the output, or -1. */
  private echoAt(line: string, from: number): number {
    return this.raw.indexOf(line + "\r\n", from);
  }

  /**
   * Whether the echo of `line` arrives: false once the board has printed nothing for LOST_MS with
   * the echo still short of it (characters lost on the way in), or it exited, or TYPE_MS passed.
   */
  private async echoed(line: string, from: number): Promise<boolean> {
    let seen = this.raw.length;
    let quiet = 0;
    for (let waited = 0; waited < TYPE_MS; waited += 50) {
      if (this.echoAt(line, from) >= 0) return true;
      if (this.exited !== undefined) return false;
      if (this.raw.length !== seen) {
        seen = this.raw.length;
        quiet = 0;
      } else {
        quiet += 50;
        if (quiet >= LOST_MS) return false;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return false;
  }

  lines(): string[] {
    return lines(this.raw);
  }

  /** Every line since the board was made, all boots. */
  allLines(): string[] {
    return lines(this.earlier + this.raw);
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (child === undefined) return;
    this.killing = true;
    const gone = new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once("exit", () => r())));
    child.kill("SIGKILL");
    await gone;
    this.child = undefined;
  }

  /**
   * Slots in use after a collection: `status`'s memory line. When the node's console is not
   * there (its boot failed and the line is the REPL's), the REPL is asked instead: what the
   * failed boot left in use.
   */
  async memory(): Promise<number> {
    if (this.hung !== undefined) throw new Error(`${this.board}: ${this.hung}`);
    const repl = this.raw.lastIndexOf(PROMPT) < 0;
    const got = repl
      ? await this.type(`print("memory: "+process.memory().usage+" of "+process.memory().total)`, /^memory: \d+/)
      : await this.type("status", /^memory: \d+/);
    const m = /^memory: (\d+) of (\d+)/.exec(got[got.length - 1]);
    if (m === null) throw new Error(`${this.board}: no memory figure in: ${got.join(" | ")}`);
    return Number(m[1]);
  }

  trouble(): string | undefined {
    return troubleIn(this.raw) ?? this.exited ?? this.hung;
  }

  async dispose(): Promise<void> {
    await this.kill();
    fs.rmSync(this.dir, { recursive: true, force: true });
    if (this.packedDist !== undefined) fs.rmSync(this.packedDist, { recursive: true, force: true });
  }
}

/** An Espruino board profile on a board-sized interpreter (see EspruinoBoard). */
export function espruinoBoard(board: string, runtimeExe: string, opts: EspruinoBoardOptions = {}): EspruinoBoard {
  return new EspruinoBoard(board, runtimeExe, opts);
}
