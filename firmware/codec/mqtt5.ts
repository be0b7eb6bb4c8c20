import type { Bytes, Out, Wire } from "../port/bytes";
import { port } from "../port/port";
import { CodecError, MAX_STRING, PacketType } from "./constants";
import type { Decoder } from "./decoder";
import { field, fieldLength, header, payloadSize, remainingLengthSize, room, u16, validId, validQos, writePayload, writeRemainingLength,
  type ConnectOptions, type Payload } from "./encode";
import { checkFilterShape, checkTopicShape } from "./topic";
import { checkUtf8 } from "./utf8";

// MQTT 5.0 (protocol level 5) for what a client sends and receives: properties, reason codes,
// and the packets that differ from 3.1.1. One module, so that a NodeMCU board's LFS image (at
// most 50 modules) gains one, and only boards whose profile has the `mqtt5` feature carry it.
// Three parts: properties; the decoder's 5.0 checks and readers; the 5.0 encoders.

// ---- Properties (§2.2.2) ----

/**
 * MQTT 5.0 properties (§2.2.2): checked where they lie in a received packet and found there on
 * demand (nothing is allocated per packet), and measured and written for what a client sends.
 *
 * A property block is a variable byte integer (its length) and then properties, each an
 * identifier and a value of the identifier's type. Values above 2^31 - 1 (four-byte integers)
 * are read as -1 and written from -1 as 0xFFFFFFFF: every target keeps integers in 32 bits
 * (NodeMCU's Lua 5.3), and the only such value a client meets in practice is "never" (session
 * and message expiry).
 */

/** Packets a property may be in (§2.2.2.2, Table 2-4): one bit each. */
export const enum PropKind {
  Connect = 1,
  Connack = 2,
  Publish = 4,
  Will = 8,
  /** PUBACK, PUBREC, PUBREL, PUBCOMP */
  Ack = 16,
  Subscribe = 32,
  Suback = 64,
  Unsubscribe = 128,
  Unsuback = 256,
  Disconnect = 512,
  Auth = 1024,
}

/** Value types. */
export const enum PropType {
  Byte = 1,
  U16 = 2,
  U32 = 3,
  Varint = 4,
  Text = 5,
  Binary = 6,
  Pair = 7,
}

/** Property identifiers (§2.2.2.2). */
export const enum Prop {
  PayloadFormat = 0x01,
  MessageExpiry = 0x02,
  ContentType = 0x03,
  ResponseTopic = 0x08,
  CorrelationData = 0x09,
  SubscriptionId = 0x0b,
  SessionExpiry = 0x11,
  AssignedClientId = 0x12,
  ServerKeepAlive = 0x13,
  AuthMethod = 0x15,
  AuthData = 0x16,
  RequestProblemInfo = 0x17,
  WillDelay = 0x18,
  RequestResponseInfo = 0x19,
  ResponseInfo = 0x1a,
  ServerReference = 0x1c,
  ReasonString = 0x1f,
  ReceiveMaximum = 0x21,
  TopicAliasMaximum = 0x22,
  TopicAlias = 0x23,
  MaximumQos = 0x24,
  RetainAvailable = 0x25,
  UserProperty = 0x26,
  MaximumPacketSize = 0x27,
  WildcardAvailable = 0x28,
  SubscriptionIdAvailable = 0x29,
  SharedAvailable = 0x2a,
}

/** A property's type * 2048 + the packets it may be in (PropKind bits), or -1 for an unknown identifier. */
export function propInfo(id: number): number {
  // type * 2048 + PropKind bits, as literals (a switch costs several times the code on Lua)
  if (id === Prop.PayloadFormat) return 2060; // Byte: Publish, Will
  if (id === Prop.MessageExpiry) return 6156; // U32: Publish, Will
  if (id === Prop.ContentType) return 10252; // Text: Publish, Will
  if (id === Prop.ResponseTopic) return 10252; // Text: Publish, Will
  if (id === Prop.CorrelationData) return 12300; // Binary: Publish, Will
  if (id === Prop.SubscriptionId) return 8228; // Varint: Publish, Subscribe
  if (id === Prop.SessionExpiry) return 6659; // U32: Connect, Connack, Disconnect
  if (id === Prop.AssignedClientId) return 10242; // Text: Connack
  if (id === Prop.ServerKeepAlive) return 4098; // U16: Connack
  if (id === Prop.AuthMethod) return 11267; // Text: Connect, Connack, Auth
  if (id === Prop.AuthData) return 13315; // Binary: Connect, Connack, Auth
  if (id === Prop.RequestProblemInfo) return 2049; // Byte: Connect
  if (id === Prop.WillDelay) return 6152; // U32: Will
  if (id === Prop.RequestResponseInfo) return 2049; // Byte: Connect
  if (id === Prop.ResponseInfo) return 10242; // Text: Connack
  if (id === Prop.ServerReference) return 10754; // Text: Connack, Disconnect
  if (id === Prop.ReasonString) return 12114; // Text: Connack, Ack, Suback, Unsuback, Disconnect, Auth
  if (id === Prop.ReceiveMaximum) return 4099; // U16: Connect, Connack
  if (id === Prop.TopicAliasMaximum) return 4099; // U16: Connect, Connack
  if (id === Prop.TopicAlias) return 4100; // U16: Publish
  if (id === Prop.MaximumQos) return 2050; // Byte: Connack
  if (id === Prop.RetainAvailable) return 2050; // Byte: Connack
  if (id === Prop.UserProperty) return 16383; // Pair: 2047
  if (id === Prop.MaximumPacketSize) return 6147; // U32: Connect, Connack
  if (id === Prop.WildcardAvailable) return 2050; // Byte: Connack
  if (id === Prop.SubscriptionIdAvailable) return 2050; // Byte: Connack
  if (id === Prop.SharedAvailable) return 2050; // Byte: Connack
  return -1;
}

