import { expect, it } from "vitest";

const inCI = process.env.CI === "true";

/**
 * A case that needs a runtime or a tool (`missing`: why it cannot run here, or null): skipped
 * saying why when it is missing, and failed under CI=true, where nothing may be missing.
 */
export function needs(missing: string | null, name: string, fn: () => Promise<void> | void, timeoutMs?: number): void {
  if (missing === null) it(name, fn, timeoutMs);
  else if (inCI) it(`${name} (required under CI=true)`, () => expect.fail(missing));
  else it.skip(`${name} (skipped: ${missing})`, fn);
}
