// A serial console to a board: what you type goes to the board, what it prints comes back.
//
//   node tools/console.mjs --port /dev/ttyUSB0 [--baud 115200]      (make console PORT=…)
//
// Ctrl-] ends it. On a terminal the keyboard is in raw mode, so Ctrl-C reaches the board (it
// interrupts Espruino and NodeMCU programs) instead of ending the console.
//
// A board built without the `texts` feature prints a broker's refusal as its code and a pointer
// ("reason code 0x87 in CONNACK ... see docs/reason-codes.md"); the console prints the text from
// that page under such a line, so the explanation is on the screen without being on the chip.
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

export const QUIT = 0x1d; // Ctrl-]

const REASON_CODES = path.join(path.dirname(fileURLToPath(import.meta.url)), "../docs/reason-codes.md");

/**
 * The texts of docs/reason-codes.md: "0x87" (MQTT 5.0 reason codes) and "rc5" (MQTT 3.1.1 CONNACK
 * return codes) to "error-code: what it means; the fix".
 */
export function reasonTexts(file = REASON_CODES) {
  const texts = new Map();
  let v4 = false;
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    if (line.startsWith("## ")) v4 = line.includes("3.1.1");
    const m = /^\| (0x[0-9a-f]{2}|\d+) \| `([a-z0-9-]+)` \| (.+) \|$/.exec(line);
    if (m !== null) texts.set(v4 ? "rc" + m[1] : m[1], `${m[2]}: ${m[3]}`);
  }
  return texts;
}

/** The explanation to print under a board's line that points to docs/reason-codes.md, or undefined. */
export function explain(line, texts) {
  if (!line.includes("docs/reason-codes.md")) return undefined;
  const m5 = /reason code (0x[0-9a-f]{2})/.exec(line);
  const m4 = /return code (\d+)/.exec(line);
  const key = m5 !== null ? m5[1] : m4 !== null ? "rc" + m4[1] : undefined;
  const t = key !== undefined ? texts.get(key) : undefined;
  return t !== undefined ? `  (docs/reason-codes.md, ${key.replace("rc", "return code ")}) ${t}` : undefined;
}

/** Connects `input`/`output` streams to the serial port; resolves when the user quits or the port closes. */
export async function runConsole(portPath, baud, input, output) {
  const { SerialPort } = await import("serialport");
  const sp = new SerialPort({ path: portPath, baudRate: baud, autoOpen: false });
  await new Promise((resolve, reject) => sp.open((e) => (e ? reject(new Error(`cannot open ${portPath}: ${e.message}; fix: check the port name (ls /dev/ttyUSB* /dev/ttyACM*), that you may use it (the dialout group), and that nothing else holds it`)) : resolve())));
  output.write(`console: ${portPath} at ${baud} baud; Ctrl-] ends\r\n`);
  return new Promise((resolve) => {
    let ended = false;
    const end = (why) => {
      if (ended) return;
      ended = true;
      input.removeListener("data", onKey);
      if (input.isTTY) input.setRawMode(false);
      input.pause();
      sp.close(() => resolve(why));
    };
    const onKey = (d) => {
      const i = d.indexOf(QUIT);
      if (i >= 0) {
        if (i > 0) sp.write(d.subarray(0, i));
        sp.drain(() => end("quit"));
        return;
      }
      sp.write(d);
    };
    if (input.isTTY) input.setRawMode(true);
    input.on("data", onKey);
    input.on("end", () => sp.drain(() => end("input ended")));
    input.resume();
    // the board's output goes through as it comes; a whole line that points to the reason codes
    // page is followed by its explanation (lines longer than 2 KB are not looked at)
    let texts;
    let line = "";
    sp.on("data", (d) => {
      output.write(d);
      const parts = (line + d.toString("latin1")).split("\n");
      line = parts.pop().slice(-2048);
      for (const l of parts) {
        if (!l.includes("docs/reason-codes.md")) continue;
        if (texts === undefined) texts = reasonTexts();
        const e = explain(l, texts);
        if (e !== undefined) output.write(`${e}\r\n`);
      }
    });
    sp.on("error", (e) => end(`the port failed: ${e.message}`));
    sp.on("close", () => end("the port closed"));
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const at = (name) => (args.indexOf(name) >= 0 ? args[args.indexOf(name) + 1] : undefined);
  const port = at("--port");
  const baud = Number(at("--baud") ?? "115200");
  if (port === undefined || port === "") {
    console.error("usage: make console PORT=/dev/ttyUSB0 [BAUD=115200]");
    process.exit(2);
  }
  runConsole(port, baud, process.stdin, process.stdout).then((why) => {
    process.stdout.write(`\r\nconsole: ${why}\r\n`);
    process.exit(0);
  }, (e) => {
    console.error(`console: ${e.message}`);
    process.exit(1);
  });
}
