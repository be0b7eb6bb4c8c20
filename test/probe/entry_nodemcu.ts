import { installPort } from "../../firmware/port/port";
import { nodemcuPort } from "../../firmware/targets/nodemcu/port";
import { runProbe } from "./probe";
import "./suites/ints";
import "./suites/bytes";
import "./suites/codec";
import "./suites/time";
import "./suites/sched";
import "./suites/session";

installPort(nodemcuPort);

declare namespace string {
  function find(this: void, s: string, pattern: string, init: number, plain: boolean): LuaMultiReturn<[number | undefined, number | undefined]>;
  function sub(this: void, s: string, i: number, j?: number): string;
}

/** Splits with Lua's own plain find: linear, and no lualib helper. */
function luaSplit(s: string, sep: string): string[] {
  const out: string[] = [];
  let n = 0;
  let pos = 1;
  for (;;) {
    const [at] = string.find(s, sep, pos, true);
    n = n + 1;
    if (at === undefined) {
      out[n - 1] = string.sub(s, pos);
      return out;
    }
    out[n - 1] = string.sub(s, pos, at - 1);
    pos = at + 1;
  }
}

/** Runs the probe on Lua: prints one line per case, then the case count. */
export function run(input: string): void {
  print("probe-cases " + runProbe(input, luaSplit, (line) => print(line)));
}
