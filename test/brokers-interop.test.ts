import mqtt from "mqtt";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { PetrelError } from "../firmware/port/log";
import type { MqttClient } from "../firmware/session/mqtt";
import { BROKER_KINDS, CHECKER, CHECKER_PASSWORD, PASSWORD, USER, brokerMissing, startInteropBroker, type BrokerKind, type InteropBroker } from "../host-sim/brokers";
import { startFaultProxy } from "../host-sim/fault-proxy";
import { connect, type NodeClientOptions } from "../host-sim/node/client";
import { ended, until } from "./harness/wait";

// One interop suite, the same scenarios on every broker this machine can start: mosquitto 2.0,
// aedes (npm), NATS Server 2.9 in MQTT mode and RabbitMQ 3.10's MQTT plugin (host-sim/brokers.ts:
// each with its own config, ephemeral loopback ports, two users and a subtree the client may not
// read). Petrel is the Node build of the session (the code the boards run) at MQTT 3.1.1, none of
// these but mosquitto speaking 5.0; MQTT.js as user `checker` is the independent peer. Where a
// broker does something else than the specification asks, the test says what it does and checks
// what Petrel does about it; the scenario × broker table is printed at the end (docs/brokers.md).
// Without a broker here the suite skips it saying how to get it; under CI=true a missing broker
// fails (tools/install-deps.sh installs all four). Every wait is bounded.

const CI = process.env.CI === "true";
/** scenario → broker → what happened ("PASS", or what the broker does and what Petrel does) */
const table = new Map<string, Map<BrokerKind, string>>();
const names = new Map<BrokerKind, string>();
function cell(scenario: string, kind: BrokerKind, text: string): void {
  if (!table.has(scenario)) table.set(scenario, new Map());
  table.get(scenario)!.set(kind, text);
}

afterAll(() => {
  const kinds = BROKER_KINDS.filter((k) => names.has(k));
  if (kinds.length === 0) return;
  const lines = [`broker interop (scenario × broker): ${kinds.map((k) => names.get(k)).join(", ")}`];
  for (const [scenario, row] of table) {
    lines.push(`  ${scenario}`);
    for (const k of kinds) lines.push(`    ${k.padEnd(10)} ${row.get(k) ?? "-"}`);
  }
  console.log(lines.join("\n"));
});

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

let ids = 0;
const uid = () => `${process.pid}-${++ids}`;

interface Petrel {
  c: MqttClient;
  errors: PetrelError[];
  got: { topic: string; payload: string; qos: number; retain: boolean }[];
}

/** Petrel (the Node build) at 3.1.1 as user petrel, fast reconnects; ended after the test. */
function petrel(b: { host: string; port: number }, o: Partial<NodeClientOptions> = {}): Petrel {
  const c = connect({
    brokers: [{ host: b.host, port: b.port }], clientId: `petrel-${uid()}`, clean: true, keepalive: 30, username: USER, password: PASSWORD,
    reconnectMinMs: 50, reconnectMaxMs: 500, protocolVersion: 4, ...o,
  });
  const p: Petrel = { c, errors: [], got: [] };
  c.on("error", (e) => p.errors.push(e));
  c.on("message", (topic, payload, info) => p.got.push({ topic, payload: String(payload), qos: info.qos, retain: info.retain }));
  cleanups.push(() => ended(c));
  return p;
}

interface Peer {
  m: mqtt.MqttClient;
  got: { topic: string; payload: string; qos: number; retain: boolean }[];
}

/** MQTT.js at 3.1.1 as user checker, connected (and with `filter`, subscribed at QoS 1). */
async function peer(b: InteropBroker, filter?: string): Promise<Peer> {
  const m = mqtt.connect(`mqtt://${b.host}:${b.port}`, { protocolVersion: 4, clientId: `checker-${uid()}`, clean: true, reconnectPeriod: 0,
    username: CHECKER, password: CHECKER_PASSWORD, connectTimeout: 10_000 });
  const p: Peer = { m, got: [] };
  cleanups.push(() => new Promise<void>((resolve) => m.end(true, {}, () => resolve())));
  m.on("message", (topic, payload, pk) => p.got.push({ topic, payload: payload.toString(), qos: pk.qos, retain: pk.retain }));
  await new Promise<void>((resolve, reject) => {
    m.once("connect", () => resolve());
    m.once("error", reject);
  });
  if (filter !== undefined) {
    await new Promise<void>((resolve, reject) => m.subscribe(filter, { qos: 1 }, (err) => (err ? reject(err) : resolve())));
  }
  return p;
}

