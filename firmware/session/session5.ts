import { PacketType } from "../codec/constants";
import type { Decoder } from "../codec/decoder";
import { header, remainingLengthSize, writeRemainingLength, type Payload } from "../codec/encode";
import { Prop, PropType, type Props5 } from "../codec/mqtt5";
// (the rest as one local: NodeMCU loads no function with more than 50)
import * as m5 from "../codec/mqtt5";
import type { Bytes, Out, Wire } from "../port/bytes";
import type { LogSink, PetrelError } from "../port/log";
import { port } from "../port/port";
import { elapsed } from "../sched/time";
import type { Storage } from "../port/storage";
import { find } from "../port/text";
import { fail } from "./errors";
import { FEATURE_TEXTS } from "../features";
import * as reasons from "./reasons";
import type { BrokerAddress, ClientOptions, Settings } from "./options";
import type { Outbox } from "./outbox";

// The session at MQTT 5.0 (protocol level 5): what the client keeps of a 5.0 connection and the
// work that is 5.0's alone (CONNECT's properties, what CONNACK says, reason codes as errors, the
// outbox's packets between the two levels). One module behind the `mqtt5` feature: a board
// without it carries none of this, and client.ts calls here only at level 5.

/**
 * What a 5.0 client keeps: its own settings for 5.0, and what the broker's last CONNACK said
 * (its limits hold for that connection; the client refuses locally what the broker said it
 * cannot take, and keeps the last values while offline).
 */
export interface Session5 {
  /** Session Expiry Interval sent in CONNECT, seconds (-1: never expires). */
  expiry: number;
  /** Brokers (bit `2^index`) that answered a 5.0 CONNECT in 3.1.1: the client speaks 3.1.1 to them. */
  old: number;
  /** The protocol level of the current or last connection: 5, or 4 after a fallback. */
  level: number;
  /** 1 when the outbox's records are 5.0 PUBLISH packets (a record `<prefix>v` says so across reboots), else 0. */
  stored: number;
  /** The broker's Receive Maximum: QoS 1/2 PUBLISH packets it takes unacknowledged (65535 when not said). */
  recvMax: number;
  /** The broker's Maximum Packet Size (0: no limit said). */
  maxPacket: number;
  /** The broker's Maximum QoS (2 when not said). */
  maxQos: number;
  /** 1 when the broker takes retained messages, 0 when it said it does not. */
  retain: number;
  /** 1 when it takes wildcard filters, 0 when not. */
  wildcard: number;
  /** 1 when it takes shared subscriptions ($share/…), 0 when not. */
  shared: number;
  /** 1 when it takes Subscription Identifiers, 0 when not. */
  subIds: number;
  /** The broker's Server Keep Alive (seconds) for this connection, or -1 when it kept ours. */
  keepalive: number;
  /** The client id the broker assigned (we sent an empty one): sent on the next connect. */
  assigned: string | undefined;
  /** The last reason code the broker gave that was not success (CONNACK, DISCONNECT, an acknowledgement), 0 none. */
  reason: number;
  /** Its reason string, "" when it gave none. */
  said: string;
  /** Topic aliases this client may set up per connection (the topicAliases option). */
  ours: number;
  /** This connection's: the smaller of `ours` and the broker's Topic Alias Maximum (0 until CONNACK, and at 3.1.1). */
  aliasMax: number;
  /** The topics aliased on this connection: alias k + 1 is aliases[k]. */
  aliases: string[];
  /** Topic aliases the broker may set up towards this client (topicAliasesIn; our Topic Alias Maximum). */
  inMax: number;
  /** The broker's aliases on this connection: alias k + 1 is inAliases[k] (set only with inMax). */
  inAliases?: string[];
  /** Will Delay Interval sent with the will, seconds (0: none). */
  willDelay: number;
  /** The properties of the QoS 0 messages waiting offline, at their places in the client's ring. */
  q0props: (Props5 | undefined)[];
  /**
   * Outbox messages with a Message Expiry, three numbers each: packet id, when this boot first
   * had it (clock ms: at publish, or at start-up for one in storage), its expiry (s). Only those
   * with one, in no order (an entry leaves by the last taking its place: nothing grows).
   */
  ex: number[];
  /** Outbox messages dropped unsent because their Message Expiry passed. */
  expired: number;
  /** The reason code for this client's DISCONNECT when it closes for a protocol error (0: 0x82, the general one). */
  bye: number;
  /** Where the broker sent the client (Server Reference with 0x9C or 0x9D): dialled once, next. */
  moved: string | undefined;
  /** "host:port" of that server while the client dials or is connected to it, else "". */
  via: string;
  /** 5.0 CONNECTs in a row that the broker answered by closing the connection (no CONNACK). */
  hung: number;
  /** Brokers (bit `2^index`) that answered a 5.0 CONNECT with a 5.0 CONNACK: closes never make them 3.1.1. */
  spoke: number;
  /** Enhanced authentication (auth5.ts, the `auth` feature): the method; the rest set only with it. */
  authMethod?: string;
  /** Its first Authentication Data, sent in CONNECT. */
  authData?: string | Wire;
  /** Answers each step the broker asks for. */
  onAuth?: (this: void, data: Wire | undefined, method: string) => string | Wire | undefined;
  /** Steps the broker has asked for on this connection. */
  authSteps?: number;
}

