import { CodecError } from "./constants";

/**
 * Names and one-line explanations of codec errors (index = code). Kept as two arrays of short
 * strings: they cost flash/heap on the boards, so no prose beyond what a user needs.
 */
const NAMES: string[] = ["ok", "buffer-too-short", "bad-remaining-length", "reserved-type", "invalid-flags", "invalid-qos",
  "truncated", "packet-too-large", "invalid-utf8", "null-character", "wildcard-in-topic", "empty-topic", "zero-packet-id",
  "bad-length", "unexpected-type", "bad-return-code", "bad-connack-flags", "string-too-long", "invalid-filter",
  "invalid-packet-id", "empty-client-id", "password-without-username", "invalid-keepalive", "no-filters"];

const MESSAGES: string[] = [
  "no error",
  "the packet does not fit in the output buffer: raise the buffer size or send less",
  "remaining length uses a 5th byte (MQTT-2.2.3)",
  "packet type 0 or 15 is reserved (MQTT-2.2.1)",
  "fixed-header flags are wrong for this packet type (MQTT-2.2.2)",
  "QoS 3 is not a QoS (MQTT-3.3.1-4)",
  "a field runs past the end of the packet",
  "packet larger than the receive buffer: raise the maximum packet size",
  "string is not well-formed UTF-8 (MQTT-1.5.3-1)",
  "string contains U+0000 (MQTT-1.5.3-2)",
  "topic names cannot contain + or # (MQTT-3.3.2-2)",
  "topic names and filters cannot be empty (MQTT-4.7.3-1)",
  "packet identifier 0 is not allowed (MQTT-2.3.1-1)",
  "wrong remaining length for this packet type",
  "a client never receives this packet type",
  "return code not defined by MQTT 3.1.1",
  "CONNACK reserved bits are set (MQTT-3.2.2-1)",
  "string longer than 65,535 bytes (MQTT-1.5.3)",
  "invalid topic filter: + and # must fill a whole level, # must be last (MQTT-4.7.1)",
  "packet identifier must be 1..65535",
  "an empty client id needs clean session on (MQTT-3.1.3-7)",
  "a password needs a user name (MQTT-3.1.2-22)",
  "keepalive must be 0..65535 seconds",
  "SUBSCRIBE and UNSUBSCRIBE need at least one filter (MQTT-3.8.3-3)",
];

/** The stable name of a codec error code ("invalid-qos"); accepts `-code` as encoders return it. */
export function codecErrorName(code: number): string {
  const c = code < 0 ? -code : code;
  return c < NAMES.length ? NAMES[c] : "unknown";
}

/** What the error means and, where there is one, the fix. */
export function codecErrorMessage(code: number): string {
  const c = code < 0 ? -code : code;
  return c < MESSAGES.length ? MESSAGES[c] : "unknown codec error";
}

/** Number of codec error codes (1..count-1 are errors). */
export const CODEC_ERROR_COUNT = NAMES.length;

/**
 * The last CodecError. Move it when adding a code: test/codec-node.test.ts then checks that every
 * code up to it has a name and a message, and that the tables end there.
 */
export const LAST_CODEC_ERROR: number = CodecError.NoFilters;
