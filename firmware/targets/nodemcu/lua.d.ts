/** @noSelfInFile */
// The few Lua globals the NodeMCU adapters use, typed for typescript-to-lua.
// Only files under firmware/targets/nodemcu may use them. The NodeMCU modules (`net`, `tmr`,
// `node`, `file`) are read from `_G` inside the adapters, never at module load, with the types
// in nodemcu.d.ts: a module that loads on plain Lua (the tests, the artifact check) must not
// touch them.

declare const _VERSION: string;
declare const _G: { [name: string]: unknown };
declare function load(this: void, chunk: string, name?: string): ((this: void) => unknown) | undefined;
declare function tostring(this: void, v: unknown): string;
declare function tonumber(this: void, v: unknown, base?: number): number | undefined;
declare function print(this: void, ...args: unknown[]): void;
declare function pcall(this: void, fn: (this: void) => unknown): LuaMultiReturn<[boolean, unknown]>;
declare function type(this: void, v: unknown): string;
declare namespace math {
  function floor(this: void, x: number): number;
  function random(this: void, n: number): number;
}
declare namespace string {
  function byte(this: void, s: string, i: number): number;
  function char(this: void, ...bytes: number[]): string;
  function find(this: void, s: string, pattern: string, init: number, plain: boolean): LuaMultiReturn<[number | undefined, number | undefined]>;
  function sub(this: void, s: string, i: number, j?: number): string;
}
declare namespace table {
  function concat(this: void, t: string[], sep?: string): string;
}
