#!/usr/bin/env node
// `make bench` part 1: the codec against mqtt-packet, side by side in one run, same packet mix,
// same consumer work (the topic read as a string, the payload length read). Prints ratios.
// Then artifact sizes and Lua memory once loaded. Run `make build` first (make bench does).
"use strict";
const { execFileSync, spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const mqtt = require("mqtt-packet");

const root = path.resolve(__dirname, "..");
const P = require(path.join(root, "dist/node/firmware/targets/node/index.js"));

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? 1000);
const CHUNK = 1460;

const p16 = Buffer.alloc(16, 0x41);
const p1k = Buffer.alloc(1024, 0x42);
const topic = "sensors/kitchen/temperature";

/** The encode mix: what a client sends. */
const ENCODE = [
  { cmd: "connect", protocolId: "MQTT", protocolVersion: 4, clientId: "petrel-bench-01", clean: true, keepalive: 60 },
  { cmd: "publish", topic, payload: p16, qos: 0, retain: false, dup: false },
  { cmd: "publish", topic, payload: p16, qos: 1, retain: false, dup: false, messageId: 42 },
  { cmd: "publish", topic, payload: p1k, qos: 0, retain: false, dup: false },
  { cmd: "publish", topic, payload: p1k, qos: 1, retain: false, dup: false, messageId: 43 },
  { cmd: "puback", messageId: 44 },
  { cmd: "subscribe", messageId: 45, subscriptions: [{ topic: "cmd/+/set", qos: 1 }, { topic: "cfg/#", qos: 0 }] },
];
/** The decode mix: what a client receives (CONNACK and SUBACK answer CONNECT and SUBSCRIBE). */
const DECODE = [
  { cmd: "connack", sessionPresent: false, returnCode: 0 },
  ENCODE[1], ENCODE[2], ENCODE[3], ENCODE[4], ENCODE[5],
  { cmd: "suback", messageId: 45, granted: [1, 0] },
];

const tx = P.port.bytes.out(4096);
const connectOpts = { clientId: "petrel-bench-01", clean: true, keepalive: 60 };
const filters = ["cmd/+/set", "cfg/#"];
const qoss = [1, 0];
let sink = 0;

function petrelEncode(copy) {
  // One pass over the mix; returns the packet count.
  let n = P.encodeConnect(tx, 4096, connectOpts);
  if (copy) sink += tx.wire().length; else tx.clear();
  n = P.encodePublish(tx, 4096, topic, p16, 0, false, false, 0);
  if (copy) sink += tx.wire().length; else tx.clear();
  n = P.encodePublish(tx, 4096, topic, p16, 1, false, false, 42);
  if (copy) sink += tx.wire().length; else tx.clear();
  n = P.encodePublish(tx, 4096, topic, p1k, 0, false, false, 0);
  if (copy) sink += tx.wire().length; else tx.clear();
  n = P.encodePublish(tx, 4096, topic, p1k, 1, false, false, 43);
  if (copy) sink += tx.wire().length; else tx.clear();
  n = P.encodeShort(tx, 4096, 4, 44);
  if (copy) sink += tx.wire().length; else tx.clear();
  n = P.encodeFilters(tx, 4096, 45, filters, qoss, 2);
  if (copy) sink += tx.wire().length; else tx.clear();
  sink += n;
  return 7;
}
function mqttEncode() {
  for (const p of ENCODE) sink += mqtt.generate(p).length;
  return ENCODE.length;
}

// Decode input: the mix repeated, cut into TCP-sized chunks, the same chunks for both.
const stream = Buffer.concat(Array.from({ length: 200 }, () => DECODE.map((p) => mqtt.generate(p))).flat());
const chunks = [];
for (let i = 0; i < stream.length; i += CHUNK) chunks.push(stream.subarray(i, i + CHUNK));
const packetsPerPass = 200 * DECODE.length;

const dec = new P.Decoder(4096);
function petrelDecode() {
  let packets = 0;
  for (const c of chunks) {
    let at = 0;
    while (at < c.length) {
      at = dec.push(c, at);
      if (dec.status === 1) {
        packets++;
        if (dec.type === 3) sink += dec.topic().length + dec.payloadLength;
        else sink += dec.packetId;
      }
    }
  }
  return packets;
}
let parser;
let parsed = 0;
function mqttDecode() {
  parsed = 0;
  for (const c of chunks) parser.parse(c);
  return parsed;
}
function freshParser() {
  parser = mqtt.parser({ protocolVersion: 4 });
  parser.on("packet", (p) => {
    parsed++;
    if (p.cmd === "publish") sink += p.topic.length + p.payload.length;
    else sink += p.messageId ?? 0;
  });
}
freshParser();

