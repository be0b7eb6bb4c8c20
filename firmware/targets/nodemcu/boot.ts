import { guardBoot, type BootOptions } from "../../boot/guard";
import { installPort } from "../../port/port";
import { nodemcuPort } from "./port";
import { nodemcuStorage } from "./storage";

/**
 * The boot guard on NodeMCU (firmware/boot/guard.ts): `init.lua` on the board is
 *   require("petrel_boot").boot("app")
 * which starts the module `app` (in LFS, or as a file) unless safe mode is entered.
 * Console keys come from uart.on("data", 1, fn, 1): the REPL still sees them.
 */
installPort(nodemcuPort);

declare namespace file {
  function exists(this: void, name: string): boolean;
}
declare function require(this: void, name: string): unknown;

interface UartModule {
  on(this: void, ev: string, size?: number, fn?: (this: void, data: string) => void, run?: number): void;
}
interface TmrModule {
  ALARM_SINGLE: number;
  create(this: void): { alarm(this: unknown, ms: number, mode: number, fn: (this: void) => void): boolean };
}

export function boot(this: void, app: string, o?: BootOptions): void {
  const storage = nodemcuStorage({});
  const uart = _G["uart"] as UartModule;
  const tm = _G["tmr"] as TmrModule;
  guardBoot({
    storage,
    after: (ms, fn) => {
      const t = tm.create();
      t.alarm(ms < 1 ? 1 : ms, tm.ALARM_SINGLE, fn);
    },
    keys: (fn) => {
      if (fn === undefined) uart.on("data");
      else uart.on("data", 1, () => fn(), 1);
    },
    print: (line) => print(line),
    safe: (clear) => {
      _G["petrelBootOk"] = clear;
    },
    // the timer holds the key only: a storage of its own when it fires (settling the records
    // again is harmless), so the guard's storage and its functions go as the app starts
    clearLater: (key, ms) => {
      const t = tm.create();
      t.alarm(ms, tm.ALARM_SINGLE, () => nodemcuStorage({}).dropRecord(key));
    },
  }, o !== undefined ? o : {}, () => {
    // the app's module in LFS (node.LFS.get), else as a file
    const lfs = (_G["node"] as { LFS?: { get(this: void, name: string): unknown } }).LFS;
    if ((lfs !== undefined && lfs.get(app) !== undefined) || file.exists(app + ".lc") || file.exists(app + ".lua")) require(app);
    else print(`boot: no ${app} module in LFS or on the flash; nothing to start`);
  });
}