/**
 * The variable byte integer at data[at..) (§1.5.5), read no further than `end`; it takes
 * remainingLengthSize(value) bytes. -1 when it runs past `end`, takes a fifth byte, or is not in its
 * shortest form (MQTT-1.5.5-1).
 */
export function varintAt(data: Bytes, at: number, end: number): number {
  let v = 0;
  let mult = 1;
  for (let k = 0; k < 4; k++) {
    if (at + k >= end) return -1;
    const b = data[at + k];
    v = v + (b % 128) * mult;
    if (b < 128) {
      // the shortest form: no trailing zero byte after the first
      if (k > 0 && b === 0) return -1;
      return v;
    }
    mult = mult * 128;
  }
  return -1;
}

/** The two-byte integer at data[at]. */
export function u16At(data: Bytes, at: number): number {
  return data[at] * 256 + data[at + 1];
}

/** The four-byte integer at data[at], or -1 when it is above 2^31 - 1. */
export function u32At(data: Bytes, at: number): number {
  const b0 = data[at];
  if (b0 >= 128) return -1;
  return ((b0 * 256 + data[at + 1]) * 256 + data[at + 2]) * 256 + data[at + 3];
}

/** The text of a string value (a two-byte length and its bytes) at data[at]. Allocates the string. */
export function textAt(data: Bytes, at: number): string {
  return port.bytes.textFrom(data, at + 2, at + 2 + u16At(data, at));
}

/** Bytes a value of `type` at data[at..end) takes, or -CodecError when it runs past `end` or is malformed. */
function valueSize(data: Bytes, at: number, end: number, type: number): number {
  if (type === PropType.Byte) return at + 1 <= end ? 1 : -CodecError.Truncated;
  if (type === PropType.U16) return at + 2 <= end ? 2 : -CodecError.Truncated;
  if (type === PropType.U32) return at + 4 <= end ? 4 : -CodecError.Truncated;
  if (type === PropType.Varint) {
    const v = varintAt(data, at, end);
    return v < 0 ? -CodecError.BadPropertyLength : remainingLengthSize(v);
  }
  if (at + 2 > end) return -CodecError.Truncated;
  const n = 2 + u16At(data, at);
  if (at + n > end) return -CodecError.Truncated;
  if (type === PropType.Binary) return n;
  const bad = checkUtf8(data, at + 2, at + n);
  if (bad !== 0) return -bad;
  if (type === PropType.Text) return n;
  // a pair: name, then value
  const m = valueSize(data, at + n, end, PropType.Text);
  return m < 0 ? m : n + m;
}

/** 0 when the value of property `id` at data[at] is one the spec allows, else CodecError.BadPropertyValue. */
function valueOk(data: Bytes, at: number, id: number): number {
  // byte values that are 0 or 1 (a Maximum QoS of 2 is sent by leaving the property out)
  if (id === Prop.PayloadFormat || id === Prop.RequestProblemInfo || id === Prop.RequestResponseInfo || id === Prop.MaximumQos ||
    id === Prop.RetainAvailable || id === Prop.WildcardAvailable || id === Prop.SubscriptionIdAvailable || id === Prop.SharedAvailable) {
    return data[at] <= 1 ? 0 : CodecError.BadPropertyValue;
  }
  // two-byte and four-byte values that may not be 0
  if (id === Prop.ReceiveMaximum || id === Prop.TopicAlias) return u16At(data, at) > 0 ? 0 : CodecError.BadPropertyValue;
  if (id === Prop.MaximumPacketSize) return u32At(data, at) !== 0 ? 0 : CodecError.BadPropertyValue;
  if (id === Prop.SubscriptionId) return varintAt(data, at, at + 4) > 0 ? 0 : CodecError.BadPropertyValue;
  return 0;
}

/**
 * Checks the property block data[start..end) (the properties, after their length) of a packet of
 * `kind`: every identifier known and allowed there, no property twice (User Property may repeat,
 * and Subscription Identifier in a PUBLISH), every value whole and allowed. 0 or a CodecError.
 */
