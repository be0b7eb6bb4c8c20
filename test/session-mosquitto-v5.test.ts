import mqtt from "mqtt";
import { afterEach, describe, expect, it } from "vitest";
import type { PetrelError } from "../firmware/port/log";
import type { MqttClient } from "../firmware/session/mqtt";
import type { MessageProps } from "../firmware/session/session5";
import { startFaultProxy, type FaultProxy } from "../host-sim/fault-proxy";
import { startBroker, type Broker, type BrokerOptions } from "../host-sim/mosquitto";
import { connect, type NodeClientOptions } from "../host-sim/node/client";
import { ended, until } from "./harness/wait";

// The session at MQTT 5.0 (protocolVersion 5) against a real mosquitto 2.0, which speaks 5.0,
// with MQTT.js at protocol 5 as the independent peer that checks what the broker delivers. Each
// broker has its own config and an ephemeral loopback port; every wait is bounded; nothing
// asserts on elapsed time.

const HOST = "127.0.0.1";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function broker(opts: BrokerOptions = {}): Promise<Broker> {
  const b = await startBroker(opts);
  cleanups.push(() => b.close());
  return b;
}

let ids = 0;
interface Petrel {
  c: MqttClient;
  errors: PetrelError[];
}
/** A Petrel client at 5.0 on Node (fast reconnects), ended after the test. */
function petrel(b: Broker, o: Partial<NodeClientOptions> = {}): Petrel {
  ids++;
  const c = connect({
    brokers: [{ host: HOST, port: b.port }], clientId: `petrel-v5-${process.pid}-${ids}`, clean: true, keepalive: 30,
    reconnectMinMs: 50, reconnectMaxMs: 500, protocolVersion: 5, ...o,
  });
  const p: Petrel = { c, errors: [] };
  c.on("error", (e) => p.errors.push(e));
  cleanups.push(() => ended(c));
  return p;
}

/**
 * MQTT.js at protocol 5, subscribed to `filter` at QoS 2: every payload it receives, in order
 * (with `topics`, as "topic payload").
 */
async function checker(b: Broker, filter: string, topics = false): Promise<string[]> {
  const got: string[] = [];
  const m = mqtt.connect(`mqtt://${HOST}:${b.port}`, { protocolVersion: 5, clientId: `checker-${process.pid}-${++ids}`, clean: true, reconnectPeriod: 0 });
  cleanups.push(() => new Promise<void>((resolve) => m.end(true, {}, () => resolve())));
  m.on("message", (t, payload) => got.push(topics ? `${t} ${payload.toString()}` : payload.toString()));
  await new Promise<void>((resolve, reject) => {
    m.once("connect", () => m.subscribe(filter, { qos: 2 }, (err) => (err ? reject(err) : resolve())));
    m.once("error", reject);
  });
  return got;
}

function publish(p: Petrel, topic: string, payload: string, qos: 0 | 1 | 2, retain = false): Promise<PetrelError | undefined> {
  return new Promise((resolve) => p.c.publish(topic, payload, { qos, retain }, (err) => resolve(err ?? undefined)));
}

