import type { Payload } from "../codec/encode";
import type { Wire } from "../port/bytes";
import type { PetrelError } from "../port/log";
import { fail } from "./errors";

/** One broker of the failover list. */
export interface BrokerAddress {
  host: string;
  port: number;
  tls?: boolean;
}

export interface WillMessage {
  topic: string;
  payload: Payload;
  qos?: number;
  retain?: boolean;
}

/**
 * What a program configures. Every field but `brokers` has a default (in brackets). Times are
 * seconds where MQTT counts seconds, milliseconds elsewhere, as the names say.
 */
export interface ClientOptions {
  /** Brokers in order of preference: the first is used when it answers. */
  brokers: BrokerAddress[];
  /** [`petrel-<chip id>`] Stable per board, so a persistent session finds its board again. */
  clientId?: string;
  /** [false] Clean session: true discards the broker's session at every connect. */
  clean?: boolean;
  /** [60] Seconds, 0..65535; 0 turns keepalive off. */
  keepalive?: number;
  username?: string;
  password?: string;
  will?: WillMessage;
  /** [20] QoS 1/2 messages sent and not yet acknowledged. mosquitto's default window is 20. */
  maxInflight?: number;
  /** [100] QoS 1/2 messages the outbox holds (sent or waiting). */
  outboxMessages?: number;
  /** [32768] Bytes the outbox holds (whole packets). */
  outboxBytes?: number;
  /** [2048] Largest packet sent or received whole; a larger incoming PUBLISH is skipped and reported. */
  maxPacket?: number;
  /** [10] QoS 0 messages kept in RAM while offline (oldest dropped first, counted). */
  offlineQueue?: number;
  /** [64] Incoming QoS 2 ids kept between PUBREC and PUBREL; beyond it the oldest is forgotten (counted). */
  receiveWindow?: number;
  /** [8] Subscribe/unsubscribe requests waiting for their acknowledgement. */
  maxRequests?: number;
  /** [10000] From dialling to CONNACK. */
  connectTimeoutMs?: number;
  /** [min(keepalive, 10) s] From PINGREQ to PINGRESP before the link counts as dead. */
  pingTimeoutMs?: number;
  /** [1000] First reconnect delay; doubles per failed round over the broker list. */
  reconnectMinMs?: number;
  /** [60000] Largest reconnect delay. Each delay is jittered down to half its value. */
  reconnectMaxMs?: number;
  /**
   * [5000] A connection that ends sooner than this after its CONNACK, closed by the broker or the
   * network with nothing of the outbox acknowledged on it, is short-lived: it counts as a failed
   * attempt (the reconnect delay keeps growing instead of starting over), and toward `refusedAfter`.
   * 0: every CONNACK starts the backoff over.
   */
  stableMs?: number;
  /**
   * [3] Short-lived connections in a row (see stableMs) whose oldest unacknowledged PUBLISH was the
   * same message: then that message is taken out of the outbox and held (`publish-refused`), and
   * the rest of the outbox flows. 1..15; 0: never (a refused message is sent again forever).
   */
  refusedAfter?: number;
  /**
   * [4] Slots for refused messages held in storage (records `<prefix>h1` to `h<n>`: listHeld,
   * retryHeld, dropHeld in session/held.ts). With every slot taken, a refused message stays in
   * the outbox (and what is behind it waits), and onError says so.
   */
  heldMessages?: number;
  /** [300] Seconds on a fallback broker before trying the first again; 0 = stay. */
  primaryRetry?: number;
  /** ["mq"] Prefix of the storage records (outbox, held messages, incoming QoS 2 ids). */
  storePrefix?: string;
  /**
   * [0 = off] Bytes of free heap below which publish and subscribe are refused with `low-memory`
   * (nothing is kept), so a busy board degrades instead of crashing. Needs platform.freeHeap.
   */
  minFreeHeap?: number;
  /**
   * [4] The protocol: 4 is MQTT 3.1.1, 5 is MQTT 5.0 (a build with the `mqtt5` feature). At 5, a
   * broker that answers in 3.1.1 gets 3.1.1 from the next attempt on (said once in the log).
   */
  protocolVersion?: number;
  /**
   * [none] At 5.0, enhanced authentication (§4.12; a build with the `auth` feature): the
   * Authentication Method CONNECT names (e.g. "SCRAM-SHA-1"). username/password go too, if set.
   */
  authMethod?: string;
  /** [none] The method's first Authentication Data, sent in CONNECT. */
  authData?: string | Wire;
  /**
   * [none] Each step the broker asks for (AUTH, Continue authentication) before CONNACK: given
   * its Authentication Data (undefined when it sent none) and the method, returns the data to
   * answer with; undefined gives up (auth-failed: the connection closes, the client retries).
   */
  onAuth?: (this: void, data: Wire | undefined, method: string) => string | Wire | undefined;
  /**
   * [clean ? 0 : never] At 5.0, seconds the broker keeps the session after a connection ends;
   * -1: never expires (as a 3.1.1 session that is not clean).
   */
  sessionExpiry?: number;
  /**
   * [0] At 5.0, topic aliases this client sets up per connection (at most the broker's Topic
   * Alias Maximum): each of the first topics published gets one, and later messages to it go
   * with the alias instead of the topic's bytes. One per topic published often.
   */
  topicAliases?: number;
  /**
   * [0] At 5.0, topic aliases the broker may set up on its messages to this client (the Topic
   * Alias Maximum in CONNECT, at most 255): a topic the broker sends often then comes as two
   * bytes. Kept per connection; the handler gets the whole topic either way.
   */
  topicAliasesIn?: number;
  /**
   * [0] At 5.0, seconds the broker waits before publishing the will (Will Delay Interval): a
   * connection back within them publishes none. Needs a session that outlasts it (clean false,
   * or sessionExpiry at least this).
   */
  willDelay?: number;
}