/** A whole number option from `lo` to `hi` (its default `dflt` when absent), or -1 when it is not one. */
function whole(v: number | undefined, lo: number, hi: number, dflt: number): number {
  if (v === undefined) return dflt;
  // dialect-allow float-math: an integer test, not arithmetic
  return typeof v === "number" && Math.floor(v) === v && v >= lo && v <= hi ? v : -2;
}

/** Checks the 5.0 options; undefined at protocol 4 (the client keeps nothing of 5.0 then). */
export function settle5(o: ClientOptions, clean: boolean): Session5 | PetrelError | undefined {
  const v = o.protocolVersion;
  if (v === undefined || v === 4) return undefined;
  if (v !== 5) return fail("bad-option", "protocolVersion must be 4 (MQTT 3.1.1) or 5 (MQTT 5.0); fix: set it to one of them");
  const expiry = whole(o.sessionExpiry, -1, 2147483647, clean ? 0 : -1);
  if (expiry < -1) return fail("bad-option", "sessionExpiry must be a whole number of seconds from 0 to 2147483647, or -1 for never; fix: set it within that range");
  const ours = whole(o.topicAliases, 0, 255, 0);
  const theirs = whole(o.topicAliasesIn, 0, 255, 0);
  const delay = whole(o.willDelay, 0, 2147483647, 0);
  if (ours < 0 || theirs < 0 || delay < 0) return fail("bad-option", "topicAliases, topicAliasesIn (0 to 255) and willDelay (seconds) must be whole numbers; fix: set them within range");
  // the will goes when the session ends, delay or not (§3.1.3.2.2): the session must outlast it
  if (delay > 0 && (o.will === undefined || (expiry >= 0 && expiry < delay))) {
    return fail("bad-option", "willDelay needs a will and a session that outlasts it; fix: set will, clean false and sessionExpiry at least willDelay");
  }
  return { expiry: expiry, old: 0, level: 5, stored: 0, recvMax: 65535, maxPacket: 0, maxQos: 2, retain: 1, wildcard: 1, shared: 1, subIds: 1, keepalive: -1,
    assigned: undefined, reason: 0, said: "", ours: ours, aliasMax: 0, aliases: [], inMax: theirs, willDelay: delay, q0props: [],
    ex: [], expired: 0, bye: 0, moved: undefined, via: "", hung: 0, spoke: 0 };
}

/**
 * CONNECT at 5.0 from the settings: Clean Start is the clean flag, Session Expiry from it (or
 * the option), our Receive Maximum (receiveWindow: QoS 2 ids kept until PUBREL) and Maximum
 * Packet Size (maxPacket); no Topic Alias Maximum (0: the broker sends topics in full). An
 * empty client id is replaced by the one the broker assigned last time.
 */
export function connect5(o: Out, s: Settings, c5: Session5): number {
  const id = s.clientId === "" && c5.assigned !== undefined ? c5.assigned : s.clientId;
  // (enhanced authentication counts its steps per connection)
  if (c5.authSteps !== undefined) c5.authSteps = 0;
  return m5.encodeConnect5(o, s.maxPacket, {
    clientId: id, clean: s.clean, keepalive: s.keepalive, username: s.username, password: s.password, will: s.will,
    props: {
      authMethod: c5.authMethod, authData: c5.authData,
      sessionExpiry: c5.expiry !== 0 ? c5.expiry : undefined,
      receiveMaximum: s.receiveWindow < 65535 ? s.receiveWindow : undefined,
      topicAliasMaximum: c5.inMax > 0 ? c5.inMax : undefined,
      maximumPacketSize: s.maxPacket,
    },
    willProps: c5.willDelay > 0 ? { willDelay: c5.willDelay } : undefined,
  });
}

