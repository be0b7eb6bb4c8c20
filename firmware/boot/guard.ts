import type { Bytes } from "../port/bytes";
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

function readCount(s: Storage, key: string): number {
  const b = port.bytes.alloc(1);
  return s.read(key, b, 1) === 1 ? b[0] : 0;
}

function writeCount(s: Storage, key: string, n: number): void {
  const b = port.bytes.alloc(1);
  b[0] = n > 255 ? 255 : n;
  s.write(key, b as Bytes, 1);
}

/** Clears the failed-boot count (after fixing the app, from the REPL in safe mode). */
export function bootOk(s: Storage, key?: string): void {
  writeCount(s, key !== undefined ? key : COUNT_KEY, 0);
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
  });
  p.after(windowMs, () => {
    if (decided) return;
    decided = true;
    p.keys(undefined);
    p.after(healthyMs, () => {
      writeCount(p.storage, key, 0);
    });
    startApp();
  });
}
