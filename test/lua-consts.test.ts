import { describe, expect, it } from "vitest";
// @ts-expect-error: a plain .mjs module of the tools, without type declarations
import { exportedLiteral, foldNumberTexts, inlineLuaConstants } from "../tools/lua-consts.mjs";

// tools/lua-consts.mjs: a built module's top-level constants become literals (no upvalue each on
// NodeMCU); anything but a plain read after the declaration leaves the name as it is.

const inline = (src: string, imported?: (m: string, n: string) => string | undefined, importsOnly = false) =>
  inlineLuaConstants(src, imported, importsOnly) as { code: string; inlined: string[] };

describe("lua-consts", () => {
  it("inlines numbers, booleans and plain strings where they are read; the line stays, empty", () => {
    const src = [
      "local ____exports = {}",
      "local MAX = 30000",
      "local OFF = false",
      'local TAIL = ".new"',
      "function ____exports.f(n, s)",
      "    if n > MAX or OFF then return s .. TAIL end",
      "    return #TAIL + MAX - -MAX, t.MAX, t:MAX()",
      "end",
      "return ____exports",
    ].join("\n");
    const r = inline(src);
    expect(r.inlined).toEqual(["MAX", "OFF", "TAIL"]);
    const lines = r.code.split("\n");
    expect(lines.length).toBe(9);
    expect(lines.slice(1, 4)).toEqual(["", "", ""]);
    expect(lines[5]).toBe('    if n > (30000) or false then return s .. (".new") end');
    expect(lines[6]).toBe('    return #(".new") + (30000) - -(30000), t.MAX, t:MAX()');
  });

  it("leaves a name that is assigned, bound again, read before it is declared, or starts a line", () => {
    const cases = [
      "local A = 1\nA = 2\nreturn A",
      "local A = 1\nlocal function f(x, A) return A end\nreturn A",
      "local A = 1\nfor A = 1, 3 do end\nreturn A",
      "local A = 1\nlocal b, A = 2, 3\nreturn A",
      "local function f() return A end\nlocal A = 1\nreturn f()",
      "local A = 1\nlocal t = { A = 2 }\nreturn A",
      'local A = "x"\nprint(1)\nA:len()',
      "local A = 1\n--[[ long ]] return A",
    ];
    for (const src of cases) expect(inline(src).code, src).toBe(src);
  });

  it("folds a whole-number constant inlined into a text into the literal; other tostrings stay", () => {
    const src = 'local MAX = 200\nlocal function f(say)\nsay(("error: over " .. tostring(MAX)) .. " chars, \\"q\\"")\nend\n';
    const r = inlineLuaConstants(src);
    expect(r.inlined).toEqual(["MAX"]);
    expect(r.code).toContain('say("error: over 200 chars, \\"q\\"")');
    expect(foldNumberTexts('x = ("at most " .. tostring(4)) .. ")"')).toBe('x = "at most 4)"');
    expect(foldNumberTexts('x = ("at most " .. tostring(-3)) .. ")"')).toBe('x = "at most -3)"');
    // a variable, a fraction: tostring stays (a fraction's text differs between 5.1 and 5.3)
    expect(foldNumberTexts('x = ("n " .. tostring(n)) .. "b"')).toBe('x = ("n " .. tostring(n)) .. "b"');
    expect(foldNumberTexts('x = ("n " .. tostring((1.5))) .. "b"')).toBe('x = ("n " .. tostring((1.5))) .. "b"');
  });

  it("leaves strings and comments alone", () => {
    const r = inline('local A = 7\nlocal s = "A" -- A is 7\nreturn A, s');
    expect(r.code).toBe('\nlocal s = "A" -- A is 7\nreturn (7), s');
  });

  it("inlines another module's exported literal; importsOnly leaves the module's own constants", () => {
    const lib = "local ____exports = {}\n____exports.LEVEL = 2\n____exports.TWICE = 1\n____exports.TWICE = 3\nreturn ____exports";
    expect(exportedLiteral(lib, "LEVEL")).toBe("2");
    expect(exportedLiteral(lib, "TWICE")).toBeUndefined();
    const src = 'local ____log = require("firmware.port.log")\nlocal LEVEL = ____log.LEVEL\nlocal OWN = 5\nreturn LEVEL + OWN';
    const imported = (m: string, n: string) => (m === "firmware.port.log" ? exportedLiteral(lib, n) : undefined);
    expect(inline(src, imported).code).toBe('local ____log = require("firmware.port.log")\n\n\nreturn (2) + (5)');
    expect(inline(src, imported, true).code).toBe('local ____log = require("firmware.port.log")\n\nlocal OWN = 5\nreturn (2) + OWN');
    expect(inline(src, () => undefined, true).code).toBe(src);
  });
});