function measure(fn) {
  const rates = [];
  for (let r = 0; r < ROUNDS; r++) {
    let packets = 0;
    const t0 = process.hrtime.bigint();
    let t = t0;
    while (Number(t - t0) / 1e6 < ROUND_MS) {
      for (let k = 0; k < 20; k++) packets += fn();
      t = process.hrtime.bigint();
    }
    rates.push(packets / (Number(t - t0) / 1e9));
  }
  rates.sort((a, b) => a - b);
  return rates[Math.floor(rates.length / 2)];
}

// Correctness first: both decoders see the same packets.
if (petrelDecode() !== packetsPerPass || mqttDecode() !== packetsPerPass) throw new Error("decoders disagree on the stream");

const fmt = (n) => `${(n / 1e6).toFixed(2)} M/s`;
console.log(`codec benchmark: node ${process.version}, ${os.cpus()[0].model}, ${ROUNDS} rounds x ${ROUND_MS} ms, median`);
console.log(`encode mix: CONNECT, PUBLISH QoS 0/1 x 16 B/1 KB, PUBACK, SUBSCRIBE (2 filters)`);
console.log(`decode mix: CONNACK, PUBLISH QoS 0/1 x 16 B/1 KB, PUBACK, SUBACK; ${CHUNK}-byte chunks; consumer reads topic string and payload length`);
const rows = [];
for (let warm = 0; warm < 2; warm++) { petrelEncode(false); petrelEncode(true); mqttEncode(); petrelDecode(); mqttDecode(); }
const pe = measure(() => petrelEncode(false));
const pc = measure(() => petrelEncode(true));
const me = measure(mqttEncode);
const pd = measure(petrelDecode);
const md = measure(mqttDecode);
rows.push(["encode (into the packet buffer)", pe, me]);
rows.push(["encode + copy for the socket", pc, me]);
rows.push(["decode", pd, md]);
console.log(`\n${"".padEnd(34)}${"Petrel".padStart(12)}${"mqtt-packet".padStart(14)}   ratio`);
for (const [name, a, b] of rows) console.log(`${name.padEnd(34)}${fmt(a).padStart(12)}${fmt(b).padStart(14)}   ${(a / b).toFixed(2)}x`);

