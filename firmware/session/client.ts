import { PacketType, Status } from "../codec/constants";
import { Decoder } from "../codec/decoder";
import { encodeAck, encodeConnect, encodeEmpty, encodePublish, payloadSize, type ConnectOptions, type Payload } from "../codec/encode";
import { codecErrorMessage, codecErrorName } from "../codec/errors";
import { topicMatches } from "../codec/topic";
import type { Bytes, Chunk, Wire } from "../port/bytes";
import { LOG_DEBUG, LOG_INFO, LOG_WARN, type PetrelError } from "../port/log";
import { port } from "../port/port";
import { STORAGE_FULL } from "../port/storage";
import type { TransportEvents } from "../port/transport";
import { IDLE } from "../sched/scheduler";
import { after, due, elapsed, remaining } from "../sched/time";
import { connackError, explainClose, fail } from "./errors";
import { settle, type ClientOptions, type Settings } from "./options";
import { Outbox, Phase, Received, parseDecimal, type Done } from "./outbox";
import type { Platform } from "./platform";
import { Requests, type RequestDone } from "./requests";

/** Where the client is. */
export const enum State {
  /** Not started, or ended. */
  Stopped = 0,
  Resolving = 1,
  /** Dialling (TCP or TLS). */
  Opening = 2,
  /** CONNECT sent, waiting for CONNACK. */
  Handshake = 3,
  Connected = 4,
  /** Waiting out a reconnect delay. */
  Waiting = 5,
  /** Asked the transport to close, waiting for it to say it has. */
  Closing = 6,
}

/** A message handler: topic, payload (Buffer on Node, string on Espruino and NodeMCU), QoS, retain, dup. */
export type MessageHandler = (this: void, topic: string, payload: Wire, qos: number, retain: boolean, dup: boolean) => void;

/** The lean event core: one optional function per event, no emitter. */
export interface ClientEvents {
  /** CONNACK 0 arrived. */
  onConnect?: (this: void, sessionPresent: boolean) => void;
  /** Every PUBLISH delivered (after the per-filter handlers). */
  onMessage?: MessageHandler;
  /** A connection attempt begins after the first. */
  onReconnect?: (this: void) => void;
  /** A connection that was up went down. */
  onOffline?: (this: void, reason: string) => void;
  /** A connection or attempt ended ("" when this client closed it). */
  onClose?: (this: void, reason: string) => void;
  /** Something went wrong that the program may want to know: refused CONNACK, dial failure, protocol error, storage trouble. */
  onError?: (this: void, e: PetrelError) => void;
  /** end() finished: the client is stopped. */
  onEnd?: (this: void) => void;
}

/** Counters, for `diag` and tests. */
export interface ClientStats {
  connects: number;
  attempts: number;
  published: number;
  delivered: number;
  /** QoS 0 messages dropped from the offline queue (oldest first). */
  dropped: number;
  /** Incoming QoS 2 duplicates recognised by packet id and not delivered again. */
  duplicates: number;
  /** Acknowledgements for unknown packet ids, ignored. */
  ignored: number;
  /** Incoming PUBLISH packets larger than maxPacket, acknowledged and reported. */
  oversize: number;
  /** Incoming QoS 2 ids forgotten before their PUBREL because receiveWindow was full. */
  evicted: number;
  /** Publishes and subscribes refused because free heap was under minFreeHeap. */
  lowMemory: number;
  pings: number;
  /** The last PINGREQ's round trip in ms; -1 before the first PINGRESP. */
  pingMs: number;
}

const ACK_BUF = 8;

/** The sooner of two waits in ms, where `a` may be IDLE (no wait). */
function sooner(a: number, b: number): number {
  return a === IDLE || b < a ? b : a;
}

/** How often a client waiting for its network link checks it, in case the link's event is lost. */
export const LINK_POLL_MS = 5000;

/**
 * The MQTT 3.1.1 session: one connection at a time to the first broker of the list that
 * answers, reconnecting with backoff, keeping every accepted QoS 1/2 message in the outbox
 * (storage) until the broker acknowledges it. Written once for every target: it talks to the
 * board only through the Platform. Nothing here throws; errors are values or onError events.
 */
export class Client {
  readonly settings: Settings;
  state: number = State.Stopped;
  /** The broker (index into settings.brokers) of the current or next attempt. */
  broker = 0;
  sessionPresent = false;
  /** Why the last connection ended. */
  lastReason = "";
  /** The last error reported (for diag). */
  lastError: PetrelError | undefined = undefined;
  readonly stats: ClientStats = { connects: 0, attempts: 0, published: 0, delivered: 0, dropped: 0, duplicates: 0, ignored: 0, oversize: 0, evicted: 0, pings: 0, lowMemory: 0, pingMs: -1 };
  readonly outbox: Outbox;
  readonly received: Received;

  private readonly p: Platform;
  private readonly ev: ClientEvents;
  private readonly tx: Bytes;
  private readonly ack: Bytes;
  private readonly dec: Decoder;
  private readonly reqs: Requests;
  private readonly task: number;
  private readonly connect: ConnectOptions;
  /** Connection generation: events of older connections are ignored. */
  private gen = 0;
  /** Failed rounds over the broker list since the last success. */
  private round = 0;
  private started = false;
  /** Waiting for the network link to come up (no dialling meanwhile). */
  private linkWait = false;
  private ending = false;
  private up = false;
  /** The close reason chosen by this client (reported instead of the transport's). */
  private reason = "";
  private reported = false;
  private deadline = 0;
  private connectedAt = 0;
  private lastSent = 0;
  private lastRecv = 0;
  private pingOut = false;
  private pingAt = 0;
  private blocked = false;
  /** Sequence number of the outbox record whose packet is in `tx`, 0 when none. */
  private txSeq = 0;
  private nextId = 1;
  /** How long to stay on a fallback broker before trying the first again (grows while it stays down). */
  private primaryEvery = 0;
  private retryingPrimary = false;
  /**
   * Index of the broker whose session the outbox phases and incoming QoS 2 ids belong to (a
   * marker record `<prefix>b<index>` keeps it across reboots), -1 when not known yet.
   */
  private sessionBroker = -1;