/**
 * A PUBLISH at 5.0 as it goes on this connection, given its stored form `w` (topic in full):
 * when its topic has an alias here, the topic left empty and the alias added to its
 * properties; when the table has room, the alias set up (topic and alias both, §3.3.2.3.4).
 * Written into `o` (empty, of `cap` bytes); `w` itself when no alias applies. The stored form
 * keeps the topic, as aliases last one connection.
 */
export function aliased(o: Out, cap: number, w: Wire, c5: Session5): Wire {
  const b = port.bytes.bytesOf(w);
  const len = b.length;
  // (PUBLISH only: type 3 in the first byte's high nibble)
  if (b[0] < 48 || b[0] >= 64) return w;
  const rem = m5.varintAt(b, 1, len);
  const p = 1 + remainingLengthSize(rem);
  if (rem < 0 || p + rem !== len) return w;
  const tl = b[p] * 256 + b[p + 1];
  if (tl === 0) return w;
  const topic = m5.textAt(b, p);
  const t = c5.aliases;
  let k = 0;
  while (k < t.length && t[k] !== topic) k++;
  const known = k < t.length;
  if (!known && t.length >= c5.aliasMax) return w;
  // the packet id (QoS 1 and 2), then the property block
  const idEnd = p + 2 + tl + (b[0] % 8 >= 2 ? 2 : 0);
  const props = m5.varintAt(b, idEnd, len);
  if (props < 0) return w;
  const after = idEnd + remainingLengthSize(props);
  const size = rem - (known ? tl : 0) - remainingLengthSize(props) + remainingLengthSize(props + 3) + 3;
  const total = 1 + remainingLengthSize(size) + size;
  if (total > cap || (c5.maxPacket > 0 && total > c5.maxPacket)) return w;
  if (!known) t.push(topic);
  header(o, b[0], size);
  o.byte(known ? 0 : b[p]);
  o.byte(known ? 0 : b[p + 1]);
  if (!known) o.copy(b, p + 2, p + 2 + tl);
  o.copy(b, p + 2 + tl, idEnd);
  writeRemainingLength(o, props + 3);
  o.byte(Prop.TopicAlias);
  o.byte(0);
  o.byte(k + 1);
  o.copy(b, after, len);
  return o.toWire();
}

/** Where the Message Expiry value of a stored 5.0 PUBLISH (QoS 1 or 2) lies, or -1 when it has none. */
function expiryAt(b: Bytes): number {
  const len = b.length;
  const rem = m5.varintAt(b, 1, len);
  if (rem < 0) return -1;
  const p = 1 + remainingLengthSize(rem);
  const idEnd = p + 4 + b[p] * 256 + b[p + 1];
  const n = m5.varintAt(b, idEnd, len);
  if (n < 0) return -1;
  const from = idEnd + remainingLengthSize(n);
  return from + n <= len ? m5.findProp(b, from, from + n, Prop.MessageExpiry) : -1;
}

/** Where outbox message `id`'s entry in c5.ex starts, or -1 when it has none. */
function exAt(c5: Session5, id: number): number {
  const ex = c5.ex;
  for (let i = 0; i < ex.length; i = i + 3) if (ex[i] === id) return i;
  return -1;
}

/** Forgets what noteExpiry kept of message `id` (it has left the outbox, or its id is reused). */
export function forgetExpiry(c5: Session5, id: number): void {
  const ex = c5.ex;
  const i = exAt(c5, id);
  if (i < 0) return;
  const last = ex.length - 3;
  ex[i] = ex[last];
  ex[i + 1] = ex[last + 1];
  ex[i + 2] = ex[last + 2];
  ex.pop();
  ex.pop();
  ex.pop();
}

/** Notes outbox message `id` (its stored PUBLISH `w`, at 5.0) as of `now`: its Message Expiry, if it has one. */
export function noteExpiry(c5: Session5, id: number, w: Wire, now: number): void {
  forgetExpiry(c5, id);
  const b = port.bytes.bytesOf(w);
  const at = expiryAt(b);
  // (-1: 2^31 s or more, which a board's clock cannot count: as none)
  const ttl = at >= 0 ? m5.u32At(b, at) : -1;
  if (ttl < 0) return;
  c5.ex.push(id);
  c5.ex.push(now);
  c5.ex.push(ttl);
}

/**
 * Outbox message `id` (stored as `w`) as it is about to be sent at `now`: undefined when its
 * Message Expiry has passed (the client drops it, unsent: dropExpired); else with the expiry it
 * has left (MQTT 5.0 section 3.3.2.3.3: the receiver counts from when it gets it), written into
 * `o`; or `w` itself when it has no expiry or none has passed yet.
 */
