/**
 * `make sim`: one simulated sensor node running the Node build of the app (firmware/app), its
 * serial console on this terminal. It starts a local mosquitto of its own (or uses
 * BROKER=host:port, which becomes the board's default `brokers`), publishes simulated readings
 * (temperature, Wi-Fi RSSI, free heap) to <prefix>/<id>/telemetry, keeps its retained status,
 * and takes commands on <prefix>/<id>/cmd. Type help at the console. Its flash (settings and
 * outbox) is a directory, SIM_STORE (default dist/sim-board): settings saved there survive a restart.
 *
 *   make sim                       until Ctrl-C (or Ctrl-D)
 *   SIM_COUNT=3 make sim           three readings sent and acknowledged, then it ends
 *   SIM_INTERVAL=1 make sim        the board's default interval, seconds (default 5)
 *   BROKER=test.example:1883 make sim
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { settingsCommands, typingSecret } from "../firmware/app/commands";
import { SensorNode } from "../firmware/app/node";
import { Settings } from "../firmware/app/settings";
import { LineConsole } from "../firmware/console/line";
import { LOG_INFO } from "../firmware/port/log";
import { startBroker, type Broker } from "./mosquitto";
import { nodePlatform } from "./node/platform";
import { terminalSerial } from "./node/serial";

const LEVELS = ["error", "warn ", "info ", "debug"];
const VERSION = "0.1.0-sim";

function stamp(): string {
  return new Date().toISOString().slice(11, 23);
}

function say(line: string): void {
  process.stdout.write(`\r${stamp()} ${line}\r\n`);
}

async function main(): Promise<void> {
  const count = Number(process.env.SIM_COUNT ?? "0");
  const store = path.resolve(process.env.SIM_STORE ?? "dist/sim-board");
  let broker: Broker | undefined;
  let brokerAt: string;
  if (process.env.BROKER) {
    brokerAt = process.env.BROKER;
    say(`sim: using the broker at ${brokerAt}`);
  } else {
    broker = await startBroker({ extra: ["autosave_on_changes true"] });
    brokerAt = `${broker.host}:${broker.port}`;
    say(`sim: started mosquitto on ${brokerAt} (its log: ${path.join(broker.dir, "mosquitto.log")})`);
  }
  fs.mkdirSync(store, { recursive: true });
  say(`sim: board flash is ${store}`);

  let heap = 30000;
  const platform = nodePlatform({
    storageDir: store,
    chipId: process.env.SIM_ID ?? "sim1",
    hosts: { localhost: "127.0.0.1" },
    logLevel: LOG_INFO,
    log: (level, line) => say(`${LEVELS[level] ?? level} ${line}`),
    freeHeap: () => heap,
  });
  const st = new Settings(platform.storage, true);
  const why = st.setDefault("brokers", brokerAt);
  if (why !== null) {
    say(`sim: BROKER: ${why}`);
    process.exit(2);
  }
  const interval = st.setDefault("interval", process.env.SIM_INTERVAL ?? "5");
  if (interval !== null) {
    say(`sim: SIM_INTERVAL: ${interval}`);
    process.exit(2);
  }
  const loaded = st.load();
  if (loaded !== null) say(`warn  ${loaded}`);

  let t = 0;
  const node = new SensorNode({
    platform,
    tls: true,
    version: VERSION,
    sensors: [
      { name: "temp", read: () => Math.round((21 + 2 * Math.sin(t++ / 20) + platform.random(10) / 50) * 10) / 10 },
      { name: "rssi", read: () => -55 - platform.random(12) },
      { name: "heap", read: () => (heap = 30000 - platform.random(800)) },
    ],
    reboot: () => finish(0, "sim: reboot asked; the simulated board stops (run make sim again to boot it)"),
    log: (line) => say(`info  ${line}`),
  }, st);
  const problem = node.start();
  if (problem !== null) {
    say(`error ${problem}`);
    process.exit(2);
  }
  say(`sim: watch it with: mosquitto_sub -h ${brokerAt.replace(/:\d+$/, "")} -p ${brokerAt.replace(/^.*:/, "")} -t '${node.topic("#")}' -v`);

  const con: LineConsole = new LineConsole(terminalSerial(process.stdin, process.stdout, () => con.start()),
    [...settingsCommands(st, () => say("info  settings are the defaults now; reboot (or restart make sim) to use them")), ...node.commands()],
    "pressing Enter", typingSecret);
  con.start();

  let finishing = false;
  const finish = (code: number, why: string) => {
    if (finishing) return;
    finishing = true;
    say(why);
    say(`sim: ending: ${node.sent} readings sent, ${node.dropped} dropped, outbox ${node.client!.core.outbox.count}`);
    if (process.stdin.isTTY) process.stdin.setRawMode(false);
    node.client!.end(async () => {
      if (broker) await broker.close();
      process.exit(code);
    });
    setTimeout(() => process.exit(code), 3000).unref();
  };
  if (count > 0) {
    const poll = setInterval(() => {
      if (node.sent >= count && node.client!.core.outbox.count === 0) {
        clearInterval(poll);
        finish(0, `sim: ${count} readings sent and acknowledged`);
      }
    }, 50);
  }
  process.on("SIGINT", () => finish(0, "sim: stopping"));
  process.on("SIGTERM", () => finish(0, "sim: stopping"));
}

main().catch((e) => {
  say(`sim: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
