import { describe, expect, it } from "vitest";
import { State } from "../firmware/session/client";
import { connackError, explainClose } from "../firmware/session/errors";
import { connect, type MqttClient } from "../firmware/session/mqtt";
import { ScriptedBoard } from "./harness/scripted";

// The MQTT.js-shaped facade over the core, and the error explanations, on the scripted board.

function facade(b: ScriptedBoard, o: object = {}): { c: MqttClient; log: string[] } {
  const c = connect(b.platform, { brokers: [{ host: "a", port: 1883 }], keepalive: 0, reconnectMinMs: 100, ...o });
  if ("code" in c) throw new Error(c.message);
  const log: string[] = [];
  c.on("connect", (ack) => log.push(`connect ${ack.sessionPresent}`));
  c.on("message", (t, p, info) => log.push(`message ${t} ${(p as unknown as Buffer).toString()} q${info.qos} r${info.retain ? 1 : 0} ${info.topic === t}`));
  c.on("offline", () => log.push("offline"));
  c.on("reconnect", () => log.push("reconnect"));
  c.on("close", (r) => log.push(`close ${r}`));
  c.on("error", (e) => log.push(`error ${e.code}`));
  c.on("end", () => log.push("end"));
  return { c, log };
}

describe("MQTT.js-shaped facade", () => {
  it("connects, publishes with and without options, subscribes, receives, ends", () => {
    const b = new ScriptedBoard();
    const { c, log } = facade(b);
    b.connect();
    expect(c.connected).toBe(true);
    const cbs: string[] = [];
    c.publish("t", "a");
    c.publish("t", "b", (e) => cbs.push(`b ${e === undefined}`));
    c.publish("t", "c", { qos: 1, retain: true }, (e) => cbs.push(`c ${e === undefined}`));
    c.subscribe("s/+", { qos: 1 }, (e, g) => cbs.push(`sub ${g}`));
    c.subscribe(["x", "y"], (e, g) => cbs.push(`sub2 ${g}`));
    const only: string[] = [];
    c.subscribe("h", { handler: (t) => only.push(t) });
    expect(b.take()).toEqual(["publish q0 d0 r0 t a", "publish q0 d0 r0 t b", "publish q1 d0 r1 id=1 t c",
      "subscribe id=2 s/+:1", "subscribe id=3 x:0,y:0", "subscribe id=4 h:0"]);
    b.send({ cmd: "puback", messageId: 1 }, { cmd: "suback", messageId: 2, granted: [1] }, { cmd: "suback", messageId: 3, granted: [0, 128] });
    b.send({ cmd: "publish", topic: "s/1", payload: "hi", qos: 0, retain: true, dup: false },
      { cmd: "publish", topic: "h", payload: "", qos: 0, retain: false, dup: false });
    expect(cbs).toEqual(["b true", "c true", "sub 1", "sub2 0,128"]);
    expect(only).toEqual(["h"]);
    c.unsubscribe("s/+", (e) => cbs.push(`unsub ${e === undefined}`));
    c.unsubscribe(["x"]);
    b.send({ cmd: "unsuback", messageId: 5 });
    expect(cbs).toContain("unsub true");
    let ended = 0;
    c.end(() => ended++);
    b.run();
    expect(ended).toBe(1);
    c.end(() => ended++); // already stopped: called at once
    expect(ended).toBe(2);
    expect(c.connected).toBe(false);
    expect(log).toEqual(["connect false", "message s/1 hi q0 r1 true", "message h  q0 r0 true", "offline", "close ", "end"]);
    c.reconnect();
    b.connect();
    expect(log.slice(-2)).toEqual(["reconnect", "connect false"]);
    expect(c.reconnecting).toBe(false);
  });

  it("errors go to the callback when there is one, else to 'error' listeners", () => {
    const b = new ScriptedBoard();
    const { c, log } = facade(b);
    const got: string[] = [];
    c.publish("bad/#", "x", { qos: 1 }, (e) => got.push(e?.code ?? ""));
    c.publish("bad/#", "x");
    c.subscribe("a/#/b", (e) => got.push(e?.code ?? ""));
    c.subscribe("a/#/b");
    c.unsubscribe("", (e) => got.push(e?.code ?? ""));
    c.unsubscribe("");
    expect(got).toEqual(["wildcard-in-topic", "invalid-filter", "empty-topic"]);
    expect(log).toEqual(["error wildcard-in-topic", "error invalid-filter", "error empty-topic"]);
  });

  it("listeners can be removed; emit says whether anyone listened", () => {
    const b = new ScriptedBoard();
    const { c } = facade(b);
    const seen: number[] = [];
    const f = () => seen.push(1);
    c.on("offline", f);
    c.removeListener("offline", f);
    c.removeListener("nothing", f);
    expect(c.emit("offline", undefined, undefined, undefined)).toBe(true); // the facade() listener remains
    expect(seen).toEqual([]);
    expect(c.emit("unknown", undefined, undefined, undefined)).toBe(false);
  });

  it("a wrong option is an error value, nothing started", () => {
    const b = new ScriptedBoard();
    const r = connect(b.platform, { brokers: [{ host: "a", port: 1883 }], password: "x" });
    expect("code" in r && r.code).toBe("bad-option");
    b.run(10000);
    expect(b.take()).toEqual([]);
  });
});

