import type { Bytes } from "../port/bytes";
import { port } from "../port/port";
import { CodecError, MAX_REMAINING_LENGTH, MAX_STRING, PacketType } from "./constants";
import { checkFilterShape, checkTopicShape } from "./topic";
import { checkUtf8 } from "./utf8";

/**
 * MQTT 3.1.1 encoders for what a client sends. Each writes one packet into a caller-provided
 * buffer at `off`, never past `cap`, and returns the offset after the packet, or `-CodecError`
 * when the packet is invalid or does not fit (then the buffer past `off` holds garbage).
 * Nothing is allocated. Strings are the runtime's text (see port/bytes.ts); payloads are text
 * or Bytes.
 */

/** A payload: the runtime's text (UTF-8 bytes on the wire) or a byte buffer. */
export type Payload = string | Bytes;

export interface WillOptions {
  topic: string;
  payload: Payload;
  qos: number;
  retain: boolean;
}

export interface ConnectOptions {
  clientId: string;
  clean: boolean;
  /** Seconds, 0..65535; 0 turns keepalive off. */
  keepalive: number;
  username?: string;
  /** Binary data in MQTT: sent byte for byte, not checked as UTF-8. */
  password?: string;
  will?: WillOptions;
}

/** Bytes the remaining-length field takes for `n` (§2.2.3). */
export function remainingLengthSize(n: number): number {
  return n < 128 ? 1 : n < 16384 ? 2 : n < 2097152 ? 3 : 4;
}

/** Bytes a payload takes on the wire, or -1 when text has no UTF-8 form. */
export function payloadSize(p: Payload): number {
  return typeof p === "string" ? port.bytes.textLength(p) : port.bytes.size(p);
}

/** Writes the remaining length at `off`; returns the offset after it. Caller checked the room. */
export function writeRemainingLength(buf: Bytes, off: number, n: number): number {
  let x = n;
  for (;;) {
    const digit = x % 128;
    x = port.ints.idiv(x, 128);
    // §2.2.3: the top bit of each byte says another byte follows.
    buf[off] = x > 0 ? digit + 128 : digit;
    off = off + 1;
    if (x === 0) return off;
  }
}

/** Checks room for a whole packet and writes its fixed header; returns the offset or -error. */
function header(buf: Bytes, off: number, cap: number, byte1: number, remaining: number): number {
  if (remaining > MAX_REMAINING_LENGTH) return -CodecError.PacketTooLarge;
  if (off + 1 + remainingLengthSize(remaining) + remaining > cap) return -CodecError.BufferTooShort;
  buf[off] = byte1;
  return writeRemainingLength(buf, off + 1, remaining);
}

function u16(buf: Bytes, off: number, v: number): number {
  buf[off] = port.ints.idiv(v, 256);
  buf[off + 1] = v % 256;
  return off + 2;
}

/** Writes a length-prefixed UTF-8 string of `len` bytes and checks it (§1.5.3). */
function utf8Field(buf: Bytes, off: number, s: string, len: number): number {
  const at = u16(buf, off, len);
  const end = port.bytes.writeText(buf, at, s);
  const bad = checkUtf8(buf, at, end);
  return bad === 0 ? end : -bad;
}

/** Writes a length-prefixed binary field (a password). */
function binaryField(buf: Bytes, off: number, s: string, len: number): number {
  return port.bytes.writeText(buf, u16(buf, off, len), s);
}

function writePayload(buf: Bytes, off: number, p: Payload, len: number): number {
  if (typeof p === "string") return port.bytes.writeText(buf, off, p);
  port.bytes.copy(buf, off, p, 0, len);
  return off + len;
}

/** Length of a string field, or -error when it cannot be one. */
function fieldLength(s: string): number {
  const n = port.bytes.textLength(s);
  if (n < 0) return -CodecError.InvalidUtf8;
  return n > MAX_STRING ? -CodecError.StringTooLong : n;
}

const validId = (id: number) => id >= 1 && id <= 65535 && id % 1 === 0;
const validQos = (q: number) => q === 0 || q === 1 || q === 2;

