// make flash BOARD=<name> PORT=<port> [BAUD=115200]: packs the board (tools/boards.mjs), then
// writes it to the board so that it survives a reset.
//   NodeMCU: every packed file through the REPL uploader, verified (tools/nodemcu-upload.mjs);
//            init.lua last, so a reset part-way does not boot a half-written set.
//   Espruino: not yet (the `espruino` CLI path is still to come); says so and fails.
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { loadProfile, packBoard } from "./boards.mjs";
import { upload } from "./nodemcu-upload.mjs";

const args = process.argv.slice(2);
const at = (name) => (args.indexOf(name) >= 0 ? args[args.indexOf(name) + 1] : undefined);
const board = at("--board");
const port = at("--port");
const baud = Number(at("--baud") ?? "115200");

async function main() {
  if (!board || !port) throw new Error("usage: make flash BOARD=<name> PORT=/dev/ttyUSB0 [BAUD=115200]");
  const p = loadProfile(board);
  const packed = packBoard(p);
  if (p.firmware !== "nodemcu") {
    throw new Error(`${p.name}: flashing Espruino boards is not implemented yet; meanwhile: npx espruino --no-ble -p ${port} -b ${baud} --storage petrel:${path.relative(process.cwd(), path.join(packed.dir, "petrel.js"))}`);
  }
  const files = fs.readdirSync(packed.dir).filter((f) => f.endsWith(".lua")).sort((a, b) => (a === "init.lua" ? 1 : 0) - (b === "init.lua" ? 1 : 0))
    .map((f) => ({ name: f, data: fs.readFileSync(path.join(packed.dir, f)) }));
  const r = await upload(port, files, { baud, log: () => {} });
  const bytes = r.files.reduce((n, f) => n + f.bytes, 0);
  const resent = r.files.reduce((n, f) => n + f.resent, 0);
  console.log(`flash ${p.name}: ${r.files.length} files, ${bytes} bytes written to ${port} and verified${resent ? ` (${resent} line(s) resent)` : ""}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    console.error(`flash: ${e.message}`);
    process.exit(1);
  });
}
