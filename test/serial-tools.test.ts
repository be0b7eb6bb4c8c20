import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { needs as needsTool } from "./harness/needs";
import { afterAll, describe, expect } from "vitest";
// @ts-expect-error: a plain .mjs module of the tools, without type declarations
import { CHUNK, PRELUDE, adler, upload } from "../tools/nodemcu-upload.mjs";
// @ts-expect-error: a plain .mjs module of the tools, without type declarations
import { flashBoard } from "../tools/flash.mjs";
// @ts-expect-error: a plain .mjs module of the tools, without type declarations
import { loadProfile } from "../tools/boards.mjs";
import { ROOT } from "./harness/runtimes";

// The serial tools against a pseudo-terminal (socat): the NodeMCU uploader, and the console.
// The uploader: against a pseudo-terminal whose far end is a scripted NodeMCU REPL
// (test/fixtures/nodemcu/repl.lua) that runs every uploaded line under lua5.1 with the stand-in's
// `file` module: the files on its flash are compared byte for byte. Dropped and garbled lines, a
// silent board and a full flash are each tested. Every wait is bounded.

const missing = ((): string | null => {
  if (spawnSync("sh", ["-c", "command -v socat"]).status !== 0) return "socat is not installed (Debian package socat)";
  if (spawnSync("lua5.1", ["-e", 'require("socket")']).status !== 0) return "lua5.1 with luasocket is not installed";
  return null;
})();
const needs = (name: string, fn: () => Promise<void>) => needsTool(missing, name, fn, 30000);