export function unexpired(c5: Session5, o: Out, w: Wire, id: number, now: number): Wire | undefined {
  const i = exAt(c5, id);
  if (i < 0) return w;
  const ttl = c5.ex[i + 2];
  const gone = port.ints.idiv(elapsed(c5.ex[i + 1], now), 1000);
  if (gone >= ttl) return undefined;
  const b = port.bytes.bytesOf(w);
  const at = expiryAt(b);
  if (gone === 0 || at < 0) return w;
  const left = ttl - gone;
  o.copy(b, 0, at);
  o.byte(port.ints.idiv(left, 16777216));
  o.byte(port.ints.idiv(left, 65536) % 256);
  o.byte(port.ints.idiv(left, 256) % 256);
  o.byte(left % 256);
  o.copy(b, at + 4, b.length);
  return o.toWire();
}

/** Message `id`, past its Message Expiry, leaves: the error its callback gets (and the count). */
export function dropExpired(c5: Session5, id: number): PetrelError {
  const i = exAt(c5, id);
  const ttl = i >= 0 ? c5.ex[i + 2] : 0;
  forgetExpiry(c5, id);
  c5.expired = c5.expired + 1;
  return fail("message-expired", `a queued message's Message Expiry (${ttl} s) passed before it could be sent, so it was dropped unsent (counted in expired); fix: a longer messageExpiry, or none for messages that must arrive late`);
}

/** PUBLISH at 5.0 with the program's properties `props`, if any (as encodePublish at 3.1.1). */
export function publish5(o: Out, cap: number, topic: string, payload: Payload, qos: number, retain: boolean, id: number, props: Props5 | undefined): number {
  return m5.encodePublish5(o, cap, topic, payload, qos, retain, false, id, props);
}

/** The number value of property `id` in data[from..end) (checked by the decoder), or `dflt` when absent. */
function num(data: Bytes, from: number, end: number, id: number, dflt: number): number {
  const at = m5.findProp(data, from, end, id);
  if (at < 0) return dflt;
  // the value's type, as the codec's property table has it
  const type = port.ints.idiv(m5.propInfo(id), 2048);
  return type === PropType.U16 ? m5.u16At(data, at) : type === PropType.U32 ? m5.u32At(data, at) : data[at];
}

/**
 * A CONNACK at 5.0: keeps what it says of the broker's limits in `c5` and returns its reason
 * code (0 accepted; 0x80 and above refused).
 */
export function connack5(c5: Session5, d: Decoder, broker: number): number {
  c5.aliasMax = 0;
  c5.aliases = [];
  if (c5.inMax > 0) c5.inAliases = [];
  const data = d.data;
  const from = m5.propsOf(d);
  const end = m5.propsEndOf(d);
  const code = data[d.bodyStart + 1];
  c5.level = 5;
  c5.hung = 0;
  c5.spoke = withBit(c5.spoke, broker);
  noteReason(c5, d, code, from, end);
  if (code >= 0x80) return code;
  c5.recvMax = num(data, from, end, Prop.ReceiveMaximum, 65535);
  const max = num(data, from, end, Prop.MaximumPacketSize, 0);
  // (above 2^31 - 1 is read as -1: no limit a board's packet could reach)
  c5.maxPacket = max > 0 ? max : 0;
  c5.maxQos = num(data, from, end, Prop.MaximumQos, 2);
  c5.retain = num(data, from, end, Prop.RetainAvailable, 1);
  c5.wildcard = num(data, from, end, Prop.WildcardAvailable, 1);
  c5.shared = num(data, from, end, Prop.SharedAvailable, 1);
  c5.subIds = num(data, from, end, Prop.SubscriptionIdAvailable, 1);
  c5.keepalive = num(data, from, end, Prop.ServerKeepAlive, -1);
  const tam = num(data, from, end, Prop.TopicAliasMaximum, 0);
  c5.aliasMax = tam < c5.ours ? tam : c5.ours;
  const at = m5.findProp(data, from, end, Prop.AssignedClientId);
  if (at >= 0) c5.assigned = m5.textAt(data, at);
  return 0;
}

/** Keeps a packet's reason code and reason string (when it is not success) for diag. */
export function noteReason(c5: Session5, d: Decoder, code: number, from: number, end: number): void {
  if (code < 0x80) return;
  c5.reason = code;
  const at = m5.findProp(d.data, from, end, Prop.ReasonString);
  c5.said = at >= 0 ? m5.textAt(d.data, at) : "";
  // Use another server (0x9C), Server moved (0x9D): where to, if it says (§4.11)
  const ref = code === 0x9c || code === 0x9d ? m5.findProp(d.data, from, end, Prop.ServerReference) : -1;
  if (ref >= 0) c5.moved = m5.textAt(d.data, ref);
}

