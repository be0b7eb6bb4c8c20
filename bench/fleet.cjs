#!/usr/bin/env node
// `make bench` part 3: the fleet at scale. How many simulated boards one Node process keeps on a
// real mosquitto at one QoS 1 message per board per second with fewer than 1% of the messages
// later than one second, and what each board costs in memory; the same ramp with MQTT.js clients,
// side by side in one run.
//
// Each step is a child process of its own (node --expose-gc) holding N clients of one library,
// spread over 127.0.0.x source addresses (as many boards reach a broker from many addresses). The
// boards' publishes are spread evenly over the second; each payload carries the time it was due,
// so a process that falls behind shows as late messages, not as a slower clock. The parent holds
// the broker and an independent subscriber (MQTT.js on fleet/# and petrel/+/telemetry) that measures each message's
// lateness from its due time. A library's ramp ends at its first step with ≥ 1% late or lost, or
// when its clients cannot all connect; the whole run is bounded (FLEET_BUDGET_S, 15 minutes).
//
//   node bench/fleet.cjs          (make bench runs it with the file-descriptor limit raised)
//
// FLEET_STEPS (1000,2500,5000,10000,15000), FLEET_SECONDS (measured seconds per step, 20),
// FLEET_WARM (seconds before measuring, 5), FLEET_LIBS (petrel,petrel-board,petrel-app,mqttjs;
// petrel-board is Petrel with the ESP8266 boards' profile sizes, maxPacket 512 and 20 outbox
// messages, as a fleet of those boards would hold; petrel-app is the whole sensor-node app per
// board, as `make sim DEVICES=N` runs it, without its pseudo-terminal and with its flash in
// memory), FLEET_ADDRESSES (source addresses 127.0.0.2 …, 50), FLEET_BUDGET_S (900),
// FLEET_BROKER (mosquitto; nats-cluster or rabbitmq-cluster: the boards and the subscriber go
// through HAProxy to a three-node cluster, host-sim/brokers.ts, and each step prints the
// cluster's CPU, its nodes' and HAProxy's together, beside the boards' process).
"use strict";
const { spawn } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const root = path.resolve(__dirname, "..");
const dist = path.join(root, "dist/node");
const STEPS = (process.env.FLEET_STEPS ?? "1000,2500,5000,10000,15000").split(",").map(Number);
const SECONDS = Number(process.env.FLEET_SECONDS ?? 20);
const WARM = Number(process.env.FLEET_WARM ?? 5);
const LIBS = (process.env.FLEET_LIBS ?? "petrel,petrel-board,petrel-app,mqttjs").split(",");
const ADDRESSES = Number(process.env.FLEET_ADDRESSES ?? 50);
const BUDGET_MS = Number(process.env.FLEET_BUDGET_S ?? 900) * 1000;
const BROKER = process.env.FLEET_BROKER ?? "mosquitto";
/** Connections opened per batch; the next batch waits for this one's CONNACKs (mosquitto listens with a backlog of 100). */
const BATCH = 100;
const LATE_MS = 1000;
const NAMES = { petrel: "Petrel", "petrel-board": "Petrel/8266", "petrel-app": "Petrel app", mqttjs: "MQTT.js" };
/** The ESP8266 boards' profile sizes (boards/esp8266-*.json): what a simulated sensor board of that kind holds. */
const BOARD_SIZES = { maxPacket: 512, outboxMessages: 20 };

/** Epoch milliseconds, fractional: the same scale in every process on the machine. */
const epoch = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Child: N clients of one library.

function opener(lib, port) {
  if (lib === "mqttjs") {
    const mqtt = require("mqtt");
    const net = require("node:net");
    return (id, local) =>
      new mqtt.MqttClient(() => net.createConnection({ host: "127.0.0.1", port, localAddress: local }), {
        protocolVersion: 4, clientId: id, clean: true, keepalive: 60, reconnectPeriod: 1000,
      });
  }
  if (lib === "petrel-app") return appOpener(port);
  const { connect } = require(path.join(dist, "host-sim/node/client.js"));
  const { memoryStorage } = require(path.join(dist, "firmware/targets/node/storage.js"));
  const sizes = lib === "petrel-board" ? BOARD_SIZES : {};
  return (id, local) =>
    connect({
      brokers: [{ host: "127.0.0.1", port }], clientId: id, clean: true, keepalive: 60, localAddress: local,
      storage: memoryStorage(), logLevel: 0, reconnectMinMs: 1000, ...sizes,
    });
}

