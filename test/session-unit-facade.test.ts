import { describe, expect, it } from "vitest";
import { State } from "../firmware/session/client";
import { connackError, explainClose } from "../firmware/session/errors";
import { connect, type MqttClient } from "../firmware/session/mqtt";
import { FakeBroker, ScriptedBoard, STABLE_MS } from "./harness/scripted";

const ok = (e: unknown) => expect(e).toBeUndefined();

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
  it("subscribe takes a QoS per filter, as MQTT.js does: a list of { topic, qos } or an object of filter → QoS", () => {
    const b = new ScriptedBoard();
    const { c } = facade(b);
    const granted: string[] = [];
    b.connect();
    c.subscribe({ "b/+": 1, "a/#": 2, "c": { qos: 1 }, "d": {} }, { qos: 0 }, (e, g) => granted.push(`${e === undefined} ${g}`));
    c.subscribe([{ topic: "x", qos: 2 }, "y", { topic: "z" }], { qos: 1 });
    expect(b.take()).toEqual(["subscribe id=1 a/#:2,b/+:1,c:1,d:0", "subscribe id=2 x:2,y:1,z:1"]);
    b.send({ cmd: "suback", messageId: 1, granted: [2, 1, 1, 0] });
    expect(granted).toEqual(["true 2,1,1,0"]);
  });

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

  it("a message the broker refuses by closing the connection: publish-refused to its callback, else 'error'; held(), retryHeld(), dropHeld()", () => {
    const b = new ScriptedBoard();
    const { c, log } = facade(b, { reconnectMinMs: 1000 });
    const nats = new FakeBroker(b, (l) => l.startsWith("publish q2"));
    nats.run(0);
    const cbs: string[] = [];
    c.publish("q2/a", "with a callback", { qos: 2 }, (e) => cbs.push(`a ${e?.code}`));
    nats.run(10000);
    c.publish("q2/b", "without", { qos: 2 });
    c.publish("q1/c", "behind", { qos: 1 }, (e) => cbs.push(`c ${e === undefined ? "ok" : e.code}`));
    // the backoff goes on growing until a connection works: 8, 16, 32 s, then 60 s
    nats.run(120000);
    expect(nats.gaps()).toEqual([2000, 4000, 8000, 16000, 32000, 60000]);
    expect(cbs).toEqual(["a publish-refused", "c ok"]);
    expect(log.filter((l) => l.startsWith("error"))).toEqual(["error publish-refused"]);
    expect(c.held().map((m) => `${m.topic} q${m.qos} ${String(m.payload)}`)).toEqual(["q2/a q2 with a callback", "q2/b q2 without"]);
    c.dropHeld(1, (e) => cbs.push(`drop ${e === undefined ? "ok" : e.code}`));
    c.dropHeld(7, (e) => cbs.push(`drop ${e === undefined ? "ok" : e.code}`));
    c.retryHeld(3, (e) => cbs.push(`retry ${e === undefined ? "ok" : e.code}`));
    c.dropHeld(9);
    expect(cbs.slice(2)).toEqual(["drop ok", "drop not-held", "retry not-held"]);
    expect(log.filter((l) => l.startsWith("error"))).toEqual(["error publish-refused", "error not-held"]);
    expect(c.held().map((m) => `${m.n} ${m.topic}`)).toEqual(["2 q2/b"]);
    c.retryHeld(2, (e) => cbs.push(`retry ${e === undefined ? "ok" : e.code}`));
    expect(c.held()).toEqual([]);
    expect(c.core.outbox.count).toBe(1); // back in the outbox: refused again, 3 times, then held again
    nats.run(200000);
    expect(cbs.slice(5)).toEqual(["retry publish-refused"]);
    expect(c.held().map((m) => m.topic)).toEqual(["q2/b"]);
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
    expect(c.state).toBe(State.Backoff);
    expect(c.lastReason).toBe("timeout");
  });

  it("on a fallback broker both the ping and the primary retry are timed", () => {
    const b = new ScriptedBoard();
    const c = b.client({ brokers: [{ host: "a", port: 1 }, { host: "b", port: 2 }], primaryRetry: 12, keepalive: 10, pingTimeoutMs: 10000 });
    c.start();
    b.run();
    b.drop("refused");
    b.run(1000);
    b.connect();
    b.run(10000);
    expect(b.take()).toEqual(["pingreq"]);
    b.run(1999); // the ping is still unanswered; the primary retry comes first
    expect(b.take()).toEqual([]);
    b.run(1);
    expect(b.take()).toEqual(["disconnect", "close"]);
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

  it("an oversize PUBLISH whose topic did not fit is reported without it; a TLS broker is dialled as such", () => {
    const b = new ScriptedBoard();
    const c = b.client({ maxPacket: 64, brokers: [{ host: "a", port: 8883, tls: true }] });
    c.start();
    expect(b.connect()).toEqual(["open a:8883 tls", "connect petrel-c0ffee clean=0 ka=0"]);
    b.send({ cmd: "publish", topic: "t".repeat(100), payload: "x", qos: 0, retain: false, dup: false });
    expect(c.lastError?.message).toMatch(/^a 1-byte message is larger than maxPacket/);
  });
});

