import type { Bytes, Out } from "../port/bytes";
import { port } from "../port/port";
import { CodecError, MAX_REMAINING_LENGTH, MAX_STRING, PacketType } from "./constants";
import { checkFilterShape, checkTopicShape } from "./topic";
import { checkUtf8 } from "./utf8";

/**
 * MQTT 3.1.1 encoders for what a client sends. Each checks the whole packet first, then writes it
 * front to back into `o` (a packet writer, port/bytes.ts) and returns its length; or, when the
 * packet is invalid or longer than `cap` bytes, returns `-CodecError` and writes nothing.
 * Nothing is allocated on Node and Espruino (the writer is a fixed buffer); `o.toWire()` then
 * makes the one copy a socket keeps. Strings are the runtime's text (see port/bytes.ts);
 * payloads are text or Bytes.
 */

/** A payload: the runtime's text (UTF-8 bytes on the wire) or bytes. */
export type Payload = string | Bytes;

export interface WillOptions {
  topic: string;
  payload: Payload;
  /** [0] */
  qos?: number;
  /** [false] */
  retain?: boolean;
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
  return typeof p === "string" ? port.bytes.textLength(p) : p.length;
}

/** Writes the remaining length `n` (§2.2.3: 7 bits a byte, the top bit says another follows). */
export function writeRemainingLength(o: Out, n: number): void {
  let x = n;
  for (;;) {
    const digit = x % 128;
    x = port.ints.idiv(x, 128);
    o.byte(x > 0 ? digit + 128 : digit);
    if (x === 0) return;
  }
}

/** The fixed header, once the packet is known to fit; returns the packet's whole length. */
export function header(o: Out, byte1: number, remaining: number): number {
  o.discard();
  o.byte(byte1);
  writeRemainingLength(o, remaining);
  return o.size + remaining;
}

/**
 * 0 when a packet of `remaining` bytes after its fixed header, of which `written` are written
 * here, fits in `cap`; else -CodecError.
 */
export function room(cap: number, remaining: number, written: number): number {
  if (remaining > MAX_REMAINING_LENGTH) return -CodecError.PacketTooLarge;
  return 1 + remainingLengthSize(remaining) + written > cap ? -CodecError.BufferTooShort : 0;
}

export function u16(o: Out, v: number): void {
  o.byte(port.ints.idiv(v, 256));
  o.byte(v % 256);
}

/**
 * The byte length of a string field, or -CodecError: a text with no UTF-8 form, longer than
 * 65,535 bytes, or (unless `binary`, as a password) not well-formed UTF-8 or holding U+0000 (§1.5.3).
 */
export function fieldLength(s: string, binary: boolean): number {
  const n = port.bytes.textLength(s);
  if (n < 0) return -CodecError.InvalidUtf8;
  if (n > MAX_STRING) return -CodecError.StringTooLong;
  if (binary || n === 0) return n;
  const bad = checkUtf8(port.bytes.bytesOf(port.bytes.wireOf(s)), 0, n);
  return bad === 0 ? n : -bad;
}

/** A length-prefixed string field of `len` bytes (measured by fieldLength). */
export function field(o: Out, s: string, len: number): void {
  u16(o, len);
  o.putText(s);
}

export function writePayload(o: Out, p: Payload): void {
  if (typeof p === "string") o.putText(p);
  else o.copy(p, 0, p.length);
}

export function validId(id: number): boolean {
  return id >= 1 && id <= 65535 && id % 1 === 0;
}

export function validQos(q: number): boolean {
  return q === 0 || q === 1 || q === 2;
}

/** CONNECT (§3.1), protocol level 4. Validates the options before writing. */
export function encodeConnect(o: Out, cap: number, c: ConnectOptions): number {
  if (!(c.keepalive >= 0 && c.keepalive <= 65535 && c.keepalive % 1 === 0)) return -CodecError.InvalidKeepalive;
  const idLen = fieldLength(c.clientId, false);
  if (idLen < 0) return idLen;
  // MQTT-3.1.3-7: an empty client id is only allowed with a clean session.
  if (idLen === 0 && !c.clean) return -CodecError.EmptyClientId;
  // MQTT-3.1.2-22: a password needs a user name.
  if (c.password !== undefined && c.username === undefined) return -CodecError.PasswordWithoutUsername;
  let remaining = 10 + 2 + idLen;
  let flags = c.clean ? 2 : 0;
  let willTopicLen = 0;
  const will = c.will;
  const willQos = will !== undefined && will.qos !== undefined ? will.qos : 0;
  if (will !== undefined) {
    if (!validQos(willQos)) return -CodecError.InvalidQos;
    const shape = checkTopicShape(will.topic);
    if (shape !== 0) return -shape;
    willTopicLen = fieldLength(will.topic, false);
    if (willTopicLen < 0) return willTopicLen;
    const willLen = payloadSize(will.payload);
    if (willLen < 0) return -CodecError.InvalidUtf8;
    if (willLen > MAX_STRING) return -CodecError.StringTooLong;
    remaining = remaining + 4 + willTopicLen + willLen;
    flags = flags + 4 + willQos * 8 + (will.retain === true ? 32 : 0);
  }
  let userLen = 0;
  let passLen = 0;
  if (c.username !== undefined) {
    userLen = fieldLength(c.username, false);
    if (userLen < 0) return userLen;
    remaining = remaining + 2 + userLen;
    flags = flags + 128;
  }
  if (c.password !== undefined) {
    passLen = fieldLength(c.password, true);
    if (passLen < 0) return passLen;
    remaining = remaining + 2 + passLen;
    flags = flags + 64;
  }
  const fits = room(cap, remaining, remaining);
  if (fits < 0) return fits;
  const n = header(o, PacketType.Connect * 16, remaining);
  // protocol name "MQTT" and level 4 (§3.1.2.1, §3.1.2.2)
  u16(o, 4);
  o.byte(77);
  o.byte(81);
  o.byte(84);
  o.byte(84);
  o.byte(4);
  // connect flags and keepalive (§3.1.2.3, §3.1.2.10)
  o.byte(flags);
  u16(o, c.keepalive);
  // payload: client id, will topic and message, user name, password (§3.1.3)
  field(o, c.clientId, idLen);
  if (will !== undefined) {
    field(o, will.topic, willTopicLen);
    u16(o, payloadSize(will.payload));
    writePayload(o, will.payload);
  }
  if (c.username !== undefined) field(o, c.username, userLen);
  if (c.password !== undefined) field(o, c.password, passLen);
  return n;
}

