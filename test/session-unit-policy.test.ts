import { describe, expect, it } from "vitest";
import { nextAttempt } from "../firmware/session/policy";
import { POLICY, policyCases } from "./fixtures/policy";
import { crossTarget } from "./harness/matrix";

// The reconnect policy (firmware/session/policy.ts): a pure function, its table on Node (for the
// branch coverage) and on every runtime of the matrix.
describe("the reconnect policy", () => {
  it.each(POLICY)("%s", (_name, a, r) => {
    expect(nextAttempt(a[0], a[1], a[2], a[3], a[4], a[5])).toEqual(r);
  });
});

crossTarget("reconnect policy", policyCases);
