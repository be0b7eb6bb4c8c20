declare namespace string {
  function find(this: void, s: string, pattern: string, init: number, plain: boolean): LuaMultiReturn<[number | undefined, number | undefined]>;
  function sub(this: void, s: string, i: number, j?: number): string;
}

/** Splits with Lua's own plain find: linear, and no lualib helper (NodeMCU builds only). */
export function luaSplit(s: string, sep: string): string[] {
  const out: string[] = [];
  let n = 0;
  let pos = 1;
  for (;;) {
    const [at] = string.find(s, sep, pos, true);
    n = n + 1;
    if (at === undefined) {
      out[n - 1] = string.sub(s, pos);
      return out;
    }
    out[n - 1] = string.sub(s, pos, at - 1);
    pos = at + 1;
  }
}
