import type { Decoder } from "../codec/decoder";
import type { Session5 } from "./session5";
import { topicAliasOf } from "./session5";

// Topic aliases from the broker (MQTT 5.0 §3.3.2.3.4), behind the `aliasin` feature: with
// topicAliasesIn the client's CONNECT allows the broker that many aliases, and each incoming
// PUBLISH's topic is resolved here. A board whose profile leaves the feature out allows none (an
// alias from its broker is a protocol error there), and carries none of this.

/**
 * The topic of an incoming PUBLISH at 5.0: its own, or the one its Topic Alias stands for on this
 * connection (a PUBLISH with both sets the alias up, §3.3.2.3.4). Undefined when the alias is
 * beyond our Topic Alias Maximum, or not set up (a protocol error: the caller closes).
 */
export function inboundTopic(c5: Session5, d: Decoder): string | undefined {
  const alias = topicAliasOf(d);
  const topic = d.topicText();
  if (alias === 0) return topic;
  const t = c5.inAliases;
  if (t === undefined || alias > c5.inMax) return undefined;
  if (topic !== "") t[alias - 1] = topic;
  return topic !== "" ? topic : t[alias - 1];
}
