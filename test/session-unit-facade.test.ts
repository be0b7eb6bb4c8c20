import { describe, expect, it } from "vitest";
import { connackError, explainClose } from "../firmware/session/errors";
import { connect, type MqttClient } from "../firmware/session/mqtt";
import { FakeBroker, ScriptedBoard } from "./harness/scripted";

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




describe("regressions from review", () => {

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
});
