import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PipeBoard, type PipeExit } from "../../host-sim/nodemcu/pipe-board";
// @ts-expect-error: a plain .mjs module of the tools, without type declarations
import { loadProfile, packBoard } from "../../tools/boards.mjs";
// @ts-expect-error: a plain .mjs module of the tools, without type declarations
import { buildLfsImage, runtimesDir } from "../../tools/lfs.mjs";
import type { BoardUnderTest } from "./board-scenario";
import { DIST, ROOT } from "./runtimes";

/**
 * A NodeMCU board profile booted as `make flash` leaves the board: its packed modules in an LFS
 * image, init.lua on the file system. The image runs on NodeMCU's own 32-bit Lua 5.3 luac.cross
 * (`-F lfs.img`, the only interpreter that loads an LFS image), with the stand-in of the
 * firmware's API over the pipe host (host-sim/nodemcu/lfs-board.lua, pipe-board.ts: its sockets
 * relayed to real TCP on loopback) and the console on the pipe.
 *
 * esp32-nodemcu runs its own packed lfs.img. esp8266-nodemcu's firmware is Lua 5.1, and no
 * interpreter here loads a 5.1 image: it runs a Lua 5.3 image of the same packed modules (the
 * runtime name says so), its stand-in in the ESP8266 flavour (`file.open`, ESP8266 wifi).
 *
 * Heap: the node's `status` prints `memory: <used> bytes of Lua heap in use, <free> free`, which is
 * collectgarbage("count") of the whole interpreter. Before init.lua runs, lfs-board.lua measures
 * what is there already (luac.cross's own libraries and the LFS table, the pipe host and the
 * stand-in) and memory() subtracts it: what is left is the node's.
 */

const STANDIN_DIR = path.join(ROOT, "host-sim/nodemcu");
const DRIVER = path.join(STANDIN_DIR, "lfs-board.lua");
const PROMPT = "petrel> ";
/** A log line of the node (firmware/port/log.ts): "[   12.345] info  …". */
const LOG_LINE = /^\[ *\d+\.\d{3}\] /;
/** The exit status of the stand-in's node.restart() (STANDIN_RESTART=exit). */
const RESTART = 4;
/** Restarts the board may ask for (node.restart) within one boot() before it counts as a boot loop. */
const MAX_RESTARTS = 20;

/** Why a NodeMCU board cannot run here (and how to get what is missing), or null. */
export function nodemcuBoardMissing(board: string): string | null {
  const need = ["luac-cross-53-32", "luac-cross-53"];
  if (loadProfile(board).lua === "5.1") need.push("luac-cross-51");
  for (const n of need) {
    const p = path.join(runtimesDir(), n);
    if (!fs.existsSync(p)) {
      return `${p} is missing: NodeMCU's luac.cross, prebuilt in ../shared/runtimes (its README.md says how it was built from NodeMCU's ` +
        `firmware sources); set PETREL_RUNTIMES to the folder that holds it`;
    }
  }
  if (!fs.existsSync(path.join(DIST, "nodemcu/firmware/targets/nodemcu/app.lua"))) return "dist/nodemcu is not built (make build)";
  return null;
}

/** What the packed board's image came to, for reports. */
export interface NodemcuImage {
  /** The image that runs (Lua 5.3). */
  image: string;
  /** The profile's own image: its size in flash and how that was measured, its Lua. */
  size: number;
  how: string;
  lua: string;
  modules: number;
}

export class NodemcuBoard implements BoardUnderTest {
  readonly unit = "bytes";
  readonly runtime: string;
  /** Set once the board is packed (the first boot). */
  image: NodemcuImage | undefined;
  /** The flash (file system) directory: init.lua, then whatever the node saves. */
  readonly flash: string;
  private readonly work: string;
  private readonly lua: string;
  private readonly heapTotal: number;
  private pipe: PipeBoard | undefined;
  /** Lines of earlier processes since boot() (a node.restart() starts a new one). */
  private before: string[] = [];
  /** What lfs-board.lua measured before init.lua, in bytes (this process's). */
  private share: number | undefined;
  private exitNote: string | undefined;
  private powered = false;
  private restarts = 0;

