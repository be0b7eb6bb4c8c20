import { installPort } from "../../firmware/port/port";
import { nodemcuPort } from "../../firmware/targets/nodemcu/port";
import { luaSplit } from "./lua-split";
import { runProbe } from "./probe";
import "./suites/ints";
import "./suites/bytes";
import "./suites/codec";
import "./suites/codec5";
import "./suites/time";
import "./suites/sched";
import "./suites/session";

installPort(nodemcuPort);

/** Runs the probe on Lua: prints one line per case, then the case count. */
export function run(input: string): void {
  print("probe-cases " + runProbe(input, luaSplit, (line) => print(line)));
}
