import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DIST, OPTIONAL_IN_CI, RUNTIMES, runtimes, type RuntimeName } from "./runtimes";

/** One cross-target case: an op of the probe, its arguments, and the exact expected result. */
export interface Case {
  name: string;
  op: string;
  args: string[];
  expect: string;
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
 * (the built probe in that runtime), then each case is its own test, named with the runtime.
 * A runtime that cannot run here is skipped with the reason in the test name, except under
 * CI=true, where a missing runtime is a failing test (only espruino-real may be absent).
 */
export function crossTarget(suite: string, cases: Case[]): void {
  const names = new Set<string>();
  for (const c of cases) {
    if (names.has(c.name)) throw new Error(`${suite}: duplicate case name ${c.name}`);
    names.add(c.name);
  }
  const input = cases.map((c, k) => `${k} ${c.op} ${c.args.join(" ")}`).join("\n");
  const ran: Record<string, string> = {};

  for (const rtName of RUNTIMES) {
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
    describe(`${suite} [${rtName}]`, () => {
      const results = new Map<number, string>();
      let failure: unknown = null;
      beforeAll(() => {
        try {
          for (const line of rt.run(input)) {
            const sp = line.indexOf(" ");
            results.set(Number(line.slice(0, sp)), line.slice(sp + 1));
          }
        } catch (e) {
          failure = e;
        }
      });
      it(`runs all ${cases.length} cases`, () => {
        if (failure) throw failure;
        expect(results.size).toBe(cases.length);
        const passed = cases.filter((c, k) => results.get(k) === c.expect).length;
        ran[rtName] = `${passed}/${cases.length} passed`;
        console.log(`[matrix] ${suite} on ${rtName}: ${cases.length} cases run, ${passed} passed`);
      });
      cases.forEach((c, k) => {
        it(c.name, () => {
          if (failure) throw failure;
          expect(results.get(k), `${c.op} ${c.args.join(" ")}`).toBe(c.expect);
        });
      });
    });
  }

  afterAll(() => {
    const dir = path.join(DIST, "test-report");
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, `matrix-${suite}.json`), JSON.stringify({ suite, cases: cases.length, runtimes: ran }, null, 1));
  });
}
