import { installPort, port } from "../../port/port";
import { nodePort } from "./port";

// Entry module of the node build: installs the platform before anything else runs.
installPort(nodePort);

export { port };
export * from "../../codec/index";
export * from "../../session/index";
export { Scheduler, IDLE } from "../../sched/scheduler";
