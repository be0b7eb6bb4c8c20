import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
// @ts-expect-error plain ESM module without types
import { ESPRUINO, LUA, SHARED_ONLY, RULES, format, rulesFor } from "../tools/guard/rules.mjs";
// @ts-expect-error plain ESM module without types
import { checkFiles } from "../tools/guard/source.mjs";
// @ts-expect-error plain ESM module without types
import { checkEspruinoBundle } from "../tools/guard/espruino.mjs";
// @ts-expect-error plain ESM module without types
import { checkLua } from "../tools/guard/lua.mjs";

interface Violation { file: string; line: number; col: number; rule: string; detail?: string }

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-guard-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
let fileNo = 0;

const SHARED = new Set<string>([...ESPRUINO, ...LUA, ...SHARED_ONLY]);

/**
 * Planted TypeScript snippets, checked as shared firmware code. All snippets are written first
 * and checked in one TypeScript program (one program per snippet would take seconds each).
 */
const planted = new Map<string, string>();
let results: Map<string, Violation[]> | null = null;
function plant(code: string): string {
  const f = path.join(tmp, `planted${fileNo++}.ts`);
  fs.writeFileSync(f, `export {};\ndeclare const port: { ints: { band(a: number, b: number): number } };\n${code}\n`);
  planted.set(code, f);
  return f;
}
function checkTs(code: string): Violation[] {
  if (results === null) {
    results = new Map();
    const files = [...planted.values()];
    for (const f of files) results.set(path.basename(f), []);
    for (const v of checkFiles(files, SHARED) as Violation[]) results.get(v.file)!.push({ ...v, line: v.line - 2 });
  }
  return results.get(path.basename(planted.get(code)!))!;
}

// [rule, planted TypeScript, line of the violation within the snippet]
const SOURCE_CASES: Array<[string, string, number]> = [
  ["default-param", "function f(a = 1): number { return a; }", 1],
  ["destructuring", "const o = { a: 1 };\nconst { a } = o;", 2],
  ["destructuring", "let a = 0, b = 0;\n[a, b] = [b, a];", 2],
  ["spread-rest", "const xs = [1];\nconst ys = [...xs];", 2],
  ["spread-rest", "function f(...xs: number[]): number { return xs[0]; }", 1],
  ["extends-error", "class Oops extends Error {}", 1],
  ["let-closure", "const fs: Array<() => number> = [];\nfor (let i = 0; i < 3; i++) fs[i] = () => i;", 2],
  ["async", "async function f(): Promise<void> {}", 1],
  ["generator", "function* g(): Generator<number> { yield 1; }", 1],
  ["promise-finally", "declare const p: { finally(f: () => void): void };\np.finally(() => {});", 2],
  ["optional-chain", "declare const o: { a?: { b: number } };\nconst b = o.a?.b;", 2],
  ["exponent", "const x = 2 ** 8;", 1],
  ["length-assign", "const xs = [1, 2];\nxs.length = 0;", 2],
  ["string-search", "declare const s: string;\nconst i = s.indexOf(\"tx\");", 2],
  ["string-search", "declare const s: string;\nconst t = s.replace(\"a\", \"b\");", 2],
  ["computed-key", "const k = \"a\";\nconst o = { [k]: 1 };", 2],
  ["label", "outer: for (;;) { break outer; }", 1],
  ["tagged-template", "declare function tag(s: TemplateStringsArray): string;\nconst t = tag`x`;", 2],
  ["missing-global", "const m = new Map<string, number>();", 1],
  ["missing-builtin", "const a = Array.from([1]);", 1],
  ["missing-builtin", "const n = Number.isInteger(3);", 1],
  ["prototype-lookup", "const s = Array.prototype.slice;", 1],
  ["error-class", "const e = { code: 1, cause: new Error(\"x\") };", 1],
  ["hoisting", "const x = later();\nfunction later(): number { return 1; }", 1],
  ["hoisting", "function early(): number { return later(); }\nconst x = early();\nfunction later(): number { return 1; }", 2],
  ["bitwise", "declare const a: number;\nconst b = a & 255;", 2],
  ["bitwise", "declare const a: number;\nconst b = a >>> 1;", 2],
  ["bitwise", "declare const a: number;\nconst b = ~a;", 2],
  ["typed-array", "const b = new Uint8Array(4);", 1],
  ["regex", "const ok = /^a+$/.test(\"aa\");", 1],
  ["bigint", "const n = 10n;", 1],
  ["non-ascii", "export const s = \"see MQTT 5 \u00a73.3\";", 1],
  ["non-ascii", "declare const n: number;\nexport const t = `${n} items \u2026`;", 2],
  ["float-math", "declare const a: number;\nconst q = a / 128;", 2],
  ["float-math", "declare const a: number;\nconst q = Math.floor(a);", 2],
  ["throw", "function f(): void { throw \"bad\"; }", 1],
  ["truthiness", "declare const n: number;\nif (n) { }", 2],
  ["truthiness", "declare const s: string;\nconst t = s || \"default\";", 2],
  ["truthiness", "declare const n: number | undefined;\nconst z = !n;", 2],
  ["host-global", "const t = JSON.stringify({});", 1],
  ["host-global", "setTimeout(() => {}, 10);", 1],
  ["arguments", "function f(): number { return arguments.length; }", 1],
];

