import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import type * as vm from "node:vm";
import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { disposeContext, runBundle, runScript } from "../host-sim/espruino/standin";
import { freePort, startBroker, type Broker } from "../host-sim/mosquitto";
import { makeCerts } from "../host-sim/tls-certs";
import { DIST, runtimes } from "./harness/runtimes";
import { until as waitUntil } from "./harness/wait";

// The built Espruino bundle itself (dist/espruino/petrel.js), with its Espruino adapters (net,
// Storage, timers), in the Espruino stand-in, against a real mosquitto. Every wait is bounded.

let broker: Broker;
const contexts: vm.Context[] = [];
const dirs: string[] = [];

beforeAll(async () => {
  broker = await startBroker();
});
afterAll(async () => {
  for (const c of contexts) disposeContext(c);
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  await broker?.close();
});

/** A board: the bundle in a fresh stand-in with its own flash directory; its printed lines (UTF-8). */
function board(flash: string, chunk = 536, esp32 = false, storageFree?: number) {
  const lines: string[] = [];
  const faults: string[] = [];
  const ctx = runBundle(path.join(DIST, "espruino/petrel.js"), {
    print: (l) => lines.push(Buffer.from(l, "latin1").toString("utf8")),
    storageDir: flash,
    chunk,
    esp32,
    storageFree,
    fault: (what) => faults.push(what),
  });
  contexts.push(ctx);
  return { ctx, lines, faults, run: (src: string) => runScript(ctx, src) };
}

const until = (what: string, cond: () => boolean, ms = 8000) => waitUntil(what, cond, ms);

const flashDir = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-esp-flash-"));
  dirs.push(d);
  return d;
};

const CLIENT = (port: number, id: string) => `
var c = Petrel.connect(Petrel.espruinoPlatform({ logLevel: 1 }), { brokers: [{ host: "127.0.0.1", port: ${port} }],
  clientId: "${id}", keepalive: 30, reconnectMinMs: 100, reconnectMaxMs: 400 });
if (c.code) print("refused " + c.code + " " + c.message);
c.on("connect", function (ack) { print("connect sp=" + (ack.sessionPresent ? 1 : 0)); });
c.on("message", function (t, p, info) { print("msg " + t + " " + p + " q" + info.qos); });
c.on("error", function (e) { print("error " + e.code); });
`;

