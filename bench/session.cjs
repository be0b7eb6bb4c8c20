#!/usr/bin/env node
// `make bench` part 2: Petrel's session against MQTT.js, side by side in one run, against the
// same real mosquitto. Each library runs in a child process of its own (so JIT state and heaps
// never mix); the parent starts the broker, collects the children's JSON and prints one table.
// Run `make build` first (make bench does): the Petrel side is the Node build in dist/node.
//
//   node bench/session.cjs                      the whole comparison
//   node --expose-gc bench/session.cjs --child '{"lib":"petrel",...}'   one case (what the parent runs)
//
// Tuning: BENCH_N0 (QoS 0 messages), BENCH_N12 (QoS 1/2 messages), BENCH_RTT (round trips),
// BENCH_RTT_NODELAY (round trips against the broker with set_tcp_nodelay true),
// BENCH_CLIENTS (idle clients for the heap figure), BENCH_ROUNDS (throughput rounds; median).
// BENCH_PROF=dir writes a CPU profile of every child there (node --cpu-prof), to see where time goes.
"use strict";
const { spawn, spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const root = path.resolve(__dirname, "..");
const dist = path.join(root, "dist/node");

const WINDOW = 20;
const PAYLOAD_BYTES = 64;
const N0 = Number(process.env.BENCH_N0 ?? 20000);
const N12 = Number(process.env.BENCH_N12 ?? 10000);
const RTT = Number(process.env.BENCH_RTT ?? 2000);
/** Round trips against the second broker (TCP_NODELAY on its side), where stalls are the rule for one library. */
const RTT_NODELAY = Number(process.env.BENCH_RTT_NODELAY ?? 200);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 200);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
/** fileStorage pays a file system round per QoS 1/2 message: it gets this share of the messages. */
const FILE_SHARE = 5;
/** No progress for this long ends a run (QoS 0: the rest counts as lost; QoS 1/2: a failure). */
const STALL_MS = 1000;

const LIBS = {
  petrel: "Petrel (memoryStorage)",
  mqttjs: "MQTT.js",
  "petrel-file": "Petrel (fileStorage)",
  petrel5: "Petrel at MQTT 5.0",
  mqttjs5: "MQTT.js at MQTT 5.0",
};
/** The telemetry a sensor node sends, for the bytes-on-the-wire lines. */
const TELEMETRY_TOPIC = "petrel/petrel-00000000adde/telemetry";
const TELEMETRY = "{\"temp\":21.5,\"jsvars\":1205}";
const WIRE_N = 100;

const now = () => performance.now();

// ---------------------------------------------------------------------------------------------
// The two libraries behind one shape: open(id) returns an MQTT.js-shaped client (on, publish,
// subscribe, end), configured alike: MQTT 3.1.1, clean session, keepalive 60 s.

function library(cfg) {
  if (cfg.lib === "socket") {
    // Not a client: a bare connected TCP socket, what every client above carries, for scale.
    const net = require("node:net");
    return {
      open: () => {
        const s = net.connect({ host: cfg.host, port: cfg.port });
        return {
          on: (ev, fn) => {
            if (ev === "connect" || ev === "error") s.on(ev, fn);
          },
          removeListener: (ev, fn) => s.removeListener(ev, fn),
          end: (cb) => {
            s.once("close", cb);
            s.destroy();
          },
        };
      },
    };
  }
  // "…5": the library at MQTT 5.0; cfg.alias: with topic aliases (MQTT.js: autoAssignTopicAlias)
  const v = cfg.lib.endsWith("5") ? 5 : 4;
  if (cfg.lib.startsWith("mqttjs")) {
    const mqtt = require("mqtt");
    return {
      open: (id) => mqtt.connect({ host: cfg.host, port: cfg.port, protocol: "mqtt", protocolVersion: v, clientId: id, clean: true, keepalive: 60, reconnectPeriod: 0,
        ...(cfg.alias ? { autoAssignTopicAlias: true } : {}) }),
    };
  }
  const { connect } = require(path.join(dist, "host-sim/node/client.js"));
  const { memoryStorage, fileStorage } = require(path.join(dist, "firmware/targets/node/storage.js"));
  const file = cfg.lib === "petrel-file";
  return {
    open: (id) =>
      connect({
        brokers: [{ host: cfg.host, port: cfg.port }],
        clientId: id,
        clean: true,
        keepalive: 60,
        maxInflight: WINDOW,
        protocolVersion: v,
        ...(cfg.alias ? { topicAliases: 4 } : {}),
        // As MQTT.js (65,535). mosquitto 2.0.11 does not hold QoS 2 deliveries to a subscriber
        // to max_inflight_messages: one that falls behind gets hundreds or thousands unreleased
        // (PUBREC sent, no PUBREL yet), and Petrel's default (32) would end the connection.
        storage: file ? fileStorage(path.join(cfg.storeDir, id)) : memoryStorage(),
      }),
  };
}

