import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MqttClient } from "../firmware/session/mqtt";
import { startFaultProxy, type FaultProxy } from "../host-sim/fault-proxy";
import { startBroker, type Broker } from "../host-sim/mosquitto";
import { connect } from "../host-sim/node/client";
import { until as waitUntil } from "./harness/wait";

// The client through the loopback fault proxy in front of a real mosquitto: a stream split at
// every byte, a half-open link (black hole) found by keepalive, a reset. Every wait is bounded.

let broker: Broker;
let proxy: FaultProxy;
const clients: MqttClient[] = [];

beforeAll(async () => {
  broker = await startBroker();
  proxy = await startFaultProxy({ target: { host: "127.0.0.1", port: broker.port } });
});
afterAll(async () => {
  await Promise.all(clients.map((c) => new Promise<void>((r) => { c.end(() => r()); setTimeout(r, 3000); })));
  await proxy?.close();
  await broker?.close();
});

const until = (what: string, cond: () => boolean, ms = 8000) => waitUntil(what, cond, ms);

function client(id: string, keepalive = 30, pingTimeoutMs = 10000) {
  const c = connect({ brokers: [{ host: "127.0.0.1", port: proxy.port }], clientId: id, clean: false, keepalive, pingTimeoutMs,
    reconnectMinMs: 50, reconnectMaxMs: 200 });
  clients.push(c);
  const got: string[] = [];
  const closes: string[] = [];
  c.on("message", (t, p, info) => got.push(`${t} ${String(p)} q${info.qos}`));
  c.on("close", (r) => closes.push(r));
  return { c, got, closes };
}

describe("the client through faults", () => {
  it("every byte a separate write, both ways: QoS 0/1/2 round trips arrive whole", async () => {
    proxy.split(1);
    try {
      const a = client("faults-split");
      await until("connect", () => a.c.connected);
      await new Promise<void>((r) => a.c.subscribe("f/split", { qos: 2 }, () => r()));
      const acked: number[] = [];
      for (const q of [0, 1, 2]) a.c.publish("f/split", `payload ${q} ${"x".repeat(40)}`, { qos: q }, () => acked.push(q));
      await until("three messages", () => a.got.length === 3);
      expect(a.got).toEqual([0, 1, 2].map((q) => `f/split payload ${q} ${"x".repeat(40)} q${q}`));
      await until("acknowledgements", () => acked.length === 3);
      expect(proxy.writes.toClient).toBe(proxy.bytes.toClient);
    } finally {
      proxy.split(0);
    }
  });

  it("a half-open link (black hole) is found by keepalive; the client reconnects and what it published meanwhile arrives", async () => {
    const watcher = client("faults-watch");
    await until("watcher", () => watcher.c.connected);
    await new Promise<void>((r) => watcher.c.subscribe("f/hole", { qos: 1 }, () => r()));
    const a = client("faults-hole", 1, 500);
    await until("connect", () => a.c.connected);
    proxy.blackhole(true);
    a.c.publish("f/hole", "sent into the hole", { qos: 1 });
    await until("ping timeout", () => a.closes.includes("ping-timeout"));
    expect(a.c.core.outbox.count).toBe(1);
    proxy.blackhole(false);
    await until("the message after reconnect", () => watcher.got.includes("f/hole sent into the hole q1"));
    await until("the outbox drained", () => a.c.core.outbox.count === 0);
    expect(a.c.core.stats.pings).toBeGreaterThan(0);
  });

  it("a reset mid-session: the client reconnects and resumes", async () => {
    const a = client("faults-reset");
    await until("connect", () => a.c.connected);
    await new Promise<void>((r) => a.c.subscribe("f/reset", { qos: 1 }, () => r()));
    proxy.reset();
    a.c.publish("f/reset", "after reset", { qos: 1 });
    await until("the message", () => a.got.includes("f/reset after reset q1"));
    expect(a.closes).toContain("reset");
    expect(a.c.core.stats.connects).toBeGreaterThanOrEqual(2);
  });
});
