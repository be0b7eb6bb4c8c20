/**
 * `make sim`: one simulated board running the Node build of the firmware. It starts a local
 * mosquitto of its own (or uses BROKER=host:port), then publishes a counter every second at
 * QoS 1 to `petrel/<client id>/counter`, subscribes to it, and prints what it does. Its flash is
 * a directory (SIM_STORE, default dist/sim-board), so a restart resumes the outbox.
 *
 *   make sim                          until Ctrl-C
 *   SIM_COUNT=10 make sim             ten messages, then end() and exit
 *   BROKER=test.example:1883 make sim
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LOG_ERROR, LOG_INFO, LOG_WARN } from "../firmware/port/log";
import { startBroker, type Broker } from "./mosquitto";
import { connect } from "./node/client";

const LEVELS = ["error", "warn ", "info ", "debug"];

function stamp(): string {
  return new Date().toISOString().slice(11, 23);
}

function say(line: string): void {
  process.stdout.write(`${stamp()} ${line}\n`);
}

async function main(): Promise<void> {
  const count = Number(process.env.SIM_COUNT ?? "0");
  const intervalMs = Number(process.env.SIM_INTERVAL_MS ?? "1000");
  const store = path.resolve(process.env.SIM_STORE ?? "dist/sim-board");
  let broker: Broker | undefined;
  let host: string;
  let port: number;
  if (process.env.BROKER) {
    const m = /^(.+):(\d+)$/.exec(process.env.BROKER);
    if (!m) {
      say(`BROKER must be host:port (got "${process.env.BROKER}"); fix: e.g. BROKER=192.168.1.10:1883`);
      process.exit(2);
    }
    host = m[1];
    port = Number(m[2]);
    say(`sim: using the broker at ${host}:${port}`);
  } else {
    broker = await startBroker({ extra: ["autosave_on_changes true"] });
    host = broker.host;
    port = broker.port;
    say(`sim: started mosquitto on ${host}:${port} (its log: ${path.join(broker.dir, "mosquitto.log")})`);
  }
  fs.mkdirSync(store, { recursive: true });
  say(`sim: board flash is ${store}`);

  const client = connect({
    brokers: [{ host, port }],
    clientId: process.env.SIM_CLIENT_ID ?? "petrel-sim",
    keepalive: 30,
    reconnectMinMs: 500,
    reconnectMaxMs: 10000,
    storageDir: store,
    hosts: { localhost: "127.0.0.1" },
    logLevel: LOG_INFO,
    log: (level, line) => say(`${LEVELS[level] ?? level} ${line}`),
    will: { topic: "petrel/petrel-sim/status", payload: "offline", qos: 1, retain: true },
  });
  const topic = `petrel/${client.core.settings.clientId}/counter`;
  let n = 0;
  let acked = 0;
  let received = 0;
  let timer: NodeJS.Timeout | undefined;
  let finishing = false;

  /** With SIM_COUNT: every message published, received back and acknowledged. */
  const done = () => count > 0 && received >= count && acked >= count;
  const finish = (code: number) => {
    if (finishing) return;
    finishing = true;
    if (timer) clearInterval(timer);
    say(`sim: ending: published ${n}, acknowledged ${acked}, received ${received}, outbox ${client.core.outbox.count}`);
    client.end(async () => {
      if (broker) await broker.close();
      process.exit(code);
    });
    setTimeout(() => process.exit(code), 3000).unref();
  };

  client.on("connect", (ack) => {
    say(`sim: connected (session ${ack.sessionPresent ? "resumed" : "new"})`);
    client.publish(`petrel/${client.core.settings.clientId}/status`, "online", { qos: 1, retain: true });
  });
  client.on("offline", () => say("sim: offline"));
  client.on("reconnect", () => say("sim: reconnecting"));
  client.on("error", (e) => say(`${LEVELS[LOG_WARN]} sim: ${e.code}: ${e.message}`));
  client.on("message", (t, payload) => {
    received++;
    say(`sim: received ${t} = ${payload.toString()}`);
    if (done()) finish(0);
  });
  client.subscribe(topic, { qos: 1 }, (err, granted) => {
    if (err) say(`${LEVELS[LOG_ERROR]} sim: subscribe failed: ${err.message}`);
    else say(`sim: subscribed to ${topic} (granted QoS ${granted?.[0]})`);
  });

  timer = setInterval(() => {
    if (count > 0 && n >= count) return;
    n++;
    const value = String(n);
    const err = client.core.publish(topic, value, 1, false, (e) => {
      if (e) say(`sim: message ${value} lost: ${e.message}`);
      else acked++;
      if (done()) finish(0);
    });
    if (err) say(`sim: publish ${value} refused: ${err.code}: ${err.message}`);
    else say(`sim: published ${topic} = ${value} (QoS 1, outbox ${client.core.outbox.count})`);
  }, intervalMs);

  process.on("SIGINT", () => finish(0));
  process.on("SIGTERM", () => finish(0));
}

main().catch((e) => {
  say(`sim: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
