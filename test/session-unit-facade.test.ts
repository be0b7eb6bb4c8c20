import { describe, expect, it } from "vitest";
import { connackError, explainClose } from "../firmware/session/errors";

// The error explanations, as a table: every close reason and CONNACK code has its own sentence.
// The facade's scenarios are scripts now (test/fixtures/session-scripts-facade.ts), on every
// runtime; so are the explanations the client gives in them (refused, unreachable, reset,
// not-found, CONNACK 4 and 5, malformed-packet, protocol-error), word for word.

describe("error explanations", () => {
  it("every close reason and CONNACK code has a sentence, and those users can fix name the fix", () => {
    const reasons = ["refused", "reset", "timeout", "not-found", "no-network", "unreachable", "tls", "tls-expired",
      "tls-name-mismatch", "tls-untrusted", "tls-client-cert-required", "connect-timeout", "ping-timeout",
      "malformed-packet", "protocol-error", "primary-retry", "ack-timeout"];
    const texts = new Set(reasons.map(explainClose));
    expect(texts.size).toBe(reasons.length);
    for (const r of ["refused", "timeout", "not-found", "unreachable", "tls", "tls-expired", "tls-name-mismatch", "tls-untrusted",
      "tls-client-cert-required", "connect-timeout"]) expect(explainClose(r)).toMatch(/fix: /);
    expect(explainClose("")).toBe("closed by this client");
    expect(explainClose("weird")).toBe("the connection closed (weird)");
    for (let rc = 1; rc <= 5; rc++) expect(connackError(rc).message).toMatch(new RegExp(`return code ${rc}.*fix: `));
    expect(connackError(6).code).toBe("connack-refused");
  });
});
