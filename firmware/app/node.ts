import { FEATURE_MQTT5, FEATURE_SLEEP } from "../features";
import { port } from "../port/port";
import type { Platform } from "../port/platform";
import type { PetrelError } from "../port/log";
import { fail } from "../session/errors";
import { Client, type ClientEvents } from "../session/client";
import type { RequestDone } from "../session/requests";
import type { Done } from "../session/outbox";
import type { MessageProps } from "../session/session5";
import { IDLE, type Task } from "../sched/scheduler";
import { elapsed } from "../sched/time";
import type { Settings } from "./settings";
import { lazy } from "./lazy";
import { words } from "../console/line";
import type { CommandContext } from "./commands";

/**
 * The sensor node, one source for every target: it samples the board's sensors every `interval`
 * seconds and publishes them as JSON to <prefix>/<id>/telemetry at the configured QoS; keeps a
 * retained status on <prefix>/<id>/status ("online" with version, uptime, heap, reconnects, last
 * error; the will sets it "offline"); and takes command lines on <prefix>/<id>/cmd, answered on
 * <prefix>/<id>/reply. Everything runs as scheduler tasks: a full queue drops a reading (counted
 * and logged), it never waits.
 *
 * Remote commands are the console's, without the secrets (app/commands.ts, loaded when a command
 * arrives): show, get, set (not of a secret), save, publish, status, diag, reboot. Topics are
 * fixed when the node starts: a new prefix or client id takes effect at the next boot. A line
 * over 200 characters or an unknown command gets an error reply.
 */
export interface Sensor {
  name: string;
  /** A reading, or undefined when the sensor has none now (left out of the message). */
  read(this: void): number | undefined;
}

export interface NodeBoard {
  platform: Platform;
  /** The board's firmware has TLS (its profile). */
  tls: boolean;
  version: string;
  sensors: Sensor[];
  reboot(this: void): void;
  /**
   * Deep sleep for `ms`, then the board boots again (sleep on). Missing: the board cannot, and
   * the node stays awake between readings.
   */
  sleep?: (this: void, ms: number) => void;
  /** Keys typed at the console so far: a node about to sleep stays awake while someone types. */
  keys?: (this: void) => number;
  /** How long a waking node waits for its reading's acknowledgement before sleeping anyway (ms) [15000]. */
  awakeMs?: number;
  /** The node's log lines (to the console). */
  log(this: void, line: string): void;
  /** Client sizes from the board profile. */
  maxPacket?: number;
  maxInflight?: number;
  outboxMessages?: number;
  offlineQueue?: number;
  minFreeHeap?: number;
  /**
   * [5 where the build has MQTT 5.0, else 4] The protocol; a host may hold a node to 4 (tests
   * whose scripted broker speaks 3.1.1). Boards leave it out: their build decides.
   */
  protocolVersion?: number;
}

export const REMOTE_LINE_MAX = 200;
/** Sleep is put off this long after the last key typed at the console. */
const TYPING_MS = 30000;
/** Longest deep sleep: 2^31 µs (the ESP32 NodeMCU timer takes a 32-bit signed count). */
const SLEEP_MAX_S = 2147;
/** A connection the broker closes sooner than this after accepting it counts toward a client id clash. */
const FLAP_MS = 30000;
const HEX = "0123456789abcdef";

/** A JSON string literal (no JSON global on every board). */
export function jsonString(s: string): string {
  let out = "\"";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 34) out += "\\\"";
    else if (c === 92) out += "\\\\";
    else if (c < 32) out += `\\u00${c < 16 ? "0" : "1"}${HEX.charAt(c < 16 ? c : c - 16)}`;
    else out += s.charAt(i);
  }
  return out + "\"";
}

/*
 * The node's callbacks are made by the functions below, not inside launch(): a closure keeps the
 * whole scope it was made in for as long as it lives (on Espruino every local of that call, the
 * client options among them), and these live as long as the node. Here each keeps only the node.
 */

/** Where the callback of end() waits: the node, or a sleeping node's SleepState. */
interface Ending {
  ended?: (this: void) => void;
}