  constructor(readonly board: string, private readonly limitMs = 30 * 60_000) {
    const p = loadProfile(board);
    this.lua = p.lua as string;
    this.heapTotal = p.memory.total as number;
    this.runtime = this.lua === "5.1" ? "luac-cross-53-32 (5.1 profile's modules)" : "luac-cross-53-32";
    this.work = fs.mkdtempSync(path.join(os.tmpdir(), `petrel-nodemcu-${board}-`));
    this.flash = path.join(this.work, "flash");
    fs.mkdirSync(this.flash);
  }

  /** Packs the board (once) into a directory of its own and puts init.lua on the flash. */
  private async pack(): Promise<void> {
    if (this.image !== undefined) return;
    // dist/nodemcu read through a link: other suites pack the same board into dist/boards at the
    // same time. The sizes are the build's to judge (make BOARD=, test/nodemcu-lfs.test.ts):
    // here the board runs whatever is built, over budget or not.
    const dist = path.join(this.work, "dist");
    fs.mkdirSync(dist);
    fs.symlinkSync(path.join(DIST, "nodemcu"), path.join(dist, "nodemcu"));
    const p = loadProfile(this.board);
    const packed = (await packBoard({ ...p, artifactBytes: 4000000 }, dist, { checkLfs: false })) as {
      dir: string;
      lfs: { image: string; size: number; how: string; modules: string[] };
    };
    let image = packed.lfs.image;
    if (this.lua === "5.1") {
      // the same modules as a 5.3 image: the only kind an interpreter here loads
      const built = buildLfsImage({ dir: packed.dir, files: packed.lfs.modules.map((m) => `${m}.lua`), lua: "5.3", out: path.join(this.work, "lfs53.img") });
      image = built.image as string;
    }
    this.image = { image, size: packed.lfs.size, how: packed.lfs.how, lua: this.lua, modules: packed.lfs.modules.length };
    fs.copyFileSync(path.join(packed.dir, "init.lua"), path.join(this.flash, "init.lua"));
  }

  private start(): void {
    const img = this.image as NodemcuImage;
    this.share = undefined;
    const pipe = new PipeBoard({
      command: [path.join(runtimesDir(), "luac-cross-53-32"), "-F", img.image, "-e", DRIVER],
      cwd: this.flash,
      env: {
        PETREL_STANDIN_DIR: STANDIN_DIR,
        STANDIN_FLASH: this.flash,
        STANDIN_ESP32: this.lua === "5.1" ? "0" : "1",
        STANDIN_RESTART: "exit",
        STANDIN_REPL: "1",
        // node.heap(): the profile's free heap after boot, less what the node holds
        PETREL_HEAP_TOTAL: String(this.heapTotal),
      },
      limitMs: this.limitMs,
    });
    this.pipe = pipe;
    void pipe.exited.then((exit) => this.ended(pipe, exit));
  }

  /** The process ended: a restart the node asked for powers it on again; anything else is noted. */
  private ended(pipe: PipeBoard, exit: PipeExit): void {
    if (this.pipe !== pipe || !this.powered) return;
    if (exit.code === RESTART && exit.signal === null && this.restarts < MAX_RESTARTS) {
      this.restarts++;
      this.before.push(...this.clean(pipe.lines));
      this.start();
      return;
    }
    this.powered = false;
    this.exitNote = `the board's process ended (${exit.signal ?? `exit ${exit.code}`}${this.restarts >= MAX_RESTARTS ? `, after ${this.restarts} restarts` : ""})` +
      `${exit.errors ? `: ${exit.errors.trim().slice(-1500)}` : ""}`;
  }

  /** The board's console lines: luac.cross's notice and the stand-in's heap line left out. */
  private clean(ls: string[]): string[] {
    return ls.filter((l) => !l.startsWith("Erasing LFS") && !l.startsWith("[stand-in] "));
  }

  async boot(): Promise<void> {
    if (this.powered) await this.kill();
    await this.pack();
    this.before = [];
    this.exitNote = undefined;
    this.restarts = 0;
    this.powered = true;
    this.start();
    // the console prints its greeting, then the prompt, in one go
    await this.until("the console prompt", () => this.lines().some((l) => l.startsWith("console: type help")) || this.pipe?.partial === PROMPT, 60_000);
  }

  lines(): string[] {
    return [...this.before, ...(this.pipe ? this.clean(this.pipe.lines) : [])];
  }

