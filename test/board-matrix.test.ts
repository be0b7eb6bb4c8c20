import { spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, startBroker, type Broker } from "../host-sim/mosquitto";
import { makeCerts, type Certs } from "../host-sim/tls-certs";
import { Board, boardMissing } from "./harness/boards";
import { DIST, ESPRUINO_REAL_TIMEOUT_MS, OPTIONAL_IN_CI, RUNTIMES, type RuntimeName } from "./harness/runtimes";
import { mosquittoSub } from "./harness/mosquitto-sub";

// The session's mosquitto scenarios on every runtime of the matrix, each running the built
// firmware (the Espruino bundle, the NodeMCU Lua, the Node build) as a board process driven
// through its console (test/agent). What a board does is checked by an independent observer at
// the broker (mosquitto_sub / mosquitto_pub), not by Petrel code. Every wait is bounded.
// The scenario × runtime table goes to dist/test-report/scenarios-boards.json; `make test`
// prints it.

const inCI = process.env.CI === "true";
const hex = (s: string | Buffer) => (typeof s === "string" ? Buffer.from(s, "utf8") : s).toString("hex");

let shared: Broker;
const brokers: Broker[] = [];
const dirs: string[] = [];
const boards: Board[] = [];
const observers: ChildProcess[] = [];
const table: Record<string, Record<string, string>> = {};

beforeAll(async () => {
  shared = await startBroker();
  brokers.push(shared);
});

afterAll(async () => {
  for (const b of boards) await b.kill();
  for (const o of observers) o.kill("SIGKILL");
  for (const b of brokers) await b.close();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  const dir = path.join(DIST, "test-report");
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "scenarios-boards.json"), JSON.stringify({ title: "mosquitto scenarios on the built firmware", table }, null, 1));
});

function flashDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-board-"));
  dirs.push(d);
  return d;
}

function boot(rt: RuntimeName, flash = flashDir(), env: Record<string, string> = {}): Board {
  const b = new Board(rt, flash, env);
  boards.push(b);
  return b;
}

/** mosquitto_sub at the broker: lines "TOPIC QOS RETAIN HEX", once its SUBACK came (bounded). */
async function observe(port: number, topic: string, qos = 2): Promise<{ lines: string[]; stop(): void }> {
  const lines: string[] = [];
  const child = await mosquittoSub(port, topic, qos, "%t %q %r %x", (l) => lines.push(l));
  observers.push(child);
  return { lines, stop: () => child.kill("SIGKILL") };
}