export function checkProps(data: Bytes, start: number, end: number, kind: number): number {
  // identifiers seen: 1-21 in lo, 22-42 in hi, one bit each
  let lo = 0;
  let hi = 0;
  let at = start;
  while (at < end) {
    const id = data[at];
    const info = propInfo(id);
    if (info < 0) return CodecError.UnknownProperty;
    if (port.ints.idiv(info % 2048, kind) % 2 === 0) return CodecError.PropertyNotAllowed;
    if (id !== Prop.UserProperty && !(id === Prop.SubscriptionId && kind === PropKind.Publish)) {
      let bit = 1;
      for (let k = id <= 21 ? id - 1 : id - 22; k > 0; k--) bit = bit * 2;
      const seen = port.ints.idiv(id <= 21 ? lo : hi, bit) % 2;
      if (seen === 1) return CodecError.DuplicateProperty;
      if (id <= 21) lo = lo + bit;
      else hi = hi + bit;
    }
    const n = valueSize(data, at + 1, end, port.ints.idiv(info, 2048));
    if (n < 0) return -n;
    const bad = valueOk(data, at + 1, id);
    if (bad !== 0) return bad;
    at = at + 1 + n;
  }
  return 0;
}

/**
 * Where the value of the first property `id` at or after data[from] lies, in a block that ends
 * at `end` and has passed checkProps; -1 when there is none. For a repeated property (User
 * Property, Subscription Identifier), call again from just after the value found.
 */
export function findProp(data: Bytes, from: number, end: number, id: number): number {
  let at = from;
  while (at < end) {
    const here = data[at];
    // never reached for a checked block: an unknown id stops the search
    const info = propInfo(here);
    if (info < 0) return -1;
    if (here === id) return at + 1;
    at = at + 1 + valueSize(data, at + 1, end, port.ints.idiv(info, 2048));
  }
  return -1;
}

/**
 * Where the value after the one at data[at] begins: for walking repeated properties with
 * findProp(data, afterValue(data, at, end, id), end, id).
 */
export function afterValue(data: Bytes, at: number, end: number, id: number): number {
  return at + valueSize(data, at, end, port.ints.idiv(propInfo(id), 2048));
}

/**
 * What a client sends as properties: each field is one property, left out when undefined.
 * Binary values (correlation data, authentication data) are the runtime's text, sent byte for
 * byte, or a Wire (its bytes exactly, on Node too). Four-byte values are 0..2^31 - 1, or -1 for
 * 0xFFFFFFFF.
 */
export interface Props5 {
  payloadFormat?: number;
  messageExpiry?: number;
  contentType?: string;
  responseTopic?: string;
  correlationData?: string | Wire;
  subscriptionId?: number;
  sessionExpiry?: number;
  authMethod?: string;
  authData?: string | Wire;
  requestProblemInfo?: number;
  willDelay?: number;
  requestResponseInfo?: number;
  reasonString?: string;
  receiveMaximum?: number;
  topicAliasMaximum?: number;
  topicAlias?: number;
  maximumPacketSize?: number;
  /** Name and value pairs, flattened: [name1, value1, name2, value2, ...]. */
  userProperties?: string[];
}

/** The field of `p` that carries property `id`, or undefined (User Property is apart). */
function propField(p: Props5, id: number): number | string | Wire | undefined {
  if (id === Prop.PayloadFormat) return p.payloadFormat;
  if (id === Prop.MessageExpiry) return p.messageExpiry;
  if (id === Prop.ContentType) return p.contentType;
  if (id === Prop.ResponseTopic) return p.responseTopic;
  if (id === Prop.CorrelationData) return p.correlationData;
  if (id === Prop.SubscriptionId) return p.subscriptionId;
  if (id === Prop.SessionExpiry) return p.sessionExpiry;
  if (id === Prop.AuthMethod) return p.authMethod;
  if (id === Prop.AuthData) return p.authData;
  if (id === Prop.RequestProblemInfo) return p.requestProblemInfo;
  if (id === Prop.WillDelay) return p.willDelay;
  if (id === Prop.RequestResponseInfo) return p.requestResponseInfo;
  if (id === Prop.ReasonString) return p.reasonString;
  if (id === Prop.ReceiveMaximum) return p.receiveMaximum;
  if (id === Prop.TopicAliasMaximum) return p.topicAliasMaximum;
  if (id === Prop.TopicAlias) return p.topicAlias;
  if (id === Prop.MaximumPacketSize) return p.maximumPacketSize;
  return undefined;
}

