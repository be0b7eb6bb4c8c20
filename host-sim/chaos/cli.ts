/**
 * `make chaos`: the chaos lab on the command line. CHAOS_BOARDS (default 5), CHAOS_SECONDS
 * (default 60), CHAOS_SEED (default: from the clock, printed), CHAOS_BROKEN=1 (boards that lose
 * their outbox at a power cut, or =dups: boards that never forget a completed message; the verdict
 * must be FAIL), CHAOS_KILLS (1, the default: broker kill -9 and restarts without persistence among
 * the faults; what the broker itself loses is counted apart; 0 leaves them out), CHAOS_FAILOVER (1,
 * the default: a second broker and failovers to it; 0 leaves them out). CHAOS_PROTOCOL (4, the
 * default, or 5: MQTT 5.0 for the boards in this process; the other runtimes' sensor nodes speak 5.0 whatever it says: their
 * host builds carry every feature, and the sensor node speaks 5.0 where its build has it).
 * CHAOS_RATE (4): messages per board per QoS per second. CHAOS_RUNTIMES (espruino,lua51,lua53,fengari by default; "none"): a board on each, besides the
 * CHAOS_BOARDS in this process. CHAOS_REPORT: where the HTML report goes (default
 * dist/chaos/report-<seed>.html; the brokers' logs go beside it).
 * Exit 0 on PASS, 1 on FAIL.
 *
 * BROKER=nats-cluster or BROKER=rabbitmq-cluster: the cluster lab (host-sim/chaos/cluster.ts)
 * instead: three nodes behind HAProxy, CHAOS_BOARDS boards (default 5) publishing QoS 0 and 1
 * through HAProxy and then, on the same cluster, with the three nodes as their own broker list
 * (CHAOS_ROUTE=haproxy or list runs one of the two), CHAOS_SECONDS (default 60) of node kills,
 * stops, HAProxy restarts and a node cut off from the others, each profile. CHAOS_LOG=<file>: the
 * boards' log lines go there. CHAOS_BROKEN=1: boards that drop what they publish while offline
 * (the verdict must be FAIL).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { APP_TARGETS, type AppTarget } from "../app-boards";
import { brokerMissing, clusterMissing, startNatsCluster, startRabbitCluster } from "../brokers";
import { clusterLines, runClusterChaos, type ClusterRoute } from "./cluster";
import { runChaos } from "./lab";
import { faultSummary } from "./report";

/** The cluster lab: both routes (or CHAOS_ROUTE's) on one cluster; exit 0 when every profile passes. */
async function cluster(kind: string, seed: number, boards: number, seconds: number): Promise<void> {
  if (kind !== "nats-cluster" && kind !== "rabbitmq-cluster") {
    console.log(`chaos: BROKER is nats-cluster or rabbitmq-cluster (or unset: the mosquitto lab), not "${kind}"`);
    process.exit(2);
  }
  const route = process.env.CHAOS_ROUTE ?? "";
  if (route !== "" && route !== "haproxy" && route !== "list") {
    console.log(`chaos: CHAOS_ROUTE is haproxy or list (unset: both), not "${route}"`);
    process.exit(2);
  }
  const missing = kind === "nats-cluster" ? clusterMissing() : brokerMissing("rabbitmq") ?? clusterMissing();
  if (missing !== null) {
    console.log(`chaos: ${missing}`);
    process.exit(2);
  }
  console.log(`chaos: starting ${kind} (three nodes and HAProxy on loopback)`);
  const c = await (kind === "nats-cluster" ? startNatsCluster({ partitions: true }) : startRabbitCluster({ partitions: true }));
  let ok = true;
  try {
    console.log(`chaos: ${c.name}`);
    for (const r of (route === "" ? ["haproxy", "list"] : [route]) as ClusterRoute[]) {
      const logFile = process.env.CHAOS_LOG;
      if (logFile !== undefined) fs.writeFileSync(logFile, "");
      const res = await runClusterChaos({ cluster: c, route: r, boards, seconds, seed, rate: Number(process.env.CHAOS_RATE ?? "2"), progress: (l) => console.log(l),
        brokenOffline: process.env.CHAOS_BROKEN === "1",
        boardLog: logFile === undefined ? undefined : (l) => fs.appendFileSync(logFile, `${r} ${l}\n`) });
      for (const l of clusterLines(res)) console.log(l);
      ok &&= res.ok;
    }
  } finally {
    await c.close();
  }
  process.exit(ok ? 0 : 1);
}