  /**
   * Types a console line; the lines printed after its echo up to the next prompt, or up to the
   * first line (or the unfinished line) `until` matches. Log lines are left out, except the one
   * `until` matched.
   */
  async type(line: string, until?: RegExp, ms = 20_000): Promise<string[]> {
    if (!this.powered || this.pipe === undefined) throw new Error(`${this.board}: type(${JSON.stringify(line)}) with the board off`);
    const from = this.lines().length;
    const first = line.trim().split(/\s+/)[0] ?? "";
    this.pipe.type(line);
    let got: string[] = [];
    await this.until(`the reply to ${JSON.stringify(line)}`, () => {
      const ls = this.lines().slice(from);
      if (until !== undefined) {
        const hit = ls.findIndex((l) => until.test(l));
        if (hit >= 0) {
          got = ls.slice(0, hit + 1);
          return true;
        }
        if (this.pipe !== undefined && until.test(this.pipe.partial)) {
          got = [...ls, this.pipe.partial];
          return true;
        }
        return false;
      }
      // the echo of the line, then its output, then the prompt again with nothing after it
      const echo = ls.findIndex((l) => l.startsWith(PROMPT + first));
      if (echo < 0 || this.pipe?.partial !== PROMPT) return false;
      got = ls.slice(echo + 1);
      return true;
    }, ms);
    // the node's log lines ("[   12.345] info  …") are left out; a line `until` matched stays
    return got.map((l) => l.replace(/^(petrel> )+/, "").replace(/ +$/, ""))
      .filter((l, i) => l.length > 0 && (!LOG_LINE.test(l) || (until !== undefined && i === got.length - 1)));
  }

  async kill(): Promise<void> {
    this.powered = false;
    const pipe = this.pipe;
    if (pipe !== undefined) {
      await pipe.kill();
      this.before.push(...this.clean(pipe.lines));
      this.pipe = undefined;
    }
  }

  async memory(): Promise<number> {
    const out = await this.type("status");
    const m = out.map((l) => /^memory: (\d+) bytes of Lua heap in use/.exec(l)).find((x) => x !== null);
    if (!m) throw new Error(`${this.board}: status printed no memory line:\n  ${out.join("\n  ")}`);
    return Number(m[1]) - this.standinShare();
  }

  /**
   * Bytes of the heap that are the stand-in's, the pipe host's and luac.cross's own (measured
   * before init.lua, in this process).
   */
  standinShare(): number {
    if (this.share === undefined) {
      const l = this.pipe?.lines.find((x) => x.startsWith("[stand-in] heap before init.lua: "));
      const m = l !== undefined ? /: (\d+) /.exec(l) : null;
      if (m === null) throw new Error(`${this.board}: the stand-in did not report its heap${this.describe()}`);
      this.share = Number(m[1]);
    }
    return this.share;
  }

  /** The stand-in's heap line as printed (its parts), for reports. */
  standinHeapLine(): string | undefined {
    return this.pipe?.lines.find((x) => x.startsWith("[stand-in] heap before init.lua: "));
  }

  trouble(): string | undefined {
    const bad = this.lines().find((l) => /stand-in: |^lua: |PANIC|^petrel: the LFS holds no Petrel image/.test(l));
    if (bad !== undefined) return bad;
    return this.exitNote;
  }

  async dispose(): Promise<void> {
    await this.kill();
    fs.rmSync(this.work, { recursive: true, force: true });
  }

  describe(): string {
    return `\n--- ${this.board} console (last 40 lines) ---\n${this.lines().slice(-40).join("\n")}\n--- pending ---\n${this.pipe?.partial ?? ""}` +
      `${this.exitNote ? `\n--- ${this.exitNote}` : ""}`;
  }

  private async until(what: string, cond: () => boolean, ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    for (;;) {
      if (cond()) return;
      const t = this.trouble();
      if (t !== undefined) throw new Error(`${this.board}: waiting for ${what}: ${t}${this.describe()}`);
      if (Date.now() > deadline) throw new Error(`${this.board}: waiting for ${what}: not within ${ms} ms${this.describe()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** A NodeMCU board profile (esp8266-nodemcu, esp32-nodemcu) as a BoardUnderTest; packed at its first boot(). */
export function nodemcuBoard(board: string): NodemcuBoard {
  return new NodemcuBoard(board);
}