/** Options with every default filled in, validated. */
export interface Settings {
  brokers: BrokerAddress[];
  clientId: string;
  clean: boolean;
  keepalive: number;
  username: string | undefined;
  password: string | undefined;
  will: WillMessage | undefined;
  maxInflight: number;
  outboxMessages: number;
  outboxBytes: number;
  maxPacket: number;
  offlineQueue: number;
  receiveWindow: number;
  maxRequests: number;
  connectTimeoutMs: number;
  pingTimeoutMs: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  stableMs: number;
  refusedAfter: number;
  heldMessages: number;
  primaryRetryMs: number;
  storePrefix: string;
  minFreeHeap: number;
}

function isInt(x: number): boolean {
  // dialect-allow float-math: an integer test, not arithmetic
  return Math.floor(x) === x;
}

/** `value` or the default; an error when it is not an integer within [min, max]. */
function num(name: string, value: number | undefined, dflt: number, min: number, max: number, errs: PetrelError[]): number {
  if (value === undefined) return dflt;
  if (typeof value !== "number" || !isInt(value) || value < min || value > max) {
    // the first bad option is the one reported
    if (errs[0] === undefined) errs[0] = fail("bad-option", `${name} must be a whole number from ${min} to ${max}; fix: set ${name} within that range`);
    return dflt;
  }
  return value;
}