describe("the Espruino bundle in the stand-in against mosquitto", () => {
  for (const chunk of [536, 268]) {
    it(`QoS 0/1/2 round trips through its own subscription (net pieces of ${chunk} bytes)`, async () => {
      const b = board(flashDir(), chunk);
      b.run(CLIENT(broker.port, `esp-rt-${chunk}`));
      await until("connect", () => b.lines.includes("connect sp=0"));
      b.run(`c.subscribe("esp/#", { qos: 2 }, function (e, g) {
        print("suback " + g);
        c.publish("esp/0", "zero", { qos: 0 });
        c.publish("esp/1", "one", { qos: 1 }, function (e) { print("acked 1 " + (e ? e.code : "ok")); });
        c.publish("esp/2", "°C two " + "x".repeat(1500), { qos: 2 }, function (e) { print("acked 2 " + (e ? e.code : "ok")); });
      });`);
      await until("three messages and two acks", () => b.lines.filter((l) => l.startsWith("msg") || l.startsWith("acked")).length === 5);
      expect(b.lines).toContain("suback 2");
      expect(b.lines).toContain("msg esp/0 zero q0");
      expect(b.lines).toContain("msg esp/1 one q1");
      expect(b.lines).toContain(`msg esp/2 °C two ${"x".repeat(1500)} q2`);
      expect(b.lines).toContain("acked 1 ok");
      expect(b.lines).toContain("acked 2 ok");
      expect(b.faults).toEqual([]);
      b.run(`c.end(function () { print("ended"); });`);
      await until("end", () => b.lines.includes("ended"));
    });
  }

  it("a message published while the broker is unreachable is kept in Storage and delivered by the next boot", async () => {
    const flash = flashDir();
    const dead = await freePort();
    const first = board(flash);
    first.run(CLIENT(dead, "esp-reboot"));
    first.run(`c.publish("esp/kept", "survives a reboot", { qos: 1 });`);
    await until("a refused attempt", () => first.lines.includes("error refused"));
    disposeContext(first.ctx); // power cut
    expect(fs.readdirSync(flash).length).toBeGreaterThan(0);

    const watcher = board(flashDir());
    watcher.run(CLIENT(broker.port, "esp-watch"));
    await until("watcher", () => watcher.lines.includes("connect sp=0"));
    watcher.run(`c.subscribe("esp/kept", { qos: 1 }, function () { print("watching"); });`);
    await until("watching", () => watcher.lines.includes("watching"));

    const second = board(flash);
    second.run(CLIENT(broker.port, "esp-reboot"));
    await until("the kept message", () => watcher.lines.includes("msg esp/kept survives a reboot q1"));
    await until("the outbox drained", () => second.run("c.core.outbox.count") === 0);
  });

  it("a small flash full of erased records: writes go on (Storage compacts), the outbox never says storage-full", async () => {
    // 6 KB of flash; 150 QoS 1 messages of about 150 bytes churn some 90 KB through it.
    const b = board(flashDir(), 536, false, 6000);
    b.run(CLIENT(broker.port, "esp-compact"));
    await until("connect", () => b.lines.includes("connect sp=0"));
    b.run(`var acked = 0, failed = [];
      function next(i) {
        if (i === 150) return;
        c.publish("esp/compact", "m" + i + " " + "x".repeat(140), { qos: 1 }, function (e) {
          if (e) failed.push(e.code); else acked++;
          next(i + 1);
        });
      }
      next(0);`);
    await until("150 acknowledged", () => (b.run("acked + failed.length") as number) === 150, 15000);
    expect(b.run("failed.join(',')")).toBe("");
    expect(b.run(`require("Storage").standinStats.compactions`) as number).toBeGreaterThan(3);
    expect(b.run("c.core.outbox.count")).toBe(0);
    b.run(`c.end(function () { print("ended"); });`);
    await until("end", () => b.lines.includes("ended"));
  });

  it("TLS (ESP32): the bundle connects to a TLS listener with the CA passed as PEM text, and round-trips; a server the CA did not sign is refused (tls)", async () => {
    const certDir = flashDir();
    const certs = await makeCerts(certDir);
    const tlsBroker = await startBroker({ tls: { certfile: certs.server.certfile, keyfile: certs.server.keyfile } });
    try {
      const tlsClient = (ca: string, id: string) => `
        var c = Petrel.connect(Petrel.espruinoPlatform({ logLevel: 1, tls: { ca: ${JSON.stringify(fs.readFileSync(ca, "utf8"))} } }),
          { brokers: [{ host: "localhost", port: ${tlsBroker.port}, tls: true }], clientId: "${id}", reconnectMinMs: 200 });
        c.on("connect", function () { print("tls connect"); });
        c.on("message", function (t, p) { print("tls msg " + t + " " + p); });
        c.on("error", function (e) { print("tls error " + e.code); });`;
      const good = board(flashDir());
      good.run(tlsClient(certs.ca.certfile, "esp-tls"));
      await until("a TLS connection", () => good.lines.includes("tls connect"));
      good.run(`c.subscribe("tls/t", { qos: 1 }, function () { c.publish("tls/t", "over tls", { qos: 1 }); });`);
      await until("the message back over TLS", () => good.lines.includes("tls msg tls/t over tls"));
      good.run(`c.end(function () { print("ended"); });`);
      await until("end", () => good.lines.includes("ended"));
      const bad = board(flashDir());
      bad.run(tlsClient(certs.wrongCa.certfile, "esp-tls-bad"));
      await until("refused as untrusted", () => bad.lines.some((l) => l.startsWith("tls error")));
      expect(bad.lines.filter((l) => l.startsWith("tls error"))[0]).toBe("tls error tls");
      expect(bad.lines).not.toContain("tls connect");
      bad.run("c.end();");
      expect([...good.faults, ...bad.faults]).toEqual([]);
    } finally {
      await tlsBroker.close();
    }
  });

  it("ESP32 flavour: a refused connection thrown by connect() itself is reported as refused, retried, and the board connects once the broker is there", async () => {
    const flash = flashDir();
    const b = board(flash, 536, true);
    const port = await freePort();
    b.run(`var thrown = 0; var net0 = require("net"); try { net0.connect({ host: "127.0.0.1", port: ${port} }, function () {}); } catch (e) { thrown++; }`);
    expect(b.run("thrown")).toBe(1); // the stand-in throws, as ESP32 builds do
    b.run(CLIENT(port, "esp32-refused"));
    await until("two refused attempts", () => b.lines.filter((l) => l === "error refused").length >= 1 && (b.run("c.core.stats.attempts") as number) >= 2);
    const late = await startBroker({ port });
    try {
      await until("connect once the broker is up", () => b.lines.includes("connect sp=0"), 10000);
      expect(b.faults).toEqual([]);
      b.run(`c.end(function () { print("ended"); });`);
      await until("end", () => b.lines.includes("ended"));
    } finally {
      await late.close();
    }
  });

  it("the stand-in is strict: a Uint8Array written to a socket goes out as its text, and a connect callback with on('connect') is a fault", async () => {
    const got: Buffer[] = [];
    const server = net.createServer((s) => s.on("data", (d) => got.push(d)));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    try {
      const port = (server.address() as net.AddressInfo).port;
      const b = board(flashDir());
      b.run(`var s = require("net").connect({ host: "127.0.0.1", port: ${port} }, function () {
        s.write(new Uint8Array([67, 68]));
        s.write(E.toString(new Uint8Array([67, 68])));
      });`);
      await until("bytes at the server", () => Buffer.concat(got).length >= 7);
      expect(Buffer.concat(got).toString("latin1")).toBe("67,68CD");
      b.run(`s.on("connect", function () {});`);
      expect(b.faults).toEqual(["net: a connect callback and on('connect') together crash Espruino"]);
      b.run("s.end();");
    } finally {
      server.close();
    }
  });
});

