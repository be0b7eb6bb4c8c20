import { CodecError } from "./constants";

/*
 * Names and one-line explanations of codec errors, as switch statements rather than tables: on
 * a board whose code runs from flash (Espruino Storage, NodeMCU LFS) a string literal in code
 * costs RAM only while it is in use, where a table of strings is built in RAM at load.
 */

/** The stable name of a codec error code ("invalid-qos"); accepts `-code` as encoders return it. */
export function codecErrorName(code: number): string {
  switch (code < 0 ? -code : code) {
    case 0: return "ok";
    case 1: return "buffer-too-short";
    case 2: return "bad-remaining-length";
    case 3: return "reserved-type";
    case 4: return "invalid-flags";
    case 5: return "invalid-qos";
    case 6: return "truncated";
    case 7: return "packet-too-large";
    case 8: return "invalid-utf8";
    case 9: return "null-character";
    case 10: return "wildcard-in-topic";
    case 11: return "empty-topic";
    case 12: return "zero-packet-id";
    case 13: return "bad-length";
    case 14: return "unexpected-type";
    case 15: return "bad-return-code";
    case 16: return "bad-connack-flags";
    case 17: return "string-too-long";
    case 18: return "invalid-filter";
    case 19: return "invalid-packet-id";
    case 20: return "empty-client-id";
    case 21: return "password-without-username";
    case 22: return "invalid-keepalive";
    case 23: return "no-filters";
    default: return "unknown";
  }
}

/** What the error means and, where there is one, the fix. */
export function codecErrorMessage(code: number): string {
  switch (code < 0 ? -code : code) {
    case 0: return "no error";
    case 1: return "the packet does not fit in the output buffer: raise the buffer size or send less";
    case 2: return "remaining length uses a 5th byte (MQTT-2.2.3)";
    case 3: return "packet type 0 or 15 is reserved (MQTT-2.2.1)";
    case 4: return "fixed-header flags are wrong for this packet type (MQTT-2.2.2)";
    case 5: return "QoS 3 is not a QoS (MQTT-3.3.1-4)";
    case 6: return "a field runs past the end of the packet";
    case 7: return "packet larger than the receive buffer: raise the maximum packet size";
    case 8: return "string is not well-formed UTF-8 (MQTT-1.5.3-1)";
    case 9: return "string contains U+0000 (MQTT-1.5.3-2)";
    case 10: return "topic names cannot contain + or # (MQTT-3.3.2-2)";
    case 11: return "topic names and filters cannot be empty (MQTT-4.7.3-1)";
    case 12: return "packet identifier 0 is not allowed (MQTT-2.3.1-1)";
    case 13: return "wrong remaining length for this packet type";
    case 14: return "a client never receives this packet type";
    case 15: return "return code not defined by MQTT 3.1.1";
    case 16: return "CONNACK reserved bits are set (MQTT-3.2.2-1)";
    case 17: return "string longer than 65,535 bytes (MQTT-1.5.3)";
    case 18: return "invalid topic filter: + and # must fill a whole level, # must be last (MQTT-4.7.1)";
    case 19: return "packet identifier must be 1..65535";
    case 20: return "an empty client id needs clean session on (MQTT-3.1.3-7)";
    case 21: return "a password needs a user name (MQTT-3.1.2-22)";
    case 22: return "keepalive must be 0..65535 seconds";
    case 23: return "SUBSCRIBE and UNSUBSCRIBE need at least one filter (MQTT-3.8.3-3)";
    default: return "unknown codec error";
  }
}

/**
 * The last CodecError. Move it when adding a code: test/codec-node.test.ts then checks that every
 * code up to it has a name and a message, and that the switches end there.
 */
export const LAST_CODEC_ERROR: number = CodecError.NoFilters;
