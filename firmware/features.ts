/**
 * What this build of the firmware carries. Each board profile lists its features
 * (boards/<name>.json, `features`); a board's build replaces this module with the profile's
 * choice (tools/build.mjs), and the bundler then leaves the code behind a feature that is off
 * out of the artifact, not merely switched off. Shared code tests these constants, nothing
 * else. The Node build and the tests carry everything.
 */

/** QoS 2 both ways (publishing at QoS 2; the ids of incoming QoS 2 messages kept for their PUBREL). */
export const FEATURE_QOS2 = true;
/** More than one broker: failover down the list, and back to the first after primaryRetry. */
export const FEATURE_FAILOVER = true;
/** The sensor node's deep sleep between readings (sleep on). */
export const FEATURE_SLEEP = true;

/** MQTT 5.0 (protocol level 5): properties, reason codes, flow control. Without it, 3.1.1 only. */
export const FEATURE_MQTT5 = true;

/**
 * The texts of MQTT 5.0's reason codes and 3.1.1's CONNACK return codes (what each means and its
 * fix) on the chip. Without them an error names its code and the reason or return code, and
 * docs/reason-codes.md has the text.
 */
export const FEATURE_TEXTS = true;

/**
 * MQTT 5.0 enhanced authentication (authMethod, onAuth: AUTH exchanges before CONNACK). Needs
 * mqtt5. Without it, authMethod is refused and an AUTH from a broker is a protocol error.
 */
export const FEATURE_AUTH = true;

/**
 * MQTT 5.0 topic aliases from the broker (topicAliasesIn). Needs mqtt5. Without it the client
 * allows the broker none, and topicAliasesIn is refused.
 */
export const FEATURE_ALIASIN = true;

/** Every feature's name, as profiles list them. */
export const FEATURES = ["qos2", "failover", "sleep", "mqtt5", "texts", "auth", "aliasin"];