/** Fills in defaults and checks every option; an error value names the first bad one (in the order below) and the fix. */
export function settle(o: ClientOptions, chipId: string): Settings | PetrelError {
  const errs: PetrelError[] = [];
  if (o.brokers === undefined || o.brokers[0] === undefined) {
    return fail("bad-option", "no broker given; fix: set brokers to [{host, port}] (port 1883, or 8883 with tls)");
  }
  let i = 0;
  while (o.brokers[i] !== undefined) {
    const b = o.brokers[i];
    if (typeof b.host !== "string" || b.host === "") return fail("bad-option", `broker ${i + 1} has no host; fix: set its host name or address`);
    num(`broker ${i + 1} port`, b.port, 1883, 1, 65535, errs);
    if (b.port === undefined) return fail("bad-option", `broker ${i + 1} has no port; fix: 1883 for MQTT, 8883 for MQTT over TLS`);
    i = i + 1;
  }
  const clean = o.clean === true;
  const clientId = o.clientId !== undefined ? o.clientId : "petrel-" + chipId;
  if (clientId === "" && !clean) {
    return fail("bad-option", "an empty client id needs clean session on (MQTT-3.1.3-7); fix: set a clientId, or clean: true");
  }
  if (o.password !== undefined && o.username === undefined && o.protocolVersion !== 5) {
    return fail("bad-option", "a password without a user name is not allowed in MQTT 3.1.1 (MQTT-3.1.2-22); fix: set username too");
  }
  if (o.will !== undefined && (o.will.qos !== undefined && o.will.qos !== 0 && o.will.qos !== 1 && o.will.qos !== 2)) {
    return fail("bad-option", "will qos must be 0, 1 or 2; fix: set will.qos to one of them");
  }
  const keepalive = num("keepalive", o.keepalive, 60, 0, 65535, errs);
  const maxPacket = num("maxPacket", o.maxPacket, 2048, 64, 268435460, errs);
  const outboxMessages = num("outboxMessages", o.outboxMessages, 100, 1, 65000, errs);
  const s: Settings = {
    brokers: o.brokers,
    clientId: clientId,
    clean: clean,
    keepalive: keepalive,
    username: o.username,
    password: o.password,
    will: o.will,
    maxInflight: num("maxInflight", o.maxInflight, 20, 1, 65535, errs),
    outboxMessages: outboxMessages,
    outboxBytes: num("outboxBytes", o.outboxBytes, 32768, maxPacket, 1073741824, errs),
    maxPacket: maxPacket,
    offlineQueue: num("offlineQueue", o.offlineQueue, 10, 0, 10000, errs),
    receiveWindow: num("receiveWindow", o.receiveWindow, 64, 1, 65535, errs),
    maxRequests: num("maxRequests", o.maxRequests, 8, 1, 1000, errs),
    connectTimeoutMs: num("connectTimeoutMs", o.connectTimeoutMs, 10000, 100, 600000, errs),
    pingTimeoutMs: num("pingTimeoutMs", o.pingTimeoutMs, keepalive > 0 && keepalive < 10 ? keepalive * 1000 : 10000, 100, 600000, errs),
    reconnectMinMs: num("reconnectMinMs", o.reconnectMinMs, 1000, 10, 3600000, errs),
    reconnectMaxMs: num("reconnectMaxMs", o.reconnectMaxMs, 60000, 10, 86400000, errs),
    stableMs: num("stableMs", o.stableMs, 5000, 0, 3600000, errs),
    refusedAfter: num("refusedAfter", o.refusedAfter, 3, 0, 15, errs),
    heldMessages: num("heldMessages", o.heldMessages, 4, 0, 64, errs),
    primaryRetryMs: num("primaryRetry", o.primaryRetry, 300, 0, 86400, errs) * 1000,
    storePrefix: o.storePrefix !== undefined ? o.storePrefix : "mq",
    minFreeHeap: num("minFreeHeap", o.minFreeHeap, 0, 0, 1073741824, errs),
  };
  if (errs[0] !== undefined) return errs[0];
  if (s.keepalive > 0 && s.pingTimeoutMs > s.keepalive * 1000) {
    // nothing is sent while a PINGREQ waits: the broker would close the link (and publish the
    // will) after 1.5 keepalives, before the client saw its ping time out (MQTT-3.1.2-24)
    return fail("bad-option", `pingTimeoutMs (${s.pingTimeoutMs}) is longer than the keepalive (${s.keepalive} s): the broker would close the connection first; fix: set pingTimeoutMs to at most keepalive x 1000, or raise keepalive`);
  }
  if (s.reconnectMaxMs < s.reconnectMinMs) {
    return fail("bad-option", "reconnectMaxMs is below reconnectMinMs; fix: make the largest delay at least the first");
  }
  if (s.storePrefix === "" || s.storePrefix.length > 8) {
    return fail("bad-option", "storePrefix must be 1 to 8 characters (storage keys are at most 24); fix: use a short prefix such as \"mq\"");
  }
  return s;
}
