import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, expect, it } from "vitest";
import { DIST, ESPRUINO_REAL_TIMEOUT_MS, MATRIX_RUNTIMES, OPTIONAL_IN_CI, runtimes, type RuntimeName } from "./runtimes";

/** One cross-target case: an op of the probe, its arguments, and the exact expected result. */
export interface Case {
  name: string;
  op: string;
  args: string[];
  expect: string;
  /**
   * Puts what the runtime printed in the form `expect` is written in before the comparison (for
   * output whose bytes may rightly differ from the reference's, as properties' order: each side
   * is read back by the same independent decoder). Runs on the test's side, never in the probe.
   */
  normalize?: (got: string) => string;
}

/** Argument makers for the probe's line protocol. */
export const arg = {
  int: (n: number) => `i:${n}`,
  hex: (bytes: ArrayLike<number> | string) =>
    `h:${typeof bytes === "string" ? bytes.replace(/[\s,]/g, "").toLowerCase() : Buffer.from(Array.from(bytes)).toString("hex")}`,
  text: (s: string) => `t:${Buffer.from(s, "utf8").toString("hex")}`,
};
export const hexOf = (bytes: ArrayLike<number>) => Buffer.from(Array.from(bytes)).toString("hex");
export const hexOfText = (s: string) => Buffer.from(s, "utf8").toString("hex");

const inCI = process.env.CI === "true";

/**
 * Runs the same cases on every runtime of the matrix. Each runtime runs the whole table once
 * (the built probe in that runtime) as one test, which names every case that came out wrong.
 * A runtime that cannot run here is skipped with the reason in the test name, except under
 * CI=true, where a missing runtime is a failing test (only espruino-real may be absent).
 */
export function crossTarget(suite: string, cases: Case[], opts: { expectFailure?: boolean } = {}): void {
  const test = opts.expectFailure ? it.fails : it;
  const names = new Set<string>();
  for (const c of cases) {
    if (names.has(c.name)) throw new Error(`${suite}: duplicate case name ${c.name}`);
    names.add(c.name);
  }
  const input = cases.map((c, k) => `${k} ${c.op} ${c.args.join(" ")}`).join("\n");
  const ran: Record<string, string> = {};

  for (const rtName of MATRIX_RUNTIMES) {
    const rt = runtimes[rtName as RuntimeName];
    const missing = rt.missing();
    if (missing !== null) {
      if (inCI && !OPTIONAL_IN_CI.includes(rtName)) {
        it(`${suite} [${rtName}] runtime is required under CI=true`, () => {
          throw new Error(`${rtName} is missing: ${missing}`);
        });
      } else {
        it.skip(`${suite} [${rtName}] skipped: ${missing}`, () => {});
      }
      ran[rtName] = `skipped: ${missing}`;
      continue;
    }
    test(`${suite} [${rtName}]: ${cases.length} cases${opts.expectFailure ? " (must fail)" : ""}`, () => {
      ran[rtName] = "did not finish";
      const results = new Map<number, string>();
      for (const line of rt.run(input)) {
        const sp = line.indexOf(" ");
        results.set(Number(line.slice(0, sp)), line.slice(sp + 1));
      }
      const seen = (c: Case, k: number) => {
        const got = results.get(k);
        return got !== undefined && c.normalize !== undefined ? c.normalize(got) : got;
      };
      const wrong = cases.flatMap((c, k) => (seen(c, k) === c.expect ? [] :
        [`  ${c.name}\n    ${c.op} ${c.args.join(" ").slice(0, 200)}\n    expected ${c.expect.slice(0, 200)}\n    got      ${String(seen(c, k)).slice(0, 200)}`]));
      ran[rtName] = `${cases.length - wrong.length}/${cases.length} passed`;
      console.log(`[matrix] ${suite} on ${rtName}: ${cases.length} cases run, ${cases.length - wrong.length} passed`);
      if (wrong.length > 0) {
        throw new Error(`${suite} on ${rtName}: ${wrong.length} of ${cases.length} cases wrong:\n${wrong.slice(0, 25).join("\n")}`);
      }
      expect(results.size).toBe(cases.length);
    }, rtName === "espruino-real" ? ESPRUINO_REAL_TIMEOUT_MS : 120_000);
  }

  afterAll(() => {
    if (opts.expectFailure) return;
    const dir = path.join(DIST, "test-report");
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, `matrix-${suite}.json`), JSON.stringify({ suite, cases: cases.length, runtimes: ran }, null, 1));
  });
}
