/**
 * The chaos lab: simulated boards running the built client publish numbered QoS 0/1/2 messages
 * through fault proxies while a seeded schedule injects faults:
 * - the network (both proxies alike): resets, half-open black holes short and long (a partition
 *   of 8-15 s, many keepalives; both ways, or the uplink only,
 *   so the boards' acknowledgements are lost while the broker's messages arrive), bytes split one at a time,
 *   delays, jitter, a bandwidth cap, hold-then-release, refused connections;
 * - the broker: a SIGTERM restart with persistence, kill -9 and restarts without persistence
 *   (`brokerKills`), and a failover: the first broker down for seconds while a second one takes
 *   the boards (`failover`);
 * - a board: a power cut mid-flight (while cut off, so its outbox is full of messages in
 *   flight), its flash full, a sensor task overrunning its slice, a Wi-Fi drop and rejoin.
 * An independent subscriber at each broker (mosquitto_sub, not Petrel code) records what arrives,
 * and checker.ts gives the verdict.
 *
 * The lab's own proof that it can fail, two deliberately broken clients:
 * - `brokenOutbox`: boards lose their flash at a power cut (an outbox that does not survive a
 *   reboot): messages in flight are lost;
 * - `brokenDuplicates`: the boards' QoS 2 duplicate check removed (every incoming packet id looks
 *   new), so a broker's resend after a lost PUBREC reaches the program twice.
 * Either must get a FAIL verdict.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as os from "node:os";
import * as mqtt from "mqtt";
import * as fs from "node:fs";
import * as path from "node:path";
import { seeded } from "../seeded";
import "../../firmware/targets/node/index";
import { STORAGE_FULL, type Storage } from "../../firmware/port/storage";
import type { Bytes } from "../../firmware/port/bytes";
import { PacketType, Status } from "../../firmware/codec/constants";
import { Decoder } from "../../firmware/codec/decoder";
import { OUTBOX_RECORD } from "../../firmware/session/outbox";
import type { Transport, TransportEvents } from "../../firmware/port/transport";
import { IDLE } from "../../firmware/sched/scheduler";
import { connect, type MqttClient } from "../../firmware/session/mqtt";
import type { Platform } from "../../firmware/port/platform";
import { appCommand, type AppTarget } from "../app-boards";
import { startFaultProxy, type FaultProxy } from "../fault-proxy";
import { startBroker, type Broker } from "../mosquitto";
import { nodePlatform, simulatedLink } from "../../firmware/targets/node/platform";
import { memoryStorage } from "../../firmware/targets/node/storage";
import { nodeTransport } from "../../firmware/targets/node/transport";
import { downlinkVerdict, verdict, type Arrival, type Fault, type Published, type Verdict } from "./checker";
import { renderReport, timelineSvg, type Sample } from "./report";

export interface ChaosOptions {
  boards: number;
  /** Length of the fault schedule, s (the drain after it is bounded separately). */
  seconds: number;
  seed: number;
  /** Messages per board per QoS per second. */
  rate?: number;
  brokenOutbox?: boolean;
  brokenDuplicates?: boolean;
  /** Broker kill -9 and restarts without persistence among the faults too. */
  brokerKills?: boolean;
  /** A second broker in every board's list, and failovers to it among the faults. */
  failover?: boolean;
  /** The first faults, in order (kinds as in the schedule); a seeded deck of every kind follows. Default: a power cut. */
  first?: string[];
  /**
   * Boards on other runtimes, one each: the sensor node app built for that runtime, in its own
   * process, publishing the numbered messages typed at its serial console (`pub`); a power cut
   * kills the process and starts it again on the same flash.
   */
  runtimes?: AppTarget[];
  /** The protocol of the boards in this process: 4 (MQTT 3.1.1, the default) or 5 (MQTT 5.0). */
  protocolVersion?: number;
  /** Progress lines (the command line prints them). */
  progress?: (line: string) => void;
  /** Where to write the HTML report (none when absent). */
  report?: string;
}

export interface ChaosResult {
  seed: number;
  verdict: Verdict;
  faults: Fault[];
  /** Messages each board's client refused (outbox full while cut off): not counted as sent. */
  refused: number;
  powerCuts: number;
  /** Broker restarts: SIGTERM with persistence, kill -9, and without persistence. */
  brokerRestarts: number;
  brokerKills: number;
  brokerWipes: number;
  failovers: number;
  /** Board faults: storage full, task overruns (and the slices the scheduler reported), Wi-Fi drops. */
  storageFull: number;
  overruns: number;
  overrunsReported: number;
  wifiDrops: number;
  /** Incoming QoS 2 repeats the boards' duplicate check caught (a broker's resend after a lost PUBREC). */
  duplicatesCaught: number;
  /** Per fault, ms from its end until every board was connected again (p50, p99, max). */
  recovery: { p50: number; p99: number; max: number; samples: number };
  /** Each board's runtime ("node" for the boards in the lab's own process, "node (MQTT 5.0)" at 5.0). */
  runtimes: Record<string, string>;
  /**
   * The boards on other runtimes' QoS 1/2 messages: acknowledgements their consoles told, and
   * those not told (left in flash by a power cut, sent after the reboot with no one to tell).
   */
  consoleAcks: { seen: number; unseen: number };
  /** The HTML report's path, when one was written. */
  report?: string;
}


/** A transport that can lose power: afterwards nothing goes out and nothing comes back. */
function killable(inner: Transport, onPacket?: (port: number, first: number) => void): { t: Transport; kill(): void } {
  let dead = false;
  let port = 0;
  const guard = (ev: TransportEvents): TransportEvents => ({
    onOpen: () => { if (!dead) ev.onOpen(); },
    onData: (c) => { if (!dead) ev.onData(c); },
    onWritable: () => { if (!dead) ev.onWritable(); },
    onClose: (r) => { if (!dead) ev.onClose(r); },
  });
  return {
    t: {
      openStream: (h, p, tls, ev, name) => {
        port = p;
        if (!dead) inner.openStream(h, p, tls, guard(ev), name);
      },
      sendWire: (d) => {
        if (dead) return true;
        // one packet per write (the session's contract): its first byte names it
        onPacket?.(port, (d as unknown as Uint8Array)[0]);
        return inner.sendWire(d);
      },
      hangUp: () => { if (!dead) inner.hangUp(); },
    },
    kill: () => {
      if (dead) return;
      inner.hangUp();
      dead = true;
    },
  };
}

