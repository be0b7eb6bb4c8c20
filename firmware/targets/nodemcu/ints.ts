import type { IntOps } from "../../port/ints";
import { idiv } from "./luaint";

/**
 * IntOps on Lua: NodeMCU ESP8266 (Lua 5.1, `bit` module), Debian lua5.1 + lua-bitop,
 * NodeMCU ESP32 and fengari (Lua 5.3, 32-bit integers, usually no `bit`), Debian lua5.3
 * (64-bit integers). Bit operations come from `_G.bit` where it exists, else from Lua 5.3's
 * native operators compiled with `load` (Lua 5.1 cannot even parse them), else from plain
 * arithmetic. Within the IntOps contract (non-negative operands below 2^31) NodeMCU's `bit`,
 * lua-bitop and the native operators agree.
 */
interface BitLib {
  band(this: void, a: number, b: number): number;
  bor(this: void, a: number, b: number): number;
  bxor(this: void, a: number, b: number): number;
  lshift(this: void, a: number, n: number): number;
  rshift(this: void, a: number, n: number): number;
}

const NATIVE_53 =
  "return { band = function(a, b) return a & b end, bor = function(a, b) return a | b end," +
  " bxor = function(a, b) return a ~ b end, lshift = function(a, n) return a << n end," +
  " rshift = function(a, n) return a >> n end }";

/** Bit operations by arithmetic: correct anywhere, slow; the last resort. */
function bitwise(a: number, b: number, op: number): number {
  let r = 0;
  let p = 1;
  while (a > 0 || b > 0) {
    const x = a % 2;
    const y = b % 2;
    const bit = op === 0 ? x * y : op === 1 ? (x + y > 0 ? 1 : 0) : (x + y) % 2;
    r = r + bit * p;
    a = idiv(a, 2);
    b = idiv(b, 2);
    p = p * 2;
  }
  return r;
}

function pow2(n: number): number {
  let p = 1;
  for (let i = 0; i < n; i++) p = p * 2;
  return p;
}

const arithmetic: BitLib = {
  band: (a, b) => bitwise(a, b, 0),
  bor: (a, b) => bitwise(a, b, 1),
  bxor: (a, b) => bitwise(a, b, 2),
  lshift: (a, n) => a * pow2(n),
  rshift: (a, n) => idiv(a, pow2(n)),
};

function pickBitLib(): BitLib {
  const fromGlobal = _G["bit"] as BitLib | undefined;
  if (fromGlobal !== undefined) return fromGlobal;
  if (_VERSION !== "Lua 5.1") {
    const chunk = load(NATIVE_53, "=petrel.bits");
    if (chunk !== undefined) return chunk() as BitLib;
  }
  return arithmetic;
}

const bits = pickBitLib();

export const luaInts: IntOps = {
  impl: bits === arithmetic ? "lua-arithmetic" : _G["bit"] !== undefined ? "lua-bit" : "lua-native",
  idiv,
  imod: (a, b) => a % b,
  band: bits.band,
  bor: bits.bor,
  bxor: bits.bxor,
  lshift: bits.lshift,
  rshift: bits.rshift,
};