async function main(): Promise<void> {
  const seed = Number(process.env.CHAOS_SEED ?? String(Date.now() % 1000000));
  const boards = Number(process.env.CHAOS_BOARDS ?? "5");
  const seconds = Number(process.env.CHAOS_SECONDS ?? "60");
  if ((process.env.BROKER ?? "") !== "") {
    console.log(`chaos: seed ${seed}, ${boards} boards, ${seconds} s of faults per profile (CHAOS_SEED=${seed} repeats the schedule)`);
    return cluster(process.env.BROKER!, seed, boards, seconds);
  }
  // messages per board per QoS per second (4): a hundred boards at 1 keep one checker comfortable
  const rate = Number(process.env.CHAOS_RATE ?? "4");
  console.log(`chaos: seed ${seed}, ${boards} boards, ${seconds} s of faults (CHAOS_SEED=${seed} repeats the schedule)`);
  const broken = process.env.CHAOS_BROKEN ?? "";
  const rts = process.env.CHAOS_RUNTIMES ?? "espruino,lua51,lua53,fengari";
  const runtimes = rts === "none" || rts === "" ? [] : rts.split(",");
  for (const t of runtimes) {
    if (!(APP_TARGETS as readonly string[]).includes(t)) {
      console.log(`chaos: CHAOS_RUNTIMES: no runtime "${t}" (runtimes: ${APP_TARGETS.join(", ")}, or none)`);
      process.exit(2);
    }
  }
  console.log(`chaos: boards on other runtimes: ${runtimes.length > 0 ? runtimes.join(", ") : "none"}`);
  const r = await runChaos({ boards, seconds, seed, rate, brokenOutbox: broken === "1", brokenDuplicates: broken === "dups",
    brokerKills: process.env.CHAOS_KILLS !== "0", protocolVersion: Number(process.env.CHAOS_PROTOCOL ?? "4"), failover: process.env.CHAOS_FAILOVER !== "0", runtimes: runtimes as AppTarget[], progress: (l) => console.log(l),
    report: path.resolve(process.env.CHAOS_REPORT ?? `dist/chaos/report-${seed}.html`) });
  for (const row of r.verdict.rows) {
    console.log(`  ${row.device} QoS ${row.qos}: sent ${row.sent}, received ${row.received}, duplicates ${row.duplicates}, lost ${row.lost}`);
  }
  console.log(`chaos: ${r.faults.length} faults (${faultSummary(r)}); QoS 0 lost ${r.verdict.qos0Lost}; refused (outbox or flash full) ${r.refused}`);
  console.log(`chaos: broker-side (its state lost): ${r.verdict.brokerSide.lost} lost, ${r.verdict.brokerSide.duplicates} QoS 2 repeats; QoS 2 through both brokers (failover) ${r.verdict.acrossBrokers}; QoS 2 resent to a checker under the same packet id ${r.verdict.checkerLeg}; recovery after a fault: p50 ${r.recovery.p50} ms, p99 ${r.recovery.p99} ms, max ${r.recovery.max} ms (${r.recovery.samples} faults)`);
  if (runtimes.length > 0) console.log(`chaos: the other runtimes' boards told ${r.consoleAcks.seen} acknowledgements at their consoles; ${r.consoleAcks.unseen} messages went unseen (left in flash by a power cut: counted from their acceptance)`);
  const d = r.verdict.downlink;
  if (d !== undefined) console.log(`chaos: downlink (QoS 2 commands to the boards): ${d.sent} sent, ${d.delivered} delivered, ${d.duplicates} twice, ${d.lost} never (${d.notTaken} never taken by a broker, ${d.notSubscribed} taken with no subscription of the board's (a broker restarted without persistence), ${d.lostWithState} lost with a broker's state, ${d.undelivered} taken and not delivered); the duplicate check caught ${r.duplicatesCaught} repeats`);
  for (const v of r.verdict.violations.slice(0, 20)) console.log(`  VIOLATION ${v}`);
  console.log(`chaos: the report (one HTML file, no network needed): ${r.report}`);
  console.log(`chaos: ${r.verdict.ok ? "PASS" : `FAIL (${r.verdict.violations.length} violations)`} (seed ${seed})`);
  process.exit(r.verdict.ok ? 0 : 1);
}

main().catch((e) => {
  console.error(`chaos: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(2);
});
