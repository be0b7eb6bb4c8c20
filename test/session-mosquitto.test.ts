import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as readline from "node:readline";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PacketType, Status } from "../firmware/codec/constants";
import { Decoder } from "../firmware/codec/decoder";
import type { Bytes, Wire } from "../firmware/port/bytes";
import type { PetrelError } from "../firmware/port/log";
import type { Transport } from "../firmware/port/transport";
import type { MqttClient, SubscribeOptions, PublishOptions } from "../firmware/session/mqtt";
import { startFaultProxy, type FaultProxy } from "../host-sim/fault-proxy";
import { startBroker, type Broker, type BrokerOptions } from "../host-sim/mosquitto";
import { connect, type NodeClientOptions } from "../host-sim/node/client";
import { nodeTransport } from "../firmware/targets/node/transport";
import { makeCerts, type Certs } from "../host-sim/tls-certs";
import { until } from "./harness/wait";

// The session (firmware/session) end to end against a real mosquitto 2.0.11: each broker has its
// own config, an ephemeral loopback port and a persistence directory (startBroker saves after every
// change: autosave_on_changes true, autosave_interval 1). Every wait is bounded; nothing asserts on
// elapsed time. Counts a run observed (duplicates, broker-side losses) are printed with [observed].

const ROOT = path.resolve(__dirname, "..");
const PUBLISHER = path.join(ROOT, "dist/node/host-sim/node/publisher-process.js");
const HOST = "127.0.0.1";

// ---------------------------------------------------------------------------------------------
// Helpers

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));


