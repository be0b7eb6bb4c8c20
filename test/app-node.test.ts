import "../firmware/targets/node/index";
import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runLine } from "../firmware/app/commands";
import { brokersOf } from "../firmware/app/config";
import { SensorNode, jsonString } from "../firmware/app/node";
import { settingsWith } from "./harness/app";
import { startBroker, type Broker } from "../host-sim/mosquitto";
import { nodePlatform } from "../firmware/targets/node/platform";
import { memoryStorage } from "../firmware/targets/node/storage";
import { until } from "./harness/wait";
import { watch as watchAt } from "./harness/watch";

// The sensor node (firmware/app/node.ts) on the Node platform against a real mosquitto, watched
// by mosquitto_sub (not Petrel code) and commanded with mosquitto_pub. Waits are bounded; no
// timing is asserted, only what arrives.

let broker: Broker;
const nodes: SensorNode[] = [];

beforeAll(async () => {
  broker = await startBroker();
});
afterAll(async () => {
  for (const n of nodes) n.client?.end();
  for (const stop of stops) stop();
  await broker?.close();
});

const stops: Array<() => void> = [];
async function watch(topic: string): Promise<string[]> {
  const w = await watchAt(broker.port, topic);
  stops.push(w.stop);
  return w.lines;
}

function command(id: string, line: string): void {
  const r = spawnSync("mosquitto_pub", ["-h", "127.0.0.1", "-p", String(broker.port), "-t", `petrel/${id}/cmd`, "-q", "1", "-m", line]);
  expect(r.status).toBe(0);
}

function start(id: string, set: Record<string, string>) {
  const logs: string[] = [];
  const platform = nodePlatform({ chipId: id, freeHeap: () => 30000 });
  const st = settingsWith(memoryStorage(), false, { brokers: `127.0.0.1:${broker.port}`, "client.id": id, ...set });
  let temp = 20;
  let reboots = 0;
  const node = new SensorNode({
    platform, tls: false, version: "0.1.0-test", reboot: () => reboots++, log: (l) => logs.push(l),
    sensors: [{ name: "temp", read: () => (temp += 0.5) }, { name: "absent", read: () => undefined }],
  }, st);
  nodes.push(node);
  expect(node.launch()).toBeNull();
  return { node, st, logs, reboots: () => reboots };
}

describe("JSON and broker helpers", () => {
  it("jsonString escapes quotes, backslashes and control characters", () => {
    expect(jsonString('a"b\\c\n\x01')).toBe('"a\\"b\\\\c\\u000a\\u0001"');
    expect(JSON.parse(jsonString('a"b\\c\n\x01\x1f°'))).toBe('a"b\\c\n\x01\x1f°');
  });
  it("brokersOf reads [tls:]host:port lists; tls on makes every entry TLS", () => {
    expect(brokersOf("a.example:1883,tls:b.example:8883", false)).toEqual([
      { host: "a.example", port: 1883, tls: false }, { host: "b.example", port: 8883, tls: true }]);
    expect(brokersOf("a.example:1883", true)).toEqual([{ host: "a.example", port: 1883, tls: true }]);
  });
});

