import type { IntOps } from "../../port/ints";

/**
 * IntOps on JavaScript engines (V8, Espruino): numbers are doubles, so floor division of
 * 32-bit values is exact, and the bitwise operators work on 32-bit integers.
 */
export const jsInts: IntOps = {
  impl: "js",
  idiv: (a, b) => Math.floor(a / b),
  imod: (a, b) => a - Math.floor(a / b) * b,
  band: (a, b) => a & b,
  bor: (a, b) => a | b,
  bxor: (a, b) => a ^ b,
  lshift: (a, n) => a << n,
  rshift: (a, n) => a >>> n,
};
