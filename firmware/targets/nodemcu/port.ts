import type { Port } from "../../port/port";
import { luaInts } from "./ints";
import { luaBytes } from "./bytes";

/** The platform for NodeMCU boards (ESP8266 Lua 5.1, ESP32 Lua 5.3). */
export const nodemcuPort: Port = { target: "nodemcu", ints: luaInts, bytes: luaBytes };