function ready(c) {
  return new Promise((resolve, reject) => {
    const onError = (e) => reject(e);
    c.on("error", onError);
    c.on("connect", () => {
      c.removeListener("error", onError);
      c.on("error", (e) => {
        console.error(`client error: ${e.code ?? ""} ${e.message}`);
      });
      resolve(c);
    });
  });
}

const subscribe = (c, topic, qos) => new Promise((resolve, reject) => c.subscribe(topic, { qos }, (e) => (e ? reject(e) : resolve())));
const end = (c) => new Promise((resolve) => c.end(() => resolve()));

// ---------------------------------------------------------------------------------------------
// Measurements (child side)

let runs = 0;

/**
 * One publisher, one subscriber of the same library at the same QoS, each on its own connection.
 * QoS 1/2: at most WINDOW publishes unacknowledged, the next sent from an acknowledgement's
 * callback. QoS 0 has no acknowledgement: WINDOW publishes per event-loop turn (setImmediate).
 * Time runs from the first publish to the subscriber's last message.
 */
async function throughput(lib, tag, qos, n) {
  runs++;
  const topic = `bench/${tag}/${runs}/q${qos}`;
  const payload = Buffer.alloc(PAYLOAD_BYTES, 0x61);
  const sub = await ready(lib.open(`${tag}-s${runs}`));
  let got = 0;
  let bytes = 0;
  let tLast = 0;
  let finish;
  const finished = new Promise((r) => (finish = r));
  sub.on("message", (t, p) => {
    got++;
    bytes += p.length;
    tLast = now();
    if (got === n) finish();
  });
  await subscribe(sub, topic, qos);
  const pub = await ready(lib.open(`${tag}-p${runs}`));
  let sent = 0;
  let out = 0;
  let failed;
  const cpu0 = process.cpuUsage();
  const t0 = now();
  if (qos === 0) {
    const burst = () => {
      for (let i = 0; i < WINDOW && sent < n; i++) {
        sent++;
        pub.publish(topic, payload, { qos: 0 });
      }
      if (sent < n) setImmediate(burst);
    };
    burst();
  } else {
    const onAck = (e) => {
      if (e) failed = e;
      out--;
      fill();
    };
    const fill = () => {
      while (out < WINDOW && sent < n) {
        out++;
        sent++;
        pub.publish(topic, payload, { qos }, onAck);
      }
    };
    fill();
  }
  let seen = -1;
  let seenAt = now();
  const watch = setInterval(() => {
    if (got !== seen) {
      seen = got;
      seenAt = now();
    } else if (sent === n && now() - seenAt > STALL_MS) finish();
  }, 50);
  await finished;
  const cpu = process.cpuUsage(cpu0);
  clearInterval(watch);
  await Promise.all([end(pub), end(sub)]);
  if (failed) throw failed;
  if (qos !== 0 && got !== n) throw new Error(`QoS ${qos}: ${got} of ${n} messages arrived`);
  const ms = tLast - t0;
  // CPU of this process (publisher and subscriber, user + system) per message delivered
  return { n, got, lost: n - got, ms, rate: got / (ms / 1000), cpuUs: (cpu.user + cpu.system) / got, bytes };
}