/** Bytes property `id` with value `v` takes after its identifier, or -CodecError. */
function sendSize(id: number, v: number | string | Wire): number {
  const type = port.ints.idiv(propInfo(id), 2048);
  // binary data as a Wire (a Buffer on Node; a string, so the branch below, elsewhere)
  if (typeof v === "object") {
    const n = port.bytes.wireLength(v as Wire);
    return type !== PropType.Binary ? -CodecError.BadPropertyValue : n > MAX_STRING ? -CodecError.StringTooLong : 2 + n;
  }
  if (typeof v === "string") {
    if (type !== PropType.Text && type !== PropType.Binary) return -CodecError.BadPropertyValue;
    const n = fieldLength(v, type === PropType.Binary);
    return n < 0 ? n : 2 + n;
  }
  if (typeof v !== "number") return -CodecError.BadPropertyValue;
  // integers only, each type's range (0 not allowed where the spec gives it no meaning)
  if (v % 1 !== 0) return -CodecError.BadPropertyValue;
  const lo = type === PropType.Varint || (type === PropType.U16 && id !== Prop.TopicAliasMaximum) || id === Prop.MaximumPacketSize ? 1 : 0;
  const hi = type === PropType.Byte ? 1 : type === PropType.U16 ? 65535 : type === PropType.U32 ? 2147483647 : 268435455;
  if (!(v >= lo && v <= hi) && !(type === PropType.U32 && v === -1)) return -CodecError.BadPropertyValue;
  if (type === PropType.Byte) return 1;
  if (type === PropType.U16) return 2;
  if (type === PropType.U32) return 4;
  if (type === PropType.Varint) return v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : 4;
  return -CodecError.BadPropertyValue;
}

/**
 * Bytes the properties `p` take in a packet of `kind`, without their length field; or
 * -CodecError when one may not be in that packet (PropertyNotAllowed) or its value is wrong.
 */
export function propsSize(p: Props5 | undefined, kind: number): number {
  if (p === undefined) return 0;
  let n = 0;
  for (let id = 1; id <= Prop.MaximumPacketSize; id++) {
    const v = propField(p, id);
    if (v !== undefined) {
      if (port.ints.idiv(propInfo(id) % 2048, kind) % 2 === 0) return -CodecError.PropertyNotAllowed;
      const m = sendSize(id, v);
      if (m < 0) return m;
      n = n + 1 + m;
    }
  }
  const u = p.userProperties;
  if (u !== undefined) {
    if (u.length % 2 !== 0) return -CodecError.BadPropertyValue;
    for (let k = 0; k < u.length; k++) {
      const m = fieldLength(u[k], false);
      if (m < 0) return m;
      n = n + (k % 2 === 0 ? 3 : 2) + m;
    }
  }
  return n;
}

/** Writes the property block of `p`: its length `size` (from propsSize), then each property. */
export function putProps(o: Out, p: Props5 | undefined, size: number): void {
  writeRemainingLength(o, size);
  if (p === undefined) return;
  for (let id = 1; id <= Prop.MaximumPacketSize; id++) {
    const v = propField(p, id);
    if (v === undefined) continue;
    o.byte(id);
    if (typeof v === "object") {
      const n = port.bytes.wireLength(v as Wire);
      u16(o, n);
      o.copy(port.bytes.bytesOf(v as Wire), 0, n);
      continue;
    }
    if (typeof v === "string") {
      field(o, v, port.bytes.textLength(v));
      continue;
    }
    const type = port.ints.idiv(propInfo(id), 2048);
    if (type === PropType.Byte) o.byte(v);
    else if (type === PropType.U16) u16(o, v);
    else if (type === PropType.Varint) writeRemainingLength(o, v);
    else if (v === -1) {
      o.byte(255);
      o.byte(255);
      o.byte(255);
      o.byte(255);
    } else {
      u16(o, port.ints.idiv(v, 65536));
      u16(o, v % 65536);
    }
  }
  const u = p.userProperties;
  if (u === undefined) return;
  for (let k = 0; k < u.length; k++) {
    if (k % 2 === 0) o.byte(Prop.UserProperty);
    field(o, u[k], port.bytes.textLength(u[k]));
  }
}


/** The name and explanation of MQTT 5.0's codec errors (errors.ts takes the 3.1.1 ones). */
export function codecError5(code: number): string {
  if (code === CodecError.UnknownProperty) return "unknown-property: a property identifier MQTT 5.0 does not define (MQTT 5.0 section 2.2.2.2)";
  if (code === CodecError.PropertyNotAllowed) return "property-not-allowed: a property this packet type may not carry (MQTT 5.0 section 2.2.2.2)";
  if (code === CodecError.DuplicateProperty) return "duplicate-property: a property that may appear once appears twice (MQTT 5.0 section 2.2.2.2)";
  if (code === CodecError.BadPropertyValue) return "bad-property-value: a property's value is out of its range (MQTT 5.0 section 3)";
  if (code === CodecError.BadPropertyLength) return "bad-property-length: a property length or variable byte integer is malformed or runs past the packet (MQTT 5.0 section 1.5.5)";
  if (code === CodecError.BadReasonCode) return "bad-reason-code: a reason code this packet type does not define (MQTT 5.0 section 2.4)";
  return "unknown: unknown codec error";
}