// Artifact sizes.
const size = (f) => fs.statSync(f).size;
const walk = (d) => fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]));
const luaFiles = walk(path.join(root, "dist/nodemcu")).filter((f) => f.endsWith(".lua"));
console.log(`\nartifacts`);
console.log(`  Espruino bundle dist/espruino/petrel.js (minified): ${size(path.join(root, "dist/espruino/petrel.js"))} bytes`);
console.log(`  NodeMCU Lua dist/nodemcu (${luaFiles.length} files incl. lualib_bundle): ${luaFiles.reduce((s, f) => s + size(f), 0)} bytes`);
// Lua heap after loading the entry, and the part of it that is data: module tables, class
// tables, closures, upvalues (what stays in RAM when the code is in LFS, whose prototypes and
// constants live in flash). The data is measured by running every module chunk a second time
// over the same prototypes: the heap that second run adds is one run's data.
for (const [exe, bit] of [["lua5.1", true], ["lua5.3", false]]) {
  const dist = path.join(root, "dist/nodemcu") + "/";
  const code = `local dist = ${JSON.stringify(dist)}
    package.path = dist .. "?.lua;" .. package.path
    ${bit ? 'bit = require("bit")' : ""}
    collectgarbage("collect"); local before = collectgarbage("count")
    require("firmware.targets.nodemcu.index")
    collectgarbage("collect"); local total = collectgarbage("count") - before
    for name in pairs(package.loaded) do if string.sub(name, 1, 9) == "firmware." or name == "lualib_bundle" then package.loaded[name] = nil end end
    local chunks, n = {}, 0
    local loaders = package.loaders or package.searchers
    local search = loaders[2]
    loaders[2] = function(name)
      local c = chunks[name] or loadfile(dist .. string.gsub(name, "%.", "/") .. ".lua")
      if not c then return search(name) end
      if not chunks[name] then n = n + 1 end
      chunks[name] = c
      return c
    end
    require("firmware.targets.nodemcu.index")
    for name in pairs(chunks) do package.loaded[name] = nil end
    collectgarbage("collect"); local m1 = collectgarbage("count")
    require("firmware.targets.nodemcu.index")
    collectgarbage("collect")
    print(string.format("%.1f %.1f %d", total, collectgarbage("count") - m1, n))`;
  const r = spawnSync(exe, ["-e", code], { encoding: "utf8" });
  if (r.status !== 0) {
    console.log(`  Lua heap on ${exe}: not measured: ${r.stderr.trim()}`);
    continue;
  }
  const [total, dataKb, files] = r.stdout.trim().split(" ");
  console.log(`  Lua heap after loading the entry on ${exe}: ${total} KB with the code in RAM; data ${dataKb} KB (${files} modules; what stays in RAM with the code in LFS). 64-bit host proxy for NodeMCU`);
}
{
  // The same modules precompiled without debug information (luac5.1 -s), as node.compile() or an
  // LFS image would carry them: host bytecode, so a proxy for the board's.
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-luac-"));
  const src = path.join(root, "dist/nodemcu");
  let ok = true;
  for (const f of walk(src).filter((x) => x.endsWith(".lua"))) {
    const to = path.join(out, path.relative(src, f));
    fs.mkdirSync(path.dirname(to), { recursive: true });
    ok = ok && spawnSync("luac5.1", ["-s", "-o", to, f]).status === 0;
  }
  const r = ok ? spawnSync("lua5.1", ["-e", `package.path = ${JSON.stringify(out + "/?.lua")} .. ";" .. package.path
    bit = require("bit")
    collectgarbage("collect"); local m0 = collectgarbage("count")
    require("firmware.targets.nodemcu.index")
    collectgarbage("collect"); print(string.format("%.1f", collectgarbage("count") - m0))`], { encoding: "utf8" }) : { status: 1, stderr: "luac5.1 failed" };
  const bytes = walk(out).reduce((n, f) => n + fs.statSync(f).size, 0);
  console.log(`  Lua heap after loading stripped bytecode (luac5.1 -s) on lua5.1: ${r.status === 0 ? r.stdout.trim() + " KB" : "not measured: " + r.stderr}; ${bytes} bytes of bytecode`);
  fs.rmSync(out, { recursive: true, force: true });
}
{
  // fengari keeps Lua values as JavaScript objects: its figure is the JS heap the load adds.
  const code = `const { lua, lauxlib, lualib, to_luastring } = require(${JSON.stringify(require.resolve("fengari"))});
    const L = lauxlib.luaL_newstate(); lualib.luaL_openlibs(L);
    const run = (s) => { if (lauxlib.luaL_loadstring(L, to_luastring(s)) !== 0 || lua.lua_pcall(L, 0, 0, 0) !== 0) throw new Error(lua.lua_tojsstring(L, -1)); };
    run(${JSON.stringify(`package.path = ${JSON.stringify(path.join(root, "dist/nodemcu/?.lua"))} .. ";" .. package.path`)});
    global.gc(); const h0 = process.memoryUsage().heapUsed;
    run('PETREL = require("firmware.targets.nodemcu.index")');
    global.gc(); console.log(((process.memoryUsage().heapUsed - h0) / 1024).toFixed(1));`;
  const r = spawnSync(process.execPath, ["--expose-gc", "-e", code], { encoding: "utf8" });
  console.log(`  JS heap added by loading the entry on fengari: ${r.status === 0 ? r.stdout.trim() + " KB" : "not measured: " + r.stderr.trim()} (JS objects per Lua value: a host proxy only)`);
}
if (process.env.ESPRUINO) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-bench-"));
  fs.writeFileSync(path.join(dir, "m.js"), "var m0=process.memory().usage;\n" + fs.readFileSync(path.join(root, "dist/espruino/petrel.js"), "utf8") +
    '\nprint("jsvars " + (process.memory().usage - m0));\n');
  const out = execFileSync(process.env.ESPRUINO, ["m.js"], { cwd: dir, input: "", encoding: "latin1" });
  const m = /jsvars (\d+)/.exec(out);
  console.log(`  JsVars after loading the bundle into RAM on ${process.env.ESPRUINO}: ${m ? m[1] : "?"} (code in RAM, not run from flash)`);
  // The same bundle saved to Storage and run from there: function bodies stay in flash.
  const code = fs.readFileSync(path.join(root, "dist/espruino/petrel.js"), "latin1");
  fs.writeFileSync(path.join(dir, "w.js"), `require("Storage").write("petrel.js",${JSON.stringify(code)});`);
  fs.writeFileSync(path.join(dir, "r.js"), 'var m0=process.memory().usage;eval(require("Storage").read("petrel.js"));print("jsvars " + (process.memory().usage - m0));');
  execFileSync(process.env.ESPRUINO, ["w.js"], { cwd: dir, input: "", encoding: "latin1" });
  const f = /jsvars (\d+)/.exec(execFileSync(process.env.ESPRUINO, ["r.js"], { cwd: dir, input: "", encoding: "latin1" }));
  console.log(`  JsVars after loading the bundle from Storage (code in flash): ${f ? f[1] : "?"}`);
  fs.rmSync(dir, { recursive: true, force: true });
} else {
  console.log("  JsVars: not measured (set ESPRUINO=/path/to/espruino)");
}
if (sink === 42) console.log("");