/** The client's events for the node. */
function nodeEvents(self: SensorNode): ClientEvents {
  return {
    onConnect: () => {
      const f = self.facts;
      self.connected = true;
      f.upAt = self.board.platform.clock.clockNow();
      f.failed = "";
      self.connects++;
      self.board.log(`node: connected as ${self.clientId}`);
      (self.client as Client).publish(self.topics.status, self.statusJson("online"), 1, true, undefined);
    },
    // (the client has logged it: status and the retained status show the last one)
    onError: (e) => {
      // the client's own error value, not a copy of its text (a long string: slots on Espruino)
      self.lastError = e;
    },
    onClose: (reason) => {
      const f = self.facts;
      if (!self.connected) {
        if (reason !== "") f.failed = reason;
        return;
      }
      self.connected = false;
      // the broker closing a fresh connection, again and again: another board with this client id
      const short = elapsed(f.upAt, self.board.platform.clock.clockNow()) < FLAP_MS && (reason === "closed" || reason === "reset");
      f.shortDrops = short ? f.shortDrops + 1 : 0;
    },
    onMessage: (topic, payload, _qos, _retain, _dup, props) => {
      if (topic !== self.topics.cmd) return;
      // run once the read that brought it has unwound: on a small board its packet, the read's
      // frames, the command's module and the reply would not fit beside each other. A line over
      // the limit is not kept for it at all (on a board the line is the packet's payload).
      let line: string | undefined = port.bytes.textOf(payload);
      if (line.length > REMOTE_LINE_MAX) line = undefined;
      // (the closure below keeps this scope on Espruino: the packet's own strings are let go)
      payload = topic = undefined as never;
      self.board.platform.sched.later(() => self.remote(line, props));
    },
    onEnd: () => {
      // (a sleeping node keeps it in its sleep state: see end())
      const h: Ending = self.sl !== undefined ? self.sl : self;
      const fn = h.ended;
      h.ended = undefined;
      if (fn !== undefined) fn();
    },
  };
}

/** The answer to the node's subscription to its command topic. */
function nodeSubscribed(self: SensorNode): RequestDone {
  return (err, granted) => {
    const f = self.facts;
    // SUBACK 0x80 (at 5.0 any reason code from 0x80): refused (the callback has it as the granted QoS, as MQTT.js does)
    f.subscription = err !== undefined || granted === undefined || granted[0] >= 128 ? "refused" : `granted QoS ${granted[0]}`;
    if (f.subscription === "refused") {
      const e = fail("subscribe-refused", `the broker refused ${self.topics.cmd}: remote commands cannot arrive; diag says more`);
      self.lastError = e;
      self.board.log(`node: ${e.code}: ${e.message}`);
    }
  };
}

/** The node's scheduler tasks: "sample" (one reading) and "sleep". */
function nodeTask(self: SensorNode, name: string): Task {
  if (name !== "sample") return { name: name, step: () => self.sleepStep() };
  // one callback for every reading (no closure per publish): it counts the readings the broker
  // acknowledged (QoS 1, 2), or that went out on the network (QoS 0). The node keeps it too: it
  // marks the readings among the outbox's messages (readingsSent in app/commands.ts).
  const done: Done = (err) => {
    if (err === undefined) self.acked++;
    // (one the broker refused, or past its expiry: not delivered)
    else self.dropped++;
  };
  self.reading = done;
  return { name: name, step: () => self.sample(done) };
}

/**
 * A sleeping node's state, in a table of its own that only such a node has (a Lua table's fields
 * take a power of two of slots: the node stays within 16 this way, its end callback too: see
 * end()). phase: 0 awake, waiting for the reading's ack; 1 waiting for the asleep status's; 2
 * ending; 3 done.
 */
interface SleepState {
  phase: number;
  from: number;
  keysSeen: number;
  typedAt: number;
  task: number;
  /** Called once when the client has ended (end()), for a sleeping node. */
  ended?: (this: void) => void;
}