// ---- Receiving at 5.0: the decoder's checks and readers ----

/**
 * What the decoder checks and reads differently at MQTT 5.0 (protocol level 5): every packet a
 * client receives may carry a reason code and properties, and DISCONNECT and AUTH come from the
 * broker too. The decoder calls these when fed with `v5`; the fields it sets are the same as at
 * 3.1.1 (a PUBLISH's payload starts after its properties), and the rest is read from the packet
 * where it lies with reasonOf and propsOf.
 */

/** Type, flags and length checks that need no body, at 5.0 (§2.1.3, §3.x.1). 0 or a CodecError. */
export function header5(t: number, f: number, r: number, capacity: number): number {
  if (t === 0) return CodecError.ReservedType;
  if (t === PacketType.Publish) {
    const qos = port.ints.idiv(f, 2) % 4;
    if (qos === 3) return CodecError.InvalidQos;
    // topic length, packet id, property length
    return r < (qos > 0 ? 5 : 3) ? CodecError.Truncated : 0;
  }
  if (t === PacketType.Connect || t === PacketType.Subscribe || t === PacketType.Unsubscribe || t === PacketType.Pingreq) {
    return CodecError.UnexpectedType;
  }
  if (f !== (t === PacketType.Pubrel ? 2 : 0)) return CodecError.InvalidFlags;
  let lengthOk: boolean;
  // CONNACK: flags, reason code, property length; SUBACK and UNSUBACK: packet id, property
  // length, a reason code at least; acknowledgements: a packet id at least; DISCONNECT and AUTH
  // may be empty (reason 0, no properties)
  if (t === PacketType.Connack) lengthOk = r >= 3;
  else if (t === PacketType.Pingresp) lengthOk = r === 0;
  else if (t === PacketType.Suback || t === PacketType.Unsuback) lengthOk = r >= 4;
  else if (t === PacketType.Disconnect || t === PacketType.Auth) lengthOk = true;
  else lengthOk = r >= 2;
  if (!lengthOk) return CodecError.BadLength;
  return r > capacity ? CodecError.PacketTooLarge : 0;
}

/** Whether `code` is a reason code packet type `t` may carry from a broker (§2.4, each packet's table). */
function reasonOk(t: number, code: number): boolean {
  if (code === 0) return true;
  if (t === PacketType.Connack) {
    return (code >= 0x80 && code <= 0x8a) || code === 0x8c || code === 0x90 || code === 0x95 || code === 0x97 ||
      (code >= 0x99 && code <= 0x9d) || code === 0x9f;
  }
  if (t === PacketType.Puback || t === PacketType.Pubrec) {
    return code === 0x10 || code === 0x80 || code === 0x83 || code === 0x87 || code === 0x90 || code === 0x91 || code === 0x97 || code === 0x99;
  }
  if (t === PacketType.Pubrel || t === PacketType.Pubcomp) return code === 0x92;
  if (t === PacketType.Suback) {
    return code === 0x01 || code === 0x02 || code === 0x80 || code === 0x83 || code === 0x87 || code === 0x8f || code === 0x91 ||
      code === 0x97 || code === 0x9e || code === 0xa1 || code === 0xa2;
  }
  if (t === PacketType.Unsuback) return code === 0x11 || code === 0x80 || code === 0x83 || code === 0x87 || code === 0x8f || code === 0x91;
  // every DISCONNECT code but 0x04 (the client's "with will message")
  if (t === PacketType.Disconnect) {
    return code === 0x80 || code === 0x81 || code === 0x82 || code === 0x83 || code === 0x87 || code === 0x89 ||
      (code >= 0x8b && code <= 0xa2 && code !== 0x8c && code !== 0x91 && code !== 0x92);
  }
  return t === PacketType.Auth && (code === 0x18 || code === 0x19);
}

/**
 * Where the property block of the packet in data[start..end) of type `t` begins (at its length
 * field), or -1 when the packet has none (PINGRESP; an acknowledgement, DISCONNECT or AUTH cut
 * short, which means no properties). A PUBLISH's topic and packet id are read first.
 */
function propsField(d: Decoder, t: number, start: number, end: number): number {
  if (t === PacketType.Publish) return d.topicEnd + (d.publishQos() > 0 ? 2 : 0);
  if (t === PacketType.Pingresp) return -1;
  if (t === PacketType.Connack) return start + 2;
  if (t === PacketType.Suback || t === PacketType.Unsuback) return start + 2;
  if (t === PacketType.Disconnect || t === PacketType.Auth) return end - start >= 2 ? start + 1 : -1;
  // PUBACK, PUBREC, PUBREL, PUBCOMP
  return end - start >= 4 ? start + 3 : -1;
}

