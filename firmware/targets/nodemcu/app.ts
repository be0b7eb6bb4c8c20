import { setLoader } from "../../app/lazy";
import { startApp, type App } from "../../app/main";
import { installPort, port } from "../../port/port";
import { nodemcuSerial } from "./console";
import { nodemcuPlatform } from "./platform";
import { nodemcuPort } from "./port";
import { nodemcuStorage } from "./storage";

/**
 * The sensor node on NodeMCU: the module `app` that init.lua's boot guard starts
 * (require("app")). PETREL_BOARD (a global init.lua sets from the board profile) carries the
 * profile's sizes and whether the firmware has TLS.
 */
installPort(nodemcuPort);

declare function require(this: void, name: string): unknown;
/**
 * The app's lazy modules (app/lazy.ts) are modules in LFS, required each time they are used. The
 * packer renames the prefix with the modules (tools/boards.mjs: firmware.app.config is
 * p_app_config). `require` would keep each one, and the modules only it pulled in, in
 * package.loaded for good (about 2.7 KB of heap on a 32-bit build): every module the load added
 * there is taken out again, so the heap holds them only while the caller holds the exports. (Only
 * lazy modules are new at that point: the resident ones were all loaded at boot.)
 */
const LAZY_PREFIX = "firmware.app.";
setLoader((name) => {
  const loaded = (_G["package"] as { loaded: { [k: string]: unknown } }).loaded;
  const before: { [k: string]: boolean } = {};
  for (const k in loaded) before[k] = true;
  const m = require(LAZY_PREFIX + name);
  for (const k in loaded) if (before[k] !== true) loaded[k] = undefined;
  return m;
});

interface Profile { tls?: boolean; maxPacket?: number; maxInflight?: number; outboxMessages?: number; offlineQueue?: number; minFreeHeap?: number; chip?: string; defaults?: { [key: string]: string } }
interface NodeModule { heap?(this: void): number; restart(this: void): void; dsleep?(this: void, us: unknown): void }
interface AdcModule { read(this: void, ch: number): number }
interface WifiModule { sta?: { getrssi?(this: void): number | undefined } }

const profile = (_G["PETREL_BOARD"] !== undefined ? _G["PETREL_BOARD"] : {}) as Profile;
// read once: the global would keep the table (and its keys) in the heap for good
_G["PETREL_BOARD"] = undefined;
const VERSION = "0.1.0";

function adc(): number | undefined {
  const a = _G["adc"] as AdcModule | undefined;
  return a !== undefined ? a.read(0) : undefined;
}

function rssi(): number | undefined {
  const w = _G["wifi"] as WifiModule | undefined;
  return w !== undefined && w.sta !== undefined && w.sta.getrssi !== undefined ? w.sta.getrssi() : undefined;
}

function heap(): number | undefined {
  const n = _G["node"] as NodeModule | undefined;
  return n !== undefined && n.heap !== undefined ? n.heap() : undefined;
}

/** node.dsleep where the build has it: ESP32 takes { us = … }, ESP8266 the µs. */
function deepSleep(): ((this: void, ms: number) => void) | undefined {
  const n = _G["node"] as NodeModule | undefined;
  if (n === undefined || n.dsleep === undefined) return undefined;
  const dsleep = n.dsleep;
  if (profile.chip === "esp32") return (ms) => dsleep({ us: ms * 1000 });
  return (ms) => dsleep(ms * 1000);
}

const storage = nodemcuStorage({});
const app: App = startApp({
  storage,
  tls: profile.tls === true,
  version: VERSION,
  sensors: [{ name: "adc", read: adc }, { name: "rssi", read: rssi }, { name: "heap", read: heap }],
  serial: nodemcuSerial(),
  sleep: deepSleep(),
  back: "petrel_console()",
  reboot: () => {
    (_G["node"] as NodeModule).restart();
  },
  // NodeMCU's tls module verifies the broker against a CA; a client certificate it does not take here
  platform: (wifi, log, tls) => nodemcuPlatform({ storage, log, tls: tls.ca !== undefined ? { ca: tls.ca } : undefined,
    wifi: wifi !== undefined ? { ssid: wifi.ssid, pwd: wifi.password } : {} }),
  maxPacket: profile.maxPacket,
  maxInflight: profile.maxInflight,
  outboxMessages: profile.outboxMessages,
  offlineQueue: profile.offlineQueue,
  minFreeHeap: profile.minFreeHeap,
}, profile.defaults);
_G["petrel_console"] = () => {
  app.console.start();
};
_G["petrel_app"] = app;

/**
 * package.loaded keeps every module's table of exports, though the modules that import them hold
 * what they use already: about 2 KB of heap on a 32-bit build for the node's modules. Once the
 * node runs they are let go, all but the port's (port/port.ts: the one module with state that the
 * lazy modules share). A lazy module that requires one of the others gets it afresh from LFS,
 * and the loader above lets it go again after.
 */
function forgetModules(): void {
  const loaded = (_G["package"] as { loaded: { [k: string]: unknown } }).loaded;
  for (const k in loaded) {
    const m = loaded[k] as { port?: unknown };
    const ours = k.substring(0, 2) === "p_" || k.substring(0, 9) === "firmware." || k === "lualib_bundle" || k === "petrel_boot" ||
      k === "petrel_console";
    if (ours && !(typeof m === "object" && m.port === port)) loaded[k] = undefined;
  }
}
forgetModules();
