import { installPort, port } from "../../port/port";
import { nodemcuPort } from "./port";

// Entry module of the nodemcu build: installs the platform before anything else runs.
installPort(nodemcuPort);

export { port };
export * from "../../codec/index";
export * from "../../session/index";
export { Scheduler, IDLE } from "../../sched/scheduler";
export { nodemcuPlatform } from "./platform";