/**
 * A whole simulated board: the sensor-node app (firmware/app/main.ts, the start-up every board
 * runs: settings, console, scheduler, sensor task, retained status, command subscription) on
 * the Node platform, as `make sim` runs it, with its flash in memory and no pseudo-terminal. Its
 * one sensor reads the time the reading was due; `publish` asks the app for a reading now (the
 * console's `publish`), which its sensor task takes at QoS 1 on <prefix>/<id>/telemetry.
 */
function appOpener(port) {
  const { startApp } = require(path.join(dist, "firmware/app/main.js"));
  const { nodePlatform } = require(path.join(dist, "firmware/targets/node/platform.js"));
  const { memoryStorage } = require(path.join(dist, "firmware/targets/node/storage.js"));
  const serial = { take() {}, release() {}, write() {} };
  return (id, local) => {
    let due = 0;
    const storage = memoryStorage();
    const app = startApp({
      storage, tls: false, version: "0.1.0-fleet", sensors: [{ name: "due", read: () => due }], serial, back: "Enter", reboot() {},
      platform: (_wifi, log) => nodePlatform({ storage, chipId: id, localAddress: local, logLevel: 0, log: (level, line) => log.write(level, line) }),
    }, { brokers: `127.0.0.1:${port}`, "client.id": id, interval: "86400", qos: "1", keepalive: "60", log: "error" });
    const c = app.node.client;
    return {
      on: (event, fn) => c.on(event, fn),
      publish: (_topic, payload) => {
        due = Number(payload);
        app.node.publishNow();
      },
      end: (done) => {
        app.node.stop();
        c.end(done);
      },
    };
  };
}

function heap() {
  global.gc();
  global.gc();
  const m = process.memoryUsage();
  // (external includes the array buffers)
  return { heap: m.heapUsed, external: m.external, rss: m.rss };
}

/** A client whose first connection calls `first` (reconnections do not); its errors are ignored. */
function watched(c, first) {
  let once = true;
  c.on("connect", () => {
    if (once) first();
    once = false;
  });
  c.on("error", () => {});
  return c;
}

