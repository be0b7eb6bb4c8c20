import { PacketType, Status } from "../codec/constants";
import { Decoder } from "../codec/decoder";
import { encodeConnect, encodePublish, encodeShort, payloadSize, type Payload } from "../codec/encode";
import { topicMatches } from "../codec/topic";
import type { Bytes, Out, Wire } from "../port/bytes";
import type { PetrelError } from "../port/log";
// (the log levels as one local: NodeMCU loads no function with more than 50)
import * as lg from "../port/log";
import { port } from "../port/port";
import { STORAGE_FULL } from "../port/storage";
import type { TransportEvents } from "../port/transport";
import { IDLE } from "../sched/scheduler";
import { after, due, elapsed, remaining } from "../sched/time";
import { FEATURE_ALIASIN, FEATURE_AUTH, FEATURE_FAILOVER, FEATURE_MQTT5, FEATURE_QOS2 } from "../features";
import { codecFail, connackError, explainClose, fail } from "./errors";
import { settle, type ClientOptions, type Settings } from "./options";
import { Outbox, Phase, Received, parseDecimal, type Done } from "./outbox";
import { Ended, nextAttempt } from "./policy";
import type { Platform } from "../port/platform";
import { Requests, type RequestDone } from "./requests";
// one name for the module (client.lua's main chunk is near NodeMCU's 50 locals)
import * as queues from "./queues";
// MQTT 5.0's session work (left out of a build without the mqtt5 feature)
import * as s5 from "./session5";
import * as a5 from "./auth5";
import * as al from "./alias5";
import type { Session5 } from "./session5";
import type { Props5 } from "../codec/mqtt5";
import type { MessageHandler, OfflineQueue, Subscriptions } from "./queues";
export type { MessageHandler } from "./queues";

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
  Backoff = 5,
  /** Asked the transport to close, waiting for it to say it has. */
  Closing = 6,
  /** Waiting for the network link to come up: no dialling meanwhile. */
  LinkWait = 7,
}

/** What the program asked of the client: nothing yet (or ended), to run, or to end (the close under way). */
export const enum Mode {
  Stopped = 0,
  Running = 1,
  Ending = 2,
}

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

/**
 * The connection's times, apart from the client's other fields: a Lua table's fields take a
 * power of two of slots, and the client stays within 32 this way (and this table within 8).
 */
interface LinkTimes {
  deadline: number;
  connectedAt: number;
  lastSent: number;
  lastRecv: number;
  /** 1 while a PINGREQ waits for its PINGRESP, else 0. */
  pingOut: number;
  pingAt: number;
  /** 1 once the broker has acknowledged an outbox message on this connection (it is not short-lived: see stableMs), else 0. */
  acked: number;
  /**
   * The message the broker may be refusing: its packet id x 16 + the short-lived connections in a
   * row that ended with it the oldest unacknowledged PUBLISH (0: none). It goes alone until
   * acknowledged; at refusedAfter it is held.
   */
  suspect: number;
}

/** How often a client waiting for its network link checks it, in case the link's event is lost. */
export const LINK_POLL_MS = 5000;

/**
 * The MQTT 3.1.1 session: one connection at a time to the first broker of the list that
 * answers, reconnecting with backoff, keeping every accepted QoS 1/2 message in the outbox
 * (storage) until the broker acknowledges it. Written once for every target: it talks to the
 * board only through the Platform. Nothing here throws; errors are values or onError events.
 *
 * Few, larger methods on purpose: on Espruino every function costs RAM (about five variable
 * slots, more with parameters) even with its code in flash, so the work is split by event
 * (publish, a timer, a packet, a close), not into many small helpers.
 *
 * Its state is `state` (where the connection is) and `mode` (what the program asked for), typed;
 * what else it keeps are numbers, strings and objects, never a boolean flag: 29 fields (v5 set only at protocol 5), held by
 * test/session-shape.test.ts (a Lua table's fields take a power of two of slots: under 32).
 */
export class Client {
  readonly settings: Settings;
  state: State = State.Stopped;
  /** The broker (index into settings.brokers) of the current or next attempt. */
  broker = 0;
  /** Why the last connection ended. */
  lastReason = "";
  /** The last error reported (for diag). */
  lastError: PetrelError | undefined = undefined;
  readonly stats: ClientStats = { connects: 0, attempts: 0, published: 0, delivered: 0, dropped: 0, duplicates: 0, ignored: 0, oversize: 0, evicted: 0, pings: 0, lowMemory: 0, pingMs: -1 };
  readonly outbox: Outbox;
  /** Incoming QoS 2 ids between PUBREC and PUBREL (undefined in a build without QoS 2). */
  readonly received: Received | undefined;
  /** QoS 0 messages waiting in RAM for a connection: a ring of `count` from `head`. */
  readonly q0: OfflineQueue = { topics: [], payloads: [], retain: [], dones: [], head: 0, count: 0 };
  /** Filters the client subscribes to (restored after a session loss): filter, QoS, handler. */
  readonly subs: Subscriptions = { filters: [], qos: [], handlers: [], count: 0 };

  /** The platform the client runs on (its storage holds the outbox and the held messages). */
  readonly p: Platform;
  private readonly ev: ClientEvents;
  /** The packet writer every packet is encoded into, then sent as one Wire. */
  private readonly tx: Out;
  private readonly dec: Decoder;
  private readonly reqs: Requests;
  private readonly task: number;
  /** Connection generation: events of older connections are ignored. */
  private gen = 0;
  /** Failed rounds over the broker list since the last success. */
  private round = 0;
  private mode: Mode = Mode.Stopped;
  /** 1 once this connection's CONNACK accepted it (until closed() has reported its end), else 0. */
  private up = 0;
  /** The close reason chosen by this client (reported instead of the transport's). */
  private reason = "";
  /**
   * 1 once an error of this attempt has been reported (so its close is not reported again); 2 when
   * none has yet and the attempt before failed, its error in lastError: the same failure again is
   * an info line, not another warning (report()); else 0 (at start(), and from each CONNACK and
   * each connection's end until an attempt fails).
   */
  private reported = 0;
  /** The connection's clock: its deadline (CONNACK, PINGRESP), when it came up, the last packet each way, the ping out. */
  private readonly t: LinkTimes = { deadline: 0, connectedAt: 0, lastSent: 0, lastRecv: 0, pingOut: 0, pingAt: 0, acked: 0, suspect: 0 };
  /** 1 while the transport's buffer is full (write returned false) until it drains, else 0. */
  private blocked = 0;
  private nextId = 1;
  /** How long to stay on a fallback broker before trying the first again (grows while it stays down). */
  private primaryEvery = 0;
  /** 1 while dialling the first broker again from a fallback (primaryRetry), else 0. */
  private retryingPrimary = 0;
  /**
   * Index of the broker whose session the outbox phases and incoming QoS 2 ids belong to (a
   * marker record `<prefix>b<index>` keeps it across reboots), -1 when not known yet.
   */
  private sessionBroker = -1;
  /**
   * At protocol 5 (a build with mqtt5): the 5.0 settings and what the broker's last CONNACK said
   * (session5.ts); not set at all at 3.1.1, so a 3.1.1 client keeps no field for it.
   */
  declare readonly v5: Session5 | undefined;

