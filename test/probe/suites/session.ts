import type { Wire } from "../../../firmware/port/bytes";
import type { TransportEvents } from "../../../firmware/port/transport";
import { Scheduler } from "../../../firmware/sched/scheduler";
import { elapsed } from "../../../firmware/sched/time";
import { Client } from "../../../firmware/session/client";
import { dropHeld, listHeld, retryHeld } from "../../../firmware/session/held";
import { nextAttempt } from "../../../firmware/session/policy";
import type { Platform } from "../../../firmware/port/platform";
import { argBytes, argInt, argText, outWire, register } from "../probe";
import { port } from "../../../firmware/port/port";
import { STORAGE_FAILED, STORAGE_FULL, type Storage } from "../../../firmware/port/storage";
import { find } from "../../../firmware/port/text";
import { afterWord, words } from "../../../firmware/console/line";
import type { ClientOptions } from "../../../firmware/session/options";
import { connect, type MqttClient } from "../../../firmware/session/mqtt";
import { VirtualClock } from "../virtual-clock";

// The session on every runtime: a scripted board (transport, resolver, RAM storage) on a
// virtual clock 3 s before its wrap. Each scenario returns its transcript: what the client
// wrote (hex), the events it reported, and when it dialled.

const START = 2147480647;

/** What a script can do to the board's flash: make writes fail (0: they work; else the code put returns). */
interface StorageFault {
  fail: number;
}

/** RAM records (the board's flash), in the firmware dialect: Wires are immutable, kept as given. */
function probeStorage(fault: StorageFault): Storage {
  const recs: { [key: string]: Wire | undefined } = {};
  return {
    putRecord: (key: string, data: Wire) => {
      if (fault.fail !== 0) return fault.fail;
      recs[key] = data;
      return 0;
    },
    getRecord: (key: string) => recs[key],
    dropRecord: (key: string) => {
      recs[key] = undefined;
    },
    listRecords: (prefix: string) => {
      const out: string[] = [];
      for (const key in recs) {
        if (recs[key] !== undefined && key.substring(0, prefix.length) === prefix) out[out.length] = key;
      }
      return out;
    },
  };
}

/**
 * How a scripted board behaves, kept across a reboot (`new` again: a new board, the same flash):
 * each field 1 or 0 unless said otherwise.
 */
interface Knobs {
  /** The transcript, shared by every board of a script. */
  log: string[];
  /** 1: the client's log lines (error, warn, info; not debug) go into the transcript too ("warn mqtt: …"). */
  logging: number;
  /** 1: jitter at its largest (randomInt(n) = n - 1); 0: none (randomInt(n) = 0). */
  jitter: number;
  /** 0: the socket's buffer is full (sendWire returns false). */
  writable: number;
  /** 0: a close is never followed by onClose (a broken adapter). */
  reportsClose: number;
  /** 0: the resolver never answers. */
  dns: number;
  /** A host name the resolver does not know ("" none). */
  unknown: string;
  /** 1: onReconnect and onClose are noted too ("reconnect", "onclose REASON"). */
  events: number;
  /** Free heap the board reports (-1: the platform has no freeHeap; set before `new`). */
  heap: number;
  /** Called with an event's name when the client reports it (the script's hooks). */
  fire: (this: void, ev: string) => void;
}

class Board {
  readonly vc = new VirtualClock(START);
  readonly log: string[];
  readonly k: Knobs;
  readonly platform: Platform;
  private queue: (() => void)[] = [];
  private ev: TransportEvents | undefined = undefined;

  constructor(storage: Storage, k: Knobs) {
    this.k = k;
    this.log = k.log;
    const sched = new Scheduler(this.vc.clock, this.vc.timer, 1000, undefined);
    this.platform = {
      clock: this.vc.clock,
      sched: sched,
      storage: storage,
      log: { writeLog: (level: number, line: string) => this.logLine(level, line) },
      randomInt: (n: number) => this.rand(n),
      chipId: "probe",
      resolver: {
        lookUp: (host: string, done: (this: void, a: string, e: string) => void) => {
          this.resolve(host, done);
        },
      },
      transport: {
        openStream: (host: string, p: number, tls: boolean, ev: TransportEvents) => {
          this.log[this.log.length] = "open " + host + ":" + p + (tls ? " tls" : "") + " t=" + elapsed(START, this.vc.t);
          this.ev = ev;
        },
        sendWire: (w: Wire) => {
          this.log[this.log.length] = "w " + outWire(w);
          return this.k.writable === 1;
        },
        hangUp: () => {
          this.log[this.log.length] = "close";
          const ev = this.ev;
          this.ev = undefined;
          if (ev !== undefined && this.k.reportsClose === 1) this.later(() => ev.onClose(""));
        },
      },
    };
  }

