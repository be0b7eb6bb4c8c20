import { port } from "../port/port";
import type * as Commands from "./commands";
import type * as Config from "./config";
import type * as Held from "./held";

/**
 * The app's lazy modules: code the running node needs only now and then (changing settings, a
 * console command, `diag`), loaded when it is called instead of at boot. On Espruino each is its
 * own Storage file, evaluated on demand and dropped after (its functions cost RAM only while it
 * runs: every function object costs variable slots even with its code in flash); on NodeMCU a
 * module in LFS; on Node an ordinary import. Each target's app entry sets the loader (on the
 * port, which lazy modules share with the resident code). Resident code reaches these modules
 * only through `lazy()`: the build refuses a static import of one into a board's resident bundle.
 */
export interface LazyModules {
  config: typeof Config;
  commands: typeof Commands;
  held: typeof Held;
}

/** Sets how lazy modules are loaded (each target's app entry, once). */
export function setLoader(fn: (this: void, name: string) => unknown): void {
  port.loader = fn;
}

/** A lazy module's exports (loaded now: keep them only as long as they are used). */
export function lazy<K extends keyof LazyModules>(name: K): LazyModules[K] {
  return (port.loader as (this: void, name: string) => unknown)(name) as LazyModules[K];
}