  /** Subscriptions to restore when the broker has no session: filter, QoS, handler. */
  private readonly subFilters: string[] = [];
  private readonly subQos: number[] = [];
  private readonly subHandlers: (MessageHandler | undefined)[] = [];
  private subCount = 0;

  /** QoS 0 messages while offline: a ring of topic, payload, retain. */
  private readonly q0Topics: string[] = [];
  private readonly q0Payloads: Payload[] = [];
  private readonly q0Retain: boolean[] = [];
  private readonly q0Dones: (Done | undefined)[] = [];
  private q0Head = 0;
  private q0Count = 0;

  private constructor(p: Platform, s: Settings, ev: ClientEvents) {
    this.p = p;
    this.settings = s;
    this.ev = ev;
    this.tx = port.bytes.alloc(s.maxPacket);
    this.ack = port.bytes.alloc(ACK_BUF);
    this.dec = new Decoder(s.maxPacket);
    // the acknowledgement buffer is also the outbox's and the QoS 2 id list's scratch: each
    // fills it and hands it on (to the socket or the storage, which copy) in one call
    this.outbox = new Outbox(p.storage, s.storePrefix, this.ack);
    this.received = new Received(p.storage, s.storePrefix, this.ack);
    this.reqs = new Requests(s.maxRequests);
    const c: ConnectOptions = { clientId: s.clientId, clean: s.clean, keepalive: s.keepalive };
    if (s.username !== undefined) c.username = s.username;
    if (s.password !== undefined) c.password = s.password;
    if (s.will !== undefined) {
      c.will = { topic: s.will.topic, payload: s.will.payload, qos: s.will.qos !== undefined ? s.will.qos : 0, retain: s.will.retain === true };
    }
    this.connect = c;
    this.primaryEvery = s.primaryRetryMs;
    this.task = p.sched.add({ name: "mqtt", step: (now: number) => this.step(now) }, 0);
    p.sched.remove(this.task);
    // `self`, not `this`, in an arrow inside a branch: see the guard's arrow-this-skipped rule.
    const self = this;
    if (p.link !== undefined) p.link.watch((up) => self.linkChanged(up));
  }

  /**
   * Checks the options (and that CONNECT can be encoded), loads the outbox and the incoming QoS 2
   * ids left by an earlier run, and returns the client, stopped; or an error value saying what to
   * fix. Call start() to connect.
   */
  static create(p: Platform, o: ClientOptions, ev: ClientEvents): Client | PetrelError {
    const s = settle(o, p.chipId);
    if ("code" in s) return s;
    // `this`, not `Client`: Espruino does not bind a class expression's own name inside it
    const c = new this(p, s, ev);
    const n = encodeConnect(c.tx, 0, s.maxPacket, c.connect);
    if (n < 0) return fail("bad-option", `CONNECT cannot be built: ${codecErrorMessage(n)} (client id, user name, will); fix: correct that option`);
    const loaded = c.outbox.load(c.tx, s.maxPacket);
    if (c.outbox.tooLarge > 0) {
      p.log.write(LOG_WARN, `mqtt: ${c.outbox.tooLarge} outbox record(s) are larger than maxPacket (${s.maxPacket}); they stay in storage: raise maxPacket to send them`);
    }
    if (loaded > 0) {
      c.nextId = c.outbox.ids[loaded - 1] === 65535 ? 1 : c.outbox.ids[loaded - 1] + 1;
      p.log.write(LOG_INFO, `mqtt: resuming ${loaded} outbox message(s) from storage`);
    }
    if (c.outbox.removed > 0) p.log.write(LOG_WARN, `mqtt: removed ${c.outbox.removed} unreadable outbox record(s)`);
    c.received.load();
    const owner = p.storage.list(s.storePrefix + "b");
    for (let i = 0; i < owner.length; i++) {
      const k = parseDecimal(owner[i], s.storePrefix.length + 1);
      if (k >= 0 && c.sessionBroker < 0) c.sessionBroker = k;
      else p.storage.remove(owner[i]);
    }
    return c;
  }

  /** Starts connecting (to the first broker). */
  start(): void {
    if (this.started) return;
    this.started = true;
    if (this.state === State.Closing) {
      // end() is still closing: that end is complete as far as the program is concerned, and
      // the close under way leads to a reconnect instead of a stop.
      if (this.ending) {
        this.ending = false;
        if (this.ev.onEnd !== undefined) this.ev.onEnd();
      }
      return;
    }
    this.ending = false;
    this.broker = 0;
    this.round = 0;
    if (this.linkDown()) {
      this.waitLink();
      return;
    }
    this.attempt();
  }

