import "../firmware/targets/node/index";
import mqtt from "mqtt";
import { afterAll, describe, expect, it } from "vitest";
import { SensorNode } from "../firmware/app/node";
import { runLine } from "../firmware/app/commands";
import { nodePlatform } from "../firmware/targets/node/platform";
import { memoryStorage } from "../firmware/targets/node/storage";
import { startBroker, type Broker } from "../host-sim/mosquitto";
import { settingsWith } from "./harness/app";
import { until } from "./harness/wait";

// The sensor node's MQTT 5.0 settings against a real mosquitto 2.0, with MQTT.js at 5.0 as the
// independent reader of what the broker delivers: a reading's Message Expiry (the `expiry`
// setting) and the topic alias its telemetry goes with. Waits are bounded; nothing times.

const brokers: Broker[] = [];
const nodes: SensorNode[] = [];
const ends: (() => void)[] = [];
afterAll(async () => {
  for (const n of nodes) n.client?.end();
  for (const e of ends) e();
  for (const b of brokers) await b.close();
});

describe("the sensor node at MQTT 5.0", () => {
  it("expiry set: each reading carries a Message Expiry of at most that many seconds; the topic alias keeps the telemetry topic whole at the reader", async () => {
    const b = await startBroker();
    brokers.push(b);
    const got: { topic: string; expiry: number | undefined }[] = [];
    const m = mqtt.connect(`mqtt://127.0.0.1:${b.port}`, { protocolVersion: 5, clientId: `reader-${process.pid}`, clean: true, reconnectPeriod: 0 });
    ends.push(() => m.end(true));
    m.on("message", (topic, _p, packet) => got.push({ topic, expiry: packet.properties?.messageExpiryInterval }));
    await new Promise<void>((resolve) => m.once("connect", () => m.subscribe("petrel/v5node/telemetry", { qos: 1 }, () => resolve())));
    const platform = nodePlatform({ chipId: "v5" });
    const st = settingsWith(memoryStorage(), false, { brokers: `127.0.0.1:${b.port}`, "client.id": "v5node", interval: "1", expiry: "600" });
    const n = new SensorNode({ platform, tls: false, version: "0.1.0-test", reboot: () => {}, log: () => {}, sensors: [{ name: "t", read: () => 21 }] }, st);
    nodes.push(n);
    expect(n.launch()).toBeNull();
    await until("three readings at the reader", () => got.length >= 3, 15000);
    for (const r of got) {
      expect(r.topic).toBe("petrel/v5node/telemetry");
      expect(r.expiry).toBeGreaterThan(0);
      expect(r.expiry).toBeLessThanOrEqual(600);
    }
    // the client set up aliases (mosquitto grants 10 by default): the node's three topics fit
    expect(n.client?.v5?.aliasMax).toBe(3);
    expect(n.client?.v5?.aliases).toContain("petrel/v5node/telemetry");
    const out: string[] = [];
    runLine({ node: n, settings: st }, "get expiry", (l) => out.push(l), false);
    expect(out[0]).toMatch(/^expiry = 600 /);
  }, 30_000);
});