/**
 * Reads a complete 5.0 body data[start..end) of type `t` into the decoder's fields (packet id;
 * a PUBLISH's topic and payload), checking its reason codes and properties. 0 or a CodecError.
 */
export function finish5(d: Decoder, data: Bytes, start: number, end: number): number {
  const t = d.type;
  if (t === PacketType.Publish) {
    const topicLen = u16At(data, start);
    const idLen = d.publishQos() > 0 ? 2 : 0;
    if (2 + topicLen + idLen + 1 > end - start) return CodecError.Truncated;
    d.topicStart = start + 2;
    d.topicEnd = start + 2 + topicLen;
    // (an empty topic is checked with the properties: it needs a Topic Alias)
    if (topicLen > 0) {
      const bad = d.checkTopicBytes(data, d.topicStart, d.topicEnd);
      if (bad !== 0) return bad;
    }
    d.packetId = 0;
    if (idLen > 0) {
      d.packetId = u16At(data, d.topicEnd);
      if (d.packetId === 0) return CodecError.ZeroPacketId;
    }
  } else if (t === PacketType.Connack) {
    // MQTT-3.2.2-1: bits 7-1 of the acknowledge flags are reserved
    if (data[start] > 1) return CodecError.BadConnackFlags;
    if (!reasonOk(t, data[start + 1])) return CodecError.BadReasonCode;
  } else if (t === PacketType.Disconnect || t === PacketType.Auth) {
    if (end > start && !reasonOk(t, data[start])) return CodecError.BadReasonCode;
  } else if (t !== PacketType.Pingresp) {
    d.packetId = u16At(data, start);
    if (d.packetId === 0) return CodecError.ZeroPacketId;
    if (t !== PacketType.Suback && t !== PacketType.Unsuback && end - start >= 3 && !reasonOk(t, data[start + 2])) return CodecError.BadReasonCode;
  }
  const at = propsField(d, t, start, end);
  if (at < 0) return 0;
  const len = varintAt(data, at, end);
  if (len < 0) return CodecError.BadPropertyLength;
  const from = at + remainingLengthSize(len);
  if (from + len > end) return CodecError.BadPropertyLength;
  // the packet's PropKind
  const kind = t === PacketType.Connack ? PropKind.Connack : t === PacketType.Publish ? PropKind.Publish : t === PacketType.Suback ? PropKind.Suback :
    t === PacketType.Unsuback ? PropKind.Unsuback : t === PacketType.Disconnect ? PropKind.Disconnect : t === PacketType.Auth ? PropKind.Auth : PropKind.Ack;
  const bad = checkProps(data, from, from + len, kind);
  if (bad !== 0) return bad;
  if (t === PacketType.Publish) {
    d.payloadStart = from + len;
    d.payloadLength = end - d.payloadStart;
    // an empty topic only with a Topic Alias (MQTT 5.0 section 3.3.2.3.4)
    if (d.topicEnd === d.topicStart && findProp(data, from, from + len, Prop.TopicAlias) < 0) return CodecError.EmptyTopic;
  } else if (t === PacketType.Suback || t === PacketType.Unsuback) {
    // one reason code per filter after the properties
    if (from + len >= end) return CodecError.BadLength;
    for (let k = from + len; k < end; k++) if (!reasonOk(t, data[k])) return CodecError.BadReasonCode;
  } else if (t === PacketType.Connack && from + len !== end) {
    return CodecError.BadLength;
  }
  return 0;
}

/**
 * The reason code of the packet the decoder holds at 5.0: a CONNACK's, an acknowledgement's
 * (0 when left out), DISCONNECT's and AUTH's (0 when empty); SUBACK's and UNSUBACK's codes
 * follow their properties, from propsEndOf(d) to the body's end.
 */
export function reasonOf(d: Decoder): number {
  const t = d.type;
  const s = d.bodyStart;
  if (t === PacketType.Connack) return d.data[s + 1];
  if (t === PacketType.Disconnect || t === PacketType.Auth) return d.remaining > 0 ? d.data[s] : 0;
  if (t >= PacketType.Puback && t <= PacketType.Pubcomp) return d.remaining > 2 ? d.data[s + 2] : 0;
  return 0;
}

/**
 * Where the properties of the packet the decoder holds begin in d.data (after their length);
 * they end at propsEndOf(d). Both equal when there are none.
 */
export function propsOf(d: Decoder): number {
  const end = d.bodyStart + d.remaining;
  const at = propsField(d, d.type, d.bodyStart, end);
  return at < 0 ? end : at + remainingLengthSize(varintAt(d.data, at, end));
}

/** Where the properties of the packet the decoder holds end (see propsOf). */
export function propsEndOf(d: Decoder): number {
  const end = d.bodyStart + d.remaining;
  const at = propsField(d, d.type, d.bodyStart, end);
  if (at < 0) return end;
  const len = varintAt(d.data, at, end);
  return at + remainingLengthSize(len) + len;
}


// ---- Sending at 5.0: the encoders ----