const dirs: string[] = [];
const procs: ChildProcess[] = [];
afterAll(() => {
  for (const p of procs) p.kill("SIGKILL");
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A board on a pseudo-terminal: returns the tty path and its flash directory. */
async function board(env: Record<string, string> = {}): Promise<{ tty: string; flash: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-upload-"));
  dirs.push(dir);
  const flash = path.join(dir, "flash");
  fs.mkdirSync(flash);
  const tty = path.join(dir, "tty");
  const repl = path.join(ROOT, "test/fixtures/nodemcu/repl.lua");
  const p = spawn("socat", [`PTY,link=${tty},raw,echo=0`, `EXEC:lua5.1 ${repl}`], {
    env: { ...process.env, PETREL_STANDIN_DIR: path.join(ROOT, "host-sim/nodemcu"), STANDIN_FLASH: flash, ...env },
    stdio: "ignore",
  });
  procs.push(p);
  const deadline = Date.now() + 5000;
  while (!fs.existsSync(tty)) {
    if (Date.now() > deadline) throw new Error("socat did not create the pseudo-terminal within 5 s");
    await new Promise((r) => setTimeout(r, 20));
  }
  return { tty, flash };
}

/** Test files: a Lua module, a binary blob with every byte value, and an empty file. */
function files(): Array<{ name: string; data: Buffer }> {
  const blob = Buffer.alloc(CHUNK * 7 + 13);
  for (let i = 0; i < blob.length; i++) blob[i] = (i * 37 + 11) % 256;
  return [
    { name: "init.lua", data: Buffer.from('print("hello from init.lua, °C")\n', "utf8") },
    { name: "blob.bin", data: blob },
    { name: "empty.txt", data: Buffer.alloc(0) },
  ];
}

const onFlash = (flash: string, name: string) => fs.readFileSync(path.join(flash, name));

/**
 * REPL line numbers: 1 the hello, then the helpers, then init.lua (open, one data line, close,
 * verify, rename), then blob.bin's open and its data lines.
 */
const BLOB_DATA_LINE = (k: number) => 1 + PRELUDE.length + 5 + 1 + k;

describe("NodeMCU uploader through a pseudo-terminal to a scripted REPL", () => {
  needs("uploads and verifies each file; the flash holds them byte for byte, and no .up file is left", async () => {
    const b = await board();
    const r = await upload(b.tty, files(), { timeoutMs: 1000 });
    expect(r.files.map((f: { name: string; attempts: number }) => `${f.name} ${f.attempts}`)).toEqual(["init.lua 1", "blob.bin 1", "empty.txt 1"]);
    for (const f of files()) expect(onFlash(b.flash, f.name).equals(f.data), f.name).toBe(true);
    expect(fs.readdirSync(b.flash).filter((n) => n.endsWith(".up"))).toEqual([]);
    expect(adler(Buffer.from("Wikipedia"))).toEqual([0x0398, 0x11e6]); // Adler-32 of "Wikipedia" is 0x11E60398
  });

  needs("a line lost on the wire is sent again; the file still verifies", async () => {
    const b = await board({ REPL_DROP: String(BLOB_DATA_LINE(2)) });
    const r = await upload(b.tty, files(), { timeoutMs: 500 });
    expect(r.files.reduce((n: number, f: { resent: number }) => n + f.resent, 0)).toBe(1);
    for (const f of files()) expect(onFlash(b.flash, f.name).equals(f.data), f.name).toBe(true);
  });

  needs("a garbled line (a syntax error on the board) is sent again; the file still verifies", async () => {
    const b = await board({ REPL_GARBLE: String(BLOB_DATA_LINE(3)) });
    const r = await upload(b.tty, files(), { timeoutMs: 500 });
    expect(r.files.reduce((n: number, f: { resent: number }) => n + f.resent, 0)).toBe(1);
    for (const f of files()) expect(onFlash(b.flash, f.name).equals(f.data), f.name).toBe(true);
  });

  needs("a file that does not verify (a byte stored wrong, its line acknowledged) is uploaded again from the start and then verifies", async () => {
    // write 1 is init.lua's only line; write 3 is blob.bin's second
    const b = await board({ REPL_FLIP: "3" });
    const logged: string[] = [];
    const r = await upload(b.tty, files(), { timeoutMs: 500, log: (l: string) => logged.push(l) });
    expect(r.files.map((f: { name: string; attempts: number }) => `${f.name} ${f.attempts}`)).toEqual(["init.lua 1", "blob.bin 2", "empty.txt 1"]);
    expect(logged.some((l) => /^blob\.bin: verification failed \(board u-v 713 \d+ \d+, expected u-v 713 \d+ \d+\); uploading it again$/.test(l)), logged.join("\n")).toBe(true);
    for (const f of files()) expect(onFlash(b.flash, f.name).equals(f.data), f.name).toBe(true);
  });

  needs("a file that never verifies: a bounded number of attempts, a clear error, and the old file kept", async () => {
    const b = await board({ REPL_FLIP: "all" });
    fs.writeFileSync(path.join(b.flash, "init.lua"), "the previous version");
    await expect(upload(b.tty, files(), { timeoutMs: 500, log: () => {} })).rejects.toThrow(/init\.lua: did not verify after \d+ attempts \(size or checksum differ on the board\); fix: check the cable and lower the baud rate/);
    expect(onFlash(b.flash, "init.lua").toString()).toBe("the previous version");
  });

  needs("a lost control line (the open of a file) is sent again too", async () => {
    const b = await board({ REPL_DROP: String(1 + PRELUDE.length + 1) });
    await upload(b.tty, files(), { timeoutMs: 500 });
    for (const f of files()) expect(onFlash(b.flash, f.name).equals(f.data), f.name).toBe(true);
  });

  needs("a board that does not answer: a clear error, nothing written", async () => {
    const b = await board({ REPL_SILENT: "1" });
    await expect(upload(b.tty, files(), { timeoutMs: 400 })).rejects.toThrow(/the board does not answer at the Lua prompt \(no reply within 400 ms\); fix: check the port and the baud rate/);
    expect(fs.readdirSync(b.flash)).toEqual([]);
  });

  needs("a full flash: the error says so, with what is free and what to do; the old file is kept", async () => {
    const b = await board({ REPL_FLASH_BYTES: "400" });
    fs.writeFileSync(path.join(b.flash, "blob.bin"), "the previous version");
    await expect(upload(b.tty, files(), { timeoutMs: 500 })).rejects.toThrow(/blob\.bin: the flash is full after \d+ of 713 bytes \(\d+ bytes free\); fix: remove files/);
    expect(onFlash(b.flash, "blob.bin").toString()).toBe("the previous version");
    expect(onFlash(b.flash, "init.lua").equals(files()[0].data)).toBe(true);
  });
});

describe("make console: the serial console through a pseudo-terminal", () => {
  needs("what is typed reaches the board's REPL and its answer comes back; a line pointing to the reason codes gets its text; Ctrl-] ends it", async () => {
    const b = await board();
    const c = spawn(process.execPath, [path.join(ROOT, "tools/console.mjs"), "--port", b.tty], { stdio: ["pipe", "pipe", "pipe"] });
    procs.push(c);
    let out = "";
    c.stdout.on("data", (d: Buffer) => (out += d.toString("latin1")));
    const until = async (what: string, cond: () => boolean) => {
      const deadline = Date.now() + 5000;
      while (!cond()) {
        if (Date.now() > deadline) throw new Error(`console: no ${what} within 5 s; output so far:\n${out}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await until("banner", () => out.includes("Ctrl-] ends"));
    c.stdin.write('print("six times seven is "..6*7)\r\n');
    await until("the board's answer", () => out.includes("six times seven is 42"));
    // a board without the texts feature points to docs/reason-codes.md: the console prints the text under the line
    c.stdin.write('print("mqtt: not-authorized: see docs/".."reason-codes.md for what it means and the fix (reason code 0x".."87 in CONNACK)")\r\n');
    await until("the explanation", () => out.includes("(docs/reason-codes.md, 0x87) not-authorized: the broker says this client is not authorized for it; fix:"));
    const exited = new Promise<number | null>((r) => c.on("close", (code) => r(code)));
    c.stdin.write(Buffer.from([0x1d]));
    expect(await exited).toBe(0);
    expect(out).toContain("console: quit");
  });

  needs("a port that does not exist: a clear error", async () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, "tools/console.mjs"), "--port", "/dev/petrel-no-such-tty"], { encoding: "utf8", timeout: 10000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/console: cannot open \/dev\/petrel-no-such-tty: .*; fix: check the port name/);
  });
});

describe("make flash for a NodeMCU board without LFS, through a pseudo-terminal", () => {
  // Both NodeMCU profiles have an LFS region (their flash is test/nodemcu-lfs.test.ts's): this is
  // esp8266-nodemcu as a board without one, every module a file.
  needs("every packed file of esp8266-nodemcu (no LFS) lands on the flash byte for byte; the board then boots it", async () => {
    const b = await board();
    const dist = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-flash-dist-"));
    dirs.push(dist);
    fs.symlinkSync(path.join(ROOT, "dist/nodemcu"), path.join(dist, "nodemcu"));
    const out = await flashBoard({ ...loadProfile("esp8266-nodemcu"), lfs: null }, b.tty, { dist });
    expect(out).toMatch(/^flash esp8266-nodemcu: \d+ files, \d+ bytes written to .* and verified, compiled to bytecode on the board/);
    // the profile asks for bytecode: each module compiled on the board (node.compile), its source removed
    const packed = path.join(dist, "boards/esp8266-nodemcu");
    const lua = fs.readdirSync(packed).filter((f) => f.endsWith(".lua")).sort();
    const expected = lua.map((f) => (f === "init.lua" ? f : f.replace(/\.lua$/, ".lc"))).sort();
    expect(fs.readdirSync(b.flash).sort()).toEqual(expected);
    expect(onFlash(b.flash, "init.lua").equals(fs.readFileSync(path.join(packed, "init.lua")))).toBe(true);
    expect(onFlash(b.flash, "app.lc").subarray(0, 4).toString("latin1")).toBe("\x1bLua"); // a Lua binary chunk
    // power on: the stand-in runs init.lua from that flash: the boot guard, then the packed app
    // (bytecode) with its console
    const boot = spawnSync("lua5.1", ["-e", [
      `local standin = dofile(${JSON.stringify(path.join(ROOT, "host-sim/nodemcu/standin.lua"))})`,
      `bit = require("bit") debug = nil`,
      // as NodeMCU's require: bytecode (.lc) first, then source
      `package.path = ${JSON.stringify(b.flash + "/?.lc;" + b.flash + "/?.lua")} .. ";" .. package.path`,
      `dofile(${JSON.stringify(b.flash + "/init.lua")})`,
      `local t = tmr.create() t:alarm(2500, tmr.ALARM_SINGLE, function() standin.stop() end)`,
      `standin.run(10)`,
    ].join("\n")], { cwd: b.flash, encoding: "utf8", timeout: 20000,
      env: { ...process.env, PETREL_STANDIN_DIR: path.join(ROOT, "host-sim/nodemcu"), STANDIN_FLASH: b.flash } });
    expect(boot.status, boot.stderr).toBe(0);
    const lines = boot.stdout.trim().split("\n").map((l) => l.replace(/\r/g, ""));
    expect(lines[0]).toBe("boot: press a key within 2.0 s for safe mode (the REPL, no app)");
    expect(lines[1]).toBe("console: type help for the commands, repl to hand the line back to the REPL");
    expect(boot.stdout).not.toMatch(/error|breach/i);
  });
});