  private constructor(p: Platform, s: Settings, ev: ClientEvents) {
    this.p = p;
    this.settings = s;
    this.ev = ev;
    this.tx = port.bytes.out(s.maxPacket);
    this.dec = new Decoder(s.maxPacket);
    this.outbox = new Outbox(p.storage, s.storePrefix);
    this.received = FEATURE_QOS2 ? new Received(p.storage, s.storePrefix) : undefined;
    this.reqs = new Requests(s.maxRequests);
    this.primaryEvery = s.primaryRetryMs;
    // `self`, not `this`, in an arrow inside a branch: see the guard's arrow-this-skipped rule.
    const self = this;
    this.task = p.sched.enqueue({ name: "mqtt", step: (now: number) => self.tick(now) }, 0);
    p.sched.cancel(this.task);
    if (p.link !== undefined) {
      p.link.watchLink((up) => {
        if (self.mode !== Mode.Running) return;
        if (up) {
          // Only a client waiting for the link dials now (step() sees the link up and dials): one
          // in an ordinary backoff keeps it, so a flapping link cannot make it hammer a broker.
          if (self.state === State.LinkWait) p.sched.wake(self.task);
        } else if (self.state !== State.Backoff && self.state !== State.LinkWait && self.state !== State.Stopped) {
          self.drop("no-network");
        }
      });
    }
  }

  /**
   * Checks the options (and that CONNECT can be encoded), loads the outbox and the incoming QoS 2
   * ids left by an earlier run, and returns the client, stopped; or an error value saying what to
   * fix. Call start() to connect.
   */
  static create(p: Platform, o: ClientOptions, ev: ClientEvents): Client | PetrelError {
    const s = settle(o, p.chipId);
    if ("code" in s) return s;
    let v5: Session5 | undefined = undefined;
    if (FEATURE_MQTT5) {
      const r = s5.settle5(o, s.clean);
      if (r !== undefined && "code" in r) return r;
      v5 = r;
    } else if (o.protocolVersion !== undefined && o.protocolVersion !== 4) {
      return fail("bad-option", "this build leaves MQTT 5.0 out (its board profile's features); fix: set protocolVersion 4");
    }
    if (FEATURE_AUTH) {
      const e = a5.settleAuth(o, v5);
      if (e !== undefined) return e;
    } else if (o.authMethod !== undefined) {
      return fail("bad-option", "this build leaves enhanced authentication out (its board profile's features); fix: authenticate with username and password");
    }
    if (!FEATURE_ALIASIN && o.topicAliasesIn !== undefined && o.topicAliasesIn !== 0) {
      return fail("bad-option", "this build leaves incoming topic aliases out (its board profile's features); fix: set topicAliasesIn 0");
    }
    // `this`, not `Client`: Espruino does not bind a class expression's own name inside it
    const c = new this(p, s, ev);
    const n = FEATURE_MQTT5 && v5 !== undefined ? s5.connect5(c.tx, s, v5) : encodeConnect(c.tx, s.maxPacket, s);
    c.tx.discard();
    if (n < 0) return fail("bad-option", `CONNECT cannot be built: ${codecFail(n).message} (client id, user name, will); fix: correct that option`);
    const loaded = c.outbox.load(s.maxPacket);
    if (c.outbox.tooLarge > 0) {
      p.log.writeLog(lg.LOG_WARN, `mqtt: ${c.outbox.tooLarge} outbox record(s) are larger than maxPacket (${s.maxPacket}); they stay in storage: raise maxPacket to send them`);
    }
    if (loaded > 0) {
      c.nextId = c.outbox.idAt(loaded - 1) === 65535 ? 1 : c.outbox.idAt(loaded - 1) + 1;
      p.log.writeLog(lg.LOG_INFO, `mqtt: resuming ${loaded} outbox message(s) from storage`);
    }
    if (c.outbox.removed > 0) p.log.writeLog(lg.LOG_WARN, `mqtt: removed ${c.outbox.removed} unreadable outbox record(s)`);
    if (FEATURE_MQTT5) {
      // the level the outbox's records were written at (a record says 5.0); at 3.1.1 they go back to it now
      const at5 = p.storage.getRecord(s.storePrefix + "v") !== undefined ? 1 : 0;
      if (v5 !== undefined) {
        v5.stored = at5;
        // a stored message's Message Expiry counts from this boot (a board keeps no time across a reboot)
        for (let k = 0; at5 === 1 && k < c.outbox.count; k++) {
          const w = c.outbox.wireAt(k);
          if (w !== undefined) s5.noteExpiry(v5, c.outbox.idAt(k), w, p.clock.clockNow());
        }
        (c as { v5: Session5 | undefined }).v5 = v5;
      } else if (at5 === 1) s5.alignOutbox(at5, c.outbox, p.storage, s.storePrefix, c.tx, 4);
    }
    if (c.received !== undefined) c.received.load();
    // The owner marker: one record. Should there be more, the lowest broker number is kept and the
    // rest removed, whatever order the storage lists them in (NodeMCU's file.list() has none).
    const owner = p.storage.listRecords(s.storePrefix + "b");
    let keep = -1;
    for (let i = 0; i < owner.length; i++) {
      const k = parseDecimal(owner[i], s.storePrefix.length + 1);
      if (k >= 0 && (keep < 0 || k < c.sessionBroker)) {
        keep = i;
        c.sessionBroker = k;
      }
    }
    for (let i = 0; i < owner.length; i++) if (i !== keep) p.storage.dropRecord(owner[i]);
    return c;
  }

  /** Starts connecting (to the first broker). */
  start(): void {
    if (this.mode === Mode.Running) return;
    const ending = this.mode === Mode.Ending;
    this.mode = Mode.Running;
    if (this.state === State.Closing) {
      // end() is still closing: that end is complete as far as the program is concerned, and
      // the close under way leads to a reconnect instead of a stop.
      if (ending && this.ev.onEnd !== undefined) this.ev.onEnd();
      return;
    }
    this.broker = 0;
    this.round = 0;
    this.reported = 0;
    this.attempt();
  }

