// Checks make's arguments before any build: a BOARD that names a profile in boards/, a PORT that
// exists (a serial device, or tcp://host:port). Prints what is wrong and what would do, and exits 2.
//   node tools/check-args.mjs [--board NAME] [--port PORT] [--need-board] [--need-port]
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** The boards with a profile in `dir`. */
export function boardNames(dir = path.join(root, "boards")) {
  return fs.readdirSync(dir).filter((f) => f.endsWith(".json")).map((f) => f.slice(0, -5)).sort();
}

/** Serial devices that exist now (USB adapters and native USB). */
export function serialPorts(dev = "/dev") {
  try {
    return fs.readdirSync(dev).filter((f) => /^tty(USB|ACM)\d+$/.test(f)).sort().map((f) => path.join(dev, f));
  } catch {
    return [];
  }
}

/** What is wrong with these arguments, one line each (empty when nothing is). */
export function problems({ board, port, needBoard, needPort }, dirs = {}) {
  const out = [];
  if (board !== undefined && board !== "") {
    const names = boardNames(dirs.boards);
    if (!names.includes(board)) out.push(`no board "${board}": BOARD takes one of ${names.join(", ")}`);
  } else if (needBoard) {
    out.push(`BOARD is missing: it takes one of ${boardNames(dirs.boards).join(", ")}`);
  }
  if (port !== undefined && port !== "") {
    if (port.startsWith("tcp://")) {
      if (!/^tcp:\/\/[^:/]+:\d+$/.test(port)) out.push(`PORT=${port} is not tcp://host:port`);
    } else if (!fs.existsSync(port)) {
      const seen = serialPorts(dirs.dev);
      out.push(`no serial port ${port}: nothing is connected there (${seen.length > 0 ? `serial ports now: ${seen.join(", ")}` : "no /dev/ttyUSB* or /dev/ttyACM* now: is the board plugged in, with a data cable?"})`);
    }
  } else if (needPort) {
    const seen = serialPorts(dirs.dev);
    out.push(`PORT is missing: the board's serial device, e.g. PORT=${seen[0] ?? "/dev/ttyUSB0"}${seen.length > 0 ? ` (serial ports now: ${seen.join(", ")})` : ""}, or tcp://host:port`);
  }
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const at = (name) => (args.indexOf(name) >= 0 ? args[args.indexOf(name) + 1] : undefined);
  const found = problems({ board: at("--board"), port: at("--port"), needBoard: args.includes("--need-board"), needPort: args.includes("--need-port") });
  for (const p of found) console.error(`make: ${p}`);
  if (found.length > 0) process.exit(2);
}
