import { installPort } from "../../firmware/port/port";
import { nodePort } from "../../firmware/targets/node/port";
import { runProbe } from "./probe";
import "./suites/ints";
import "./suites/bytes";
import "./suites/codec";
import "./suites/codec5";
import "./suites/time";
import "./suites/sched";
import "./suites/session";

installPort(nodePort);

/** Runs the probe on the Node build; returns the result lines. */
export function run(input: string): string[] {
  const lines: string[] = [];
  runProbe(input, (s, sep) => s.split(sep), (line) => {
    lines.push(line);
  });
  return lines;
}
