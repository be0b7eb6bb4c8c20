import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { brokerMissing, clusterMissing, startNatsCluster, startRabbitCluster, type Cluster } from "../host-sim/brokers";
import { clusterLines, runClusterChaos, type ClusterChaosResult } from "../host-sim/chaos/cluster";

// The cluster lab's smoke (`make chaos BROKER=nats-cluster|rabbitmq-cluster` runs the full seeded
// schedules): three nodes behind HAProxy with health checks (host-sim/brokers.ts), NATS Server
// with JetStream replicating the MQTT streams to all three, and RabbitMQ with durable MQTT
// sessions in quorum queues and pause_minority. Two Petrel boards publish QoS 0 and 1 through
// HAProxy across a kill -9 of the node they are on, an HAProxy restart and that node cut off from
// the other two; then, with the three nodes as their own broker list, across a stop of their
// node and that node cut off. The checker subscribes through HAProxy. No QoS 1 message may be lost
// on the client's leg, and every fault must end with every board connected and the cluster whole.
// On NATS, boards that drop what they publish while offline must get a FAIL (the lab's proof).
// Without the brokers or haproxy it skips saying how to get them; under CI=true it fails. Every
// wait is bounded.

const CI = process.env.CI === "true";

const CLUSTERS = [
  { kind: "nats", title: "NATS cluster (3 nodes, JetStream R3) behind HAProxy", missing: clusterMissing(), start: startNatsCluster },
  { kind: "rabbitmq", title: "RabbitMQ cluster (3 nodes, quorum queues) behind HAProxy", missing: brokerMissing("rabbitmq") ?? clusterMissing(), start: startRabbitCluster },
];

/** The boards' own log lines of a run (info and worse), kept to show when it fails. */
function boardLog(): { lines: string[]; add: (l: string) => void } {
  const lines: string[] = [];
  return { lines, add: (l) => { lines.push(l); } };
}

function check(r: ClusterChaosResult, kinds: string[], log: string[]): void {
  console.log(clusterLines(r).map((l) => `[observed] ${l}`).join("\n"));
  if (r.violations.length > 0) console.log(`the boards' log (the last 80 lines):\n${log.slice(-80).join("\n")}`);
  expect(r.faults.map((f) => f.kind)).toEqual(kinds);
  expect(r.violations).toEqual([]);
  const q1 = r.rows[1];
  expect(q1.sent).toBeGreaterThan(0);
  expect(q1.lost).toBe(0);
  expect(q1.acked).toBe(q1.sent);
  // every fault hit a board's connection: each board connected again at least once per fault
  // (an HAProxy restart drops all; a cut node closes its sessions or stops)
  expect(r.connects).toBeGreaterThanOrEqual(r.boards * (1 + kinds.length));
}

describe.each(CLUSTERS)("$title", ({ kind, missing, start }) => {
  if (missing !== null && !CI) {
    it.skip(`skipped: ${missing}`, () => undefined);
    return;
  }
  let c: Cluster;
  beforeAll(async () => {
    if (missing !== null) throw new Error(`${missing} (CI=true: the cluster smoke must run)`);
    c = await start({ partitions: true });
  }, 300_000);
  afterAll(async () => {
    if (c !== undefined) await c.close();
  }, 120_000);

  it("through HAProxy: QoS 1 survives a kill -9 of the boards' node, an HAProxy restart and that node cut off from the others", async () => {
    // balance first puts the boards on node 1, where the faults are
    const kinds = ["kill", "proxy", "partition"] as const;
    const log = boardLog();
    const r = await runClusterChaos({ cluster: c, route: "haproxy", boards: 2, seconds: 0, seed: 7, first: [...kinds], firstNodes: [0, 0, 0], boardLog: log.add });
    check(r, [...kinds], log.lines);
  }, 420_000);

  // the lab's proof that it can fail (one cluster is enough: the verdict is the same code). A board
  // whose connection breaks waits 50-100 ms (reconnectMinMs 100, jittered) before it dials again,
  // so at 50 publishes a second per QoS a broken board drops some, whichever node it lands on next.
  if (kind === "nats") {
    it("boards that drop what they publish while offline get a FAIL: the checker sees the loss on the client's leg", async () => {
      const r = await runClusterChaos({ cluster: c, route: "haproxy", boards: 2, seconds: 0, seed: 9, rate: 50, first: ["kill"], firstNodes: [0], brokenOffline: true });
      console.log(clusterLines(r).map((l) => `[observed] broken boards: ${l}`).join("\n"));
      expect(r.rows[1].lost).toBeGreaterThan(0);
      expect(r.ok).toBe(false);
      expect(r.violations.join("\n")).toMatch(/lost on the client's leg/);
    }, 300_000);
  }

  it(`the three nodes as the boards' own broker list: QoS 1 survives a stop of their node, then the next node they are on cut off (${kind})`, async () => {
    const kinds = ["stop", "partition"] as const;
    const log = boardLog();
    const r = await runClusterChaos({ cluster: c, route: "list", boards: 2, seconds: 0, seed: 8, first: [...kinds], firstNodes: [0, 1], boardLog: log.add });
    check(r, [...kinds], log.lines);
  }, 420_000);
});
