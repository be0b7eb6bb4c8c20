import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
// @ts-expect-error plain ESM module without types
import { dropConstructorLinks, slimEspruino } from "../tools/espruino-slim.mjs";
import { runtimesDir } from "./harness/board-espruino";
import { casesProgram, runFromStorage } from "./harness/espruino-cases";
import { needs } from "./harness/needs";

// tools/espruino-slim.mjs rewrites the built Espruino bundles (parameters as locals, arrows as
// functions). Each case's program prints what it computes; the rewritten program must print the
// same as the original, on V8 and on the real Espruino interpreter, whose `arguments` is a
// variable of the call's scope that closures made in the call find before their own.

interface Slimmed { code: string; params: number; arrows: number }
const slim = (code: string, opts?: { returnOutside?: boolean }) => slimEspruino(code, opts) as Slimmed;

const CASES: Record<string, string> = {
  params: "function f(a,b,c){return a*100+b*10+c}out.push(f(1,2,3),f(4));",
  method: "var o={k(a,b){return a-b},get g(){return 7},set s(v){this.v=v}};o.s=5;out.push(o.k(9,3),o.g,o.v);",
  class: "class C{constructor(a,b){this.a=a;this.b=b}m(x){return this.a+this.b+x}}out.push(new C(1,2).m(3));",
  arrows: "var add=(x,y)=>x+y,obj=n=>({n:n}),none=()=>42;out.push(add(2,3),obj(4).n,none());",
  "this arrow": "var o={n:3,f(){var g=k=>this.n*k;return g(2)}};out.push(o.f());",
  "return arrow": "function mk(a){return(b)=>a+b}out.push(mk(1)(2));",
  "closure in a rewritten function": "function call(x,fn){return fn('c'+x)}function outer(e,t){var i={pe:function(z){return 'pe:'+z}};return call(t,s=>i.pe(s))}out.push(outer('a','b'));",
  "closure returned": "function outer(q){return function(a,b){return q+':'+a+':'+b}}out.push(outer(1)(5,6));",
  "callbacks": "var r=[];[3,4].forEach((v,i)=>r.push(v*i));out.push(r.join(','),[3,1,2].sort((a,b)=>a-b).join(','));",
  "timer arguments": "setTimeout(function(a,b){print('late '+a+b)},1,'x','y');",
};

const program = casesProgram;

function runNode(code: string): string {
  const lines: string[] = [];
  const timers: (() => void)[] = [];
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  new Function("print", "setTimeout", code)((s: string) => lines.push(s), (fn: (...a: unknown[]) => void, _ms: number, ...a: unknown[]) => timers.push(() => fn(...a)));
  for (const t of timers) t();
  return lines.join("\n");
}

describe("the Espruino bundle rewrite", () => {
  for (const [name, body] of Object.entries(CASES)) {
    it(`${name}: the rewritten program prints what the original does (V8)`, () => {
      const r = slim(program(body));
      expect(runNode(r.code)).toBe(runNode(program(body)));
    });
  }

  it("parameters become locals, arrows become functions, setters and `this` arrows stay", () => {
    const r = slim("function f(a,b){return a+b}var o={set s(v){this.v=v},m(x){return x}};var g=(x)=>x*2;var h={f(){return()=>this}};");
    expect(r.code).toContain("function f(){var $A=arguments,a=$A[0],b=$A[1];return a+b}");
    expect(r.code).toContain("set s(v){this.v=v}");
    expect(r.code).toContain("m(){var x=arguments[0];return x}");
    expect(r.code).toContain("var g=function(){var x=arguments[0];return x*2}");
    expect(r.code).toContain("()=>{return this}");
    expect(r.params).toBe(4);
  });

  it("a function that makes a closure keeps its parameters; the closure's are rewritten", () => {
    // the closure keeps the call's scope: parameters there cost less than `arguments` and its array
    const r = slim("function outer(e){return function(a){return e+a}}");
    expect(r.code).toBe("function outer(e){return function(){var a=arguments[0];return e+a}}");
  });

  it("a closure inside a function that reads arguments keeps its parameters", () => {
    const r = slim("function outer(){var e=arguments[0];return function(a){return e+a}}");
    expect(r.code).toBe("function outer(){var e=arguments[0];return function(a){return e+a}}");
  });

  it("each top-level class's prototype.constructor is deleted after the bundle has run, unless the code reads one", () => {
    const code = "var A=class{constructor(x){this.x=x}get(){return this.x}};class B{};var C;C=class{};out.push(new A(1).get());";
    const r = dropConstructorLinks(code) as { code: string; classes: number };
    expect(r.classes).toBe(3);
    expect(r.code.endsWith("[A,B,C].forEach(function(c){delete c.prototype.constructor});\n")).toBe(true);
    // made again after the links are gone, the classes still work
    expect(runNode(program(`${r.code}out.push(new A(2).get(),new B() instanceof B);`))).toBe(runNode(program(`${code}out.push(new A(2).get(),true);`)));
    for (const reads of ["x.constructor", "x['constructor']", "x instanceof A"]) {
      const kept = dropConstructorLinks(`var A=class{};${reads};`) as { code: string; classes: number };
      expect(kept.classes, reads).toBe(0);
    }
  });

  it("a lazy module's body (a return at the top) is accepted", () => {
    const r = slim("function f(a){return a}return{f:f};", { returnOutside: true });
    expect(r.code).toBe("function f(){var a=arguments[0];return a}return{f:f};");
  });

  const exe = path.join(runtimesDir(), "espruino-linux");
  const missing = fs.existsSync(exe) ? null : `no ${exe}: set PETREL_RUNTIMES to the folder of prebuilt interpreters (../shared/runtimes/README.md)`;
  needs(missing, "every case prints the same on the real Espruino interpreter (espruino-linux), run from Storage as a board runs the app", () => {
    const progs = Object.values(CASES).map((b) => slim(program(b)).code);
    const origs = Object.values(CASES).map((b) => program(b));
    const { parts, out } = runFromStorage(exe, [...origs, ...progs]);
    const n = origs.length;
    const names = Object.keys(CASES);
    // the timers' lines come at the end of the run, after every case: compared as a count
    const late = out.split("\n").filter((l) => l === "late xy").length;
    expect(late, "the timer case, original and rewritten").toBe(2);
    for (let i = 0; i < n; i++) {
      if (names[i] === "timer arguments") continue;
      expect(parts.get(i + n), `${names[i]} on espruino-linux`).toEqual(parts.get(i));
      expect(parts.get(i)?.length ?? 0, `${names[i]} printed on espruino-linux`).toBe(1);
    }
  });
});