  /** Knobs of an ordinary board: jitter at its largest, everything working, no log lines. */
  static knobs(): Knobs {
    return { log: [], logging: 0, jitter: 1, writable: 1, reportsClose: 1, dns: 1, unknown: "", events: 0, heap: -1, fire: (_ev: string) => {} };
  }

  /** The items of a list separated by `sep` ("a,b" → ["a", "b"]). */
  static list(v: string, sep: string): string[] {
    const out: string[] = [];
    let from = 0;
    while (from <= v.length) {
      let at = find(v, sep, from);
      if (at < 0) at = v.length;
      out[out.length] = v.substring(from, at);
      from = at + 1;
    }
    return out;
  }

  rand(n: number): number {
    return this.k.jitter === 1 ? n - 1 : 0;
  }

  resolve(host: string, done: (this: void, a: string, e: string) => void): void {
    if (this.k.dns !== 1) return;
    const known = host !== this.k.unknown;
    this.later(() => done(known ? host : "", known ? "" : "not-found"));
  }

  later(f: () => void): void {
    this.queue[this.queue.length] = f;
  }

  flush(): void {
    for (let round = 0; round < 100 && this.queue.length > 0; round++) {
      const q = this.queue;
      this.queue = [];
      for (let k = 0; k < q.length; k++) q[k]();
    }
  }

  run(ms: number): void {
    this.flush();
    this.vc.advance(ms);
    this.flush();
  }

  accept(): void {
    const ev = this.ev;
    if (ev !== undefined) this.later(() => ev.onOpen());
    this.flush();
  }

  drop(reason: string): void {
    const ev = this.ev;
    this.ev = undefined;
    if (ev !== undefined) this.later(() => ev.onClose(reason));
    this.flush();
  }

  /** The socket's buffer drained. */
  drain(): void {
    const ev = this.ev;
    if (ev !== undefined) this.later(() => ev.onWritable());
    this.flush();
  }

  /** The broker sends these bytes (hex, as one chunk). */
  recv(hex: string): void {
    const chunk = argBytes("h:" + hex);
    const ev = this.ev;
    if (ev !== undefined) this.later(() => ev.onData(chunk));
    this.flush();
  }

  note(s: string): void {
    this.log[this.log.length] = s;
  }

  logLine(level: number, line: string): void {
    if (this.k.logging === 1 && level <= 2) this.note((level === 0 ? "error " : level === 1 ? "warn " : "info ") + line);
  }

  /** A client with the given options, its events noted (and passed to the script's hooks). */
  scripted(o: ClientOptions): Client | undefined {
    const k = this.k;
    const c = Client.create(this.platform, o, {
      onConnect: (sp: boolean) => {
        this.note("connect sp=" + (sp ? "1" : "0"));
        k.fire("connect");
      },
      onMessage: (topic: string, payload: Wire, qos: number, retain: boolean, dup: boolean) => {
        this.note("message " + topic + " " + outWire(payload) + " q" + qos + (retain ? " retain" : "") + (dup ? " dup" : ""));
        k.fire("message");
      },
      onReconnect: () => {
        if (k.events === 1) this.note("reconnect");
      },
      onOffline: (reason: string) => {
        this.note("offline " + reason);
        k.fire("offline");
      },
      onClose: (reason: string) => {
        if (k.events === 1) this.note("onclose " + reason);
        k.fire("close");
      },
      onError: (e) => this.note("error " + e.code),
      onEnd: () => this.note("end"),
    });
    if ("code" in c) {
      this.note("bad options " + c.code + ": " + c.message);
      return undefined;
    }
    return c;
  }

  /** A client with the probe's options; `stableMs` and `maxMs` as given (stableMs, reconnectMaxMs). */
  client(storageKeepalive: number, stableMs: number, maxMs: number): Client {
    const c = Client.create(this.platform, {
      brokers: [{ host: "h", port: 1883 }], clientId: "b1", keepalive: storageKeepalive, pingTimeoutMs: 2000,
      reconnectMinMs: 1000, reconnectMaxMs: maxMs, stableMs: stableMs,
    }, {
      onConnect: (sp: boolean) => this.note("connect sp=" + (sp ? "1" : "0")),
      onMessage: (topic: string, payload: Wire, qos: number) => this.note("message " + topic + " " + outWire(payload) + " q" + qos),
      onOffline: (reason: string) => this.note("offline " + reason),
      onError: (e) => this.note("error " + e.code),
    });
    return c as Client;
  }
}