describe("dialect guard: planted violations in TypeScript sources are caught", () => {
  for (const [, code] of SOURCE_CASES) plant(code);
  for (const [rule, code, line] of SOURCE_CASES) {
    it(`${rule}: ${code.split("\n").pop()}`, () => {
      const found = checkTs(code);
      const hit = found.find((v) => v.rule === rule);
      expect(hit, `found: ${found.map((v) => `${v.line} ${v.rule}`).join(", ")}`).toBeDefined();
      expect(hit!.line).toBe(line);
      expect(format(hit)).toMatch(new RegExp(`^planted\\d+\\.ts:\\d+:\\d+ ${rule}: .*; fix: `));
    });
  }
});

const LOOK_ALIKES = [
  "declare const a: number | undefined;\nconst b = a ?? 3;",
  "declare const a: boolean;\nconst b = a ? .5 : 1;",
  "declare const a: number;\nconst b = a !== 0 ? 1 : 2;",
  "const s = \"a ** b / c & d ?. e\"; // a / b & c",
  "const n = port.ints.band(6, 3);",
  "declare const o: { a: number } | undefined;\nif (o !== undefined && o.a > 0) { }",
  "declare const f: boolean;\nwhile (f) { }",
  "function early(): number { return 1; }\nconst x = early();",
  "function caller(): number { return later(); }\nfunction later(): number { return 1; }\nconst x = caller();",
  "const fs: Array<() => number> = [];\nfor (let i = 0; i < 3; i++) { const j = i; fs[j] = () => 1; }",
  "const o = { a: 1, b: [1, 2] };\nconst c = o.a;",
  "declare const maybe: { x: number } | undefined;\nconst y = maybe ? maybe.x : 0;",
];

describe("dialect guard: look-alikes are accepted", () => {
  for (const code of LOOK_ALIKES) plant(code);
  for (const code of LOOK_ALIKES) {
    it(code.split("\n").pop()!, () => {
      expect(checkTs(code).map((v) => format(v))).toEqual([]);
    });
  }
});

const ALLOW_CODE = "declare const a: number;\n// dialect-allow float-math: jitter fraction, value below 2^24\nconst q = a / 3;\nconst r = a / 4;";
plant(ALLOW_CODE);