async function child(cfg) {
  const send = (m) => process.stdout.write(JSON.stringify(m) + "\n");
  const open = opener(cfg.lib, cfg.port);
  const before = heap();
  const clients = [];
  let connected = 0;
  const t0 = epoch();
  for (let k = 0; k < cfg.n; k += BATCH) {
    const upto = Math.min(cfg.n, k + BATCH);
    for (let j = k; j < upto; j++) {
      clients.push(watched(open(`fleet-${cfg.lib}-${j}`, `127.0.0.${2 + (j % cfg.addresses)}`), () => connected++));
    }
    // bounded: a batch that cannot connect in 10 s ends the step as failed
    for (let waited = 0; connected < upto; waited += 5) {
      if (waited > 10000) {
        send({ failed: `${connected} of ${upto} clients connected after 10 s` });
        process.exit(0);
      }
      await sleep(5);
    }
  }
  const connectMs = epoch() - t0;
  // the fleet's schedule: board j publishes at start + j/N s + s seconds, s = 0, 1, 2 …
  const start = Math.ceil(epoch()) + 100;
  const end = start + (cfg.warm + cfg.seconds) * 1000;
  const from = start + cfg.warm * 1000;
  const topics = clients.map((_, j) => `fleet/${cfg.lib}/${j}`);
  const cpu0 = process.cpuUsage();
  let next = 0;
  let sent = 0;
  let refused = 0;
  let lagMax = 0;
  // an error (refused, or the connection lost before its acknowledgement) is counted
  const onAck = (e) => {
    if (e) refused++;
  };
  const total = Math.floor(((end - start) / 1000) * cfg.n);
  let mem;
  await new Promise((resolve) => {
    const tick = () => {
      const now = epoch();
      // every message due by now goes out (a late tick sends late, with its due time)
      while (next < total) {
        const due = start + Math.floor(next / cfg.n) * 1000 + ((next % cfg.n) * 1000) / cfg.n;
        if (due > now) break;
        lagMax = Math.max(lagMax, now - due);
        const j = next % cfg.n;
        const c = clients[j];
        c.publish(topics[j], String(due), { qos: 1 }, onAck);
        if (due >= from) sent++;
        next++;
      }
      if (mem === undefined && now >= from) mem = heap();
      if (next >= total) resolve();
      else setTimeout(tick, 5);
    };
    setTimeout(tick, Math.max(0, start - epoch()));
  });
  const cpu = process.cpuUsage(cpu0);
  send({ connected, connectMs, sent, refused, lagMax, cpuMs: (cpu.user + cpu.system) / 1000, before, during: mem, from, to: end });
  // the acknowledgements settle, then every client ends cleanly (bounded)
  await sleep(2000);
  let ended = 0;
  for (const c of clients) {
    if (cfg.lib === "mqttjs") c.end(false, () => ended++);
    else c.end(() => ended++);
  }
  for (let waited = 0; ended < clients.length && waited < 10000; waited += 20) await sleep(20);
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------
// Parent: the broker, the subscriber, the ramp.

function fdLimit() {
  const m = /Max open files\s+(\d+|unlimited)/.exec(fs.readFileSync("/proc/self/limits", "utf8"));
  return m === null || m[1] === "unlimited" ? Infinity : Number(m[1]);
}

function runStep(lib, n, port) {
  return new Promise((resolve) => {
    const cfg = { lib, n, port, warm: WARM, seconds: SECONDS, addresses: ADDRESSES };
    const c = spawn(process.execPath, ["--expose-gc", "--max-old-space-size=8192", __filename, "--child", JSON.stringify(cfg)], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    c.stdout.on("data", (d) => (out += d));
    const killer = setTimeout(() => c.kill("SIGKILL"), (WARM + SECONDS + 120) * 1000);
    c.on("exit", () => {
      clearTimeout(killer);
      const lines = out.split("\n").filter((l) => l.startsWith("{"));
      resolve(lines.length > 0 ? JSON.parse(lines[0]) : { failed: "the step's process ended without a result" });
    });
  });
}

const kb = (b) => (b / 1024).toFixed(1);

/** CPU milliseconds used so far by every process in the process groups `groups` (Linux /proc). */
function groupCpuMs(groups) {
  let ticks = 0;
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    let st;
    try {
      st = fs.readFileSync(`/proc/${d}/stat`, "utf8");
    } catch {
      continue;
    }
    // after "(comm)": state ppid pgrp … utime (14th field) stime (15th)
    const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
    if (groups.includes(Number(f[2]))) ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks * 10;
}

async function main() {
  const { startBroker } = require(path.join(dist, "host-sim/mosquitto.js"));
  const mqtt = require("mqtt");
  const limit = fdLimit();
  const biggest = Math.max(...STEPS);
  if (limit < biggest + 1000) {
    console.log(`fleet: the open-file limit is ${limit}; steps above ${limit - 1000} boards are skipped (make bench raises it with ulimit -n, which needs root or a hard limit that allows it)`);
  }
  const steps = STEPS.filter((n) => n + 1000 <= limit);
  let broker;
  let cluster;
  if (BROKER === "mosquitto") {
    broker = await startBroker({ persistence: false, logTypes: ["error", "warning"], maxInflight: 20, extra: ["max_connections -1", "max_queued_messages 100000"] });
  } else if (BROKER === "nats-cluster" || BROKER === "rabbitmq-cluster") {
    const brokers = require(path.join(dist, "host-sim/brokers.js"));
    cluster = await (BROKER === "nats-cluster" ? brokers.startNatsCluster() : brokers.startRabbitCluster());
    broker = { host: cluster.host, port: cluster.port, close: () => cluster.close() };
  } else {
    console.log(`fleet: FLEET_BROKER is mosquitto, nats-cluster or rabbitmq-cluster, not "${BROKER}"`);
    process.exit(2);
  }
  const arrivals = new Map();
  const sub = mqtt.connect({ host: "127.0.0.1", port: broker.port, protocolVersion: 4, clientId: "fleet-checker", clean: true, reconnectPeriod: 1000 });
  await new Promise((resolve, reject) => {
    sub.once("connect", () => sub.subscribe(["fleet/#", "petrel/+/telemetry"], { qos: 0 }, (e) => (e ? reject(e) : resolve())));
  });
  const t0 = Date.now();
  console.log(`fleet: one QoS 1 message per board per second, ${WARM} s warm-up then ${SECONDS} s measured per step; late = more than ${LATE_MS} ms after it was due, or never arrived`);
  console.log(`fleet: ${cluster !== undefined ? cluster.name : "mosquitto"} ${broker.host}:${broker.port}, clients over ${ADDRESSES} source addresses 127.0.0.2-${1 + ADDRESSES}, open-file limit ${limit}; node ${process.version}, MQTT.js ${require("mqtt/package.json").version}`);
  const results = {};
  for (const lib of LIBS) {
    results[lib] = [];
    for (const n of steps) {
      if (Date.now() - t0 > BUDGET_MS) {
        console.log(`fleet: the ${BUDGET_MS / 60000}-minute budget is spent; ${NAMES[lib]} ${n} and beyond not run`);
        break;
      }
      // the window is known once the child reports; arrivals are kept by due time meanwhile
      const pending = [];
      // fleet/<j> "<due>", or a whole board's petrel/<id>/telemetry {"due":<due>}
      const keep = (topic, payload) => {
        const t = payload.toString();
        pending.push([Number(t.startsWith('{"due":') ? t.slice(7, -1) : t), epoch()]);
      };
      sub.on("message", keep);
      const cpu0 = cluster !== undefined ? groupCpuMs(cluster.groups()) : 0;
      const w0 = Date.now();
      const r = await runStep(lib, n, broker.port);
      const brokerCpu = cluster !== undefined ? ` the cluster's CPU ${((groupCpuMs(cluster.groups()) - cpu0) * 100 / (Date.now() - w0)).toFixed(0)}% (of one core, the step's whole time);` : "";
      await sleep(r.failed ? 0 : 3000);
      sub.removeListener("message", keep);
      if (r.failed) {
        console.log(`  ${NAMES[lib].padEnd(11)} ${String(n).padStart(6)} boards: FAILED (${r.failed})`);
        results[lib].push({ n, ok: false, why: r.failed });
        break;
      }
      const lat = [];
      let late = 0;
      for (const [due, at] of pending) {
        if (due >= r.from && due < r.to) {
          lat.push(at - due);
          if (at - due > LATE_MS) late++;
        }
      }
      lat.sort((a, b) => a - b);
      const arrived = lat.length;
      const lost = Math.max(0, r.sent - arrived);
      const latePct = r.sent === 0 ? 100 : ((late + lost) * 100) / r.sent;
      const q = (p) => (lat.length === 0 ? 0 : lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]);
      const perBoard = (r.during.heap - r.before.heap + r.during.external - r.before.external) / n;
      const rssBoard = (r.during.rss - r.before.rss) / n;
      const ok = latePct < 1;
      results[lib].push({ n, ok, latePct, perBoard, rssBoard, connectMs: r.connectMs, p50: q(0.5), p99: q(0.99), sent: r.sent, arrived, late, lost, lagMax: r.lagMax });
      console.log(`  ${NAMES[lib].padEnd(11)} ${String(n).padStart(6)} boards: ${ok ? "kept up" : "FELL BEHIND"}: ${r.sent} sent, ${late} late, ${lost} lost (${latePct.toFixed(2)}%), latency p50 ${q(0.5).toFixed(1)} ms p99 ${q(0.99).toFixed(1)} ms, sender's lag up to ${r.lagMax.toFixed(0)} ms, its CPU ${((r.cpuMs * 100) / ((WARM + SECONDS) * 1000)).toFixed(0)}%;${brokerCpu} ${kb(perBoard)} KB heap+buffers and ${kb(rssBoard)} KB RSS per board; connected in ${(r.connectMs / 1000).toFixed(1)} s`);
      if (!ok) break;
    }
  }
  sub.end(true);
  await broker.close();
  console.log("");
  console.log("  largest fleet kept up (< 1% late), and memory per board at that size (heap + buffers, after GC):");
  const best = {};
  for (const lib of LIBS) {
    const kept = results[lib].filter((s) => s.ok);
    best[lib] = kept[kept.length - 1];
    const b = best[lib];
    console.log(`    ${NAMES[lib].padEnd(11)} ${b === undefined ? "none" : `${b.n} boards, ${kb(b.perBoard)} KB per board (${kb(b.rssBoard)} KB RSS)`}`);
  }
  // memory compared at the same fleet size: the largest both kept up with
  for (const lib of LIBS.filter((l) => l !== "mqttjs" && results[l] && results.mqttjs)) {
    const both = results[lib].filter((s) => s.ok && results.mqttjs.some((m) => m.ok && m.n === s.n));
    const at = both[both.length - 1];
    if (at === undefined) continue;
    const m = results.mqttjs.find((s) => s.n === at.n);
    console.log(`    at ${at.n} boards MQTT.js takes ${(m.perBoard / at.perBoard).toFixed(2)}x ${NAMES[lib]}'s heap+buffers per board (${(m.rssBoard / at.rssBoard).toFixed(2)}x its RSS)`);
  }
  console.log(`  fleet: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}

// bench/heap.cjs makes its clients with the same opener
module.exports = { opener, watched };

if (require.main === module) {
  if (process.argv[2] === "--child") child(JSON.parse(process.argv[3]));
  else main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
