// Where a client's bytes go: idle connected clients of one kind against a real mosquitto, two
// heap snapshots (after A and after B clients, each after forced collections), and the
// difference per client, by what V8 calls each object and what holds it.
//
//   node --expose-gc bench/heap.cjs [petrel|petrel-board|petrel-app|mqttjs]   (after make build)
//
// HEAP_A (200) and HEAP_B (600): the two fleet sizes; HEAP_TOP (40): rows printed. The
// snapshots go to a temporary directory, removed after. Node boards as bench/fleet.cjs makes
// them (petrel-board: the ESP8266 profile sizes; petrel-app: the whole sensor-node app).
"use strict";
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const v8 = require("node:v8");

const root = path.join(__dirname, "..");
const dist = path.join(root, "dist/node");
const KIND = process.argv[2] ?? "petrel";
const A = Number(process.env.HEAP_A ?? 200);
const B = Number(process.env.HEAP_B ?? 600);
const TOP = Number(process.env.HEAP_TOP ?? 40);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function opener(port) {
  const { memoryStorage } = require(path.join(dist, "host-sim/node/storage.js"));
  if (KIND === "mqttjs") {
    const mqtt = require("mqtt");
    const net = require("node:net");
    return (id) => new mqtt.MqttClient(() => net.createConnection({ host: "127.0.0.1", port }), { protocolVersion: 4, clientId: id, clean: true, keepalive: 60, reconnectPeriod: 1000 });
  }
  if (KIND === "petrel-app") {
    const { startApp } = require(path.join(dist, "firmware/app/main.js"));
    const { nodePlatform } = require(path.join(dist, "host-sim/node/platform.js"));
    const serial = { take() {}, release() {}, write() {} };
    return (id) => {
      const storage = memoryStorage();
      const app = startApp({
        storage, tls: false, version: "0.1.0-heap", sensors: [{ name: "t", read: () => 0 }], serial, back: "Enter", reboot() {},
        platform: (_wifi, log) => nodePlatform({ storage, chipId: id, logLevel: 0, log: (level, line) => log.write(level, line) }),
      }, { brokers: `127.0.0.1:${port}`, "client.id": id, interval: "86400", qos: "1", keepalive: "60", log: "error" });
      return app.node.client;
    };
  }
  if (KIND !== "petrel" && KIND !== "petrel-board") throw new Error(`unknown kind ${KIND}: petrel, petrel-board, petrel-app or mqttjs`);
  const { connect } = require(path.join(dist, "host-sim/node/client.js"));
  const sizes = KIND === "petrel-board" ? { maxPacket: 512, outboxMessages: 20 } : {};
  return (id) => connect({ brokers: [{ host: "127.0.0.1", port }], clientId: id, clean: true, keepalive: 60, storage: memoryStorage(), logLevel: 0, reconnectMinMs: 1000, ...sizes });
}

/** Per node id: [type, name, self size, retainer description]. */
function readSnapshot(file) {
  const s = JSON.parse(fs.readFileSync(file, "utf8"));
  const m = s.snapshot.meta;
  const nf = m.node_fields.length;
  const ef = m.edge_fields.length;
  const [ti, ni, si, ii, ci] = ["type", "name", "self_size", "id", "edge_count"].map((f) => m.node_fields.indexOf(f));
  const [eti, eni, eto] = ["type", "name_or_index", "to_node"].map((f) => m.edge_fields.indexOf(f));
  const ntypes = m.node_types[0];
  const etypes = m.edge_types[0];
  const count = s.nodes.length / nf;
  const holder = new Int32Array(count).fill(-1);
  const via = new Array(count);
  for (let k = 0, e = 0; k < count; k++) {
    for (let j = 0; j < s.nodes[k * nf + ci]; j++, e += ef) {
      const to = s.edges[e + eto] / nf;
      const t = etypes[s.edges[e + eti]];
      if (t === "weak" || (holder[to] !== -1 && via[to] !== "internal")) continue;
      holder[to] = k;
      via[to] = t === "element" || t === "hidden" ? `[${t}]` : t === "internal" ? "internal" : String(s.strings[s.edges[e + eni]]);
    }
  }
  const named = (k) => {
    const t = ntypes[s.nodes[k * nf + ti]];
    return t === "object" || t === "closure" || t === "native" || t === "synthetic" ? `${t} ${s.strings[s.nodes[k * nf + ni]].slice(0, 40)}` : t;
  };
  const rows = new Map();
  for (let k = 0; k < count; k++) rows.set(s.nodes[k * nf + ii], [named(k), s.nodes[k * nf + si], holder[k] >= 0 ? `${named(holder[k])}.${via[k]}` : "(root)"]);
  return rows;
}

(async () => {
  const { startBroker } = require(path.join(dist, "host-sim/mosquitto.js"));
  const broker = await startBroker({ logTypes: ["error"] });
  const open = opener(broker.port);
  const clients = [];
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-heap-"));
  const connected = (c) => c.connected === true;
  async function grow(n) {
    for (let i = 0; i < n; i++) clients.push(open(`heap${clients.length}`));
    for (let k = 0; k < 400 && !clients.every(connected); k++) await sleep(50);
    if (!clients.every(connected)) throw new Error(`heap: ${clients.filter((c) => !connected(c)).length} of ${clients.length} clients did not connect within 20 s`);
    await sleep(500);
    global.gc();
    global.gc();
    return process.memoryUsage();
  }
  try {
    const m1 = await grow(A);
    const f1 = v8.writeHeapSnapshot(path.join(tmp, "a.heapsnapshot"));
    const m2 = await grow(B - A);
    const f2 = v8.writeHeapSnapshot(path.join(tmp, "b.heapsnapshot"));
    const per = (k) => (m2[k] - m1[k]) / (B - A) / 1024;
    console.log(`heap: ${KIND}, ${B - A} more idle clients (${A} to ${B}); node ${process.version}`);
    console.log(`heap: per client ${per("heapUsed").toFixed(2)} KB of JS heap + ${per("external").toFixed(2)} KB outside it (buffers) = ${(per("heapUsed") + per("external")).toFixed(2)} KB`);
    const before = readSnapshot(f1);
    const after = readSnapshot(f2);
    const groups = new Map();
    for (const [id, [what, size, held]] of after) {
      if (before.has(id)) continue;
      const key = `${what}  <- ${held}`;
      const g = groups.get(key) ?? [0, 0];
      g[0]++;
      g[1] += size;
      groups.set(key, g);
    }
    const sorted = [...groups].sort((x, y) => y[1][1] - x[1][1]);
    const total = sorted.reduce((n, [, [, b]]) => n + b, 0);
    console.log(`heap: the snapshots' new objects, ${(total / (B - A)).toFixed(0)} B per client; the largest groups (bytes and count per client, what, held by):`);
    for (const [key, [c, b]] of sorted.slice(0, TOP)) console.log(`${(b / (B - A)).toFixed(0).padStart(7)} B ${(c / (B - A)).toFixed(2).padStart(6)}x  ${key}`);
  } finally {
    for (const c of clients) (c.core !== undefined ? c.core.end() : c.end(true));
    fs.rmSync(tmp, { recursive: true, force: true });
    await broker.close();
  }
  process.exit(0);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
