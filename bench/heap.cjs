// Where a client's bytes go: idle connected clients of one kind against a real mosquitto, two
// heap snapshots (after A and after B clients, each after forced collections), and the
// difference per client, by what V8 calls each object and what holds it.
//
//   node --expose-gc bench/heap.cjs [petrel|petrel-board|petrel-app|mqttjs]   (after make build)
//
// HEAP_A (200) and HEAP_B (600): the two fleet sizes; HEAP_TOP (40): rows printed. The
// snapshots go to a temporary directory, removed after. The clients are bench/fleet.cjs's own
// (petrel-board: the ESP8266 profile sizes; petrel-app: the whole sensor-node app).
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
const { opener, watched } = require("./fleet.cjs");
const KINDS = ["petrel", "petrel-board", "petrel-app", "mqttjs"];
if (!KINDS.includes(KIND)) {
  console.error(`heap: unknown kind ${KIND}: one of ${KINDS.join(", ")}`);
  process.exit(2);
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
  const open = opener(KIND, broker.port);
  const clients = [];
  let connected = 0;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-heap-"));
  async function grow(n) {
    for (let i = 0; i < n; i++) clients.push(watched(open(`heap${clients.length}`, undefined), () => connected++));
    for (let k = 0; k < 400 && connected < clients.length; k++) await sleep(50);
    if (connected < clients.length) throw new Error(`heap: ${clients.length - connected} of ${clients.length} clients did not connect within 20 s`);
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
    for (const c of clients) (KIND === "mqttjs" ? c.end(true) : c.end(() => {}));
    fs.rmSync(tmp, { recursive: true, force: true });
    await broker.close();
  }
  process.exit(0);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