/**
 * The broker to dial next when the last one sent the client elsewhere (c5.moved: its first
 * reference, "host", "host:port" or "[v6 address]:port"; the port and TLS of `b`, the list's
 * broker, unless it names a port); `b` itself when it did not. Used once: the list follows.
 * (`info`: the log level to say it at, passed in to keep this module's locals under NodeMCU's 50.)
 */
export function movedTo(c5: Session5, b: BrokerAddress, log: LogSink, info: number): BrokerAddress {
  const ref = c5.moved;
  c5.moved = undefined;
  c5.via = "";
  if (ref === undefined) return b;
  const sp = find(ref, " ", 0);
  const first = sp >= 0 ? ref.substring(0, sp) : ref;
  const close = find(first, "]", 0);
  let colon = find(first, ":", close >= 0 ? close : 0);
  // (a bare IPv6 address has colons and no port)
  if (close < 0 && colon >= 0 && find(first, ":", colon + 1) >= 0) colon = -1;
  let host = colon >= 0 ? first.substring(0, colon) : first;
  if (close >= 0) host = host.substring(1, close);
  let port = b.port;
  if (colon >= 0) {
    port = 0;
    for (let i = colon + 1; i < first.length; i++) {
      const c = find("0123456789", first.substring(i, i + 1), 0);
      port = c >= 0 && port < 65536 ? port * 10 + c : 65536;
    }
  }
  if (host === "" || port < 1 || port > 65535) {
    log.writeLog(info, `mqtt: the broker's Server Reference "${ref}" is not a host and port; the client goes on down its list`);
    return b;
  }
  log.writeLog(info, `mqtt: the broker sent the client to ${host}:${port} (Server Reference); dialling it once, then the list again`);
  c5.via = `${host}:${port}`;
  return { host: host, port: port, tls: b.tls };
}

/**
 * `mask` (a set of brokers, bit 2^index: `old`, `spoke`) with broker `broker`'s bit set; equal to
 * `mask` when it was set already.
 */
export function withBit(mask: number, broker: number): number {
  let m = 1;
  for (let i = 0; i < broker && i < 30; i++) m = m * 2;
  return port.ints.idiv(mask, m) % 2 === 1 ? mask : mask + m;
}

/**
 * The error a PUBACK or PUBREC at 5.0 carries (a reason code of 0x80 or more: the broker did
 * not take the message), or undefined when it took it.
 */
export function ackError(c5: Session5, d: Decoder): PetrelError | undefined {
  const code = m5.reasonOf(d);
  if (code < 0x80) return undefined;
  noteReason(c5, d, code, m5.propsOf(d), m5.propsEndOf(d));
  return reasonError(code, d.type, c5.said);
}

/**
 * What the broker did that 5.0 forbids, as the detail of a protocol error: 1 a Topic Alias
 * we did not allow (none, or beyond topicAliasesIn, or not set up), 2 more QoS 2 messages awaiting PUBREL than our Receive Maximum `n`, 3 AUTH
 * unasked.
 */
export function violation(c5: Session5, what: number, n: number): string {
  // the reason code of the DISCONNECT the client sends as it closes (goodbye)
  c5.bye = what === 1 ? 0x94 : what === 2 ? 0x93 : 0x82;
  if (what === 1) {
    return c5.inMax > 0 ? `the broker sent a Topic Alias beyond this client's Topic Alias Maximum (${c5.inMax}) or not set up on this connection (MQTT-3.3.2-9, -12)` :
      "the broker sent a Topic Alias, and this client allows none (its CONNECT has no Topic Alias Maximum; MQTT-3.3.2-10)";
  }
  if (what === 2) return `the broker sent more QoS 2 messages awaiting PUBREL than this client's Receive Maximum (${n}; MQTT-3.3.4-9)`;
  return "the broker sent AUTH, and this client asked for no enhanced authentication (MQTT-4.12.0-6)";
}

/**
 * The DISCONNECT this client sends before it closes a 5.0 connection for `reason` (MQTT 5.0
 * §4.13.1: a malformed packet 0x81; a protocol error 0x82, or the code violation() chose; "will":
 * the program's end that asks the broker to publish the will, 0x04), written
 * into `o`; its length, or 0 when the reason is not the broker's fault (nothing to say).
 */
export function goodbye(c5: Session5, o: Out, reason: string): number {
  const code = reason === "will" ? 4 : reason === "malformed-packet" ? 0x81 : reason !== "protocol-error" ? 0 : c5.bye > 0 ? c5.bye : 0x82;
  c5.bye = 0;
  return code === 0 ? 0 : m5.encodeReason5(o, 8, PacketType.Disconnect, code, undefined);
}

