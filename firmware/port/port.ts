import type { IntOps } from "./ints";
import type { BytesPort } from "./bytes";

/**
 * The platform as shared firmware code sees it. Each target's entry module fills it once,
 * before any other firmware code runs (`installPort`); shared code reads `port.ints` and
 * `port.bytes` and never imports a target. This is the only mutable global in the core.
 */
export interface Port {
  /** Name of the runtime family: "node", "espruino" or "nodemcu". */
  target: string;
  ints: IntOps;
  bytes: BytesPort;
  /**
   * Loads one of the app's lazy modules (app/lazy.ts) by name, where an app set a loader. Part of
   * the port so that lazy modules, which share only the port with the code that loads them,
   * can load each other.
   */
  loader?: (this: void, name: string) => unknown;
}

export const port: Port = { target: "", ints: undefined as unknown as IntOps, bytes: undefined as unknown as BytesPort };

export function installPort(p: Port): void {
  port.target = p.target;
  port.ints = p.ints;
  port.bytes = p.bytes;
}
