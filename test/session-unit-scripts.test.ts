import { expect, it } from "vitest";
import { run } from "./probe/entry_node";
import { scriptCases } from "./fixtures/session-scripts";

// The session scripts (test/fixtures/session-scripts*.ts) run from the TypeScript sources, in this
// process: the same cases and transcripts test/session-matrix.test.ts runs on the built probe of
// every runtime, here so that the branch coverage of firmware/session (tools/test.mjs measures
// only in-process tests, test/session-unit*.test.ts) counts them. One line per case that came
// out wrong, with the first difference.

it(`${scriptCases.length} session scripts from the sources`, () => {
  const got = run(scriptCases.map((c, k) => `${k} ${c.op} ${c.args.join(" ")}`).join("\n"));
  expect(got).toHaveLength(scriptCases.length);
  const wrong: string[] = [];
  for (let k = 0; k < scriptCases.length; k++) {
    const line = got[k];
    const result = line.slice(line.indexOf(" ") + 1);
    const want = scriptCases[k].expect;
    if (!line.startsWith(`${k} `) || result !== want) {
      let at = 0;
      while (at < want.length && result[at] === want[at]) at++;
      wrong.push(`${scriptCases[k].name}\n  at ${at}: expected ${want.slice(at, at + 120)}\n  got ${result.slice(at, at + 120)}`);
    }
  }
  expect(wrong).toEqual([]);
});