/** A broker answered our 5.0 CONNECT in 3.1.1 (a 2-byte CONNACK): it gets 3.1.1 from now on. The error that says so. */
export function fallback(c5: Session5, broker: number, b: BrokerAddress): PetrelError {
  c5.old = withBit(c5.old, broker);
  return fail("protocol-fallback", `the broker at ${b.host}:${b.port} answered MQTT 5.0 in 3.1.1 (it speaks 3.1.1 only); the client speaks 3.1.1 to it from the next attempt`);
}

/**
 * A 5.0 CONNECT to broker `broker` was answered by closing the connection, before any CONNACK
 * (`reason`: how it closed). A broker that speaks 3.1.1 only may do so instead of answering
 * (RabbitMQ 3.10's MQTT plugin does): the second time in a row it gets 3.1.1 from the next
 * attempt on, and the error that says so is returned; undefined before that, and always for a
 * broker that has answered a 5.0 CONNECT with a 5.0 CONNACK in this boot.
 */
export function closedAtConnect(c5: Session5, broker: number, b: BrokerAddress, reason: string): PetrelError | undefined {
  // (a broker that has answered 5.0 speaks it: its closes are the network's, or a proxy's with no server behind it)
  if (c5.level !== 5 || (reason !== "closed" && reason !== "reset") || withBit(c5.spoke, broker) === c5.spoke) return undefined;
  c5.hung = c5.hung + 1;
  if (c5.hung < 2) return undefined;
  c5.hung = 0;
  c5.old = withBit(c5.old, broker);
  return fail("protocol-fallback", `the broker at ${b.host}:${b.port} closed the connection twice in a row in answer to an MQTT 5.0 CONNECT, without CONNACK ` +
    "(brokers that speak 3.1.1 only may do so: RabbitMQ 3.10); the client speaks 3.1.1 to it from the next attempt");
}

/** SUBACK or UNSUBACK (type `t`) at 5.0 refused `filters` (the last with reason `code`). */
export function refusedFilters(filters: string, code: number, t: number): PetrelError {
  const sub = t === PacketType.Suback;
  return fail(sub ? "subscribe-refused" : "unsubscribe-refused", `the broker refused ${sub ? "the subscription to" : "to unsubscribe from"} ${filters}: ` + reasonError(code, t, "").message);
}

/** Why the broker's DISCONNECT closed the connection, as an error value. */
export function disconnectError(c5: Session5, d: Decoder): PetrelError {
  const code = m5.reasonOf(d);
  noteReason(c5, d, code, m5.propsOf(d), m5.propsEndOf(d));
  if (code < 0x80) return fail("server-disconnect", "the broker closed the connection (reason code 0x00 in DISCONNECT: normal disconnection); the client reconnects");
  return reasonError(code, PacketType.Disconnect, c5.said);
}

/**
 * What a PUBLISH at 5.0 carries beside its topic and payload, handed to the program with the
 * message (each field undefined when the PUBLISH has no such property).
 */
export interface MessageProps {
  /** Where the sender wants an answer (Response Topic). */
  responseTopic?: string;
  /** What the sender wants back with the answer (Correlation Data), its bytes exactly. */
  correlationData?: Wire;
  contentType?: string;
  /** 1: the payload is UTF-8 (the decoder has checked it), 0: bytes. */
  payloadFormat?: number;
  /** Seconds the message had left at the broker (Message Expiry Interval). */
  messageExpiry?: number;
  /** User Properties in order, flattened: [name1, value1, name2, value2, ...]. */
  userProperties?: string[];
  /** The Subscription Identifiers of the subscriptions it matched. */
  subscriptionIds?: number[];
}

/** The properties of the PUBLISH the decoder holds, for the program; undefined when it has none. */
export function messageProps(d: Decoder): MessageProps | undefined {
  const data = d.data;
  const end = m5.propsEndOf(d);
  let at = m5.propsOf(d);
  if (at >= end) return undefined;
  const m: MessageProps = {};
  while (at < end) {
    const id = data[at];
    const v = at + 1;
    if (id === Prop.ResponseTopic) m.responseTopic = m5.textAt(data, v);
    else if (id === Prop.CorrelationData) m.correlationData = port.bytes.wireFrom(data, v + 2, v + 2 + m5.u16At(data, v));
    else if (id === Prop.ContentType) m.contentType = m5.textAt(data, v);
    else if (id === Prop.PayloadFormat) m.payloadFormat = data[v];
    else if (id === Prop.MessageExpiry) m.messageExpiry = m5.u32At(data, v);
    else if (id === Prop.SubscriptionId) {
      if (m.subscriptionIds === undefined) m.subscriptionIds = [];
      m.subscriptionIds.push(m5.varintAt(data, v, end));
    } else if (id === Prop.UserProperty) {
      if (m.userProperties === undefined) m.userProperties = [];
      m.userProperties.push(m5.textAt(data, v));
      m.userProperties.push(m5.textAt(data, v + 2 + m5.u16At(data, v)));
    }
    // (the block has passed the decoder's checks: every value is whole)
    at = m5.afterValue(data, v, end, id);
  }
  return m;
}