/**
 * The board's flash, and its fault: full (every write refused). It also tells the lab when an
 * outbox record (a stored PUBLISH: the outbox's record contract, OUTBOX_RECORD) is removed, which
 * is when the broker acknowledged it: a message loaded after a reboot has no callback of the
 * program's any more, and the checker needs its acknowledgement time to tell the broker's losses
 * from the client's. The client keeps its records under the default prefix ("mq").
 */
const OUTBOX_KEY = new RegExp(`^mq${OUTBOX_RECORD}\\d+$`);
function faultyStorage(b: ChaosBoard): Storage {
  return {
    putRecord: (k, d) => (b.full ? STORAGE_FULL : b.flash.putRecord(k, d)),
    getRecord: (k) => b.flash.getRecord(k),
    dropRecord: (k) => {
      if (OUTBOX_KEY.test(k)) {
        const w = b.flash.getRecord(k);
        if (w !== undefined) b.removed(w as unknown as Buffer);
      }
      b.flash.dropRecord(k);
    },
    listRecords: (prefix) => b.flash.listRecords(prefix),
  };
}

/**
 * The topic's QoS digit and the payload's number in a stored PUBLISH packet ("chaos/<id>/q<qos>",
 * "<seq>"), read with the codec's own decoder.
 */
export function storedMessage(p: Uint8Array, v5 = false): { qos: number; seq: number } | undefined {
  const d = new Decoder(p.length + 1);
  // (a 5.0 client's records are 5.0 PUBLISH packets, marked by the record "<prefix>v")
  d.feedChunk(p as unknown as Bytes, 0, v5);
  if (d.status !== Status.Packet || d.type !== PacketType.Publish) return undefined;
  const topic = d.topicText();
  const payload = Buffer.from(p.subarray(d.payloadStart, d.payloadStart + d.payloadLength)).toString("latin1");
  const m = /\/q([12])$/.exec(topic);
  return m === null || !/^\d+$/.test(payload) ? undefined : { qos: Number(m[1]), seq: Number(payload) };
}

class ChaosBoard {
  flash: Storage = memoryStorage();
  full = false;
  private readonly storage = faultyStorage(this);
  readonly link = simulatedLink();
  client!: MqttClient;
  private kill: () => void = () => {};
  private sched!: Platform["sched"];
  /** Overruns the scheduler reported: this boot's list, and the earlier boots' count. */
  private overrunList: string[] = [];
  private overrunsBefore = 0;
  readonly seq = [0, 0, 0];
  readonly at: number[][] = [[], [], []];
  readonly ackAt: (number | undefined)[][] = [[], [], []];
  refused = 0;
  /** Downlink (commands to the board, QoS 2): when the board's program got each number. */
  readonly delivered: number[][] = [];
  /** Commands sent to this board (by the lab's commander). */
  commands = 0;
  /** When a broker first took each command (its PUBREC to the commander). */
  readonly commandTaken: (number | undefined)[] = [];
  /**
   * When the board sent SUBSCRIBE to the first broker (the commander's): after a restart without
   * persistence the broker has no subscription of the board's until the next one.
   */
  readonly subscribedAt: number[] = [];
  now: () => number = () => 0;

  constructor(readonly id: string, private readonly brokers: { host: string; port: number }[], private readonly noDuplicateCheck: boolean,
    private readonly protocol: number) {
    this.boot();
  }

  boot(): void {
    const k = killable(nodeTransport(), (port, first) => {
      if (first === 0x82 && port === this.brokers[0].port) this.subscribedAt.push(this.now());
    });
    this.kill = k.kill;
    const p = nodePlatform({ storage: this.storage, chipId: this.id, transport: k.t, logLevel: 0, link: this.link });
    this.sched = p.sched;
    const c = connect(p, {
      brokers: this.brokers, clientId: this.id, clean: false, keepalive: 2,
      reconnectMinMs: 100, reconnectMaxMs: 1000, connectTimeoutMs: 3000, outboxMessages: 1000, offlineQueue: 50,
      // back to the first broker 5 s after a failover (300 s by default): the commands queued
      // for it there are delivered within the run
      primaryRetry: 5,
      protocolVersion: this.protocol,
    });
    if ("code" in c) throw new Error(`${c.code}: ${c.message}`);
    this.client = c;
    this.overrunList = p.overruns;
    // the board's program: every command that reaches it counts (a relay toggled twice is a fault)
    c.subscribe(`chaos/${this.id}/in`, { qos: 2, handler: (_t, payload) => {
      const n = Number(String(payload));
      (this.delivered[n] ??= []).push(this.now());
    } });
    // the broken client: its QoS 2 duplicate check removed (every id looks new)
    if (this.noDuplicateCheck) (c.core.received as { hasId(id: number): boolean }).hasId = () => false;
  }

  /** An outbox record went: its message was acknowledged (the first time counts). */
  removed(packet: Uint8Array): void {
    const m = storedMessage(packet, this.flash.getRecord("mqv") !== undefined);
    if (m !== undefined && this.ackAt[m.qos][m.seq] === undefined) this.ackAt[m.qos][m.seq] = this.now();
  }

  /** Every boot's count of incoming QoS 2 repeats caught. */
  private caughtBefore = 0;
  duplicatesCaught(): number {
    return this.caughtBefore + this.client.core.stats.duplicates;
  }

  overrunsReported(): number {
    return this.overrunsBefore + this.overrunList.length;
  }