/** QoS 1/2 out, a drop, resume with DUP and PUBREL, QoS 2 in with a duplicate, keepalive, dead link. */
function flow(): string {
  const b = new Board(probeStorage({ fail: 0 }), Board.knobs());
  // stableMs 0: this one is about resuming (the connection it drops counts as a working one)
  const c = b.client(10, 0, 4000);
  c.start();
  b.run(0);
  b.accept();
  b.recv("20020000");
  c.publish("t", "a", 1, false, () => b.note("done a"));
  c.publish("t", "b", 2, false, () => b.note("done b"));
  c.subscribe(["s/#"], [2], 1, undefined, (_e, g) => b.note("suback " + (g !== undefined ? g[0] : -1)));
  b.recv("50020002" + "9003000302");
  b.drop("reset");
  b.run(1000);
  b.accept();
  b.recv("20020100");
  b.recv("40020001" + "70020002");
  const pub = "3409" + "0003732f78" + "0005" + "6869"; // QoS 2, s/x, id 5, "hi"
  b.recv(pub + pub);
  b.recv("62020005");
  b.run(10000);
  b.run(2000);
  b.run(0);
  return b.log.join(";");
}

/** A reboot: what one client stored, the next one (same flash) resumes. */
function reboot(): string {
  const storage = probeStorage({ fail: 0 });
  const first = new Board(storage, Board.knobs());
  const c1 = first.client(0, 5000, 4000);
  c1.publish("t", "kept", 1, false, undefined);
  c1.publish("t", "two", 2, false, undefined);
  const b = new Board(storage, Board.knobs());
  const c2 = b.client(0, 5000, 4000);
  b.note("outbox " + c2.outbox.count);
  c2.start();
  b.run(0);
  b.accept();
  b.recv("20020100");
  c2.publish("t", "new", 1, false, undefined);
  return b.log.join(";");
}

/**
 * A broker that closes the connection on every QoS 2 PUBLISH (NATS Server 2.9): the backoff grows
 * across the short-lived connections; the refused message goes alone after the first and is held
 * after the third (publish-refused to its callback); so is the next QoS 2 message; the QoS 1
 * message behind them is delivered. The held records survive a reboot; one is sent again
 * (retryHeld), the other deleted (dropHeld).
 */
function refused(): string {
  const storage = probeStorage({ fail: 0 });
  const b = new Board(storage, Board.knobs());
  const c = b.client(0, 5000, 8000);
  const done = (name: string) => (e: { code: string; message: string } | undefined) => b.note("done " + name + " " + (e !== undefined ? e.code + ": " + e.message : "ok"));
  c.start();
  b.run(0);
  b.accept();
  b.recv("20020000");
  c.publish("n/q2", "x", 2, false, done("x"));
  c.publish("n/q2", "z", 2, false, done("z"));
  c.publish("n/q1", "y", 1, false, done("y"));
  // the broker closes the connection on the QoS 2 PUBLISH, 6 times, after each CONNACK
  for (let i = 0; i < 6; i++) {
    b.drop("closed");
    b.run(i === 0 ? 2000 : i === 1 ? 4000 : 8000);
    b.accept();
    b.recv("20020100");
  }
  b.recv("40020003");
  const held = listHeld(c);
  b.note("outbox " + c.outbox.count + " held " + held.length + ": " + held[0].topic + " q" + held[0].qos + " " + held[0].size + " bytes, " + held[1].topic);
  const again = new Board(storage, Board.knobs()).client(0, 5000, 8000);
  b.note("after a reboot: outbox " + again.outbox.count + " held " + listHeld(again).length);
  const e = retryHeld(c, 1, done("x again"));
  b.note("retry " + (e !== undefined ? e.code : "ok") + ", held " + listHeld(c).length + ", outbox " + c.outbox.count);
  b.recv("50020004");
  b.recv("70020004");
  const d = dropHeld(c, 2);
  const d2 = dropHeld(c, 2);
  b.note("drop " + (d !== undefined ? d.code : "ok") + ", held " + listHeld(c).length + ", again " + (d2 !== undefined ? d2.code : "ok"));
  return b.log.join(";");
}

register("session.scenario", (args) => {
  const n = argInt(args[0]);
  if (n === 1) return flow();
  if (n === 2) return reboot();
  if (n === 3) return refused();
  return "!no-scenario";
});

// The reconnect policy, a pure function: [next broker, round, delay] for how a connection ended.
register("policy.next", (a) => nextAttempt(argInt(a[0]), argInt(a[1]), argInt(a[2]), argInt(a[3]), argInt(a[4]), argInt(a[5])).join(","));