/** The Topic Alias of the PUBLISH the decoder holds, or 0 (none). */
export function topicAliasOf(d: Decoder): number {
  const at = m5.findProp(d.data, m5.propsOf(d), m5.propsEndOf(d), Prop.TopicAlias);
  return at < 0 ? 0 : m5.u16At(d.data, at);
}

/**
 * A SUBACK's or UNSUBACK's reason codes at 5.0 lie after its properties: where the first is.
 * (The count is the body's end less that.)
 */
export function codesAt(d: Decoder): number {
  return m5.propsEndOf(d);
}

/**
 * A reason code (MQTT 5.0 §2.4) in a packet of type `t` as an error value: a code a program can
 * test (the 3.1.1 one where the two levels share a meaning: bad-credentials, not-authorized) and a
 * message with the code, the broker's reason string when it gave one, and the fix. A board whose
 * profile leaves the `texts` feature out keeps no texts: its message names the code and the page
 * that explains it (docs/reason-codes.md; the host's tools carry the texts).
 */
export function reasonError(code: number, t: number, said: string): PetrelError {
  // the error code: the 3.1.1 one where the two levels share a meaning
  let name: string;
  switch (code) {
    case 0x81: name = "malformed-packet"; break;
    case 0x82: name = "protocol-error"; break;
    case 0x83: name = "implementation-specific"; break;
    case 0x84: name = "connack-protocol"; break;
    case 0x85: name = "connack-identifier-rejected"; break;
    case 0x86: name = "bad-credentials"; break;
    case 0x87: name = "not-authorized"; break;
    case 0x88: name = "connack-server-unavailable"; break;
    case 0x89: name = "server-busy"; break;
    case 0x8a: name = "banned"; break;
    case 0x8b: name = "server-shutting-down"; break;
    case 0x8c: name = "bad-auth-method"; break;
    case 0x8d: name = "keepalive-timeout"; break;
    case 0x8e: name = "session-taken-over"; break;
    case 0x8f: name = "topic-filter-invalid"; break;
    case 0x90: name = "topic-name-invalid"; break;
    case 0x91: name = "packet-id-in-use"; break;
    case 0x93: name = "receive-maximum-exceeded"; break;
    case 0x94: name = "topic-alias-invalid"; break;
    case 0x95: name = "packet-too-large"; break;
    case 0x96: name = "message-rate-too-high"; break;
    case 0x97: name = "quota-exceeded"; break;
    case 0x98: name = "administrative-action"; break;
    case 0x99: name = "payload-format-invalid"; break;
    case 0x9a: name = "retain-not-supported"; break;
    case 0x9b: name = "qos-not-supported"; break;
    case 0x9c: name = "use-another-server"; break;
    case 0x9d: name = "server-moved"; break;
    case 0x9e: name = "shared-subscriptions-not-supported"; break;
    case 0x9f: name = "connection-rate-exceeded"; break;
    case 0xa0: name = "maximum-connect-time"; break;
    case 0xa1: name = "subscription-ids-not-supported"; break;
    case 0xa2: name = "wildcards-not-supported"; break;
    default: name = "unspecified-error"; break;
  }
  const text = FEATURE_TEXTS ? reasons.reasonText(code) : "see docs/reason-codes.md for what it means and the fix";
  const digits = "0123456789abcdef";
  const hi = port.ints.idiv(code, 16);
  const hex = "0x" + digits.substring(hi, hi + 1) + digits.substring(code % 16, code % 16 + 1);
  const packet = t === PacketType.Connack ? "CONNACK" : t === PacketType.Disconnect ? "DISCONNECT" : t === PacketType.Suback ? "SUBACK" :
    t === PacketType.Unsuback ? "UNSUBACK" : t === PacketType.Pubrec ? "PUBREC" : "PUBACK";
  return fail(name, `${text} (reason code ${hex} in ${packet}${said !== "" ? ": \"" + said + "\"" : ""})`);
}

