/**
 * `make chaos`: the chaos lab on the command line. CHAOS_BOARDS (default 5), CHAOS_SECONDS
 * (default 60), CHAOS_SEED (default: from the clock, printed), CHAOS_BROKEN=1 (boards that lose
 * their outbox at a power cut: the verdict must be FAIL), CHAOS_KILLS=1 (broker kill -9 and
 * restarts without persistence among the faults; what the broker itself loses is counted apart).
 * CHAOS_REPORT: where the HTML report goes (default dist/chaos/report-<seed>.html).
 * Exit 0 on PASS, 1 on FAIL.
 */
import * as path from "node:path";
import { runChaos } from "./lab";

async function main(): Promise<void> {
  const seed = Number(process.env.CHAOS_SEED ?? String(Date.now() % 1000000));
  const boards = Number(process.env.CHAOS_BOARDS ?? "5");
  const seconds = Number(process.env.CHAOS_SECONDS ?? "60");
  console.log(`chaos: seed ${seed}, ${boards} boards, ${seconds} s of faults (CHAOS_SEED=${seed} repeats the schedule)`);
  const r = await runChaos({ boards, seconds, seed, brokenOutbox: process.env.CHAOS_BROKEN === "1", brokerKills: process.env.CHAOS_KILLS === "1", progress: (l) => console.log(l),
    report: path.resolve(process.env.CHAOS_REPORT ?? `dist/chaos/report-${seed}.html`) });
  for (const row of r.verdict.rows) {
    console.log(`  ${row.device} QoS ${row.qos}: sent ${row.sent}, received ${row.received}, duplicates ${row.duplicates}, lost ${row.lost}`);
  }
  console.log(`chaos: ${r.faults.length} faults (${r.powerCuts} power cuts, ${r.brokerRestarts} broker restarts, ${r.brokerKills} kill -9, ${r.brokerWipes} without persistence); QoS 0 lost ${r.verdict.qos0Lost}; refused while cut off ${r.refused}`);
  console.log(`chaos: broker-side (its state lost): ${r.verdict.brokerSide.lost} lost, ${r.verdict.brokerSide.duplicates} QoS 2 repeats; recovery after a fault: p50 ${r.recovery.p50} ms, p99 ${r.recovery.p99} ms, max ${r.recovery.max} ms (${r.recovery.samples} faults)`);
  for (const v of r.verdict.violations.slice(0, 20)) console.log(`  VIOLATION ${v}`);
  console.log(`chaos: the report (one HTML file, no network needed): ${r.report}`);
  console.log(`chaos: ${r.verdict.ok ? "PASS" : `FAIL (${r.verdict.violations.length} violations)`} (seed ${seed})`);
  process.exit(r.verdict.ok ? 0 : 1);
}

main().catch((e) => {
  console.error(`chaos: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(2);
});