const real = runtimes["espruino-real"].missing();
describe("the Espruino bundle on a real Espruino interpreter against mosquitto", () => {
  it.skipIf(real !== null)(`QoS 0/1/2 round trips with the interpreter's own net and Storage${real ? ` (skipped: ${real})` : ""}`, async () => {
    const dir = flashDir();
    fs.writeFileSync(path.join(dir, "main.js"), fs.readFileSync(path.join(DIST, "espruino/petrel.js"), "utf8") + `
var c = Petrel.connect(Petrel.espruinoPlatform({ logLevel: 1 }), { brokers: [{ host: "127.0.0.1", port: ${broker.port} }],
  clientId: "esp-real", keepalive: 30, reconnectMinMs: 200 });
c.on("connect", function () {
  c.subscribe("real/#", { qos: 2 }, function (e, g) {
    print("suback " + g);
    c.publish("real/0", "zero", { qos: 0 });
    c.publish("real/1", "one", { qos: 1 }, function (e) { print("acked 1 " + (e ? e.code : "ok")); });
    c.publish("real/2", "°C two", { qos: 2 }, function (e) {
      print("acked 2 " + (e ? e.code : "ok"));
      print("jsvars " + process.memory().usage);
      c.end(function () { print("ended"); });
    });
  });
});
c.on("message", function (t, p, i) { print("msg " + t + " " + p + " q" + i.qos); });
c.on("error", function (e) { print("error " + e.code); });
`);
    const child = spawn(process.env.ESPRUINO as string, ["main.js"], { cwd: dir, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => { out += d.toString("latin1"); });
    try {
      await until("the interpreter to end the session", () => out.includes("ended"), 15000);
    } finally {
      child.kill("SIGKILL");
    }
    const lines = out.split(/\r?\n/).map((l) => Buffer.from(l.replace(/^>?\r?(\x1b\[J)?/, ""), "latin1").toString("utf8"));
    for (const want of ["suback 2", "msg real/0 zero q0", "msg real/1 one q1", "msg real/2 °C two q2", "acked 1 ok", "acked 2 ok"]) {
      expect(lines).toContain(want);
    }
    const jsvars = lines.find((l) => l.startsWith("jsvars "));
    console.log(`[espruino-real] session round trip done; process.memory().usage ${jsvars?.slice(7)} JsVars (bundle loaded into RAM, not run from flash)`);
  });
});

describe("the boot guard (dist/espruino/boot.js) on the Espruino stand-in", () => {
  /** One boot of a board process; `until` ends it (SIGKILL: a reset) once a line matches. */
  /**
   * One boot of a board process. `keys` are typed at once; `repl`, a REPL line typed after the
   * window (to the global function `replFn`); `killOn` ends it (SIGKILL: a reset) once printed.
   */
  function bootOnce(flash: string, opts: { keys?: string; killOn?: string; runMs?: number; replFn?: string; repl?: string } = {}): Promise<string[]> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [path.join(DIST, "node/host-sim/espruino/board.js")], {
        env: { ...process.env, PETREL_BUNDLE: path.join(DIST, "espruino/boot.js"), PETREL_FLASH: flash,
          ...(opts.replFn !== undefined ? { PETREL_CONSOLE: opts.replFn } : {}),
          PETREL_GLOBALS: JSON.stringify({ PETREL_BOOT: { windowMs: 200, healthyMs: 500 } }) },
        stdio: ["pipe", "pipe", "pipe"],
      });
      let out = "";
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString("latin1");
        if (opts.killOn !== undefined && out.includes(opts.killOn)) child.kill("SIGKILL");
      });
      child.stdin.on("error", () => {});
      if (opts.keys !== undefined) child.stdin.write(opts.keys);
      if (opts.repl !== undefined) setTimeout(() => child.stdin.write(`${opts.repl}\n`), 300);
      // a board that was not reset runs on: end it after runMs (a bound, not an assertion)
      const timer = setTimeout(() => child.kill("SIGKILL"), opts.runMs ?? 1500);
      child.on("close", () => {
        clearTimeout(timer);
        resolve(out.split("\n").filter((l) => l.length > 0));
      });
    });
  }
  const withApp = () => {
    const flash = flashDir();
    fs.writeFileSync(path.join(flash, Buffer.from("app", "latin1").toString("hex")), 'print("app running");');
    return flash;
  };
  const BANNER = "boot: press a key within 0.2 s for safe mode (the REPL, no app)";

  it("three boots reset before the app has run 0.5 s, then safe mode; petrelBootOk() clears it and the app runs, counting as good", async () => {
    const flash = withApp();
    for (let i = 0; i < 3; i++) expect(await bootOnce(flash, { killOn: "app running" })).toEqual([BANNER, "app running"]);
    const safe = await bootOnce(flash, { runMs: 800 });
    expect(safe).toHaveLength(1);
    expect(safe[0]).toMatch(/^SAFE MODE: the app did not run 0\.5 s after each of the last 3 boots .*petrelBootOk\(\)/);
    // the REPL in safe mode: clear the count (board.js types lines at the REPL)
    const cleared = await bootOnce(flash, { replFn: "petrelBootOk", repl: "now", runMs: 800 });
    expect(cleared.join("\n")).toContain("SAFE MODE");
    const good = await bootOnce(flash, { runMs: 1200 });
    expect(good).toEqual([BANNER, "app running"]);
    // that boot ran past 0.5 s: a reset soon after the next start is one failed boot, not the fourth
    expect(await bootOnce(flash, { killOn: "app running" })).toEqual([BANNER, "app running"]);
    expect(await bootOnce(flash, { killOn: "app running" })).toEqual([BANNER, "app running"]);
  });

  it("a key in the boot window (the console moved off the REPL meanwhile) enters safe mode; the app is not started", async () => {
    const lines = await bootOnce(withApp(), { keys: "x\n", runMs: 800 });
    expect(lines).toEqual([BANNER, "SAFE MODE: a key was pressed in the boot window; the app is not started and the console is the REPL. Reset to start the app"]);
  });
});

