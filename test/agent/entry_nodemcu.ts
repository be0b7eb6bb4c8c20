import type { Wire } from "../../firmware/port/bytes";
import { installPort } from "../../firmware/port/port";
import { nodemcuPlatform } from "../../firmware/targets/nodemcu/platform";
import { nodemcuPort } from "../../firmware/targets/nodemcu/port";
import { luaSplit } from "../probe/lua-split";
import { startAgent } from "./agent";

// The board agent on NodeMCU: lines arrive from the console (uart.on "data" with "\n").
installPort(nodemcuPort);

declare namespace string {
  function sub(this: void, s: string, i: number, j?: number): string;
  function byte(this: void, s: string, i: number): number;
  function char(this: void, c: number): string;
  function format(this: void, f: string, ...args: unknown[]): string;
}
declare namespace table {
  function concat(this: void, t: string[], sep?: string): string;
}
declare function tonumber(this: void, s: string, base: number): number;
declare function pcall(this: void, fn: (this: void, what: string) => number, what: string): LuaMultiReturn<[boolean, number]>;
declare function collectgarbage(this: void, what: string): number;

/** Lua heap in use (KB), after a full collection; "unknown" where the runtime has no collector control (fengari). */
function memory(): string {
  const [ok] = pcall(collectgarbage, "collect");
  if (!ok) return "unknown (no collectgarbage)";
  return string.format("%.1f KB Lua heap", collectgarbage("count"));
}


function hex(w: Wire): string {
  const s = w as unknown as string;
  const parts: string[] = [];
  for (let i = 1; i <= s.length; i++) parts[i - 1] = string.format("%02x", string.byte(s, i));
  return table.concat(parts);
}

function unhex(h: string): string {
  const parts: string[] = [];
  for (let i = 1; i < h.length; i += 2) parts[(i - 1) / 2] = string.char(tonumber(string.sub(h, i, i + 1), 16));
  return table.concat(parts);
}

/** Starts the agent (`ca`: the PEM TLS brokers must be signed by); returns the console's line handler. */
export function start(this: void, ca?: string): (this: void, line: string) => void {
  const agent = startAgent({ platform: nodemcuPlatform({ logLevel: 1, tls: ca !== undefined ? { ca } : undefined }), split: luaSplit, print: (l) => print(l), hex, unhex, memory });
  return agent.line;
}