describe("regressions from review", () => {
  it("publish, subscribe and QoS 0 from onOffline wait for the next connection", () => {
    const b = new ScriptedBoard();
    let c: ReturnType<ScriptedBoard["client"]> | undefined;
    const zero: string[] = [];
    c = b.client({}, {
      onOffline: () => {
        c?.publish("status", "offline", 1, false, undefined);
        c?.publish("status", "zero", 0, false, (e) => zero.push(e?.code ?? "sent"));
        c?.subscribe(["s"], [1], 1, undefined, undefined);
      },
    });
    c.start();
    b.connect();
    b.run(STABLE_MS); // a working connection: it outlived stableMs
    b.drop("reset");
    expect(b.take()).toEqual([]);
    expect(zero).toEqual([]);
    b.run(1000);
    expect(b.connect(true)).toEqual(["open a:1883", "connect petrel-c0ffee clean=0 ka=0", "subscribe id=2 s:1",
      "publish q1 d0 r0 id=1 status offline", "publish q0 d0 r0 status zero"]);
    expect(zero).toEqual(["sent"]);
  });

  it("a refused subscribe does not corrupt the outbox packet waiting in the buffer", () => {
    const b = new ScriptedBoard();
    const c = b.client({ maxInflight: 1 });
    c.start();
    b.connect();
    ok(c.publish("t", "A", 1, false, undefined));
    ok(c.publish("t", "B", 1, false, undefined));
    expect(c.subscribe(["x\u0000yyyyyyyyyyyy"], [0], 1, undefined, undefined)?.code).toBe("null-character");
    b.take();
    b.send({ cmd: "puback", messageId: 1 });
    expect(b.take()).toEqual(["publish q1 d0 r0 id=2 t B"]);
  });

  it("end() then reconnect() while the close is under way: the end callback runs once, the client reconnects", () => {
    const b = new ScriptedBoard();
    const r = connect(b.platform, { brokers: [{ host: "a", port: 1883 }], keepalive: 0, reconnectMinMs: 100 });
    if ("code" in r) throw new Error(r.message);
    const events: string[] = [];
    r.on("end", () => events.push("end"));
    r.on("reconnect", () => events.push("reconnect"));
    b.connect();
    let called = 0;
    r.end(() => called++);
    r.reconnect();
    b.run(100);
    expect(called).toBe(1);
    b.run(100);
    expect(b.connect()).toContain("connect petrel-c0ffee clean=0 ka=0");
    expect(r.connected).toBe(true);
    r.end(() => called++);
    b.run();
    expect(called).toBe(2);
  });

  it("failover to a broker that does not hold our session: QoS 2 past PUBREC starts again from PUBLISH, the other broker's incoming ids are set aside", () => {
    const b = new ScriptedBoard();
    const c = b.client({ brokers: [{ host: "a", port: 1 }, { host: "b", port: 2 }], primaryRetry: 0 });
    c.start();
    b.connect(); // on a
    expect(b.storage.keys()).toContain("mqb0");
    b.run(STABLE_MS); // a working connection: it outlived stableMs
    b.drop("reset");
    b.run(1000);
    b.drop("refused"); // a is down
    b.run(1000);
    expect(b.connect()).toContain("open b:2");
    ok(c.publish("t", "two", 2, false, undefined));
    b.send({ cmd: "pubrec", messageId: 1 });
    b.send({ cmd: "publish", topic: "x", payload: "in", qos: 2, retain: false, dup: false, messageId: 7 });
    expect(b.storage.keys()).toContain("mqb1");
    expect(b.storage.keys()).not.toContain("mqb0");
    b.take();
    b.run(STABLE_MS); // a working connection: it outlived stableMs
    b.drop("reset");
    b.run(1000);
    // a is back and says session present (its own old session): not ours any more
    expect(b.connect(true)).toEqual(["open a:1", "connect petrel-c0ffee clean=0 ka=0", "publish q2 d1 r0 id=1 t two"]);
    // b's id 7 is kept for b (its session may send it again) and does not hide a's own id 7
    expect(c.received!.count).toBe(1);
    expect(c.received!.hasId(7)).toBe(false);
  });

  it("the owner of the session state survives a reboot", () => {
    const b = new ScriptedBoard();
    b.storage.putRecord("mqb1", Buffer.alloc(0) as never);
    b.storage.putRecord("mqb9", Buffer.alloc(0) as never); // a second marker is stale: removed
    const c = b.client({ brokers: [{ host: "a", port: 1 }, { host: "b", port: 2 }] });
    expect(b.storage.keys().filter((k) => k.startsWith("mqb"))).toEqual(["mqb1"]);
    ok(c.publish("t", "q1", 1, false, undefined));
    c.start();
    // a answers with session present, but the state is b's: the message, never sent before, goes without DUP
    expect(b.connect(true)).toEqual(["open a:1", "connect petrel-c0ffee clean=0 ka=0", "publish q1 d0 r0 id=1 t q1"]);
  });

  it("a primary retry period above 12 hours never shrinks", () => {
    const b = new ScriptedBoard();
    const c = b.client({ brokers: [{ host: "a", port: 1 }, { host: "b", port: 2 }], primaryRetry: 86400 });
    c.start();
    b.run();
    b.drop("refused");
    b.run(1000);
    b.connect();
    b.run(86400000);
    expect(b.take()).toEqual(["disconnect", "close"]);
    b.run();
    b.drop("refused");
    b.run(1000);
    b.connect();
    b.run(86399000);
    expect(b.take()).toEqual([]);
    b.run(1000);
    expect(b.take()).toEqual(["disconnect", "close"]);
  });

  it("packets that arrive after end() are not handled", () => {
    const b = new ScriptedBoard();
    const c = b.client({}, {});
    c.start();
    b.run();
    b.accept();
    b.reportsClose = false;
    c.end();
    b.send({ cmd: "connack", sessionPresent: false, returnCode: 0 });
    expect(c.lastError).toBeUndefined();
    expect(b.takeEvents()).toEqual([]);
  });

  it("restored subscriptions do not count against maxRequests", () => {
    const b = new ScriptedBoard();
    const c = b.client({ maxRequests: 1 });
    c.start();
    b.connect();
    ok(c.subscribe(["a"], [0], 1, undefined, undefined));
    b.send({ cmd: "suback", messageId: 1, granted: [0] });
    b.drop("reset");
    b.run(1000);
    b.run();
    b.accept();
    b.send({ cmd: "connack", sessionPresent: false, returnCode: 0 }); // restores "a", not yet acknowledged
    ok(c.subscribe(["b"], [0], 1, undefined, undefined));
  });
});
