import type { Wire } from "../../../firmware/port/bytes";
import type { Storage } from "../../../firmware/port/storage";
import type { TransportEvents } from "../../../firmware/port/transport";
import { Scheduler } from "../../../firmware/sched/scheduler";
import { elapsed } from "../../../firmware/sched/time";
import { Client } from "../../../firmware/session/client";
import { dropHeld, listHeld, retryHeld } from "../../../firmware/session/held";
import { nextAttempt } from "../../../firmware/session/policy";
import type { Platform } from "../../../firmware/port/platform";
import { argBytes, argInt, argText, outWire, register } from "../probe";
import { find } from "../../../firmware/port/text";
import { afterWord, words } from "../../../firmware/console/line";
import type { ClientOptions } from "../../../firmware/session/options";
import { VirtualClock } from "../virtual-clock";

// The session on every runtime: a scripted board (transport, resolver, RAM storage) on a
// virtual clock 3 s before its wrap. Each scenario returns its transcript: what the client
// wrote (hex), the events it reported, and when it dialled.

const START = 2147480647;

/** RAM records (the board's flash), in the firmware dialect: Wires are immutable, kept as given. */
function probeStorage(): Storage {
  const recs: { [key: string]: Wire | undefined } = {};
  return {
    putRecord: (key: string, data: Wire) => {
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

class Board {
  readonly vc = new VirtualClock(START);
  readonly log: string[] = [];
  /** 1: the client's log lines (error, warn, info; not debug) go into the transcript too ("warn mqtt: …"). */
  logging = 0;
  readonly platform: Platform;
  private queue: (() => void)[] = [];
  private ev: TransportEvents | undefined = undefined;

  constructor(storage: Storage) {
    const sched = new Scheduler(this.vc.clock, this.vc.timer, 1000, undefined);
    this.platform = {
      clock: this.vc.clock,
      sched: sched,
      storage: storage,
      log: { writeLog: (level: number, line: string) => this.logLine(level, line) },
      randomInt: (n: number) => n - 1,
      chipId: "probe",
      resolver: {
        lookUp: (host: string, done: (this: void, a: string, e: string) => void) => {
          this.later(() => done(host, ""));
        },
      },
      transport: {
        openStream: (host: string, p: number, _tls: boolean, ev: TransportEvents) => {
          this.log[this.log.length] = "open " + host + ":" + p + " t=" + elapsed(START, this.vc.t);
          this.ev = ev;
        },
        sendWire: (w: Wire) => {
          this.log[this.log.length] = "w " + outWire(w);
          return true;
        },
        hangUp: () => {
          this.log[this.log.length] = "close";
          const ev = this.ev;
          this.ev = undefined;
          if (ev !== undefined) this.later(() => ev.onClose(""));
        },
      },
    };
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
    if (this.logging === 1 && level <= 2) this.note((level === 0 ? "error " : level === 1 ? "warn " : "info ") + line);
  }

  /** A client with the given options, its events noted. */
  scripted(o: ClientOptions): Client | undefined {
    const c = Client.create(this.platform, o, {
      onConnect: (sp: boolean) => this.note("connect sp=" + (sp ? "1" : "0")),
      onMessage: (topic: string, payload: Wire, qos: number) => this.note("message " + topic + " " + outWire(payload) + " q" + qos),
      onOffline: (reason: string) => this.note("offline " + reason),
      onError: (e) => this.note("error " + e.code),
      onEnd: () => this.note("end"),
    });
    if ("code" in c) {
      this.note("bad options " + c.code);
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

function transcript(b: Board): string {
  return b.log.join(";");
}

/** QoS 1/2 out, a drop, resume with DUP and PUBREL, QoS 2 in with a duplicate, keepalive, dead link. */
function flow(): string {
  const b = new Board(probeStorage());
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
  return transcript(b);
}

/** A reboot: what one client stored, the next one (same flash) resumes. */
function reboot(): string {
  const storage = probeStorage();
  const first = new Board(storage);
  const c1 = first.client(0, 5000, 4000);
  c1.publish("t", "kept", 1, false, undefined);
  c1.publish("t", "two", 2, false, undefined);
  const b = new Board(storage);
  const c2 = b.client(0, 5000, 4000);
  b.note("outbox " + c2.outbox.count);
  c2.start();
  b.run(0);
  b.accept();
  b.recv("20020100");
  c2.publish("t", "new", 1, false, undefined);
  return transcript(b);
}

/**
 * A broker that closes the connection on every QoS 2 PUBLISH (NATS Server 2.9): the backoff grows
 * across the short-lived connections; the refused message goes alone after the first and is held
 * after the third (publish-refused to its callback); so is the next QoS 2 message; the QoS 1
 * message behind them is delivered. The held records survive a reboot; one is sent again
 * (retryHeld), the other deleted (dropHeld).
 */
function refused(): string {
  const storage = probeStorage();
  const b = new Board(storage);
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
  const again = new Board(storage).client(0, 5000, 8000);
  b.note("after a reboot: outbox " + again.outbox.count + " held " + listHeld(again).length);
  const e = retryHeld(c, 1, done("x again"));
  b.note("retry " + (e !== undefined ? e.code : "ok") + ", held " + listHeld(c).length + ", outbox " + c.outbox.count);
  b.recv("50020004");
  b.recv("70020004");
  const d = dropHeld(c, 2);
  const d2 = dropHeld(c, 2);
  b.note("drop " + (d !== undefined ? d.code : "ok") + ", held " + listHeld(c).length + ", again " + (d2 !== undefined ? d2.code : "ok"));
  return transcript(b);
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
// same way on every runtime. A script is commands separated by ";", words by " ":
//   opt KEY VALUE    a client option before `new` (numbers; brokers as host:port,host:port; clean 0/1)
//   link 0|1         the board has a network link, down or up (a change after `new` is reported)
//   new              the client, on the board's flash (again: a reboot, the same flash)
//   start | end      the client's start() / end()
//   run MS           the virtual clock moves MS ms (queued events run before and after)
//   accept           the transport's open succeeds
//   drop REASON      the transport closes (a refused or broken connection)
//   recv HEX         the broker sends these bytes, as one chunk
//   pub NAME TOPIC QOS PAYLOAD   publish (retain off); NAME's callback is noted "done NAME ok|code"
//   sub FILTER QOS   subscribe (its SUBACK noted "suback N,…")
//   unsub FILTER     unsubscribe
//   state            notes "state S broker B outbox N"
// The transcript: what the client wrote ("w HEX"), dials ("open host:port t=MS"), closes, and
// the events noted, joined by ";".

function decimal(s: string): number {
  return argInt("i:" + s);
}

/** `opt brokers a:1883,b:1884` */
function brokersOf(v: string): { host: string; port: number }[] {
  const out: { host: string; port: number }[] = [];
  let from = 0;
  while (from < v.length) {
    let comma = find(v, ",", from);
    if (comma < 0) comma = v.length;
    const colon = find(v, ":", from);
    out[out.length] = { host: v.substring(from, colon), port: decimal(v.substring(colon + 1, comma)) };
    from = comma + 1;
  }
  return out;
}

function script(text: string): string {
  const storage = probeStorage();
  let b = new Board(storage);
  const o: ClientOptions = { brokers: [{ host: "h", port: 1883 }], clientId: "b1" };
  let linkUp = -1;
  const watch: { fn: ((this: void, up: boolean) => void) | undefined } = { fn: undefined };
  let c: Client | undefined = undefined;
  const done = (name: string) => (e: { code: string } | undefined) => b.note("done " + name + " " + (e !== undefined ? e.code : "ok"));
  let from = 0;
  while (from < text.length) {
    let semi = find(text, ";", from);
    if (semi < 0) semi = text.length;
    const line = text.substring(from, semi);
    from = semi + 1;
    const w = words(line);
    const cmd = w[0];
    if (cmd === "opt") {
      const k = w[1];
      const v = w[2];
      if (k === "brokers") o.brokers = brokersOf(v);
      else if (k === "clean") o.clean = v === "1";
      else (o as unknown as { [k: string]: number })[k] = decimal(v);
    } else if (cmd === "link") {
      const was = linkUp;
      linkUp = decimal(w[1]);
      const f = watch.fn;
      if (was >= 0 && was !== linkUp && f !== undefined) {
        const up = linkUp === 1;
        b.later(() => f(up));
        b.flush();
      }
    } else if (cmd === "logs") {
      b.logging = 1;
    } else if (cmd === "new") {
      if (c !== undefined) {
        const logging = b.logging;
        b = new Board(storage);
        b.logging = logging;
      }
      if (linkUp >= 0) {
        b.platform.link = {
          isUp: () => linkUp === 1,
          watchLink: (f) => {
            watch.fn = f;
          },
        };
      }
      c = b.scripted(o);
    } else if (c === undefined) {
      return "!no client: new first (" + cmd + ")";
    } else if (cmd === "start") c.start();
    else if (cmd === "end") c.end();
    else if (cmd === "run") b.run(decimal(w[1]));
    else if (cmd === "accept") b.accept();
    else if (cmd === "drop") b.drop(w[1]);
    else if (cmd === "recv") b.recv(w[1]);
    else if (cmd === "pub") {
      // the payload: the rest of the line after the fourth word
      const e = c.publish(w[2], afterWord(afterWord(afterWord(afterWord(line)))), decimal(w[3]), false, done(w[1]));
      if (e !== undefined) b.note("refused " + w[1] + " " + e.code);
    } else if (cmd === "sub") {
      const e = c.subscribe([w[1]], [decimal(w[2])], 1, undefined, (_e, g) => b.note("suback " + (g !== undefined ? g.join(",") : "none")));
      if (e !== undefined) b.note("refused sub " + e.code);
    } else if (cmd === "unsub") {
      const e = c.unsubscribe([w[1]], 1, () => b.note("unsuback"));
      if (e !== undefined) b.note("refused unsub " + e.code);
    } else if (cmd === "state") b.note("state " + c.state + " broker " + c.broker + " outbox " + c.outbox.count);
    else return "!unknown command: " + cmd;
  }
  return transcript(b);
}

register("session.script", (args) => script(argText(args[0])));
