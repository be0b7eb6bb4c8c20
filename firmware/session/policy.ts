import { FEATURE_FAILOVER } from "../features";

/** How a connection or a connection attempt ended, as the reconnect policy sees it. */
export const enum Ended {
  /** A working connection broke (it had been up for stableMs or more). */
  Broke = 0,
  /** An attempt failed, or a connection died soon after its CONNACK (stableMs). */
  Failed = 1,
  /** This client left a fallback broker to try the first one again (primaryRetry). */
  PrimaryRetry = 2,
}

/**
 * The reconnect policy, a pure function: after a connection or an attempt on broker `broker` (of
 * `brokers`) ended `how`, in failed round `round`, returns [the next broker, the round, the delay
 * in ms before dialling it] (the client adds equal jitter to the delay).
 * - A working connection broke: the first broker, soon (minMs); the rounds start over.
 * - An attempt failed: the next broker of the list, soon (failover); after the last, the first
 *   again after the backoff: minMs doubled for each failed round, at most maxMs.
 * - Leaving a fallback for the first broker: at once, the rounds start over.
 * Without failover in the build there is one broker: every failure is a round.
 */
export function nextAttempt(how: number, broker: number, round: number, brokers: number, minMs: number, maxMs: number): number[] {
  if (how === Ended.PrimaryRetry) return [0, 0, 0];
  if (how === Ended.Broke) return [0, 0, minMs];
  const next = FEATURE_FAILOVER ? broker + 1 : brokers;
  if (next < brokers) return [next, round, minMs];
  let d = minMs;
  for (let r = 0; r <= round && d < maxMs; r++) d = d * 2;
  return [0, round + 1, d < maxMs ? d : maxMs];
}