/**
 * MQTT 5.0 encoders for what a client sends (§3 of the 5.0 specification), as encode.ts's for
 * 3.1.1: each checks the whole packet (properties too: each one allowed in its packet and its
 * value in range), then writes it into `o` and returns its length; or returns -CodecError and
 * writes nothing.
 */

export interface Connect5Options extends ConnectOptions {
  /** CONNECT's properties (session expiry, receive maximum, maximum packet size, topic alias maximum, ...). */
  props?: Props5;
  /** The will's properties (will delay, message expiry, content type, response topic, ...). */
  willProps?: Props5;
}

/** CONNECT at protocol level 5 (§3.1). `clean` is Clean Start. */
export function encodeConnect5(o: Out, cap: number, c: Connect5Options): number {
  if (!(c.keepalive >= 0 && c.keepalive <= 65535 && c.keepalive % 1 === 0)) return -CodecError.InvalidKeepalive;
  const idLen = fieldLength(c.clientId, false);
  if (idLen < 0) return idLen;
  const props = propsSize(c.props, PropKind.Connect);
  if (props < 0) return props;
  // protocol name, level, flags, keepalive, properties; the client id
  let remaining = 10 + remainingLengthSize(props) + props + 2 + idLen;
  let flags = c.clean ? 2 : 0;
  let willTopicLen = 0;
  let willProps = 0;
  const will = c.will;
  if (will !== undefined) {
    const willQos = will.qos !== undefined ? will.qos : 0;
    if (!validQos(willQos)) return -CodecError.InvalidQos;
    const shape = checkTopicShape(will.topic);
    if (shape !== 0) return -shape;
    willTopicLen = fieldLength(will.topic, false);
    if (willTopicLen < 0) return willTopicLen;
    const willLen = payloadSize(will.payload);
    if (willLen < 0) return -CodecError.InvalidUtf8;
    if (willLen > MAX_STRING) return -CodecError.StringTooLong;
    willProps = propsSize(c.willProps, PropKind.Will);
    if (willProps < 0) return willProps;
    remaining = remaining + remainingLengthSize(willProps) + willProps + 4 + willTopicLen + willLen;
    flags = flags + 4 + willQos * 8 + (will.retain === true ? 32 : 0);
  } else if (c.willProps !== undefined) {
    return -CodecError.PropertyNotAllowed;
  }
  let userLen = 0;
  let passLen = 0;
  if (c.username !== undefined) {
    userLen = fieldLength(c.username, false);
    if (userLen < 0) return userLen;
    remaining = remaining + 2 + userLen;
    flags = flags + 128;
  }
  // at 5.0 a password may come without a user name (§3.1.2.9)
  if (c.password !== undefined) {
    passLen = fieldLength(c.password, true);
    if (passLen < 0) return passLen;
    remaining = remaining + 2 + passLen;
    flags = flags + 64;
  }
  const fits = room(cap, remaining, remaining);
  if (fits < 0) return fits;
  const n = header(o, PacketType.Connect * 16, remaining);
  u16(o, 4);
  o.byte(77);
  o.byte(81);
  o.byte(84);
  o.byte(84);
  o.byte(5);
  o.byte(flags);
  u16(o, c.keepalive);
  putProps(o, c.props, props);
  field(o, c.clientId, idLen);
  if (will !== undefined) {
    putProps(o, c.willProps, willProps);
    field(o, will.topic, willTopicLen);
    u16(o, payloadSize(will.payload));
    writePayload(o, will.payload);
  }
  if (c.username !== undefined) field(o, c.username, userLen);
  if (c.password !== undefined) field(o, c.password, passLen);
  return n;
}

/**
 * PUBLISH at 5.0 (§3.3). The topic may be empty when `props` carries a Topic Alias (the broker
 * knows the topic by it). `payload` undefined writes the headers only, for a payload of
 * `payloadLen` bytes sent from where it lies (as encodePublish).
 */
export function encodePublish5(o: Out, cap: number, topic: string, payload: Payload | undefined, qos: number,
  retain: boolean, dup: boolean, id: number, props: Props5 | undefined, payloadLen?: number): number {
  if (!validQos(qos)) return -CodecError.InvalidQos;
  if (qos > 0 && !validId(id)) return -CodecError.InvalidPacketId;
  if (qos === 0 && dup) return -CodecError.InvalidFlags;
  const len = payload !== undefined ? payloadSize(payload) : payloadLen !== undefined ? payloadLen : 0;
  if (len < 0) return -CodecError.InvalidUtf8;
  let topicLen = 0;
  if (topic.length > 0 || props === undefined || props.topicAlias === undefined) {
    const shape = checkTopicShape(topic);
    if (shape !== 0) return -shape;
    topicLen = fieldLength(topic, false);
    if (topicLen < 0) return topicLen;
  }
  if (props !== undefined && props.subscriptionId !== undefined) return -CodecError.PropertyNotAllowed;
  const p = propsSize(props, PropKind.Publish);
  if (p < 0) return p;
  const varLen = 2 + topicLen + (qos > 0 ? 2 : 0) + remainingLengthSize(p) + p;
  const remaining = varLen + len;
  const fits = room(cap, remaining, payload !== undefined ? remaining : varLen);
  if (fits < 0) return fits;
  const n = header(o, PacketType.Publish * 16 + (dup ? 8 : 0) + qos * 2 + (retain ? 1 : 0), remaining);
  u16(o, topicLen);
  if (topicLen > 0) o.putText(topic);
  if (qos > 0) u16(o, id);
  putProps(o, props, p);
  if (payload === undefined) return n - len;
  writePayload(o, payload);
  return n;
}