/** Publish QoS 1 to a topic the same client subscribes to (QoS 1), wait for the message, repeat. */
async function latency(lib, tag, m, warm) {
  const topic = `bench/${tag}/rtt`;
  const payload = Buffer.alloc(PAYLOAD_BYTES, 0x62);
  const c = await ready(lib.open(`${tag}-rtt`));
  await subscribe(c, topic, 1);
  const times = [];
  let got = 0;
  let t = 0;
  let next;
  c.on("message", (_t, p) => {
    got += p.length > 0 ? 1 : 0;
    times.push(now() - t);
    // the next round trip from the event loop, after the library has finished with this one
    setImmediate(next);
  });
  let finish;
  const finished = new Promise((r) => (finish = r));
  next = () => {
    if (times.length === m + warm) {
      finish();
      return;
    }
    t = now();
    c.publish(topic, payload, { qos: 1 });
  };
  next();
  await finished;
  await end(c);
  const us = times.slice(warm).map((x) => x * 1000).sort((a, b) => a - b);
  const pct = (q) => us[Math.min(us.length - 1, Math.floor(q * us.length))];
  // A round trip over 10 ms on loopback is a stall (a delayed ACK holding a segment: 40 ms on Linux).
  const stalls = us.filter((x) => x > 10000).length;
  return { m, got: got - warm, p50: pct(0.5), p99: pct(0.99), mean: us.reduce((s, x) => s + x, 0) / us.length, stalls };
}

/** K idle connected clients: heap (and buffers outside it) after a full collection, per client. */
async function heap(lib, tag, k) {
  // one client first, so what every client shares (code, caches) is in the baseline
  await end(await ready(lib.open(`${tag}-h0`)));
  await new Promise((r) => setTimeout(r, 200));
  const gc = () => {
    for (let i = 0; i < 3; i++) global.gc();
  };
  gc();
  const before = process.memoryUsage();
  const clients = [];
  let heard = 0;
  const onMessage = (_t, p) => {
    heard += p.length;
  };
  for (let i = 0; i < k; i += 20) {
    const batch = [];
    for (let j = i; j < i + 20 && j < k; j++) {
      const c = lib.open(`${tag}-h${j + 1}`);
      c.on("message", onMessage);
      batch.push(ready(c));
    }
    clients.push(...(await Promise.all(batch)));
  }
  await new Promise((r) => setTimeout(r, 500));
  gc();
  const after = process.memoryUsage();
  await Promise.all(clients.map(end));
  return {
    k,
    heard,
    heapKB: (after.heapUsed - before.heapUsed) / k / 1024,
    buffersKB: (after.arrayBuffers - before.arrayBuffers) / k / 1024,
  };
}

async function child(cfg) {
  if (typeof global.gc !== "function") throw new Error("run the child with node --expose-gc");
  const lib = library(cfg);
  const tag = `${cfg.lib}-${process.pid}`;
  const out = { lib: cfg.lib };
  if (cfg.kind === "heap") {
    out.heap = await heap(lib, tag, cfg.clients);
  } else if (cfg.kind === "rtt") {
    out.rtt = await latency(lib, tag, cfg.rtt, Math.ceil(cfg.rtt / 10));
  } else {
    // warm-up: the same paths at a tenth of the size, not measured
    for (const qos of [0, 1, 2]) await throughput(lib, tag, qos, Math.ceil((qos === 0 ? cfg.n0 : cfg.n12) / 10));
    out.q0 = await throughput(lib, tag, 0, cfg.n0);
    out.q1 = await throughput(lib, tag, 1, cfg.n12);
    out.q2 = await throughput(lib, tag, 2, cfg.n12);
    if (cfg.rtt > 0) out.rtt = await latency(lib, tag, cfg.rtt, Math.ceil(cfg.rtt / 10));
  }
  process.stdout.write("RESULT " + JSON.stringify(out) + "\n");
}

// ---------------------------------------------------------------------------------------------
// Parent: one broker, the children, the table

