import { installPort, port } from "../../port/port";
import { espruinoPort } from "./port";

// Entry module of the espruino build: installs the platform before anything else runs.
installPort(espruinoPort);

export { port };