describe("error explanations", () => {
  it("every close reason and CONNACK code has a sentence, and those users can fix name the fix", () => {
    const reasons = ["refused", "reset", "timeout", "not-found", "no-network", "unreachable", "tls", "tls-expired",
      "tls-name-mismatch", "tls-untrusted", "tls-client-cert-required", "connect-timeout", "ping-timeout",
      "malformed-packet", "protocol-error", "primary-retry"];
    const texts = new Set(reasons.map(explainClose));
    expect(texts.size).toBe(reasons.length);
    for (const r of ["refused", "timeout", "not-found", "unreachable", "tls", "tls-expired", "tls-name-mismatch", "tls-untrusted",
      "tls-client-cert-required", "connect-timeout"]) expect(explainClose(r)).toMatch(/fix: /);
    expect(explainClose("")).toBe("closed by this client");
    expect(explainClose("weird")).toBe("the connection closed (weird)");
    for (let rc = 1; rc <= 5; rc++) expect(connackError(rc).message).toMatch(new RegExp(`return code ${rc}.*fix: `));
    expect(connackError(6).code).toBe("connack-refused");
  });
});

describe("session corners", () => {
  it("a resolver that never answers times the attempt out", () => {
    const b = new ScriptedBoard();
    b.resolverSilent = true;
    const c = b.client({ connectTimeoutMs: 3000 });
    c.start();
    b.run(2999);
    expect(c.state).toBe(State.Resolving);
    b.run(1);
    expect(c.state).toBe(State.Waiting);
    expect(c.lastReason).toBe("timeout");
  });

  it("on a fallback broker both the ping and the primary retry are timed", () => {
    const b = new ScriptedBoard();
    const c = b.client({ brokers: [{ host: "a", port: 1 }, { host: "b", port: 2 }], primaryRetry: 20, keepalive: 5, pingTimeoutMs: 30000 });
    c.start();
    b.run();
    b.drop("refused");
    b.run(1000);
    b.connect();
    b.run(5000);
    expect(b.take()).toEqual(["pingreq"]);
    b.run(14999); // the ping is still unanswered; the primary retry comes first
    expect(b.take()).toEqual([]);
    b.run(1);
    expect(b.take()).toEqual(["disconnect", "close"]);
  });

  it("a stored message longer than 127 bytes (two-byte remaining length) is resumed", () => {
    const b = new ScriptedBoard();
    const c = b.client();
    const long = "x".repeat(200);
    expect(c.publish("t", long, 1, false, undefined)).toBeUndefined();
    const again = b.client();
    expect(again.outbox.count).toBe(1);
    expect(again.outbox.sizes[0]).toBe(c.outbox.sizes[0]);
  });

  it("acknowledging the first of several requests keeps the rest in order", () => {
    const b = new ScriptedBoard();
    const c = b.client();
    c.start();
    b.connect();
    const got: string[] = [];
    for (const f of ["a", "b", "c"]) expect(c.subscribe([f], [0], 1, undefined, () => got.push(f))).toBeUndefined();
    b.send({ cmd: "suback", messageId: 1, granted: [0] }, { cmd: "suback", messageId: 3, granted: [0] }, { cmd: "suback", messageId: 2, granted: [0] });
    expect(got).toEqual(["a", "c", "b"]);
  });
});

describe("outbox records that are not a stored PUBLISH", () => {
  it("are removed at start-up, whatever is wrong with them, and counted", () => {
    const b = new ScriptedBoard();
    const put = (key: string, bytes: number[]) => b.storage.write(key, Buffer.from(bytes) as never, bytes.length);
    put("mqo1", [0x32, 0x06, 0, 1, 0x74, 0, 1, 0x61]); // good: QoS 1, "t", id 1, "a"
    put("mqo2", [0x30, 0x06, 0, 1, 0x74, 0, 1, 0x61]); // QoS 0: never stored
    put("mqo3", [0x36, 0x06, 0, 1, 0x74, 0, 1, 0x61]); // QoS 3
    put("mqo4", [0x40, 0x02, 0, 1, 0, 0, 0]); // PUBACK
    put("mqo5", [0x32, 0x09, 0, 1, 0x74, 0, 1, 0x61]); // length disagrees with the record
    put("mqo6", [0x32, 0x06, 0, 1, 0x74, 0, 0, 0x61]); // packet id 0
    put("mqo7", [0x32, 0x06, 0, 9, 0x74, 0, 1, 0x61]); // topic runs past the end
    put("mqo8", [0x32, 0x80, 0x80, 0x80, 0x80, 0x01, 0]); // five-byte remaining length
    put("mqo9", [0x32]); // too short
    put("mqo1234567890", [0x32]); // not a record number: left alone
    put("mqo", [0x32]); // no number: left alone
    const c = b.client();
    expect(c.outbox.count).toBe(1);
    expect(c.outbox.ids[0]).toBe(1);
    expect(b.storage.keys()).toEqual(["mqo", "mqo1", "mqo1234567890"]);
  });
});