/** CONNECT (§3.1), protocol level 4. Validates the options before writing. */
export function encodeConnect(buf: Bytes, off: number, cap: number, o: ConnectOptions): number {
  if (!(o.keepalive >= 0 && o.keepalive <= 65535 && o.keepalive % 1 === 0)) return -CodecError.InvalidKeepalive;
  const idLen = fieldLength(o.clientId);
  if (idLen < 0) return idLen;
  // MQTT-3.1.3-7: an empty client id is only allowed with a clean session.
  if (idLen === 0 && !o.clean) return -CodecError.EmptyClientId;
  // MQTT-3.1.2-22: a password needs a user name.
  if (o.password !== undefined && o.username === undefined) return -CodecError.PasswordWithoutUsername;
  let remaining = 10 + 2 + idLen;
  let flags = o.clean ? 2 : 0;
  let willTopicLen = 0;
  let willLen = 0;
  const will = o.will;
  if (will !== undefined) {
    if (!validQos(will.qos)) return -CodecError.InvalidQos;
    const shape = checkTopicShape(will.topic);
    if (shape !== 0) return -shape;
    willTopicLen = fieldLength(will.topic);
    if (willTopicLen < 0) return willTopicLen;
    willLen = payloadSize(will.payload);
    if (willLen < 0) return -CodecError.InvalidUtf8;
    if (willLen > MAX_STRING) return -CodecError.StringTooLong;
    remaining = remaining + 4 + willTopicLen + willLen;
    flags = flags + 4 + will.qos * 8 + (will.retain ? 32 : 0);
  }
  let userLen = 0;
  let passLen = 0;
  if (o.username !== undefined) {
    userLen = fieldLength(o.username);
    if (userLen < 0) return userLen;
    remaining = remaining + 2 + userLen;
    flags = flags + 128;
  }
  if (o.password !== undefined) {
    passLen = port.bytes.textLength(o.password);
    if (passLen < 0) return -CodecError.InvalidUtf8;
    if (passLen > MAX_STRING) return -CodecError.StringTooLong;
    remaining = remaining + 2 + passLen;
    flags = flags + 64;
  }
  let p = header(buf, off, cap, PacketType.Connect * 16, remaining);
  if (p < 0) return p;
  // protocol name "MQTT" and level 4 (§3.1.2.1, §3.1.2.2)
  p = u16(buf, p, 4);
  buf[p] = 77;
  buf[p + 1] = 81;
  buf[p + 2] = 84;
  buf[p + 3] = 84;
  buf[p + 4] = 4;
  // connect flags and keepalive (§3.1.2.3, §3.1.2.10)
  buf[p + 5] = flags;
  p = u16(buf, p + 6, o.keepalive);
  // payload: client id, will topic and message, user name, password (§3.1.3)
  p = utf8Field(buf, p, o.clientId, idLen);
  if (p < 0) return p;
  if (will !== undefined) {
    p = utf8Field(buf, p, will.topic, willTopicLen);
    if (p < 0) return p;
    p = writePayload(buf, u16(buf, p, willLen), will.payload, willLen);
  }
  if (o.username !== undefined) {
    p = utf8Field(buf, p, o.username, userLen);
    if (p < 0) return p;
  }
  if (o.password !== undefined) p = binaryField(buf, p, o.password, passLen);
  return p;
}

/**
 * The PUBLISH fixed and variable header for a payload of `payloadLen` bytes (§3.3), so a large
 * payload can be sent from where it lies, without copying it into the packet buffer. `cap` only
 * has to hold the header.
 */
export function encodePublishHeader(buf: Bytes, off: number, cap: number, topic: string, payloadLen: number,
  qos: number, retain: boolean, dup: boolean, id: number): number {
  if (!validQos(qos)) return -CodecError.InvalidQos;
  if (qos > 0 && !validId(id)) return -CodecError.InvalidPacketId;
  // MQTT-3.3.1-2: DUP is 0 for every QoS 0 message.
  if (qos === 0 && dup) return -CodecError.InvalidFlags;
  const known = topic === checkedTopic && checkedTopicLen > 0;
  let topicLen = checkedTopicLen;
  if (!known) {
    const shape = checkTopicShape(topic);
    if (shape !== 0) return -shape;
    topicLen = fieldLength(topic);
    if (topicLen < 0) return topicLen;
  }
  const varLen = 2 + topicLen + (qos > 0 ? 2 : 0);
  const remaining = varLen + payloadLen;
  if (remaining > MAX_REMAINING_LENGTH) return -CodecError.PacketTooLarge;
  if (off + 1 + remainingLengthSize(remaining) + varLen > cap) return -CodecError.BufferTooShort;
  buf[off] = PacketType.Publish * 16 + (dup ? 8 : 0) + qos * 2 + (retain ? 1 : 0);
  let p = writeRemainingLength(buf, off + 1, remaining);
  if (known) {
    p = port.bytes.writeText(buf, u16(buf, p, topicLen), topic);
  } else {
    p = utf8Field(buf, p, topic, topicLen);
    if (p < 0) return p;
    checkedTopic = topic;
    checkedTopicLen = topicLen;
  }
  return qos > 0 ? u16(buf, p, id) : p;
}