  /**
   * Ends the session: DISCONNECT (so the broker does not publish the will), then close. Messages
   * not yet acknowledged stay in the outbox (storage) for the next start.
   */
  end(): void {
    if (!this.started) return;
    this.started = false;
    this.ending = true;
    if (this.state === State.Connected) {
      this.sendControl(encodeEmpty(this.ack, 0, ACK_BUF, PacketType.Disconnect));
      this.drop("");
    } else if (this.state === State.Closing) {
      // the close under way finishes the end
    } else if (this.state === State.Opening || this.state === State.Handshake) {
      this.drop("");
    } else {
      this.gen = this.gen + 1;
      this.finishEnd();
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Publishing

  /**
   * Publishes a message. QoS 1/2: stored in the outbox before this returns, then sent in order
   * within the in-flight window; `done` runs when the broker acknowledges it. QoS 0: sent now, or
   * queued in RAM while offline (bounded, oldest dropped). Returns undefined when accepted, or an
   * error value (nothing was accepted) naming the problem and the fix.
   */
  publish(topic: string, payload: Payload, qos: number, retain: boolean, done: Done | undefined): PetrelError | undefined {
    const s = this.settings;
    if (qos !== 0 && qos !== 1 && qos !== 2) return fail("invalid-qos", "QoS must be 0, 1 or 2");
    const low = this.lowMemory();
    if (low !== undefined) return low;
    if (qos === 0) return this.publish0(topic, payload, retain, done);
    if (this.outbox.count >= s.outboxMessages) {
      return fail("outbox-full", `the outbox holds ${this.outbox.count} messages, its limit; fix: wait for the broker to acknowledge (is it connected?), or raise outboxMessages`);
    }
    const id = this.allocId();
    const n = encodePublish(this.tx, 0, s.maxPacket, topic, payload, qos, retain, false, id);
    this.txSeq = 0;
    if (n < 0) return this.encodeError(n, topic, payload);
    if (this.outbox.bytes + n > s.outboxBytes) {
      return fail("outbox-full", `the outbox holds ${this.outbox.bytes} of ${s.outboxBytes} bytes and this message needs ${n}; fix: wait for acknowledgements, or raise outboxBytes`);
    }
    const r = this.outbox.add(this.tx, n, id, qos, done);
    if (r !== 0) {
      return r === STORAGE_FULL
        ? fail("storage-full", "storage is full, so the message cannot be kept; fix: free flash (fewer or smaller outbox messages), or lower outboxBytes below the free space")
        : fail("storage-failed", "writing the message to storage failed; fix: check the flash (the board's storage may be worn or full)");
    }
    this.txSeq = this.outbox.nextSeq - 1;
    this.stats.published = this.stats.published + 1;
    this.pump();
    return undefined;
  }

  /** The refusal when free heap is under the floor (minFreeHeap), else undefined. */
  private lowMemory(): PetrelError | undefined {
    const floor = this.settings.minFreeHeap;
    const free = this.p.freeHeap;
    if (floor === 0 || free === undefined) return undefined;
    const n = free(floor);
    if (n >= floor) return undefined;
    this.stats.lowMemory = this.stats.lowMemory + 1;
    return fail("low-memory", `free heap is ${n} bytes, under the ${floor}-byte floor (minFreeHeap), so nothing was kept; fix: publish less often or smaller, lower maxPacket or outboxMessages, or free memory elsewhere`);
  }

  private publish0(topic: string, payload: Payload, retain: boolean, done: Done | undefined): PetrelError | undefined {
    const n = encodePublish(this.tx, 0, this.settings.maxPacket, topic, payload, 0, retain, false, 0);
    this.txSeq = 0;
    if (n < 0) return this.encodeError(n, topic, payload);
    if (this.state === State.Connected) {
      this.stats.published = this.stats.published + 1;
      this.send(this.tx, n);
      if (done !== undefined) done(undefined);
      return undefined;
    }
    const cap = this.settings.offlineQueue;
    if (cap === 0) return fail("offline", "not connected, and offlineQueue is 0, so the QoS 0 message was not kept; fix: publish at QoS 1, or set offlineQueue");
    this.stats.published = this.stats.published + 1;
    if (this.q0Count === cap) {
      // the oldest makes room (and hears why)
      const old = this.q0Dones[this.q0Head];
      this.q0Dones[this.q0Head] = undefined;
      this.q0Head = this.q0Head + 1 === cap ? 0 : this.q0Head + 1;
      this.q0Count = this.q0Count - 1;
      this.stats.dropped = this.stats.dropped + 1;
      if (old !== undefined) old(fail("dropped", `the QoS 0 message waited offline behind ${cap} newer ones and was dropped; fix: publish at QoS 1 what must arrive, or raise offlineQueue`));
    }
    let k = this.q0Head + this.q0Count;
    if (k >= cap) k = k - cap;
    this.q0Topics[k] = topic;
    this.q0Payloads[k] = payload;
    this.q0Retain[k] = retain;
    this.q0Dones[k] = done;
    this.q0Count = this.q0Count + 1;
    return undefined;
  }

  private encodeError(n: number, topic: string, payload: Payload): PetrelError {
    if (-n === 1) {
      const size = payloadSize(payload) + port.bytes.textLength(topic) + 9;
      return fail("message-too-large", `the message needs about ${size} bytes, more than maxPacket (${this.settings.maxPacket}); fix: raise maxPacket or send less`);
    }
    return fail(codecErrorName(n), codecErrorMessage(n));
  }

  /** A packet id not used by any message in flight or request waiting (MQTT-2.3.1-2). */
  private allocId(): number {
    for (let tries = 0; tries < 65535; tries++) {
      const id = this.nextId;
      this.nextId = id === 65535 ? 1 : id + 1;
      if (this.outbox.find(id) < 0 && !this.reqs.uses(id)) return id;
    }
    return 0; // unreachable: the outbox and requests are far below 65,535 entries
  }

  /** Sends what the in-flight window allows, in order: PUBLISH for queued messages, PUBREL for released ones. */
  private pump(): void {
    if (this.state !== State.Connected) return;
    const o = this.outbox;
    let inflight = 0;
    for (let k = 0; k < o.count; k++) {
      const ph = o.phases[k];
      if (ph === Phase.Sent || ph === Phase.Released) {
        inflight = inflight + 1;
      } else {
        if (inflight >= this.settings.maxInflight || this.blocked) return;
        if (ph === Phase.ReleaseQueued) {
          o.phases[k] = Phase.Released;
          this.sendControl(encodeAck(this.ack, 0, ACK_BUF, PacketType.Pubrel, o.ids[k]));
        } else if (!this.sendStored(k)) {
          k = k - 1; // message k was lost and removed: the next one is at k now
          inflight = inflight - 1;
        }
        inflight = inflight + 1;
        if (this.state !== State.Connected) return;
      }
    }
  }

  /** Sends outbox message k (from tx when it is still there, else from storage). */
  private sendStored(k: number): boolean {
    const o = this.outbox;
    let n = o.sizes[k];
    if (this.txSeq !== o.seqs[k]) {
      n = o.read(k, this.tx, this.settings.maxPacket);
      this.txSeq = n < 0 ? 0 : o.seqs[k];
      if (n < 0) {
        const done = o.remove(k);
        const e = fail("storage-failed", "an outbox message could not be read back from storage and is lost; fix: check the flash");
        this.report(e);
        if (done !== undefined) done(e);
        return false;
      }
    }
    if (o.dups[k]) {
      this.tx[0] = port.ints.bor(this.tx[0], 8);
    }
    o.phases[k] = Phase.Sent;
    o.dups[k] = true;
    this.send(this.tx, n);
    // the DUP bit is not part of the stored record: tx matches it again
    this.tx[0] = port.ints.band(this.tx[0], 247);
    return true;
  }

  private flushOffline(): void {
    while (this.q0Count > 0 && this.state === State.Connected) {
      const k = this.q0Head;
      const topic = this.q0Topics[k];
      const payload = this.q0Payloads[k];
      const retain = this.q0Retain[k];
      const done = this.q0Dones[k];
      this.q0Topics[k] = "";
      this.q0Payloads[k] = "";
      this.q0Dones[k] = undefined;
      this.q0Head = k + 1 === this.settings.offlineQueue ? 0 : k + 1;
      this.q0Count = this.q0Count - 1;
      const n = encodePublish(this.tx, 0, this.settings.maxPacket, topic, payload, 0, retain, false, 0);
      this.txSeq = 0;
      if (n > 0) this.send(this.tx, n);
      if (done !== undefined) done(undefined);
    }
  }

  /** QoS 0 messages waiting in RAM for a connection. */
  offlineCount(): number {
    return this.q0Count;
  }

  // ---------------------------------------------------------------------------------------------
  // Subscriptions

  /**
   * Subscribes to `count` filters at the given QoS, routing matching messages to `handler` (if
   * given). Sent now when connected, else at the next connection. `done` gets the granted QoS per
   * filter (128 = refused by the broker). Returns an error value when nothing was accepted.
   */
  subscribe(filters: string[], qos: number[], count: number, handler: MessageHandler | undefined, done: RequestDone | undefined): PetrelError | undefined {
    const low = this.lowMemory();
    if (low !== undefined) return low;
    const e = this.reqs.add(PacketType.Subscribe, filters, qos, count, done, this.tx, this.settings.maxPacket);
    this.txSeq = 0; // tx was scratch for the check
    if (e !== undefined) return e;
    for (let i = 0; i < count; i++) this.remember(filters[i], qos[i], handler);
    this.sendRequests();
    return undefined;
  }

  /** Unsubscribes from `count` filters; their handlers stop at once. */
  unsubscribe(filters: string[], count: number, done: RequestDone | undefined): PetrelError | undefined {
    const e = this.reqs.add(PacketType.Unsubscribe, filters, undefined, count, done, this.tx, this.settings.maxPacket);
    this.txSeq = 0; // tx was scratch for the check
    if (e !== undefined) return e;
    for (let i = 0; i < count; i++) this.forget(filters[i]);
    this.sendRequests();
    return undefined;
  }

  private remember(filter: string, qos: number, handler: MessageHandler | undefined): void {
    let k = 0;
    while (k < this.subCount && this.subFilters[k] !== filter) k = k + 1;
    if (k === this.subCount) this.subCount = k + 1;
    this.subFilters[k] = filter;
    this.subQos[k] = qos;
    this.subHandlers[k] = handler;
  }

  private forget(filter: string): void {
    for (let k = 0; k < this.subCount; k++) {
      if (this.subFilters[k] === filter) {
        const last = this.subCount - 1;
        this.subFilters[k] = this.subFilters[last];
        this.subQos[k] = this.subQos[last];
        this.subHandlers[k] = this.subHandlers[last];
        this.subHandlers[last] = undefined;
        this.subCount = last;
        return;
      }
    }
  }

  /** Filters the client subscribes to (restored after a session loss). */
  subscriptionCount(): number {
    return this.subCount;
  }

  private sendRequests(): void {
    if (this.state !== State.Connected) return;
    for (;;) {
      const n = this.reqs.encodeNext(this.tx, this.settings.maxPacket, () => this.allocId());
      if (n <= 0) return;
      this.txSeq = 0;
      this.send(this.tx, n);
      if (this.state !== State.Connected) return;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Connection lifecycle

  private attempt(): void {
    const s = this.settings;
    const b = s.brokers[this.broker];
    const g = this.gen;
    this.linkWait = false;
    this.state = State.Resolving;
    this.reason = "";
    this.reported = false;
    this.deadline = after(this.p.clock.now(), s.connectTimeoutMs);
    this.p.sched.wake(this.task);
    this.stats.attempts = this.stats.attempts + 1;
    if (this.stats.attempts > 1 && this.ev.onReconnect !== undefined) this.ev.onReconnect();
    this.p.log.write(LOG_DEBUG, `mqtt: dialling ${b.host}:${b.port}${b.tls === true ? " (tls)" : ""}`);
    this.p.resolver.resolve(b.host, (address, error) => {
      if (g !== this.gen || this.state !== State.Resolving) return;
      if (error !== "") {
        this.gen = this.gen + 1;
        this.closed(error);
        return;
      }
      this.state = State.Opening;
      this.p.transport.open(address, b.port, b.tls === true, this.transportEvents(g), b.host);
    });
  }

  private transportEvents(g: number): TransportEvents {
    return {
      onOpen: () => {
        if (g === this.gen && this.state === State.Opening) this.opened();
      },
      onData: (c: Chunk) => {
        if (g === this.gen) this.data(c);
      },
      onWritable: () => {
        if (g === this.gen) {
          this.blocked = false;
          this.pump();
        }
      },
      onClose: (r: string) => {
        if (g === this.gen) {
          this.gen = this.gen + 1;
          this.closed(r);
        }
      },
    };
  }

  private opened(): void {
    this.state = State.Handshake;
    this.dec.reset();
    this.blocked = false;
    const n = encodeConnect(this.tx, 0, this.settings.maxPacket, this.connect);
    this.txSeq = 0;
    this.lastRecv = this.p.clock.now();
    this.send(this.tx, n);
  }

  // ---------------------------------------------------------------------------------------------
  // The network link (Wi-Fi)

  private linkDown(): boolean {
    const l = this.p.link;
    return l !== undefined && !l.up();
  }

  /** No dialling until the link returns: the backoff is not spent on a network that is not there. */
  private waitLink(): void {
    this.state = State.Waiting;
    this.linkWait = true;
    this.lastReason = "no-network";
    this.p.log.write(LOG_INFO, `mqtt: ${explainClose("no-network")}`);
    this.p.sched.wake(this.task);
  }

  private linkChanged(up: boolean): void {
    if (!this.started) return;
    if (up) {
      // Only a client waiting for the link dials now (step() sees the link up and dials): one in
      // an ordinary backoff keeps it, so a flapping link cannot make it hammer a refusing broker.
      if (this.state === State.Waiting && this.linkWait) this.p.sched.wake(this.task);
    } else if (this.state !== State.Waiting && this.state !== State.Stopped) {
      this.drop("no-network");
    }
  }

  /** Closes the current connection for `reason` ("" = asked by the program); closed() follows. */
  private drop(reason: string): void {
    if (this.state === State.Closing || this.state === State.Stopped || this.state === State.Waiting) return;
    this.reason = reason;
    if (this.state === State.Resolving) {
      this.gen = this.gen + 1;
      this.closed(reason);
      return;
    }
    this.state = State.Closing;
    // a transport that never reports its close must not hang the client
    this.deadline = after(this.p.clock.now(), this.settings.connectTimeoutMs);
    this.p.sched.wake(this.task);
    this.p.transport.close();
  }

  /** A connection or attempt has ended: report it, then end or schedule the next attempt. */
  private closed(transportReason: string): void {
    const s = this.settings;
    const wasUp = this.up;
    const reason = this.reason !== "" || this.ending ? this.reason : transportReason;
    // Not connected any more before any callback runs: a publish or subscribe from onOffline /
    // onClose must wait for the next connection, not go to the dead one.
    this.state = State.Waiting;
    this.deadline = this.p.clock.now();
    this.up = false;
    this.pingOut = false;
    this.blocked = false;
    this.lastReason = reason;
    for (let k = 0; k < this.outbox.count; k++) {
      const ph = this.outbox.phases[k];
      if (ph === Phase.Sent) this.outbox.phases[k] = Phase.Queued;
      else if (ph === Phase.Released) this.outbox.phases[k] = Phase.ReleaseQueued;
    }
    this.reqs.unsend();
    if (reason !== "") this.p.log.write(LOG_INFO, `mqtt: connection ended: ${explainClose(reason)}`);
    if (wasUp && this.ev.onOffline !== undefined) this.ev.onOffline(reason);
    if (!wasUp && !this.reported && reason !== "") this.report(fail(reason, explainClose(reason)));
    if (this.ev.onClose !== undefined) this.ev.onClose(reason);
    // end() from inside a callback has finished it, or end() then start() is already dialling
    if (this.state !== State.Waiting) return;
    if (this.ending || !this.started) {
      this.finishEnd();
      return;
    }
    let delay: number;
    if (reason === "primary-retry") {
      this.broker = 0;
      this.retryingPrimary = true;
      delay = 0;
    } else if (wasUp) {
      // a working connection broke: start again from the first broker, soon
      this.broker = 0;
      this.round = 0;
      delay = this.jitter(s.reconnectMinMs);
    } else {
      // the next broker of the list soon (failover); after the last, back off and start over
      this.broker = this.broker + 1;
      if (s.brokers[this.broker] === undefined) {
        this.broker = 0;
        this.round = this.round + 1;
        delay = this.jitter(this.backoff());
      } else {
        delay = this.jitter(s.reconnectMinMs);
      }
    }
    this.state = State.Waiting;
    this.deadline = after(this.p.clock.now(), delay);
    this.p.sched.wake(this.task);
  }

  private finishEnd(): void {
    this.state = State.Stopped;
    this.linkWait = false;
    this.ending = false;
    this.p.sched.remove(this.task);
    if (this.ev.onEnd !== undefined) this.ev.onEnd();
  }

  /** The reconnect delay for the current round: reconnectMinMs doubled per failed round, capped. */
  backoff(): number {
    const s = this.settings;
    let d = s.reconnectMinMs;
    for (let r = 0; r < this.round && d < s.reconnectMaxMs; r++) d = d * 2;
    return d < s.reconnectMaxMs ? d : s.reconnectMaxMs;
  }

  /** A delay between half of `d` and `d` ("equal jitter"): boards that lost the same broker spread out. */
  private jitter(d: number): number {
    const half = port.ints.idiv(d, 2);
    return half + this.p.random(d - half + 1);
  }

  private report(e: PetrelError): void {
    this.reported = true;
    this.lastError = e;
    this.p.log.write(LOG_WARN, `mqtt: ${e.code}: ${e.message}`);
    if (this.ev.onError !== undefined) this.ev.onError(e);
  }

  /** Closes the connection because the broker broke the protocol. */
  private violation(reason: string, detail: string): void {
    this.report(fail(reason, `${explainClose(reason)}: ${detail}`));
    this.drop(reason);
  }

  // ---------------------------------------------------------------------------------------------
  // Time

  private step(now: number): number {
    const st = this.state;
    if (st === State.Waiting) {
      if (this.linkWait) {
        // The link's event is the fast path; this poll makes a lost event cost seconds, not the
        // session (an app may take over the firmware's one Wi-Fi callback slot).
        if (this.linkDown()) return LINK_POLL_MS;
        // dial now, from the first broker: failures while the link was down say nothing of them
        this.linkWait = false;
        this.broker = 0;
        this.round = 0;
        this.attempt();
        return this.step(this.p.clock.now());
      }
      if (!due(this.deadline, now)) return remaining(this.deadline, now);
      if (this.linkDown()) {
        this.waitLink();
        return IDLE;
      }
      this.attempt();
      return this.step(this.p.clock.now());
    }
    if (st === State.Resolving || st === State.Opening || st === State.Handshake) {
      if (!due(this.deadline, now)) return remaining(this.deadline, now);
      if (st === State.Resolving) this.drop("timeout");
      else this.drop("connect-timeout");
      return 0;
    }
    if (st === State.Closing) {
      if (!due(this.deadline, now)) return remaining(this.deadline, now);
      this.gen = this.gen + 1;
      this.closed(this.reason);
      return 0;
    }
    if (st === State.Connected) return this.keepalive(now);
    return IDLE;
  }

  /** PINGREQ after keepalive seconds without sending (or receiving); a missing PINGRESP ends the link. */
  private keepalive(now: number): number {
    const s = this.settings;
    let next = IDLE;
    if (this.primaryEvery > 0 && this.broker > 0) {
      const left = this.primaryEvery - elapsed(this.connectedAt, now);
      if (left <= 0) {
        this.p.log.write(LOG_INFO, "mqtt: trying the first broker again");
        this.sendControl(encodeEmpty(this.ack, 0, ACK_BUF, PacketType.Disconnect));
        this.drop("primary-retry");
        return 0;
      }
      next = left;
    }
    if (s.keepalive === 0) return next;
    if (this.pingOut) {
      const left = s.pingTimeoutMs - elapsed(this.pingAt, now);
      if (left <= 0) {
        this.drop("ping-timeout");
        return 0;
      }
      return sooner(next, left);
    }
    const ka = s.keepalive * 1000;
    const sentLeft = ka - elapsed(this.lastSent, now);
    const recvLeft = ka - elapsed(this.lastRecv, now);
    const left = sentLeft < recvLeft ? sentLeft : recvLeft;
    if (left <= 0) {
      this.pingOut = true;
      this.pingAt = now;
      this.stats.pings = this.stats.pings + 1;
      this.sendControl(encodeEmpty(this.ack, 0, ACK_BUF, PacketType.Pingreq));
      return sooner(next, s.pingTimeoutMs);
    }
    return sooner(next, left);
  }

  // ---------------------------------------------------------------------------------------------
  // Wire

  private send(buf: Bytes, n: number): void {
    this.lastSent = this.p.clock.now();
    if (!this.p.transport.write(port.bytes.toWire(buf, 0, n))) this.blocked = true;
  }

  private sendControl(n: number): void {
    if (n > 0) this.send(this.ack, n);
  }

  private data(c: Chunk): void {
    const d = this.dec;
    const size = port.bytes.chunkLength(c);
    this.lastRecv = this.p.clock.now();
    let at = 0;
    while (at < size && (this.state === State.Connected || this.state === State.Handshake)) {
      at = d.push(c, at);
      const st = d.status;
      if (st === Status.Packet) this.packet(d);
      else if (st === Status.Oversize) {
        if (this.state === State.Handshake) this.violation("protocol-error", "a PUBLISH arrived before CONNACK (MQTT-3.2.0-1)");
        else this.oversize(d);
      }
      else if (st === Status.Error) {
        this.violation("malformed-packet", `${codecErrorName(d.error)}: ${codecErrorMessage(d.error)}`);
        return;
      }
    }
  }

  private packet(d: Decoder): void {
    const t = d.type;
    if (this.state === State.Handshake) {
      if (t !== PacketType.Connack) {
        this.violation("protocol-error", "a packet other than CONNACK arrived before CONNACK (MQTT-3.2.0-1)");
        return;
      }
      this.connack(d);
      return;
    }
    if (t === PacketType.Publish) this.incoming(d);
    else if (t === PacketType.Puback) this.puback(d.packetId);
    else if (t === PacketType.Pubrec) this.pubrec(d.packetId);
    else if (t === PacketType.Pubrel) {
      this.received.remove(d.packetId);
      this.sendControl(encodeAck(this.ack, 0, ACK_BUF, PacketType.Pubcomp, d.packetId));
    } else if (t === PacketType.Pubcomp) this.pubcomp(d.packetId);
    else if (t === PacketType.Suback || t === PacketType.Unsuback) this.requestAcked(d);
    else if (t === PacketType.Pingresp) {
      if (this.pingOut) this.stats.pingMs = elapsed(this.pingAt, this.p.clock.now());
      this.pingOut = false;
    }
    else this.violation("protocol-error", "a second CONNACK arrived (MQTT-3.2.0-1)");
  }

  private connack(d: Decoder): void {
    if (d.returnCode !== 0) {
      const e = connackError(d.returnCode);
      this.report(e);
      this.drop(e.code);
      return;
    }
    const now = this.p.clock.now();
    this.state = State.Connected;
    this.up = true;
    this.round = 0;
    this.connectedAt = now;
    this.lastRecv = now;
    this.sessionPresent = d.sessionPresent;
    this.stats.connects = this.stats.connects + 1;
    this.primaryBackoff();
    const b = this.settings.brokers[this.broker];
    this.p.log.write(LOG_INFO, `mqtt: connected to ${b.host}:${b.port} (session ${d.sessionPresent ? "resumed" : "new"}, outbox ${this.outbox.count})`);
    // A broker other than the one our state was built with (failover between brokers that do
    // not share sessions) knows nothing of it, whatever its session present says.
    const foreign = this.sessionBroker >= 0 && this.sessionBroker !== this.broker;
    // Incoming QoS 2 ids are per broker: a broker returned to with its session still there
    // sends its unreleased messages again, and its ids must still catch them; a broker without
    // our session sends nothing again, and its old ids would only suppress new messages.
    this.received.scope(this.broker);
    if (!d.sessionPresent) this.received.clear();
    if (!d.sessionPresent || foreign) {
      // Outgoing QoS 2 past PUBREC start again from PUBLISH (the README says why: at-least-once
      // across a lost session).
      for (let k = 0; k < this.outbox.count; k++) this.outbox.restart(k);
    }
    if (!d.sessionPresent) this.resubscribe();
    if (this.sessionBroker !== this.broker) {
      const pre = this.settings.storePrefix + "b";
      if (this.sessionBroker >= 0) this.p.storage.remove(pre + this.sessionBroker);
      this.sessionBroker = this.broker;
      this.p.storage.write(pre + this.broker, this.ack, 0);
    }
    this.p.sched.wake(this.task);
    if (this.ev.onConnect !== undefined) this.ev.onConnect(d.sessionPresent);
    if (this.state !== State.Connected) return;
    this.sendRequests();
    this.pump();
    this.flushOffline();
  }

  /**
   * On the first broker the primary retry period starts over; back on a fallback because the
   * first is still down, it doubles (up to 16 times primaryRetry, at most 12 hours), so a long
   * outage of the first broker does not cut the working connection every few minutes.
   */
  private primaryBackoff(): void {
    const s = this.settings;
    if (this.broker === 0) this.primaryEvery = s.primaryRetryMs;
    else if (this.retryingPrimary) {
      let cap = s.primaryRetryMs * 16;
      if (cap > 43200000) cap = 43200000;
      if (cap < s.primaryRetryMs) cap = s.primaryRetryMs;
      this.primaryEvery = this.primaryEvery * 2 < cap ? this.primaryEvery * 2 : cap;
    }
    this.retryingPrimary = false;
  }

  /** The broker lost the session: subscribe again to every filter (before any pending request). */
  private resubscribe(): void {
    this.reqs.restoreFrom(this.subFilters, this.subQos, this.subCount, this.tx, this.settings.maxPacket);
    this.txSeq = 0;
  }

  /** SUBACK / UNSUBACK: completes the request with that id; refused filters are forgotten. */
  private requestAcked(d: Decoder): void {
    const r = this.reqs;
    const k = r.find(d.packetId);
    if (k < 0) {
      this.stats.ignored = this.stats.ignored + 1;
      return;
    }
    const isSub = d.type === PacketType.Suback;
    if (isSub !== (r.kinds[k] === PacketType.Subscribe)) {
      this.violation("protocol-error", `${isSub ? "SUBACK" : "UNSUBACK"} answers a request of the other kind (id ${d.packetId})`);
      return;
    }
    const count = r.sizes[k];
    if (isSub && d.subackCount() !== count) {
      this.violation("protocol-error", `SUBACK has ${d.subackCount()} return codes for ${count} filters (MQTT-3.8.4-5)`);
      return;
    }
    const filters = r.filters[k];
    let granted: number[] | undefined = undefined;
    let refused = "";
    if (isSub) {
      granted = [];
      for (let i = 0; i < count; i++) {
        const code = d.subackCode(i);
        granted[i] = code;
        if (code === 128) {
          this.forget(filters[i]);
          refused = refused === "" ? filters[i] : refused + ", " + filters[i];
        }
      }
    }
    const done = r.remove(k);
    if (refused !== "") {
      const e = fail("subscribe-refused", `the broker refused the subscription to ${refused} (SUBACK 0x80); fix: check the broker's ACL for this client and the filter`);
      if (done === undefined) this.report(e);
      else this.p.log.write(LOG_WARN, `mqtt: ${e.message}`);
    }
    if (done !== undefined) done(undefined, granted);
  }

  private incoming(d: Decoder): void {
    const qos = d.qos;
    const id = d.packetId;
    if (qos === 2) {
      if (this.received.has(id)) {
        this.stats.duplicates = this.stats.duplicates + 1;
        this.sendControl(encodeAck(this.ack, 0, ACK_BUF, PacketType.Pubrec, id));
        return;
      }
      this.remember2(id);
    }
    const topic = d.topic();
    const payload = port.bytes.toWire(d.data, d.payloadStart, d.payloadEnd);
    this.stats.delivered = this.stats.delivered + 1;
    for (let k = 0; k < this.subCount; k++) {
      const h = this.subHandlers[k];
      if (h !== undefined && topicMatches(this.subFilters[k], topic)) h(topic, payload, qos, d.retain, d.dup);
    }
    if (this.ev.onMessage !== undefined) this.ev.onMessage(topic, payload, qos, d.retain, d.dup);
    if (this.state !== State.Connected) return;
    if (qos === 1) this.sendControl(encodeAck(this.ack, 0, ACK_BUF, PacketType.Puback, id));
    else if (qos === 2) this.sendControl(encodeAck(this.ack, 0, ACK_BUF, PacketType.Pubrec, id));
  }

  /** Keeps an incoming QoS 2 id until its PUBREL. */
  private remember2(id: number): void {
    if (this.received.count >= this.settings.receiveWindow) {
      // MQTT 3.1.1 has no receive maximum and mosquitto does not bound unreleased QoS 2 to its
      // window: forget the oldest id rather than refuse the stream. Its protection matters only
      // if the broker sends that PUBLISH again before PUBREL, which it does only after a reconnect.
      this.received.evictOldest();
      this.stats.evicted = this.stats.evicted + 1;
      if (this.stats.evicted === 1) this.p.log.write(LOG_WARN, `mqtt: more than ${this.settings.receiveWindow} QoS 2 messages wait for PUBREL; the oldest ids are forgotten (raise receiveWindow)`);
    }
    if (this.received.add(id) !== 0) this.report(fail("storage-failed", "an incoming QoS 2 id could not be stored; after a restart a duplicate could be delivered; fix: check the flash"));
  }

  private oversize(d: Decoder): void {
    const qos = d.qos;
    const id = d.packetId;
    this.stats.oversize = this.stats.oversize + 1;
    const where = d.topicKnown ? ` on ${d.topic()}` : "";
    this.report(fail("message-too-large", `a ${d.payloadLength}-byte message${where} is larger than maxPacket (${this.settings.maxPacket}) and was skipped; fix: raise maxPacket, or publish smaller messages`));
    if (qos === 1) this.sendControl(encodeAck(this.ack, 0, ACK_BUF, PacketType.Puback, id));
    else if (qos === 2) {
      if (!this.received.has(id)) this.remember2(id);
      this.sendControl(encodeAck(this.ack, 0, ACK_BUF, PacketType.Pubrec, id));
    }
  }

  private puback(id: number): void {
    const k = this.outbox.find(id);
    if (k < 0 || this.outbox.phases[k] !== Phase.Sent) {
      this.stats.ignored = this.stats.ignored + 1;
      return;
    }
    if (this.outbox.qoss[k] !== 1) {
      this.violation("protocol-error", `PUBACK for QoS 2 message ${id} (MQTT-4.3.3)`);
      return;
    }
    this.complete(k);
  }

  private pubrec(id: number): void {
    const o = this.outbox;
    const k = o.find(id);
    if (k >= 0 && o.qoss[k] !== 2) {
      this.violation("protocol-error", `PUBREC for QoS 1 message ${id} (MQTT-4.3.2)`);
      return;
    }
    if (k >= 0 && o.phases[k] === Phase.Sent) {
      if (o.release(k) !== 0) this.p.log.write(LOG_WARN, `mqtt: could not store that message ${id} is past PUBREC; a restart would resend its PUBLISH`);
    } else if (k < 0) {
      // Not ours (completed before a restart, or lost): PUBREL lets the broker free the id.
      this.stats.ignored = this.stats.ignored + 1;
    }
    this.sendControl(encodeAck(this.ack, 0, ACK_BUF, PacketType.Pubrel, id));
  }

  private pubcomp(id: number): void {
    const k = this.outbox.find(id);
    if (k < 0 || this.outbox.phases[k] !== Phase.Released) {
      this.stats.ignored = this.stats.ignored + 1;
      return;
    }
    this.complete(k);
  }

  private complete(k: number): void {
    if (this.txSeq === this.outbox.seqs[k]) this.txSeq = 0;
    const done = this.outbox.remove(k);
    if (done !== undefined) done(undefined);
    this.pump();
  }
}
