/**
 * Integer operations that behave the same on every target.
 *
 * Why a helper: the firmware runs on V8 and Espruino (doubles), on Lua 5.1 (doubles, no
 * bitwise operators) and on NodeMCU's Lua 5.3 (32-bit integers, single-precision floats),
 * where `a / b` loses digits above 2^24 and `bit` may be absent or quirky. Shared firmware
 * code never writes `/`, `Math.floor` or a bitwise operator; it calls these.
 *
 * Contract (every implementation, every runtime):
 * - Operands and results are integers in [-2^31, 2^31-1]; bit operations take and return
 *   integers in [0, 2^31-1] (never rely on the sign bit: NodeMCU's `bit` and lua-bitop
 *   disagree there), and a shift never moves a 1 into bit 31 or beyond.
 * - `idiv` is floor division (`idiv(-7, 2) === -4`), exact over the whole range; `b` is not 0.
 * - `imod` is the floor modulo that goes with it (`imod(-7, 3) === 2`), as Lua's `%`.
 * - Every result is an integer value on every runtime (on Lua 5.3 a true integer, never 3.0).
 * - Implementations never allocate and never throw.
 */
export interface IntOps {
  /** Which implementation this is ("js", "lua-bit", "lua-native", "lua-arithmetic"), for diagnostics. */
  impl: string;
  idiv(this: void, a: number, b: number): number;
  imod(this: void, a: number, b: number): number;
  band(this: void, a: number, b: number): number;
  bor(this: void, a: number, b: number): number;
  bxor(this: void, a: number, b: number): number;
  lshift(this: void, a: number, n: number): number;
  rshift(this: void, a: number, n: number): number;
}