export class SensorNode {
  client: Client | undefined = undefined;
  /** Connected now (CONNACK accepted, not closed since). */
  connected = false;
  /** Connections made (each CONNACK accepted). */
  connects = 0;
  lastError: PetrelError | undefined = undefined;
  /**
   * Readings queued (the client took them), acknowledged by the broker (QoS 1/2) or written to the
   * network (QoS 0), and dropped because the client refused them (queue full, low memory). Queued
   * and not yet acknowledged ones are in the outbox (or, at QoS 0 offline, its RAM queue). The
   * readings sent (written to the network at least once) are not counted here but found when
   * asked: these acknowledged, plus the outbox's readings already sent (readingsSent in
   * app/commands.ts), so the client needs no counter and no event for a first send.
   */
  queued = 0;
  acked = 0;
  dropped = 0;
  /**
   * The callback every reading is published with (nodeTask): it tells the node's readings from the
   * other messages in the outbox. Undefined until the node starts.
   */
  reading: Done | undefined = undefined;
  /** The node's topics, fixed when it starts (as its subscription and will are). */
  readonly topics = { telemetry: "", status: "", cmd: "", reply: "" };
  /** What diag reads (app/diag.ts): when the last connection came up, why the last attempt failed, the subscription, flapping. */
  readonly facts = { upAt: 0, failed: "", subscription: "", shortDrops: 0 };
  /** The sampling task (the publish command wakes it), -1 when stopped. */
  task = -1;
  /** The node's client id, fixed when it starts (client.id, or petrel-<chip id>). */
  clientId = "";
  /** Deep sleep, when the node sleeps between readings (its own table: see SleepState). */
  sl: SleepState | undefined = undefined;
  private readonly bornAt: number;
  /** Called once when the client has ended (end()), for a node that does not sleep (else in its SleepState). */
  ended: ((this: void) => void) | undefined = undefined;

  constructor(readonly board: NodeBoard, readonly settings: Settings) {
    this.bornAt = board.platform.clock.clockNow();
  }

  /** Seconds since the node started. */
  uptime(): number {
    return port.ints.idiv(elapsed(this.bornAt, this.board.platform.clock.clockNow()), 1000);
  }

  statusJson(state: string): string {
    const heap = this.board.platform.freeHeap !== undefined ? this.board.platform.freeHeap() : -1;
    return `{"state":${jsonString(state)},"version":${jsonString(this.board.version)},"uptime":${this.uptime()},` +
      `"heap":${heap},"reconnects":${this.connects > 0 ? this.connects - 1 : 0},"lastError":${jsonString(this.lastError !== undefined ? `${this.lastError.code}: ${this.lastError.message}` : "")}}`;
  }

  /** The readings as a JSON object; a reading that is not a finite number is left out (JSON has no NaN). */
  readings(): string {
    let body = "";
    for (const s of this.board.sensors) {
      const v = s.read();
      // v - v is 0 only for a finite number (NaN and the infinities give NaN)
      if (v !== undefined && v - v === 0) body += `${body.length > 0 ? "," : ""}${jsonString(s.name)}:${v}`;
    }
    return `{${body}}`;
  }

