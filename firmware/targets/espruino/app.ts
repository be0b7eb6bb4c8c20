import { startApp } from "../../app/main";
import { espruinoSerial } from "./console";
import { espruinoPlatform, espruinoStorage } from "./platform";

/**
 * The sensor node on Espruino (dist/espruino/app.js, the Storage file `app` the boot guard
 * starts). It takes the client and the console from the Storage modules `petrel` and
 * `petrel-console` (the build points its imports of them there), so the board keeps one copy of
 * each. PETREL_BOARD (set by the board's packer in front of this file) carries the profile's
 * sizes and whether the firmware has TLS.
 */
declare const global: { [name: string]: unknown };
declare const E: { getTemperature?(): number; reboot?(): void };
declare const process: { memory?(gc: boolean): { free: number }; env?: { BOARD?: string } } | undefined;

/** Deep sleep where the firmware has it: ESP32.deepSleep, or the ESP8266 module's (µs). */
function deepSleep(): ((ms: number) => void) | undefined {
  const b = typeof process !== "undefined" && process !== undefined && process.env !== undefined ? process.env.BOARD : undefined;
  if (b === undefined) return undefined;
  if (b.substring(0, 5) === "ESP32") return (ms) => (global["ESP32"] as { deepSleep(us: number): void }).deepSleep(ms * 1000);
  if (b.substring(0, 7) === "ESP8266") return (ms) => (global["require"] as (n: string) => { deepSleep(us: number): void })("ESP8266").deepSleep(ms * 1000);
  return undefined;
}

interface Profile { tls?: boolean; maxPacket?: number; maxInflight?: number; outboxMessages?: number; offlineQueue?: number; minFreeHeap?: number; defaults?: { [key: string]: string } }
const profile = (global["PETREL_BOARD"] !== undefined ? global["PETREL_BOARD"] : {}) as Profile;
const VERSION = "0.1.0";

const app = startApp({
  storage: espruinoStorage(),
  tls: profile.tls === true,
  version: VERSION,
  sensors: [
    { name: "temp", read: () => (E.getTemperature !== undefined ? E.getTemperature() : undefined) },
    { name: "jsvars", read: () => (typeof process !== "undefined" && process !== undefined && process.memory !== undefined ? process.memory(false).free : undefined) },
  ],
  serial: espruinoSerial(),
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