// ---------------------------------------------------------------------------------------------
// Scripted scenarios: a session test written as data (test/fixtures/session-scripts.ts), run the
// same way on every runtime. A script is commands separated by ";", words by " "; a list (filters,
// QoS values, brokers) is separated by ",". NAME "-" means no callback.
//   opt KEY VALUE    a client option before `new`: numbers (1.5 too); brokers as host:port,…
//                    ("-": none; a host without a port); clean 0/1; tls 1 (every broker);
//                    clientId, username, password, storePrefix as text ("-": empty, "*": the
//                    default); opt will TOPIC QOS RETAIN PAYLOAD
//   link 0|1         the board has a network link, down or up (a change after `new` is reported)
//   linkquiet 0|1    the link changes and nobody is told (an event lost)
//   new              the client, on the board's flash (again: a reboot, a new board, the same flash)
//   start | end      the client's start() / end()
//   run MS           the virtual clock moves MS ms (queued events run before and after)
//   accept           the transport's open succeeds
//   drop REASON      the transport closes (a refused or broken connection)
//   recv HEX         the broker sends these bytes, as one chunk
//   writable 0|1     the socket's buffer is full (0) or not; drain: the socket drained
//   noclose          a close is never reported by the transport from now on
//   dns 0            the resolver goes quiet; unknown HOST: a name it cannot resolve
//   jitter 0|1       randomInt(n) is 0, or n - 1 (the default)
//   heap N           the board reports N bytes of free heap (before `new`)
//   logs | events    note the client's log lines / onReconnect and onClose too
//   pubx NAME TOPIC QOS EXPIRY PAYLOAD   publish with a Message Expiry of EXPIRY s (5.0)
//   pub NAME TOPIC QOS PAYLOAD   publish (retain off; pubret: on; TOPIC "-": empty); NAME's
//                    callback is noted "done NAME ok|code"; a refusal "refused NAME code" (why: its message)
//   sub FILTERS QOSES [-|h|h-]   subscribe (FILTERS "-": none); its SUBACK noted "suback FILTERS
//                    N,…"; -: no callback; h: a handler, noted "handler FILTERS TOPIC"
//   unsub FILTERS [-]            unsubscribe ("unsuback" or "unsuback CODE")
//   hook EVENT CMD|CMD…          the next time the client reports EVENT (connect, message,
//                    offline, close, done), run these commands from inside its callback
//   fail full|failed|N           storage writes fail with that code (0: they work again)
//   forget KEY | put KEY HEX     a record of the flash lost / written
//   records [PREFIX] the flash's record keys, sorted (without PREFIX: all but the owner mqb…)
//   held | retry N NAME | drophold N   the held messages (listHeld; retryHeld, dropHeld: "ok" or "CODE: MESSAGE")
//   state | reason | error | stat NAME | outbox | ids | phases | index | received | hasid N | current N
//   q0 | subs        notes of the client's state (see note() below)
//   facade | f…      the MQTT.js-shaped client instead (see facade() below)
// The transcript: what the client wrote ("w HEX"), dials ("open host:port t=MS"), closes, and
// the events noted, joined by ";".

function decimal(s: string): number {
  return argInt("i:" + s);
}

/** A script's state: its flash, its board (a new one at each reboot), its client, the hooks. */
interface Run {
  fault: StorageFault;
  storage: Storage;
  k: Knobs;
  b: Board;
  c: Client | undefined;
  o: ClientOptions;
  linkUp: number;
  watch: { fn: ((this: void, up: boolean) => void) | undefined };
  /** Hooks waiting: event names, and the commands each runs ("|"-separated). */
  hookEvents: string[];
  hookLines: string[];
  /** The message of the last refusal (publish, subscribe, unsubscribe). */
  why: string;
  /** The MQTT.js-shaped client (`facade`), its listeners noting its events. */
  f: MqttClient | undefined;
  /** A listener `fextra` added (removed by `fremove`). */
  extra: ((this: void) => void) | undefined;
}

/** A done callback that notes "done NAME ok|code" (and fires the done hooks); none for "-". */
function doneOf(r: Run, name: string): ((this: void, e: { code: string } | undefined) => void) | undefined {
  if (name === "-") return undefined;
  return (e: { code: string } | undefined) => {
    r.b.note("done " + name + " " + (e !== undefined ? e.code : "ok"));
    fire(r, "done");
  };
}

/** Runs (once) the first hook waiting for `ev`. */
function fire(r: Run, ev: string): void {
  for (let i = 0; i < r.hookEvents.length; i++) {
    if (r.hookEvents[i] === ev) {
      const cmds = Board.list(r.hookLines[i], "|");
      r.hookEvents.splice(i, 1);
      r.hookLines.splice(i, 1);
      for (let j = 0; j < cmds.length; j++) {
        const e = exec(r, cmds[j]);
        if (e !== "") r.b.note(e);
      }
      return;
    }
  }
}

