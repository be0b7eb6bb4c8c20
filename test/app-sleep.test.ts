import "../firmware/targets/node/index";
import { afterAll, expect, it } from "vitest";
import { SensorNode } from "../firmware/app/node";
import { saveSettings } from "../firmware/app/config";
import { settingsWith } from "./harness/app";
import type { Storage } from "../firmware/port/storage";
import { startBroker, type Broker } from "../host-sim/mosquitto";
import { nodePlatform } from "../firmware/targets/node/platform";
import { memoryStorage } from "../firmware/targets/node/storage";
import { until } from "./harness/wait";
import { watch } from "./harness/watch";

// Deep sleep (sleep on) against a real mosquitto: each wake publishes one reading at QoS 1 on
// the persistent session, waits (bounded) for its acknowledgement, sets the retained status
// "asleep", disconnects cleanly (no will) and sleeps. A wake with the broker down sleeps after
// the bound with the reading kept in the outbox (the flash, which survives the sleep), and the
// next wake delivers it. Wakes are counted, not timed: the host wakes the board at once.

let broker: Broker;
const stops: Array<() => void> = [];
afterAll(async () => {
  for (const s of stops) s();
  await broker?.close();
});

/** One wake of the board: a fresh node over the same flash; resolves with the sleep it asked for. */
function wake(flash: Storage, reading: number, logs: string[]): Promise<{ ms: number; node: SensorNode }> {
  return new Promise((resolve) => {
    const st = settingsWith(flash, false, {});
    let node: SensorNode;
    node = new SensorNode({
      platform: nodePlatform({ chipId: "sleepy", storage: flash }), tls: false, version: "0.1.0-test", reboot: () => {}, log: (l) => logs.push(l),
      sensors: [{ name: "n", read: () => reading }], awakeMs: 1500,
      sleep: (ms) => resolve({ ms, node }),
    }, st);
    expect(node.launch()).toBeNull();
  });
}

it("sleeps after each acknowledged reading, keeps an unacknowledged one over the sleep, and never fires the will", async () => {
  broker = await startBroker();
  const flash = memoryStorage();
  const st = settingsWith(flash, false, { brokers: `127.0.0.1:${broker.port}`, "client.id": "sleepy", sleep: "on", interval: "600", qos: "0" });
  expect(saveSettings(st)).toBeNull();
  let seen = await watch(broker.port, "petrel/sleepy/#");
  stops.push(seen.stop);
  const logs: string[] = [];

  // wake 1: the reading (QoS 0 asked, QoS 1 used: it must survive a sleep) acknowledged, asleep
  const one = await wake(flash, 1, logs);
  expect(one.ms).toBe(600000);
  expect(one.node.client!.outbox.count).toBe(0);
  await until("reading 1 and the asleep status", () => seen.lines.includes('petrel/sleepy/telemetry {"n":1}') &&
    seen.lines.some((l) => l.startsWith('petrel/sleepy/status {"state":"asleep"')), 5000);
  const first = seen.lines.slice();

  // wake 2: the broker is down; after the bound the board sleeps anyway, the reading on flash
  await broker.stop();
  const two = await wake(flash, 2, logs);
  expect(two.node.client!.outbox.count).toBe(1);
  expect(logs.some((l) => l === "node: deep sleep for 600 s (outbox 1 kept on flash)")).toBe(true);

  // wake 3: the broker is back; the kept reading and the new one both arrive
  broker = await startBroker({ port: broker.port, dir: broker.dir });
  seen = await watch(broker.port, "petrel/sleepy/#");
  stops.push(seen.stop);
  const three = await wake(flash, 3, logs);
  expect(three.node.client!.outbox.count).toBe(0);
  await until("readings 2 and 3", () => seen.lines.includes('petrel/sleepy/telemetry {"n":2}') && seen.lines.includes('petrel/sleepy/telemetry {"n":3}'), 5000)
    .catch((e) => { throw new Error(`${e.message}\n${seen.lines.join("\n")}\n${logs.join("\n")}`); });


  const all = [...first, ...seen.lines];
  expect(all.filter((l) => l.startsWith("petrel/sleepy/telemetry ")).sort()).toEqual(
    ['petrel/sleepy/telemetry {"n":1}', 'petrel/sleepy/telemetry {"n":2}', 'petrel/sleepy/telemetry {"n":3}']);
  expect(all.some((l) => l.includes('"state":"offline"'))).toBe(false);
}, 60000);
