import { installPort } from "../../firmware/port/port";
import { espruinoPort } from "../../firmware/targets/espruino/port";
import { runProbe } from "./probe";
import "./suites/ints";
import "./suites/bytes";
import "./suites/codec";
import "./suites/codec5";
import "./suites/time";
import "./suites/sched";
import "./suites/session";

/** Set by the harness in front of the bundle: the case lines. */
declare const PROBE_INPUT: string;
declare function print(line: string): void;

installPort(espruinoPort);
print("probe-cases " + runProbe(PROBE_INPUT, (s, sep) => s.split(sep), (line) => print(line)));