  /**
   * Connects and starts sampling; returns null, or why the settings cannot make a client. (Not
   * `start`, the console's and the client's name: on Espruino the build makes classes whose
   * method names differ one class, a dozen variable slots less each: tools/espruino-merge.mjs.)
   */
  launch(): string | null {
    const st = this.settings;
    const p = this.board.platform;
    const b = this.board;
    const t = this.topics;
    const v = st.get("client.id");
    const id = v.length > 0 ? v : `petrel-${p.chipId}`;
    this.clientId = id;
    const prefix = `${st.get("prefix")}/${id}/`;
    t.telemetry = prefix + "telemetry";
    t.status = prefix + "status";
    t.cmd = prefix + "cmd";
    t.reply = prefix + "reply";
    const o = lazy("config").clientOptions(st, id);
    o.will = { topic: t.status, payload: "{\"state\":\"offline\"}", qos: 1, retain: true };
    o.maxPacket = b.maxPacket;
    o.maxInflight = b.maxInflight;
    o.outboxMessages = b.outboxMessages;
    o.offlineQueue = b.offlineQueue;
    o.minFreeHeap = b.minFreeHeap;
    // a board whose build has MQTT 5.0 speaks it (its profile's protocol 5), and a broker that
    // answers in 3.1.1 gets 3.1.1 from the next attempt
    if (FEATURE_MQTT5) {
      o.protocolVersion = b.protocolVersion !== undefined ? b.protocolVersion : 5;
      // at 5.0: an alias for each topic the node publishes to (telemetry, status, reply), so a
      // reading goes without its topic's bytes; and the will's delay, so that a reboot quicker
      // than it does not flap the status to offline (the session outlives it: clean false)
      o.topicAliases = 3;
      o.willDelay = st.int("will.delay");
    }
    const c = Client.create(p, o, nodeEvents(this));
    // a PetrelError (no instanceof: its Lua helper is large)
    if ("code" in c) return `node: the settings do not make a client: ${c.message}`;
    this.client = c;
    c.subscribe([t.cmd], [1], 1, undefined, nodeSubscribed(this));
    c.start();
    this.task = p.sched.enqueue(nodeTask(this, "sample"), 0);
    if (FEATURE_SLEEP && this.sleeps()) {
      this.sl = { phase: 0, from: p.clock.clockNow(), keysSeen: b.keys !== undefined ? b.keys() : 0, typedAt: -1, task: -1 };
      this.sl.task = p.sched.enqueue(nodeTask(this, "sleep"), 0);
    } else if (st.on("sleep")) {
      b.log("node: this board cannot deep sleep; it stays awake between readings");
    }
    return null;
  }

  /** Whether the node deep-sleeps between readings (sleep on, and the board can). */
  sleeps(): boolean {
    return this.settings.on("sleep") && this.board.sleep !== undefined;
  }

  /** Ends the client (DISCONNECT: no will); `done` runs once it has ended. */
  end(done: (this: void) => void): void {
    const c = this.client;
    if (c === undefined || c.state === 0) {
      done();
      return;
    }
    // a sleeping node's table has 16 fields already (sl among them): a 17th would double it
    // (320 bytes on a 32-bit board), so its callback waits in its sleep state
    const h: Ending = this.sl !== undefined ? this.sl : this;
    h.ended = done;
    c.end();
  }

  /**
   * A sleeping node's wake: its one reading acknowledged (or `awakeMs` spent trying), then the
   * retained status "asleep", a clean DISCONNECT (so no will), and deep sleep. Unacknowledged
   * messages stay in the outbox on flash and go out at the next wake. Typing at the console
   * keeps the board awake.
   */
  sleepStep(): number {
    // a board whose build leaves sleep out: none of this is in its artifact
    if (!FEATURE_SLEEP) return IDLE;
    const c = this.client as Client;
    const sl = this.sl as SleepState;
    const p = this.board.platform;
    const now = p.clock.clockNow();
    const keys = this.board.keys !== undefined ? this.board.keys() : 0;
    if (keys !== sl.keysSeen) {
      sl.keysSeen = keys;
      sl.typedAt = now;
    }
    if (sl.phase === 0 && sl.typedAt >= 0 && elapsed(sl.typedAt, now) < TYPING_MS) return TYPING_MS - elapsed(sl.typedAt, now);
    const awake = this.board.awakeMs !== undefined ? this.board.awakeMs : 15000;
    if (sl.phase === 0) {
      if (!(this.connected && this.queued > 0 && c.outbox.count === 0) && elapsed(sl.from, now) < awake) return 100;
      sl.phase = 2;
      if (this.connected) {
        sl.phase = 1;
        c.publish(this.topics.status, this.statusJson("asleep"), 1, true, () => {
          sl.phase = 2;
          p.sched.wake(sl.task);
        });
        sl.from = now;
        return 100;
      }
    }
    if (sl.phase === 1) {
      if (elapsed(sl.from, now) < 2000) return 100;
      sl.phase = 2;
    }
    if (sl.phase === 2) {
      sl.phase = 3;
      let s = this.settings.int("interval");
      if (s > SLEEP_MAX_S) s = SLEEP_MAX_S;
      this.board.log(`node: deep sleep for ${s} s (outbox ${c.outbox.count} kept on flash)`);
      const sleep = this.board.sleep as (ms: number) => void;
      this.end(() => sleep(s * 1000));
    }
    return IDLE;
  }

