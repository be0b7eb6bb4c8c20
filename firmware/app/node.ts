import { runCommand, words, type Command } from "../console/line";
import { port } from "../port/port";
import type { PetrelError } from "../port/log";
import type { BrokerAddress } from "../session/options";
import { connect, type MqttClient } from "../session/mqtt";
import type { Platform } from "../session/platform";
import { IDLE } from "../sched/scheduler";
import { elapsed } from "../sched/time";
import { settingsCommands } from "./commands";
import { diagnose, type DiagFacts } from "./diag";
import { lastIndex, splitOn, type Settings } from "./settings";

/**
 * The sensor node, one source for every target: it samples the board's sensors every `interval`
 * seconds and publishes them as JSON to <prefix>/<id>/telemetry at the configured QoS; keeps a
 * retained status on <prefix>/<id>/status ("online" with version, uptime, heap, reconnects, last
 * error; the will sets it "offline"); and takes command lines on <prefix>/<id>/cmd, answered on
 * <prefix>/<id>/reply. Everything runs as scheduler tasks: a full queue drops a reading (counted
 * and logged), it never waits.
 *
 * Remote commands are the console's, without the secrets: show, get, set (not of a secret), save,
 * publish, status, reboot. Topics are fixed when the node starts: a new prefix or client id
 * takes effect at the next boot. A line over 200 characters or an unknown command gets an error reply.
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
}

const REMOTE_LINE_MAX = 200;
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

/** The brokers setting as client addresses: "tls:" entries, or every entry with tls on. */
export function brokersOf(value: string, tlsAll: boolean): BrokerAddress[] {
  const out: BrokerAddress[] = [];
  for (const p0 of splitOn(value, ",")) {
    const tls = tlsAll || p0.substring(0, 4) === "tls:";
    const p = p0.substring(0, 4) === "tls:" ? p0.substring(4) : p0;
    const colon = lastIndex(p, ":");
    let port = 0;
    for (let i = colon + 1; i < p.length; i++) port = port * 10 + (p.charCodeAt(i) - 48);
    out.push({ host: p.substring(0, colon), port, tls });
  }
  return out;
}

export class SensorNode {
  client: MqttClient | undefined;
  /** Connections made (each CONNACK accepted). */
  connects = 0;
  lastError = "";
  /** Readings published, and dropped because the client refused them (queue full, low memory). */
  sent = 0;
  dropped = 0;
  private task = -1;
  /** Deep sleep: 0 awake, waiting for the reading's ack; 1 waiting for the asleep status's; 2 ending; 3 done. */
  private sleepPhase = 0;
  private sleepFrom = 0;
  private keysSeen = 0;
  private typed = false;
  private typedAt = 0;
  private sleepTask = -1;
  private readonly bornAt: number;
  /** The node's topics, fixed when it starts (as its subscription and will are). */
  private topics = { telemetry: "", status: "", cmd: "", reply: "" };
  private remoteCommands: Command[] = [];
  /** What diag reads: see diag.ts. */
  private facts = { up: false, upAt: 0, failed: "", subscription: "", shortDrops: 0 };

  constructor(readonly board: NodeBoard, readonly settings: Settings) {
    this.bornAt = board.platform.clock.now();
  }

  id(): string {
    const v = this.settings.get("client.id");
    return v.length > 0 ? v : `petrel-${this.board.platform.chipId}`;
  }

  topic(leaf: string): string {
    return `${this.settings.get("prefix")}/${this.id()}/${leaf}`;
  }

  /** Connections after the first. */
  reconnects(): number {
    return this.connects > 0 ? this.connects - 1 : 0;
  }

  /** Seconds since the node started. */
  uptime(): number {
    return port.ints.idiv(elapsed(this.bornAt, this.board.platform.clock.now()), 1000);
  }