function runChild(cfg) {
  return new Promise((resolve, reject) => {
    const args = ["--expose-gc", ...(cfg.prof ? ["--cpu-prof", `--cpu-prof-dir=${cfg.prof}`] : []), __filename, "--child", JSON.stringify(cfg)];
    const p = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
    let text = "";
    p.stdout.on("data", (d) => (text += d));
    const t = setTimeout(() => p.kill("SIGKILL"), 120000);
    p.on("exit", (code) => {
      clearTimeout(t);
      const line = text.split("\n").find((l) => l.startsWith("RESULT "));
      if (code !== 0 || !line) reject(new Error(`bench child ${cfg.lib}/${cfg.kind} failed (exit ${code}): ${text}`));
      else resolve(JSON.parse(line.slice(7)));
    });
  });
}

/**
 * Bytes each library sends the broker per telemetry message (QoS 1), at 3.1.1, at 5.0 and at 5.0
 * with topic aliases, counted by the fault proxy between client and broker.
 */
async function wireBytes(startBroker, brokerLines) {
  const { startFaultProxy } = require(path.join(dist, "host-sim/fault-proxy.js"));
  const broker = await startBroker({ maxInflight: WINDOW, extra: brokerLines });
  const out = { petrel: {}, mqttjs: {} };
  try {
    for (const lib of ["petrel", "mqttjs"]) {
      for (const key of ["v4", "v5", "alias"]) {
        const proxy = await startFaultProxy({ target: { host: broker.host, port: broker.port } });
        try {
          const c = await ready(library({ lib: key === "v4" ? lib : `${lib}5`, alias: key === "alias", host: "127.0.0.1", port: proxy.port })
            .open(`wire-${lib}-${key}-${process.pid}`));
          const before = proxy.bytes.toBroker;
          for (let i = 0; i < WIRE_N; i++) {
            await new Promise((resolve, reject) => c.publish(TELEMETRY_TOPIC, TELEMETRY, { qos: 1 }, (e) => (e ? reject(e) : resolve())));
          }
          out[lib][key] = (proxy.bytes.toBroker - before) / WIRE_N;
          await end(c);
        } finally {
          await proxy.close();
        }
      }
    }
  } finally {
    await broker.close();
  }
  return out;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

async function main() {
  const { startBroker } = require(path.join(dist, "host-sim/mosquitto.js"));
  const help = spawnSync("mosquitto", ["-h"], { encoding: "utf8" });
  const version = /mosquitto version (\S+)/.exec(`${help.stdout}${help.stderr}`)?.[1] ?? "?";
  // Persistence off (nothing to keep between runs) and no per-packet log lines: the broker's own
  // disk work would be measured otherwise. The publisher's window is acknowledged by the broker,
  // not by the subscriber, so a subscriber that falls behind builds a queue at the broker; its
  // default cap (1,000 messages) would drop QoS 1/2 messages rather than slow the run down.
  const queue = Math.max(N0, N12);
  const brokerLines = ["persistence false", "log_type none", "log_type error", "log_type warning", `max_queued_messages ${queue}`];
  const broker = await startBroker({ maxInflight: WINDOW, extra: brokerLines });
  const storeDir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-bench-store-"));
  const base = { host: broker.host, port: broker.port, n0: N0, n12: N12, rtt: RTT, clients: CLIENTS, storeDir, prof: process.env.BENCH_PROF };
  const fileN12 = Math.ceil(N12 / FILE_SHARE);
  const t0 = Date.now();
  console.log(`\nsession benchmark: node ${process.version}, ${os.cpus()[0].model} x${os.cpus().length}, mosquitto ${version} on 127.0.0.1`);
  console.log(`  broker: one for every case; max_inflight_messages ${WINDOW}, max_queued_messages ${queue}, persistence off, no per-packet log,`);
  console.log(`    set_tcp_nodelay false (its default: Nagle's algorithm on the broker's side); a second broker with set_tcp_nodelay true`);
  console.log(`    for one more round-trip line (${RTT_NODELAY} round trips). Petrel's sockets set TCP_NODELAY; MQTT.js leaves Node's default (Nagle on).`);
  console.log(`  clients: MQTT 3.1.1 (the second table: both at MQTT 5.0), clean session, keepalive 60 s. Petrel: maxInflight ${WINDOW}, other options at their defaults.`);
  console.log(`    MQTT.js ${require("mqtt/package.json").version}: its defaults (it has no in-flight limit for MQTT 3.1.1; the driver keeps the window)`);
  console.log(`  storage: Petrel memoryStorage(), like MQTT.js's default in-memory store; the extra column is fileStorage(tmp dir)`);
  console.log(`  throughput: one publisher and one subscriber of the same library at the same QoS, own connections, ${PAYLOAD_BYTES}-byte payload;`);
  console.log(`    QoS 0: ${N0} messages, ${WINDOW} per event-loop turn; QoS 1/2: ${N12} messages (fileStorage: ${fileN12}), at most ${WINDOW}`);
  console.log(`    unacknowledged, the next published from an acknowledgement's callback. The same driver and message handler`);
  console.log(`    (count, read the payload length) for every library; first publish to last message received.`);
  console.log(`  round trip: QoS 1 publish to the client's own QoS 1 subscription, ${RTT} times after ${Math.ceil(RTT / 10)} warm-up`);
  console.log(`  ${ROUNDS} rounds, each library in a fresh process per round, libraries interleaved; median over rounds`);
  console.log(`  memory: ${CLIENTS} idle connected clients in a fresh process, after global.gc(), per client`);

  const res = {};
  for (const lib of Object.keys(LIBS)) res[lib] = { runs: [] };
  let socket;
  try {
    // Rounds interleave the libraries, so a slow patch of the machine hits every one.
    for (let r = 0; r < ROUNDS; r++) {
      for (const lib of Object.keys(LIBS)) {
        res[lib].runs.push(await runChild({ ...base, lib, kind: "speed", n12: lib === "petrel-file" ? fileN12 : N12 }));
      }
    }
    for (const lib of Object.keys(LIBS)) res[lib].heap = (await runChild({ ...base, lib, kind: "heap" })).heap;
    socket = (await runChild({ ...base, lib: "socket", kind: "heap" })).heap;
  } finally {
    await broker.close();
  }
  // The same round trip against a mosquitto that disables Nagle's algorithm on its side.
  const broker2 = await startBroker({ maxInflight: WINDOW, extra: [...brokerLines, "set_tcp_nodelay true"] });
  try {
    for (const lib of ["petrel", "mqttjs"]) {
      res[lib].nodelay = (await runChild({ ...base, host: broker2.host, port: broker2.port, lib, kind: "rtt", rtt: RTT_NODELAY })).rtt;
    }
  } finally {
    await broker2.close();
    fs.rmSync(storeDir, { recursive: true, force: true });
  }

  const wire = await wireBytes(startBroker, brokerLines);

  const fig = {};
  for (const lib of Object.keys(LIBS)) {
    const rs = res[lib].runs;
    const h = res[lib].heap;
    fig[lib] = { lost: Math.max(...rs.map((x) => x.q0.lost)), heap: h.heapKB, buffers: h.buffersKB, all: h.heapKB + h.buffersKB };
    for (const q of ["q0", "q1", "q2"]) {
      fig[lib][q] = median(rs.map((x) => x[q].rate));
      fig[lib][q + "cpu"] = median(rs.map((x) => x[q].cpuUs));
    }
    fig[lib].p50 = median(rs.map((x) => x.rtt.p50));
    fig[lib].p99 = median(rs.map((x) => x.rtt.p99));
    fig[lib].stalls = median(rs.map((x) => x.rtt.stalls));
  }
  const int = (v) => v.toFixed(0);
  const one = (v) => v.toFixed(1);
  const rows = [
    ["QoS 0 throughput, msg/s", "q0", int, "higher"],
    ["QoS 1 throughput, msg/s", "q1", int, "higher"],
    ["QoS 2 throughput, msg/s", "q2", int, "higher"],
    ["QoS 0 client CPU per msg, µs", "q0cpu", one, "lower"],
    ["QoS 1 client CPU per msg, µs", "q1cpu", one, "lower"],
    ["QoS 2 client CPU per msg, µs", "q2cpu", one, "lower"],
    ["QoS 1 round trip p50, µs", "p50", int, "lower"],
    ["QoS 1 round trip p99, µs", "p99", int, "lower"],
    [`round trips over 10 ms (of ${RTT})`, "stalls", int, "lower"],
    ["JS heap per idle client, KB", "heap", one, "lower"],
    ["buffers outside the heap, KB", "buffers", one, "lower"],
    ["memory per idle client, KB", "all", one, "lower"],
  ];
  const P = fig.petrel;
  const M = fig.mqttjs;
  const F = fig["petrel-file"];
  const w = [30, 10, 10, 8, 8, 14];
  const line = (cells) => console.log(cells.map((c, i) => (i === 0 ? String(c).padEnd(w[i]) : String(c).padStart(w[i]))).join(""));
  console.log("");
  line(["figure", "Petrel", "MQTT.js", "ratio", "better", "Petrel file"]);
  for (const [name, key, f, better] of rows) {
    const ratio = M[key] > 0 ? `${(P[key] / M[key]).toFixed(2)}x` : "-";
    line([name, f(P[key]), f(M[key]), ratio, better, f(F[key])]);
  }
  // the same at MQTT 5.0, both libraries at protocol 5
  console.log("");
  line(["at MQTT 5.0", "Petrel", "MQTT.js", "ratio", "better", ""]);
  for (const [name, key, f, better] of rows) {
    const p5 = fig.petrel5;
    const m5 = fig.mqttjs5;
    const ratio = m5[key] > 0 ? `${(p5[key] / m5[key]).toFixed(2)}x` : "-";
    line([name, f(p5[key]), f(m5[key]), ratio, better, ""]);
  }
  console.log("");
  console.log(`bytes on the wire per telemetry message (client to broker, QoS 1, ${WIRE_N} messages to ${TELEMETRY_TOPIC}, payload ${TELEMETRY.length} bytes; CONNECT not counted):`);
  line(["", "Petrel", "MQTT.js", "ratio", "better", ""]);
  for (const [name, key] of [["MQTT 3.1.1", "v4"], ["MQTT 5.0", "v5"], ["MQTT 5.0, topic alias", "alias"]]) {
    line([name, one(wire.petrel[key]), one(wire.mqttjs[key]), `${(wire.petrel[key] / wire.mqttjs[key]).toFixed(2)}x`, "lower", ""]);
  }
  console.log(`ratio = Petrel / MQTT.js; "better" is the direction that wins (throughput: higher; CPU, time, memory: lower).`);
  console.log(`client CPU = user + system time of the process running publisher and subscriber, per message delivered.`);
  console.log(`QoS 0 messages lost (worst round): Petrel ${P.lost}, MQTT.js ${M.lost}, Petrel file ${F.lost}, of ${N0}.`);
  const nd = (lib) => `p50 ${int(res[lib].nodelay.p50)} µs, p99 ${int(res[lib].nodelay.p99)} µs, ${res[lib].nodelay.stalls} over 10 ms`;
  console.log(`broker with set_tcp_nodelay true, QoS 1 round trip (${RTT_NODELAY}): Petrel ${nd("petrel")}; MQTT.js ${nd("mqttjs")}.`);
  console.log(`for scale: a bare connected net.Socket takes ${one(socket.heapKB)} KB of heap (+${one(socket.buffersKB)} KB buffers) per connection.`);
  console.log(`per round (throughput msg/s; round trip p50/p99 µs):`);
  for (const lib of Object.keys(LIBS)) {
    const rs = res[lib].runs;
    const col = (q) => rs.map((x) => int(x[q].rate)).join(" ");
    const rtt = rs.map((x) => `${int(x.rtt.p50)}/${int(x.rtt.p99)}`).join(" ");
    console.log(`  ${LIBS[lib].padEnd(22)} QoS 0 ${col("q0")} | QoS 1 ${col("q1")} | QoS 2 ${col("q2")} | rtt ${rtt}`);
  }
  console.log(`session benchmark: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}

if (process.argv[2] === "--child") {
  child(JSON.parse(process.argv[3])).then(
    () => process.exit(0),
    (e) => {
      console.error(e && e.stack ? e.stack : e);
      process.exit(1);
    },
  );
} else {
  main().catch((e) => {
    console.error(e && e.stack ? e.stack : e);
    process.exit(1);
  });
}
