import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
// @ts-expect-error: a plain .mjs module of the tools, without type declarations
import { localLuaExports } from "../tools/lua-exports.mjs";
import { needs } from "./harness/needs";

// tools/lua-exports.mjs: a module's own uses of its exported functions and literals become
// locals and literals, so no function holds the export table; the module works as before.

type Local = { code: string; functions: string[]; literals: string[] };
const local = (src: string) => localLuaExports(src) as Local;

const MODULE = [
  "local ____exports = {}",
  "____exports.MAX = 8",
  "function ____exports.early(x)",
  "    return ____exports.late(x) + ____exports.MAX",
  "end",
  "function ____exports.late(x)",
  "    return x * 2",
  "end",
  "____exports.ONCE = ____exports.early(1)",
  "return ____exports",
];

const lua51Missing = spawnSync("sh", ["-c", "command -v lua5.1"]).status === 0 ? null : "lua5.1 is not installed (Debian package lua5.1)";

describe("lua-exports", () => {
  it("makes exported functions locals of the module and exported literals literals; the line count stays", () => {
    const r = local(MODULE.join("\n"));
    expect(r.functions).toEqual(["early", "late"]);
    expect(r.literals).toEqual(["MAX"]);
    expect(r.code.split("\n")).toEqual([
      "local ____exports = {} local early, late",
      "____exports.MAX = 8",
      "function early(x)",
      "    return late(x) + (8)",
      "end ____exports.early = early",
      "function late(x)",
      "    return x * 2",
      "end ____exports.late = late",
      "____exports.ONCE = early(1)",
      "return ____exports",
    ]);
  });

  needs(lua51Missing, "the module exports the same and its functions no longer hold the export table", () => {
    const check = (src: string) => {
      const lua = `local M = (function() ${src} end)()\n` +
        "local held = false\nfor i = 1, 10 do local n, v = debug.getupvalue(M.early, i) if n == nil then break end if v == M then held = true end end\n" +
        "print(M.early(3), M.late(3), M.MAX, M.ONCE, held)";
      const r = spawnSync("lua5.1", ["-"], { input: lua, encoding: "utf8" });
      expect(r.status, r.stderr).toBe(0);
      return r.stdout.trim();
    };
    expect(check(MODULE.join("\n"))).toBe("14\t6\t8\t10\ttrue");
    expect(check(local(MODULE.join("\n")).code)).toBe("14\t6\t8\t10\tfalse");
  });

  it("leaves a name bound, read or assigned elsewhere, and a literal assigned twice", () => {
    const cases = [
      "local ____exports = {}\nfunction ____exports.f(f) return f end\nreturn ____exports",
      "local ____exports = {}\nlocal t = { f = 1 }\nfunction ____exports.f() return ____exports.f end\nreturn ____exports",
      "local ____exports = {}\nfunction ____exports.f() return 1 end\n____exports.f = nil\nreturn ____exports.f",
      "local ____exports = {}\n____exports.N = 1\n____exports.N = 2\nreturn ____exports.N",
    ];
    for (const src of cases) expect(local(src).code, src).toBe(src);
  });
});
