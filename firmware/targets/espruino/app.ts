import { setLoader } from "../../app/lazy";
import { startApp } from "../../app/main";
import { installPort, port } from "../../port/port";
import { espruinoSerial } from "./console";
import { espruinoPlatform, espruinoStorage } from "./platform";
import { espruinoPort } from "./port";

/**
 * The sensor node on Espruino (dist/espruino/app.js: the Storage file `app`, which the boot guard
 * evaluates). PETREL_BOARD (set by the board's packer in front of this file) carries the profile's
 * sizes and whether the firmware has TLS.
 *
 * Its lazy modules (app/lazy.ts) are the Storage files `app.config` and `app.commands`, each the
 * body of a function that returns the module's exports: `new Function` makes that function at
 * global scope from the code where it lies in flash, so the module's functions exist only while
 * something holds its exports. The module finds the platform's byte and integer operations in
 * its one parameter (the bundle's `port`, see tools/build.mjs).
 */
declare const global: { [name: string]: unknown };
declare const E: { getTemperature?(): number; reboot?(): void };
declare const process: { memory?(gc: boolean): { free: number }; env?: { BOARD?: string } } | undefined;
declare function setTimeout(fn: () => void, ms: number): number;
declare const Function: new (param: string, body: string) => (this: void, port: unknown) => unknown;

/**
 * Free variable slots a lazy module needs to load and run its command, measured on the
 * board-sized interpreters (December 2026, the esp8266-espruino pack, connected, slots taken
 * before boot to find the edge): loading the commands module takes about 50 slots and `status`
 * some 130 more; `set` (the config module, about 90 slots loaded alone for the settings
 * commands) ran with 197 slots free here and ran out of memory with 172 or fewer, so it asks for
 * 250. Running out of slots part-way stops the command without a word, or the interpreter
 * itself; refusing first keeps the node running and says why (test/espruino-low-memory.test.ts).
 * The check comes late: with 150 slots taken before boot the console runs out on the way to it.
 */
function need(name: string): number {
  return name === "config" ? 250 : name === "held" ? 150 : 130;
}

/** Free variable slots (after a collection with `gc`), or undefined where the firmware has no process.memory. */
function freeSlots(gc: boolean): number | undefined {
  return typeof process !== "undefined" && process !== undefined && process.memory !== undefined ? process.memory(gc).free : undefined;
}

installPort(espruinoPort);
/** Set once the app has started: at boot the modules load unchecked (a refusal there would leave the app half made). */
let booted = false;
setLoader((name) => {
  let free = booted ? freeSlots(false) : undefined;
  if (free !== undefined) {
    const n = need(name);
    if (free < n) free = freeSlots(true) as number;
    if (free < n) {
      throw `not enough memory for this command: ${free} variable slots free, it needs about ${n}; nothing was run. ` +
        "Fix: free some (your own code's variables; or a smaller outboxMessages, offlineQueue or maxPacket in the board's profile, then flash again), or use a board with more RAM";
    }
  }
  const code = (global["require"] as (n: string) => { read(n: string): string | undefined })("Storage").read(`app.${name}`);
  return new Function("P", code as string)(port);
});

/** Deep sleep where the firmware has it: ESP32.deepSleep, or the ESP8266 module's (µs). */
function deepSleep(): ((ms: number) => void) | undefined {
  const b = typeof process !== "undefined" && process !== undefined && process.env !== undefined ? process.env.BOARD : undefined;
  if (b === undefined) return undefined;
  if (b.substring(0, 5) === "ESP32") return (ms) => (global["ESP32"] as { deepSleep(us: number): void }).deepSleep(ms * 1000);
  if (b.substring(0, 7) === "ESP8266") return (ms) => (global["require"] as (n: string) => { deepSleep(us: number): void })("ESP8266").deepSleep(ms * 1000);
  return undefined;
}

/** The board profile's part the app takes (tools/boards.mjs writes it under the bundle's shortened names). */
interface Profile { tls?: boolean; maxPacket?: number; maxInflight?: number; outboxMessages?: number; offlineQueue?: number; minFreeHeap?: number; defaults?: { [key: string]: string } }
let profile = (global["PETREL_BOARD"] !== undefined ? global["PETREL_BOARD"] : {}) as Profile;
const VERSION = "0.1.0";

const storage = espruinoStorage();
const serial = espruinoSerial();
// A start that stops part-way (out of memory: Espruino abandons the whole evaluation) would
// leave a console that answers and a node that does not run, and the interpreter's own message
// on the REPL's loopback, where the console has moved it: this timer, set before the start,
// runs either way and says so on the serial line.
setTimeout(() => {
  if (booted) return;
  const free = freeSlots(true);
  serial.write(`\r\nerror: the app stopped part-way through its start, most likely out of memory${free !== undefined ? ` (${free} variable slots free)` : ""}; ` +
    "the node is not running. Fix: free memory (your own code, or smaller outboxMessages, offlineQueue or maxPacket in the profile), then reset\r\n");
}, 0);
const app = startApp({
  storage,
  tls: profile.tls === true,
  version: VERSION,
  sensors: [
    { name: "temp", read: () => (E.getTemperature !== undefined ? E.getTemperature() : undefined) },
    { name: "jsvars", read: () => freeSlots(false) },
  ],
  serial,
  sleep: deepSleep(),
  back: "petrelConsole()",
  reboot: () => {
    if (E.reboot !== undefined) E.reboot();
    else (global["require"] as (n: string) => { reboot(): void })("ESP8266").reboot();
  },
  platform: (wifi, log, tls) => espruinoPlatform({ log, tls, wifi: wifi !== undefined ? { ssid: wifi.ssid, password: wifi.password } : {} }),
  maxPacket: profile.maxPacket,
  maxInflight: profile.maxInflight,
  outboxMessages: profile.outboxMessages,
  offlineQueue: profile.offlineQueue,
  minFreeHeap: profile.minFreeHeap,
}, profile.defaults);
global["petrelConsole"] = () => {
  app.console.start();
};
global["petrelApp"] = app;
// read once: kept, the profile and its global would hold a dozen slots for good
profile = undefined as unknown as Profile;
delete global["PETREL_BOARD"];
booted = true;