  /** Publishes the next number at each QoS (acknowledgement times come from the flash: `removed`). */
  publish(t: number): void {
    for (let qos = 0; qos <= 2; qos++) {
      const seq = this.seq[qos];
      const err = this.client.core.publish(`chaos/${this.id}/q${qos}`, String(seq), qos, false, undefined);
      if (err !== undefined) {
        this.refused++;
        continue;
      }
      this.at[qos].push(t);
      this.seq[qos]++;
    }
  }

  /** Power cut mid-flight: no DISCONNECT, the client gone; the next boot resumes from the flash. */
  powerCut(loseFlash: boolean): void {
    this.kill();
    this.client.core.end();
    this.overrunsBefore += this.overrunList.length;
    this.caughtBefore += this.client.core.stats.duplicates;
    if (loseFlash) this.flash = memoryStorage();
    this.boot();
  }

  /** A sensor task that holds the board for `ms` in one slice (a watchdog would bite on a board). */
  overrun(ms: number): void {
    this.sched.enqueue({
      name: "sensor",
      step: () => {
        const until = performance.now() + ms;
        while (performance.now() < until) { /* the overrunning sensor read */ }
        return IDLE;
      },
    }, 0);
  }

  /**
   * Connected to the first broker with an empty outbox: a board left on the second broker at the
   * end would leave the commands queued for it on the first undelivered (it goes back 5 s after
   * a failover, or after a kill that sent it over).
   */
  drained(): boolean {
    return this.client.connected && this.client.core.outbox.count === 0 && this.client.core.broker === 0;
  }
}

/**
 * A board on another runtime: the sensor node app in its own process (host-sim/app-boards.ts),
 * driven through its serial console. It publishes the numbered messages with `pub`, one line
 * outstanding per QoS, so a number is used again until the board accepts it (a refusal, e.g. an
 * outbox full while cut off, leaves no gap).
 */
class RuntimeBoard {
  readonly seq = [0, 0, 0];
  readonly at: number[][] = [[], [], []];
  /** When the app said the broker acknowledged each (`pub: acknowledged: …`); unseen for messages a power cut left in flash. */
  readonly ackAt: (number | undefined)[][] = [[], [], []];
  refused = 0;
  restarts = 0;
  now: () => number = () => 0;
  private child!: ChildProcess;
  private rest = "";
  private waiting: (number | undefined)[] = [undefined, undefined, undefined];
  private typing = true;
  private statusLine = "";
  readonly flash: string;

  constructor(readonly id: string, readonly target: AppTarget, private readonly defaults: Record<string, string>) {
    this.flash = fs.mkdtempSync(path.join(os.tmpdir(), `petrel-chaos-${target}-`));
    this.start();
  }

  private start(): void {
    const c = appCommand(this.target, { flash: this.flash, chipId: this.id, defaults: this.defaults });
    const child = spawn(c.exe, c.args, { cwd: this.flash, env: { ...process.env, ...c.env }, stdio: ["pipe", "pipe", "pipe"] });
    this.child = child;
    this.rest = "";
    this.waiting = [undefined, undefined, undefined];
    child.stdin!.on("error", () => {});
    child.stderr!.on("data", () => {});
    child.stdout!.on("data", (d: Buffer) => {
      if (this.child !== child) return;
      this.rest += d.toString("latin1");
      const lines = this.rest.split("\n");
      this.rest = lines.pop() as string;
      for (const l of lines) this.line(l.replace(/\r/g, ""));
    });
  }

  private line(l: string): void {
    const a = /pub: acknowledged: chaos\/[^/]+\/q([012]) [012] (\d+)$/.exec(l);
    if (a !== null) {
      const q = Number(a[1]);
      const n = Number(a[2]);
      if (this.ackAt[q][n] === undefined) this.ackAt[q][n] = this.now();
      return;
    }
    if (l.includes("pub: not delivered: ")) return;
    const m = /pub: (queued|.*)$/.exec(l);
    if (m !== null && !l.includes("usage")) {
      // the oldest outstanding line answered: lines are answered in the order typed
      let q = -1;
      let first = Infinity;
      for (let k = 0; k < 3; k++) {
        const t = this.waiting[k];
        if (t !== undefined && t < first) {
          first = t;
          q = k;
        }
      }
      if (q < 0) return;
      this.waiting[q] = undefined;
      if (m[1].startsWith("queued")) {
        this.at[q].push(first);
        this.seq[q]++;
      } else this.refused++;
      return;
    }
    if (/^(petrel> )*node \S+: /.test(l)) this.statusLine = l;
  }

  publish(t: number): void {
    if (!this.typing) return;
    for (let qos = 0; qos <= 2; qos++) {
      if (this.waiting[qos] !== undefined) continue;
      this.waiting[qos] = t;
      this.child.stdin!.write(`pub chaos/${this.id}/q${qos} ${qos} ${this.seq[qos]}\n`);
    }
  }

  /** No line typed is left unanswered (a power cut between a line and its answer is not a fault of the board's). */
  private quiet(): boolean {
    return this.waiting.every((w) => w === undefined);
  }

  /** Power cut: the process killed (SIGKILL, no goodbye), then started again on the same flash. */
  async powerCut(): Promise<void> {
    this.typing = false;
    await until(`${this.id}: its console answered`, () => this.quiet(), 5000).catch(() => {});
    const c = this.child;
    const gone = new Promise((r) => c.once("exit", r));
    c.kill("SIGKILL");
    await gone;
    this.restarts++;
    this.start();
    this.typing = true;
  }

  /** Asks `status` every 0.5 s until it says connected with an empty outbox; false after `tries`. */
  async settle(tries: number): Promise<boolean> {
    for (let k = 0; k < tries; k++) {
      if (await this.drained()) return true;
      await sleep(500);
    }
    return false;
  }