async function waitLines(what: string, lines: string[], n: number, ms = 10000): Promise<string[]> {
  const deadline = Date.now() + ms;
  while (lines.length < n) {
    if (Date.now() > deadline) throw new Error(`${what}: ${lines.length} of ${n} within ${ms} ms: ${lines.join(" | ")}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return lines.slice();
}

function mosquittoPub(port: number, topic: string, payload: string, qos: number, retain = false): void {
  const r = spawnSync("mosquitto_pub", ["-h", "127.0.0.1", "-p", String(port), "-t", topic, "-m", payload, "-q", String(qos), ...(retain ? ["-r"] : [])],
    { timeout: 5000, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`mosquitto_pub failed: ${r.stderr}`);
}

/** The broker's retained message on a topic, or "" when there is none (waits 1 s). */
function retainedAt(port: number, topic: string): string {
  const r = spawnSync("mosquitto_sub", ["-h", "127.0.0.1", "-p", String(port), "-t", topic, "-C", "1", "-W", "1", "-F", "%r %x"],
    { timeout: 5000, encoding: "utf8" });
  return r.stdout.trim();
}

/** `open` on the board's console; `brokers` replaces the 127.0.0.1:port list when given. */
const open = (b: Board, port: number | number[], id: string, extra = "", brokers?: string) =>
  b.send(`open brokers=${brokers ?? (Array.isArray(port) ? port : [port]).map((p) => `127.0.0.1:${p}`).join(",")} id=${id} min=100 max=400${extra ? " " + extra : ""}`);

/** One TLS broker and its certificates for the whole file (made on first use). */
let tlsShared: Promise<{ certs: Certs; broker: Broker }> | undefined;
function tlsSetup(): Promise<{ certs: Certs; broker: Broker }> {
  tlsShared ??= (async () => {
    const certs = await makeCerts(flashDir());
    const broker = await startBroker({ tls: { certfile: certs.server.certfile, keyfile: certs.server.keyfile } });
    brokers.push(broker);
    return { certs, broker };
  })();
  return tlsShared;
}

/** Asks for stats until the outbox is empty (the last acknowledgement may trail a delivery). */
async function outboxEmpty(b: Board): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const from = b.lines.length;
    b.send("stats");
    const at = await b.waitFor("stats", /^stats /, 5000, from);
    if (b.lines[at].startsWith("stats outbox=0 ")) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the outbox did not empty within 50 polls\n${b.describe()}`);
}

interface Scenario {
  name: string;
  /** Why this scenario cannot run on a runtime, or null. */
  cannot?(rt: RuntimeName): string | null;
  /** Resolves to a note for the table (e.g. memory in use), or nothing. */
  run(rt: RuntimeName, tag: string): Promise<string | void>;
}

// Over one TCP segment (1,460), and several of the 536/268-byte pieces Espruino delivers.
const BIG = "°C " + "0123456789".repeat(150);

const SCENARIOS: Scenario[] = [
  {
    name: "QoS 0/1/2 round trips (and a 1,500-byte message)",
    async run(rt, tag) {
      const b = boot(rt);
      open(b, shared.port, `rt-${tag}`, "clean=1 packet=4096");
      await b.waitFor("connect", "connect sp=0");
      b.send(`sub ${tag}/rt/# 2`);
      await b.waitFor("suback", `suback ${tag}/rt/# 2`);
      b.send(`pub 0 ${tag}/rt/0 0 0 ${hex("zero")}`);
      b.send(`pub 1 ${tag}/rt/1 1 0 ${hex("one")}`);
      b.send(`pub 2 ${tag}/rt/2 2 0 ${hex("two")}`);
      b.send(`pub 3 ${tag}/rt/big 1 0 ${hex(BIG)}`);
      const msgs = await b.waitCount("four messages", /^msg /, 4);
      await b.waitCount("four callbacks", /^pubdone /, 4);
      expect(msgs.sort()).toEqual([
        `msg ${tag}/rt/0 0 0 ${hex("zero")}`,
        `msg ${tag}/rt/1 1 0 ${hex("one")}`,
        `msg ${tag}/rt/2 2 0 ${hex("two")}`,
        `msg ${tag}/rt/big 1 0 ${hex(BIG)}`,
      ]);
      expect(b.lines.filter((l) => l.startsWith("pubdone")).sort()).toEqual(["pubdone 0 ok", "pubdone 1 ok", "pubdone 2 ok", "pubdone 3 ok"]);
      // The runtime's own memory figure with the session connected (bundle/modules in RAM).
      b.send("mem");
      const mem = b.lines[await b.waitFor("memory", /^mem /)].slice(4);
      b.send("end");
      await b.waitFor("end", "ended");
      return mem;
    },
  },
  {
    name: "retained: kept by the broker, flagged to a new subscriber, cleared by an empty one",
    async run(rt, tag) {
      const b = boot(rt);
      const topic = `${tag}/ret`;
      open(b, shared.port, `ret-${tag}`, "clean=1");
      await b.waitFor("connect", "connect sp=0");
      b.send(`pub r ${topic} 1 1 ${hex("kept")}`);
      await b.waitFor("publish", "pubdone r ok");
      expect(retainedAt(shared.port, topic)).toBe(`1 ${hex("kept")}`);
      b.send(`sub ${topic} 1`);
      await b.waitFor("retained message", `msg ${topic} 1 1 ${hex("kept")}`);
      b.send(`pub c ${topic} 1 1 `);
      await b.waitFor("clear", "pubdone c ok");
      expect(retainedAt(shared.port, topic)).toBe("");
      b.send("end");
      await b.waitFor("end", "ended");
    },
  },
  {
    name: "will: published by the broker when the board loses power",
    async run(rt, tag) {
      const topic = `${tag}/will`;
      const obs = await observe(shared.port, topic);
      const b = boot(rt);
      open(b, shared.port, `will-${tag}`, `clean=1 keepalive=30 will=${topic},1,0,${hex("gone °")}`);
      await b.waitFor("connect", "connect sp=0");
      await b.kill();
      expect(await waitLines("the will", obs.lines, 1)).toEqual([`${topic} 1 0 ${hex("gone °")}`]);
      obs.stop();
    },
  },
  {
    name: "persistent session: messages queued while away arrive at reconnect, without resubscribing",
    async run(rt, tag) {
      const b = boot(rt);
      const topic = `${tag}/ps`;
      open(b, shared.port, `ps-${tag}`, "clean=0");
      await b.waitFor("connect", /^connect sp=/);
      b.send(`sub ${topic}/# 1`);
      await b.waitFor("suback", `suback ${topic}/# 1`);
      b.send("end");
      await b.waitFor("end", "ended");
      for (let i = 1; i <= 3; i++) mosquittoPub(shared.port, `${topic}/${i}`, `queued ${i}`, 1);
      const from = b.lines.length;
      open(b, shared.port, `ps-${tag}`, "clean=0");
      await b.waitFor("connect with session", "connect sp=1", 10000, from);
      const msgs = await b.waitCount("three queued", /^msg /, 3);
      expect(msgs).toEqual([1, 2, 3].map((i) => `msg ${topic}/${i} 1 0 ${hex(`queued ${i}`)}`));
      expect(b.lines.slice(from).some((l) => l.startsWith("suback"))).toBe(false);
      b.send("end");
      await b.waitFor("end", "ended", 10000, from);
    },
  },
  {
    name: "reboot: the outbox in flash is sent by the next boot",
    async run(rt, tag) {
      const topic = `${tag}/boot`;
      const obs = await observe(shared.port, `${topic}/#`);
      const flash = flashDir();
      const dead = await freePort();
      const a = boot(rt, flash);
      open(a, dead, `boot-${tag}`, "clean=0");
      a.send(`pub 1 ${topic}/1 1 0 ${hex("stored one")}`);
      a.send(`pub 2 ${topic}/2 2 0 ${hex("stored two")}`);
      a.send(`pub 3 ${topic}/3 1 0 ${hex("stored three")}`);
      a.send("stats");
      await a.waitFor("three stored", (l) => l.startsWith("stats outbox=3"));
      await a.kill();
      const b = boot(rt, flash);
      open(b, shared.port, `boot-${tag}`, "clean=0");
      await b.waitFor("connect", /^connect sp=/);
      const got = await waitLines("three resumed", obs.lines, 3);
      // The broker forwards a QoS 2 message at PUBREL, so only the QoS 1 ones keep their order.
      expect(got.slice().sort()).toEqual([`${topic}/1 1 0 ${hex("stored one")}`, `${topic}/2 2 0 ${hex("stored two")}`, `${topic}/3 1 0 ${hex("stored three")}`]);
      expect(got.filter((l) => l.includes(" 1 0 ")).map((l) => l.split(" ")[0])).toEqual([`${topic}/1`, `${topic}/3`]);
      await outboxEmpty(b);
      b.send("end");
      await b.waitFor("end", "ended");
      obs.stop();
    },
  },
  {
    name: "broker restart: publishes made while it is down arrive after it is back",
    async run(rt, tag) {
      const broker = await startBroker();
      brokers.push(broker);
      const topic = `${tag}/br`;
      const b = boot(rt);
      open(b, broker.port, `br-${tag}`, "clean=0 keepalive=5");
      await b.waitFor("connect", "connect sp=0");
      b.send(`sub ${topic}/# 1`);
      await b.waitFor("suback", `suback ${topic}/# 1`);
      await broker.stop();
      await b.waitFor("offline", "offline");
      for (let i = 1; i <= 3; i++) b.send(`pub ${i} ${topic}/${i} 1 0 ${hex(`while down ${i}`)}`);
      const back = await broker.restart();
      brokers.push(back);
      await b.waitFor("reconnect with the session", "connect sp=1", 15000);
      const msgs = await b.waitCount("three delivered", /^msg /, 3, 15000);
      expect(msgs).toEqual([1, 2, 3].map((i) => `msg ${topic}/${i} 1 0 ${hex(`while down ${i}`)}`));
      expect((await b.waitCount("three callbacks", /^pubdone /, 3)).sort()).toEqual(["pubdone 1 ok", "pubdone 2 ok", "pubdone 3 ok"]);
      await outboxEmpty(b);
      b.send("end");
      await b.waitFor("end", "ended");
    },
  },
  {
    name: "failover: the first broker stops, the board carries on at the second",
    async run(rt, tag) {
      const first = await startBroker();
      const second = await startBroker();
      brokers.push(first, second);
      const topic = `${tag}/fo`;
      const obs = await observe(second.port, topic);
      const b = boot(rt);
      open(b, [first.port, second.port], `fo-${tag}`, "clean=1 keepalive=5");
      await b.waitFor("connect to the first", "connect sp=0");
      await first.stop();
      await b.waitFor("offline", "offline");
      const from = b.lines.indexOf("offline");
      await b.waitFor("connect to the second", "connect sp=0", 15000, from);
      b.send(`pub 1 ${topic} 1 0 ${hex("via the second")}`);
      await b.waitFor("acknowledged", "pubdone 1 ok");
      expect(await waitLines("at the second broker", obs.lines, 1)).toEqual([`${topic} 1 0 ${hex("via the second")}`]);
      b.send("end");
      await b.waitFor("end", "ended");
      obs.stop();
    },
  },
  {
    name: "TLS: a broker signed by the configured CA round-trips; one signed by another CA is refused",
    // measured: its tls.connect throws "Unable to create socket" (built without TLS)
    cannot: (rt) => (rt === "espruino-real" ? "the 8-bit Linux interpreter is built without TLS" : null),
    async run(rt, tag) {
      const { certs, broker } = await tlsSetup();
      const topic = `${tag}/tls`;
      const b = boot(rt, flashDir(), { PETREL_CA: certs.ca.certfile });
      open(b, 0, `tls-${tag}`, "clean=1", `tls:localhost:${broker.port}`);
      await b.waitFor("connect over TLS", "connect sp=0");
      b.send(`sub ${topic} 1`);
      await b.waitFor("suback", `suback ${topic} 1`);
      b.send(`pub 1 ${topic} 1 0 ${hex("sealed")}`);
      await b.waitFor("the message back", `msg ${topic} 1 0 ${hex("sealed")}`);
      b.send("end");
      await b.waitFor("end", "ended");
      const bad = boot(rt, flashDir(), { PETREL_CA: certs.wrongCa.certfile });
      open(bad, 0, `tls-bad-${tag}`, "clean=1", `tls:localhost:${broker.port}`);
      const at = await bad.waitFor("a TLS refusal", /^error /);
      expect(bad.lines[at]).toMatch(/^error tls/);
      expect(bad.lines).not.toContain("connect sp=0");
      bad.send("end");
      await bad.waitFor("end", "ended");
    },
  },
  {
    name: "Wi-Fi drop: offline at once, no dialling while down, connected again as it returns",
    cannot: (rt) => (rt === "espruino-real" ? "the Linux interpreter has no Wifi module to take down" : null),
    async run(rt, tag) {
      const topic = `${tag}/wifi`;
      const obs = await observe(shared.port, topic);
      const b = boot(rt);
      open(b, shared.port, `wifi-${tag}`, "clean=0 keepalive=60");
      await b.waitFor("connect", /^connect sp=/);
      b.send("wifi down");
      // keepalive is 60 s: the drop is seen from the Wi-Fi event, not a ping timeout
      await b.waitFor("offline", "offline", 5000);
      b.send(`pub 1 ${topic} 1 0 ${hex("kept while down")}`);
      await new Promise((r) => setTimeout(r, 1500)); // reconnectMinMs is 100: many attempts, were it dialling
      const from = b.lines.length;
      b.send("stats");
      const at = await b.waitFor("stats", /^stats /, 5000, from);
      expect(b.lines[at]).toBe("stats outbox=1 connects=1 delivered=0 duplicates=0 attempts=1");
      b.send("wifi up");
      await b.waitFor("connect again", /^connect sp=1/, 10000, from);
      await b.waitFor("acknowledged", "pubdone 1 ok");
      expect(await waitLines("at the broker", obs.lines, 1)).toEqual([`${topic} 1 0 ${hex("kept while down")}`]);
      b.send("stats");
      await b.waitFor("two attempts in all", (l) => l.startsWith("stats ") && l.endsWith(" attempts=2"), 5000, at + 1);
      b.send("end");
      await b.waitFor("end", "ended");
      obs.stop();
    },
  },
];

for (const rt of RUNTIMES) {
  const missing = boardMissing(rt);
  describe.concurrent(`built firmware on ${rt} against mosquitto`, () => {
    for (const s of SCENARIOS) {
      const row = (table[s.name] ??= {});
      const cannot = s.cannot?.(rt) ?? null;
      if (cannot !== null) {
        row[rt] = `skipped: ${cannot}`;
        it.skip(`${rt}: ${s.name} (skipped: ${cannot})`, () => {});
        continue;
      }
      if (missing !== null) {
        row[rt] = `skipped: ${missing}`;
        if (inCI && !OPTIONAL_IN_CI.includes(rt)) it(`${rt}: ${s.name} (runtime required under CI=true)`, () => expect.fail(missing));
        else it.skip(`${rt}: ${s.name} (skipped: ${missing})`, () => {});
        continue;
      }
      it(`${rt}: ${s.name}`, async () => {
        row[rt] = "failed";
        const tag = `${rt.replace("-", "")}${process.pid}`;
        const note = await s.run(rt, tag);
        for (const b of boards.filter((x) => x.runtime === rt)) b.check();
        row[rt] = note ? `passed (${note})` : "passed";
      }, rt === "espruino-real" ? ESPRUINO_REAL_TIMEOUT_MS : 60000);
    }
  });
}
