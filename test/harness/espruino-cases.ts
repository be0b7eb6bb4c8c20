import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

/**
 * Programs that print what they compute, for the tests of the Espruino bundle rewrites
 * (tools/espruino-slim.mjs, tools/espruino-merge.mjs): each case's program pushes its results
 * to `out` and prints them as JSON.
 */
export function casesProgram(body: string): string {
  return `var out=[];${body}print(JSON.stringify(out));`;
}

/**
 * Runs `programs` on the real Espruino interpreter `exe` from Storage, as the boot guard runs the
 * app (function bodies stay in flash); returns, per program, the lines it printed that start
 * with `[` (the JSON of `out`) or `late ` (a timer's). `ownScope`: each runs in a function of its
 * own (a second global `class C` does not replace the first on Espruino).
 */
export function runFromStorage(exe: string, programs: string[], ownScope = false): { parts: Map<number, string[]>; out: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-espruino-cases-"));
  try {
    const script = `var S=require("Storage");` +
      programs.map((c, i) => `S.write("p${i}",${JSON.stringify(ownScope ? `(function(){${c}})();` : c)});`).join("") +
      programs.map((_, i) => `print("== ${i}");eval(S.read("p${i}"));`).join("");
    fs.writeFileSync(path.join(dir, "t.js"), script);
    // the REPL's prompt and erase-line in front of what a timer prints
    const out = execFileSync(exe, ["t.js"], { cwd: dir, input: "", encoding: "latin1", timeout: 60_000 }).replace(/>\r?\x1b\[J/g, "").replace(/\r/g, "");
    const parts = new Map<number, string[]>();
    let cur = -1;
    for (const l of out.split("\n")) {
      const m = /^== (\d+)$/.exec(l);
      if (m !== null) cur = Number(m[1]);
      else if (cur >= 0 && (l.startsWith("[") || l.startsWith("late "))) (parts.get(cur) ?? parts.set(cur, []).get(cur)!).push(l);
    }
    return { parts, out };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
