/**
 * A Petrel publisher in a process of its own, for tests that kill it (SIGKILL) mid-stream and
 * start it again on the same storage directory. Run the Node build:
 *
 *   node dist/node/host-sim/node/publisher-process.js '<job as JSON>'
 *
 * Modes:
 * - "publish": publishes messages `from`..`count-1` on `topic` (payload = the decimal index; QoS 1
 *   for even indices, 2 for odd), `burst` of them every `paceMs`; waits and retries when the outbox
 *   is full. Runs until every message is acknowledged, then ends.
 * - "resume": publishes nothing; sends what the outbox left by an earlier run holds, then ends.
 *
 * One line on stdout per event, so a parent can follow and kill it at a chosen point:
 *   "loaded <n>"             messages found in the outbox at start
 *   "connect <0|1>"          CONNACK 0 arrived; session present
 *   "p <i> <outbox count>"   publish i was accepted: it is in storage
 *   "a <i>"                  message i was acknowledged (PUBACK / PUBCOMP)
 *   "e <code> <message>"     an error event
 *   "drained"                the outbox is empty (then the process ends)
 */
import { connect } from "./client";

interface Job {
  mode: "publish" | "resume";
  host: string;
  port: number;
  storageDir: string;
  clientId: string;
  topic: string;
  count?: number;
  from?: number;
  burst?: number;
  paceMs?: number;
  maxInflight?: number;
}

const job = JSON.parse(process.argv[2] ?? "{}") as Job;
const say = (line: string): void => {
  process.stdout.write(line + "\n");
};

const client = connect({
  brokers: [{ host: job.host, port: job.port }],
  clientId: job.clientId,
  clean: false,
  keepalive: 30,
  reconnectMinMs: 50,
  reconnectMaxMs: 500,
  maxInflight: job.maxInflight ?? 20,
  outboxMessages: 1000,
  outboxBytes: 1 << 20,
  storageDir: job.storageDir,
});
say(`loaded ${client.core.outbox.count}`);
client.on("connect", (c) => say(`connect ${c.sessionPresent ? 1 : 0}`));
client.on("error", (e) => say(`e ${e.code} ${e.message}`));

let next = job.from ?? 0;
const count = job.count ?? 0;

function drainedThenEnd(): void {
  const t = setInterval(() => {
    if (next >= count && client.core.outbox.count === 0) {
      clearInterval(t);
      say("drained");
      client.end(() => process.exit(0));
    }
  }, 10);
}

if (job.mode === "publish") {
  const tick = setInterval(() => {
    for (let k = 0; k < (job.burst ?? 1) && next < count; k++) {
      const i = next;
      const e = client.core.publish(job.topic, String(i), i % 2 === 0 ? 1 : 2, false, (err) => {
        if (err === undefined) say(`a ${i}`);
      });
      if (e !== undefined) {
        if (e.code === "outbox-full") break;
        say(`e ${e.code} ${e.message}`);
        process.exit(1);
      }
      next = i + 1;
      say(`p ${i} ${client.core.outbox.count}`);
    }
    if (next >= count) clearInterval(tick);
  }, job.paceMs ?? 5);
}
drainedThenEnd();
