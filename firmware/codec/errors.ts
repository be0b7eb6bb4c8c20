import { FEATURE_MQTT5 } from "../features";
import { CodecError } from "./constants";
import { codecError5 } from "./mqtt5";

/**
 * A codec error's stable name and what it means, with the fix where there is one, as one line
 * ("invalid-qos: QoS 3 is not a QoS (MQTT-3.3.1-4)"). One switch, not a table: on a board whose
 * code runs from flash (Espruino Storage, NodeMCU LFS) a string literal in code costs RAM only
 * while it is in use, where a table of strings is built in RAM at load. Accepts `-code`, as the
 * encoders return it.
 */
export function codecError(code: number): string {
  switch (code < 0 ? -code : code) {
    case 0: return "ok: no error";
    case CodecError.BufferTooShort: return "buffer-too-short: the packet does not fit in the output buffer: raise the buffer size or send less";
    case CodecError.BadRemainingLength: return "bad-remaining-length: remaining length uses a 5th byte (MQTT-2.2.3)";
    case CodecError.ReservedType: return "reserved-type: packet type 0 or 15 is reserved (MQTT-2.2.1)";
    case CodecError.InvalidFlags: return "invalid-flags: fixed-header flags are wrong for this packet type (MQTT-2.2.2)";
    case CodecError.InvalidQos: return "invalid-qos: QoS 3 is not a QoS (MQTT-3.3.1-4)";
    case CodecError.Truncated: return "truncated: a field runs past the end of the packet";
    case CodecError.PacketTooLarge: return "packet-too-large: packet larger than the receive buffer: raise the maximum packet size";
    case CodecError.InvalidUtf8: return "invalid-utf8: string is not well-formed UTF-8 (MQTT-1.5.3-1)";
    case CodecError.NullCharacter: return "null-character: string contains U+0000 (MQTT-1.5.3-2)";
    case CodecError.WildcardInTopic: return "wildcard-in-topic: topic names cannot contain + or # (MQTT-3.3.2-2)";
    case CodecError.EmptyTopic: return "empty-topic: topic names and filters cannot be empty (MQTT-4.7.3-1)";
    case CodecError.ZeroPacketId: return "zero-packet-id: packet identifier 0 is not allowed (MQTT-2.3.1-1)";
    case CodecError.BadLength: return "bad-length: wrong remaining length for this packet type";
    case CodecError.UnexpectedType: return "unexpected-type: a client never receives this packet type";
    case CodecError.BadReturnCode: return "bad-return-code: return code not defined by MQTT 3.1.1";
    case CodecError.BadConnackFlags: return "bad-connack-flags: CONNACK reserved bits are set (MQTT-3.2.2-1)";
    case CodecError.StringTooLong: return "string-too-long: string longer than 65,535 bytes (MQTT-1.5.3)";
    case CodecError.InvalidFilter: return "invalid-filter: invalid topic filter: + and # must fill a whole level, # must be last (MQTT-4.7.1)";
    case CodecError.InvalidPacketId: return "invalid-packet-id: packet identifier must be 1..65535";
    case CodecError.EmptyClientId: return "empty-client-id: an empty client id needs clean session on (MQTT-3.1.3-7)";
    case CodecError.PasswordWithoutUsername: return "password-without-username: a password needs a user name (MQTT-3.1.2-22)";
    case CodecError.InvalidKeepalive: return "invalid-keepalive: keepalive must be 0..65535 seconds";
    case CodecError.NoFilters: return "no-filters: SUBSCRIBE and UNSUBSCRIBE need at least one filter (MQTT-3.8.3-3)";
    // MQTT 5.0's codes, in the module only boards with mqtt5 carry
    default: return FEATURE_MQTT5 ? codecError5(code < 0 ? -code : code) : "unknown: unknown codec error";
  }
}

/** The stable name of a codec error code ("invalid-qos"); accepts `-code`. */
export function codecErrorName(code: number): string {
  const t = codecError(code);
  return t.substring(0, t.indexOf(":"));
}

/** What the error means and, where there is one, the fix. */
export function codecErrorMessage(code: number): string {
  const t = codecError(code);
  return t.substring(t.indexOf(":") + 2);
}

/**
 * The last CodecError. Move it when adding a code: test/codec-node.test.ts then checks that every
 * code up to it has a name and a message, and that the table ends there.
 */
export const LAST_CODEC_ERROR: number = FEATURE_MQTT5 ? CodecError.BadReasonCode : CodecError.NoFilters;