  /**
   * Ends the session: DISCONNECT (so the broker does not publish the will), then close. Messages
   * not yet acknowledged stay in the outbox (storage) for the next start. `withWill`: the broker
   * publishes the will as it would for a lost connection (MQTT 5.0: DISCONNECT with reason 0x04;
   * at 3.1.1, which has no such reason: the connection closed without DISCONNECT).
   */
  end(withWill?: boolean): void {
    if (this.mode !== Mode.Running) return;
    this.mode = Mode.Ending;
    const st = this.state;
    const c5 = this.v5;
    if (st === State.Connected && withWill !== true) this.control(PacketType.Disconnect, 0);
    else if (FEATURE_MQTT5 && st === State.Connected && c5 !== undefined && c5.level === 5 && s5.goodbye(c5, this.tx, "will") > 0) this.send(this.tx.toWire());
    if (st === State.Connected || st === State.Opening || st === State.Handshake) this.drop("");
    else if (st !== State.Closing) {
      // (a close under way finishes the end by itself)
      this.gen = this.gen + 1;
      this.closed("", true);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Publishing

  /**
   * Publishes a message. QoS 1/2: stored in the outbox before this returns, then sent in order
   * within the in-flight window; `done` runs when the broker acknowledges it. QoS 0: sent now, or
   * queued in RAM while offline (bounded, oldest dropped). Returns undefined when accepted, or an
   * error value (nothing was accepted) naming the problem and the fix. `props`: the PUBLISH's
   * MQTT 5.0 properties (sent at 5.0, left out at 3.1.1); a messageExpiry among them also bounds
   * how long the message may wait in the outbox.
   */
  publish(topic: string, payload: Payload, qos: number, retain: boolean, done: Done | undefined, props?: Props5): PetrelError | undefined {
    const s = this.settings;
    if (qos !== 0 && qos !== 1 && (qos !== 2 || !FEATURE_QOS2)) {
      return fail("invalid-qos", FEATURE_QOS2 ? "QoS must be 0, 1 or 2" : "this build leaves QoS 2 out (its board profile's features); QoS must be 0 or 1");
    }
    const low = this.memoryLow();
    if (low !== undefined) return low;
    const full = qos > 0 && this.outbox.count >= s.outboxMessages;
    if (full) {
      return fail("outbox-full", `the outbox holds ${this.outbox.count} messages, its limit; fix: wait for the broker to acknowledge (is it connected?), or raise outboxMessages`);
    }
    const lv = this.level();
    const c5 = this.v5;
    // the outbox's records at this level before one more is added
    if (FEATURE_MQTT5 && c5 !== undefined && qos > 0) c5.stored = s5.alignOutbox(c5.stored, this.outbox, this.p.storage, s.storePrefix, this.tx, lv);
    const id = qos > 0 ? this.allocId() : 0;
    const n = FEATURE_MQTT5 && lv === 5 ? s5.publish5(this.tx, s.maxPacket, topic, payload, qos, retain, id, props) : encodePublish(this.tx, s.maxPacket, topic, payload, qos, retain, false, id);
    if (n < 0) {
      if (-n !== 1) return codecFail(n);
      const size = payloadSize(payload) + port.bytes.textLength(topic) + 9;
      return fail("message-too-large", `the message needs about ${size} bytes, more than maxPacket (${s.maxPacket}); fix: raise maxPacket or send less`);
    }
    if (FEATURE_MQTT5 && c5 !== undefined) {
      // what the broker said it cannot take (its last CONNACK) is refused here, not sent
      const e = s5.publishLimits(c5, qos, retain, n);
      if (e !== undefined) {
        this.tx.discard();
        return e;
      }
    }
    if (qos === 0) {
      if (this.state === State.Connected) {
        this.stats.published = this.stats.published + 1;
        this.send(this.tx.toWire());
        if (done !== undefined) done(undefined);
        return undefined;
      }
      this.tx.discard();
      const cap = s.offlineQueue;
      if (cap === 0) return fail("offline", "not connected, and offlineQueue is 0, so the QoS 0 message was not kept; fix: publish at QoS 1, or set offlineQueue");
      this.stats.published = this.stats.published + 1;
      if (this.q0.count === cap) {
        // the oldest makes room (and hears why)
        const old = queues.shiftOffline(this.q0, cap);
        this.stats.dropped = this.stats.dropped + 1;
        if (old !== undefined) old(fail("dropped", `the QoS 0 message waited offline behind ${cap} newer ones and was dropped; fix: publish at QoS 1 what must arrive, or raise offlineQueue`));
      }
      // (at 5.0 its properties wait beside it, at the ring's same place)
      if (FEATURE_MQTT5 && c5 !== undefined) c5.q0props[(this.q0.head + this.q0.count) % cap] = props;
      queues.pushOffline(this.q0, cap, topic, payload, retain, done);
      return undefined;
    }
    if (this.outbox.bytes + n > s.outboxBytes) {
      this.tx.discard();
      return fail("outbox-full", `the outbox holds ${this.outbox.bytes} of ${s.outboxBytes} bytes and this message needs ${n}; fix: wait for acknowledgements, or raise outboxBytes`);
    }
    const w = this.tx.toWire();
    if (FEATURE_MQTT5 && c5 !== undefined && lv === 5) s5.noteExpiry(c5, id, w, this.p.clock.clockNow());
    const r = this.outbox.admit(w, id, qos, done);
    if (r !== 0) {
      return r === STORAGE_FULL
        ? fail("storage-full", "storage is full, so the message cannot be kept; fix: free flash (fewer or smaller outbox messages), or lower outboxBytes below the free space")
        : fail("storage-failed", "writing the message to storage failed; fix: check the flash (the board's storage may be worn or full)");
    }
    this.stats.published = this.stats.published + 1;
    this.pump(false);
    return undefined;
  }

  /** The refusal when free heap is under the floor (minFreeHeap), else undefined. */
  private memoryLow(): PetrelError | undefined {
    const floor = this.settings.minFreeHeap;
    const free = this.p.freeHeap;
    if (floor === 0 || free === undefined) return undefined;
    const n = free(floor);
    if (n >= floor) return undefined;
    this.stats.lowMemory = this.stats.lowMemory + 1;
    return fail("low-memory", `free heap is ${n} bytes, under the ${floor}-byte floor (minFreeHeap), so nothing was kept; fix: publish less often or smaller, lower maxPacket or outboxMessages, or free memory elsewhere`);
  }

  /**
   * The protocol level of the connection (5 or 4), or of the next one while offline: 4 without
   * 5.0, or when this broker answered 5.0 in 3.1.1.
   */
  private level(): number {
    const c5 = this.v5;
    if (FEATURE_MQTT5 && c5 !== undefined) {
      if (this.state === State.Connected || this.state === State.Handshake) return c5.level;
      return s5.withBit(c5.old, this.broker) === c5.old ? 4 : 5;
    }
    return 4;
  }

  /** A message's error to its callback (and the log), or without one to onError. */
  private tell(e: PetrelError, done: Done | undefined): void {
    if (done === undefined) this.report(e);
    else {
      this.lastError = e;
      this.p.log.writeLog(lg.LOG_WARN, `mqtt: ${e.code}: ${e.message}`);
      done(e);
    }
  }

  /** A packet id not used by any message in flight or request waiting (MQTT-2.3.1-2). */
  private allocId(): number {
    for (let tries = 0; tries < 65535; tries++) {
      const id = this.nextId;
      this.nextId = id === 65535 ? 1 : id + 1;
      if (this.outbox.slotOf(id) < 0 && this.reqs.slotFor(id) < 0) return id;
    }
    return 0; // unreachable: the outbox and requests are far below 65,535 entries
  }

  /**
   * Sends outbox messages as the in-flight window allows (PUBLISH for queued ones, PUBREL for
   * released ones). With `all` (a new connection, a new request): subscribe/unsubscribe requests
   * first, and the QoS 0 messages that waited offline last. (A publish sends its message at once,
   * ahead of requests still unsent: a status published from onConnect leaves first.)
   */
  private pump(all: boolean): void {
    const s = this.settings;
    const o = this.outbox;
    const lv = this.level();
    // `self` in the arrow: the minifier may put it where Espruino skips code (tools/guard)
    const self = this;
    for (;;) {
      if (this.state !== State.Connected || !all) break;
      const n = this.reqs.encodeNext(this.tx, s.maxPacket, () => self.allocId(), lv === 5);
      if (n <= 0) break;
      this.send(this.tx.toWire());
    }
    if (this.state !== State.Connected) return;
    let inflight = 0;
    let win = s.maxInflight;
    const c5 = this.v5;
    // at 5.0 the broker's Receive Maximum bounds the window too
    if (FEATURE_MQTT5 && c5 !== undefined && c5.level === 5 && c5.recvMax < win) win = c5.recvMax;
    // a message the broker may be refusing goes alone, so that its evidence is its own (stableMs)
    const lone = port.ints.idiv(this.t.suspect, 16);
    for (let k = 0; k < o.count; k++) {
      const ph = o.phaseAt(k);
      if (ph === Phase.Sent || ph === Phase.Released) {
        inflight = inflight + 1;
      } else {
        if (inflight >= win || this.blocked !== 0) break;
        if (ph === Phase.ReleaseQueued) {
          o.markReleaseSent(k);
          this.control(PacketType.Pubrel, o.idAt(k));
        } else {
          let w = o.wireAt(k);
          // at 5.0 a message whose Message Expiry has passed goes unsent; one whose has not goes with what is left
          const u = FEATURE_MQTT5 && c5 !== undefined && lv === 5 && w !== undefined ? s5.unexpired(c5, this.tx, w, o.idAt(k), this.p.clock.clockNow()) : w;
          if (FEATURE_MQTT5 && u === undefined && w !== undefined) {
            this.tell(s5.dropExpired(c5 as Session5, o.idAt(k)), o.takeAt(k));
            k = k - 1;
            continue;
          }
          w = u;
          if (w === undefined) {
            const done = o.takeAt(k);
            const e = fail("storage-failed", "an outbox message could not be read back from storage and is lost; fix: check the flash");
            this.report(e);
            if (done !== undefined) done(e);
            k = k - 1; // message k was removed: the next one is at k now
            continue;
          }
          if (o.markSent(k) !== 0) w = port.bytes.dup(w);
          this.send(w);
        }
        inflight = inflight + 1;
        if (this.state !== State.Connected) return;
      }
      if (o.idAt(k) === lone && o.phaseAt(k) === Phase.Sent) break;
    }
    while (all && this.q0.count > 0 && this.state === State.Connected) {
      const k = this.q0.head;
      const n = FEATURE_MQTT5 && lv === 5 ? s5.publish5(this.tx, s.maxPacket, this.q0.topics[k], this.q0.payloads[k], 0, this.q0.retain[k] !== 0, 0, (c5 as Session5).q0props[k])
        : encodePublish(this.tx, s.maxPacket, this.q0.topics[k], this.q0.payloads[k], 0, this.q0.retain[k] !== 0, false, 0);
      if (FEATURE_MQTT5 && c5 !== undefined) c5.q0props[k] = undefined;
      const done = queues.shiftOffline(this.q0, s.offlineQueue);
      if (n > 0) this.send(this.tx.toWire());
      if (done !== undefined) done(undefined);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Subscriptions

  /**
   * Subscribes to `count` filters at the given QoS, routing matching messages to `handler` (if
   * given). Sent now when connected, else at the next connection. `done` gets the granted QoS per
   * filter (128 = refused by the broker). Returns an error value when nothing was accepted.
   */
  subscribe(filters: string[], qos: number[], count: number, handler: MessageHandler | undefined, done: RequestDone | undefined): PetrelError | undefined {
    return this.request(filters, qos, count, handler, done);
  }

  /** Unsubscribes from `count` filters; their handlers stop at once. */
  unsubscribe(filters: string[], count: number, done: RequestDone | undefined): PetrelError | undefined {
    return this.request(filters, undefined, count, undefined, done);
  }

  /** A SUBSCRIBE (`qos` given) or UNSUBSCRIBE request: checked, queued, and the filters remembered or forgotten. */
  private request(filters: string[], qos: number[] | undefined, count: number, handler: MessageHandler | undefined,
    done: RequestDone | undefined): PetrelError | undefined {
    if (qos !== undefined) {
      const low = this.memoryLow();
      if (low !== undefined) return low;
      const c5 = this.v5;
      const no = FEATURE_MQTT5 && c5 !== undefined ? s5.filterLimits(c5, filters, count, qos[0] >= 64 ? port.ints.idiv(qos[0], 64) : 0) : undefined;
      if (no !== undefined) return no;
    }
    const e = this.reqs.track(filters, qos, count, done, this.tx, this.settings.maxPacket, this.level() === 5);
    if (e !== undefined) return e;
    for (let i = 0; i < count; i++) {
      if (qos !== undefined) queues.keepFilter(this.subs, filters[i], qos[i], handler);
      else queues.dropFilter(this.subs, filters[i]);
    }
    this.pump(true);
    return undefined;
  }


  // ---------------------------------------------------------------------------------------------
  // Connection lifecycle

  /** Dials the current broker (or waits for the network link first). */
  private attempt(): void {
    const s = this.settings;
    let b = s.brokers[this.broker];
    const c5 = this.v5;
    // at 5.0 a broker that sent the client elsewhere (Server Reference) has that dialled first, once
    if (FEATURE_MQTT5 && c5 !== undefined) b = s5.movedTo(c5, b, this.p.log, lg.LOG_INFO);
    const g = this.gen;
    const l = this.p.link;
    this.p.sched.wake(this.task);
    if (l !== undefined && !l.isUp()) {
      // No dialling until the link returns: the backoff is not spent on a network that is not there.
      this.state = State.LinkWait;
      this.lastReason = "no-network";
      this.p.log.writeLog(lg.LOG_INFO, `mqtt: ${explainClose("no-network")}`);
      return;
    }
    this.state = State.Resolving;
    this.reason = "";
    if (this.reported !== 0) this.reported = 2;
    this.t.deadline = after(this.p.clock.clockNow(), s.connectTimeoutMs);
    this.stats.attempts = this.stats.attempts + 1;
    if (this.stats.attempts > 1 && this.ev.onReconnect !== undefined) this.ev.onReconnect();
    this.p.log.writeLog(lg.LOG_DEBUG, `mqtt: dialling ${b.host}:${b.port}${b.tls === true ? " (tls)" : ""}`);
    this.p.resolver.lookUp(b.host, (address, error) => {
      if (g !== this.gen || this.state !== State.Resolving) return;
      if (error !== "") {
        this.gen = this.gen + 1;
        this.closed(error);
        return;
      }
      this.state = State.Opening;
      const events: TransportEvents = {
        onOpen: () => {
          if (g !== this.gen || this.state !== State.Opening) return;
          const c5 = this.v5;
          if (FEATURE_MQTT5 && c5 !== undefined) {
            c5.level = this.level();
            c5.aliasMax = 0;
          }
          this.state = State.Handshake;
          this.dec.reset();
          this.blocked = 0;
          const n = FEATURE_MQTT5 && c5 !== undefined && c5.level === 5 ? s5.connect5(this.tx, this.settings, c5) : encodeConnect(this.tx, this.settings.maxPacket, this.settings);
          this.t.lastRecv = this.p.clock.clockNow();
          if (n > 0) this.send(this.tx.toWire());
        },
        onData: (c: Bytes) => {
          if (g === this.gen) this.chunk(c);
        },
        onWritable: () => {
          if (g !== this.gen) return;
          this.blocked = 0;
          this.pump(false);
        },
        onClose: (r: string) => {
          if (g !== this.gen) return;
          this.gen = this.gen + 1;
          this.closed(r);
        },
      };
      this.p.transport.openStream(address, b.port, b.tls === true, events, b.host);
    });
  }

  /** Closes the current connection for `reason` ("" = asked by the program); closed() follows. */
  private drop(reason: string): void {
    const st = this.state;
    if (st === State.Closing || st === State.Stopped || st === State.Backoff || st === State.LinkWait) return;
    this.reason = reason;
    if (this.state === State.Resolving) {
      this.gen = this.gen + 1;
      this.closed(reason);
      return;
    }
    // at 5.0 a connection this client closes for the broker's fault ends with a DISCONNECT that says why
    const c5 = this.v5;
    if (FEATURE_MQTT5 && c5 !== undefined && c5.level === 5 && st === State.Connected && s5.goodbye(c5, this.tx, reason) > 0) this.send(this.tx.toWire());
    this.state = State.Closing;
    // a transport that never reports its close must not hang the client
    this.t.deadline = after(this.p.clock.clockNow(), this.settings.connectTimeoutMs);
    this.p.sched.wake(this.task);
    this.p.transport.hangUp();
  }

  /**
   * A connection or attempt has ended: report it, then stop (after end()) or schedule the next
   * attempt: soon from the first broker after a working connection broke; the next broker of the
   * list soon after a failed attempt (failover), and after the last, the first again after the
   * backoff; the first broker at once when a fallback was left to try it again; the same broker
   * at once when it has just shown it speaks 3.1.1 only.
   * `stop`: end() while nothing was open: only the stop (no close to report).
   */
  private closed(transportReason: string, stop?: boolean): void {
    const s = this.settings;
    if (stop === true) {
      this.state = State.Stopped;
      this.mode = Mode.Stopped;
      this.p.sched.cancel(this.task);
      if (this.ev.onEnd !== undefined) this.ev.onEnd();
      return;
    }
    const wasUp = this.up === 1;
    const shaking = this.state === State.Handshake;
    const ending = this.mode === Mode.Ending;
    const reason = this.reason !== "" || ending ? this.reason : transportReason;
    const t = this.t;
    const o = this.outbox;
    // Short-lived (stableMs): closed soon after CONNACK with nothing of the outbox acknowledged.
    const short = wasUp && t.acked === 0 && elapsed(t.connectedAt, this.p.clock.clockNow()) < s.stableMs;
    // Not connected any more before any callback runs: a publish or subscribe from onOffline /
    // onClose must wait for the next connection, not go to the dead one.
    this.state = State.Backoff;
    t.deadline = this.p.clock.clockNow();
    this.up = 0;
    t.pingOut = 0;
    this.blocked = 0;
    this.lastReason = reason;
    // `id`: the oldest PUBLISH sent and not acknowledged on this connection; `rq`: the first
    // SUBSCRIBE or UNSUBSCRIBE sent and not answered (requests go out ahead of messages)
    const id = o.rewind();
    const rq = this.reqs.firstSent();
    // The evidence against a message or request the broker refuses by closing the connection: a
    // short-lived connection closed by the broker or the network (not by this client) while it
    // was the first sent and not answered, refusedAfter times in a row (a request counts as -n).
    let refused = 0;
    let gaveUp = -1;
    if (short && (id > 0 || rq >= 0) && this.reason === "" && !ending) {
      let n = rq >= 0 ? (t.suspect < 0 ? 1 - t.suspect : 1) : port.ints.idiv(t.suspect, 16) === id ? port.ints.imod(t.suspect, 16) + 1 : 1;
      if (n > 15) n = 15;
      t.suspect = rq >= 0 ? -n : id * 16 + n;
      if (n === s.refusedAfter) {
        if (rq >= 0) gaveUp = rq;
        else refused = id;
      }
    } else if (wasUp) {
      t.suspect = 0;
    }
    if (gaveUp >= 0) this.giveUp(gaveUp);
    this.reqs.unsend();
    // one line per attempt that never came up: its report (below, or already given); a connection that ends, here
    if (reason !== "" && wasUp) this.p.log.writeLog(lg.LOG_INFO, `mqtt: connection ended: ${explainClose(reason)}`);
    if (wasUp && this.ev.onOffline !== undefined) this.ev.onOffline(reason);
    // (found again by its id: onOffline may have changed the outbox)
    const at = refused > 0 ? o.slotOf(refused) : -1;
    if (at >= 0) this.hold(at);
    if (!wasUp && this.reported !== 1 && reason !== "") this.report(fail(reason, explainClose(reason)));
    // a broker that closes the connection on a 5.0 CONNECT: 3.1.1 from the next attempt, after the second
    const c5 = this.v5;
    const fb = FEATURE_MQTT5 && c5 !== undefined && shaking && this.reason === "" && !ending ? s5.closedAtConnect(c5, this.broker, s.brokers[this.broker], reason) : undefined;
    if (fb !== undefined) this.report(fb);
    // a connection ended: the next failed attempt warns, whatever the one before it said
    if (wasUp) this.reported = 0;
    if (this.ev.onClose !== undefined) this.ev.onClose(reason);
    // end() from inside a callback has finished it, or end() then start() is already dialling
    if (this.state !== State.Backoff) return;
    if (this.mode !== Mode.Running) {
      this.closed("", true);
      return;
    }
    const how = FEATURE_FAILOVER && reason === "primary-retry" ? Ended.PrimaryRetry : wasUp && !short ? Ended.Broke : Ended.Failed;
    if (how === Ended.PrimaryRetry) this.retryingPrimary = 1;
    // a broker that has just shown it speaks 3.1.1 only is tried again at once, in 3.1.1 (a fleet
    // that boots at 5.0 pays one round trip for it, not a backoff)
    const next = FEATURE_MQTT5 && (fb !== undefined || reason === "protocol-fallback") ? [this.broker, this.round, 0] :
      nextAttempt(how, this.broker, this.round, s.brokers.length, s.reconnectMinMs, s.reconnectMaxMs);
    this.broker = next[0];
    this.round = next[1];
    let delay = next[2];
    if (delay > 0) {
      // "equal jitter": between half of the delay and all of it, so boards that lost the same
      // broker spread out
      const half = port.ints.idiv(delay, 2);
      delay = half + this.p.randomInt(delay - half + 1);
    }
    this.t.deadline = after(this.p.clock.clockNow(), delay);
    this.p.sched.wake(this.task);
  }

  /**
   * Drops request k, which the broker refuses by closing the connection each time it is sent
   * (RabbitMQ does so on a SUBSCRIBE to a topic the user may not read; see closed()): sending
   * it again would loop. Its filters are forgotten; its callback (the error, and 128 for each
   * filter of a SUBSCRIBE), else onError, hears why.
   */
  private giveUp(k: number): void {
    const r = this.reqs;
    const f = r.filters[k];
    const sub = r.qos[k] !== undefined;
    const g: number[] = [];
    let names = "";
    for (let i = 0; i < r.sizes[k]; i++) {
      if (sub) queues.dropFilter(this.subs, f[i]);
      g[i] = 128;
      names = names === "" ? f[i] : names + ", " + f[i];
    }
    const done = r.untrack(k);
    this.t.suspect = 0;
    const e = fail(sub ? "subscribe-refused" : "unsubscribe-refused", `the broker closed the connection ${this.settings.refusedAfter} times in a row right after the ` +
      `${sub ? "SUBSCRIBE to" : "UNSUBSCRIBE from"} ${names}, answering nothing (RabbitMQ does so for a topic this user may not read): given up; ` +
      "fix: check the broker's permissions for this client and the filter");
    // (as a publish's callback hears an error: tell(), with the granted codes beside it)
    this.tell(e, done !== undefined ? (err) => done(err, sub ? g : undefined) : undefined);
  }

  /**
   * Moves outbox message k, which the broker refuses (see closed()), to the first free held slot
   * `<prefix>h<n>` (held.ts lists, retries and drops them); its callback, else onError, hears
   * publish-refused with the evidence. With no slot free (heldMessages) it stays in the outbox,
   * and onError says so.
   */
  private hold(k: number): void {
    const s = this.settings;
    const o = this.outbox;
    const st = this.p.storage;
    const w = o.wireAt(k);
    // (an unreadable record: the next pump reports it lost)
    if (w === undefined) return;
    const qos = o.qosAt(k);
    let n = 1;
    while (n <= s.heldMessages && st.getRecord(s.storePrefix + "h" + n) !== undefined) n = n + 1;
    // held at the 3.1.1 level whatever the protocol (held.ts reads that form; 5.0 properties are not kept)
    const v5 = FEATURE_MQTT5 && this.v5 !== undefined && this.v5.stored === 1;
    const h = v5 ? s5.convertPublish(this.tx, w, false) : w;
    const kept = n <= s.heldMessages && h !== undefined && st.putRecord(s.storePrefix + "h" + n, h) === 0;
    // the connection is gone: its decoder reads the stored PUBLISH for the topic
    const d = this.dec;
    d.reset();
    d.feedChunk(port.bytes.bytesOf(w), 0, v5);
    const topic = d.status === Status.Packet ? d.topicText() : "?";
    d.reset();
    this.t.suspect = 0;
    let done: Done | undefined = undefined;
    if (FEATURE_MQTT5 && kept && this.v5 !== undefined) s5.forgetExpiry(this.v5, o.idAt(k));
    if (kept) done = o.takeAt(k);
    const e = fail("publish-refused", `the broker closed the connection ${s.refusedAfter} times in a row right after the QoS ${qos} PUBLISH to ` +
      `${topic}, acknowledging nothing (NATS refuses QoS 2; an ACL may forbid a topic); ` + (kept
      ? `held ${n}: out of the outbox, the rest goes on; fix: let the broker take it, then held retry ${n} (API: retryHeld), or held drop ${n} (dropHeld)`
      : "it stays in the outbox, and the rest waits: no held slot free (heldMessages) or storage failed; fix: held retry N or held drop N (API: retryHeld, dropHeld)"));
    this.tell(e, done);
  }

  /**
   * Reports an error (log and onError); with `drop`, also closes the connection for that reason.
   * `detail` (with a drop): the broker broke the protocol, and this is how (after the reason's explanation).
   * A failed attempt is one log line: a warning when it starts a run of failures (at start, after
   * a connection, or with another code than the attempt before), else a short info line that it
   * is the same failure again. onError hears every one.
   */
  private report(e: PetrelError | undefined, drop?: string, detail?: string): void {
    const err = e !== undefined ? e : fail(drop as string, `${explainClose(drop as string)}: ${detail as string}`);
    const prev = this.lastError;
    const again = this.reported === 2 && prev !== undefined && prev.code === err.code;
    this.reported = 1;
    this.lastError = err;
    if (again) this.p.log.writeLog(lg.LOG_INFO, `mqtt: ${err.code} again (attempt ${this.stats.attempts})`);
    else this.p.log.writeLog(lg.LOG_WARN, `mqtt: ${err.code}: ${err.message}`);
    if (this.ev.onError !== undefined) this.ev.onError(err);
    if (drop !== undefined) this.drop(drop);
  }

  // ---------------------------------------------------------------------------------------------
  // Time

  /** The client's task: reconnect delays, attempt and close deadlines, keepalive, primary retry. */
  private tick(now: number): number {
    const st = this.state;
    const s = this.settings;
    if (st === State.Backoff || st === State.LinkWait) {
      const l = this.p.link;
      if (st === State.LinkWait) {
        // The link's event is the fast path; this poll makes a lost event cost seconds, not the
        // session (an app may take over the firmware's one Wi-Fi callback slot).
        if (l !== undefined && !l.isUp()) return LINK_POLL_MS;
        // dial now, from the first broker: failures while the link was down say nothing of them
        this.broker = 0;
        this.round = 0;
      } else if (!due(this.t.deadline, now)) {
        return remaining(this.t.deadline, now);
      }
      this.attempt();
      return this.state === State.LinkWait ? LINK_POLL_MS : this.tick(this.p.clock.clockNow());
    }
    if (st === State.Resolving || st === State.Opening || st === State.Handshake || st === State.Closing) {
      if (!due(this.t.deadline, now)) return remaining(this.t.deadline, now);
      if (st === State.Closing) {
        this.gen = this.gen + 1;
        this.closed(this.reason);
      } else {
        this.drop(st === State.Resolving ? "timeout" : "connect-timeout");
      }
      return 0;
    }
    if (st !== State.Connected) return IDLE;
    // Connected: back to the first broker after primaryEvery on a fallback; PINGREQ after
    // keepalive seconds without sending (or receiving); a missing PINGRESP ends the link.
    let next = IDLE;
    if (FEATURE_FAILOVER && this.primaryEvery > 0 && this.broker > 0) {
      const left = this.primaryEvery - elapsed(this.t.connectedAt, now);
      if (left <= 0) {
        this.p.log.writeLog(lg.LOG_INFO, "mqtt: trying the first broker again");
        this.control(PacketType.Disconnect, 0);
        this.drop("primary-retry");
        return 0;
      }
      next = left;
    }
    const c5 = this.v5;
    // at 5.0 the broker's Server Keep Alive replaces ours
    const kas = FEATURE_MQTT5 && c5 !== undefined && c5.level === 5 && c5.keepalive >= 0 ? c5.keepalive : s.keepalive;
    if (kas === 0) return next;
    const ka = kas * 1000;
    // A message in flight unanswered for two keepalives on a link that otherwise works: the
    // broker lost it or its answer. Only a new connection sends it again (with DUP): end this
    // one, DISCONNECT first (the board is not gone: no will).
    const since = this.outbox.inFlightSince(now);
    if (since >= 0) {
      const wait = 2 * ka - elapsed(since, now);
      if (wait <= 0) {
        this.control(PacketType.Disconnect, 0);
        this.drop("ack-timeout");
        return 0;
      }
      if (next === IDLE || wait < next) next = wait;
    }
    if (this.t.pingOut === 1) {
      const left = s.pingTimeoutMs - elapsed(this.t.pingAt, now);
      if (left <= 0) {
        this.drop("ping-timeout");
        return 0;
      }
      return next === IDLE || left < next ? left : next;
    }
    const sentLeft = ka - elapsed(this.t.lastSent, now);
    const recvLeft = ka - elapsed(this.t.lastRecv, now);
    const left = sentLeft < recvLeft ? sentLeft : recvLeft;
    if (left <= 0) {
      this.t.pingOut = 1;
      this.t.pingAt = now;
      this.stats.pings = this.stats.pings + 1;
      this.control(PacketType.Pingreq, 0);
      return next === IDLE || s.pingTimeoutMs < next ? s.pingTimeoutMs : next;
    }
    return next === IDLE || left < next ? left : next;
  }

  // ---------------------------------------------------------------------------------------------
  // Wire

  private send(w: Wire): void {
    const c5 = this.v5;
    // at 5.0 a PUBLISH goes with its topic's alias where this connection has one (or room for one)
    if (FEATURE_MQTT5 && c5 !== undefined && c5.aliasMax > 0) {
      w = s5.aliased(this.tx, this.settings.maxPacket, w, c5);
    }
    this.t.lastSent = this.p.clock.clockNow();
    if (!this.p.transport.sendWire(w)) this.blocked = 1;
  }

  /** PUBACK, PUBREC, PUBREL, PUBCOMP (for `id`), PINGREQ or DISCONNECT. */
  private control(type: number, id: number): void {
    if (encodeShort(this.tx, 4, type, id) > 0) this.send(this.tx.toWire());
  }

  /** A chunk from the broker: every packet in it, in order, while the connection lasts. */
  private chunk(c: Bytes): void {
    const d = this.dec;
    const size = c.length;
    this.t.lastRecv = this.p.clock.clockNow();
    const c5 = this.v5;
    const v5 = FEATURE_MQTT5 && c5 !== undefined && c5.level === 5;
    let at = 0;
    while (at < size && (this.state === State.Connected || this.state === State.Handshake)) {
      at = d.feedChunk(c, at, v5);
      const st = d.status;
      if (FEATURE_MQTT5 && v5 && st === Status.Error && this.state === State.Handshake && d.type === PacketType.Connack && d.remaining === 2) {
        // a 3.1.1 CONNACK (2 bytes) to a 5.0 CONNECT: a broker that speaks 3.1.1 only
        this.report(s5.fallback(c5 as Session5, this.broker, this.settings.brokers[this.broker]), "protocol-fallback");
        return;
      }
      if (st === Status.Error) {
        this.report(undefined, "malformed-packet", codecFail(d.error).code + ": " + codecFail(d.error).message);
        return;
      }
      if (st !== Status.NeedMore) this.packet(d, st === Status.Oversize);
    }
  }

  /** One packet from the broker (an oversize PUBLISH: skipped, acknowledged and reported). */
  private packet(d: Decoder, oversize: boolean): void {
    const t = d.type;
    const id = d.packetId;
    const o = this.outbox;
    if (this.state === State.Handshake) {
      if (t === PacketType.Connack && !oversize) this.connack(d);
      else if (FEATURE_AUTH && t === PacketType.Auth && this.v5 !== undefined && this.v5.authMethod !== undefined) {
        // a step of enhanced authentication: answered, or the attempt ends
        const e = a5.authStep(this.v5, d, this.tx, this.settings.maxPacket);
        if (e !== undefined) this.report(e, e.code);
        else this.send(this.tx.toWire());
      } else this.report(undefined, "protocol-error", `${oversize ? "a PUBLISH" : "a packet other than CONNACK"} arrived before CONNACK (MQTT-3.2.0-1)`);
      return;
    }
    const r = this.received;
    const c5 = this.v5;
    const v5 = FEATURE_MQTT5 && c5 !== undefined && c5.level === 5;
    if (t === PacketType.Publish) {
      const qos = d.publishQos();
      // at 5.0 the topic may come as a Topic Alias the broker set up on this connection
      // (a build without the aliasin feature allows the broker none: an alias is a protocol error)
      const topic = !(FEATURE_MQTT5 && v5 && !oversize) ? d.topicText() : FEATURE_ALIASIN ? al.inboundTopic(c5 as Session5, d) :
        s5.topicAliasOf(d) === 0 ? d.topicText() : undefined;
      if (topic === undefined) {
        this.report(undefined, "protocol-error", s5.violation(c5 as Session5, 1, 0));
        return;
      }
      // (a build without QoS 2 keeps no ids: an incoming QoS 2 message is at least once there)
      const again = FEATURE_QOS2 && qos === 2 && r !== undefined && r.hasId(id);
      if (again && !oversize) {
        // a duplicate of a message delivered already: acknowledge again, deliver nothing
        this.stats.duplicates = this.stats.duplicates + 1;
        this.control(PacketType.Pubrec, id);
        return;
      }
      if (FEATURE_QOS2 && qos === 2 && !again && r !== undefined) {
        if (FEATURE_MQTT5 && v5 && r.count >= this.settings.receiveWindow) {
          // at 5.0 receiveWindow is our Receive Maximum, and the broker must keep to it
          this.report(undefined, "protocol-error", s5.violation(c5 as Session5, 2, this.settings.receiveWindow));
          return;
        }
        if (r.count >= this.settings.receiveWindow) {
          // MQTT 3.1.1 has no receive maximum and mosquitto does not bound unreleased QoS 2 to
          // its window: forget the oldest id rather than refuse the stream. Its protection matters
          // only if the broker sends that PUBLISH again before PUBREL, which it does only after a
          // reconnect.
          r.dropId(-1);
          this.stats.evicted = this.stats.evicted + 1;
          if (this.stats.evicted === 1) this.p.log.writeLog(lg.LOG_WARN, `mqtt: more than ${this.settings.receiveWindow} QoS 2 messages wait for PUBREL; the oldest ids are forgotten (raise receiveWindow)`);
        }
        if (r.addId(id) !== 0) this.report(fail("storage-failed", "an incoming QoS 2 id could not be stored; after a restart a duplicate could be delivered; fix: check the flash"));
      }
      if (oversize) {
        this.stats.oversize = this.stats.oversize + 1;
        const where = d.topicEnd > d.topicStart ? ` on ${d.topicText()}` : "";
        this.report(fail("message-too-large", `a ${d.payloadLength}-byte message${where} is larger than maxPacket (${this.settings.maxPacket}) and was skipped; fix: raise maxPacket, or publish smaller messages`));
      } else {
        const payload = port.bytes.wireFrom(d.data, d.payloadStart, d.bodyStart + d.remaining);
        // at 5.0 what the PUBLISH carries beside them (response topic, user properties, ...)
        const props = FEATURE_MQTT5 && v5 ? s5.messageProps(d) : undefined;
        // the fixed header's flags: DUP 8, RETAIN 1
        const retain = d.headerFlags % 2 === 1;
        const dup = d.headerFlags >= 8;
        this.stats.delivered = this.stats.delivered + 1;
        for (let k = 0; k < this.subs.count; k++) {
          const h = this.subs.handlers[k];
          if (h !== undefined && topicMatches(this.subs.filters[k], topic)) h(topic, payload, qos, retain, dup, props);
        }
        if (this.ev.onMessage !== undefined) this.ev.onMessage(topic, payload, qos, retain, dup, props);
      }
      if (this.state !== State.Connected || qos === 0) return;
      this.control(qos === 1 ? PacketType.Puback : PacketType.Pubrec, id);
    } else if (t === PacketType.Puback || t === PacketType.Pubcomp) {
      const k = o.slotOf(id);
      if (k < 0 || o.phaseAt(k) !== (t === PacketType.Puback ? Phase.Sent : Phase.Released)) {
        this.stats.ignored = this.stats.ignored + 1;
      } else {
        this.t.acked = 1;
        if (FEATURE_MQTT5 && c5 !== undefined) s5.forgetExpiry(c5, id);
        // a PUBACK for a QoS 2 message breaks MQTT-4.3.3, but the broker has it, at QoS 1
        // (RabbitMQ's MQTT plugin answers every QoS 2 PUBLISH so): it is done, and onError says
        // so, rather than sent again for the same answer on every connection
        if (t === PacketType.Puback && o.qosAt(k) !== 1) {
          this.report(fail("qos2-downgraded", `the broker answered the QoS 2 PUBLISH of message ${id} with PUBACK (MQTT-4.3.3): it took it at QoS 1, so it may arrive twice (RabbitMQ does this); fix: publish at QoS 1 to this broker, or use one that takes QoS 2`));
        }
        const done = o.takeAt(k);
        // at 5.0 a PUBACK may say the broker did not take the message (a reason code 0x80 or more)
        const e = FEATURE_MQTT5 && v5 && t === PacketType.Puback ? s5.ackError(c5 as Session5, d) : undefined;
        if (e !== undefined) this.tell(e, done);
        else if (done !== undefined) done(undefined);
        this.pump(false);
      }
    } else if (FEATURE_QOS2 && t === PacketType.Pubrec) {
      const k = o.slotOf(id);
      if (k >= 0 && o.qosAt(k) !== 2) {
        this.report(undefined, "protocol-error", `PUBREC for QoS 1 message ${id} (MQTT-4.3.2)`);
        return;
      }
      const e = FEATURE_MQTT5 && v5 ? s5.ackError(c5 as Session5, d) : undefined;
      if (e !== undefined) {
        // a PUBREC that refuses the message ends its flow: no PUBREL (MQTT 5 §4.3.3)
        if (k >= 0 && o.phaseAt(k) === Phase.Sent) {
          this.t.acked = 1;
          if (FEATURE_MQTT5 && c5 !== undefined) s5.forgetExpiry(c5, id);
          this.tell(e, o.takeAt(k));
          this.pump(false);
        } else this.stats.ignored = this.stats.ignored + 1;
        return;
      }
      if (k >= 0 && o.phaseAt(k) === Phase.Sent) {
        if (o.releaseAt(k) !== 0) this.p.log.writeLog(lg.LOG_WARN, `mqtt: could not store that message ${id} is past PUBREC; a restart would resend its PUBLISH`);
      } else if (k < 0) {
        // Not ours (completed before a restart, or lost): PUBREL lets the broker free the id.
        this.stats.ignored = this.stats.ignored + 1;
      }
      this.control(PacketType.Pubrel, id);
    } else if (t === PacketType.Pubrel) {
      if (FEATURE_QOS2 && r !== undefined) r.dropId(id);
      this.control(PacketType.Pubcomp, id);
    } else if (t === PacketType.Suback || t === PacketType.Unsuback) {
      this.requestAcked(d);
    } else if (t === PacketType.Pingresp) {
      if (this.t.pingOut === 1) {
        this.stats.pingMs = elapsed(this.t.pingAt, this.p.clock.clockNow());
        // the task slept until the ping's deadline: it counts the next PINGREQ from now instead
        this.p.sched.wake(this.task);
      }
      this.t.pingOut = 0;
    } else if (FEATURE_MQTT5 && v5 && t === PacketType.Disconnect) {
      const e = s5.disconnectError(c5 as Session5, d);
      this.report(e, e.code);
    } else if (FEATURE_MQTT5 && v5 && t === PacketType.Auth) {
      this.report(undefined, "protocol-error", s5.violation(c5 as Session5, 3, 0));
    } else {
      this.report(undefined, "protocol-error", "a second CONNACK arrived (MQTT-3.2.0-1)");
    }
  }

  private connack(d: Decoder): void {
    // §3.2.2: the acknowledge flags (bit 0: session present), then the return code
    const present = d.data[d.bodyStart] === 1;
    const c5 = this.v5;
    const v5 = FEATURE_MQTT5 && c5 !== undefined && c5.level === 5;
    const code = FEATURE_MQTT5 && v5 ? s5.connack5(c5 as Session5, d, this.broker) : d.data[d.bodyStart + 1];
    if (code !== 0) {
      const e = FEATURE_MQTT5 && v5 ? s5.reasonError(code, PacketType.Connack, (c5 as Session5).said) : connackError(code);
      this.report(e, e.code);
      return;
    }
    const s = this.settings;
    const now = this.p.clock.clockNow();
    this.state = State.Connected;
    this.up = 1;
    this.reported = 0;
    // (the backoff starts over when this connection proves stable: see closed())
    this.t.acked = 0;
    this.t.connectedAt = now;
    this.t.lastRecv = now;
    this.stats.connects = this.stats.connects + 1;
    // On the first broker the primary retry period starts over; back on a fallback because the
    // first is still down, it doubles (up to 16 times primaryRetry, at most 12 hours), so a long
    // outage of the first broker does not cut the working connection every few minutes.
    if (this.broker === 0) this.primaryEvery = s.primaryRetryMs;
    else if (this.retryingPrimary === 1) {
      let cap = s.primaryRetryMs * 16;
      if (cap > 43200000) cap = 43200000;
      if (cap < s.primaryRetryMs) cap = s.primaryRetryMs;
      this.primaryEvery = this.primaryEvery * 2 < cap ? this.primaryEvery * 2 : cap;
    }
    this.retryingPrimary = 0;
    const b = s.brokers[this.broker];
    const proto = FEATURE_MQTT5 && c5 !== undefined ? (v5 ? ", MQTT 5.0" : ", MQTT 3.1.1") : "";
    // (at 5.0 the server a Server Reference named, where that is where it connected)
    const where = FEATURE_MQTT5 && c5 !== undefined && c5.via !== "" ? c5.via : `${b.host}:${b.port}`;
    this.p.log.writeLog(lg.LOG_INFO, `mqtt: connected to ${where} (session ${present ? "resumed" : "new"}, outbox ${this.outbox.count}${proto})`);
    // A broker other than the one our state was built with (failover between brokers that do
    // not share sessions) knows nothing of it, whatever its session present says.
    const foreign = this.sessionBroker >= 0 && this.sessionBroker !== this.broker;
    // Incoming QoS 2 ids are per broker: a broker returned to with its session still there
    // sends its unreleased messages again, and its ids must still catch them; a broker without
    // our session sends nothing again, and its old ids would only suppress new messages.
    const r = this.received;
    if (FEATURE_QOS2 && r !== undefined) {
      r.current = this.broker;
      if (!present) r.dropAll();
    }
    if (!present || foreign) {
      // Outgoing QoS 2 past PUBREC start again from PUBLISH (the README says why: at-least-once
      // across a lost session).
      for (let k = 0; k < this.outbox.count; k++) this.outbox.restart(k);
    }
    // The broker lost the session: subscribe again to every filter (before any pending request).
    if (!present) this.reqs.restore(this.subs.filters, this.subs.qos, this.subs.count, this.tx, s.maxPacket);
    if (this.sessionBroker !== this.broker) {
      const pre = s.storePrefix + "b";
      if (this.sessionBroker >= 0) this.p.storage.dropRecord(pre + this.sessionBroker);
      this.sessionBroker = this.broker;
      this.p.storage.putRecord(pre + this.broker, port.bytes.wireOf(""));
    }
    // the outbox's records at this connection's level (a broker that refused 5.0 gets 3.1.1)
    if (FEATURE_MQTT5 && c5 !== undefined) c5.stored = s5.alignOutbox(c5.stored, this.outbox, this.p.storage, s.storePrefix, this.tx, c5.level);
    this.p.sched.wake(this.task);
    if (this.ev.onConnect !== undefined) this.ev.onConnect(present);
    this.pump(true);
  }

  /** SUBACK / UNSUBACK: completes the request with that id; refused filters are forgotten. */
  private requestAcked(d: Decoder): void {
    const r = this.reqs;
    const k = r.slotFor(d.packetId);
    if (k < 0) {
      this.stats.ignored = this.stats.ignored + 1;
      return;
    }
    const isSub = d.type === PacketType.Suback;
    if (isSub !== (r.qos[k] !== undefined)) {
      this.report(undefined, "protocol-error", `${isSub ? "SUBACK" : "UNSUBACK"} answers a request of the other kind (id ${d.packetId})`);
      return;
    }
    const count = r.sizes[k];
    const c5 = this.v5;
    const v5 = FEATURE_MQTT5 && c5 !== undefined && c5.level === 5;
    // the codes: after the packet id at 3.1.1 (UNSUBACK has none), after the properties at 5.0
    const first = FEATURE_MQTT5 && v5 ? s5.codesAt(d) : d.bodyStart + 2;
    const have = d.bodyStart + d.remaining - first;
    if ((isSub || v5) && have !== count) {
      this.report(undefined, "protocol-error", `${isSub ? "SUBACK" : "UNSUBACK"} has ${have} ${v5 ? "reason" : "return"} codes for ${count} filters (MQTT-3.8.4-5)`);
      return;
    }
    const filters = r.filters[k];
    let granted: number[] | undefined = undefined;
    let refused = "";
    let why = 0;
    if (isSub || v5) {
      if (isSub) granted = [];
      for (let i = 0; i < count; i++) {
        const code = d.data[first + i];
        if (granted !== undefined) granted[i] = code;
        if (code >= 128) {
          if (isSub) queues.dropFilter(this.subs, filters[i]);
          refused = refused === "" ? filters[i] : refused + ", " + filters[i];
          why = code;
        }
      }
    }
    const done = r.untrack(k);
    if (refused !== "") {
      const e = FEATURE_MQTT5 && v5 ? s5.refusedFilters(refused, why, d.type) : fail("subscribe-refused", `the broker refused the subscription to ${refused} (SUBACK 0x80); fix: check the broker's ACL for this client and the filter`);
      if (done === undefined) this.report(e);
      else this.p.log.writeLog(lg.LOG_WARN, `mqtt: ${e.message}`);
    }
    if (done !== undefined) done(undefined, granted);
  }
}
