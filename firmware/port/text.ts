/**
 * Where `x` first occurs in `s` at or after `from`, or -1. Every string search in the firmware
 * goes through here: Espruino 2v29's String indexOf (and includes, and replace) also "finds" a
 * needle whose first characters end the string ("abct".indexOf("tx") is 3, measured), so the
 * whole needle must be seen to fit. A true match always comes before such a false one, so one
 * check is enough. On Lua it is string.find with plain matching.
 */
export function find(s: string, x: string, from?: number): number {
  const i = s.indexOf(x, from !== undefined ? from : 0); // dialect-allow string-search: the one checked search
  return i >= 0 && i + x.length <= s.length ? i : -1;
}
