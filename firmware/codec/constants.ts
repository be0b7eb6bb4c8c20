/** MQTT 3.1.1 control packet types (§2.2.1). */
export const enum PacketType {
  Connect = 1,
  Connack = 2,
  Publish = 3,
  Puback = 4,
  Pubrec = 5,
  Pubrel = 6,
  Pubcomp = 7,
  Subscribe = 8,
  Suback = 9,
  Unsubscribe = 10,
  Unsuback = 11,
  Pingreq = 12,
  Pingresp = 13,
  Disconnect = 14,
  /** MQTT 5.0 only (§3.15); type 15 is reserved at 3.1.1. */
  Auth = 15,
}

/**
 * Codec errors. Encoders return `-code`; the decoder sets `error = code` and `status = Error`.
 * Names and explanations: ./errors.ts.
 */
export const enum CodecError {
  BufferTooShort = 1,
  BadRemainingLength = 2,
  ReservedType = 3,
  InvalidFlags = 4,
  InvalidQos = 5,
  Truncated = 6,
  PacketTooLarge = 7,
  InvalidUtf8 = 8,
  NullCharacter = 9,
  WildcardInTopic = 10,
  EmptyTopic = 11,
  ZeroPacketId = 12,
  BadLength = 13,
  UnexpectedType = 14,
  BadReturnCode = 15,
  BadConnackFlags = 16,
  StringTooLong = 17,
  InvalidFilter = 18,
  InvalidPacketId = 19,
  EmptyClientId = 20,
  PasswordWithoutUsername = 21,
  InvalidKeepalive = 22,
  NoFilters = 23,
  // MQTT 5.0 (§2.2.2, §2.4): properties and reason codes
  UnknownProperty = 24,
  PropertyNotAllowed = 25,
  DuplicateProperty = 26,
  BadPropertyValue = 27,
  BadPropertyLength = 28,
  BadReasonCode = 29,
}

/** The largest remaining length MQTT can express (§2.2.3). */
export const MAX_REMAINING_LENGTH = 268435455;
/** The longest UTF-8 string field (§1.5.3). */
export const MAX_STRING = 65535;

/** Decoder status after `push`. */
export const enum Status {
  /** Every byte given was consumed; no packet is complete yet. */
  NeedMore = 0,
  /** A packet is complete: read its fields before the next push. */
  Packet = 1,
  /** A PUBLISH larger than the receive buffer was skipped; its header fields are readable. */
  Oversize = 2,
  /** The stream is malformed: `error` says why; close the connection. */
  Error = 3,
}
