/** @noSelfInFile */
// The few Lua globals the NodeMCU adapters use, typed for typescript-to-lua.
// Only files under firmware/targets/nodemcu may use them.

declare const _VERSION: string;
declare const _G: { [name: string]: unknown };
declare function load(this: void, chunk: string, name?: string): ((this: void) => unknown) | undefined;
declare function tostring(this: void, v: unknown): string;
declare function tonumber(this: void, v: unknown, base?: number): number | undefined;
declare function print(this: void, ...args: unknown[]): void;
declare namespace math {
  function floor(this: void, x: number): number;
}
declare namespace string {
  function byte(this: void, s: string, i: number): number;
  function char(this: void, ...bytes: number[]): string;
}
declare namespace table {
  function concat(this: void, t: string[], sep?: string): string;
}
