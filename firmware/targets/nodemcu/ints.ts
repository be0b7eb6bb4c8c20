import type { IntOps } from "../../port/ints";
import { idiv } from "./luaint";

/**
 * IntOps on Lua: NodeMCU ESP8266 (Lua 5.1), NodeMCU ESP32 and fengari (Lua 5.3, 32-bit
 * integers), Debian lua5.1 and lua5.3. Floor division is Lua 5.3's `//` where the interpreter
 * has it (compiled with `load`: Lua 5.1 cannot parse it), else `math.floor(a / b)` with a
 * correction (luaint.ts); the modulo is Lua's own `%`, which is the floor modulo.
 */
export const luaInts: IntOps = {
  impl: _VERSION === "Lua 5.1" ? "lua-floor" : "lua-floordiv",
  idiv,
  imod: (a, b) => a % b,
};