  status(state: string): string {
    const heap = this.board.platform.freeHeap !== undefined ? this.board.platform.freeHeap() : -1;
    return `{"state":${jsonString(state)},"version":${jsonString(this.board.version)},"uptime":${this.uptime()},` +
      `"heap":${heap},"reconnects":${this.reconnects()},"lastError":${jsonString(this.lastError)}}`;
  }

  telemetry(): string {
    let body = "";
    for (const s of this.board.sensors) {
      const v = s.read();
      if (v !== undefined) body += `${body.length > 0 ? "," : ""}${jsonString(s.name)}:${v}`;
    }
    return `{${body}}`;
  }

  /** Connects and starts sampling; returns null, or why the settings cannot make a client. */
  start(): string | null {
    const st = this.settings;
    const p = this.board.platform;
    this.topics = { telemetry: this.topic("telemetry"), status: this.topic("status"), cmd: this.topic("cmd"), reply: this.topic("reply") };
    this.remoteCommands = settingsCommands(st, () => {}, true);
    for (const cmd of this.commands()) this.remoteCommands.push(cmd);
    const user = st.get("mqtt.user");
    const pass = st.get("mqtt.pass");
    const c = connect(p, {
      brokers: brokersOf(st.get("brokers"), st.on("tls")),
      clientId: this.id(),
      clean: false,
      keepalive: st.int("keepalive"),
      username: user.length > 0 ? user : undefined,
      password: pass.length > 0 ? pass : undefined,
      will: { topic: this.topics.status, payload: "{\"state\":\"offline\"}", qos: 1, retain: true },
      maxPacket: this.board.maxPacket,
      maxInflight: this.board.maxInflight,
      outboxMessages: this.board.outboxMessages,
      offlineQueue: this.board.offlineQueue,
      minFreeHeap: this.board.minFreeHeap,
    });
    if ("code" in c) return `node: the settings do not make a client: ${c.message}`; // a PetrelError (no instanceof: its Lua helper is large)
    this.client = c;
    const f = this.facts;
    c.on("connect", () => {
      f.up = true;
      f.upAt = p.clock.now();
      f.failed = "";
      this.connects++;
      this.board.log(`node: connected as ${this.id()}`);
      c.publish(this.topics.status, this.status("online"), { qos: 1, retain: true });
    });
    c.on("error", (e) => {
      this.lastError = `${e.code}: ${e.message}`;
      this.board.log(`node: ${this.lastError}`);
    });
    c.on("close", (reason) => {
      if (!f.up) {
        if (reason !== "") f.failed = reason;
        return;
      }
      f.up = false;
      // the broker closing a fresh connection, again and again: another board with this client id
      const short = elapsed(f.upAt, p.clock.now()) < FLAP_MS && (reason === "closed" || reason === "reset");
      f.shortDrops = short ? f.shortDrops + 1 : 0;
    });
    c.on("message", (t, payload) => {
      if (t === this.topics.cmd) this.remote(payload);
    });
    c.subscribe(this.topics.cmd, { qos: 1 }, (err, granted) => {
      // SUBACK 0x80: refused (the callback has it as granted 128, as MQTT.js does)
      f.subscription = err !== undefined || granted === undefined || granted[0] === 128 ? "refused" : `granted QoS ${granted[0]}`;
      if (f.subscription === "refused") {
        this.lastError = `subscribe-refused: the broker refused ${this.topics.cmd}: remote commands cannot arrive; diag says more`;
        this.board.log(`node: ${this.lastError}`);
      }
    });
    this.task = p.sched.add({ name: "sample", step: () => this.sample() }, 0);
    // made before the branch: Espruino must not skip an arrow using `this` (tools/guard)
    const sleepTask = { name: "sleep", step: () => this.sleepStep() };
    if (st.on("sleep") && this.board.sleep !== undefined) {
      this.sleepFrom = p.clock.now();
      this.keysSeen = this.board.keys !== undefined ? this.board.keys() : 0;
      this.sleepTask = p.sched.add(sleepTask, 0);
    } else if (st.on("sleep")) {
      this.board.log("node: this board cannot deep sleep; it stays awake between readings");
    }
    return null;
  }