describe("dialect guard: rule sets follow the file's place", () => {
  it("shared firmware gets every rule; targets get their own; host code gets none", () => {
    expect([...rulesFor("firmware/codec/x.ts")].sort()).toEqual([...SHARED].sort());
    expect(rulesFor("firmware/targets/js/ints.ts").has("bitwise")).toBe(false);
    expect(rulesFor("firmware/targets/js/ints.ts").has("hoisting")).toBe(true);
    expect(rulesFor("firmware/targets/nodemcu/bytes.ts").has("spread-rest")).toBe(false);
    expect(rulesFor("firmware/targets/nodemcu/bytes.ts").has("truthiness")).toBe(true);
    expect(rulesFor("firmware/targets/node/bytes.ts").size).toBe(0);
    expect(rulesFor("host-sim/espruino/standin.ts").size).toBe(0);
  });
  it("a dialect-allow comment with a reason exempts one line and one rule", () => {
    const found = checkTs(ALLOW_CODE);
    expect(found.map((v) => `${v.line} ${v.rule}`)).toEqual(["4 float-math"]);
  });
  it("every rule has a reason and a fix", () => {
    for (const [id, [why, fix]] of Object.entries(RULES as Record<string, [string, string]>)) {
      expect(why.length, id).toBeGreaterThan(10);
      expect(fix.length, id).toBeGreaterThan(3);
    }
  });
});

// [rule, planted bundle JavaScript, line]
const BUNDLE_CASES: Array<[string, string, number]> = [
  ["default-param", "function f(a=1){return a}", 1],
  ["destructuring", "var o={a:1};\nvar {a}=o;", 2],
  ["spread-rest", "var x=[1];\nvar y=[...x];", 2],
  ["spread-rest", "function f(...a){return a}", 1],
  ["extends-error", "class X extends Error{}", 1],
  ["let-closure", "var f=[];\nfor(let i=0;i<3;i++)f.push(()=>i);", 2],
  ["async", "async function f(){}", 1],
  ["async", "var f=async()=>{await 1};", 1],
  ["generator", "function*g(){yield 1}", 1],
  ["promise-finally", "var p=Promise.resolve();\np.finally(function(){});", 2],
  ["optional-chain", "var o={};\nvar b=o?.a;", 2],
  ["exponent", "var x=2**8;", 1],
  ["length-assign", "var a=[1];\na.length=0;", 2],
  ["computed-key", "var k='a';\nvar o={[k]:1};", 2],
  ["label", "a:for(;;){break a}", 1],
  ["tagged-template", "var t=String.raw`x`;", 1],
  ["missing-global", "var m=new Map;", 1],
  ["missing-global", "var s=Symbol('x');", 1],
  ["missing-builtin", "var a=Uint8Array.from([1]);", 1],
  ["missing-builtin", "var o=Object.freeze({});", 1],
  ["prototype-lookup", "var s=Array.prototype.slice.call([1]);", 1],
  ["error-class", "var e=new TypeError('x');", 1],
  ["hoisting", "g();\nfunction g(){}", 1],
  ["hoisting", "(()=>{var a=h();\nfunction h(){return 1}})();", 1],
  ["hoisting", "(()=>{function f(){return h()}\nvar a=f();\nfunction h(){return 1}})();", 2],
  ["hoisting", "function outer(){var r=inner();\nfunction inner(){return 1}\nreturn r}", 1],
  ["bigint", "var n=10n;", 1],
  ["class-self-name", "var A=class B{\nstatic m(){return new B}};", 2],
  // Measured on Espruino 2v29: each of these crashes (ASSERT) when the branch is not taken.
  ["arrow-this-skipped", "class K{m(p){p.x!==void 0&&\np.x.on(r=>this.f(r))}}", 2],
  ["arrow-this-skipped", "function g(c){var a=c?0:\n()=>this;}", 2],
  ["arrow-this-skipped", "function g(c,p){if(c)\np(r=>this.f(r))}", 2],
  ["arrow-this-skipped", "function g(c,p){switch(c){case 2:\np(()=>{var k=()=>this})}}", 2],
  ["arrow-this-skipped", "function g(c,p){while(c)\np(r=>this)}", 2],
  // always crashes: an expression-bodied arrow's body is parsed without running when it is made
  ["arrow-this-skipped", "var f=r=>[1].map(\nd=>this);", 2],
  // a this in a nested plain function marks the arrow too
  ["arrow-this-skipped", "function g(c){c&&\n(()=>{var k=function(){return this}})}", 2],
  ["js-syntax", "var x=;", 1],
];

