import { describe, expect, it } from "vitest";
// @ts-expect-error: a plain .mjs module of the tools, without type declarations
import { inlineEspruinoConstants } from "../tools/espruino-consts.mjs";

// tools/espruino-consts.mjs: the packed app's top-level constants become literals (no global
// variable each on Espruino); anything but a plain read leaves the name as it is.

const inline = (src: string) => inlineEspruinoConstants(src) as { code: string; inlined: string[] };

/** Runs a script's `out` expression in a fresh function scope, as the board's global scope would. */
const run = (code: string): unknown => new Function(`${code}\nreturn out;`)();

describe("espruino-consts", () => {
  it("inlines numbers, booleans and short strings where they are read, in any declarator of a list", () => {
    const src = 'function $p0(){return $p1}var $p1=43,$p2="ab",$p9=class{m(){return $p2}},$p3=-1;var $p5=!1;' +
      "var out=[$p0(),$p2.length,new $p9().m(),$p3,$p5?1:0,{$p1}.$p1,o.$p3];";
    const r = inline(src.replace("o.$p3", "({$p3:7}).$p3"));
    expect(r.inlined).toEqual(["$p1", "$p2", "$p3", "$p5"]);
    expect(r.code).not.toMatch(/var \$p1|\$p2=|\$p3=-1|\$p5=/);
    expect(r.code).toContain("var $p9=class");
    // the same values as before
    expect(run(r.code)).toEqual(run(src.replace("o.$p3", "({$p3:7}).$p3")));
  });

  it("leaves a name that is assigned, updated, declared twice, shadowed or read before it is declared", () => {
    const src = [
      "var $p1=1;$p1=2;",
      "var $p2=1;$p2++;",
      "var $p3=1;var $p3=2;",
      "var $p4=1;function $p7($p4){return $p4}",
      "var $p8=$p5;var $p5=3;",
      'var $p6="a string longer than sixteen";',
      "var out=[$p1,$p2,$p3,$p7(9),$p8,$p5,$p6];",
    ].join("\n");
    const r = inline(src);
    expect(r.inlined).toEqual([]);
    expect(r.code).toBe(src);
  });

  it("only touches the names the packer gave (the prefix)", () => {
    const r = inline("var LIMIT=5,$pa=6;var out=[LIMIT,$pa];");
    expect(r.inlined).toEqual(["$pa"]);
    expect(run(r.code)).toEqual([5, 6]);
  });
});
