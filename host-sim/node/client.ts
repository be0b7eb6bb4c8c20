/**
 * Petrel on Node, MQTT.js-style: `connect(options)` builds the Node platform and starts the
 * client. A wrong option throws here (host code), with the same code and message a board gets
 * as a value. On Node the protocol defaults to MQTT 5.0 (protocolVersion 5); a broker that
 * answers it in 3.1.1 gets 3.1.1 from the next attempt on, so the default locks nobody out.
 */
import { connect as connectOn, type MqttClient } from "../../firmware/session/mqtt";
import type { ClientOptions } from "../../firmware/session/options";
import { nodePlatform, type NodePlatformOptions } from "../../firmware/targets/node/platform";

export type NodeClientOptions = ClientOptions & NodePlatformOptions;

export function connect(options: NodeClientOptions): MqttClient {
  const o = options.protocolVersion === undefined ? { ...options, protocolVersion: 5 } : options;
  const c = connectOn(nodePlatform(o), o);
  if ("code" in c) throw Object.assign(new Error(`${c.code}: ${c.message}`), { code: c.code });
  return c;
}
