import { expect, it } from "vitest";

const inCI = process.env.CI === "true";

/**
 * A case that needs a runtime or a tool (`missing`: why it cannot run here, or null): skipped
 * saying why when it is missing, and failed under CI=true, where nothing may be missing.
 * `concurrent`: it runs beside the file's neighbouring concurrent cases (each with its own processes).
 */
export function needs(missing: string | null, name: string, fn: () => Promise<void> | void, timeoutMs?: number, concurrent = false): void {
  if (missing === null) (concurrent ? it.concurrent : it)(name, fn, timeoutMs);
  else if (inCI) it(`${name} (required under CI=true)`, () => expect.fail(missing));
  else it.skip(`${name} (skipped: ${missing})`, fn);
}