describe("Petrel at MQTT 5.0 against mosquitto 2.0", () => {
  it("1,000 QoS 2 messages with the client's window at 100 and mosquitto's max_inflight_messages 20: the broker's Receive Maximum holds the client to 20, every message arrives once", async () => {
    // max_inflight_messages 20 is mosquitto's own default, stated in the config (host-sim/mosquitto.ts)
    const b = await broker({ maxInflight: 20 });
    const topic = `petrel/v5/window/${process.pid}`;
    const got = await checker(b, topic);
    const p = petrel(b, { maxInflight: 100, outboxMessages: 1000, outboxBytes: 200_000 });
    await until("CONNACK", () => p.c.connected, 5000);
    const core = p.c.core;
    expect(core.v5?.level).toBe(5);
    expect(core.v5?.recvMax).toBe(20);
    let done = 0;
    const failed: string[] = [];
    for (let i = 0; i < 1000; i++) {
      const e = core.publish(topic, `m${i}`, 2, false, (err) => {
        done++;
        if (err) failed.push(`${i}: ${err.code}`);
      });
      expect(e).toBeUndefined();
    }
    // every publish ran before any acknowledgement could arrive: what went out is what the window allowed
    let inflight = 0;
    for (let k = 0; k < core.outbox.count; k++) if (core.outbox.phaseAt(k) !== 0) inflight++;
    expect(inflight).toBe(20);
    await until("1,000 PUBCOMPs", () => done === 1000, 60_000);
    await until("1,000 messages at the checker", () => got.length >= 1000, 30_000);
    expect(failed).toEqual([]);
    expect(new Set(got).size).toBe(1000);
    expect(got.length).toBe(1000);
    expect(p.errors).toEqual([]);
  }, 120_000);

  it("what the broker's CONNACK says is kept: Server Keep Alive (max_keepalive), Maximum QoS 1, Retain Available 0 refuse locally with the fix", async () => {
    const b = await broker({ extra: ["max_keepalive 10", "max_qos 1", "retain_available false"] });
    const p = petrel(b, { keepalive: 60 });
    await until("CONNACK", () => p.c.connected, 5000);
    const v5 = p.c.core.v5!;
    expect([v5.keepalive, v5.maxQos, v5.retain]).toEqual([10, 1, 0]);
    const q2 = await publish(p, "petrel/v5/q", "x", 2);
    expect(q2?.code).toBe("qos-not-supported");
    expect(q2?.message).toMatch(/QoS 1 at most .*fix: publish at QoS 1/);
    const ret = await publish(p, "petrel/v5/r", "x", 1, true);
    expect(ret?.code).toBe("retain-not-supported");
    expect(await publish(p, "petrel/v5/q", "x", 1)).toBeUndefined();
  }, 30_000);

  it("a wrong password at 5.0: CONNACK's reason code becomes an error that names it and the fix", async () => {
    const b = await broker({ users: { alice: "right" } });
    const p = petrel(b, { username: "alice", password: "wrong" });
    await until("the refusal", () => p.errors.length > 0, 5000);
    const e = p.errors[0];
    console.log(`[observed] mosquitto at 5.0 on a wrong password: ${e.code}: ${e.message}`);
    expect(e.code).toBe("not-authorized");
    expect(e.message).toMatch(/reason code 0x87 in CONNACK/);
    expect(e.message).toMatch(/fix: /);
    expect(p.c.core.v5?.reason).toBe(0x87);
  }, 30_000);

  it("a publish the ACL forbids: mosquitto answers PUBACK with a reason code at 5.0, and the message's callback hears it (3.1.1 could only drop it silently)", async () => {
    const fs = await import("node:fs");
    const os = await import("node:os");
    const path = await import("node:path");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-acl-"));
    cleanups.push(async () => fs.rmSync(dir, { recursive: true, force: true }));
    const acl = path.join(dir, "acl");
    fs.writeFileSync(acl, "user alice\ntopic readwrite petrel/v5/ok/#\n");
    const b = await broker({ users: { alice: "pw" }, extra: [`acl_file ${acl}`] });
    const p = petrel(b, { username: "alice", password: "pw" });
    await until("CONNACK", () => p.c.connected, 5000);
    expect(await publish(p, "petrel/v5/ok/a", "fine", 1)).toBeUndefined();
    const e = await publish(p, "petrel/v5/denied", "no", 1);
    console.log(`[observed] mosquitto at 5.0 on a publish its ACL denies: ${e ? `${e.code}: ${e.message}` : "PUBACK 0 (success)"}`);
    expect(e?.code).toBe("not-authorized");
    expect(p.c.core.outbox.count).toBe(0);
  }, 30_000);

  /** Bytes a client at 5.0 with `aliases` topic aliases sends through a proxy publishing `n` QoS 1 messages to each topic in turn. */
  async function sent(b: Broker, aliases: number, topics: string[], n: number): Promise<{ bytes: number; got: string[] }> {
    const got = await checker(b, "petrel/v5/alias/#", true);
    const proxy: FaultProxy = await startFaultProxy({ target: { host: HOST, port: b.port } });
    cleanups.push(() => proxy.close());
    const p = petrel(b, { brokers: [{ host: HOST, port: proxy.port }], topicAliases: aliases });
    await until("CONNACK", () => p.c.connected, 5000);
    const before = proxy.bytes.toBroker;
    for (let i = 0; i < n; i++) {
      for (const t of topics) expect(await publish(p, t, `m${i}`, 1)).toBeUndefined();
    }
    await until(`${n * topics.length} messages at the checker`, () => got.length >= n * topics.length, 10_000);
    expect(p.errors).toEqual([]);
    return { bytes: proxy.bytes.toBroker - before, got: [...got] };
  }

  it("topic aliases: a topic's first PUBLISH sets up its alias, the next ones go without the topic's bytes; MQTT.js gets every message on its topic", async () => {
    const b = await broker();
    const topic = "petrel/v5/alias/petrel-00000000adde/telemetry";
    const plain = await sent(b, 0, [topic], 20);
    const aliased = await sent(b, 4, [topic], 20);
    const want = Array.from({ length: 20 }, (_, i) => `${topic} m${i}`);
    expect(plain.got).toEqual(want);
    expect(aliased.got).toEqual(want);
    // each PUBLISH after the first leaves out the topic (its length) and adds the alias (3 bytes);
    // the first carries both
    const saved = plain.bytes - aliased.bytes;
    console.log(`[observed] 20 QoS 1 messages to a ${topic.length}-byte topic: ${plain.bytes} bytes to the broker at 5.0 without an alias, ${aliased.bytes} with one`);
    expect(saved).toBe(19 * topic.length - 20 * 3);
  }, 30_000);

  it("topic aliases: never beyond the broker's Topic Alias Maximum (max_topic_alias 1): one topic aliased, the others sent in full, all delivered on their topics", async () => {
    const b = await broker({ extra: ["max_topic_alias 1"] });
    const topics = ["petrel/v5/alias/a", "petrel/v5/alias/bb", "petrel/v5/alias/ccc"];
    const plain = await sent(b, 0, topics, 5);
    const aliased = await sent(b, 8, topics, 5);
    const want = Array.from({ length: 5 }, (_, i) => topics.map((t) => `${t} m${i}`)).flat();
    expect(aliased.got).toEqual(want);
    // only the first topic is aliased: its 4 later messages save its length less 3 each; its first costs 3
    expect(plain.bytes - aliased.bytes).toBe(4 * (topics[0].length - 3) - 3);
  }, 30_000);

  it("a message's properties reach the program (user properties in order, content type, payload format, message expiry, response topic, correlation data), and a publish's properties reach MQTT.js", async () => {
    const b = await broker();
    const p = petrel(b);
    await until("CONNACK", () => p.c.connected, 5000);
    const topic = `petrel/v5/props/${process.pid}`;
    const got: { payload: string; props: unknown }[] = [];
    p.c.on("message", (_t, payload, packet) => got.push({ payload: payload.toString(), props: packet.properties }));
    await new Promise<void>((resolve, reject) => p.c.subscribe(topic, { qos: 1 }, (e) => (e ? reject(e) : resolve())));
    const m = mqtt.connect(`mqtt://${HOST}:${b.port}`, { protocolVersion: 5, clientId: `props-${process.pid}`, clean: true, reconnectPeriod: 0 });
    cleanups.push(() => new Promise<void>((resolve) => m.end(true, {}, () => resolve())));
    const back: { topic: string; props: mqtt.IPublishPacket["properties"] }[] = [];
    m.on("message", (t, _payload, packet) => back.push({ topic: t, props: packet.properties }));
    await new Promise<void>((resolve) => m.once("connect", () => m.subscribe(`${topic}/back`, { qos: 1 }, () => resolve())));
    m.publish(topic, "hello", { qos: 1, properties: { userProperties: { a: "1", b: "2" }, contentType: "text/plain", payloadFormatIndicator: true,
      messageExpiryInterval: 300, responseTopic: `${topic}/back`, correlationData: Buffer.from([1, 2, 0xff]) } });
    await until("the message at Petrel", () => got.length > 0, 5000);
    const props = got[0].props as MessageProps & { userProperties: string[]; responseTopic: string; messageExpiry: number };
    expect(props.userProperties).toEqual(["a", "1", "b", "2"]);
    expect([props.contentType, props.payloadFormat, props.responseTopic]).toEqual(["text/plain", 1, `${topic}/back`]);
    // what the message had left at the broker: at most what it was sent with
    expect(props.messageExpiry).toBeGreaterThan(0);
    expect(props.messageExpiry).toBeLessThanOrEqual(300);
    expect(Buffer.from(props.correlationData as Buffer).toString("hex")).toBe("0102ff");
    // the answer the request asks for, with the request's correlation data and a user property
    expect(await new Promise((resolve) => p.c.publish(props.responseTopic, "answer", { qos: 1, properties: { correlationData: props.correlationData,
      userProperties: ["from", "petrel"], contentType: "text/plain" } }, (e) => resolve(e)))).toBeUndefined();
    await until("the answer at MQTT.js", () => back.length > 0, 5000);
    expect(back[0].props?.correlationData?.toString("hex")).toBe("0102ff");
    expect(back[0].props?.userProperties).toEqual({ from: "petrel" });
    expect(back[0].props?.contentType).toBe("text/plain");
  }, 30_000);
  it("on Node the protocol defaults to 5.0: a client given no protocolVersion sends properties MQTT.js receives", async () => {
    const b = await broker();
    const topic = `petrel/v5/default/${process.pid}`;
    const m = mqtt.connect(`mqtt://${HOST}:${b.port}`, { protocolVersion: 5, clientId: `default-${process.pid}`, clean: true, reconnectPeriod: 0 });
    cleanups.push(() => new Promise<void>((resolve) => m.end(true, {}, () => resolve())));
    const got: { payload: string; props: mqtt.IPublishPacket["properties"] }[] = [];
    m.on("message", (_t, payload, packet) => got.push({ payload: payload.toString(), props: packet.properties }));
    await new Promise<void>((resolve) => m.once("connect", () => m.subscribe(topic, { qos: 1 }, () => resolve())));
    const p = petrel(b, { protocolVersion: undefined });
    await until("CONNACK", () => p.c.connected, 5000);
    expect(await new Promise((resolve) => p.c.publish(topic, "v5", { qos: 1, properties: { userProperties: ["level", "5"] } }, (e) => resolve(e)))).toBeUndefined();
    await until("the message at MQTT.js", () => got.length > 0, 5000);
    expect(got[0].props?.userProperties).toEqual({ level: "5" });
  }, 30_000);

  it("Subscription Identifiers: each message names the subscriptions it matched; No Local keeps the client's own messages from coming back", async () => {
    const b = await broker();
    const p = petrel(b);
    await until("CONNACK", () => p.c.connected, 5000);
    const topic = `petrel/v5/sid/${process.pid}`;
    const got: { topic: string; ids: number[] | undefined }[] = [];
    p.c.on("message", (t, _payload, packet) => got.push({ topic: t, ids: packet.properties?.subscriptionIds }));
    const sub = (f: string, o: object) => new Promise<unknown>((resolve) => p.c.subscribe(f, o, (e, g) => resolve(e ?? g)));
    expect(await sub(`${topic}/a`, { qos: 1, properties: { subscriptionIdentifier: 7 } })).toEqual([1]);
    expect(await sub(`${topic}/+`, { qos: 1, properties: { subscriptionIdentifier: 300000 } })).toEqual([1]);
    expect(await sub(`${topic}/own`, { qos: 1, nl: true })).toEqual([1]);
    // a bad identifier is refused here, with the fix, and nothing is sent
    const bad = (await sub(`${topic}/x`, { properties: { subscriptionIdentifier: 0 } })) as PetrelError;
    expect(bad.code).toBe("bad-option");
    expect(bad.message).toMatch(/fix:/);
    const m = mqtt.connect(`mqtt://${HOST}:${b.port}`, { protocolVersion: 5, clientId: `sid-${process.pid}`, clean: true, reconnectPeriod: 0 });
    cleanups.push(() => new Promise<void>((resolve) => m.end(true, {}, () => resolve())));
    const peer: string[] = [];
    m.on("message", (t) => peer.push(t));
    await new Promise<void>((resolve) => m.once("connect", () => m.subscribe(`${topic}/own`, { qos: 1 }, () => resolve())));
    m.publish(`${topic}/a`, "1", { qos: 1 });
    m.publish(`${topic}/b`, "2", { qos: 1 });
    // Petrel's own message on a No Local subscription: MQTT.js gets it, Petrel does not
    await publish(p, `${topic}/own`, "3", 1);
    await until("MQTT.js has the own message", () => peer.length > 0, 5000);
    await until("both messages at Petrel", () => got.some((g) => g.topic.endsWith("/b")) && got.some((g) => g.topic.endsWith("/a")), 5000);
    const ids = (end: string) => got.filter((g) => g.topic.endsWith(end)).flatMap((g) => g.ids ?? []).sort((x, y) => x - y);
    // /a matches both subscriptions (one copy with both ids, or a copy per subscription)
    expect(ids("/a")).toEqual([7, 300000]);
    expect(ids("/b")).toEqual([300000]);
    // own: /+ matches it too (without No Local), so it may come back on that subscription's id alone
    expect(got.filter((g) => g.topic.endsWith("/own")).every((g) => (g.ids ?? []).join() === "300000")).toBe(true);
    expect(p.errors).toEqual([]);
  }, 30_000);

  for (const level of [5, 4]) {
    it(`end with reason code 4 at ${level === 5 ? "5.0 (DISCONNECT 0x04)" : "3.1.1 (no DISCONNECT)"}: the broker publishes the will; a plain end does not`, async () => {
      const b = await broker();
      const topic = `petrel/v5/will${level}/${process.pid}`;
      const wills = await checker(b, `${topic}/#`, true);
      const plain = petrel(b, { protocolVersion: level, will: { topic: `${topic}/plain`, payload: "gone", qos: 1, retain: false } });
      const asked = petrel(b, { protocolVersion: level, will: { topic: `${topic}/asked`, payload: "gone", qos: 1, retain: false } });
      await until("both connected", () => plain.c.connected && asked.c.connected, 5000);
      await new Promise<void>((resolve) => plain.c.end(() => resolve()));
      await new Promise<void>((resolve) => asked.c.end({ reasonCode: 4 }, () => resolve()));
      await until("the asked-for will", () => wills.length > 0, 5000);
      // a marker after it: the broker has handled both ends by the time it arrives
      const q = petrel(b, { protocolVersion: 5 });
      await until("marker client", () => q.c.connected, 5000);
      await publish(q, `${topic}/marker`, "m", 1);
      await until("the marker", () => wills.some((w) => w.startsWith(`${topic}/marker`)), 5000);
      expect(wills).toEqual([`${topic}/asked gone`, `${topic}/marker m`]);
    }, 30_000);
  }
});