describe("re-entrancy and storage trouble", () => {
  it("end() from inside a message handler stops at once: the QoS 1 PUBACK is not sent (the broker resends)", () => {
    const b = new ScriptedBoard();
    let c: ReturnType<ScriptedBoard["client"]> | undefined;
    c = b.client({}, { onMessage: () => c?.end() });
    c.start();
    b.connect();
    b.send({ cmd: "publish", topic: "x", payload: "1", qos: 1, retain: false, dup: false, messageId: 4 },
      { cmd: "publish", topic: "x", payload: "2", qos: 0, retain: false, dup: false });
    expect(b.take()).toEqual(["disconnect", "close"]);
    b.run();
    expect(c.state).toBe(State.Stopped);
    expect(c.stats.delivered).toBe(1);
  });

  it("end() from inside onConnect: nothing queued is sent; start() twice is one start; end() while closing finishes", () => {
    const b = new ScriptedBoard();
    let c: ReturnType<ScriptedBoard["client"]> | undefined;
    c = b.client({}, { onConnect: () => c?.end() });
    expect(c.publish("t", "queued", 1, false, undefined)).toBeUndefined();
    c.start();
    c.start();
    expect(b.connect()).toEqual(["open a:1883", "connect petrel-c0ffee clean=0 ka=0", "disconnect", "close"]);
    c.end(); // already closing
    b.run();
    expect(c.state).toBe(State.Stopped);
    expect(c.outbox.count).toBe(1);
  });

  it("publish from inside a done callback goes out in order", () => {
    const b = new ScriptedBoard();
    const c = b.client();
    c.start();
    b.connect();
    expect(c.publish("t", "1", 1, false, () => { c.publish("t", "3", 1, false, undefined); })).toBeUndefined();
    expect(c.publish("t", "2", 1, false, undefined)).toBeUndefined();
    b.take();
    b.send({ cmd: "puback", messageId: 1 });
    expect(b.take()).toEqual(["publish q1 d0 r0 id=3 t 3"]);
    expect(c.outbox.count).toBe(2);
  });

  it("an incoming QoS 2 id or a release marker that storage refuses is reported, and the session goes on", () => {
    const b = new ScriptedBoard();
    const c = b.client();
    c.start();
    b.connect();
    expect(c.publish("t", "q2", 2, false, undefined)).toBeUndefined();
    b.take();
    b.storage.failWrites = 2;
    b.send({ cmd: "publish", topic: "x", payload: "in", qos: 2, retain: false, dup: false, messageId: 8 });
    expect(c.lastError?.code).toBe("storage-failed");
    expect(c.received.has(8)).toBe(true);
    b.send({ cmd: "pubrec", messageId: 1 });
    b.storage.failWrites = 0;
    expect(b.take()).toEqual(["pubrec 8", "pubrel 1"]);
    b.send({ cmd: "pubcomp", messageId: 1 });
    expect(c.outbox.count).toBe(0);
  });

  it("SUBACK answering an UNSUBSCRIBE is a violation; several refused filters are named together", () => {
    const b = new ScriptedBoard();
    const c = b.client();
    c.start();
    b.connect();
    expect(c.subscribe(["a", "b", "c"], [0, 0, 0], 3, undefined, undefined)).toBeUndefined();
    b.send({ cmd: "suback", messageId: 1, granted: [128, 0, 128] });
    expect(c.lastError?.message).toMatch(/subscription to a, c \(SUBACK 0x80\)/);
    expect(c.unsubscribe(["b"], 1, undefined)).toBeUndefined();
    b.send({ cmd: "suback", messageId: 2, granted: [0] });
    expect(c.lastError?.message).toMatch(/SUBACK answers a request of the other kind/);
  });

  it("the offline queue is a ring: it wraps and keeps the newest", () => {
    const b = new ScriptedBoard();
    const c = b.client({ offlineQueue: 2 });
    for (let i = 1; i <= 7; i++) expect(c.publish("t", `${i}`, 0, false, undefined)).toBeUndefined();
    expect(c.stats.dropped).toBe(5);
    c.start();
    expect(b.connect().filter((l) => l.startsWith("publish"))).toEqual(["publish q0 d0 r0 t 6", "publish q0 d0 r0 t 7"]);
  });

  it("an oversize PUBLISH whose topic did not fit is reported without it; a TLS broker is dialled as such", () => {
    const b = new ScriptedBoard();
    const c = b.client({ maxPacket: 64, brokers: [{ host: "a", port: 8883, tls: true }] });
    c.start();
    expect(b.connect()).toEqual(["open a:8883 tls", "connect petrel-c0ffee clean=0 ka=0"]);
    b.send({ cmd: "publish", topic: "t".repeat(100), payload: "x", qos: 0, retain: false, dup: false });
    expect(c.lastError?.message).toMatch(/^a 1-byte message is larger than maxPacket/);
  });
});
