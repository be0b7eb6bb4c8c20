import * as fs from "node:fs";
import * as path from "node:path";
import * as acorn from "acorn";
import { describe, expect, it } from "vitest";
// @ts-expect-error plain ESM module without types
import { mergeFunctions, mergeMethods, MERGED } from "../tools/espruino-merge.mjs";
// @ts-expect-error plain ESM module without types
import { slimEspruino } from "../tools/espruino-slim.mjs";
import { runtimesDir } from "./harness/board-espruino";
import { casesProgram, runFromStorage } from "./harness/espruino-cases";
import { DIST } from "./harness/runtimes";
import { needs } from "./harness/needs";

// tools/espruino-merge.mjs puts most of a class's methods into one function (a switch on the
// method's number) and rewrites their calls. Each case's program prints what it computes; the
// rewritten program, then slimmed as the build does, must print the same as the original on V8
// and on the real Espruino interpreter run from Storage. The names the build shortened are the
// ones a merge may touch: here every method name of the cases but `keep`.

interface Merged { codes: string[]; merged: string[]; classes: number; methods: number }
const SHORT = new Set(["m", "n", "k", "g", "h", "x", "y", "z", "w", "u", "dup", "keep"]);
const merge = (codes: string[], names = SHORT, hot: string[] = []) =>
  mergeMethods(codes.map((code) => ({ code, returnOutside: false })), names, hot) as Merged;
interface Grouped { code: string; functions: number; groups: number }
const group = (code: string, bytes?: number) => mergeFunctions(code, bytes) as Grouped;
const built = (code: string) => (slimEspruino(group(merge([code]).codes[0], 60).code) as { code: string }).code;

const CASES: Record<string, string> = {
  "methods and calls": "class C{constructor(a){this.a=a}m(x,y){return this.a+x*y}n(){return this.m(2,3)+1}}var c=new C(1);out.push(c.m(4,5),c.n());",
  "locals of two methods with the same names": "class C{m(a){var t=a*2;let u=t+1;return u}n(a){var t='s'+a;let u=t+'!';return u}}var c=new C();out.push(c.m(3),c.n(3),c.m(4));",
  "a method that ends without return": "class C{constructor(){this.v=0}m(x){if(x>0)this.v+=x}n(){return this.v}}var c=new C();c.m(2);c.m(-1);c.m(5);out.push(c.n(),c.m(1)===void 0);",
  "loops, break, continue and a switch inside": "class C{m(l){var s=0;for(var i=0;i<l.length;i++){if(l[i]<0)continue;if(l[i]>9)break;switch(l[i]){case 1:s+=10;break;default:s+=l[i]}}return s}}out.push(new C().m([1,2,-3,4,12,5]));",
  "closures made in a method": "class C{constructor(){this.k=5}m(a){var self=this;return function(b){return self.k+a+b}}n(a){return x=>this.k*a*x}}var c=new C();out.push(c.m(1)(2),c.n(2)(3));",
  "two classes with a method of the same name": "class A{m(){return 'a'}g(){return this.m()+'g'}}class B{m(){return 'b'}h(){return this.m()+'h'}}var l=[new A(),new B()];out.push(l.map(function(o){return o.m()}).join(''),l[0].g(),l[1].h());",
  "recursion": "class C{m(n){return n<2?n:this.m(n-1)+this.m(n-2)}}out.push(new C().m(10));",
  "a method read as a value keeps its function": "class C{constructor(){this.v=3}dup(){return this.v}m(){return this.dup()+1}}var c=new C();var f=c.dup;out.push(c.m(),f.call(c),typeof c.dup);",
  "a name also used as data keeps its function": "class C{x(){return 1}}var o={x:function(){return 2}};out.push(new C().x(),o.x());",
  "arguments in a method keeps its function": "class C{w(){return arguments.length}u(a){return this.w(a,a)}}out.push(new C().u(1));",
  "a name the build did not shorten stays": "class C{keep2(){return 7}m(){return this.keep2()}}out.push(new C().m());",
  "top-level functions calling each other": "function f1(a,b){return a+b}function f2(a){return f1(a,1)*2}function f3(n){return n<2?n:f3(n-1)+f3(n-2)}function go(){out.push(f2(3),f3(9),f1('x','y'))}go();",
  "a top-level function held as a value keeps its own": "function f1(a){return a+1}function f2(a){return a*2}function go(){var g=f1;out.push(g(1),[1,2].map(f1).join(),f2(5))}go();",
  "a top-level function the top level calls early keeps its own": "function f1(){return 4}var early=f1();function f2(){return early+f1()}function go(){out.push(f2())}go();",
  "a call as the first argument of another (f(g(x)))": "function f(a){return a+1}function g(a){return a*2}function go(){out.push(f(g(3)),g(f(g(1))))}go();",
  "closures made in a merged top-level function": "function mk(a,b){var t=a*b;return function(c){return t+c+arguments.length}}function mk2(s){return {f:x=>s+x,g:function(){return s}}}function go(){var f=mk(2,3),o=mk2('p');out.push(f(4),f(5,6),o.f('q'),o.g())}go();",
  "lets at a merged function's top and in its loops": "function mk(n){let t=n*2;const fs=[];for(let i=0;i<3;i++){let j=i*t;fs.push(function(){return t+n})}let s=0;for(const f of fs)s+=f();return s}class C{m(a){let b=a+1;const c=[b];{let b=7;c.push(b)}return c.concat([b]).join()}}function go(){out.push(mk(1),mk(2),new C().m(1))}go();",
  "a local of the same name": "function t(){return 'top'}function go(){var r=[t()];(function(){function t(){return 'inner'}r.push(t())})();out.push(r.join())}go();",
};