/** `opt KEY VALUE…` */
function option(r: Run, w: string[], line: string): void {
  const k = w[1];
  const v = w[2];
  const o = r.o;
  if (k === "brokers") {
    // host:port,host:port ("-": none; a host without ":" has no port)
    const list = v === "-" ? [] : Board.list(v, ",");
    o.brokers = [];
    for (let i = 0; i < list.length; i++) {
      const hp = Board.list(list[i], ":");
      o.brokers[i] = hp.length > 1 ? { host: hp[0], port: decimal(hp[1]) } : ({ host: hp[0] } as unknown as { host: string; port: number });
    }
  }
  else if (k === "clean") o.clean = v === "1";
  else if (k === "auth") {
    // auth <method> <first data> <answer 1>,<answer 2>,...: each step the broker asks for is
    // noted ("auth <method> <its data, hex>") and answered with the next ("-": data none, or no
    // answer left: onAuth gives none)
    o.authMethod = v;
    if (w[3] !== "-") o.authData = w[3];
    const answers = w.length > 4 ? Board.list(w[4], ",") : [];
    let step = 0;
    o.onAuth = (data: Wire | undefined, method: string) => {
      r.b.note("auth " + method + " " + (data !== undefined ? outWire(data) : "none"));
      step = step + 1;
      return step <= answers.length && answers[step - 1] !== "-" ? answers[step - 1] : undefined;
    };
  }
  else if (k === "tls") {
    for (let i = 0; i < o.brokers.length; i++) o.brokers[i].tls = v === "1";
  } else if (k === "will") {
    o.will = { topic: v, qos: decimal(w[3]), retain: w[4] === "1", payload: afterWord(afterWord(afterWord(afterWord(afterWord(line))))) };
  } else if (k === "clientId" || k === "username" || k === "password" || k === "storePrefix") {
    (o as unknown as { [k: string]: string | undefined })[k] = v === "-" ? "" : v === "*" ? undefined : v;
  } else {
    // a whole number, or one with a fraction ("1.5": an option's check must refuse it)
    const dot = find(v, ".", 0);
    let n = decimal(dot < 0 ? v : v.substring(0, dot));
    if (dot >= 0) {
      let scale = 1;
      for (let i = dot + 1; i < v.length; i++) scale = scale * 10;
      n = n + decimal(v.substring(dot + 1)) / scale; // dialect-allow float-math: a fraction on purpose, a few digits
    }
    (o as unknown as { [k: string]: number })[k] = n;
  }
}

/** The notes of the client's state. */
function note(r: Run, c: Client, cmd: string, w: string[]): string {
  if (cmd === "state") return "state " + c.state + " broker " + c.broker + " outbox " + c.outbox.count;
  if (cmd === "reason") return "reason " + c.lastReason;
  if (cmd === "error") return c.lastError !== undefined ? "lasterror " + c.lastError.code + ": " + c.lastError.message : "lasterror none";
  if (cmd === "stat") return "stat " + w[1] + " " + (c.stats as unknown as { [k: string]: number })[w[1]];
  if (cmd === "expired") return "expired " + (c.v5 !== undefined ? c.v5.expired : -1);
  if (cmd === "q0") return "q0 " + c.q0.count;
  if (cmd === "subs") return "subs " + c.subs.count;
  if (cmd === "ids" || cmd === "phases") {
    const parts: string[] = [];
    for (let i = 0; i < c.outbox.count; i++) parts[i] = "" + (cmd === "ids" ? c.outbox.idAt(i) : c.outbox.phaseAt(i));
    return cmd + " " + parts.join(",");
  }
  if (cmd === "outbox") {
    // each message: id/qos/phase/dup
    const o = c.outbox;
    const parts: string[] = [];
    for (let i = 0; i < o.count; i++) parts[parts.length] = o.idAt(i) + "/" + o.qosAt(i) + "/" + o.phaseAt(i) + "/" + o.dupAt(i);
    return "outbox " + o.count + ": " + parts.join(",");
  }
  if (cmd === "index") {
    // the outbox's index: count, the lengths of its arrays, its bytes, callbacks waiting
    const o = c.outbox;
    let dones = 0;
    for (let i = 0; i < o.dones.length; i++) if (o.dones[i] !== undefined) dones = dones + 1;
    return "index " + o.count + " " + o.seqs.length + " " + o.sizes.length + " " + o.metas.length + " " + o.bytes + " " + dones + " removed " + o.removed + " large " + o.tooLarge;
  }
  const rc = c.received;
  if (rc === undefined) return "no received ids (QoS 2 off)";
  if (cmd === "received") return "received " + rc.count + ": " + rc.ids.slice(0, rc.count).join(",");
  if (cmd === "hasid") return "hasid " + w[1] + " " + (rc.hasId(decimal(w[1])) ? "1" : "0");
  rc.current = decimal(w[1]);
  return "current " + rc.current;
}

