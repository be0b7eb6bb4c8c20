// make flash BOARD=<name> PORT=<port> [BAUD=115200]: packs the board (tools/boards.mjs), then
// writes it to the board so that it survives a reset.
//   NodeMCU: a board with LFS: lfs.img through the REPL uploader, verified, loaded with
//            node.LFS.reload (the board restarts; the modules in LFS are checked), removed; then
//            init.lua. A board without LFS: every packed file, verified. init.lua last either
//            way, so a reset part-way does not boot a half-written set (tools/nodemcu-upload.mjs).
//   Espruino: through the `espruino` CLI (EspruinoTools): the sensor node to Storage as "app",
//            its lazy modules as "app.<name>", and the boot guard (dist/espruino/boot.js) as
//            the boot code `.bootcde`, then each read back on the board (length and E.CRC32)
//            and compared.
//            PORT may be a serial device or tcp://host:port.
import * as fs from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { fileURLToPath } from "node:url";
import { loadProfile, packBoard } from "./boards.mjs";
import { spawnSync } from "node:child_process";
import { initLast, upload, uploadLfs } from "./nodemcu-upload.mjs";
import { problems } from "./check-args.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** What a file must read back as on the board: its length and CRC-32 (E.CRC32 computes the same). */
const expected = (file) => {
  const b = fs.readFileSync(file);
  return `${b.length}/${zlib.crc32(b)}`;
};

/**
 * The cause of a failed espruino CLI run when its output names one, with the fix, to lead the
 * error (the CLI's own words follow it); undefined when it names none.
 */
export function cliCause(out) {
  const cause = /Port "[^"]*" not found/.exec(out)?.[0] ?? /(EACCES|Permission denied)[^\n]*/.exec(out)?.[0] ?? /Unable to connect[^\n]*/i.exec(out)?.[0];
  if (cause === undefined) return undefined;
  const fix = /EACCES|Permission/.test(cause) ? "add yourself to the dialout group (or run as root)" : "check PORT (ls /dev/ttyUSB* /dev/ttyACM*) and the cable";
  return `${cause.trim()}: nothing was written; fix: ${fix}`;
}

/** Writes the Espruino pack with the espruino CLI; throws with its output when it fails. */
function flashEspruino(p, packed, port, baud) {
  const cli = path.join(root, "node_modules/espruino/bin/espruino-cli.js");
  const files = packed.storage;
  // Each file read back from Storage as "length/crc32" on one line the board prints.
  const check = `print("flashed " + ${JSON.stringify(Object.keys(files))}.map(function(n){var s=require("Storage").read(n);return s===undefined?"missing":s.length+"/"+E.CRC32(s);}).join(" "))`;
  const storage = Object.entries(files).flatMap(([name, file]) => ["--storage", `${name}:${file}`]);
  // --no-ble: the CLI's Bluetooth scan needs D-Bus, absent on servers and in CI
  const r = spawnSync(process.execPath, [cli, "--no-ble", "-p", port, "-b", String(baud), ...storage, "-e", check],
    { encoding: "utf8", timeout: 300000 });
  const out = `${r.stdout ?? ""}${r.stderr ?? ""}`;
  const m = new RegExp(`flashed${" (\\S+)".repeat(Object.keys(files).length)}`).exec(out);
  if (r.status !== 0 || m === null) {
    const cause = cliCause(out);
    if (cause !== undefined) throw new Error(`${p.name}: ${cause}; the espruino CLI's output:\n${out.slice(-1500)}`);
    throw new Error(`${p.name}: the espruino CLI did not confirm the upload to ${port}; fix: check the port (and the baud rate), reset the board, and see its output:\n${out.slice(-1500)}`);
  }
  const names = Object.keys(files);
  names.forEach((name, i) => {
    const want = expected(files[name]);
    if (m[i + 1] !== want) {
      throw new Error(`${p.name}: ${name} reads back from the board as ${m[i + 1]} (length/CRC-32), not ${want}; fix: free Storage (require("Storage").eraseAll() erases it), check the line (a lost character changes the CRC) and flash again`);
    }
  });
  return { bytes: names.reduce((n, name) => n + fs.statSync(files[name]).size, 0) };
}

const args = process.argv.slice(2);
const at = (name) => (args.indexOf(name) >= 0 ? args[args.indexOf(name) + 1] : undefined);
const board = at("--board");
const port = at("--port");
const baud = Number(at("--baud") ?? "115200");

/**
 * Packs profile `p` and writes it to the board at `port`; returns the line to print. `opts`:
 * baud, dist (where to pack), checkLfs (false: an LFS image over the profile's region is
 * flashed anyway; for tests), log, timeoutMs, restartMs.
 */
export async function flashBoard(p, port, opts = {}) {
  const baud = opts.baud ?? 115200;
  const packed = await packBoard(p, opts.dist, { checkLfs: opts.checkLfs });
  if (p.firmware === "espruino") {
    const r = flashEspruino(p, packed, port, baud);
    return `flash ${p.name}: ${Object.keys(packed.storage).join(", ")}, ${r.bytes} bytes written to ${port} (length and CRC-32 read back)`;
  }
  const log = opts.log ?? (() => {});
  if (packed.lfs !== undefined) {
    // LFS: the image and init.lua only; the modules are in the image (tools/nodemcu-upload.mjs flashLfs)
    const r = await uploadLfs(port, {
      image: fs.readFileSync(packed.lfs.image),
      init: fs.readFileSync(path.join(packed.dir, "init.lua")),
      modules: packed.lfs.modules,
    }, { baud, log, timeoutMs: opts.timeoutMs, restartMs: opts.restartMs });
    const resent = r.files.reduce((n, f) => n + f.resent, 0);
    return `flash ${p.name}: lfs.img (${r.files[0].bytes} bytes, ${r.modules} modules, ${packed.lfs.size} bytes in flash) written to ${port}, verified, ` +
      `loaded with node.LFS.reload (the board was back in ${(r.restartMs / 1000).toFixed(1)} s with every module in LFS) and removed; ` +
      `init.lua (${r.files[1].bytes} bytes) written and verified${resent ? ` (${resent} line(s) resent)` : ""}. The board is at its Lua prompt: reset it to start Petrel`;
  }
  const files = initLast(fs.readdirSync(packed.dir).filter((f) => f.endsWith(".lua"))
    .map((f) => ({ name: f, data: fs.readFileSync(path.join(packed.dir, f)) })));
  // bytecode (profile "bytecode"): node.compile on the board after each file, the source removed
  const r = await upload(port, files, { baud, log, compile: p.bytecode, timeoutMs: opts.timeoutMs });
  const bytes = r.files.reduce((n, f) => n + f.bytes, 0);
  const resent = r.files.reduce((n, f) => n + f.resent, 0);
  return `flash ${p.name}: ${r.files.length} files, ${bytes} bytes written to ${port} and verified${p.bytecode ? ", compiled to bytecode on the board" : ""}${resent ? ` (${resent} line(s) resent)` : ""}`;
}

async function main() {
  if (!board || !port) throw new Error("usage: make flash BOARD=<name> PORT=/dev/ttyUSB0 [BAUD=115200]");
  // a wrong board or a port that is not there, before anything is packed
  const wrong = problems({ board, port });
  if (wrong.length > 0) throw new Error(wrong.join("; "));
  console.log(await flashBoard(loadProfile(board), port, { baud }));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    console.error(`flash: ${e.message}`);
    process.exit(1);
  });
}
