/**
 * Petrel on Node, MQTT.js-style: `connect(options)` builds the Node platform and starts the
 * client. A wrong option throws here (host code), with the same code and message a board gets
 * as a value.
 */
import { connect as connectOn, type MqttClient } from "../../firmware/session/mqtt";
import type { ClientOptions } from "../../firmware/session/options";
import { nodePlatform, type NodePlatformOptions } from "../../firmware/targets/node/platform";

export type NodeClientOptions = ClientOptions & NodePlatformOptions;

export function connect(options: NodeClientOptions): MqttClient {
  const c = connectOn(nodePlatform(options), options);
  if ("code" in c) throw Object.assign(new Error(`${c.code}: ${c.message}`), { code: c.code });
  return c;
}
