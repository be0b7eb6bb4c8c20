import { port } from "../port/port";
import type { Storage } from "../port/storage";

/**
 * The boot guard: what runs first at power-on, written once for every firmware. It gives a short
 * window in which a key on the console enters safe mode, and it protects against boot loops: a
 * boot counts as failed until the app has run `healthyMs`; after `maxFailedBoots` failed boots in
 * a row the next one enters safe mode instead of starting the app again. In safe mode the app is
 * not started and the console stays the firmware's REPL, so the board can be fixed and flashed.
 */
export interface BootPort {
  storage: Storage;
  /** Calls fn once, `ms` from now. */
  after(this: void, ms: number, fn: (this: void) => void): void;
  /** Delivers console keys to fn (the window), or stops that (undefined). */
  keys(this: void, fn: ((this: void) => void) | undefined): void;
  print(this: void, line: string): void;
  /**
   * Safe mode was entered: offer `petrelBootOk()` at the REPL (it clears the failed-boot count).
   * Not before: a function the REPL can reach keeps the whole guard in RAM after the app started.
   */
  safe(this: void, clear: (this: void) => void): void;
  /**
   * Removes the storage record `key` `ms` from now (the boot was good), holding nothing of the
   * guard meanwhile: the guard's code must be free to go as soon as the app starts (on Espruino a
   * pending callback keeps its whole bundle in RAM through the app's first seconds, its peak).
   */
  clearLater(this: void, key: string, ms: number): void;
}

export interface BootOptions {
  /** [2000] ms after power-on in which a key enters safe mode. */
  windowMs?: number;
  /** [3] Failed boots in a row before safe mode. */
  maxFailedBoots?: number;
  /** [30000] ms the app must run for a boot to count as good. */
  healthyMs?: number;
  /** ["bootn"] Storage record of the failed-boot count. */
  key?: string;
}

/** The default storage record of the failed-boot count. */
const COUNT_KEY = "bootn";

/** ms as seconds with one decimal ("0.2", "30.0"), in integer arithmetic. */
function secs(ms: number): string {
  const i = port.ints;
  return `${i.idiv(ms, 1000)}.${i.idiv(i.imod(ms, 1000), 100)}`;
}

/** The failed-boot count (a record of decimal digits; none or unreadable: 0). */
function readCount(s: Storage, key: string): number {
  const w = s.getRecord(key);
  const t = w !== undefined ? port.bytes.textOf(w) : "";
  let n = 0;
  for (let i = 0; i < t.length && i < 3; i++) {
    const d = t.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return 0;
    n = n * 10 + d;
  }
  return n;
}

function writeCount(s: Storage, key: string, n: number): void {
  s.putRecord(key, port.bytes.wireOf(`${n > 255 ? 255 : n}`));
}

/**
 * Runs the boot: counts this boot, then either enters safe mode at once (too many failed boots),
 * or opens the key window and starts the app when it closes.
 */
export function guardBoot(p: BootPort, o: BootOptions, startApp: (this: void) => void): void {
  const key = o.key !== undefined ? o.key : COUNT_KEY;
  const max = o.maxFailedBoots !== undefined ? o.maxFailedBoots : 3;
  const windowMs = o.windowMs !== undefined ? o.windowMs : 2000;
  const healthyMs = o.healthyMs !== undefined ? o.healthyMs : 30000;
  const failed = readCount(p.storage, key);
  if (failed >= max) {
    p.print(`SAFE MODE: the app did not run ${secs(healthyMs)} s after each of the last ${failed} boots (it crashes or resets the board); ` +
      "it is not started and the console is the REPL. Fix: flash a fixed app, or remove it, then call petrelBootOk() and reset");
    p.safe(() => writeCount(p.storage, key, 0));
    return;
  }
  writeCount(p.storage, key, failed + 1);
  let decided = false;
  p.print(`boot: press a key within ${secs(windowMs)} s for safe mode (the REPL, no app)`);
  p.keys(() => {
    if (decided) return;
    decided = true;
    p.keys(undefined);
    // a deliberate stop is not a failed boot
    writeCount(p.storage, key, failed);
    p.print("SAFE MODE: a key was pressed in the boot window; the app is not started and the console is the REPL. Reset to start the app");
    p.safe(() => writeCount(p.storage, key, 0));
  });
  p.after(windowMs, () => {
    if (decided) return;
    decided = true;
    p.keys(undefined);
    p.clearLater(key, healthyMs);
    startApp();
  });
}
