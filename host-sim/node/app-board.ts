/**
 * One simulated Node board running the sensor node as a process, its serial console on
 * stdin/stdout (keys one by one on a TTY, lines from a pipe). `reboot` ends the process with
 * status 4 (a harness powers it on again over the same flash); deep sleep prints "SLEEP <ms>"
 * and ends it with status 5 (the harness powers it on after that long, or at once).
 *
 *   PETREL_FLASH=dir PETREL_CHIP=sim1 [PETREL_DEFAULTS='{"brokers":"127.0.0.1:1883"}'] node dist/node/host-sim/node/app-board.js
 */
import { nodeApp } from "./app";
import { terminalSerial } from "./serial";

const flash = process.env.PETREL_FLASH;
if (flash === undefined) {
  process.stderr.write("app-board.js needs PETREL_FLASH (a directory: the board's flash)\n");
  process.exit(2);
}
const app = nodeApp({
  flash,
  chipId: process.env.PETREL_CHIP ?? "sim1",
  defaults: process.env.PETREL_DEFAULTS ? (JSON.parse(process.env.PETREL_DEFAULTS) as Record<string, string>) : undefined,
  serial: terminalSerial(process.stdin, process.stdout, () => app.console.start()),
  reboot: () => {
    process.stdout.write("REBOOT\r\n");
    process.exit(4);
  },
  sleep: (ms) => {
    process.stdout.write(`SLEEP ${ms}\r\n`);
    process.exit(5);
  },
});
process.stdin.on("end", () => process.exit(0));