const program = casesProgram;

function runNode(code: string): string {
  const lines: string[] = [];
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  new Function("print", code)((s: string) => lines.push(s));
  return lines.join("\n");
}

describe("the Espruino method merge", () => {
  for (const [name, body] of Object.entries(CASES)) {
    it(`${name}: the merged program prints what the original does (V8)`, () => {
      const orig = runNode(program(body));
      expect(orig).not.toBe("");
      expect(runNode(merge([program(body)]).codes[0])).toBe(orig);
      expect(runNode(built(program(body)))).toBe(orig);
    });
  }

  it("a class's methods become one function, their calls take its number", () => {
    const r = merge(["class C{m(a){return a}n(){return this.m(1)}}new C().n();"]);
    expect(r.codes[0]).toBe(`class C{${MERGED}(){switch(arguments[0]){case 0:{var a=arguments[1];return a}return;case 1:{return this.${MERGED}(0,1)}return;}}}new C().${MERGED}(1);`);
    expect(r.merged).toEqual(["m", "n"]);
    expect(r.classes).toBe(1);
  });

  it("hot methods come first", () => {
    const r = merge(["class C{m(){return 1}n(){return 2}}"], SHORT, ["n"]);
    expect(r.merged).toEqual(["n", "m"]);
    expect(r.codes[0].indexOf("case 0:{return 2}")).toBeGreaterThan(0);
  });

  it("what stays a function: read as a value, used as data or a string, arguments, static, getters, names not shortened", () => {
    const r = merge(["class C{static k(){return 1}get g(){return 2}x(){return 3}w(){return arguments[0]}h(){return 4}keep(){return 5}}" +
      "var o={x:1};var s='h';var c=new C();c.x();c.w();c.h();c.keep();"], new Set(["k", "g", "x", "w", "h"]));
    expect(r.merged).toEqual([]);
  });

  it("methods are numbered over every bundle of the build alike", () => {
    const r = merge(["class C{m(){return 1}n(){return 2}}var c=new C();", "c.n();"]);
    expect(r.codes[1]).toBe(`c.${MERGED}(1);`);
  });

  it("top-level functions called only by name go into groups; the rest keep their own", () => {
    const r = group("function a(x){return x}function b(){return a(1)}var v=b;function c(){return 2}function go(){return a(3)+c()}go();", 3000);
    // b is held as a value by a statement ahead of the last function, so b and a (which b reaches)
    // keep theirs; c and go merge (go is called by the last statement, after every declaration)
    expect(r.code).toBe("function a(x){return x}function b(){return a(1)}var v=b;function $q0(){switch(arguments[0]){case 0:{return 2}return;case 1:{return a(3)+$q0(0)}return;}}$q0(1);");
    expect(r.functions).toBe(2);
    expect(r.groups).toBe(1);
  });

  it("a merged function that makes closures lets go of its arguments array; one that makes none is left alone", () => {
    // a closure keeps the call's scope for as long as it lives: the array there would stay with it
    const r = group("function mk(a){return function(){return a}}function id(a){return a}function go(){return mk(id(1))}go();", 3000);
    expect(r.code).toContain("{var a=arguments[1];arguments=0;return function(){return a}}");
    expect(r.code).toContain("{var a=arguments[1];return a}");
    // a function with a closure inside that reads its own `arguments` is not merged at all
    expect(group("function mk(){return function(){return arguments.length}}function go(){return mk()}go();", 3000).code).toContain("function mk(){");
    // in a class body (strict code) the assignment would be a syntax error: there it is emptied
    const m = merge(["class C{m(a){return function(){return a}}n(a){return a}}new C().m(1);"]).codes[0];
    expect(m).toContain("{var a=arguments[1];[].splice.call(arguments,0);return function(){return a}}");
    expect(m).toContain("{var a=arguments[1];return a}");
  });

  it("a merged function's own lets and consts become vars; those in blocks inside stay", () => {
    // in the case's block they would make a block scope at every call, kept by closures made there
    const r = group("function f(a){let b=a;const c=[b];for(let i=0;i<2;i++){let d=i;c.push(d)}return c}function go(){return f(1)}go();", 3000);
    expect(r.code).toContain("{var a=arguments[1];var b=a;var c=[b];for(let i=0;i<2;i++){let d=i;c.push(d)}return c}");
    expect(merge(["class C{m(a){let b=a;{let b=2}return b}}new C().m(1);"]).codes[0]).toContain("var b=a;{let b=2}return b");
  });

  it("in the built sensor node, every call of a merged function passes its number first", () => {
    for (const f of ["app.js", "app.config.js", "app.commands.js", "app.held.js"]) {
      const code = fs.readFileSync(path.join(DIST, "espruino", f), "latin1");
      const ast = acorn.parse(code, { ecmaVersion: 2020, sourceType: "script", allowReturnOutsideFunction: true });
      let calls = 0;
      const bad: string[] = [];
      (function walk(n: acorn.Node) {
        const x = n as unknown as { type: string; callee?: { type: string; name?: string; computed?: boolean; property?: { name?: string } }; arguments?: { type: string; value?: unknown }[] };
        if (x.type === "CallExpression" && x.callee !== undefined) {
          const c = x.callee;
          if ((c.type === "Identifier" && (c.name ?? "").startsWith("$q")) || (c.type === "MemberExpression" && c.computed !== true && c.property?.name === MERGED)) {
            calls++;
            const a = x.arguments ?? [];
            if (a.length === 0 || a[0].type !== "Literal" || typeof a[0].value !== "number") bad.push(code.slice(n.start, n.start + 60));
          }
        }
        for (const v of Object.values(n)) {
          if (Array.isArray(v)) for (const c of v) { if (c !== null && typeof c === "object" && typeof c.type === "string") walk(c); }
          else if (v !== null && typeof v === "object" && typeof (v as { type?: unknown }).type === "string") walk(v as acorn.Node);
        }
      })(ast);
      // (app.held.js, the console's held command, is a small module: a few merged calls)
      expect(calls, `${f}: merged calls`).toBeGreaterThan(f === "app.held.js" ? 3 : 10);
      expect(bad, `${f}: calls without their number`).toEqual([]);
    }
  });

  it("refuses bundles that use the merged function's name already", () => {
    expect(() => merge([`var o={};o.${MERGED}=1;`])).toThrow(/already used/);
  });

  const exe = path.join(runtimesDir(), "espruino-linux");
  const missing = fs.existsSync(exe) ? null : `no ${exe}: set PETREL_RUNTIMES to the folder of prebuilt interpreters (../shared/runtimes/README.md)`;
  needs(missing, "every case prints the same on the real Espruino interpreter (espruino-linux), run from Storage as a board runs the app", () => {
    const origs = Object.values(CASES).map((b) => program(b));
    const progs = Object.values(CASES).map((b) => built(program(b)));
    // each in a function of its own: the cases reuse class names
    const { parts } = runFromStorage(exe, [...origs, ...progs], true);
    const n = origs.length;
    const names = Object.keys(CASES);
    for (let i = 0; i < n; i++) {
      expect(parts.get(i)?.length ?? 0, `${names[i]} printed on espruino-linux`).toBe(1);
      expect(parts.get(i + n), `${names[i]} on espruino-linux`).toEqual(parts.get(i));
      // and the same as V8
      expect(parts.get(i)?.[0], `${names[i]}: espruino-linux and V8`).toBe(runNode(origs[i]));
    }
  });
});
