import type { Port } from "../../port/port";
import { jsInts } from "../js/ints";
import { nodeBytes } from "./bytes";

/** The platform for the Node build (the host simulator). */
export const nodePort: Port = { target: "node", ints: jsInts, bytes: nodeBytes };