/**
 * The MQTT.js-shaped client (firmware/session/mqtt.ts): `facade` makes it (connect(): it starts
 * at once) and notes its events ("f" and the event); the other commands call it with the
 * argument shapes an MQTT.js program uses. NAME's callback is noted "fdone NAME ok|code" ("-":
 * none; a subscribe's adds the granted QoS).
 *   fpub NAME TOPIC FORM PAYLOAD   FORM "-": (topic, message); "cb": (…, cb); "qQrR": (…, {qos, retain}, cb)
 *   fsub NAME SHAPE [FILTER [QOS]] map: ({"b/+": 1, "a/#": 2, c: {qos: 1}, d: {}}, {qos: 0}, cb);
 *       list: ([{topic: "x", qos: 2}, "y", {topic: "z"}], {qos: 1}); one: (FILTER, {qos: QOS}, cb);
 *       two: ([FILTER's comma-separated filters], cb); handler: (FILTER, {handler}); plain: (FILTER, cb)
 *   funsub NAME FILTER|[F,…] ("-": the empty filter)   fend NAME   freconnect   fstate
 *   fextra | fremove | femit EVENT   a second offline listener, removed; emit's answer
 *   fheld | fretry NAME N | fdrop NAME N | fcore   the held messages; the core's outbox count
 */
function facade(r: Run, cmd: string, w: string[], line: string): string {
  const b = r.b;
  if (cmd === "facade") {
    const c = connect(b.platform, r.o);
    if ("code" in c) {
      b.note("bad options " + c.code + ": " + c.message);
      return "";
    }
    r.f = c;
    c.on("connect", (ack: { sessionPresent: boolean }) => r.b.note("fconnect " + (ack.sessionPresent ? "1" : "0")));
    c.on("message", (t: string, p: Wire, info: { topic: string; qos: number; retain: boolean }) => {
      r.b.note("fmessage " + t + " " + outWire(p) + " q" + info.qos + " r" + (info.retain ? "1" : "0") + (info.topic === t ? " same" : " other"));
    });
    c.on("offline", () => r.b.note("foffline"));
    c.on("reconnect", () => r.b.note("freconnect"));
    c.on("close", (reason: string) => r.b.note("fclose " + reason));
    c.on("error", (e: { code: string }) => r.b.note("ferror " + e.code));
    c.on("end", () => r.b.note("fend"));
    return "";
  }
  const c = r.f;
  if (c === undefined) return "!no facade: facade first (" + cmd + ")";
  const name = w.length > 1 ? w[1] : "-";
  const done = name === "-" ? undefined : (e: { code: string } | undefined) => r.b.note("fdone " + name + " " + (e !== undefined ? e.code : "ok"));
  const subDone = name === "-" ? undefined : (e: { code: string } | undefined, g: number[] | undefined) => {
    r.b.note("fdone " + name + " " + (e !== undefined ? e.code : "ok") + (g !== undefined ? " " + g.join(",") : ""));
  };
  if (cmd === "fpub") {
    const form = w[3];
    const payload = afterWord(afterWord(afterWord(afterWord(line))));
    const topic = w[2] === "-" ? "" : w[2];
    if (form === "-") c.publish(topic, payload);
    else if (form === "cb") c.publish(topic, payload, done);
    else c.publish(topic, payload, { qos: decimal(form.substring(1, 2)), retain: form.substring(3, 4) === "1" }, done);
  } else if (cmd === "fsub") {
    const shape = w[2];
    const filter = w.length > 3 ? (w[3] === "-" ? "" : w[3]) : "";
    if (shape === "map") {
      const map: { [f: string]: number | { qos?: number } } = {};
      map["b/+"] = 1;
      map["a/#"] = 2;
      map["c"] = { qos: 1 };
      map["d"] = {};
      c.subscribe(map, { qos: 0 }, subDone);
    } else if (shape === "list") c.subscribe([{ topic: "x", qos: 2 }, "y", { topic: "z" }], { qos: 1 });
    else if (shape === "one") c.subscribe(filter, { qos: decimal(w[4]) }, subDone);
    else if (shape === "two") c.subscribe(Board.list(filter, ","), subDone);
    else if (shape === "handler") c.subscribe(filter, { handler: (t: string) => r.b.note("fhandler " + t) });
    else if (subDone !== undefined) c.subscribe(filter, subDone);
    else c.subscribe(filter);
  } else if (cmd === "funsub") {
    const arg = w[2];
    const filters = arg.substring(0, 1) === "[" ? Board.list(arg.substring(1, arg.length - 1), ",") : undefined;
    const one = arg === "-" ? "" : arg;
    if (filters !== undefined) c.unsubscribe(filters, done);
    else c.unsubscribe(one, done);
  } else if (cmd === "fend") c.end(name === "-" ? undefined : () => r.b.note("fended " + name));
  else if (cmd === "freconnect") c.reconnect();
  else if (cmd === "fstate") b.note("fstate connected " + (c.connected ? "1" : "0") + " reconnecting " + (c.reconnecting ? "1" : "0"));
  else if (cmd === "fextra") {
    const extra = () => r.b.note("extra offline");
    r.extra = extra;
    c.on("offline", extra);
  } else if (cmd === "fremove") {
    c.removeListener("offline", r.extra);
    c.removeListener("nothing", r.extra);
  } else if (cmd === "femit") b.note("femit " + w[1] + " " + (c.emit(w[1], undefined, undefined, undefined) ? "true" : "false"));
  else if (cmd === "fheld") {
    const held = c.held();
    const parts: string[] = [];
    for (let i = 0; i < held.length; i++) parts[i] = held[i].n + " " + held[i].topic + " q" + held[i].qos + " " + outWire(held[i].payload);
    b.note("fheld " + held.length + ": " + parts.join(", "));
  } else if (cmd === "fretry") c.retryHeld(decimal(w[2]), w[1] === "-" ? undefined : (e: { code: string } | undefined) => {
    r.b.note("fdone " + w[1] + " " + (e !== undefined ? e.code : "ok"));
  });
  else if (cmd === "fdrop") c.dropHeld(decimal(w[2]), done);
  else if (cmd === "fcore") b.note("fcore outbox " + c.core.outbox.count);
  else return "!unknown command: " + cmd;
  return "";
}