/**
 * The last topic name that passed every check, and its byte length: sensors publish to the same
 * few topics over and over, so the checks run once per topic change, not once per message. A
 * string's bytes never change, so the result cannot go stale.
 */
let checkedTopic = "";
let checkedTopicLen = 0;

/**
 * PUBLISH (§3.3). `payload` undefined writes the fixed and variable header only, for a payload
 * of `payloadLen` bytes sent from where it lies (then `cap` only has to hold the header, and the
 * length returned is the header's).
 */
export function encodePublish(o: Out, cap: number, topic: string, payload: Payload | undefined, qos: number,
  retain: boolean, dup: boolean, id: number, payloadLen?: number): number {
  if (!validQos(qos)) return -CodecError.InvalidQos;
  if (qos > 0 && !validId(id)) return -CodecError.InvalidPacketId;
  // MQTT-3.3.1-2: DUP is 0 for every QoS 0 message.
  if (qos === 0 && dup) return -CodecError.InvalidFlags;
  const len = payload !== undefined ? payloadSize(payload) : payloadLen !== undefined ? payloadLen : 0;
  if (len < 0) return -CodecError.InvalidUtf8;
  let topicLen = checkedTopicLen;
  if (topic !== checkedTopic || topicLen === 0) {
    const shape = checkTopicShape(topic);
    if (shape !== 0) return -shape;
    topicLen = fieldLength(topic, false);
    if (topicLen < 0) return topicLen;
    checkedTopic = topic;
    checkedTopicLen = topicLen;
  }
  const varLen = 2 + topicLen + (qos > 0 ? 2 : 0);
  const remaining = varLen + len;
  const fits = room(cap, remaining, payload !== undefined ? remaining : varLen);
  if (fits < 0) return fits;
  const n = header(o, PacketType.Publish * 16 + (dup ? 8 : 0) + qos * 2 + (retain ? 1 : 0), remaining);
  field(o, topic, topicLen);
  if (qos > 0) u16(o, id);
  if (payload === undefined) return n - len;
  writePayload(o, payload);
  return n;
}

/**
 * A packet of two bytes or none after its fixed header: PUBACK, PUBREC, PUBREL or PUBCOMP for
 * packet `id` (§3.4-§3.7), or PINGREQ (§3.12) and DISCONNECT (§3.14), which take no id.
 */
export function encodeShort(o: Out, cap: number, type: number, id: number): number {
  const acks = type >= PacketType.Puback && type <= PacketType.Pubcomp;
  if (!acks && type !== PacketType.Pingreq && type !== PacketType.Disconnect) return -CodecError.UnexpectedType;
  if (acks && !validId(id)) return -CodecError.InvalidPacketId;
  const fits = room(cap, acks ? 2 : 0, acks ? 2 : 0);
  if (fits < 0) return fits;
  // MQTT-3.6.1-1: PUBREL's fixed-header flags are 0010.
  const n = header(o, type * 16 + (type === PacketType.Pubrel ? 2 : 0), acks ? 2 : 0);
  if (acks) u16(o, id);
  return n;
}

/**
 * SUBSCRIBE (each filter followed by its requested QoS, §3.8) or UNSUBSCRIBE (filters only, `qos`
 * undefined, §3.10): a packet id and `count` filters. Both carry fixed-header flags 0010
 * (MQTT-3.8.1-1, MQTT-3.10.1-1) and at least one filter (MQTT-3.8.3-3, MQTT-3.10.3-2).
 */
export function encodeFilters(o: Out, cap: number, id: number, filters: string[], qos: number[] | undefined, count: number): number {
  if (count < 1) return -CodecError.NoFilters;
  if (!validId(id)) return -CodecError.InvalidPacketId;
  let remaining = 2;
  for (let k = 0; k < count; k++) {
    const shape = checkFilterShape(filters[k]);
    if (shape !== 0) return -shape;
    if (qos !== undefined && !validQos(qos[k])) return -CodecError.InvalidQos;
    const n = fieldLength(filters[k], false);
    if (n < 0) return n;
    remaining = remaining + (qos === undefined ? 2 : 3) + n;
  }
  const fits = room(cap, remaining, remaining);
  if (fits < 0) return fits;
  const type = qos === undefined ? PacketType.Unsubscribe : PacketType.Subscribe;
  const n = header(o, type * 16 + 2, remaining);
  u16(o, id);
  for (let k = 0; k < count; k++) {
    field(o, filters[k], port.bytes.textLength(filters[k]));
    if (qos !== undefined) o.byte(qos[k]);
  }
  return n;
}
