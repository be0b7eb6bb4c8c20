/**
 * Integer division that behaves the same on every target.
 *
 * Why a helper: the firmware runs on V8 and Espruino (doubles), on Lua 5.1 (doubles) and on
 * NodeMCU's Lua 5.3 (32-bit integers, single-precision floats), where `a / b` loses digits above
 * 2^24. Shared code never writes `/`, `Math.floor` or a bitwise operator (Lua 5.1 has none, and
 * NodeMCU's `bit` module disagrees with lua-bitop about the sign bit): it divides with these, and
 * takes bits apart with them too (`imod(b, 16)`, `idiv(b, 16)`).
 *
 * Contract (every implementation, every runtime):
 * - Operands and results are integers in [-2^31, 2^31-1]; `b` is not 0.
 * - `idiv` is floor division (`idiv(-7, 2) === -4`), exact over the whole range.
 * - `imod` is the floor modulo that goes with it (`imod(-7, 3) === 2`), as Lua's `%`.
 * - Every result is an integer value on every runtime (on Lua 5.3 a true integer, never 3.0).
 * - Implementations never allocate and never throw.
 */
export interface IntOps {
  /** Which implementation this is ("js", "lua-floordiv", "lua-floor"), for diagnostics. */
  impl: string;
  idiv(this: void, a: number, b: number): number;
  imod(this: void, a: number, b: number): number;
}
