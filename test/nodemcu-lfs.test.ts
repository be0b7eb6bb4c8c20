import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { startBroker, type Broker } from "../host-sim/mosquitto";
import { PipeBoard } from "../host-sim/nodemcu/pipe-board";
// @ts-expect-error: a plain .mjs module of the tools, without type declarations
import { flashBoard } from "../tools/flash.mjs";
// @ts-expect-error: a plain .mjs module of the tools, without type declarations
import { loadProfile, packBoard } from "../tools/boards.mjs";
// @ts-expect-error: a plain .mjs module of the tools, without type declarations
import { buildLfsImage, runtimesDir } from "../tools/lfs.mjs";
import { nodemcuBoard, nodemcuBoardMissing, type NodemcuBoard } from "./harness/board-nodemcu";
import { needs } from "./harness/needs";
import { DIST, ROOT } from "./harness/runtimes";
import { until } from "./harness/wait";

// NodeMCU's Lua Flash Store end to end, for both NodeMCU boards:
// - the build: lfs.img from the packed modules and _init with the luac.cross of the profile's Lua,
//   its size in flash checked against the profile's LFS region (printed);
// - make flash: lfs.img and init.lua through a pseudo-terminal (socat) to the scripted NodeMCU
//   REPL (test/fixtures/nodemcu/repl.lua under lua5.1), which checks and loads the image with
//   node.LFS.reload, restarts and lists the modules, as the firmware does;
// - the board as flashed: booted from its image on NodeMCU's 32-bit 5.3 luac.cross
//   (test/harness/board-nodemcu.ts), configured at its console, power-cut, booted again, connected
//   to a real mosquitto; its `status` memory line printed.
// luac.cross comes from PETREL_RUNTIMES (default ../shared/runtimes): skipped without it, saying
// where to get it, and failed under CI=true. Every wait is bounded.

const BOARDS = ["esp8266-nodemcu", "esp32-nodemcu"] as const;
const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;

function runtimeMissing(names: string[]): string | null {
  for (const n of names) {
    const p = path.join(runtimesDir(), n);
    if (!fs.existsSync(p)) {
      return `${p} is missing: NodeMCU's luac.cross, prebuilt in ../shared/runtimes (its README.md says how it was built from NodeMCU's firmware ` +
        `sources; a NodeMCU firmware build makes one); set PETREL_RUNTIMES to the folder that holds it`;
    }
  }
  return fs.existsSync(path.join(DIST, "nodemcu/firmware/targets/nodemcu/app.lua")) ? null : "dist/nodemcu is not built (make build)";
}
/** The luac.cross builds a board's tests need: its own Lua's, and the 5.3 pair that builds and loads 5.3 images. */
const luacFor = (board: string) => ["luac-cross-53-32", "luac-cross-53", ...(loadProfile(board).lua === "5.1" ? ["luac-cross-51"] : [])];
const replMissing = ((): string | null => {
  if (!has("socat")) return "socat is not installed (Debian package socat)";
  if (spawnSync("lua5.1", ["-e", 'require("socket")']).status !== 0) return "lua5.1 with luasocket is not installed";
  if (!has("gzip")) return "gzip is not installed";
  return null;
})();
const brokerMissing = has("mosquitto") && has("mosquitto_sub") ? null : "mosquitto is not installed (Debian packages mosquitto, mosquitto-clients)";

const dirs: string[] = [];
const procs: ChildProcess[] = [];
function tmpDir(tag: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `petrel-lfs-${tag}-`));
  dirs.push(d);
  return d;
}
/** A dist directory of this test's own (dist/nodemcu through a link): other suites pack the same boards into dist/boards. */
function ownDist(): string {
  const d = tmpDir("dist");
  fs.symlinkSync(path.join(DIST, "nodemcu"), path.join(d, "nodemcu"));
  return d;
}

