import { describe, expect, it } from "vitest";
import { readingsSent, runLine } from "../firmware/app/commands";
import { SensorNode } from "../firmware/app/node";
import { memoryStorage } from "../firmware/targets/node/storage";
import { settingsWith } from "./harness/app";
import { FakeBroker, ScriptedBoard } from "./harness/scripted";

// The sensor node's reading counts (queued, sent, acknowledged, dropped) as `status` tells them,
// on a scripted transport and broker and the virtual clock: a reading is sent once its PUBLISH
// was first written to the network (QoS 0: written; QoS 1/2: acknowledged or not yet), so
// queued >= sent >= acknowledged.

/** A node on a scripted board, one reading a second at `qos`. */
function node(qos: string, maxInflight?: number, protocolVersion = 4) {
  const b = new ScriptedBoard();
  const logs: string[] = [];
  const st = settingsWith(memoryStorage(), false, { brokers: "a:1883", "client.id": "counts-1", qos, interval: "1" });
  const n = new SensorNode({
    // (the scripted broker speaks 3.1.1)
    platform: b.platform, protocolVersion, tls: false, version: "0.1.0-test", reboot: () => {}, log: (l) => logs.push(l),
    sensors: [{ name: "t", read: () => 21 }], maxInflight,
  }, st);
  expect(n.launch()).toBeNull();
  const run = (line: string) => {
    const out: string[] = [];
    runLine({ node: n, settings: st }, line, (l) => out.push(l), false);
    return out;
  };
  /** The counts in status's first line: queued, sent, acknowledged (-1 when not shown), dropped, outbox. */
  const counts = () => {
    const line = run("status")[0];
    const m = /readings: (\d+) queued, (\d+) sent, (?:(\d+) acknowledged, )?(\d+) dropped, outbox (\d+)$/.exec(line);
    expect(m, line).not.toBeNull();
    return { queued: Number(m![1]), sent: Number(m![2]), acked: m![3] === undefined ? -1 : Number(m![3]), dropped: Number(m![4]), outbox: Number(m![5]) };
  };
  return { b, n, st, run, counts, logs };
}

/** Moves virtual time on by `ms`, refusing every dial: no broker. */
function noBroker(b: ScriptedBoard, ms: number): void {
  for (let t = 0; t < ms; t += 100) {
    b.run(100);
    if (b.take().some((l) => l.startsWith("open"))) b.drop("refused");
  }
}

describe("a node built with MQTT 5.0 and a broker that speaks 3.1.1 only", () => {
  it("falls back to 3.1.1 after one attempt; status and diag say which protocol it speaks and why; the queued reading goes at 3.1.1", () => {
    const { b, run } = node("1", undefined, 5);
    expect(run("status")).toContain("protocol: MQTT 5.0");
    const broker = new FakeBroker(b, () => false);
    // the scripted broker speaks 3.1.1: a 5.0 CONNECT gets CONNACK 1 and the close, as from mosquitto 1.x, RabbitMQ or NATS
    broker.run(3000);
    expect(b.wire.filter((l) => l.startsWith("connect"))).toEqual(["connect level=5", "connect counts-1 clean=0 ka=60 will=petrel/counts-1/status"]);
    const status = run("status");
    expect(status[0]).toMatch(/^node counts-1: connected/);
    expect(status).toContain("protocol: MQTT 3.1.1 (the broker answered MQTT 5.0 in 3.1.1; it gets 3.1.1 until a reboot)");
    expect(run("diag")).toContain("diag: protocol  MQTT 3.1.1 (the broker answered MQTT 5.0 in 3.1.1; it gets 3.1.1 until a reboot)");
    expect(b.wire.some((l) => /^publish q1 d0 r0 id=\d+ petrel\/counts-1\/telemetry /.test(l))).toBe(true);
  });
});

