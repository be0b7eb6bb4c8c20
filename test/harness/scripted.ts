/**
 * A scripted board for session unit tests: a transport whose peer is the test (every packet the
 * client writes is decoded and recorded; the test answers with broker packets), a resolver, RAM
 * storage that can be told to fail, deterministic jitter, and the virtual clock. Events reach
 * the client only from `flush()`/`run()`, never from inside open/write/close (the contract).
 */
import "../../firmware/targets/node/index";
import type { Bytes, Wire } from "../../firmware/port/bytes";
import { STORAGE_FAILED, STORAGE_FULL, type Storage } from "../../firmware/port/storage";
import type { TransportEvents } from "../../firmware/port/transport";
import { Scheduler } from "../../firmware/sched/scheduler";
import { CLOCK_MAX, elapsed } from "../../firmware/sched/time";
import { Client, type ClientEvents } from "../../firmware/session/client";
import type { ClientOptions } from "../../firmware/session/options";
import type { Platform } from "../../firmware/port/platform";
import { encodeServerPacket, parseClientPacket, type ServerPacket } from "../../host-sim/mqtt/broker-codec";
import { memoryStorage } from "../../firmware/targets/node/storage";
import { VirtualClock } from "../probe/virtual-clock";

/** One line per packet the client wrote, e.g. "publish q1 d0 r0 id=3 a/b hi", "pubrel 3". */
export function describeClientPacket(b: Buffer): string {
  const r = parseClientPacket(b);
  if (r === null) return `incomplete ${b.toString("hex")}`;
  if ("error" in r) return `error ${r.error}`;
  if (r.length !== b.length) return `split ${b.toString("hex")}`;
  const p = r.packet;
  switch (p.cmd) {
    case "connect":
      if (p.protocolLevel !== 4) return `connect level=${p.protocolLevel}`;
      return `connect ${p.clientId} clean=${p.clean ? 1 : 0} ka=${p.keepalive}${p.username !== undefined ? " user=" + p.username : ""}${p.will ? " will=" + p.will.topic : ""}`;
    case "publish":
      return `publish q${p.qos} d${p.dup ? 1 : 0} r${p.retain ? 1 : 0}${p.qos > 0 ? " id=" + p.messageId : ""} ${p.topic} ${p.payload.toString()}`;
    case "subscribe":
      return `subscribe id=${p.messageId} ${p.subscriptions.map((s) => `${s.topic}:${s.qos}`).join(",")}`;
    case "unsubscribe":
      return `unsubscribe id=${p.messageId} ${p.unsubscriptions.join(",")}`;
    case "puback": case "pubrec": case "pubrel": case "pubcomp":
      return `${p.cmd} ${p.messageId}`;
    default:
      return p.cmd;
  }
}

/** RAM storage whose writes can be made to fail, and whose reads can lose a record. */
export function faultyStorage(): Storage & { failWrites: number; keys(): string[]; used(): number } {
  const inner = memoryStorage();
  const s = {
    failWrites: 0,
    keys: () => inner.keys(),
    used: () => inner.used(),
    putRecord: (k: string, d: Wire) => (s.failWrites !== 0 ? s.failWrites : inner.putRecord(k, d)),
    getRecord: (k: string) => inner.getRecord(k),
    dropRecord: (k: string) => inner.dropRecord(k),
    listRecords: (prefix: string) => inner.listRecords(prefix),
  };
  return s;
}
export { STORAGE_FAILED, STORAGE_FULL };

/**
 * The default stableMs: a connection that lived this long after its CONNACK was a working one
 * (its end starts the backoff over); one that ends sooner with nothing acknowledged is
 * short-lived (a failed attempt, and evidence against the message last sent).
 */
export const STABLE_MS = 5000;

export class ScriptedBoard {
  readonly vc: VirtualClock;
  readonly sched: Scheduler;
  readonly storage = faultyStorage();
  /** What the client wrote, decoded, in order ("open host:port tls", "close" included). */
  readonly wire: string[] = [];
  /** Every event the client reported, in order. */
  readonly events: string[] = [];
  /** Jitter source: returns `jitter(n)`; default the largest value. */
  jitter: (n: number) => number = (n) => n - 1;
  /** When false, write() returns false (the socket's buffer is full). */
  writable = true;
  /** When false, close() is never followed by onClose (a broken adapter). */
  reportsClose = true;
  /** When true the resolver never answers (a DNS server that went quiet). */
  resolverSilent = false;
  /** Host names the resolver knows (address = name), others fail "not-found". */
  readonly unknownHosts = new Set<string>();
  readonly overruns: string[] = [];
  private queue: Array<() => void> = [];
  private ev: TransportEvents | null = null;
  platform: Platform;

