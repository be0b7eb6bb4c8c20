import type { IntOps } from "../../port/ints";

/**
 * IntOps on JavaScript engines (V8, Espruino): numbers are doubles, so floor division of
 * 32-bit values is exact.
 */
export const jsInts: IntOps = {
  impl: "js",
  idiv: (a, b) => Math.floor(a / b),
  imod: (a, b) => a - Math.floor(a / b) * b,
};