describe("readings queued, sent and acknowledged, kept apart", () => {
  it("help names the counts status gives", () => {
    const { run } = node("1");
    expect(run("help")).toContain("status  connection, uptime, readings queued, sent, acknowledged and dropped, unsaved settings");
  });

  it("with no broker, readings are queued and none is sent: all wait in the outbox", () => {
    const { b, n, counts } = node("1");
    noBroker(b, 5000);
    expect(n.client!.stats.attempts).toBeGreaterThanOrEqual(2);
    const c = counts();
    expect(c.queued).toBeGreaterThanOrEqual(5);
    expect(c).toEqual({ queued: c.queued, sent: 0, acked: 0, dropped: 0, outbox: c.queued });
    expect(readingsSent(n)).toBe(0);
  });

  it("QoS 0 with no broker: queued in RAM, not sent; once connected, every one is sent (QoS 0 has no acknowledgement to show)", () => {
    const { b, n, counts } = node("0");
    noBroker(b, 3000);
    const before = counts();
    expect(before.queued).toBeGreaterThanOrEqual(3);
    expect(before).toEqual({ queued: before.queued, sent: 0, acked: -1, dropped: 0, outbox: 0 });
    const broker = new FakeBroker(b, () => false);
    broker.run(10000);
    expect(n.connected).toBe(true);
    const after = counts();
    expect(after.sent).toBe(after.queued);
    expect(after.queued).toBeGreaterThan(before.queued);
  });

  it("connected at QoS 1, the broker acknowledging: every reading sent is acknowledged", () => {
    const { b, n, counts } = node("1");
    const broker = new FakeBroker(b, () => false);
    broker.run(5000);
    expect(n.connected).toBe(true);
    const c = counts();
    expect(c.queued).toBeGreaterThanOrEqual(5);
    expect(c).toEqual({ queued: c.queued, sent: c.queued, acked: c.queued, dropped: 0, outbox: 0 });
  });

  it("a QoS 1 reading written and not acknowledged yet counts as sent, not acknowledged; one the window holds back is not sent; sent again with DUP it counts once", () => {
    // a window of 2, and a broker that takes the readings without acknowledging them (the status, yes)
    const { b, n, counts } = node("1", 2);
    let silent = true;
    const broker = new FakeBroker(b, () => false, (l) => silent && l.includes("/telemetry"));
    broker.run(3500);
    expect(n.connected).toBe(true);
    const c = counts();
    expect(c.queued).toBeGreaterThanOrEqual(3);
    expect(c).toEqual({ queued: c.queued, sent: 2, acked: 0, dropped: 0, outbox: c.queued });
    expect(b.wire.filter((l) => l.startsWith("publish q1 d0 r0") && l.includes("/telemetry"))).toHaveLength(2);
    // the connection breaks; on the next, the two go again with DUP and the broker acknowledges all
    silent = false;
    b.drop("reset");
    broker.run(10000);
    expect(n.connected).toBe(true);
    expect(b.wire.filter((l) => l.startsWith("publish q1 d1 r0") && l.includes("/telemetry"))).toHaveLength(2);
    const d = counts();
    expect(d.queued).toBeGreaterThan(c.queued);
    expect(d).toEqual({ queued: d.queued, sent: d.queued, acked: d.queued, dropped: 0, outbox: 0 });
  });

  it("QoS 2: a reading past PUBREC and waiting for PUBCOMP counts as sent, not acknowledged; its PUBCOMP acknowledges it", () => {
    // a window of 2, and a broker that takes the readings' PUBREL without completing them
    const { b, n, counts } = node("2", 2);
    let silent = true;
    const broker = new FakeBroker(b, () => false, (l) => silent && l.startsWith("pubrel"));
    broker.run(3500);
    expect(n.connected).toBe(true);
    const c = counts();
    expect(c.queued).toBeGreaterThanOrEqual(3);
    expect(c).toEqual({ queued: c.queued, sent: 2, acked: 0, dropped: 0, outbox: c.queued });
    // the connection breaks; on the next, PUBREL goes again and the broker completes every one
    silent = false;
    b.drop("reset");
    broker.run(10000);
    expect(n.connected).toBe(true);
    const d = counts();
    expect(d.queued).toBeGreaterThan(c.queued);
    expect(d).toEqual({ queued: d.queued, sent: d.queued, acked: d.queued, dropped: 0, outbox: 0 });
  });
});

// The node's fields that hold a value: in Lua each is a slot of the node's table, and a table's
// slots come in powers of two, so a 17th doubles it (320 bytes on a 32-bit board). A running
// node holds 14 or 15 (lastError once there is one), one more while ending (its `ended`
// callback); a sleeping node keeps that callback in its sleep state, having `sl` already.
describe("the node's table stays within 16 fields", () => {
  const held = (n: SensorNode) => Object.keys(n).filter((k) => (n as unknown as Record<string, unknown>)[k] !== undefined);

  it("awake and ending", () => {
    const { b, n } = node("1");
    new FakeBroker(b, () => false).run(2000);
    expect(n.connected).toBe(true);
    const running = held(n).length;
    expect(running).toBeLessThanOrEqual(15);
    n.end(() => {});
    expect(held(n)).toHaveLength(running + 1);
    expect(held(n).length).toBeLessThanOrEqual(16);
  });

  it("sleeping, awake and ending: the end callback waits in the sleep state", () => {
    const b = new ScriptedBoard();
    const st = settingsWith(memoryStorage(), false, { brokers: "a:1883", "client.id": "counts-2", qos: "1", interval: "60", sleep: "on" });
    let slept = -1;
    const n = new SensorNode({
      platform: b.platform, protocolVersion: 4, tls: false, version: "0.1.0-test", reboot: () => {}, log: () => {},
      sensors: [{ name: "t", read: () => 21 }], sleep: (ms) => (slept = ms),
    }, st);
    // what the node holds right after its own end() (before the client has ended)
    const end = n.end.bind(n);
    let atEnd: string[] = [];
    let waiting = false;
    n.end = (done) => {
      end(done);
      atEnd = held(n).filter((k) => k !== "end"); // (this wrapper, an own field of the test's making)
      waiting = n.sl?.ended !== undefined;
    };
    expect(n.launch()).toBeNull();
    const broker = new FakeBroker(b, () => false);
    broker.run(10);
    expect(n.connected).toBe(true);
    const awake = held(n).filter((k) => k !== "end").length;
    expect(awake).toBeLessThanOrEqual(16);
    // the reading acknowledged, the asleep status, DISCONNECT, then deep sleep
    broker.run(3000);
    expect(slept).toBe(60000);
    expect(atEnd.length).toBeLessThanOrEqual(16);
    expect(atEnd).not.toContain("ended");
    expect(waiting).toBe(true);
    expect(n.sl?.ended).toBeUndefined();
  });
});