  /** One reading, published; the next in `interval` seconds (a sleeping node takes one per wake). */
  sample(done: Done): number {
    const c = this.client as Client;
    const sleeping = this.sleeps();
    let qos = this.settings.int("qos");
    if (sleeping && qos === 0) qos = 1; // a reading that must survive the sleep needs an acknowledgement
    // at 5.0 a reading may say how long it is worth sending (expiry): one queued longer is dropped
    const ex = FEATURE_MQTT5 ? this.settings.int("expiry") : 0;
    const err = c.publish(this.topics.telemetry, this.readings(), qos, false, done, FEATURE_MQTT5 && ex > 0 ? { messageExpiry: ex } : undefined);
    if (err === undefined) {
      this.queued++;
    } else {
      this.dropped++;
      this.board.log(`node: reading dropped: ${err.code}: ${err.message}`);
    }
    return sleeping ? IDLE : this.settings.int("interval") * 1000;
  }

  /** Stops sampling (the host simulator's reboot of one board among many; a board just restarts). */
  halt(): void {
    const sched = this.board.platform.sched;
    if (this.task >= 0) sched.cancel(this.task);
    if (this.sl !== undefined && this.sl.task >= 0) sched.cancel(this.sl.task);
    this.task = -1;
    if (this.sl !== undefined) this.sl.task = -1;
  }

  /**
   * A command line from the command topic, answered on the reply topic (app/commands.ts); at 5.0
   * on the request's Response Topic when it names one, with its Correlation Data. Undefined: a
   * line over REMOTE_LINE_MAX, refused.
   */
  remote(line: string | undefined, props?: MessageProps): void {
    // the reply's text as it grows (a list joined at the end would be held twice)
    let text = "";
    let lines = 0;
    const say = (l: string) => {
      text = lines === 0 ? l : `${text}\n${l}`;
      lines++;
    };
    if (line === undefined) say(`error: the command is over ${REMOTE_LINE_MAX} characters; nothing was run`);
    else runCommand({ node: this, settings: this.settings }, line, say, true);
    const to = FEATURE_MQTT5 && props !== undefined && props.responseTopic !== undefined ? props.responseTopic : this.topics.reply;
    const cd = FEATURE_MQTT5 && props !== undefined && props.correlationData !== undefined ? { correlationData: props.correlationData } : undefined;
    const err = (this.client as Client).publish(to, text, 1, false, undefined, cd);
    if (err !== undefined) this.board.log(`node: the reply to a remote command was not sent: ${err.code}: ${err.message}`);
  }
}

/**
 * Runs a command line (app/commands.ts), at the console or from the command topic (`remote`). A
 * failure is its answer; a string thrown is the loader's own refusal (too little memory to load
 * the module), already the reason and the fix.
 */
export function runCommand(ctx: CommandContext, line: string, say: (this: void, line: string) => void, remote: boolean): void {
  try {
    // The settings commands go straight to their module: on a small board the commands module's
    // slots would be taken beside it (esp8266-espruino has room for one of them, not both).
    const args = words(line);
    const name = args.length > 0 ? args[0] : "";
    if (name === "set" || name === "get" || name === "show" || name === "unset" || name === "save" || name === "factory-reset" || name === "pem") {
      if (!lazy("config").settingsCommand(ctx, args, line, say, remote)) say(`error: unknown command "${name}"; type help for the list`);
    } else {
      lazy("commands").runLine(ctx, line, say, remote);
    }
  } catch (e) {
    say(typeof e === "string" ? `error: ${e}` : `error: the command failed: ${String(e)}`);
  }
}