  /** Whether the node deep-sleeps between readings (sleep on, and the board can). */
  sleeps(): boolean {
    return this.settings.on("sleep") && this.board.sleep !== undefined;
  }

  /**
   * A sleeping node's wake: its one reading acknowledged (or `awakeMs` spent trying), then the
   * retained status "asleep", a clean DISCONNECT (so no will), and deep sleep. Unacknowledged
   * messages stay in the outbox on flash and go out at the next wake. Typing at the console
   * keeps the board awake.
   */
  private sleepStep(): number {
    const c = this.client as MqttClient;
    const p = this.board.platform;
    const now = p.clock.now();
    const keys = this.board.keys !== undefined ? this.board.keys() : 0;
    if (keys !== this.keysSeen) {
      this.keysSeen = keys;
      this.typedAt = now;
      this.typed = true;
    }
    if (this.sleepPhase === 0 && this.typed && elapsed(this.typedAt, now) < TYPING_MS) return TYPING_MS - elapsed(this.typedAt, now);
    const awake = this.board.awakeMs !== undefined ? this.board.awakeMs : 15000;
    const waited = elapsed(this.sleepFrom, now);
    const asleepAcked = () => {
      this.sleepPhase = 2;
      p.sched.wake(this.sleepTask);
    };
    if (this.sleepPhase === 0) {
      if (!(c.connected && this.sent > 0 && c.core.outbox.count === 0) && waited < awake) return 100;
      if (c.connected) {
        this.sleepPhase = 1;
        c.publish(this.topics.status, this.status("asleep"), { qos: 1, retain: true }, asleepAcked);
        this.sleepFrom = now;
        return 100;
      }
      this.sleepPhase = 2;
    }
    if (this.sleepPhase === 1) {
      if (elapsed(this.sleepFrom, now) < 2000) return 100;
      this.sleepPhase = 2;
    }
    if (this.sleepPhase === 2) {
      this.sleepPhase = 3;
      let s = this.settings.int("interval");
      if (s > SLEEP_MAX_S) s = SLEEP_MAX_S;
      this.board.log(`node: deep sleep for ${s} s (outbox ${c.core.outbox.count} kept on flash)`);
      const sleep = this.board.sleep as (ms: number) => void;
      c.end(() => sleep(s * 1000));
    }
    return IDLE;
  }

  /** One reading, published; the next in `interval` seconds (a sleeping node takes one per wake). */
  private sample(): number {
    const c = this.client as MqttClient;
    const sleeping = this.sleeps();
    let qos = this.settings.int("qos");
    if (sleeping && qos === 0) qos = 1; // a reading that must survive the sleep needs an acknowledgement
    const err = c.core.publish(this.topics.telemetry, this.telemetry(), qos, false, undefined);
    if (err === undefined) {
      this.sent++;
    } else {
      this.dropped++;
      this.board.log(`node: reading dropped: ${err.code}: ${err.message}`);
    }
    return sleeping ? IDLE : this.settings.int("interval") * 1000;
  }

  /** Stops sampling (the host simulator's reboot of one board among many; a board just restarts). */
  stop(): void {
    const sched = this.board.platform.sched;
    if (this.task >= 0) sched.remove(this.task);
    if (this.sleepTask >= 0) sched.remove(this.sleepTask);
    this.task = -1;
    this.sleepTask = -1;
  }

  /** Samples now (the publish command): the task runs at once, then keeps its interval. */
  publishNow(): void {
    if (this.task >= 0) this.board.platform.sched.wake(this.task);
  }

