import { describe, expect, it } from "vitest";
import { State } from "../firmware/session/client";
import { dropHeld, listHeld, retryHeld } from "../firmware/session/held";
import { FakeBroker, ScriptedBoard, STABLE_MS } from "./harness/scripted";
import { LOG_DEBUG, LOG_INFO, LOG_WARN } from "../firmware/port/log";

// The session, packet by packet, on a scripted transport and a virtual clock that starts 4 s
// before its 31-bit wrap, so every timer below crosses the wrap.

const ok = (e: unknown) => expect(e).toBeUndefined();

describe("connect", () => {

  it("refuses bad options with a clear error and the fix", () => {
    const b = new ScriptedBoard();
    const cases: Array<[object, string, RegExp]> = [
      [{ password: "p" }, "bad-option", /username/],
      [{ clientId: "", clean: false }, "bad-option", /clean/],
      [{ keepalive: 70000 }, "bad-option", /keepalive must be a whole number from 0 to 65535/],
      [{ keepalive: 1.5 }, "bad-option", /keepalive/],
      [{ brokers: [] }, "bad-option", /no broker/],
      [{ brokers: [{ host: "", port: 1 }] }, "bad-option", /no host/],
      [{ brokers: [{ host: "h" }] }, "bad-option", /no port/],
      [{ brokers: [{ host: "h", port: 70000 }] }, "bad-option", /port/],
      [{ reconnectMinMs: 5000, reconnectMaxMs: 1000 }, "bad-option", /reconnectMaxMs/],
      [{ storePrefix: "much-too-long" }, "bad-option", /storePrefix/],
      [{ will: { topic: "w", payload: "", qos: 3 } }, "bad-option", /will qos/],
      [{ will: { topic: "w/#", payload: "" } }, "bad-option", /CONNECT cannot be built.*\+ or #/],
    ];
    for (const [o, code, re] of cases) {
      expect(() => b.client(o)).toThrow(re);
      expect(() => b.client(o)).toThrow(code);
    }
  });
});

describe("failed attempts in the log: a warning when the failure changes, an info line while it repeats", () => {
  /** A board whose log lines are kept as "warn mqtt: …" / "info mqtt: …" (debug left out). */
  function logged(): { b: ScriptedBoard; lines: string[] } {
    const b = new ScriptedBoard();
    const lines: string[] = [];
    b.platform.log = { writeLog: (level, line) => {
      if (level < LOG_DEBUG) lines.push(`${level === LOG_WARN ? "warn" : level === LOG_INFO ? "info" : `level${level}`} ${line}`);
    } };
    return { b, lines };
  }
  /** The next attempt dials (the backoff, 8 s at most here, runs out), then fails with the transport's `reason`. */
  function failWith(b: ScriptedBoard, reason: string): void {
    b.run(8000);
    expect(b.take()).toEqual(["open a:1883"]);
    b.drop(reason);
  }
  /** A started client whose first attempt (it dials at once) the transport refused. */
  function refusedAtStart(): { b: ScriptedBoard; lines: string[]; c: ReturnType<ScriptedBoard["client"]> } {
    const { b, lines } = logged();
    const c = b.client();
    c.start();
    b.run();
    expect(b.take()).toEqual(["open a:1883"]);
    b.drop("refused");
    return { b, lines, c };
  }
  /** The next attempt dials and the broker refuses it with CONNACK `rc`. */
  function refusedWith(b: ScriptedBoard, rc: number): void {
    b.run(8000);
    b.accept();
    b.send({ cmd: "connack", sessionPresent: false, returnCode: rc });
    b.run();
    b.take();
  }
  const count = (lines: string[], re: RegExp) => lines.filter((l) => re.test(l)).length;

  it("three refused attempts: one warning, then two info lines that say it is the same failure again; onError hears all three", () => {
    const { b, lines, c } = refusedAtStart();
    failWith(b, "refused");
    failWith(b, "refused");
    expect(c.stats.attempts).toBe(3);
    expect(lines).toEqual([
      "warn mqtt: refused: the broker's address refused the connection; fix: check the host and port, and that the broker is running",
      "info mqtt: refused again (attempt 2)",
      "info mqtt: refused again (attempt 3)",
    ]);
    expect(b.takeEvents().filter((e) => e.startsWith("error"))).toEqual(["error refused", "error refused", "error refused"]);
    expect(c.lastError?.code).toBe("refused");
  });

  it("a failure with another reason warns again, and its own repeats are info lines", () => {
    const { b, lines, c } = refusedAtStart();
    failWith(b, "refused");
    failWith(b, "unreachable");
    failWith(b, "unreachable");
    failWith(b, "refused");
    expect(lines.map((l) => l.replace(/: the .*$/, ""))).toEqual([
      "warn mqtt: refused",
      "info mqtt: refused again (attempt 2)",
      "warn mqtt: unreachable",
      "info mqtt: unreachable again (attempt 4)",
      "warn mqtt: refused",
    ]);
    expect(c.lastError?.code).toBe("refused");
  });

  it("a CONNACK refusal that repeats is one warning, then info lines; a connection resets it, so the next failure warns", () => {
    const { b, lines } = logged();
    const c = b.client();
    c.start();
    b.run(); // the first attempt dials at once; refusedWith's wait only lets it be
    refusedWith(b, 5);
    refusedWith(b, 5);
    refusedWith(b, 5);
    expect(count(lines, /^warn mqtt: not-authorized: /)).toBe(1);
    expect(count(lines, /^info mqtt: not-authorized again \(attempt \d\)$/)).toBe(2);
    // the broker takes it: connected, then the connection breaks
    b.run(8000);
    b.accept();
    b.send({ cmd: "connack", sessionPresent: false, returnCode: 0 });
    expect(c.state).toBe(State.Connected);
    b.drop("reset");
    // the same refusal as before the connection: a warning again, then info
    refusedWith(b, 5);
    refusedWith(b, 5);
    expect(count(lines, /^warn mqtt: not-authorized: /)).toBe(2);
    expect(count(lines, /^info mqtt: not-authorized again/)).toBe(3);
    expect(lines.filter((l) => !l.includes("not-authorized"))).toEqual([
      "info mqtt: connected to a:1883 (session new, outbox 0)",
      "info mqtt: connection ended: the connection was reset; the client reconnects (if it keeps happening: check the broker's log, its max_connections and the Wi-Fi signal)",
    ]);
    expect(b.takeEvents().filter((e) => e.startsWith("error"))).toHaveLength(5);
  });

  it("a connection that is accepted and breaks at once, then refused attempts: the first refusal after it warns", () => {
    const { b, lines, c } = refusedAtStart();
    failWith(b, "refused");
    b.run(8000);
    b.accept();
    b.send({ cmd: "connack", sessionPresent: false, returnCode: 0 });
    b.take();
    b.drop("refused"); // (a transport's code for a connection that was up: the same code as the attempts')
    failWith(b, "refused");
    failWith(b, "refused");
    expect(lines.filter((l) => l.includes("refused")).map((l) => l.replace(/: the .*$/, ""))).toEqual([
      "warn mqtt: refused",
      "info mqtt: refused again (attempt 2)",
      "info mqtt: connection ended",
      "warn mqtt: refused",
      "info mqtt: refused again (attempt 5)",
    ]);
    expect(c.stats.attempts).toBe(5);
  });

  it("end() and start() again: the first failure of the new start warns", () => {
    const { b, lines, c } = refusedAtStart();
    failWith(b, "refused");
    c.end();
    b.run();
    c.start();
    b.run();
    expect(b.take()).toEqual(["open a:1883"]);
    b.drop("refused");
    expect(lines.map((l) => l.replace(/: the .*$/, ""))).toEqual(["warn mqtt: refused", "info mqtt: refused again (attempt 2)", "warn mqtt: refused"]);
  });
});






describe("a message the broker refuses by closing the connection (NATS Server 2.9 on QoS 2)", () => {
  const isQos2 = (l: string) => l.startsWith("publish q2");

  it("the backoff grows across short-lived connections; after 3 the message is held, its callback hears publish-refused, the rest flows", () => {
    const b = new ScriptedBoard();
    const c = b.client({ reconnectMinMs: 1000, reconnectMaxMs: 60000 });
    const nats = new FakeBroker(b, isQos2);
    const heard: string[] = [];
    c.start();
    nats.run(0);
    ok(c.publish("nats/q2", "refused", 2, false, (e) => heard.push(e === undefined ? "q2 ok" : `${e.code}: ${e.message}`)));
    ok(c.publish("nats/q1", "behind", 1, false, (e) => heard.push(e === undefined ? "q1 ok" : e.code)));
    nats.run(30000);
    // three short-lived connections, each a failed attempt: 2, 4, 8 s (jitter at its largest),
    // not 1 s after every CONNACK; then the message is held and the one behind it goes
    expect(nats.closes).toBe(3);
    expect(nats.gaps()).toEqual([2000, 4000, 8000]);
    expect(heard).toEqual([
      "publish-refused: the broker closed the connection 3 times in a row right after the QoS 2 PUBLISH to nats/q2, acknowledging nothing " +
      "(NATS refuses QoS 2; an ACL may forbid a topic); held 1: out of the outbox, the rest goes on; " +
      "fix: let the broker take it, then held retry 1 (API: retryHeld), or held drop 1 (dropHeld)",
      "q1 ok"]);
    expect(c.outbox.count).toBe(0);
    expect(b.records()).toEqual(["mqh1"]);
    expect(listHeld(c).map((m) => [m.n, m.topic, m.qos, m.retain, String(m.payload), m.size])).toEqual([[1, "nats/q2", 2, false, "refused", 20]]);
    // after the first death the suspect went alone: the QoS 1 message waited behind it
    const pubs = b.wire.filter((l) => l.startsWith("publish"));
    expect(pubs).toEqual(["publish q2 d0 r0 id=1 nats/q2 refused", "publish q1 d0 r0 id=2 nats/q1 behind",
      "publish q2 d1 r0 id=1 nats/q2 refused", "publish q2 d1 r0 id=1 nats/q2 refused", "publish q1 d1 r0 id=2 nats/q1 behind"]);
    expect(c.lastError?.code).toBe("publish-refused");
    // the connection that delivered it is a working one: a later drop starts the backoff over
    nats.run(STABLE_MS);
    const at = nats.now();
    b.drop("reset");
    nats.run(1000);
    expect(nats.dials.slice(4).map((d) => d - at)).toEqual([1000]);
  });

  it("without a callback the refusal goes to onError; a connection that worked (an acknowledgement, or stableMs) is no evidence", () => {
    const b = new ScriptedBoard();
    const c = b.client();
    let refuse = false;
    const broker = new FakeBroker(b, (l) => refuse && isQos2(l));
    c.start();
    broker.run(0);
    // a QoS 1 message acknowledged, then the close: a working connection; reconnect after 1 s
    ok(c.publish("t", "one", 1, false, undefined));
    ok(c.publish("t", "two", 2, false, undefined));
    refuse = true;
    broker.run(0);
    expect(broker.closes).toBe(1);
    broker.run(1000);
    expect(broker.gaps()).toEqual([1000]);
    // short-lived, twice: evidence against it, and a growing backoff (2 s, then 4 s); then the
    // broker takes it, and closes a later connection that worked: the count starts over and so
    // does the backoff
    broker.run(3000);
    expect(broker.gaps()).toEqual([1000, 2000]);
    refuse = false;
    broker.run(4000 + STABLE_MS);
    expect(broker.gaps()).toEqual([1000, 2000, 4000]);
    expect(c.outbox.count).toBe(0); // (the broker took it this time)
    expect(b.takeEvents().filter((e) => e.startsWith("error"))).toEqual([]);
    ok(c.publish("t", "three", 2, false, undefined));
    refuse = true;
    const at = broker.now();
    broker.run(1000);
    expect(broker.dials.slice(4).map((d) => d - at)).toEqual([1000]);
    broker.run(7000);
    expect(broker.gaps().slice(4)).toEqual([2000, 4000]);
    expect(b.takeEvents().filter((e) => e.startsWith("error"))).toEqual(["error publish-refused"]);
    expect(c.lastError?.message).toMatch(/3 times in a row right after the QoS 2 PUBLISH to t,.*held 1: out of the outbox/);
    expect(listHeld(c).map((m) => String(m.payload))).toEqual(["three"]);
  });

  it("a close this client chose (a ping timeout) is no evidence against the message, though it counts for the backoff", () => {
    const b = new ScriptedBoard();
    const c = b.client({ keepalive: 1, pingTimeoutMs: 500, stableMs: 10000 });
    // a broker that answers neither the PUBLISH nor PINGREQ: each time the client gives up after 1.5 s
    const silent = new FakeBroker(b, () => false, (l) => l === "pingreq" || l.startsWith("publish"));
    c.start();
    silent.run(0);
    ok(c.publish("t", "slow", 1, false, undefined));
    silent.run(20000);
    expect(c.lastReason).toBe("ping-timeout");
    expect(silent.gaps()).toEqual([3500, 5500, 9500]);
    expect(c.outbox.count).toBe(1);
    expect(listHeld(c)).toEqual([]);
  });

  it("held messages survive a reboot (not in the outbox); retryHeld sends one again at the end of the outbox, dropHeld deletes one", () => {
    const b = new ScriptedBoard();
    const c = b.client({ refusedAfter: 1 });
    const nats = new FakeBroker(b, isQos2);
    c.start();
    nats.run(0);
    ok(c.publish("a", "first", 2, true, undefined));
    nats.run(0);
    ok(c.publish("b", "second", 2, false, undefined));
    nats.run(10000);
    expect(b.records()).toEqual(["mqh1", "mqh2"]);
    expect(b.takeEvents().filter((e) => e.startsWith("error"))).toEqual(["error publish-refused", "error publish-refused"]);
    // a reboot: the next client on the same flash finds them held, not in its outbox
    const b2 = new ScriptedBoard();
    for (const k of b.storage.keys()) b2.storage.putRecord(k, b.storage.getRecord(k)!);
    const c2 = b2.client();
    expect(c2.outbox.count).toBe(0);
    expect(listHeld(c2).map((m) => `${m.topic} q${m.qos}${m.retain ? " retained" : ""} ${String(m.payload)}`)).toEqual(["a q2 retained first", "b q2 second"]);
    expect(retryHeld(c2, 3, undefined)).toEqual({ code: "not-held", message: "no message is held in slot 3; fix: take a number that held (API: listHeld) lists" });
    expect(dropHeld(c2, 0)?.code).toBe("not-held");
    // the broker takes QoS 2 now: the first is sent again, with a fresh packet id, and completes
    const heard: string[] = [];
    ok(retryHeld(c2, 1, (e) => heard.push(e === undefined ? "ok" : e.code)));
    expect(c2.outbox.count).toBe(1);
    expect(listHeld(c2).map((m) => `${m.n} ${m.topic}`)).toEqual(["2 b"]); // (a slot keeps its number)
    const ok2 = new FakeBroker(b2, () => false);
    c2.start();
    ok2.run(0);
    expect(b2.wire.filter((l) => l.startsWith("publish"))).toEqual(["publish q2 d0 r1 id=1 a first"]);
    expect(heard).toEqual(["ok"]);
    ok(dropHeld(c2, 2));
    expect(listHeld(c2)).toEqual([]);
    expect(b2.records()).toEqual([]);
    expect(dropHeld(c2, 2)?.code).toBe("not-held");
  });

  it("with heldMessages held already, a refused message stays in the outbox and onError says so; a retry the outbox cannot take stays held", () => {
    const b = new ScriptedBoard();
    const c = b.client({ refusedAfter: 1, heldMessages: 1, outboxMessages: 2 });
    const nats = new FakeBroker(b, isQos2);
    c.start();
    nats.run(0);
    ok(c.publish("a", "kept", 2, false, undefined));
    nats.run(3000);
    expect(b.takeEvents().filter((e) => e.startsWith("error"))).toEqual(["error publish-refused"]);
    const heard: string[] = [];
    ok(c.publish("b", "stays", 2, false, (e) => heard.push(e === undefined ? "ok" : e.code)));
    nats.run(10000);
    // told again at every refusedAfter-th short-lived connection (here each), as the backoff grows
    expect(b.takeEvents().filter((e) => e.startsWith("error"))).toEqual(["error publish-refused", "error publish-refused"]);
    expect(c.lastError?.message).toMatch(/to b, .*it stays in the outbox, and the rest waits: no held slot free \(heldMessages\) or storage failed; fix: held retry N or held drop N \(API: retryHeld, dropHeld\)$/);
    expect(heard).toEqual([]); // it may yet be delivered: its callback waits
    expect(c.outbox.count).toBe(1);
    expect(b.records()).toEqual(["mqh1", "mqo2"]);
    // the outbox is full: the retry is refused and the message stays held
    ok(c.publish("c", "fills the outbox", 1, false, undefined));
    expect(retryHeld(c, 1, undefined)?.code).toBe("outbox-full");
    expect(listHeld(c).map((m) => m.topic)).toEqual(["a"]);
  });

  it("refusedAfter 0: never held (the old behaviour), though the backoff still grows", () => {
    const b = new ScriptedBoard();
    const c = b.client({ refusedAfter: 0 });
    const nats = new FakeBroker(b, isQos2);
    c.start();
    nats.run(0);
    ok(c.publish("t", "x", 2, false, undefined));
    nats.run(60000);
    expect(nats.gaps()).toEqual([2000, 4000, 8000, 8000, 8000, 8000, 8000, 8000]);
    expect(c.outbox.count).toBe(1);
    expect(listHeld(c)).toEqual([]);
  });

  it("stableMs 0: every CONNACK starts the backoff over, as before", () => {
    const b = new ScriptedBoard();
    const c = b.client({ stableMs: 0 });
    const nats = new FakeBroker(b, isQos2);
    c.start();
    nats.run(0);
    ok(c.publish("t", "x", 2, false, undefined));
    nats.run(5500);
    expect(nats.gaps()).toEqual([1000, 1000, 1000, 1000, 1000]);
    expect(c.outbox.count).toBe(1);
  });

  it("the options are checked", () => {
    const b = new ScriptedBoard();
    expect(() => b.client({ stableMs: -1 })).toThrow(/stableMs must be a whole number from 0 to 3600000/);
    expect(() => b.client({ refusedAfter: 16 })).toThrow(/refusedAfter must be a whole number from 0 to 15/);
    expect(() => b.client({ heldMessages: 65 })).toThrow(/heldMessages must be a whole number from 0 to 64/);
  });
});

