/**
 * A simulated Espruino board as a process: a built bundle (PETREL_BUNDLE) in the Espruino
 * stand-in, its Storage in the directory PETREL_FLASH, its console on stdin/stdout. Each console
 * line is typed at the board's REPL as a call of the global function the bundle defines
 * (PETREL_CONSOLE, default `Agent`), as a host tool would type it over serial; "wifi down" and
 * "wifi up" switch the stand-in's Wi-Fi station instead. PETREL_CHUNK: net piece size (536,
 * ESP8266 268); PETREL_ESP32=1: refused connections throw, as on ESP32. Something that
 * crashes or misbehaves on the board prints "FAULT <what>" and ends the process with status 3.
 *
 *   PETREL_BUNDLE=dist/espruino/agent.js PETREL_FLASH=/tmp/f node dist/node/host-sim/espruino/board.js
 */
import * as fs from "node:fs";
import * as readline from "node:readline";
import { disposeContext, runBundle, runScript, serialInput, setWifi } from "./standin";

const bundle = process.env.PETREL_BUNDLE;
const flash = process.env.PETREL_FLASH;
if (bundle === undefined || flash === undefined) {
  process.stderr.write("board.js needs PETREL_BUNDLE (the built bundle) and PETREL_FLASH (a directory)\n");
  process.exit(2);
}
const fn = process.env.PETREL_CONSOLE ?? "Agent";
const chunk = Number(process.env.PETREL_CHUNK ?? "536");
const esp32 = process.env.PETREL_ESP32 === "1";

// PETREL_CA: the CA (PEM file) TLS brokers must be signed by, as the global AGENT_CA.
const ca = process.env.PETREL_CA;
// PETREL_GLOBALS: more globals, as JSON (e.g. PETREL_BOOT for the boot guard).
const extra = process.env.PETREL_GLOBALS ? (JSON.parse(process.env.PETREL_GLOBALS) as Record<string, unknown>) : {};
const ctx = runBundle(bundle, {
  globals: { ...extra, ...(ca ? { AGENT_CA: fs.readFileSync(ca, "latin1") } : {}) },
  print: (line) => process.stdout.write(line + "\n"),
  storageDir: flash,
  chunk,
  esp32,
  // E.reboot(): the process ends with status 4, for its harness to power the board on again
  reboot: () => {
    process.stdout.write("REBOOT\n");
    disposeContext(ctx);
    process.exit(4);
  },
  fault: (what) => {
    process.stdout.write(`FAULT ${what}\n`);
    disposeContext(ctx);
    process.exit(3);
  },
});
const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (l) => {
  if (l === "quit") {
    disposeContext(ctx);
    process.exit(0);
  }
  if (l === "wifi down" || l === "wifi up") {
    setWifi(ctx, l === "wifi up");
    return;
  }
  if (serialInput(ctx, l + "\n")) return; // the console was moved: the program reads the UART
  runScript(ctx, `${fn}(${JSON.stringify(l)})`);
});
rl.on("close", () => {
  disposeContext(ctx);
  process.exit(0);
});