  diagFacts(): DiagFacts {
    const c = this.client;
    const link = this.board.platform.link;
    const st = this.settings;
    return {
      link: link === undefined ? "none" : link.up() ? "up" : "down",
      connected: c !== undefined && c.connected,
      failed: this.facts.failed,
      attempts: c !== undefined ? c.core.stats.attempts : 0,
      brokers: st.get("brokers"),
      tls: st.on("tls") || st.get("brokers").indexOf("tls:") >= 0,
      clientId: this.id(),
      subscription: this.facts.subscription,
      cmdTopic: this.topics.cmd,
      pingMs: c !== undefined ? c.core.stats.pingMs : -1,
      keepalive: st.int("keepalive"),
      shortDrops: this.facts.shortDrops,
    };
  }

  /** The node's own commands, for the console and the command topic. */
  commands(): Command[] {
    return [
      {
        name: "status",
        help: " connection, uptime, readings sent and dropped, unsaved settings",
        run: (_args, say) => {
          const c = this.client;
          say(`node ${this.id()}: ${c !== undefined && c.connected ? "connected" : "not connected"}, up ${this.uptime()} s, ` +
            `${this.reconnects()} reconnects, ${this.sent} readings sent, ${this.dropped} dropped` +
            `${c !== undefined ? `, outbox ${c.core.outbox.count}` : ""}`);
          say(`last error: ${this.lastError.length > 0 ? this.lastError : "none"}`);
          const unsaved = this.settings.unsaved();
          say(unsaved.length > 0 ? `unsaved settings: ${unsaved.join(", ")} (save keeps them)` : "settings: all saved");
        },
      },
      {
        name: "diag",
        help: " walks Wi-Fi, DNS, TCP, TLS, MQTT, subscription and ping; names the first broken link",
        run: (_args, say) => {
          for (const l of diagnose(this.diagFacts())) say(l);
        },
      },
      {
        name: "publish",
        help: " a reading now",
        run: (_args, say) => {
          this.publishNow();
          say("publishing a reading now");
        },
      },
      {
        name: "pub",
        help: "TOPIC QOS TEXT  publishes TEXT now (QoS 0, 1 or 2): to try a broker, a subscriber or a rule",
        run: (args, say) => {
          const c = this.client;
          const q = args.length >= 3 ? args[1] : "";
          if (q !== "0" && q !== "1" && q !== "2") {
            say("pub: usage: pub TOPIC QOS TEXT, QoS 0, 1 or 2 (e.g. pub test/hello 1 hi)");
            return;
          }
          if (c === undefined) {
            say("pub: no client (the settings cannot make one: diag says why)");
            return;
          }
          let text = args[2];
          for (let k = 3; k < args.length; k++) text = text + " " + args[k];
          // QoS 1/2: the broker's acknowledgement (or why there will be none) is told when it comes
          const what = `${args[0]} ${q} ${text}`;
          const done = (e: PetrelError | undefined) => {
            this.board.log(e === undefined ? `pub: acknowledged: ${what}` : `pub: not delivered: ${what}: ${e.code}: ${e.message}`);
          };
          const err = c.core.publish(args[0], text, q === "0" ? 0 : q === "1" ? 1 : 2, false, q === "0" ? undefined : done);
          say(err === undefined ? `pub: queued (outbox ${c.core.outbox.count})` : `pub: ${err.code}: ${err.message}`);
        },
      },
      {
        name: "reboot",
        help: " restarts the board (unsaved settings are lost)",
        run: (_args, say) => {
          say("rebooting");
          this.board.reboot();
        },
      },
    ];
  }

  /** A command line from the command topic, answered on the reply topic. */
  private remote(payload: unknown): void {
    const line = String(payload);
    const replies: string[] = [];
    const say = (l: string) => {
      replies.push(l);
    };
    if (line.length > REMOTE_LINE_MAX) say(`error: the command is over ${REMOTE_LINE_MAX} characters; nothing was run`);
    else runCommand(this.remoteCommands, words(line), line, say);
    (this.client as MqttClient).publish(this.topics.reply, replies.join("\n"), { qos: 1 });
  }
}
