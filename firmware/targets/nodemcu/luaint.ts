/**
 * Floor division on Lua. Lua 5.3 has `//`, exact on integers even on NodeMCU's builds with
 * single-precision floats, where `math.floor(a / b)` is wrong above 2^24; Lua 5.1 cannot parse
 * `//`, but its numbers are doubles (or integers on integer-only builds, whose `/` truncates:
 * the correction below makes that a floor too).
 */
function floorDiv51(a: number, b: number): number {
  const q = math.floor(a / b);
  return q * b > a ? q - 1 : q;
}

function pickIdiv(): (this: void, a: number, b: number) => number {
  if (_VERSION !== "Lua 5.1") {
    const chunk = load("return function(a, b) return a // b end", "=petrel.idiv");
    if (chunk !== undefined) return chunk() as (this: void, a: number, b: number) => number;
  }
  return floorDiv51;
}

export const idiv = pickIdiv();