describe("the sensor node against mosquitto", () => {
  it("publishes its readings as JSON at the configured QoS and a retained online status; its will says offline", async () => {
    const status = await watch("petrel/node-a/status");
    const telemetry = await watch("petrel/node-a/telemetry");
    const n = start("node-a", { interval: "1", qos: "1" });
    await until("two readings", () => telemetry.length >= 2, 10000);
    const first = JSON.parse(telemetry[0].slice("petrel/node-a/telemetry ".length));
    expect(Object.keys(first)).toEqual(["temp"]); // a sensor without a reading is left out
    expect(typeof first.temp).toBe("number");
    await until("the online status", () => status.length >= 1, 5000);
    const online = JSON.parse(status[0].slice("petrel/node-a/status ".length));
    expect(online).toMatchObject({ state: "online", version: "0.1.0-test", heap: 30000, reconnects: 0, lastError: "" });
    // retained: a late subscriber still gets it
    const late = await watch("petrel/node-a/status");
    await until("the retained status", () => late.length >= 1, 5000);
    expect(late[0]).toContain('"state":"online"');
    expect(n.node.queued).toBeGreaterThanOrEqual(2);
    expect(n.node.dropped).toBe(0);
    // the will the broker holds for an abrupt loss (the will itself is proven in the board scenarios)
    const will = n.node.client!.settings.will!;
    expect([will.topic, String(will.payload), will.qos, will.retain]).toEqual(["petrel/node-a/status", '{"state":"offline"}', 1, true]);
  });

  it("takes command lines on its cmd topic and answers on its reply topic; secrets, unknown and over-long commands get errors", async () => {
    const replies = await watch("petrel/node-b/reply");
    const telemetry = await watch("petrel/node-b/telemetry");
    const n = start("node-b", { interval: "3600", qos: "0" });
    await until("connected", () => n.node.connected, 5000);
    await until("the first reading", () => telemetry.length >= 1, 5000);
    const ask = async (line: string) => {
      const before = replies.length;
      command("node-b", line);
      await until(`a reply to ${line}`, () => replies.length > before, 5000);
      return replies[before].slice("petrel/node-b/reply ".length);
    };
    expect(await ask("set interval 120")).toBe("interval = 120 (not saved yet)");
    expect(n.st.int("interval")).toBe(120);
    expect(await ask("set interval 0")).toBe('error: interval must be a whole number from 1 to 86400 (got "0"); nothing was changed');
    expect(await ask("set mqtt.pass hunter22")).toBe("error: mqtt.pass is a secret: it is set at the serial console only");
    expect(await ask("set  mqtt.pass\thunter22")).toBe("error: mqtt.pass is a secret: it is set at the serial console only");
    expect(n.st.get("mqtt.pass")).toBe("");
    expect(await ask("nope")).toBe('error: unknown command "nope"; type help for the list');
    expect(await ask("factory-reset yes")).toBe('error: unknown command "factory-reset"; type help for the list');
    expect(await ask(`set prefix ${"x".repeat(300)}`)).toBe("error: the command is over 200 characters; nothing was run");
    expect(await ask("publish")).toBe("publishing a reading now");
    await until("the reading asked for", () => telemetry.length >= 2, 5000);
    expect(await ask("reboot")).toBe("rebooting");
    expect(n.reboots()).toBe(1);
    // queued and sent are counted apart (QoS 0 here: a reading counts as sent once written to the network)
    await until("both readings sent", () => n.node.acked >= 2, 5000);
    const st = await ask("status");
    expect(st).toMatch(/^node node-b: connected, up \d+ s, 0 reconnects, readings: 2 queued, 2 sent, 0 dropped, outbox 0\nlast error: none\nprotocol: MQTT 5\.0\nunsaved settings: brokers, client\.id, qos, interval \(save keeps them\)\nfeatures: qos2 failover sleep mqtt5$/);
  });

  it("pub TOPIC QOS TEXT at the console publishes now, then tells the broker's acknowledgement (QoS 1 and 2); a bad QoS gets the usage", async () => {
    const got = await watch("test/pub/#");
    const n = start("node-c", { interval: "3600", qos: "0" });
    await until("connected", () => n.node.connected, 5000);
    // the retained status (QoS 1) acknowledged first, so the outbox counts below are the pubs'
    await until("the status acknowledged", () => n.node.client!.outbox.count === 0, 5000);
    const run = (line: string) => {
      const out: string[] = [];
      runLine({ node: n.node, settings: n.node.settings }, line, (l) => out.push(l), false);
      return out;
    };
    expect(run("pub test/pub/one 1 hello there")).toEqual(["pub: queued (outbox 1)"]);
    expect(run("pub test/pub/two 2 twice")).toEqual([expect.stringMatching(/^pub: queued \(outbox [012]\)$/)]);
    expect(run("pub test/pub/zero 0 fire and forget")).toEqual(["pub: queued (outbox " + n.node.client!.outbox.count + ")"]);
    expect(run("pub test/pub/x 3 no")).toEqual(["pub: usage: pub TOPIC QOS TEXT, QoS 0, 1 or 2 (e.g. pub test/hello 1 hi)"]);
    await until("three arrivals", () => got.length >= 3, 5000);
    expect([...got].sort()).toEqual(["test/pub/one hello there", "test/pub/two twice", "test/pub/zero fire and forget"]);
    await until("both acknowledgements told", () => n.logs.filter((l) => l.startsWith("pub: acknowledged: ")).length >= 2, 5000);
    expect(n.logs.filter((l) => l.startsWith("pub: ")).sort()).toEqual(["pub: acknowledged: test/pub/one 1 hello there", "pub: acknowledged: test/pub/two 2 twice"]);
  });
});