/**
 * The last topic name that passed every check, and its byte length: sensors publish to the same
 * few topics over and over, so the checks run once per topic change, not once per message. A
 * string's bytes never change, so the result cannot go stale.
 */
let checkedTopic = "";
let checkedTopicLen = 0;

/** A whole PUBLISH: header and payload in the buffer. */
export function encodePublish(buf: Bytes, off: number, cap: number, topic: string, payload: Payload,
  qos: number, retain: boolean, dup: boolean, id: number): number {
  const len = payloadSize(payload);
  if (len < 0) return -CodecError.InvalidUtf8;
  const p = encodePublishHeader(buf, off, cap, topic, len, qos, retain, dup, id);
  if (p < 0) return p;
  if (p + len > cap) return -CodecError.BufferTooShort;
  return writePayload(buf, p, payload, len);
}

/** PUBACK, PUBREC, PUBREL or PUBCOMP for packet `id` (§3.4-§3.7). */
export function encodeAck(buf: Bytes, off: number, cap: number, type: number, id: number): number {
  if (type < PacketType.Puback || type > PacketType.Pubcomp) return -CodecError.UnexpectedType;
  if (!validId(id)) return -CodecError.InvalidPacketId;
  // MQTT-3.6.1-1: PUBREL's fixed-header flags are 0010.
  const p = header(buf, off, cap, type * 16 + (type === PacketType.Pubrel ? 2 : 0), 2);
  return p < 0 ? p : u16(buf, p, id);
}

/**
 * SUBSCRIBE (each filter followed by its requested QoS) or UNSUBSCRIBE (filters only, `qos`
 * undefined): a packet id and `count` filters. Both carry fixed-header flags 0010
 * (MQTT-3.8.1-1, MQTT-3.10.1-1) and at least one filter (MQTT-3.8.3-3, MQTT-3.10.3-2).
 */
function encodeFilterList(buf: Bytes, off: number, cap: number, type: number, id: number,
  filters: string[], qos: number[] | undefined, count: number): number {
  if (count < 1) return -CodecError.NoFilters;
  if (!validId(id)) return -CodecError.InvalidPacketId;
  const perFilter = qos === undefined ? 2 : 3;
  let remaining = 2;
  for (let k = 0; k < count; k++) {
    const shape = checkFilterShape(filters[k]);
    if (shape !== 0) return -shape;
    if (qos !== undefined && !validQos(qos[k])) return -CodecError.InvalidQos;
    const n = fieldLength(filters[k]);
    if (n < 0) return n;
    remaining = remaining + perFilter + n;
  }
  let p = header(buf, off, cap, type * 16 + 2, remaining);
  if (p < 0) return p;
  p = u16(buf, p, id);
  for (let k = 0; k < count; k++) {
    p = utf8Field(buf, p, filters[k], port.bytes.textLength(filters[k]));
    if (p < 0) return p;
    if (qos !== undefined) {
      buf[p] = qos[k];
      p = p + 1;
    }
  }
  return p;
}

/** SUBSCRIBE for `count` filters with their requested QoS (§3.8). */
export function encodeSubscribe(buf: Bytes, off: number, cap: number, id: number,
  filters: string[], qos: number[], count: number): number {
  return encodeFilterList(buf, off, cap, PacketType.Subscribe, id, filters, qos, count);
}

/** UNSUBSCRIBE for `count` filters (§3.10). */
export function encodeUnsubscribe(buf: Bytes, off: number, cap: number, id: number, filters: string[], count: number): number {
  return encodeFilterList(buf, off, cap, PacketType.Unsubscribe, id, filters, undefined, count);
}

/** PINGREQ (§3.12) or DISCONNECT (§3.14): a fixed header with no body. */
export function encodeEmpty(buf: Bytes, off: number, cap: number, type: number): number {
  if (type !== PacketType.Pingreq && type !== PacketType.Disconnect) return -CodecError.UnexpectedType;
  return header(buf, off, cap, type * 16, 0);
}
