import { guardBoot } from "../../boot/guard";
import { installPort } from "../../port/port";
import { espruinoStorage } from "./platform";
import { espruinoPort } from "./port";

/**
 * The boot guard on Espruino (firmware/boot/guard.ts), as its own small bundle
 * (dist/espruino/boot.js), saved as the board's boot code. It starts the Storage file `app` unless
 * safe mode is entered: the code is handed to setTimeout as a string, which Espruino runs at
 * global scope from where it lies in flash (nothing of it is copied to RAM). During the key window the console is moved
 * to LoopbackA, so a key reaches the guard instead of the REPL; it is moved back after.
 * Options come from the global PETREL_BOOT ({ app, windowMs, maxFailedBoots, healthyMs }).
 */
declare const global: { [name: string]: unknown };
declare function setTimeout(fn: (() => void) | string, ms: number): number;
declare function print(line: string): void;
declare const E: { getConsole(): string | undefined };

declare interface Device {
  on(ev: string, fn: (d: string) => void): void;
  removeAllListeners(ev: string): void;
  setConsole(): void;
}

installPort(espruinoPort);

const opts = (global["PETREL_BOOT"] as { app?: string; windowMs?: number; maxFailedBoots?: number; healthyMs?: number } | undefined);
const o = opts !== undefined ? opts : {};
const storage = espruinoStorage();
const consoleName = E.getConsole();
const con = consoleName !== undefined ? (global[consoleName] as Device | undefined) : undefined;
const loop = global["LoopbackA"] as Device | undefined;

guardBoot({
  storage,
  after: (ms, fn) => {
    setTimeout(fn, ms);
  },
  keys: (fn) => {
    if (con === undefined || loop === undefined) return;
    if (fn === undefined) {
      con.removeAllListeners("data");
      con.setConsole();
    } else {
      loop.setConsole();
      con.on("data", () => fn());
    }
  },
  print: (line) => print(line),
  safe: (clear) => {
    global["petrelBootOk"] = clear;
  },
  // code as a string runs at global scope and keeps no closure: the guard's bundle can go. It
  // removes the record as espruinoStorage's remove does (the copy `<key>~`, then `<key>`).
  clearLater: (key, ms) => {
    setTimeout(`require("Storage").erase("${key}~");require("Storage").erase("${key}")`, ms);
  },
}, o, () => {
  const st = (global["require"] as (n: string) => { read(n: string): string | undefined })("Storage");
  const app = o.app !== undefined ? o.app : "app";
  const code = st.read(app);
  if (code === undefined) print(`boot: no ${app} in Storage; nothing to start`);
  else setTimeout(code, 0);
});