  constructor(clockStart = CLOCK_MAX - 4000) {
    this.vc = new VirtualClock(clockStart);
    this.sched = new Scheduler(this.vc.clock, this.vc.timer, 50, (task, ms) => this.overruns.push(`${task} ${ms}`));
    this.platform = {
      clock: this.vc.clock,
      sched: this.sched,
      storage: this.storage,
      log: { writeLog: () => {} },
      randomInt: (n) => this.jitter(n),
      chipId: "c0ffee",
      resolver: {
        lookUp: (host, done) => {
          if (this.resolverSilent) return;
          this.queue.push(() => done(this.unknownHosts.has(host) ? "" : host, this.unknownHosts.has(host) ? "not-found" : ""));
        },
      },
      transport: {
        openStream: (host, port, tls, ev) => {
          this.wire.push(`open ${host}:${port}${tls ? " tls" : ""}`);
          this.ev = ev;
        },
        sendWire: (data: Wire) => {
          this.wire.push(describeClientPacket(data as unknown as Buffer));
          return this.writable;
        },
        hangUp: () => {
          this.wire.push("close");
          const ev = this.ev;
          this.ev = null;
          if (ev !== null && this.reportsClose) this.queue.push(() => ev.onClose(""));
        },
      },
    };
  }

  /** A Wi-Fi link the test switches (linkUp / linkDown); absent until `withLink` is called. */
  private linkState = true;
  private linkWatcher: ((up: boolean) => void) | undefined;
  withLink(up: boolean): void {
    this.linkState = up;
    this.platform.link = { isUp: () => this.linkState, watchLink: (fn) => (this.linkWatcher = fn) };
  }
  /** The link changes, and nobody is told (an event lost to another callback). */
  setLinkSilently(up: boolean): void {
    this.linkState = up;
  }
  /** The link changes (the watcher hears it from the event loop, as from a firmware event). */
  setLink(up: boolean): void {
    this.linkState = up;
    const w = this.linkWatcher;
    if (w !== undefined) this.queue.push(() => w(up));
    this.flush();
  }

  /** A client on this board, with test-friendly defaults, recording its events. */
  client(o: Partial<ClientOptions> = {}, extra: ClientEvents = {}): Client {
    const c = Client.create(this.platform, { brokers: [{ host: "a", port: 1883 }], reconnectMinMs: 1000, reconnectMaxMs: 8000, keepalive: 0, ...o }, {
      onConnect: (sp) => this.events.push(`connect sp=${sp ? 1 : 0}`),
      onMessage: (t, p, q, r, d) => this.events.push(`message ${t} ${(p as unknown as Buffer).toString()} q${q}${r ? " retain" : ""}${d ? " dup" : ""}`),
      onReconnect: () => this.events.push("reconnect"),
      onOffline: (r) => this.events.push(`offline ${r}`),
      onClose: (r) => this.events.push(`close ${r}`),
      onError: (e) => this.events.push(`error ${e.code}`),
      onEnd: () => this.events.push("end"),
      ...extra,
    });
    if ("code" in c) throw new Error(`${c.code}: ${c.message}`);
    return c;
  }

  /** Storage keys of messages and ids (the session-owner marker `mqb<n>` left out). */
  records(): string[] {
    return this.storage.keys().filter((k) => !k.startsWith("mqb"));
  }

  /** Delivers queued events (they may queue more), bounded. */
  flush(): void {
    for (let i = 0; i < 1000 && this.queue.length > 0; i++) {
      const q = this.queue;
      this.queue = [];
      for (const f of q) f();
    }
  }

  /** Moves virtual time forward by `ms`, delivering events before and after. */
  run(ms = 0): void {
    this.flush();
    this.vc.advance(ms);
    this.flush();
  }

  /** The transport connects. */
  accept(): void {
    const ev = this.ev;
    if (ev !== null) this.queue.push(() => ev.onOpen());
    this.flush();
  }

  /** The connection fails or drops with `reason` (the transport's code). */
  drop(reason: string): void {
    const ev = this.ev;
    this.ev = null;
    if (ev !== null) this.queue.push(() => ev.onClose(reason));
    this.flush();
  }