let broker: Broker | undefined;
const boards: NodemcuBoard[] = [];
beforeAll(async () => {
  if (brokerMissing === null) broker = await startBroker();
});
afterAll(async () => {
  for (const b of boards) await b.dispose();
  for (const p of procs) p.kill("SIGKILL");
  await broker?.close();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

interface Lfs { image: string; fileBytes: number; size: number; how: string; modules: string[] }

describe("make BOARD=<nodemcu board>: lfs.img, its size in flash checked against the profile's LFS region", () => {
  for (const board of BOARDS) {
    needs(runtimeMissing(luacFor(board)), `${board}: the image of every packed module and _init, built with its Lua's luac.cross; over the region, the build fails naming both sizes and the fix`, async () => {
      const p = loadProfile(board);
      const dist = ownDist();
      let packed: { bytes: number; dir: string; lfs: Lfs } | undefined;
      let failed: (Error & { lfs?: Lfs }) | undefined;
      try {
        packed = await packBoard(p, dist);
      } catch (e) {
        failed = e as Error & { lfs?: Lfs };
      }
      const lfs = packed?.lfs ?? failed?.lfs;
      expect(lfs, failed?.message).toBeDefined();
      const l = lfs as Lfs;
      expect(l.modules).toContain("_init");
      // the sensor node only: the library's entry is packed on request (opts.library)
      expect(l.modules).not.toContain("petrel");
      expect(l.modules).toContain("app");
      expect(l.modules).not.toContain("init");
      if (l.size > p.lfs.bytes) {
        expect(failed?.message).toMatch(new RegExp(`^${board}: lfs\\.img is ${l.size} bytes in flash \\(.*\\), over the profile's LFS region of ${p.lfs.bytes} bytes by ${l.size - p.lfs.bytes}; fix: `));
        expect(fs.existsSync(path.join(dist, "boards", board, "lfs.img"))).toBe(false);
      } else {
        expect(failed).toBeUndefined();
        const image = fs.readFileSync(l.image);
        expect(packed!.bytes).toBe(image.length + fs.statSync(path.join(packed!.dir, "init.lua")).size);
      }
      // the image is the profile's Lua's: 5.1's is gzip-compressed, 5.3's a Lua 5.3 dump
      const unchecked = (await packBoard(p, ownDist(), { checkLfs: false })) as { lfs: Lfs };
      expect(unchecked.lfs.size).toBe(l.size);
      expect(fs.readFileSync(unchecked.lfs.image).subarray(0, 5).toString("latin1")).toMatch(p.lua === "5.1" ? /^\x1f\x8b/ : /^\x1bLuaS/);
      // the same modules as a 5.3 image (the size a 5.3 build of this board would have), measured on the 32-bit 5.3 luac.cross
      const m53 = buildLfsImage({ dir: path.join(dist, "boards", board), files: l.modules.map((m) => `${m}.lua`), lua: "5.3", out: path.join(tmpDir("img53"), "lfs.img") });
      expect(m53.how).toMatch(/32-bit Lua 5\.3 luac\.cross/);
      console.log(`[lfs] ${board} (Lua ${p.lua}): ${l.modules.length} modules; lfs.img ${l.size} bytes in flash (${l.how}), ${l.fileBytes} bytes as a file; ` +
        `as a Lua 5.3 image ${m53.size} bytes in flash, ${m53.fileBytes} as a file; the profile's LFS region ${p.lfs.bytes} bytes: ` +
        `${l.size > p.lfs.bytes ? `OVER by ${l.size - p.lfs.bytes} (make BOARD=${board} fails)` : `fits, ${p.lfs.bytes - l.size} to spare`}; ` +
        `its goal ${p.lfs.goal} bytes: ${l.size <= p.lfs.goal ? "met" : `not met, over by ${l.size - p.lfs.goal}`}`);

      // a region smaller than the image: refused, with both figures
      await expect(packBoard({ ...p, lfs: { ...p.lfs, bytes: 4096 } }, ownDist())).rejects.toThrow(
        new RegExp(`^${board}: lfs\\.img is ${l.size} bytes in flash .* over the profile's LFS region of 4096 bytes by ${l.size - 4096}; fix: make the firmware's Lua smaller`));
    }, 60_000);
  }

  needs(runtimeMissing(["luac-cross-51"]), "without a luac.cross for the board's Lua: a clear error saying where one comes from", async () => {
    const saved = process.env.LUAC_CROSS_51;
    process.env.LUAC_CROSS_51 = path.join(tmpDir("none"), "luac.cross");
    try {
      await expect(packBoard(loadProfile("esp8266-nodemcu"), ownDist())).rejects.toThrow(/no luac\.cross for Lua 5\.1 \(looked for .* from LUAC_CROSS_51\).*NodeMCU's firmware build makes it/);
      // a luac.cross for the other Lua is refused too: the image must be the board's firmware's
      process.env.LUAC_CROSS_51 = path.join(runtimesDir(), "luac-cross-53");
      await expect(packBoard(loadProfile("esp8266-nodemcu"), ownDist())).rejects.toThrow(/is a Lua 5\.3 luac\.cross, the board runs Lua 5\.1/);
    } finally {
      if (saved === undefined) delete process.env.LUAC_CROSS_51;
      else process.env.LUAC_CROSS_51 = saved;
    }
  });
});

/** The scripted NodeMCU REPL on a pseudo-terminal: its tty, flash directory and LFS region file. */
async function replBoard(env: Record<string, string>): Promise<{ tty: string; flash: string; region: string }> {
  const dir = tmpDir("repl");
  const flash = path.join(dir, "flash");
  fs.mkdirSync(flash);
  const tty = path.join(dir, "tty");
  const region = path.join(dir, "lfs-region.img");
  const p = spawn("socat", [`PTY,link=${tty},raw,echo=0`, `EXEC:lua5.1 ${path.join(ROOT, "test/fixtures/nodemcu/repl.lua")}`], {
    env: { ...process.env, PETREL_STANDIN_DIR: path.join(ROOT, "host-sim/nodemcu"), STANDIN_FLASH: flash, REPL_LFS_REGION: region,
      REPL_LUAC_CROSS_53: path.join(runtimesDir(), "luac-cross-53-32"), ...env },
    stdio: "ignore",
  });
  procs.push(p);
  await until("socat's pseudo-terminal", () => fs.existsSync(tty), 5000);
  return { tty, flash, region };
}

describe("make flash BOARD=<nodemcu board>: lfs.img through a pseudo-terminal, loaded with node.LFS.reload, then init.lua", () => {
  for (const board of BOARDS) {
    needs(replMissing ?? runtimeMissing(luacFor(board)), `${board}: the image verified, reloaded (the board restarts and lists the image's modules), removed with stale module files; init.lua last; the board boots from LFS`, async () => {
      const p = loadProfile(board);
      // the board's firmware has the profile's Lua and LFS region (the image's size against the
      // region is also the build's check, above)
      const b = await replBoard({ REPL_LUA: p.lua, REPL_LFS_BYTES: String(p.lfs.bytes) });
      fs.writeFileSync(path.join(b.flash, "init.lua"), "print('the previous init.lua')\n");
      fs.writeFileSync(path.join(b.flash, "p_codec_decoder.lc"), "stale bytecode of a module now in LFS");
      fs.writeFileSync(path.join(b.flash, "notes.txt"), "the user's own file");
      const dist = ownDist();
      const logged: string[] = [];
      const out = await flashBoard(p, b.tty, { dist, checkLfs: false, timeoutMs: 2000, restartMs: 20000, log: (l: string) => logged.push(l) });
      expect(out).toMatch(new RegExp(`^flash ${board}: lfs\\.img \\(\\d+ bytes, \\d+ modules, \\d+ bytes in flash\\) written to .*, verified, loaded with node\\.LFS\\.reload ` +
        `\\(the board was back in [\\d.]+ s with every module in LFS\\) and removed; init\\.lua \\(\\d+ bytes\\) written and verified\\. The board is at its Lua prompt: reset it to start Petrel$`));
      expect(logged).toContain("lfs.img: node.LFS.reload");
      const packed = path.join(dist, "boards", board);
      // on the file system: init.lua and the user's file; the image is in LFS (the region), nothing else left
      expect(fs.readdirSync(b.flash).sort()).toEqual(["init.lua", "notes.txt"]);
      expect(fs.readFileSync(path.join(b.flash, "init.lua")).equals(fs.readFileSync(path.join(packed, "init.lua")))).toBe(true);
      expect(fs.readFileSync(b.region).equals(fs.readFileSync(path.join(packed, "lfs.img")))).toBe(true);
      console.log(`[lfs] make flash ${board}: ${out.slice(out.indexOf(": ") + 2, out.indexOf(". The board"))}`);

      if (p.lua === "5.3") {
        // the board as flashed, powered on: its LFS region and init.lua on NodeMCU's 5.3 luac.cross
        const on = new PipeBoard({
          command: [path.join(runtimesDir(), "luac-cross-53-32"), "-F", b.region, "-e", path.join(ROOT, "host-sim/nodemcu/lfs-board.lua")],
          cwd: b.flash,
          env: { PETREL_STANDIN_DIR: path.join(ROOT, "host-sim/nodemcu"), STANDIN_FLASH: b.flash, STANDIN_ESP32: "1", PETREL_DEADLINE: "30" },
          limitMs: 40_000,
        });
        try {
          await on.waitFor("console: type help for the commands, repl to hand the line back to the REPL", 30_000);
          expect(on.lines).toContain("boot: press a key within 2.0 s for safe mode (the REPL, no app)");
        } finally {
          await on.kill();
        }
      }
    }, 240_000);
  }

  needs(replMissing ?? runtimeMissing(luacFor("esp8266-nodemcu")), "the reload line lost on the wire: the board answers with its old LFS, the reload is sent again and the flash completes", async () => {
    const b = await replBoard({ REPL_LUA: "5.1", REPL_LFS_BYTES: "262144", REPL_DROP_MATCH: "node.LFS.reload" });
    const logged: string[] = [];
    await flashBoard(loadProfile("esp8266-nodemcu"), b.tty, { dist: ownDist(), checkLfs: false, timeoutMs: 2000, restartMs: 20000, log: (l: string) => logged.push(l) });
    expect(logged.filter((l) => l.startsWith("lfs.img: node.LFS.reload"))).toEqual(["lfs.img: node.LFS.reload", "lfs.img: node.LFS.reload (attempt 2)"]);
    expect(fs.readdirSync(b.flash)).toEqual(["init.lua"]);
    expect(fs.existsSync(b.region)).toBe(true);
  }, 240_000);

  needs(runtimeMissing(luacFor("esp8266-nodemcu")), "an image over the profile's LFS region is not flashed: make flash fails at the build, before it opens the port", async () => {
    const p = loadProfile("esp8266-nodemcu");
    const tight = { ...p, lfs: { ...p.lfs, bytes: 4096 } };
    await expect(flashBoard(tight, "/dev/petrel-no-such-tty", { dist: ownDist() })).rejects.toThrow(/^esp8266-nodemcu: lfs\.img is \d+ bytes in flash .* over the profile's LFS region of 4096 bytes/);
  });

  needs(replMissing ?? runtimeMissing(luacFor("esp32-nodemcu")), "an image the firmware refuses (a 5.3 image on a 5.1 firmware): the board's reason and the fix; no restart, the old init.lua back", async () => {
    const b = await replBoard({ REPL_LUA: "5.1", REPL_LFS_BYTES: "262144" });
    fs.writeFileSync(path.join(b.flash, "init.lua"), "print('the previous init.lua')\n");
    await expect(flashBoard(loadProfile("esp32-nodemcu"), b.tty, { dist: ownDist(), checkLfs: false, timeoutMs: 2000, restartMs: 20000 })).rejects.toThrow(
      /node\.LFS\.reload refused lfs\.img: incompatible LFS image: built for Lua 5\.3, this firmware runs Lua 5\.1; fix: build the image with the luac\.cross of this board's firmware/);
    expect(fs.readFileSync(path.join(b.flash, "init.lua"), "utf8")).toBe("print('the previous init.lua')\n");
    expect(fs.existsSync(path.join(b.flash, "init.old"))).toBe(false);
    expect(fs.existsSync(b.region)).toBe(false);
  }, 240_000);
});

describe("each NodeMCU board booted from its LFS image (luac.cross 5.3, 32-bit) against mosquitto", () => {
  for (const board of BOARDS) {
    needs(nodemcuBoardMissing(board) ?? brokerMissing, `${board}: set brokers and save at the console, power cut, boot: connected; status prints its memory`, async () => {
      const b = nodemcuBoard(board);
      boards.push(b);
      const id = `lfs-${board.slice(0, 5)}-${process.pid % 100000}`; // client ids: at most 23 characters
      const t0 = Date.now();
      await b.boot();
      expect(b.lines()).toContain("boot: press a key within 2.0 s for safe mode (the REPL, no app)");
      expect(await b.type(`set brokers 127.0.0.1:${broker!.port}`)).toEqual([`brokers = 127.0.0.1:${broker!.port} (not saved yet; used from the next boot: save, then reboot)`]);
      expect(await b.type(`set client.id ${id}`)).toEqual([`client.id = ${id} (not saved yet; used from the next boot: save, then reboot)`]);
      expect(await b.type("save")).toEqual(["saved (2 changes)"]);
      await b.kill();
      await b.boot();
      await until(`${board}: connected after the power cut`, () => b.lines().some((l) => l.includes(`node: connected as ${id}`)) || b.trouble() !== undefined, 30_000);
      expect(b.trouble()).toBeUndefined();
      // mosquitto itself saw the node connect with its client id
      await until(`${board}: the broker's log of its connection`, () => new RegExp(`New client connected from 127\\.0\\.0\\.1:\\d+ as ${id} `).test(broker!.log()), 10_000);
      const status = await b.type("status");
      expect(status[0]).toMatch(new RegExp(`^node ${id}: connected, `));
      const memLine = status.find((l) => l.startsWith("memory: "));
      expect(memLine).toMatch(/^memory: \d+ bytes of Lua heap in use, \d+ free$/);
      const node = await b.memory();
      const share = b.standinShare();
      expect(node).toBeGreaterThan(0);
      console.log(`[lfs] ${board} on ${b.runtime}: ${status.join(" | ")}; the stand-in's share ${share} bytes ` +
        `(${b.standinHeapLine()?.replace(/^.*\((.*)\)$/, "$1")}), the node alone ${node} bytes after a full collect, connected; ` +
        `image ${b.image!.size} bytes in flash (Lua ${b.image!.lua}); ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      await b.dispose();
    }, 180_000);
  }
});