describe("dialect guard: planted violations in a built Espruino bundle are caught", () => {
  for (const [rule, code, line] of BUNDLE_CASES) {
    it(`${rule}: ${code.replace(/\n/g, " ")}`, () => {
      const found: Violation[] = checkEspruinoBundle(code, "bundle.js");
      const hit = found.find((v) => v.rule === rule);
      expect(hit, `found: ${found.map((v) => `${v.line} ${v.rule}`).join(", ")}`).toBeDefined();
      expect(hit!.line).toBe(line);
    });
  }
  const ok = [
    "var a=null;var b=a!=null?a:3;",
    "var c=true;var d=c?.5:1;",
    "(()=>{function f(){return 1}var x=f();})();",
    "(()=>{function f(){return h()}function h(){return 1}var x=f();})();",
    "(()=>{var t=function(){return later()};function later(){return 1}t();})();",
    "(()=>{function a(t){return t+1}var t=3;function b(){return a(t)}b()})();",
    "var o={get x(){return 1},y(){return 2}};var f=[];for(var i=0;i<3;i++)f.push(function(){return i});",
    "class A{constructor(){this.x=1}static s(){return new A}}var m={}.hasOwnProperty;var s=[].slice.call([1]);",
    "var A=class B{m(){return 1}};var C=class{m(){return new A}};",
    // arrows using this on the straight-line path, or in a branch without this, are fine
    "class K{m(p){var f=r=>this.f(r);p.x!==void 0&&p.x.on(f);p.y&&p.y.on(r=>r+1)}}",
    "function g(c){if(c){var f=function(){return this}}}",
    // a skipped braced block is passed over by brace matching (measured: no crash)
    "class K{m(s){if(s===4)for(;;){this.g(()=>this.id());break}}}",
    "function g(c,p){if(c){var f=0}else{p(()=>this)}try{g()}catch(e){p(()=>this.x)}}",
    "function g(c,p){if(c)try{p(()=>this)}catch(e){}}",
    "var f=r=>{return [1].map(d=>this)};",
  ];
  for (const code of ok) {
    it(`accepts: ${code}`, () => {
      expect(checkEspruinoBundle(code, "bundle.js").map((v: Violation) => format(v))).toEqual([]);
    });
  }
});

const locals = (n: number) => Array.from({ length: n }, (_, k) => `local v${k} = ${k}`).join("\n");
/** A function `f` with exactly n upvalues (30 from the main chunk, the rest from `g`), no function over 50 locals. */
const upvalues = (n: number) => {
  const outer = Array.from({ length: 30 }, (_, k) => `local a${k} = ${k}`).join("\n");
  const inner = Array.from({ length: n - 30 }, (_, k) => `  local b${k} = ${k}`).join("\n");
  const sum = [...Array.from({ length: 30 }, (_, k) => `a${k}`), ...Array.from({ length: n - 30 }, (_, k) => `b${k}`)].join(" + ");
  return `${outer}\nlocal function g()\n${inner}\n  local function f()\n    return ${sum}\n  end\n  return f\nend`;
};

// [rule, planted Lua, line]
const LUA_CASES: Array<[string, string, number]> = [
  ["lua-goto", "for i = 1, 3 do\n  if i == 2 then goto continue end\n  ::continue::\nend", 2],
  ["lua-idiv", "local a = 7\nlocal b = a // 2", 2],
  ["lua-bitop", "local a = 7\nlocal b = a & 3", 2],
  ["lua-bitop", "local a = 7\nlocal b = ~a", 2],
  ["lua-int-literal", "local a = 4294967295", 1],
  ["lua-int-literal", "local a = 0x80000000", 1],
  ["lua-locals", `local function f()\n${locals(51)}\nend`, 1],
  ["lua-locals", locals(51), 1],
  ["lua-locals", `local function f()\n  for i = 1, 2 do\n${locals(47)}\n  end\nend`, 1],
  ["lua-upvalues", upvalues(61), 63],
  ["lua51-syntax", "local a = 1 +", 1],
];

