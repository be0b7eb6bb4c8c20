import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
// @ts-expect-error: a plain .mjs module of the tools, without type declarations
import { lazyLuaMethods } from "../tools/lua-methods.mjs";
import { needs } from "./harness/needs";

// tools/lua-methods.mjs: a built class's methods are made by the prototype's __index when asked
// for (one closure per class on NodeMCU, not one per method); the code runs as before.

type Lazy = { code: string; classes: { name: string; methods: number }[]; skipped: { name: string; why: string }[] };
const lazy = (src: string) => lazyLuaMethods(src) as Lazy;

/** A module as typescript-to-lua writes one: a class with a static between its methods. */
const MODULE = [
  "local ____lualib = require(\"lualib_bundle\")",
  "local __TS__Class = ____lualib.__TS__Class",
  "local ____exports = {}",
  "local STEP = 2",
  "____exports.Counter = __TS__Class()",
  "local Counter = ____exports.Counter",
  "Counter.name = \"Counter\"",
  "function Counter.prototype.____constructor(self, n)",
  "    self.n = n",
  "    self.add = nil",
  "end",
  "function Counter.make(self, n)",
  "    return __TS__New(self, n)",
  "end",
  "-- a comment between methods",
  "function Counter.prototype.bump(self)",
  "    self.n = self.n + STEP",
  "    return self",
  "end",
  "",
  "Counter.prototype[\"end\"] = function(self)",
  "    return self.n",
  "end",
  "return ____exports",
];

const LUALIB = [
  "local function __TS__Class(self)",
  "    local c = {prototype = {}}",
  "    c.prototype.__index = c.prototype",
  "    c.prototype.constructor = c",
  "    return c",
  "end",
  "local function __TS__New(target, ...)",
  "    local instance = setmetatable({}, target.prototype)",
  "    instance:____constructor(...)",
  "    return instance",
  "end",
  "package.preload.lualib_bundle = function() return { __TS__Class = __TS__Class } end",
  "_G.__TS__New = __TS__New",
].join("\n");

/** Runs the module and a check on it with lua5.1; its output. */
function runLua(module: string, check: string): string {
  const src = `${LUALIB}\nlocal M = (function() ${module.split("\n").join("\n")} end)()\n${check}`;
  const r = spawnSync("lua5.1", ["-"], { input: src, encoding: "utf8" });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout.trim();
}

const lua51Missing = spawnSync("sh", ["-c", "command -v lua5.1"]).status === 0 ? null : "lua5.1 is not installed (Debian package lua5.1)";

describe("lua-methods", () => {
  it("turns the methods into one __index function; statics move above them; the line count stays", () => {
    const src = MODULE.join("\n");
    const r = lazy(src);
    expect(r.classes).toEqual([{ name: "Counter", methods: 3 }]);
    expect(r.skipped).toEqual([]);
    const lines = r.code.split("\n");
    expect(lines.length).toBe(MODULE.length);
    expect(lines[7]).toBe("function Counter.make(self, n)");
    expect(lines[10]).toBe('Counter.prototype.__index = function(_, k) if k == "____constructor" then return function(self, n)');
    expect(lines).toContain('elseif k == "bump" then return function(self)');
    expect(lines).toContain('elseif k == "end" then return function(self)');
    expect(lines[MODULE.length - 2]).toBe('end elseif k == "constructor" then return Counter end end setmetatable(Counter.prototype, Counter.prototype)');
    // the bodies are where they were
    expect(lines.indexOf("    self.n = self.n + STEP")).toBe(MODULE.indexOf("    self.n = self.n + STEP"));
  });

  needs(lua51Missing, "runs as before: methods, statics, constructor, fields before methods, a missing field nil", () => {
    const check = [
      "local C = M.Counter",
      "local c = C:make(5)",
      "print(c:bump():bump()['end'](c), c.constructor == C, c.missing)",
      "c.bump = function() return 'own' end",
      "print(c:bump(), C.prototype.bump ~= nil)",
    ].join("\n");
    const before = runLua(MODULE.join("\n"), check);
    expect(before).toBe("9\ttrue\tnil\nown\ttrue");
    expect(runLua(lazy(MODULE.join("\n")).code, check)).toBe(before);
    // the prototype holds no method itself
    expect(runLua(lazy(MODULE.join("\n")).code, "print(rawget(M.Counter.prototype, 'bump'))")).toBe("nil");
  });

  it("leaves a class whose methods are not one run of definitions, and a file with a long string", () => {
    const split = [...MODULE.slice(0, 11), "local helper = 1", ...MODULE.slice(11)].join("\n");
    const r = lazy(split);
    expect(r.code).toBe(split);
    expect(r.skipped.map((s) => s.name)).toEqual(["Counter"]);
    const long = MODULE.join("\n") + "\n--[[ long ]]";
    expect(lazy(long).code).toBe(long);
  });
});