/** One command of a script: "" or what went wrong. */
function exec(r: Run, line: string): string {
  const w = words(line);
  const cmd = w[0];
  const b = r.b;
  if (cmd === "opt") option(r, w, line);
  else if (cmd === "link" || cmd === "linkquiet") {
    const was = r.linkUp;
    r.linkUp = decimal(w[1]);
    const f = r.watch.fn;
    if (cmd === "link" && was >= 0 && was !== r.linkUp && f !== undefined) {
      const up = r.linkUp === 1;
      b.later(() => f(up));
      b.flush();
    }
  } else if (cmd === "logs") r.k.logging = 1;
  else if (cmd === "events") r.k.events = 1;
  else if (cmd === "jitter") r.k.jitter = decimal(w[1]);
  else if (cmd === "writable") r.k.writable = decimal(w[1]);
  else if (cmd === "noclose") r.k.reportsClose = 0;
  else if (cmd === "dns") r.k.dns = decimal(w[1]);
  else if (cmd === "unknown") r.k.unknown = w[1];
  else if (cmd === "heap") r.k.heap = decimal(w[1]);
  else if (cmd === "fail") r.fault.fail = w[1] === "full" ? STORAGE_FULL : w[1] === "failed" ? STORAGE_FAILED : decimal(w[1]);
  else if (cmd === "forget") r.storage.dropRecord(w[1]);
  else if (cmd === "put") {
    const hex = w.length > 2 ? w[2] : "";
    r.storage.putRecord(w[1], port.bytes.wireFrom(argBytes("h:" + hex), 0, port.ints.idiv(hex.length, 2)));
  } else if (cmd === "records") {
    // sorted (an insertion sort: a few keys), so the listing is the same on every runtime
    const all = r.storage.listRecords(w.length > 1 ? w[1] : "");
    const keys: string[] = [];
    for (let i = 0; i < all.length; i++) {
      if (w.length > 1 || all[i].substring(0, 3) !== "mqb") {
        let at = keys.length;
        while (at > 0 && keys[at - 1] > all[i]) {
          keys[at] = keys[at - 1];
          at = at - 1;
        }
        keys[at] = all[i];
      }
    }
    b.note("records " + keys.join(","));
  } else if (cmd === "hook") {
    r.hookEvents[r.hookEvents.length] = w[1];
    r.hookLines[r.hookLines.length] = afterWord(afterWord(line));
  } else if (cmd.substring(0, 1) === "f" && cmd !== "fail" && cmd !== "forget") return facade(r, cmd, w, line);
  else if (cmd === "new") {
    if (r.c !== undefined) r.b = new Board(r.storage, r.k);
    const k = r.k;
    if (k.heap >= 0) r.b.platform.freeHeap = (_floor?: number) => k.heap;
    if (r.linkUp >= 0) {
      const watch = r.watch;
      const self = r;
      r.b.platform.link = {
        isUp: () => self.linkUp === 1,
        watchLink: (f) => {
          watch.fn = f;
        },
      };
    }
    r.c = r.b.scripted(r.o);
  } else if (cmd === "run") b.run(decimal(w[1]));
  else if (cmd === "accept") b.accept();
  else if (cmd === "drop") b.drop(w[1]);
  else if (cmd === "drain") b.drain();
  else if (cmd === "recv") b.recv(w[1]);
  else {
    const c = r.c;
    if (c === undefined) return "!no client: new first (" + cmd + ")";
    if (cmd === "start") c.start();
    else if (cmd === "end") c.end(w.length > 1 && w[1] === "will");
    else if (cmd === "pub" || cmd === "pubret" || cmd === "pubx") {
      // the payload: the rest of the line after the fourth word (pubx: the fifth, after the expiry)
      const x = cmd === "pubx";
      const rest = afterWord(afterWord(afterWord(afterWord(line))));
      const e = c.publish(w[2] === "-" ? "" : w[2], x ? afterWord(rest) : rest, decimal(w[3]), cmd === "pubret", doneOf(r, w[1]),
        x ? { messageExpiry: decimal(w[4]) } : undefined);
      if (e !== undefined) {
        b.note("refused " + w[1] + " " + e.code);
        r.why = e.message;
      }
    } else if (cmd === "sub") {
      const filters = w[1] === "-" ? [] : Board.list(w[1], ",");
      const qs = w[1] === "-" ? [] : Board.list(w[2], ",");
      const qos: number[] = [];
      for (let i = 0; i < qs.length; i++) qos[i] = decimal(qs[i]);
      const how = w.length > 3 ? w[3] : "";
      const name = w[1];
      const handler = how === "h" || how === "h-" ? (topic: string) => r.b.note("handler " + name + " " + topic) : undefined;
      const done = how === "-" || how === "h-" ? undefined : (e: { code: string } | undefined, g: number[] | undefined) => {
        r.b.note("suback " + name + " " + (e !== undefined ? e.code : g !== undefined ? g.join(",") : "none"));
      };
      const e = c.subscribe(filters, qos, filters.length, handler, done);
      if (e !== undefined) {
        b.note("refused sub " + e.code);
        r.why = e.message;
      }
    } else if (cmd === "unsub") {
      const filters = Board.list(w[1], ",");
      const done = w.length > 2 && w[2] === "-" ? undefined : (e: { code: string } | undefined) => {
        r.b.note("unsuback" + (e !== undefined ? " " + e.code : ""));
      };
      const e = c.unsubscribe(filters, filters.length, done);
      if (e !== undefined) {
        b.note("refused unsub " + e.code);
        r.why = e.message;
      }
    } else if (cmd === "why") b.note("why " + r.why);
    else if (cmd === "held") {
      const held = listHeld(c);
      const parts: string[] = [];
      for (let i = 0; i < held.length; i++) {
        const m = held[i];
        parts[parts.length] = m.n + " " + m.topic + " q" + m.qos + (m.retain ? " retain" : "") + " " + outWire(m.payload) + " " + m.size;
      }
      b.note("held " + held.length + ": " + parts.join(", "));
    } else if (cmd === "retry") {
      const e = retryHeld(c, decimal(w[1]), doneOf(r, w[2]));
      b.note("retry " + w[1] + " " + (e !== undefined ? e.code + ": " + e.message : "ok"));
    } else if (cmd === "drophold") {
      const e = dropHeld(c, decimal(w[1]));
      b.note("drophold " + w[1] + " " + (e !== undefined ? e.code + ": " + e.message : "ok"));
    } else if (cmd === "state" || cmd === "reason" || cmd === "error" || cmd === "stat" || cmd === "expired" || cmd === "q0" || cmd === "subs" || cmd === "outbox" ||
      cmd === "ids" || cmd === "phases" || cmd === "index" || cmd === "received" || cmd === "hasid" || cmd === "current") b.note(note(r, c, cmd, w));
    else return "!unknown command: " + cmd;
  }
  return "";
}

function script(text: string): string {
  const fault: StorageFault = { fail: 0 };
  const storage = probeStorage(fault);
  const k = Board.knobs();
  const r: Run = {
    fault: fault, storage: storage, k: k, b: new Board(storage, k), c: undefined, o: { brokers: [{ host: "h", port: 1883 }], clientId: "b1" },
    linkUp: -1, watch: { fn: undefined }, hookEvents: [], hookLines: [], why: "", f: undefined, extra: undefined,
  };
  k.fire = (ev: string) => fire(r, ev);
  const lines = Board.list(text, ";");
  for (let i = 0; i < lines.length; i++) {
    const e = exec(r, lines[i]);
    if (e !== "") return e;
  }
  return r.b.log.join(";");
}

register("session.script", (args) => script(argText(args[0])));
