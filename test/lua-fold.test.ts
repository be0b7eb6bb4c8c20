import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
// @ts-expect-error: a build tool in plain JavaScript
import { foldLuaConstants, foldLuaFeatures, foldLuaSwitches } from "../tools/lua-fold.mjs";

// The board build's fold of the branches of features a profile leaves out (tools/lua-fold.mjs):
// exact output on the shapes TSTL writes, and what must not be folded.

const fold = (src: string, off = ["FEATURE_MQTT5"]): { code: string; folds: number } => foldLuaFeatures(src, off);

describe("lua-fold: the branches of features a board leaves out", () => {
  it("if F then ... end goes; if F and x then ... else ... end keeps the else as a do block", () => {
    expect(fold("a()\nif FEATURE_MQTT5 then\nb()\nend\nc()\n")).toEqual({ code: "a()\n\nc()\n", folds: 1 });
    expect(fold("if FEATURE_MQTT5 and x > 1 then\nb()\nelse\nc()\nend\n").code).toBe("do\nc()\nend\n");
    expect(fold("if false and v5 then\nb()\nend\nz()\n").code).toBe("\nz()\n");
  });

  it("the if clause gives way to the next elseif; a false elseif clause is taken out", () => {
    expect(fold("if FEATURE_MQTT5 and v then\na()\nelseif y then\nb()\nelse\nc()\nend\n").code).toBe("if y then\nb()\nelse\nc()\nend\n");
    expect(fold("if y then\na()\nelseif FEATURE_MQTT5 and v then\nb()\nelseif z then\nc()\nend\n").code).toBe("if y then\na()\nelseif z then\nc()\nend\n");
    expect(fold("if y then\na()\nelseif FEATURE_MQTT5 then\nb()\nelse\nc()\nend\n").code).toBe("if y then\na()\nelse\nc()\nend\n");
  });

  it("nested blocks, functions and loops inside a folded branch go with it; those outside stay", () => {
    const src = "if FEATURE_MQTT5 and c5 ~= nil then\nfor i = 1, 3 do\nif i then\nf(function() return 1 end)\nend\nend\nelse\nwhile x do\ng()\nend\nend\nh()\n";
    expect(fold(src).code).toBe("do\nwhile x do\ng()\nend\nend\nh()\n");
  });

  it("not folded: a condition with `or` outside brackets, a feature that is on, a field of that name, not F, and keywords inside strings and comments", () => {
    const kept = [
      "if FEATURE_MQTT5 and x or y then\na()\nend\n",
      "if FEATURE_QOS2 and x then\na()\nend\n",
      "if t.FEATURE_MQTT5 then\na()\nend\n",
      "if not FEATURE_MQTT5 then\na()\nend\n",
      "local n = FEATURE_MQTT5 and a or b\n",
    ];
    for (const k of kept) expect(fold(k), k).toEqual({ code: k, folds: 0 });
    expect(fold("if FEATURE_MQTT5 and (x or y) then\na(\"end\")\n-- end\n--[[ if then end ]]\nend\nb()\n").code).toBe("\nb()\n");
  });

  it("several features at once, and a fold that makes the next one", () => {
    const src = "if FEATURE_MQTT5 then\na()\nelseif FEATURE_QOS2 and q then\nb()\nelse\nc()\nend\n";
    expect(fold(src, ["FEATURE_MQTT5", "FEATURE_QOS2"])).toEqual({ code: "do\nc()\nend\n", folds: 2 });
  });
});

describe("lua-fold: the constant tests the features that are on leave behind", () => {
  const plain = (src: string): { code: string; folds: number } => foldLuaConstants(src);

  it("if true and x / elseif true and x become if x; true and A or B with literals becomes A, false and A or B becomes B", () => {
    expect(plain("if true and c ~= nil then\na()\nend\n").code).toBe("if c ~= nil then\na()\nend\n");
    expect(plain("if y then\na()\nelseif true and v then\nb()\nend\n").code).toBe("if y then\na()\nelseif v then\nb()\nend\n");
    expect(plain('say(("QoS 0, 1" .. (true and " or 2" or "")) .. ")")\n')).toEqual({ code: 'say(("QoS 0, 1" .. (" or 2")) .. ")")\n', folds: 1 });
    expect(plain('d.max = true and 4 or 1\nreturn false and "long" or "short"\nend\n').code).toBe('d.max = 4\nreturn "short"\nend\n');
  });

  it("not true becomes false, which the feature fold then takes out with its branch", () => {
    const once = plain('if not true and d.key == "qos" then\nrefuse()\nend\nok()\n').code;
    expect(once).toBe('if false and d.key == "qos" then\nrefuse()\nend\nok()\n');
    expect(foldLuaFeatures(once, []).code).toBe("\nok()\n");
  });

  it("left alone: a comparison's operand, values that are not literals, strings and comments, a field named true", () => {
    const kept = [
      'local z = x == true and "a" or "b"\n',
      "local bad = true and v5 == true and h() or g()\n",
      'local s = "if true and x then"\n-- if true and y then\n',
      "local n = true and a or b\n",
      "local m = t.true and 1 or 2\n",
      'f(true and "a" or "b" .. c)\n',
    ];
    for (const k of kept) expect(plain(k), k).toEqual({ code: k, folds: 0 });
  });
});

describe("lua-fold: switches whose cases cannot fall through", () => {
  // the shape TSTL writes for `switch (c) { case 0: return "a"; case 1: case 2: ...; default: ... }`
  const tstl = (cases: string[][], dflt: string) => {
    const out = ["function f(code)", "repeat", "local ____switch3 = code"];
    cases.forEach(([test, body], k) => {
      out.push(k === 0 ? `local ____cond3 = ____switch3 == ${test}` : `____cond3 = ____cond3 or ____switch3 == ${test}`, "if ____cond3 then", ...body.split(";"), "end");
    });
    out.push("do", dflt, "end", "until true", "return \"after\"", "end", "");
    return out.join("\n");
  };
  const run = (lua: string) => {
    const r = spawnSync("lua5.3", ["-e", `${lua}\nlocal t = {} for i = -1, 4 do t[#t + 1] = tostring(f(i)) end print(table.concat(t, ","))`], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(r.stderr);
    return r.stdout.trim();
  };

  it("each case a plain test when every case returns or breaks; the same results on lua5.3", () => {
    const src = tstl([["0", 'return "a"'], ["1", "break"], ["2", 'x = 1;return "c"']], 'return "z"');
    const { code, folds } = foldLuaSwitches(src);
    expect(folds).toBe(3);
    expect(code).not.toMatch(/____cond3/);
    expect(code).toContain("if ____switch3 == 1 then");
    expect(run(code)).toBe(run(src));
    expect(run(code)).toBe("z,a,after,c,z,z");
  });

  it("left as it is: a case that falls through, a case with two labels, another use of the cond", () => {
    const fall = tstl([["0", "x = 1"], ["1", 'return "b"']], 'return "z"');
    expect(foldLuaSwitches(fall)).toEqual({ code: fall, folds: 0 });
    expect(run(fall)).toBe("z,b,b,z,z,z");
    const labels = fall.replace("____cond3 = ____cond3 or ____switch3 == 1\n", "____cond3 = ____cond3 or ____switch3 == 1\n____cond3 = ____cond3 or ____switch3 == 2\n");
    expect(foldLuaSwitches(labels).folds).toBe(0);
    const other = tstl([["0", 'return "a"']], "return ____cond3");
    expect(foldLuaSwitches(other).folds).toBe(0);
  });
});