  /** The broker sends packets (one chunk each, or all in one chunk). */
  send(...packets: ServerPacket[]): void {
    this.raw(Buffer.concat(packets.map(encodeServerPacket)));
  }

  raw(b: Buffer): void {
    const ev = this.ev;
    if (ev !== null) this.queue.push(() => ev.onData(b as unknown as Bytes));
    this.flush();
  }

  drain(): void {
    const ev = this.ev;
    if (ev !== null) this.queue.push(() => ev.onWritable());
    this.flush();
  }

  /** Opens, accepts and answers CONNACK: the usual start. Returns the wire lines since the last take(). */
  connect(sessionPresent = false): string[] {
    this.run();
    this.accept();
    this.send({ cmd: "connack", sessionPresent, returnCode: 0 });
    return this.take();
  }

  /** Wire lines written since the last call. */
  private seen = 0;
  take(): string[] {
    const out = this.wire.slice(this.seen);
    this.seen = this.wire.length;
    return out;
  }

  takeEvents(): string[] {
    const out = this.events.splice(0, this.events.length);
    return out;
  }
}

/**
 * A scripted broker on a ScriptedBoard: it answers what the client wrote, packet by packet, as a
 * broker would (CONNACK, with session present after the first connection; SUBACK, PUBACK,
 * PUBREC, PUBCOMP, PINGRESP), except that a packet `refuse` picks makes it close the connection
 * at once, and whatever the client wrote after it is lost; one `ignore` picks goes unanswered.
 * A fault a real broker shows only for its own reasons (NATS Server 2.9 closes on every QoS 2
 * PUBLISH), here on demand.
 */
export class FakeBroker {
  /** When each connection was dialled, in ms after the broker was made (virtual time). */
  readonly dials: number[] = [];
  /** Connections this broker closed. */
  closes = 0;
  private seen = 0;
  private readonly t0: number;
  private dead = false;

  constructor(readonly b: ScriptedBoard, readonly refuse: (line: string) => boolean, readonly ignore: (line: string) => boolean = () => false) {
    this.t0 = b.vc.t;
  }

  /** Answers everything the client has written so far (and what it writes meanwhile). */
  serve(): void {
    const b = this.b;
    for (let guard = 0; guard < 1000 && this.seen < b.wire.length; guard++) {
      const line = b.wire[this.seen++];
      const w = line.split(" ");
      if (line.startsWith("open")) {
        this.dead = false;
        this.dials.push(elapsed(this.t0, b.vc.t));
        b.accept();
      } else if (this.dead || line === "close" || line === "disconnect" || this.ignore(line)) {
        // lost with the connection, or the client's own close
      } else if (this.refuse(line)) {
        this.dead = true;
        this.closes++;
        b.drop("closed");
      } else if (w[0] === "connect" && w[1].startsWith("level=")) {
        // a 3.1.1 broker: another protocol level gets CONNACK 1 (unacceptable protocol version) and the close (§3.1.2.2)
        this.dead = true;
        this.closes++;
        b.send({ cmd: "connack", sessionPresent: false, returnCode: 1 });
        b.drop("closed");
      } else if (w[0] === "connect") {
        b.send({ cmd: "connack", sessionPresent: this.dials.length > 1, returnCode: 0 });
      } else if (w[0] === "subscribe") {
        b.send({ cmd: "suback", messageId: Number(w[1].slice(3)), granted: w[2].split(",").map((f) => Number(f.slice(f.lastIndexOf(":") + 1))) });
      } else if (w[0] === "publish" && w[1] !== "q0") {
        b.send({ cmd: w[1] === "q1" ? "puback" : "pubrec", messageId: Number(w[4].slice(3)) });
      } else if (w[0] === "pubrel") {
        b.send({ cmd: "pubcomp", messageId: Number(w[1]) });
      } else if (w[0] === "pingreq") {
        b.send({ cmd: "pingresp" });
      }
    }
  }

  /** Moves virtual time on by `ms` in steps of `step`, answering as it goes. */
  run(ms: number, step = 10): void {
    this.b.run();
    this.serve();
    for (let t = 0; t < ms; t += step) {
      this.b.run(step);
      this.serve();
    }
  }

  /** Virtual time since the broker was made (ms). */
  now(): number {
    return elapsed(this.t0, this.b.vc.t);
  }

  /** The gaps between dials (ms). */
  gaps(): number[] {
    return this.dials.slice(1).map((d, i) => d - this.dials[i]);
  }
}