/**
 * PUBACK, PUBREC, PUBREL or PUBCOMP at 5.0 (§3.4-§3.7): the packet id, then the reason code and
 * the properties (reason string, user properties) when there is something to say; the shortest
 * form the spec allows otherwise (reason 0 and no properties: the id alone).
 */
export function encodeAck5(o: Out, cap: number, type: number, id: number, reason: number, props: Props5 | undefined): number {
  if (type < PacketType.Puback || type > PacketType.Pubcomp) return -CodecError.UnexpectedType;
  if (!validId(id)) return -CodecError.InvalidPacketId;
  if (!(reason >= 0 && reason <= 255 && reason % 1 === 0)) return -CodecError.BadReasonCode;
  const p = propsSize(props, PropKind.Ack);
  if (p < 0) return p;
  const remaining = p > 0 ? 3 + remainingLengthSize(p) + p : reason !== 0 ? 3 : 2;
  const fits = room(cap, remaining, remaining);
  if (fits < 0) return fits;
  const n = header(o, type * 16 + (type === PacketType.Pubrel ? 2 : 0), remaining);
  u16(o, id);
  if (remaining > 2) o.byte(reason);
  if (p > 0) putProps(o, props, p);
  return n;
}

/**
 * DISCONNECT (§3.14) or AUTH (§3.15) at 5.0: a reason code and properties, or nothing at all
 * for reason 0 without properties.
 */
export function encodeReason5(o: Out, cap: number, type: number, reason: number, props: Props5 | undefined): number {
  if (type !== PacketType.Disconnect && type !== PacketType.Auth) return -CodecError.UnexpectedType;
  if (!(reason >= 0 && reason <= 255 && reason % 1 === 0)) return -CodecError.BadReasonCode;
  const p = propsSize(props, type === PacketType.Auth ? PropKind.Auth : PropKind.Disconnect);
  if (p < 0) return p;
  const remaining = p > 0 ? 1 + remainingLengthSize(p) + p : reason !== 0 || type === PacketType.Auth ? 1 : 0;
  const fits = room(cap, remaining, remaining);
  if (fits < 0) return fits;
  const n = header(o, type * 16, remaining);
  if (remaining > 0) o.byte(reason);
  if (p > 0) putProps(o, props, p);
  return n;
}

/**
 * SUBSCRIBE at 5.0 (options per filter: QoS + 4 * No Local + 8 * Retain As Published + 16 *
 * Retain Handling, §3.8.3.1) or UNSUBSCRIBE (`options` undefined), with properties (a
 * Subscription Identifier on SUBSCRIBE, user properties).
 */
export function encodeFilters5(o: Out, cap: number, id: number, filters: string[], options: number[] | undefined, count: number,
  props: Props5 | undefined): number {
  if (count < 1) return -CodecError.NoFilters;
  if (!validId(id)) return -CodecError.InvalidPacketId;
  const p = propsSize(props, options !== undefined ? PropKind.Subscribe : PropKind.Unsubscribe);
  if (p < 0) return p;
  let remaining = 2 + remainingLengthSize(p) + p;
  for (let k = 0; k < count; k++) {
    const shape = checkFilterShape(filters[k]);
    if (shape !== 0) return -shape;
    if (options !== undefined) {
      const v = options[k];
      // bits 7-6 reserved, Retain Handling 3 is a protocol error (MQTT-3.8.3-5), QoS 3 too
      if (!(v >= 0 && v < 48 && v % 1 === 0) || !validQos(v % 4)) return -CodecError.InvalidQos;
    }
    const n = fieldLength(filters[k], false);
    if (n < 0) return n;
    remaining = remaining + (options === undefined ? 2 : 3) + n;
  }
  const fits = room(cap, remaining, remaining);
  if (fits < 0) return fits;
  const type = options === undefined ? PacketType.Unsubscribe : PacketType.Subscribe;
  const n = header(o, type * 16 + 2, remaining);
  u16(o, id);
  putProps(o, props, p);
  for (let k = 0; k < count; k++) {
    field(o, filters[k], fieldLength(filters[k], false));
    if (options !== undefined) o.byte(options[k]);
  }
  return n;
}