function bounded<T>(what: string, p: Promise<T>, ms = 5000): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error(`gave up after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]);
}

const note = (line: string) => console.log(`[observed] ${line}`);

/** Undone in reverse order after each test: clients end before their brokers close. */
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

const tmpDirs: string[] = [];
function tmpDir(name: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `petrel-${name}-`));
  tmpDirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A broker closed after the test. `current` follows restarts (restart() returns a new handle). */
interface BrokerBox {
  current: Broker;
}
async function broker(opts: BrokerOptions = {}): Promise<BrokerBox> {
  const box = { current: await startBroker(opts) };
  cleanups.push(() => box.current.close());
  return box;
}

async function proxyTo(b: Broker): Promise<FaultProxy> {
  const p = await startFaultProxy({ target: { host: b.host, port: b.port } });
  cleanups.push(() => p.close());
  return p;
}

interface Msg {
  topic: string;
  payload: string;
  qos: number;
  retain: boolean;
  dup: boolean;
}

interface Petrel {
  c: MqttClient;
  /** Every `message` event, copied. */
  got: Msg[];
  errors: PetrelError[];
  /** Session present of each CONNACK 0, in order. */
  connacks: boolean[];
  /** The reason of each `close` event, in order. */
  closes: string[];
}

let ids = 0;
/** A Petrel client on Node at MQTT 3.1.1 (this file's level; fast reconnects), ended after the test. */
function petrel(brokers: { host: string; port: number; tls?: boolean }[], o: Partial<NodeClientOptions> = {}): Petrel {
  ids++;
  const c = connect({
    brokers,
    protocolVersion: 4,
    clientId: `petrel-e2e-${process.pid}-${ids}`,
    clean: true,
    keepalive: 30,
    reconnectMinMs: 50,
    reconnectMaxMs: 500,
    ...o,
  });
  const p: Petrel = { c, got: [], errors: [], connacks: [], closes: [] };
  c.on("message", (topic, payload, info) => {
    p.got.push({ topic, payload: String(payload), qos: info.qos, retain: info.retain, dup: info.dup });
  });
  c.on("error", (e) => p.errors.push(e));
  c.on("connect", (ack) => p.connacks.push(ack.sessionPresent));
  c.on("close", (reason) => p.closes.push(reason));
  cleanups.push(() => end(p));
  return p;
}

function end(p: Petrel): Promise<void> {
  return bounded("end", new Promise<void>((resolve) => p.c.end(() => resolve())), 5000);
}

async function connected(p: Petrel, ms = 5000): Promise<void> {
  await until("CONNACK", () => p.c.connected, ms);
}

function subscribe(p: Petrel, filter: string | string[], opts: SubscribeOptions): Promise<number[]> {
  return bounded(`SUBACK for ${filter}`, new Promise<number[]>((resolve, reject) => {
    p.c.subscribe(filter, opts, (err, granted) => (err ? reject(new Error(`${err.code}: ${err.message}`)) : resolve(granted ?? [])));
  }));
}

function unsubscribe(p: Petrel, filter: string): Promise<void> {
  return bounded(`UNSUBACK for ${filter}`, new Promise<void>((resolve, reject) => {
    p.c.unsubscribe(filter, (err) => (err ? reject(new Error(`${err.code}: ${err.message}`)) : resolve()));
  }));
}

function publish(p: Petrel, topic: string, payload: string, opts: PublishOptions, ms = 5000): Promise<void> {
  return bounded(`acknowledgement of ${topic}`, new Promise<void>((resolve, reject) => {
    p.c.publish(topic, payload, opts, (err) => (err ? reject(new Error(`${err.code}: ${err.message}`)) : resolve()));
  }), ms);
}

/** Payload → how many times it arrived. */
function tally(msgs: Msg[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const x of msgs) m.set(x.payload, (m.get(x.payload) ?? 0) + 1);
  return m;
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => String(from + k));

/** A packet seen on a client's wire: "out" written by the client, "in" received by it. */
interface WireEvent {
  dir: "out" | "in";
  type: number;
  id: number;
  qos: number;
  dup: boolean;
  payload: string;
  sessionPresent: boolean;
}

/** The Node transport with every packet both ways recorded (each client write is one packet). */
function tapped(wire: WireEvent[]): Transport {
  const inner = nodeTransport();
  return {
    openStream(host, port, secure, ev, name) {
      const dec = new Decoder(70000);
      inner.openStream(host, port, secure, {
        onOpen: () => ev.onOpen(),
        onData: (chunk: Bytes) => {
          const b = chunk as unknown as Buffer;
          let at = 0;
          while (at < b.length) {
            at = dec.feedChunk(chunk, at);
            if (dec.status === Status.Packet) {
              const payload = dec.type === PacketType.Publish ? Buffer.from(dec.data as unknown as Uint8Array).subarray(dec.payloadStart, dec.bodyStart + dec.remaining).toString() : "";
              wire.push({ dir: "in", type: dec.type, id: dec.packetId, qos: dec.publishQos(), dup: dec.headerFlags >= 8, payload, sessionPresent: dec.type === PacketType.Connack && dec.data[dec.bodyStart] === 1 });
            } else if (dec.status === Status.Error) break;
          }
          ev.onData(chunk);
        },
        onWritable: () => ev.onWritable(),
        onClose: (r) => ev.onClose(r),
      }, name);
    },
    sendWire(data: Wire) {
      const b = data as unknown as Buffer;
      const type = b[0] >> 4;
      const e: WireEvent = { dir: "out", type, id: 0, qos: 0, dup: false, payload: "", sessionPresent: false };
      let p = 1;
      while (b[p] >= 128) p++;
      p++;
      if (type === PacketType.Publish) {
        e.qos = (b[0] >> 1) & 3;
        e.dup = (b[0] & 8) !== 0;
        p += 2 + b.readUInt16BE(p);
        if (e.qos > 0) {
          e.id = b.readUInt16BE(p);
          p += 2;
        }
        e.payload = b.subarray(p).toString();
      } else if (type >= PacketType.Puback && type <= PacketType.Pubcomp) {
        e.id = b.readUInt16BE(p);
      }
      wire.push(e);
      return inner.sendWire(data);
    },
    hangUp: () => inner.hangUp(),
  };
}

/**
 * QoS 2 exactly once on the client's leg, from its wire: every PUBLISH of one message carries the
 * same packet id, and once the broker has answered PUBREC no PUBLISH of that message is sent
 * again while the broker keeps the session (CONNACK session present 1). Returns the violations.
 */
function qos2Violations(wire: WireEvent[]): string[] {
  const bad: string[] = [];
  const idOf = new Map<string, number>();
  const payloadOf = new Map<number, string>();
  const pastPubrec = new Set<string>();
  for (const e of wire) {
    if (e.dir === "in" && e.type === PacketType.Connack && !e.sessionPresent) pastPubrec.clear();
    if (e.dir === "out" && e.type === PacketType.Publish && e.qos === 2) {
      if (pastPubrec.has(e.payload)) bad.push(`PUBLISH of ${e.payload} again after its PUBREC`);
      const id = idOf.get(e.payload);
      if (id !== undefined && id !== e.id) bad.push(`PUBLISH of ${e.payload} with id ${e.id}, first sent with ${id}`);
      idOf.set(e.payload, e.id);
      payloadOf.set(e.id, e.payload);
    }
    if (e.dir === "in" && e.type === PacketType.Pubrec) {
      const p = payloadOf.get(e.id);
      if (p !== undefined) pastPubrec.add(p);
    }
  }
  return bad;
}

/** Lines a mosquitto log has matching `re`. */
const logCount = (b: Broker, re: RegExp) => b.log().split("\n").filter((l) => re.test(l)).length;

// ---------------------------------------------------------------------------------------------

let shared: Broker;
beforeAll(async () => {
  shared = await startBroker();
});
afterAll(async () => {
  await shared?.close();
});
const at = () => [{ host: HOST, port: shared.port }];

describe("Petrel session against mosquitto 2.0.11", () => {
  it("QoS 0, 1 and 2 round trips through the client's own subscription; every publish callback runs", async () => {
    const p = petrel(at());
    await connected(p);
    const topic = "petrel/e2e/rt";
    const perFilter: Msg[] = [];
    expect(await subscribe(p, `${topic}/+`, { qos: 2, handler: (t, pl, q, r, d) => perFilter.push({ topic: t, payload: String(pl), qos: q, retain: r, dup: d }) })).toEqual([2]);
    for (const qos of [0, 1, 2]) await publish(p, `${topic}/q${qos}`, `payload °C ${qos}`, { qos });
    await until("three messages", () => p.got.length >= 3);
    await sleep(50); // nothing more is coming
    const want = [0, 1, 2].map((qos) => ({ topic: `${topic}/q${qos}`, payload: `payload °C ${qos}`, qos, retain: false, dup: false }));
    expect([...p.got].sort((a, b) => a.qos - b.qos)).toEqual(want);
    expect([...perFilter].sort((a, b) => a.qos - b.qos)).toEqual(want);
    expect(p.c.core.outbox.count).toBe(0);
    expect(p.errors).toEqual([]);
  });

  it("retained: a new subscriber gets it with retain set; an empty retained payload clears it", async () => {
    const topic = `petrel/e2e/retained/${ids}`;
    const pub = petrel(at());
    await connected(pub);
    await publish(pub, topic, "on", { qos: 1, retain: true });

    const first = petrel(at());
    await connected(first);
    await subscribe(first, topic, { qos: 1 });
    await until("the retained message", () => first.got.length >= 1);
    expect(first.got).toEqual([{ topic, payload: "on", qos: 1, retain: true, dup: false }]);

    await publish(pub, topic, "", { qos: 1, retain: true });
    // A live subscriber gets the clearing message as an ordinary (retain 0) empty one.
    await until("the clearing message", () => first.got.length >= 2);
    expect(first.got[1]).toEqual({ topic, payload: "", qos: 1, retain: false, dup: false });

    const late = petrel(at());
    await connected(late);
    await subscribe(late, [topic, `${topic}/marker`], { qos: 1 });
    // Retained messages follow SUBACK at once; a marker published after it proves none came.
    await publish(pub, `${topic}/marker`, "marker", { qos: 1 });
    await until("the marker", () => late.got.length >= 1);
    expect(late.got.map((m) => m.payload)).toEqual(["marker"]);
  });

  it("will: published when the connection is lost abruptly, not after end() (DISCONNECT)", async () => {
    const proxy = await proxyTo(shared);
    const topic = `petrel/e2e/will/${ids}`;
    const watcher = petrel(at());
    await connected(watcher);
    await subscribe(watcher, `${topic}/#`, { qos: 1 });

    const w = petrel([{ host: HOST, port: proxy.port }], { will: { topic: `${topic}/w`, payload: "gone", qos: 1 } });
    await connected(w);
    const offline = new Promise<void>((r) => w.c.on("offline", () => r()));
    proxy.reset();
    await bounded("offline", offline);
    await until("the will", () => watcher.got.length >= 1);
    expect(watcher.got[0]).toMatchObject({ topic: `${topic}/w`, payload: "gone", qos: 1, retain: false });
    // The client reconnects by itself.
    await connected(w);
    expect(w.connacks.length).toBe(2);

    await end(w);
    await until("the broker to see the DISCONNECT", () => shared.log().includes(`Client ${w.c.core.settings.clientId} disconnected.`));
    const pub = petrel(at());
    await connected(pub);
    await publish(pub, `${topic}/marker`, "marker", { qos: 1 });
    await until("the marker", () => watcher.got.length >= 2);
    expect(watcher.got.map((m) => m.payload)).toEqual(["gone", "marker"]);
  });

  it("persistent session: messages published while the subscriber is away are queued and delivered; no resubscribe", async () => {
    const topic = `petrel/e2e/offline/${ids}`;
    const clientId = `petrel-e2e-persist-${process.pid}`;
    const pub = petrel(at());
    await connected(pub);
    await publish(pub, `${topic}/r`, "retained", { qos: 1, retain: true });

    const viaHandler: string[] = [];
    const sub = petrel(at(), { clientId, clean: false });
    await connected(sub);
    await subscribe(sub, `${topic}/#`, { qos: 1, handler: (_t, pl) => viaHandler.push(String(pl)) });
    await until("the retained message", () => sub.got.length >= 1);
    let firstEndCallbacks = 0;
    await bounded("end", new Promise<void>((resolve) => sub.c.end(() => {
      firstEndCallbacks++;
      resolve();
    })));

    for (const m of range(0, 10)) await publish(pub, `${topic}/m`, m, { qos: m === "5" ? 2 : 1 });

    // The same client object connects again: it remembers its subscription and the broker its session.
    sub.c.reconnect();
    await connected(sub);
    await until("the queued messages", () => sub.got.length >= 11);
    await sleep(100);
    expect(sub.connacks).toEqual([false, true]);
    expect(sub.got.map((m) => m.payload)).toEqual(["retained", ...range(0, 10)]);
    expect(sub.got.slice(1).every((m) => m.qos === 1 && !m.retain)).toBe(true);
    expect(viaHandler).toEqual(["retained", ...range(0, 10)]);
    // One SUBSCRIBE in all: the session kept it; no retained replay.
    expect(logCount(shared, new RegExp(`Received SUBSCRIBE from ${clientId}$`))).toBe(1);
    await end(sub);
    // end(cb) runs its callback once: not again at a later end after reconnect().
    expect(firstEndCallbacks).toBe(1);

    // A new client with the same id (a board that rebooted) gets what was queued meanwhile,
    // without subscribing: through `message`.
    for (const m of range(10, 15)) await publish(pub, `${topic}/m`, m, { qos: 2 });
    const again = petrel(at(), { clientId, clean: false });
    await connected(again);
    await until("the messages queued for the rebooted board", () => again.got.length >= 5);
    await sleep(100);
    expect(again.connacks).toEqual([true]);
    expect(again.got.map((m) => m.payload)).toEqual(range(10, 15));
    expect(again.c.core.subs.count).toBe(0);
    expect(logCount(shared, new RegExp(`Received SUBSCRIBE from ${clientId}$`))).toBe(1);
  });

  it("overlapping subscriptions a/# and a/+/c: mosquitto sends one copy at the highest QoS; every matching handler sees it", async () => {
    const a = `petrel/e2e/overlap${ids}`;
    const p = petrel(at());
    await connected(p);
    const hash: Msg[] = [];
    const plus: Msg[] = [];
    const h = (into: Msg[]) => (t: string, pl: Wire, q: number, r: boolean, d: boolean) => into.push({ topic: t, payload: String(pl), qos: q, retain: r, dup: d });
    // Different QoS per subscription, so the copies can be told apart.
    await subscribe(p, `${a}/#`, { qos: 0, handler: h(hash) });
    await subscribe(p, `${a}/+/c`, { qos: 1, handler: h(plus) });
    await publish(p, `${a}/b/c`, "both", { qos: 1 });
    await publish(p, `${a}/b`, "hash only", { qos: 1 });
    await publish(p, `${a}/x/c/d`, "hash only too", { qos: 1 });
    await until("the messages", () => p.got.some((m) => m.payload === "hash only too"));
    await sleep(100);
    const both = p.got.filter((m) => m.payload === "both");
    note(`overlap: mosquitto 2.0.11 delivered ${both.length} copies of a/b/c, at QoS ${both.map((m) => m.qos).join(" and ")}`);
    // mosquitto 2.0.11 (MQTT 3.1.1): one copy per client, at the highest QoS of the matching
    // subscriptions (MQTT-3.3.5-1 allows either one copy or one per subscription).
    expect(both.map((m) => m.qos)).toEqual([1]);
    // The client routes each PUBLISH to every handler whose filter matches its topic, once.
    expect(hash.map((m) => m.payload)).toEqual(["both", "hash only", "hash only too"]);
    expect(plus.map((m) => m.payload)).toEqual(["both"]);
    expect(p.got.map((m) => m.payload)).toEqual(["both", "hash only", "hash only too"]);
  });

  it("unsubscribe stops delivery (and the handler at once)", async () => {
    const t = `petrel/e2e/unsub${ids}`;
    const p = petrel(at());
    await connected(p);
    const seen: string[] = [];
    await subscribe(p, `${t}/+`, { qos: 1, handler: (_t, pl) => seen.push(String(pl)) });
    await subscribe(p, `${t}-marker`, { qos: 1 });
    await publish(p, `${t}/a`, "before", { qos: 1 });
    await until("the first message", () => seen.length === 1);
    await unsubscribe(p, `${t}/+`);
    await publish(p, `${t}/a`, "after", { qos: 1 });
    await publish(p, `${t}-marker`, "marker", { qos: 1 });
    await until("the marker", () => p.got.some((m) => m.payload === "marker"));
    expect(seen).toEqual(["before"]);
    expect(p.got.map((m) => m.payload)).toEqual(["before", "marker"]);
    expect(p.c.core.subs.count).toBe(1);
  });

  it("$-topics: '#' does not receive $SYS, a $SYS subscription does; the '#' handler never sees $SYS", async () => {
    const b = await broker({ extra: ["sys_interval 1"] });
    const p = petrel([{ host: HOST, port: b.current.port }]);
    await connected(p);
    const viaHash: string[] = [];
    const viaSys: string[] = [];
    await subscribe(p, "#", { qos: 0, handler: (t) => viaHash.push(t) });
    await publish(p, "petrel/e2e/plain", "x", { qos: 1 });
    await until("the plain message", () => viaHash.includes("petrel/e2e/plain"));
    // Long enough for several $SYS rounds (sys_interval 1): none may arrive through '#'.
    await sleep(1200);
    expect(p.got.filter((m) => m.topic.startsWith("$"))).toEqual([]);
    await subscribe(p, "$SYS/broker/uptime", { qos: 0, handler: (t) => viaSys.push(t) });
    await until("$SYS/broker/uptime", () => viaSys.length >= 1, 5000);
    expect(p.got.some((m) => m.topic === "$SYS/broker/uptime")).toBe(true);
    expect(viaHash.filter((t) => t.startsWith("$"))).toEqual([]);
    expect(viaSys.every((t) => t === "$SYS/broker/uptime")).toBe(true);
  });

  it("credentials: a wrong password is refused with an error that says what to fix; the right one connects", async () => {
    const b = await broker({ users: { sensor: "right-password" } });
    const bad = petrel([{ host: HOST, port: b.current.port }], { username: "sensor", password: "wrong" });
    await until("the refusal", () => bad.errors.length >= 1);
    const e = bad.errors[0];
    note(`credentials: mosquitto answered a wrong password with code "${e.code}": ${e.message}`);
    // mosquitto 2 answers a wrong password with CONNACK 5 (not authorized), not 4.
    expect(e.code).toBe("not-authorized");
    expect(e.message).toMatch(/password/);
    expect(e.message).toMatch(/fix:/);
    expect(bad.c.connected).toBe(false);
    const anon = petrel([{ host: HOST, port: b.current.port }]);
    await until("the anonymous refusal", () => anon.errors.length >= 1);
    expect(anon.errors[0].code).toBe("not-authorized");

    const good = petrel([{ host: HOST, port: b.current.port }], { username: "sensor", password: "right-password" });
    await connected(good);
    await subscribe(good, "petrel/e2e/auth", { qos: 1 });
    await publish(good, "petrel/e2e/auth", "in", { qos: 1 });
    await until("the message", () => good.got.length === 1);
    expect(good.errors).toEqual([]);
  });

  it("a publisher process killed (SIGKILL) mid-stream and started again on the same storage resumes its outbox: nothing lost", async () => {
    if (!fs.existsSync(PUBLISHER)) throw new Error(`${PUBLISHER} is missing: run make build (or vitest without PETREL_SKIP_BUILD)`);
    const b = await broker();
    // A slow link, so the outbox holds messages in flight when the process dies.
    const proxy = await proxyTo(b.current);
    proxy.delay(20);
    const topic = "petrel/e2e/proc";
    const obs = petrel([{ host: HOST, port: b.current.port }]);
    await connected(obs);
    await subscribe(obs, `${topic}/#`, { qos: 2 });
    const storageDir = tmpDir("proc-storage");
    const job = { host: HOST, port: proxy.port, storageDir, clientId: `petrel-e2e-proc-${process.pid}`, topic: `${topic}/m` };

    const first = runPublisher({ ...job, mode: "publish", count: 400, burst: 3, paceMs: 5 });
    await first.until("80 accepted and 10 acknowledged", () => first.accepted.size >= 80 && first.acked.size >= 10, 15000);
    first.child.kill("SIGKILL");
    await bounded("the killed process to exit", first.exited);
    const records = fs.readdirSync(storageDir).filter((f) => /^mqo\d+$/.test(f)).length;
    const accepted = new Set(first.accepted);

    const second = runPublisher({ ...job, mode: "resume" });
    await second.until("the outbox to drain", () => second.lines.includes("drained"), 15000);
    await bounded("the resumed process to exit", second.exited);
    const loaded = Number(second.lines.find((l) => l.startsWith("loaded "))?.split(" ")[1] ?? -1);

    await until("every accepted message at the subscriber", () => [...accepted].every((m) => obs.got.some((g) => g.payload === m)), 10000);
    await sleep(200);
    const counts = tally(obs.got);
    const missing = [...accepted].filter((m) => !counts.has(m));
    const dup1 = [...counts].filter(([m, n]) => n > 1 && Number(m) % 2 === 0).length;
    const dup2 = [...counts].filter(([m, n]) => n > 1 && Number(m) % 2 === 1).length;
    note(`process kill: ${accepted.size} accepted before SIGKILL (${first.acked.size} acknowledged), ${records} outbox records left, ` +
      `${loaded} resumed (session present ${second.lines.includes("connect 1")}), ${counts.size} distinct received, ` +
      `${dup1} QoS 1 duplicated, ${dup2} QoS 2 duplicated, ${missing.length} missing`);
    expect(loaded).toBeGreaterThan(0);
    expect(loaded).toBe(records);
    expect(second.lines).toContain("connect 1");
    expect(missing).toEqual([]);
    expect(dup2).toBe(0);
    expect(obs.errors).toEqual([]);
  });

  it.each(["kill", "term"] as const)("broker %s with messages in flight (QoS 2 between PUBREC and PUBCOMP), restarted on the same port and directory", async (how) => {
    const b = await broker();
    const proxy = await proxyTo(b.current);
    proxy.delay(40);
    const topic = `petrel/e2e/${how}`;
    const obs = petrel([{ host: HOST, port: b.current.port }], { clientId: `petrel-e2e-${how}-obs-${process.pid}`, clean: false });
    await connected(obs);
    await subscribe(obs, `${topic}/#`, { qos: 2 });
    const wire: WireEvent[] = [];
    const pub = petrel([{ host: HOST, port: proxy.port }], { clientId: `petrel-e2e-${how}-pub-${process.pid}`, clean: false, maxInflight: 10, transport: tapped(wire) });
    await connected(pub);

    const N = 60;
    const acked = new Set<string>();
    const send = (i: number) => pub.c.publish(`${topic}/m`, String(i), { qos: i % 2 === 0 ? 1 : 2 }, (err) => {
      if (err === undefined) acked.add(String(i));
    });
    for (let i = 0; i < 40; i++) send(i);
    const o = pub.c.core.outbox;
    const phases = () => Array.from({ length: o.count }, (_, k) => o.phaseAt(k));
    await until("a message between PUBREC and PUBCOMP and one waiting for its first acknowledgement", () => phases().includes(2) && phases().includes(1), 10000);
    const atKill = phases();
    const wireAtKill = wire.length;
    if (how === "kill") await b.current.kill();
    else await b.current.stop();
    // More while it is down: kept in the outbox.
    for (let i = 40; i < N; i++) send(i);
    b.current = await b.current.restart();

    await until("every publish acknowledged", () => acked.size === N, 20000);
    // The subscriber reconnects by itself; give what the broker still holds time to arrive.
    await until("every message at the subscriber", () => range(0, N).every((m) => obs.got.some((g) => g.payload === m)), 5000).catch(() => {});
    await sleep(200);
    // What the broker acknowledged before it went down (PUBACK, PUBREC or PUBCOMP), including
    // acknowledgements still on their way (the proxy's delay) when it died: every one that reached
    // the client before its next CONNACK.
    const brokerAcked = new Set<string>();
    const payloadOf = new Map<number, string>();
    for (let k = 0; k < wire.length; k++) {
      const e = wire[k];
      if (e.dir === "out" && e.type === PacketType.Publish) payloadOf.set(e.id, e.payload);
      if (e.dir === "in" && (e.type === PacketType.Puback || e.type === PacketType.Pubrec || e.type === PacketType.Pubcomp)) brokerAcked.add(payloadOf.get(e.id)!);
      if (e.dir === "in" && e.type === PacketType.Connack && k >= wireAtKill) break;
    }
    const counts = tally(obs.got);
    const missing = range(0, N).filter((m) => !counts.has(m));
    const brokerLost = missing.filter((m) => brokerAcked.has(m));
    const clientLost = missing.filter((m) => !brokerAcked.has(m));
    const dup1 = [...counts].filter(([m, n]) => n > 1 && Number(m) % 2 === 0).length;
    const dup2 = [...counts].filter(([m, n]) => n > 1 && Number(m) % 2 === 1).length;
    const resentPubrel = wire.filter((e) => e.dir === "out" && e.type === PacketType.Pubrel).length - wire.filter((e) => e.dir === "in" && e.type === PacketType.Pubrec).length;
    note(`broker ${how}: outbox at ${how} ${atKill.length} (${atKill.filter((x) => x === 1).length} Sent, ${atKill.filter((x) => x === 2).length} Released), ` +
      `${acked.size} acknowledged, ${counts.size} of ${N} distinct received, broker-side losses ${brokerLost.length} [${brokerLost.join(",")}], ` +
      `QoS 1 duplicates ${dup1}, QoS 2 duplicates at the subscriber ${dup2}, PUBREL resent ${resentPubrel}, ` +
      `publisher session present after restart ${pub.connacks.slice(1).join(",")}, subscriber ${obs.connacks.slice(1).join(",")}`);
    expect(atKill.filter((x) => x === 1).length).toBeGreaterThan(0);
    expect(atKill.filter((x) => x === 2).length).toBeGreaterThan(0);
    expect(clientLost).toEqual([]);
    expect(qos2Violations(wire)).toEqual([]);
    expect(pub.c.core.outbox.count).toBe(0);
    if (how === "term") {
      // mosquitto saves everything on SIGTERM: nothing lost, QoS 2 once.
      expect(missing).toEqual([]);
      expect(dup2).toBe(0);
      expect(pub.connacks.slice(1).every((sp) => sp)).toBe(true);
    }
  });

  it("failover: the first broker stops, the client moves to the second and keeps publishing; it returns to the first (primaryRetry)", async () => {
    const A = await broker();
    const B = await broker();
    const topic = "petrel/e2e/failover";
    const oa = petrel([{ host: HOST, port: A.current.port }], { clientId: `petrel-e2e-oa-${process.pid}`, clean: false });
    const ob = petrel([{ host: HOST, port: B.current.port }], { clientId: `petrel-e2e-ob-${process.pid}`, clean: false });
    await connected(oa);
    await connected(ob);
    await subscribe(oa, `${topic}/#`, { qos: 1 });
    await subscribe(ob, `${topic}/#`, { qos: 1 });
    const p = petrel([{ host: HOST, port: A.current.port }, { host: HOST, port: B.current.port }],
      { clientId: `petrel-e2e-fo-${process.pid}`, clean: false, primaryRetry: 1 });
    await connected(p);
    expect(p.c.core.broker).toBe(0);
    await Promise.all(range(0, 5).map((m) => publish(p, `${topic}/m`, m, { qos: 1 })));
    await until("the first broker's subscriber", () => oa.got.length >= 5);

    await A.current.stop();
    const onB = Promise.all(range(5, 10).map((m) => publish(p, `${topic}/m`, m, { qos: m === "7" ? 2 : 1 }, 10000)));
    await until("the client on the second broker", () => p.c.connected && p.c.core.broker === 1, 10000);
    await onB;
    await until("the second broker's subscriber", () => ob.got.length >= 5);

    A.current = await A.current.restart();
    await until("the client back on the first broker", () => p.c.connected && p.c.core.broker === 0, 10000);
    await Promise.all(range(10, 15).map((m) => publish(p, `${topic}/m`, m, { qos: 1 }, 10000)));
    await until("the first broker's subscriber", () => oa.got.length >= 10, 10000);
    await sleep(100);
    // Distinct and sorted: PUBACKs of the first broker's subscriber that mosquitto had not read
    // yet at SIGTERM (its log shows it stops reading at once) make it deliver those QoS 1
    // messages again after its restart (with DUP set); and
    // mosquitto forwards QoS 2 at PUBREL, so 7 (QoS 2) may reach its subscriber after 8 and 9.
    const distinct = (ms: Msg[]) => [...new Set(ms.map((m) => m.payload))].sort((x, y) => Number(x) - Number(y));
    expect(distinct(oa.got)).toEqual([...range(0, 5), ...range(10, 15)]);
    expect(distinct(ob.got)).toEqual(range(5, 10));
    note(`failover: the first broker's subscriber got ${oa.got.length - 10} QoS 1 duplicate(s) after its restart (${oa.got.filter((m) => m.dup).length} with DUP set), the second's ${ob.got.length - 5}; the client closed for ${p.closes.filter((r) => r === "primary-retry").length} primary retries`);
    expect(p.c.core.outbox.count).toBe(0);
    expect(p.closes).toContain("primary-retry");
  });

  describe("TLS", () => {
    let certs: Certs;
    beforeAll(async () => {
      certs = await makeCerts(tmpDir("certs"));
    });

    it("connects to a TLS listener by name with the CA and round-trips; a wrong CA is tls-untrusted", async () => {
      const b = await broker({ tls: { certfile: certs.server.certfile, keyfile: certs.server.keyfile } });
      const p = petrel([{ host: "localhost", port: b.current.port, tls: true }], { tls: { ca: certs.ca.cert } });
      await connected(p);
      await subscribe(p, "petrel/e2e/tls", { qos: 2 });
      await publish(p, "petrel/e2e/tls", "secret", { qos: 2 });
      await until("the message", () => p.got.length === 1);
      expect(p.got[0]).toMatchObject({ topic: "petrel/e2e/tls", payload: "secret", qos: 2 });

      const wrong = petrel([{ host: "localhost", port: b.current.port, tls: true }], { tls: { ca: certs.wrongCa.cert } });
      await until("the TLS refusal", () => wrong.errors.length >= 1);
      expect(wrong.errors[0].code).toBe("tls-untrusted");
      expect(wrong.errors[0].message).toMatch(/fix:/);
      expect(wrong.c.connected).toBe(false);
    });

    it("client-certificate authentication: with the certificate it connects (CN as user name)", async () => {
      const b = await broker({ tls: { certfile: certs.server.certfile, keyfile: certs.server.keyfile, cafile: certs.ca.certfile, requireCertificate: true, useIdentityAsUsername: true } });
      const p = petrel([{ host: "localhost", port: b.current.port, tls: true }], { tls: { ca: certs.ca.cert, cert: certs.client.cert, key: certs.client.key } });
      await connected(p);
      await subscribe(p, "petrel/e2e/mtls", { qos: 1 });
      await publish(p, "petrel/e2e/mtls", "hello", { qos: 1 });
      await until("the message", () => p.got.length === 1);
      expect(b.current.log()).toContain("u'petrel-client'");
      const without = petrel([{ host: "localhost", port: b.current.port, tls: true }], { tls: { ca: certs.ca.cert } });
      await until("the refusal", () => without.errors.length >= 1);
      // TLS 1.3: the broker's alert 116 (certificate required) names the problem.
      expect(without.errors[0].code).toBe("tls-client-cert-required");
      expect(without.c.connected).toBe(false);
    });
  });
});

// ---------------------------------------------------------------------------------------------
// The publisher process (host-sim/node/publisher-process.ts, run from the Node build)

interface Run {
  child: ChildProcess;
  lines: string[];
  accepted: Set<string>;
  acked: Set<string>;
  exited: Promise<void>;
  until(what: string, cond: () => boolean, ms: number): Promise<void>;
}

function runPublisher(job: Record<string, unknown>): Run {
  const child = spawn(process.execPath, [PUBLISHER, JSON.stringify(job)], { stdio: ["ignore", "pipe", "pipe"] });
  const run: Run = {
    child,
    lines: [],
    accepted: new Set(),
    acked: new Set(),
    exited: new Promise((resolve) => child.once("exit", () => resolve())),
    until: (what, cond, ms) => until(`${what} (publisher said: ${run.lines.slice(-3).join(" | ")}; stderr: ${stderr})`, cond, ms),
  };
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  readline.createInterface({ input: child.stdout! }).on("line", (l) => {
    run.lines.push(l);
    const [k, v] = l.split(" ");
    if (k === "p") run.accepted.add(v);
    else if (k === "a") run.acked.add(v);
  });
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await bounded("the publisher process to exit", run.exited);
  });
  return run;
}