function peerPublish(p: Peer, topic: string, payload: string, qos: 0 | 1 | 2, retain = false): Promise<void> {
  return new Promise((resolve, reject) => p.m.publish(topic, payload, { qos, retain }, (err) => (err ? reject(err) : resolve())));
}

function publish(p: Petrel, topic: string, payload: string, qos: number, retain = false): Promise<PetrelError | undefined> {
  return new Promise((resolve) => p.c.publish(topic, payload, { qos: qos as 0 | 1 | 2, retain }, (err) => resolve(err ?? undefined)));
}

function subscribe(p: Petrel, filter: string, qos: number): Promise<{ err: PetrelError | undefined; granted: number[] | undefined }> {
  return new Promise((resolve) => p.c.subscribe(filter, { qos: qos as 0 | 1 | 2 }, (err, granted) => resolve({ err: err ?? undefined, granted })));
}

const up = (p: Petrel, what = "CONNACK") => until(`${what}`, () => p.c.connected, 15_000);

describe.each(BROKER_KINDS)("%s", (kind) => {
  const missing = brokerMissing(kind);
  if (missing !== null && !CI) {
    it.skip(`${kind}: skipped: ${missing}`, () => undefined);
    return;
  }
  let b: InteropBroker;
  beforeAll(async () => {
    if (missing !== null) throw new Error(`${missing} (CI=true: every broker must run)`);
    b = await startInteropBroker(kind);
    names.set(kind, b.name);
  }, 120_000);
  afterAll(async () => {
    if (b !== undefined) await b.close();
  }, 60_000);

  it("connect: the right password connects; a wrong one is refused with the broker's CONNACK code, named", async () => {
    const ok = petrel(b);
    await up(ok);
    const bad = petrel(b, { password: "wrong" });
    await until("the refusal", () => bad.errors.length > 0, 15_000);
    const e = bad.errors[0];
    expect(bad.c.connected).toBe(false);
    expect(["bad-credentials", "not-authorized"]).toContain(e.code);
    expect(e.message).toMatch(/return code [45]/);
    cell("connect: right and wrong password", kind, `PASS (wrong password: ${e.code}, ${/return code \d/.exec(e.message)![0]})`);
  }, 30_000);

  it("publish at QoS 0 and 1: the checker receives both", async () => {
    const t = `it/pub/${uid()}`;
    const chk = await peer(b, t);
    const p = petrel(b);
    await up(p);
    expect(await publish(p, t, "q0", 0)).toBeUndefined();
    expect(await publish(p, t, "q1", 1)).toBeUndefined();
    await until("both at the checker", () => chk.got.length >= 2, 10_000);
    expect(chk.got.map((m) => m.payload).sort()).toEqual(["q0", "q1"]);
    expect(p.errors).toEqual([]);
    cell("publish QoS 0 and 1", kind, "PASS");
  }, 30_000);

  it("receive at QoS 0, 1 and 2: each arrives at the QoS granted, and the caller is told the grant", async () => {
    const t = `it/recv/${uid()}`;
    const p = petrel(b);
    await up(p);
    const s = await subscribe(p, t, 2);
    expect(s.err).toBeUndefined();
    const granted = s.granted![0];
    expect([1, 2]).toContain(granted);
    const chk = await peer(b);
    await peerPublish(chk, t, "q0", 0);
    await peerPublish(chk, t, "q1", 1);
    // (a broker that takes no QoS 2 PUBLISH from any client gets the last one at QoS 1)
    const q2 = kind !== "nats";
    await peerPublish(chk, t, "q2", q2 ? 2 : 1);
    await until("three messages", () => p.got.length >= 3, 10_000);
    // (MQTT orders messages within a QoS, not across them: RabbitMQ may deliver q1 before q0)
    expect(p.got.map((m) => `${m.payload}@${m.qos}`).sort()).toEqual(["q0@0", "q1@1", `q2@${q2 ? Math.min(2, granted) : 1}`]);
    cell("receive QoS 0/1/2 (subscribed at 2)", kind, granted === 2 ? "PASS" :
      `grants QoS ${granted} for a QoS 2 subscription: Petrel passes the grant to the callback and delivers at QoS ${granted}${q2 ? "" : " (the QoS 2 sender is refused: see publish QoS 2)"}`);
  }, 30_000);

  it("publish at QoS 2: delivered once; a broker that closes the connection on it gets it held after 3 tries, and the rest flows", async () => {
    const t = `it/q2/${uid()}`;
    const chk = await peer(b, t);
    const p = petrel(b, { stableMs: 5000, refusedAfter: 3 });
    await up(p);
    const r2 = publish(p, t, "two", 2);
    const r1 = publish(p, t, "behind", 1);
    const [e2, e1] = await Promise.race([Promise.all([r2, r1]),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error("gave up after 30 s waiting for both publishes to complete")), 30_000))]);
    await until("what arrives", () => chk.got.some((m) => m.payload === "behind"), 10_000);
    expect(e1).toBeUndefined();
    const downgraded = p.errors.filter((e) => e.code === "qos2-downgraded");
    if (e2 === undefined) {
      // taken: the checker has it once
      await until("the QoS 2 message", () => chk.got.some((m) => m.payload === "two"), 10_000);
      expect(chk.got.filter((m) => m.payload === "two")).toHaveLength(1);
      if (downgraded.length === 0) cell("publish QoS 2", kind, "PASS");
      else {
        // answered with PUBACK: the broker took it at QoS 1; done, and onError says so (no reconnect, nothing sent again)
        expect(downgraded[0].message).toMatch(/answered the QoS 2 PUBLISH of message \d+ with PUBACK .*took it at QoS 1.*fix:/);
        expect(p.errors.map((e) => e.code)).toEqual(["qos2-downgraded"]);
        expect(p.c.core.stats.connects).toBe(1);
        cell("publish QoS 2", kind, "answers a QoS 2 PUBLISH with PUBACK (takes it at QoS 1): Petrel completes it and onError says qos2-downgraded (it may arrive twice)");
      }
    } else {
      expect(e2.code).toBe("publish-refused");
      expect(e2.message).toMatch(/closed the connection 3 times in a row right after the QoS 2 PUBLISH/);
      expect(chk.got.map((m) => m.payload)).toEqual(["behind"]);
      const held = p.c.held();
      expect(held.map((h) => `${h.topic} q${h.qos}`)).toEqual([`${t} q2`]);
      cell("publish QoS 2", kind, "closes the connection on every QoS 2 PUBLISH: Petrel holds the message after 3 short-lived connections " +
        "(publish-refused; `held` lists it, retry or drop), and the messages behind it flow");
    }
  }, 60_000);

  it("retained: set, seen by a new subscriber with the retain flag; cleared by an empty retained message", async () => {
    const t = `it/ret/${uid()}`;
    const p = petrel(b);
    await up(p);
    expect(await publish(p, t, "kept", 1, true)).toBeUndefined();
    const a = await peer(b, t);
    await until("the retained message", () => a.got.length >= 1, 10_000);
    expect(a.got[0]).toMatchObject({ payload: "kept", retain: true });
    expect(await publish(p, t, "", 1, true)).toBeUndefined();
    // a new subscriber, then a live message: with the retained one cleared, the live one is first
    const c = await peer(b, t);
    await peerPublish(c, t, "live", 1);
    await until("the live message", () => c.got.some((m) => m.payload === "live"), 10_000);
    expect(c.got.map((m) => m.payload)).toEqual(["live"]);
    cell("retained set and clear", kind, "PASS");
  }, 30_000);

  it("will: published when the connection is lost without DISCONNECT, not after end()", async () => {
    const t = `it/will/${uid()}`;
    const chk = await peer(b, `${t}/#`);
    const proxy = await startFaultProxy({ target: { host: b.host, port: b.port } });
    cleanups.push(() => proxy.close());
    const lost = petrel({ host: proxy.host, port: proxy.port }, { will: { topic: `${t}/lost`, payload: "gone", qos: 1 } });
    await up(lost);
    const ended = petrel(b, { will: { topic: `${t}/ended`, payload: "gone", qos: 1 } });
    await up(ended);
    await new Promise<void>((resolve) => ended.c.end(() => resolve()));
    proxy.reset();
    await until("the will", () => chk.got.length >= 1, 15_000);
    // (then a marker: whatever the ended client's will would have been, it came before)
    await peerPublish(chk, `${t}/marker`, "m", 1);
    await until("the marker", () => chk.got.some((m) => m.topic === `${t}/marker`), 10_000);
    expect(chk.got.map((m) => `${m.topic.slice(t.length + 1)} ${m.payload}`)).toEqual(["lost gone", "marker m"]);
    cell("will on a lost connection", kind, "PASS");
  }, 40_000);

  it("persistent session: a QoS 1 message sent while the client was away arrives when it comes back (session present)", async () => {
    const t = `it/sess/${uid()}`;
    const clientId = `petrel-sess-${uid()}`;
    const first = petrel(b, { clientId, clean: false });
    await up(first);
    expect((await subscribe(first, t, 1)).err).toBeUndefined();
    await new Promise<void>((resolve) => first.c.end(() => resolve()));
    const chk = await peer(b);
    await peerPublish(chk, t, "while away", 1);
    let present: boolean | undefined;
    const again = petrel(b, { clientId, clean: false });
    again.c.on("connect", (ack) => (present ??= ack.sessionPresent));
    await up(again);
    await until("the message kept for it", () => again.got.length >= 1, 15_000);
    expect(present).toBe(true);
    expect(again.got.map((m) => `${m.payload}@${m.qos}`)).toEqual(["while away@1"]);
    cell("persistent session resumed", kind, "PASS");
  }, 40_000);

  it("unsubscribe: nothing more arrives on the filter, the other subscription goes on", async () => {
    const t = `it/unsub/${uid()}`;
    const p = petrel(b);
    await up(p);
    expect((await subscribe(p, `${t}/a`, 1)).err).toBeUndefined();
    expect((await subscribe(p, `${t}/b`, 1)).err).toBeUndefined();
    const done = await new Promise<PetrelError | undefined>((resolve) => p.c.unsubscribe(`${t}/a`, (err) => resolve(err ?? undefined)));
    expect(done).toBeUndefined();
    const chk = await peer(b);
    await peerPublish(chk, `${t}/a`, "after", 1);
    await peerPublish(chk, `${t}/b`, "marker", 1);
    await until("the marker", () => p.got.length >= 1, 10_000);
    expect(p.got.map((m) => m.payload)).toEqual(["marker"]);
    cell("unsubscribe", kind, "PASS");
  }, 30_000);

  it("$ topics: a wildcard at the start does not match them (MQTT-4.7.2-1); a filter that names one does", async () => {
    const id = uid();
    const p = petrel(b);
    await up(p);
    expect((await subscribe(p, `+/dollar${id}`, 1)).err).toBeUndefined();
    const named = await subscribe(p, `$petrel/dollar${id}`, 1);
    const chk = await peer(b);
    await peerPublish(chk, `$petrel/dollar${id}`, "dollar", 1);
    await peerPublish(chk, `plain/dollar${id}`, "marker", 1);
    await until("the marker", () => p.got.some((m) => m.payload === "marker"), 10_000);
    const got = p.got.map((m) => `${m.topic.split("/")[0]} ${m.payload}`);
    const dollar = got.filter((g) => g.endsWith(" dollar"));
    if (named.err === undefined && named.granted![0] !== 128 && dollar.length === 1) {
      // once, through the filter that names it
      expect(dollar).toEqual(["$petrel dollar"]);
      cell("$ topics", kind, "PASS");
    } else if (dollar.length === 2) {
      // the wildcard matched it too: Petrel delivers both copies as the broker sent them
      expect(dollar).toEqual(["$petrel dollar", "$petrel dollar"]);
      cell("$ topics", kind, "a wildcard at the start matches $ topics too (MQTT-4.7.2-1 says not): Petrel delivers both copies as sent");
    } else {
      // the broker takes no $ topics from clients: nothing of it reaches a wildcard either
      expect(got).toEqual(["plain marker"]);
      cell("$ topics", kind, `takes no $ topic from clients (${named.err !== undefined ? named.err.code : named.granted![0] === 128 ? "SUBACK 0x80" : "nothing delivered"}); wildcards do not match them: PASS for the client`);
    }
  }, 30_000);

  it("overlapping subscriptions: what arrives, and at which QoS (MQTT-3.3.5-1 asks for one copy per subscription or one at the highest)", async () => {
    const t = `it/over/${uid()}`;
    const p = petrel(b);
    await up(p);
    const wide = await subscribe(p, `${t}/#`, 0);
    const narrow = await subscribe(p, `${t}/x`, 2);
    expect(wide.err).toBeUndefined();
    expect(narrow.err).toBeUndefined();
    const chk = await peer(b);
    await peerPublish(chk, `${t}/x`, "both", 1);
    await peerPublish(chk, `${t}/x`, "marker", 1);
    // the marker takes the same way(s) as the message, each behind it (MQTT orders a QoS's
    // messages): once as many copies of both have come, all of them have
    const count = (what: string) => p.got.filter((m) => m.payload === what).length;
    await until("every copy of the marker and the message", () => count("marker") >= 1 && count("both") === count("marker"), 10_000);
    const copies = p.got.filter((m) => m.payload === "both").map((m) => m.qos).sort();
    expect(copies.length).toBeGreaterThanOrEqual(1);
    // every copy is delivered to the program as it came, each at most at the QoS it was sent
    for (const q of copies) expect(q).toBeLessThanOrEqual(1);
    const spec = copies.length === 2 || (copies.length === 1 && copies[0] === 1);
    cell("overlapping subscriptions (QoS 0 wide, 2 narrow, sent at 1)", kind, spec ? `PASS (${copies.length} cop${copies.length === 1 ? "y" : "ies"} at QoS ${copies.join(", ")})` :
      `${copies.length} copy at QoS ${copies.join(", ")}, the lower: Petrel delivers what the broker sends`);
  }, 30_000);

  it("a subscription the broker refuses: the callback hears subscribe-refused, the other filters stand", async () => {
    const t = `it/deny/${uid()}`;
    const p = petrel(b);
    await up(p);
    const ok = await subscribe(p, `${t}/ok`, 1);
    expect(ok.err).toBeUndefined();
    const denied = await subscribe(p, `deny/${t}`, 1);
    // (a broker that closed the connection over it: the next one has the other filter back
    // before this request's SUBACK, requests being answered in order)
    await up(p);
    expect((await subscribe(p, `${t}/ok2`, 1)).err).toBeUndefined();
    const chk = await peer(b);
    await peerPublish(chk, `deny/${t}`, "secret", 1);
    await peerPublish(chk, `${t}/ok`, "marker", 1);
    await until("the marker", () => p.got.some((m) => m.payload === "marker"), 15_000);
    expect(p.got.map((m) => m.payload)).toEqual(["marker"]);
    if (denied.err !== undefined) {
      // the broker closed the connection on the SUBSCRIBE each time: given up, not sent forever
      expect(denied.err.code).toBe("subscribe-refused");
      expect(denied.err.message).toMatch(/closed the connection 3 times in a row right after the SUBSCRIBE to deny\/.*given up; fix:/);
      expect(denied.granted).toEqual([128]);
      expect(p.c.core.subs.count).toBe(2);
      cell("a subscription refused", kind, "closes the connection on a SUBSCRIBE it refuses: Petrel gives the request up after 3 short-lived connections " +
        "(subscribe-refused and 128 to the callback) instead of sending it on every connection");
    } else if (denied.granted![0] === 128) {
      // the callback has the refusal in its granted codes (as at 3.1.1 in MQTT.js), the log says which filter
      expect(denied.err).toBeUndefined();
      expect(p.c.core.subs.count).toBe(2);
      cell("a subscription refused", kind, "PASS (SUBACK 0x80: granted 128 to the callback, the filter forgotten)");
    } else {
      // granted, then filtered: nothing arrives, and nothing tells the client
      expect(denied.granted![0]).toBeLessThan(128);
      cell("a subscription refused", kind, `grants it (QoS ${denied.granted![0]}) and delivers nothing on it: Petrel cannot tell; the docs say so`);
    }
  }, 30_000);

  it("a 5.0 client (Node's default): connects, at 5.0 where the broker speaks it, else at 3.1.1 from the next attempt, and publishes", async () => {
    const t = `it/v5/${uid()}`;
    const chk = await peer(b, t);
    const p = petrel(b, { protocolVersion: 5 });
    await up(p);
    const level = p.c.core.v5!.level;
    expect(await publish(p, t, "hello", 1)).toBeUndefined();
    await until("the message", () => chk.got.length >= 1, 10_000);
    expect(chk.got.map((m) => m.payload)).toEqual(["hello"]);
    if (level === 5) {
      expect(p.errors).toEqual([]);
      cell("5.0 client", kind, "PASS (5.0)");
    } else {
      expect(level).toBe(4);
      expect(p.errors.map((e) => e.code)).toContain("protocol-fallback");
      cell("5.0 client", kind, "speaks 3.1.1 only: Petrel falls back to 3.1.1 on the next attempt, at once (protocol-fallback, once), then works");
    }
  }, 30_000);
});
