// A serial console to a board: what you type goes to the board, what it prints comes back.
//
//   node tools/console.mjs --port /dev/ttyUSB0 [--baud 115200]      (make console PORT=…)
//
// Ctrl-] ends it. On a terminal the keyboard is in raw mode, so Ctrl-C reaches the board (it
// interrupts Espruino and NodeMCU programs) instead of ending the console.
import { fileURLToPath } from "node:url";

export const QUIT = 0x1d; // Ctrl-]

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
    sp.on("data", (d) => output.write(d));
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
