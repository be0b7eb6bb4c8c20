/**
 * The sensor node as a board process on each runtime of the matrix, for the simulator
 * (`make sim TARGET=…`) and the tests: the same app (firmware/app/main.ts), built for that
 * runtime, its serial console on the process's stdin/stdout, its flash a directory.
 *
 *   node      dist/node/host-sim/node/app-board.js
 *   espruino  dist/espruino/app.js in the Espruino stand-in, with the lazy modules it loads
 *             (app.<name>.js) written to its Storage first (as `make flash` does)
 *   lua51     the NodeMCU build (ESP8266 flavour: Lua 5.1, `file`) on the stand-in over luasocket
 *   lua53     the same, ESP32 flavour (Lua 5.3, io.open)
 *   fengari   the ESP32 flavour on fengari (Lua 5.3 in JavaScript)
 *
 * A reboot ends the process with status 4; the caller powers the board on again (same flash).
 */
import * as fs from "node:fs";
import * as path from "node:path";

export const APP_TARGETS = ["node", "espruino", "lua51", "lua53", "fengari"] as const;
export type AppTarget = (typeof APP_TARGETS)[number];
/** The exit status of a board process whose program asked for a reboot. */
export const REBOOT_STATUS = 4;

/** The checkout: this file runs from host-sim/ (tests) or dist/node/host-sim/ (the build). */
function root(): string {
  let d = __dirname;
  while (!fs.existsSync(path.join(d, "package.json"))) d = path.dirname(d);
  return d;
}
const ROOT = root();
const DIST = path.join(ROOT, "dist");

export interface AppBoardSpec {
  flash: string;
  chipId: string;
  /** The board's own setting defaults (e.g. the simulator's broker). */
  defaults?: Record<string, string>;
}

/** Writes an Espruino Storage file the way the stand-in keeps them (one file per name, hex-named). */
function storageFile(flash: string, name: string, from: string): void {
  fs.writeFileSync(path.join(flash, Buffer.from(name, "latin1").toString("hex")), fs.readFileSync(from));
}

export function appCommand(target: AppTarget, b: AppBoardSpec): { exe: string; args: string[]; env: Record<string, string> } {
  const defaults = b.defaults ?? {};
  const lua = {
    PETREL_STANDIN_DIR: path.join(ROOT, "host-sim/nodemcu"),
    PETREL_LUA_DIST: path.join(DIST, "nodemcu"),
    PETREL_ENTRY: "firmware.targets.nodemcu.app",
    PETREL_DEFAULTS: Object.entries(defaults).map(([k, v]) => `${k}=${v}`).join("\n"),
    STANDIN_FLASH: b.flash,
    STANDIN_ESP32: target === "lua51" ? "0" : "1",
    STANDIN_RESTART: "exit",
  };
  const script = path.join(ROOT, "host-sim/nodemcu/app-board.lua");
  switch (target) {
    case "node":
      return { exe: process.execPath, args: [path.join(DIST, "node/host-sim/node/app-board.js")],
        env: { PETREL_FLASH: b.flash, PETREL_CHIP: b.chipId, PETREL_DEFAULTS: JSON.stringify(defaults) } };
    case "espruino":
      for (const f of fs.readdirSync(path.join(DIST, "espruino")).filter((n) => /^app\.\w+\.js$/.test(n))) {
        storageFile(b.flash, f.slice(0, -3), path.join(DIST, "espruino", f));
      }
      return { exe: process.execPath, args: [path.join(DIST, "node/host-sim/espruino/board.js")],
        env: { PETREL_BUNDLE: path.join(DIST, "espruino/app.js"), PETREL_FLASH: b.flash, PETREL_CHUNK: "268",
          PETREL_GLOBALS: JSON.stringify({ PETREL_BOARD: { defaults } }) } };
    case "lua51":
      return { exe: "lua5.1", args: [script], env: lua };
    case "lua53":
      return { exe: "lua5.3", args: [script], env: lua };
    case "fengari":
      return { exe: process.execPath, args: [path.join(DIST, "node/host-sim/nodemcu/fengari-board.js"), script], env: lua };
  }
}