describe("dialect guard: planted violations in built Lua are caught", () => {
  for (const [rule, code, line] of LUA_CASES) {
    it(`${rule}: ${code.split("\n")[0]}…`, () => {
      const { violations } = checkLua(code, "out.lua");
      const hit = (violations as Violation[]).find((v) => v.rule === rule);
      expect(hit, `found: ${(violations as Violation[]).map((v) => `${v.line} ${v.rule}`).join(", ")}`).toBeDefined();
      expect(hit!.line).toBe(line);
    });
  }
  const ok: Array<[string, string]> = [
    ["50 active locals", locals(50)],
    ["locals in sibling blocks do not add up", `do\n${locals(40)}\nend\ndo\n${locals(40)}\nend`],
    ["60 upvalues", upvalues(60)],
    ["2^31-1 literal and large floats", "local a = 2147483647\nlocal b = 0x7fffffff\nlocal c = 1e10\nlocal d = 4294967296.5"],
    ["a string that looks like code", "local s = \"a // b & c goto x\""],
  ];
  for (const [name, code] of ok) {
    it(`accepts: ${name}`, () => {
      expect((checkLua(code, "out.lua").violations as Violation[]).map((v) => format(v))).toEqual([]);
    });
  }
});

describe("dialect guard: what the real compilers emit is checked too", () => {
  it("TSTL for a 5.3 target emits goto and native bit operators: caught in the Lua", async () => {
    const tstl = await import("typescript-to-lua");
    const src = "export function f(xs: number[]): number {\n  let s = 0;\n  for (const x of xs) {\n    if (x === 2) continue;\n    s = s + (x & 3);\n  }\n  return s;\n}";
    const r = tstl.transpileString(src, { luaTarget: tstl.LuaTarget.Lua53, luaLibImport: tstl.LuaLibImportKind.RequireMinimal, noHeader: true });
    const rules = (checkLua(r.file!.lua!, "f.lua").violations as Violation[]).map((v) => v.rule);
    expect(rules).toContain("lua-goto");
    expect(rules).toContain("lua-bitop");
  });
  it("the same source for the universal target, with port.ints, is clean", async () => {
    const tstl = await import("typescript-to-lua");
    const src = "declare const ints: { band(this: void, a: number, b: number): number };\nexport function f(xs: number[]): number {\n  let s = 0;\n  for (const x of xs) {\n    if (x !== 2) s = s + ints.band(x, 3);\n  }\n  return s;\n}";
    const r = tstl.transpileString(src, { luaTarget: tstl.LuaTarget.Universal, luaLibImport: tstl.LuaLibImportKind.RequireMinimal, noHeader: true });
    expect((checkLua(r.file!.lua!, "f.lua").violations as Violation[]).map((v) => format(v))).toEqual([]);
  });
  it("esbuild for a newer target keeps `**` and `?.`: caught in the bundle", async () => {
    const esbuild = await import("esbuild");
    const r = esbuild.transformSync("export const f = (o: any, n: number) => o?.x ** n;", { loader: "ts", target: "es2020", minify: true, format: "iife" });
    const rules = (checkEspruinoBundle(r.code, "b.js") as Violation[]).map((v) => v.rule);
    expect(rules).toEqual(expect.arrayContaining(["optional-chain", "exponent"]));
  });
  it("the project's esbuild settings (es2015) lower the same source to code Espruino runs", async () => {
    const esbuild = await import("esbuild");
    const r = esbuild.transformSync("export const f = (o: any, n: number) => o?.x ?? n;", { loader: "ts", target: "es2015", minify: true, format: "iife" });
    expect((checkEspruinoBundle(r.code, "b.js") as Violation[]).map((v) => format(v))).toEqual([]);
  });
});