describe("the app's settings save under a power cut, on the Espruino stand-in", () => {
  it("save leaves the old or the new settings under a cut at every flash step (write or erase)", () => {
    const flash = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-esp-settings-cuts-"));
    const ctx = runBundle(path.join(DIST, "espruino/settings-test.js"), { print: () => {}, storageDir: flash });
    try {
      const out = runScript(ctx, `
        var T = SettingsTest, S = require("Storage"), KEYS = ["interval", "prefix", "mqtt.user"];
        var OLD = { interval: "30", prefix: "old", "mqtt.user": "olduser" };
        var NEW = { interval: "120", prefix: "newer", "mqtt.user": "a-much-longer-new-user-name" };
        function boot() { var st = new T.Settings(T.espruinoStorage(), false); return { st: st, problem: T.loadSettings(st) }; }
        function which(st) {
          var o = true, n = true;
          KEYS.forEach(function (k) { o = o && st.get(k) === OLD[k]; n = n && st.get(k) === NEW[k]; });
          return o ? "old" : n ? "new" : "MIXED";
        }
        var lines = [];
        for (var n = 1; n <= 10; n++) {
          S.list().forEach(function (f) { S.erase(f); });
          var st = boot().st;
          KEYS.forEach(function (k) { T.setSetting(st, k, OLD[k]); });
          T.saveSettings(st);
          KEYS.forEach(function (k) { T.setSetting(st, k, NEW[k]); });
          S.standinPowerCut(n);
          try { T.saveSettings(st); } catch (e) {}
          var finished = S.standinPowered();
          S.standinPowerOn();
          var b = boot();
          var got = which(b.st);
          KEYS.forEach(function (k) { T.setSetting(b.st, k, NEW[k]); });
          var again = T.saveSettings(b.st) === null && which(boot().st) === "new";
          lines.push("save cut " + n + " -> " + got + " load " + b.problem + " save-after " + again + (finished ? " (not cut)" : ""));
          if (finished) break;
        }
        lines.join("\\n");
      `) as string;
      // the adapter's four steps (write key~, erase key, write key, erase key~): a cut in the
      // first keeps the old settings, after it the new ones (read falls back to key~)
      expect(out.split("\n")).toEqual([
        "save cut 1 -> old load null save-after true",
        "save cut 2 -> new load null save-after true",
        "save cut 3 -> new load null save-after true",
        "save cut 4 -> new load null save-after true",
        "save cut 5 -> new load null save-after true (not cut)",
      ]);
    } finally {
      disposeContext(ctx);
      fs.rmSync(flash, { recursive: true, force: true });
    }
  });
});