/**
 * What the broker said it cannot take, checked before a message is accepted: its Maximum QoS,
 * Retain Available and Maximum Packet Size (from its last CONNACK). An error value, or undefined.
 */
export function publishLimits(c5: Session5, qos: number, retain: boolean, size: number): PetrelError | undefined {
  if (c5.level !== 5) return undefined;
  if (qos > c5.maxQos) {
    return fail("qos-not-supported", `the broker takes QoS ${c5.maxQos} at most (Maximum QoS in its CONNACK); fix: publish at QoS ${c5.maxQos}`);
  }
  if (retain && c5.retain === 0) return fail("retain-not-supported", "the broker does not take retained messages (Retain Available 0 in its CONNACK); fix: publish without retain");
  if (c5.maxPacket > 0 && size > c5.maxPacket) {
    return fail("message-too-large", `the message takes ${size} bytes, more than the broker's Maximum Packet Size (${c5.maxPacket}); fix: send less`);
  }
  return undefined;
}

/**
 * What the broker said it cannot take in a SUBSCRIBE: wildcards, shared subscriptions, a
 * Subscription Identifier (`sid` > 0). An error value, or undefined.
 */
export function filterLimits(c5: Session5, filters: string[], count: number, sid: number): PetrelError | undefined {
  if (c5.level !== 5) return undefined;
  if (sid > 0 && c5.subIds === 0) {
    return fail("subscription-ids-not-supported", "the broker does not take subscription identifiers (Subscription Identifier Available 0 in its CONNACK); fix: subscribe without one");
  }
  for (let i = 0; i < count; i++) {
    const f = filters[i];
    if (c5.shared === 0 && f.substring(0, 7) === "$share/") {
      return fail("shared-subscriptions-not-supported", `the broker does not take shared subscriptions (${f}; Shared Subscription Available 0 in its CONNACK); fix: subscribe without $share/`);
    }
    if (c5.wildcard === 0 && (find(f, "+", 0) >= 0 || find(f, "#", 0) >= 0)) {
      return fail("wildcards-not-supported", `the broker does not take wildcard filters (${f}; Wildcard Subscription Available 0 in its CONNACK); fix: subscribe to whole topics`);
    }
  }
  return undefined;
}

/**
 * A stored PUBLISH packet at the other protocol level: at 5.0 an empty property block goes after
 * the packet id; back at 3.1.1 the block is left out (its properties have no 3.1.1 form). Written
 * into `o` (which is left empty), or undefined when the packet is not a whole PUBLISH.
 */
export function convertPublish(o: Out, w: Wire, toV5: boolean): Wire | undefined {
  const b = port.bytes.bytesOf(w);
  const len = b.length;
  const rem = m5.varintAt(b, 1, len);
  if (rem < 0) return undefined;
  const p = 1 + remainingLengthSize(rem);
  // topic and packet id (every stored message is QoS 1 or 2)
  const idEnd = p + 2 + b[p] * 256 + b[p + 1] + 2;
  if (p + rem !== len || idEnd > len) return undefined;
  let from = idEnd;
  if (!toV5) {
    const props = m5.varintAt(b, idEnd, len);
    if (props < 0) return undefined;
    from = idEnd + remainingLengthSize(props) + props;
    if (from > len) return undefined;
  }
  header(o, b[0], idEnd - p + (toV5 ? 1 : 0) + len - from);
  o.copy(b, p, idEnd);
  if (toV5) o.byte(0);
  o.copy(b, from, len);
  return o.toWire();
}

/**
 * Brings the outbox's records, now at level `stored` (1: 5.0, 0: 3.1.1), to protocol level
 * `level` (5 or 4) before a message is added or sent at that level: each record is written again
 * in the other form (a rare event: the protocol setting changed, or a broker refused 5.0 with
 * messages queued). Returns the records' level flag now. A record that cannot be converted (not
 * a whole PUBLISH, or its write failed) stays as it was, and is sent in its old form.
 */
export function alignOutbox(stored: number, outbox: Outbox, st: Storage, prefix: string, o: Out, level: number): number {
  const want = level === 5 ? 1 : 0;
  if (stored === want) return want;
  for (let k = 0; k < outbox.count; k++) {
    const w = outbox.wireAt(k);
    const v = w !== undefined ? convertPublish(o, w, want === 1) : undefined;
    if (v !== undefined) outbox.rewriteAt(k, v);
  }
  if (want === 1) st.putRecord(prefix + "v", port.bytes.wireOf(""));
  else st.dropRecord(prefix + "v");
  return want;
}
