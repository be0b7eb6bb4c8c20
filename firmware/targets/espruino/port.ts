import type { Port } from "../../port/port";
import { jsInts } from "../js/ints";
import { espruinoBytes } from "./bytes";

/** The platform for Espruino boards (ESP32, ESP8266). */
export const espruinoPort: Port = { target: "espruino", ints: jsInts, bytes: espruinoBytes };