  /** Asks `status`; true once it says connected with an empty outbox. */
  async drained(): Promise<boolean> {
    if (!this.quiet()) return false;
    this.statusLine = "";
    this.child.stdin!.write("status\n");
    await until(`${this.id}: status`, () => this.statusLine !== "", 3000).catch(() => {});
    return /: connected, .*, outbox 0 *$/.test(this.statusLine);
  }

  stop(): void {
    this.typing = false;
    this.child.kill("SIGKILL");
    fs.rmSync(this.flash, { recursive: true, force: true });
  }
}

/**
 * The independent subscriber: mosquitto_sub with a persistent session, QoS 2. It reconnects by
 * itself when its broker comes back, keeping its own half of the session: an incoming QoS 2
 * message it has answered with PUBREC waits in its memory for the PUBREL (libmosquitto delivers
 * then). That is right across a restart that kept the broker's state; across one that lost it
 * (kill -9, no persistence) the new broker numbers its messages from 1 again, and a PUBREL for
 * a reused number would release the stale message, long after and out of order. So `pause`
 * ends the process while its broker is down after losing its state, and `resume` starts a new
 * one (what it had not delivered is lost with the broker's state, and counted with the broker's).
 */
function subscriber(port: number, lines: Arrival[], now: () => number, broker: string): { stop(): void; pause(): void; resume(): void } {
  let child: ReturnType<typeof spawn> | undefined;
  let stopped = false;
  let paused = false;
  const start = () => {
    const c = spawn("stdbuf", ["-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", String(port), "-t", "chaos/#", "-q", "2", "-c", "-i", "chaos-checker", "-F", "%m %t %p"],
      { stdio: ["ignore", "pipe", "ignore"] });
    child = c;
    let rest = "";
    c.stdout!.on("data", (d: Buffer) => {
      rest += d.toString();
      const parts = rest.split("\n");
      rest = parts.pop() as string;
      // "<packet id> <topic> <payload>": the id is the broker's, on the checker's own leg
      for (const p of parts) {
        const sp = p.indexOf(" ");
        if (sp > 0) lines.push({ line: p.slice(sp + 1), t: now(), broker, mid: Number(p.slice(0, sp)) });
      }
    });
    // it ends when it cannot connect at all (started while its broker is down): it tries again
    c.on("exit", () => {
      if (!stopped && !paused && child === c) setTimeout(start, 200);
    });
  };
  start();
  return {
    stop: () => {
      stopped = true;
      child?.kill("SIGKILL");
    },
    pause: () => {
      paused = true;
      child?.kill("SIGKILL");
      child = undefined;
    },
    resume: () => {
      paused = false;
      if (!stopped) start();
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => boolean, ms: number): Promise<void> {
  for (let waited = 0; !cond(); waited += 50) {
    if (waited >= ms) throw new Error(`chaos: gave up after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

/**
 * The brokers' in-flight window. The checker takes every board's messages on one connection;
 * with a small window mosquitto 2.0.11 queues the rest, and a message released while a slot is
 * free can overtake one queued before it (seen in its log: the checker sent m3066 before m3065
 * right after a board's reconnect), which would look like the board's reordering. A window the
 * checker never fills keeps its leg in order.
 */
const CHECKER_INFLIGHT = 10000;
/**
 * And no cap on what the brokers queue per client (mosquitto's default is 1,000 messages beyond
 * the in-flight window, and it drops the rest): a checker that falls behind for a moment behind a
 * hundred boards must not lose what the boards delivered.
 */
const BROKER_EXTRA = ["max_queued_messages 0"];
/**
 * The brokers save their state once a second, as a deployed broker does on a timer, not after
 * every change: each save writes the whole database, and with a checker's backlog in it a broker
 * saving after every message fell to about 30 messages a second (a 100-board run at 4 messages a
 * second per board and QoS ended with its checker minutes behind). A kill -9 loses up to a second
 * of the broker's state, counted on the broker's side like the rest of what it loses.
 */
const BROKER = { maxInflight: CHECKER_INFLIGHT, extra: BROKER_EXTRA, autosaveSeconds: 1 };

/** The lab's own counts of the faults it injected (the result's fields of the same names). */
interface Counts {
  restarts: number;
  kills: number;
  wipes: number;
  failovers: number;
  powerCuts: number;
  storageFull: number;
  overruns: number;
  wifiDrops: number;
}

/** One fault as drawn: how long it holds (ms), and what its kind drew after that (a board, a length). */
interface Shot {
  hold: number;
  board?: ChaosBoard | RuntimeBoard;
  ms: number;
}

/**
 * A kind of fault: its name, how it starts and ends, how long it lasts. The schedule draws a kind,
 * then its hold (8-15 s for a long one, 0.5-3 s for the others), then `aim` (which board, any
 * length of its own); runs `start`, waits `lasts`, runs `end`; records the fault (name, from, to),
 * counts it, and times the boards' recovery from its end.
 */
interface FaultKind {
  /** In the deck only with this option on. */
  option?: "brokerKills" | "failover";
  /** A long fault: held 8-15 s (many keepalives), not 0.5-3 s. */
  long?: boolean;
  /** A blip (a reset): reported as 200 ms from its start, the recovery timed from its start. */
  blip?: boolean;
  /** The count it adds to. */
  counter?: keyof Counts;
  /** Draws what it hits, after its hold. */
  aim?(lab: Lab, s: Shot): void;
  /** Its name in the report and the progress lines. */
  name(s: Shot): string;
  /** ms from its start to its end. */
  lasts(s: Shot): number;
  start(lab: Lab, s: Shot): unknown;
  end(lab: Lab, s: Shot): unknown;
}

/**
 * A fault of the network: both brokers' proxies alike, `on` at its start, `off` at its end. A
 * half-open connection never comes back (bytes dropped mid-stream cannot be resumed): a black hole
 * resets the connections it held when it ends, as their kernel would; a slow link (delay, jitter)
 * ends by dropping, with acknowledgements still on their way (so a broker sends a QoS 2 message
 * again whose PUBREC it never got: the duplicate check's case).
 */
function network(name: string, on: (p: FaultProxy) => unknown, off: (p: FaultProxy) => unknown, long = false): FaultKind {
  return { name: () => name, long, lasts: (s) => s.hold, start: (lab) => lab.all(on), end: (lab) => lab.all(off) };
}

/** A broker fault: the first broker down (`stop`: SIGTERM, or kill -9), then back on its port and directory. */
function brokerDown(name: (s: Shot) => string, how: "stop" | "kill", counter: keyof Counts, option?: FaultKind["option"]): FaultKind {
  const lost = how === "kill";
  return {
    option, counter, name, lasts: (s) => (counter === "failovers" ? s.hold + 1500 : 300),
    start: async (lab) => {
      await (how === "stop" ? lab.broker.stop() : lab.broker.kill());
      if (counter === "wipes") lab.wipes.push(lab.now());
      if (lost) {
        lab.stateLost.push(lab.now());
        lab.sub.pause();
      }
      if (counter === "wipes") {
        // its saved state gone; the boards wait (connections refused) until the checker has
        // its subscription again, or what they resend would reach a broker with no subscriber
        fs.rmSync(path.join(lab.broker.dir, "mosquitto.db"), { force: true });
        await lab.proxies[0].refuse(true, "unlisten");
      }
    },
    end: async (lab) => {
      lab.broker = await startBroker({ ...BROKER, port: lab.broker.port, dir: lab.broker.dir });
      if (lost) lab.sub.resume();
      if (counter === "wipes") {
        const mark = lab.broker.log().length;
        await until("the checker subscribed again", () => lab.broker.log().slice(mark).includes("chaos-checker"), 10000);
        await sleep(300);
        await lab.proxies[0].refuse(false, "unlisten");
      }
    },
  };
}

/** A fault of one board in the lab's own process: `set(board, true)` at its start, false at its end. */
function boardFault(what: string, counter: keyof Counts, set: (b: ChaosBoard, on: boolean) => void): FaultKind {
  return {
    counter, aim: (lab, s) => (s.board = lab.pick()), name: (s) => `${s.board!.id}: ${what}`, lasts: (s) => s.hold,
    start: (_lab, s) => set(s.board as ChaosBoard, true), end: (_lab, s) => set(s.board as ChaosBoard, false),
  };
}

/** The progress line every 10 s; past the schedule the lab is draining, not "40 s of 30 s". */
export function progressLine(nowMs: number, seconds: number, draining: boolean, checked: number, faults: number): string {
  const s = Math.floor(nowMs / 1000);
  const when = draining ? `draining (faults over after ${seconds} s), ${s} s in` : `${s} s of ${seconds} s`;
  return `chaos: ${when}, ${checked} messages checked, ${faults} faults injected`;
}

/** What a fault hits, by its counter: a broker, a board, else the network. */
function kindOf(f: FaultKind): "network" | "board" | "broker" {
  const c = f.counter;
  if (c === "restarts" || c === "kills" || c === "wipes" || c === "failovers") return "broker";
  return c === undefined ? "network" : "board";
}

/** Every kind of fault, by the name the schedule (and `first`) uses. */
export const FAULTS: Record<string, FaultKind> = {
  "reset": { blip: true, name: () => "reset", lasts: () => 0, start: (lab) => lab.all((p) => p.reset()), end: () => {} },
  "blackhole": network("blackhole", (p) => p.blackhole(true), (p) => (p.blackhole(false), p.reset())),
  "uplink-loss": network("uplink lost (board to broker dropped, acknowledgements too)", (p) => p.blackhole(true, "toBroker"), (p) => (p.blackhole(false), p.reset())),
  "split": network("bytes split one at a time", (p) => p.split(1), (p) => p.split(0)),
  "delay": network("delay 200 ms, then the link drops", (p) => p.delay(200), (p) => (p.reset(), p.delay(0))),
  "jitter": network("jitter 0-300 ms, then the link drops", (p) => p.jitter(300), (p) => (p.reset(), p.jitter(0))),
  "bandwidth": network("bandwidth 400 B/s", (p) => p.bandwidth(400), (p) => p.bandwidth(0)),
  "hold": network("hold, then release", (p) => p.hold(true), (p) => p.hold(false)),
  "refuse": network("refuse", (p) => p.refuse(true, "unlisten"), (p) => p.refuse(false, "unlisten")),
  "partition": network("long partition (nothing either way)", (p) => p.blackhole(true), (p) => (p.blackhole(false), p.reset()), true),
  // cut off first (its outbox fills), then the power goes: the reboot must resume from flash.
  // Any board: one in this process, or one on another runtime (its process killed).
  "power-cut": {
    counter: "powerCuts",
    aim: (lab, s) => {
      const which = Math.floor(lab.rand() * (lab.boards.length + lab.others.length));
      s.board = which < lab.boards.length ? lab.boards[which] : lab.others[which - lab.boards.length];
    },
    name: (s) => `every board's network cut, then a power cut of ${s.board!.id}`,
    lasts: () => 1000,
    start: async (lab) => {
      await lab.all((p) => p.refuse(true, "reset"));
      await lab.all((p) => p.reset());
    },
    end: async (lab, s) => {
      const b = s.board!;
      if (b instanceof ChaosBoard) b.powerCut(lab.o.brokenOutbox === true);
      else await b.powerCut();
      await lab.all((p) => p.refuse(false, "reset"));
    },
  },
  "storage-full": boardFault("flash full", "storageFull", (b, on) => (b.full = on)),
  "overrun": {
    counter: "overruns",
    aim: (lab, s) => {
      s.board = lab.pick();
      s.ms = 300 + Math.floor(lab.rand() * 500);
    },
    name: (s) => `${s.board!.id}: a sensor task overrunning its slice (${s.ms} ms)`,
    lasts: (s) => s.ms + 100,
    start: (_lab, s) => (s.board as ChaosBoard).overrun(s.ms),
    end: () => {},
  },
  "wifi-drop": boardFault("Wi-Fi drop and rejoin", "wifiDrops", (b, on) => b.link.set(!on)),
  "restart": brokerDown(() => "broker restart (SIGTERM, persistence)", "stop", "restarts"),
  "kill": brokerDown(() => "broker kill -9", "kill", "kills", "brokerKills"),
  "wipe": brokerDown(() => "broker restart without persistence", "kill", "wipes", "brokerKills"),
  "failover": brokerDown((s) => `failover: broker down ${s.hold + 1500} ms, the second one takes the boards`, "stop", "failovers", "failover"),
};

/** The kinds a run's deck holds: every kind, the broker kills and the failover only with their options. */
export function faultKinds(o: Pick<ChaosOptions, "brokerKills" | "failover">): string[] {
  return Object.keys(FAULTS).filter((k) => {
    const opt = FAULTS[k].option;
    return opt === undefined || o[opt] === true;
  });
}

/** A run's state: its brokers, checkers, proxies and boards, and what it has seen so far. */
class Lab {
  readonly rand: () => number;
  broker!: Broker;
  second: Broker | undefined;
  readonly proxies: FaultProxy[] = [];
  readonly received: Arrival[] = [];
  private readonly t0 = Date.now();
  sub!: ReturnType<typeof subscriber>;
  subB: ReturnType<typeof subscriber> | undefined;
  /** When a broker lost its state (kill -9, a restart without persistence). */
  readonly stateLost: number[] = [];
  /** When the first broker restarted without persistence (its subscriptions gone). */
  readonly wipes: number[] = [];
  /** Per fault, ms from its end until every board was connected again. */
  readonly recoveries: number[] = [];
  readonly counts: Counts = { restarts: 0, kills: 0, wipes: 0, failovers: 0, powerCuts: 0, storageFull: 0, overruns: 0, wifiDrops: 0 };
  readonly faults: Fault[] = [];
  readonly boards: ChaosBoard[] = [];
  readonly others: RuntimeBoard[] = [];
  commander: mqtt.MqttClient | undefined;
  readonly samples: Sample[] = [];
  /** Set when the arrivals were still coming as the collection's bound ran out. */
  collectionCut: string | undefined;
  /** The schedule is over: the lab waits for the boards to drain and the checkers to settle. */
  draining = false;
  readonly timers: NodeJS.Timeout[] = [];

  constructor(readonly o: ChaosOptions) {
    this.rand = seeded(o.seed);
  }

  readonly now = (): number => Date.now() - this.t0;
  say(line: string): void {
    this.o.progress?.(line);
  }
  /** A network fault hits every path a board has (both brokers' proxies). */
  all(fn: (p: FaultProxy) => unknown): Promise<unknown> {
    return Promise.all(this.proxies.map(fn));
  }
  /** A board of the lab's own process, at random. */
  pick(): ChaosBoard {
    return this.boards[Math.floor(this.rand() * this.boards.length)];
  }
  /** After a fault: how long until every board is connected again (polled, bounded). */
  recovered(end: number): void {
    const poll = setInterval(() => {
      if (this.boards.every((b) => b.client.connected)) {
        this.recoveries.push(this.now() - end);
        clearInterval(poll);
      } else if (this.now() - end > 60000) clearInterval(poll);
    }, 20);
  }
}

/** Brokers and their checkers, the proxies, the boards (all connected), the commander and the samplers. */
async function setUp(lab: Lab): Promise<void> {
  const o = lab.o;
  lab.broker = await startBroker(BROKER);
  lab.second = o.failover === true ? await startBroker(BROKER) : undefined;
  lab.sub = subscriber(lab.broker.port, lab.received, lab.now, "A");
  lab.subB = lab.second !== undefined ? subscriber(lab.second.port, lab.received, lab.now, "B") : undefined;
  let sampled = 0;
  lab.timers.push(setInterval(() => {
    lab.samples.push({ t: lab.now(), arrived: lab.received.length - sampled, queued: lab.boards.reduce((k, b) => k + b.client.core.outbox.count, 0),
      connected: lab.boards.filter((b) => b.client.connected).length });
    sampled = lab.received.length;
  }, 500));
  if (o.progress !== undefined) {
    lab.timers.push(setInterval(() => {
      lab.say(progressLine(lab.now(), o.seconds, lab.draining, lab.received.length, lab.faults.length));
    }, 10000));
  }
  // the subscribers' sessions exist before anything is published
  const second = lab.second;
  await until("the checker's subscription", () => lab.broker.log().includes("chaos-checker"), 5000);
  if (second !== undefined) await until("the second checker's subscription", () => second.log().includes("chaos-checker"), 5000);
  await sleep(300);
  // the jitter's own generator: the schedule does not depend on how much traffic there was
  const jitterRandom = seeded(o.seed ^ 0x5eed);
  lab.proxies.push(await startFaultProxy({ target: { host: "127.0.0.1", port: lab.broker.port }, random: jitterRandom }));
  if (second !== undefined) lab.proxies.push(await startFaultProxy({ target: { host: "127.0.0.1", port: second.port }, random: jitterRandom }));
  const paths = lab.proxies.map((p) => ({ host: "127.0.0.1", port: p.port }));
  for (let k = 1; k <= o.boards; k++) {
    const b = new ChaosBoard(`b${k}`, paths, o.brokenDuplicates === true, o.protocolVersion ?? 4);
    b.now = lab.now;
    lab.boards.push(b);
  }
  await until("every board connected", () => lab.boards.every((b) => b.client.connected), 10000);
  for (const target of o.runtimes ?? []) {
    const id = `${target}-1`;
    const r = new RuntimeBoard(id, target, {
      brokers: paths.map((x) => `${x.host}:${x.port}`).join(","), "client.id": id, interval: "86400", keepalive: "10", log: "info", prefix: "chaos-app",
    });
    r.now = lab.now;
    lab.others.push(r);
  }
  for (const r of lab.others) {
    if (!(await r.settle(40))) throw new Error(`chaos: the ${r.target} board did not connect within 20 s`);
  }
  // the commander: numbered QoS 2 commands to every board, from a client that is not Petrel
  // (MQTT.js, a persistent session straight to the first broker, so its own resends after a
  // broker restart are recognised there as repeats)
  const cmd = mqtt.connect({ host: "127.0.0.1", port: lab.broker.port, protocolVersion: 4, clientId: "chaos-commander", clean: false, reconnectPeriod: 200, keepalive: 5 });
  lab.commander = cmd;
  // when the broker took each command: its PUBREC, matched to the command by packet id
  const byId = new Map(lab.boards.map((b) => [b.id, b]));
  const inFlight = new Map<number, { b: ChaosBoard; n: number }>();
  cmd.on("packetsend", (p) => {
    if (p.cmd !== "publish" || p.qos !== 2 || p.messageId === undefined) return;
    const b = byId.get(p.topic.replace(/^chaos\/([^/]+)\/in$/, "$1"));
    if (b !== undefined) inFlight.set(p.messageId, { b, n: Number(String(p.payload)) });
  });
  cmd.on("packetreceive", (p) => {
    if (p.cmd !== "pubrec" || p.messageId === undefined) return;
    const c = inFlight.get(p.messageId);
    if (c !== undefined && c.b.commandTaken[c.n] === undefined) c.b.commandTaken[c.n] = lab.now();
  });
  await until("the commander connected", () => cmd.connected, 5000);
}

/** The traffic: every board's numbered readings at `rate` a second, the commands at half that. */
function startTraffic(lab: Lab): NodeJS.Timeout {
  const cmd = lab.commander!;
  let ticks = 0;
  return setInterval(() => {
    ticks++;
    for (const r of lab.others) r.publish(lab.now());
    for (const b of lab.boards) {
      b.publish(lab.now());
      if (ticks % 2 === 0) cmd.publish(`chaos/${b.id}/in`, String(b.commands++), { qos: 2 });
    }
  }, Math.round(1000 / (lab.o.rate ?? 4)));
}

/**
 * The schedule: a fault every 1-2.5 s, drawn from a seeded deck that holds every kind once (so
 * each kind comes up once per round, in a seeded order), after the `first` ones (by default a
 * power cut, so every run has one).
 */
async function schedule(lab: Lab): Promise<void> {
  const kinds = faultKinds(lab.o);
  let deck: string[] = (lab.o.first ?? ["power-cut"]).slice();
  for (const k of deck) if (!kinds.includes(k)) throw new Error(`chaos: no fault kind "${k}" (kinds: ${kinds.join(", ")})`);
  while (lab.now() < lab.o.seconds * 1000) {
    await sleep(1000 + Math.floor(lab.rand() * 1500));
    if (deck.length === 0) {
      deck = kinds.slice();
      for (let i = deck.length - 1; i > 0; i--) {
        const j = Math.floor(lab.rand() * (i + 1));
        [deck[i], deck[j]] = [deck[j], deck[i]];
      }
    }
    const f = FAULTS[deck.shift() as string];
    const from = lab.now();
    const shot: Shot = { hold: f.long === true ? 8000 + Math.floor(lab.rand() * 7000) : 500 + Math.floor(lab.rand() * 2500), ms: 0 };
    f.aim?.(lab, shot);
    const name = f.name(shot);
    const lasts = f.lasts(shot);
    lab.say(`chaos: ${from} ms ${name}${f.blip === true ? "" : ` for ${lasts} ms`}`);
    await f.start(lab, shot);
    if (lasts > 0) await sleep(lasts);
    await f.end(lab, shot);
    if (f.counter !== undefined) lab.counts[f.counter]++;
    lab.faults.push({ name, from, to: f.blip === true ? from + 200 : lab.now(), kind: kindOf(f) });
    lab.recovered(f.blip === true ? from : lab.now());
  }
}

/**
 * After the schedule: every board back on the first broker with an empty outbox, the commander's
 * last commands settled (bounded; what stays unacknowledged by its broker is the sender's leg),
 * then the checkers' count settled: nothing new for 3 s (a broker still working through a backlog
 * to its checker pauses between bursts), at most 600 s. A collection cut short while messages
 * still arrive says so beside each message it calls lost.
 */
async function drain(lab: Lab): Promise<void> {
  const { boards, received } = lab;
  lab.draining = true;
  lab.say(`chaos: ${lab.now()} ms schedule over; draining`);
  const commanderIdle = () => Object.keys((lab.commander as unknown as { outgoing: object }).outgoing).length === 0;
  await until("every board drained (connected to the first broker, outbox empty)", () => boards.every((b) => b.drained()), 60000).catch((e) => {
    throw new Error(`${(e as Error).message}: ${boards.map((b) => `${b.id} ${b.client.connected ? `connected to broker ${b.client.core.broker + 1}` : "offline"} outbox ${b.client.core.outbox.count} attempts ${b.client.core.stats.attempts} last ${b.client.core.lastReason}`).join("; ")}`);
  });
  await until("the commander's queue to empty", commanderIdle, 10000).catch(() => {});
  for (const r of lab.others) {
    if (!(await r.settle(60))) throw new Error(`chaos: the ${r.target} board did not drain within 30 s (its last status: connected with an empty outbox expected)`);
  }
  let last = -1;
  let quietSince = Date.now();
  const drainFrom = Date.now();
  const recent: [number, number][] = [];
  const quiet = await until("the subscribers to go quiet", () => {
    recent.push([Date.now(), received.length]);
    if (recent.length > 200) recent.shift();
    if (received.length !== last) {
      last = received.length;
      quietSince = Date.now();
    }
    return Date.now() - quietSince >= 3000;
  }, 600000).then(() => true, () => false);
  if (!quiet) {
    const [[t1, n1], [t2, n2]] = [recent[0], recent[recent.length - 1]];
    const rate = Math.round(((n2 - n1) * 1000) / Math.max(1, t2 - t1));
    lab.collectionCut = `not seen when collection stopped after ${Math.round((Date.now() - drainFrom) / 1000)} s of waiting, with the checkers still receiving ${rate} a second: a broker's backlog to its checker, not proven lost`;
    lab.say(`chaos: ${lab.collectionCut}`);
  }
  await sleep(1000);
}

/** Everything the run started, stopped; the brokers' logs beside the report (a violation's story is in them). */
async function tearDown(lab: Lab): Promise<void> {
  for (const t of lab.timers) clearInterval(t);
  for (const b of lab.boards) b.client.core.end();
  lab.commander?.end(true);
  for (const r of lab.others) r.stop();
  lab.sub?.stop();
  lab.subB?.stop();
  for (const p of lab.proxies) await p.close();
  const report = lab.o.report;
  if (report !== undefined) {
    fs.mkdirSync(path.dirname(report), { recursive: true });
    for (const [b, name] of [[lab.broker, "a"], [lab.second, "b"]] as [Broker | undefined, string][]) {
      if (b !== undefined) fs.writeFileSync(report.replace(/\.html$/, "") + `-broker-${name}.log`, b.log());
    }
  }
  await lab.broker?.close();
  await lab.second?.close();
}

/** The verdict on what the boards published and the checkers received, and the run's figures. */
function result(lab: Lab): ChaosResult {
  const { boards, others, counts } = lab;
  const published: Published[] = [];
  for (const b of boards) for (let q = 0; q <= 2; q++) published.push({ device: b.id, qos: q, count: b.seq[q], at: b.at[q], ackAt: b.ackAt[q] });
  // A board on another runtime tells each acknowledgement at its console (`pub: acknowledged:`,
  // at log level info); a message a power cut left in its flash is acknowledged unseen, and
  // counts from when it was accepted: lost after a broker lost its state, it is the broker's.
  for (const r of others) for (let q = 0; q <= 2; q++) published.push({ device: r.id, qos: q, count: r.seq[q], at: r.at[q], ackAt: r.at[q].map((t, n) => r.ackAt[q][n] ?? t) });
  const consoleAcks = { seen: 0, unseen: 0 };
  for (const r of others) {
    for (let q = 1; q <= 2; q++) {
      for (let k = 0; k < r.seq[q]; k++) {
        if (r.ackAt[q][k] !== undefined) consoleAcks.seen++;
        else consoleAcks.unseen++;
      }
    }
  }
  const runtimes: Record<string, string> = {};
  // (with the protocol its last connection spoke, as the client's CONNACK handling set it)
  for (const b of boards) runtimes[b.id] = b.client.core.v5 !== undefined ? `node (MQTT ${b.client.core.v5.level === 5 ? "5.0" : "3.1.1"})` : "node";
  for (const r of others) runtimes[r.id] = r.target;
  const sorted = lab.recoveries.slice().sort((a, b) => a - b);
  const at = (q: number) => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]);
  const v = verdict(published, lab.received, lab.faults, lab.stateLost, lab.collectionCut);
  const down = downlinkVerdict(boards.map((b) => ({ device: b.id, sent: b.commands, delivered: b.delivered, taken: b.commandTaken, subscribedAt: b.subscribedAt })), lab.faults, lab.stateLost, lab.wipes);
  v.downlink = down.totals;
  v.violations.push(...down.violations);
  v.ok = v.violations.length === 0;
  return {
    seed: lab.o.seed, verdict: v, faults: lab.faults, consoleAcks,
    refused: boards.reduce((k, b) => k + b.refused, 0) + others.reduce((k, r) => k + r.refused, 0), runtimes, powerCuts: counts.powerCuts,
    brokerRestarts: counts.restarts, brokerKills: counts.kills, brokerWipes: counts.wipes, failovers: counts.failovers, storageFull: counts.storageFull,
    overruns: counts.overruns, overrunsReported: boards.reduce((k, b) => k + b.overrunsReported(), 0), wifiDrops: counts.wifiDrops,
    duplicatesCaught: boards.reduce((k, b) => k + b.duplicatesCaught(), 0),
    recovery: { p50: at(0.5), p99: at(0.99), max: sorted.length === 0 ? 0 : sorted[sorted.length - 1], samples: sorted.length },
  };
}

/** The HTML report, its timeline, every violation (and with CHAOS_ARRIVALS=1 every arrival) beside it. */
function writeReport(lab: Lab, r: ChaosResult, report: string): void {
  fs.mkdirSync(path.dirname(report), { recursive: true });
  const base = report.replace(/\.html$/, "");
  fs.writeFileSync(report, renderReport(r, lab.samples, { boards: lab.o.boards, seconds: lab.o.seconds, recoveries: lab.recoveries, latencies: r.verdict.latencies }));
  fs.writeFileSync(base + "-timeline.svg", timelineSvg(r, lab.samples, lab.o.boards));
  if (process.env.CHAOS_ARRIVALS === "1") fs.writeFileSync(base + "-arrivals.txt", lab.received.map((a) => `${a.t} ${a.broker ?? ""} ${a.mid ?? ""} ${a.line}`).join("\n") + "\n");
  fs.writeFileSync(base + "-violations.txt", r.verdict.violations.join("\n") + (r.verdict.violations.length > 0 ? "\n" : ""));
  r.report = report;
}

/** A chaos run: set up, traffic through the fault schedule, drain, tear down, the verdict (and its report). */
export async function runChaos(o: ChaosOptions): Promise<ChaosResult> {
  const lab = new Lab(o);
  try {
    await setUp(lab);
    lab.timers.push(startTraffic(lab));
    await schedule(lab);
    clearInterval(lab.timers.pop());
    await drain(lab);
  } finally {
    await tearDown(lab);
  }
  const r = result(lab);
  if (o.report !== undefined) writeReport(lab, r, o.report);
  return r;
}
