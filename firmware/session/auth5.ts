import { PacketType } from "../codec/constants";
import type { Decoder } from "../codec/decoder";
import { Prop } from "../codec/mqtt5";
import * as m5 from "../codec/mqtt5";
import type { Out } from "../port/bytes";
import type { PetrelError } from "../port/log";
import { port } from "../port/port";
import { fail } from "./errors";
import type { ClientOptions } from "./options";
import type { Session5 } from "./session5";

// Enhanced authentication at MQTT 5.0 (§4.12), behind the `auth` feature: CONNECT names an
// Authentication Method (with its first data); the broker may answer with AUTH, Continue
// authentication (0x18), as many times as the method takes, and the program's onAuth answers each
// step, until CONNACK. A board whose profile leaves the feature out carries none of this (and an
// AUTH from a broker stays a protocol error there). Re-authentication (AUTH 0x19 from the client
// on a live connection) is not offered.

/** Steps a broker may ask for on one connection before the client gives up: a bound, not a method's need. */
const MAX_STEPS = 16;

/**
 * Checks the authentication options and keeps them in `c5` (nothing kept when there is no
 * authMethod: a client without enhanced authentication carries no field for it). An error value,
 * or undefined.
 */
export function settleAuth(o: ClientOptions, c5: Session5 | undefined): PetrelError | undefined {
  const method = o.authMethod;
  if (method === undefined) {
    if (o.authData !== undefined || o.onAuth !== undefined) return fail("bad-option", "authData and onAuth need authMethod; fix: set authMethod, the broker's name for the method (e.g. SCRAM-SHA-1)");
    return undefined;
  }
  if (c5 === undefined) return fail("bad-option", "enhanced authentication (authMethod) is MQTT 5.0's; fix: set protocolVersion 5");
  if (typeof method !== "string" || method === "") return fail("bad-option", "authMethod must be the method's name (a non-empty string); fix: set it as the broker names it");
  c5.authMethod = method;
  c5.authData = o.authData;
  c5.onAuth = o.onAuth;
  c5.authSteps = 0;
  return undefined;
}

/**
 * An AUTH from the broker before CONNACK: Continue authentication (0x18) with this client's
 * method. Answers with AUTH 0x18 and what onAuth returns for its data, written into `o` (the
 * caller sends it); or returns the error that ends the attempt: another method or reason code
 * (a protocol error, MQTT-4.12.0-2 / -3), no answer from onAuth, or more than 16 steps.
 */
export function authStep(c5: Session5, d: Decoder, o: Out, cap: number): PetrelError | undefined {
  const method = c5.authMethod as string;
  const data = d.data;
  const from = m5.propsOf(d);
  const end = m5.propsEndOf(d);
  const at = m5.findProp(data, from, end, Prop.AuthMethod);
  if (m5.reasonOf(d) !== 0x18 || at < 0 || m5.textAt(data, at) !== method) {
    return fail("protocol-error", `the broker sent AUTH that is not a Continue authentication step of this client's method, ${method} (MQTT-4.12.0-2, -3)`);
  }
  const steps = (c5.authSteps as number) + 1;
  c5.authSteps = steps;
  if (steps > MAX_STEPS) return fail("auth-failed", `the broker asked for more than ${MAX_STEPS} steps of ${method} authentication; fix: check the method's settings on the broker and in onAuth`);
  const v = m5.findProp(data, from, end, Prop.AuthData);
  const given = v >= 0 ? port.bytes.wireFrom(data, v + 2, v + 2 + m5.u16At(data, v)) : undefined;
  const answer = c5.onAuth !== undefined ? c5.onAuth(given, method) : undefined;
  if (answer === undefined) return fail("auth-failed", `the broker asked for step ${steps} of ${method} authentication and onAuth gave no answer; fix: answer each step in onAuth`);
  if (m5.encodeReason5(o, cap, PacketType.Auth, 0x18, { authMethod: method, authData: answer }) < 0) {
    o.discard();
    return fail("auth-failed", `onAuth's answer to step ${steps} of ${method} authentication does not fit in an AUTH packet (maxPacket ${cap}, 65535 bytes of data); fix: a shorter answer, or raise maxPacket`);
  }
  return undefined;
}
