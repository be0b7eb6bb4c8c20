/**
 * The chaos lab (first slice): simulated boards running the built client publish numbered
 * QoS 0/1/2 messages through the fault proxy while a seeded schedule injects faults (resets,
 * half-open black holes, bytes split one at a time, delays, refused connections, board power
 * cuts mid-flight, a broker restart with persistence); an independent subscriber at the broker
 * (mosquitto_sub, not Petrel code) records what arrives, and checker.ts gives the verdict.
 *
 * `brokenOutbox`: the lab's own proof that it can fail: boards lose their flash at a power cut
 * (an outbox that does not survive a reboot), so messages in flight are lost and the verdict
 * must say FAIL.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import "../../firmware/targets/node/index";
import type { Storage } from "../../firmware/port/storage";
import type { Transport, TransportEvents } from "../../firmware/port/transport";
import { connect, type MqttClient } from "../../firmware/session/mqtt";
import { startFaultProxy, type FaultProxy } from "../fault-proxy";
import { startBroker, type Broker } from "../mosquitto";
import { nodePlatform } from "../node/platform";
import { memoryStorage } from "../node/storage";
import { nodeTransport } from "../node/transport";
import { verdict, type Arrival, type Fault, type Published, type Verdict } from "./checker";
import { renderReport, timelineSvg, type Sample } from "./report";

export interface ChaosOptions {
  boards: number;
  /** Length of the fault schedule, s (the drain after it is bounded separately). */
  seconds: number;
  seed: number;
  /** Messages per board per QoS per second. */
  rate?: number;
  brokenOutbox?: boolean;
  /** Broker kill -9 and restarts without persistence among the faults too. */
  brokerKills?: boolean;
  /** Progress lines (the command line prints them). */
  progress?: (line: string) => void;
  /** Where to write the HTML report (none when absent). */
  report?: string;
}

export interface ChaosResult {
  seed: number;
  verdict: Verdict;
  faults: Fault[];
  /** Messages each board's client refused (outbox full while cut off): not counted as sent. */
  refused: number;
  powerCuts: number;
  /** Broker restarts: SIGTERM with persistence, kill -9, and without persistence. */
  brokerRestarts: number;
  brokerKills: number;
  brokerWipes: number;
  /** Per fault, ms from its end until every board was connected again (p50, p99, max). */
  recovery: { p50: number; p99: number; max: number; samples: number };
  /** The HTML report's path, when one was written. */
  report?: string;
}

/** A small seeded generator (mulberry32): the same seed, the same schedule. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A transport that can lose power: afterwards nothing goes out and nothing comes back. */
function killable(inner: Transport): { t: Transport; kill(): void } {
  let dead = false;
  const guard = (ev: TransportEvents): TransportEvents => ({
    onOpen: () => { if (!dead) ev.onOpen(); },
    onData: (c) => { if (!dead) ev.onData(c); },
    onWritable: () => { if (!dead) ev.onWritable(); },
    onClose: (r) => { if (!dead) ev.onClose(r); },
  });
  return {
    t: {
      open: (h, p, tls, ev, name) => { if (!dead) inner.open(h, p, tls, guard(ev), name); },
      write: (d) => (dead ? true : inner.write(d)),
      close: () => { if (!dead) inner.close(); },
    },
    kill: () => {
      if (dead) return;
      inner.close();
      dead = true;
    },
  };
}

class ChaosBoard {
  storage: Storage = memoryStorage();
  client!: MqttClient;
  private kill: () => void = () => {};
  readonly seq = [0, 0, 0];
  readonly at: number[][] = [[], [], []];
  readonly ackAt: (number | undefined)[][] = [[], [], []];
  refused = 0;

  constructor(readonly id: string, private readonly port: number) {
    this.boot();
  }

  boot(): void {
    const k = killable(nodeTransport());
    this.kill = k.kill;
    const p = nodePlatform({ storage: this.storage, chipId: this.id, transport: k.t, logLevel: 0 });
    const c = connect(p, {
      brokers: [{ host: "127.0.0.1", port: this.port }], clientId: this.id, clean: false, keepalive: 2,
      reconnectMinMs: 100, reconnectMaxMs: 1000, connectTimeoutMs: 3000, outboxMessages: 1000, offlineQueue: 50,
    });
    if ("code" in c) throw new Error(`${c.code}: ${c.message}`);
    this.client = c;
  }

  publish(t: number, now: () => number): void {
    for (let qos = 0; qos <= 2; qos++) {
      const seq = this.seq[qos];
      const acks = this.ackAt[qos];
      const done = qos === 0 ? undefined : (err: unknown) => {
        if (err === undefined) acks[seq] = now();
      };
      const err = this.client.core.publish(`chaos/${this.id}/q${qos}`, String(seq), qos, false, done);
      if (err !== undefined) {
        this.refused++;
        continue;
      }
      this.at[qos].push(t);
      this.seq[qos]++;
    }
  }

  /** Power cut mid-flight: no DISCONNECT, the client gone; the next boot resumes from the flash. */
  powerCut(loseFlash: boolean): void {
    this.kill();
    this.client.core.end();
    if (loseFlash) this.storage = memoryStorage();
    this.boot();
  }

  drained(): boolean {
    return this.client.connected && this.client.core.outbox.count === 0;
  }
}

/** The independent subscriber: mosquitto_sub with a persistent session, QoS 2, restarted with the broker. */
function subscriber(port: number, lines: Arrival[], now: () => number): { stop(): void } {
  let child: ReturnType<typeof spawn> | undefined;
  let stopped = false;
  const start = () => {
    const c = spawn("stdbuf", ["-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", String(port), "-t", "chaos/#", "-q", "2", "-c", "-i", "chaos-checker", "-F", "%t %p"],
      { stdio: ["ignore", "pipe", "ignore"] });
    child = c;
    let rest = "";
    c.stdout!.on("data", (d: Buffer) => {
      rest += d.toString();
      const parts = rest.split("\n");
      rest = parts.pop() as string;
      for (const p of parts) if (p.length > 0) lines.push({ line: p, t: now() });
    });
    // it ends when the broker goes away; a new one resumes the same session
    c.on("exit", () => {
      if (!stopped) setTimeout(start, 200);
    });
  };
  start();
  return {
    stop: () => {
      stopped = true;
      child?.kill("SIGKILL");
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => boolean, ms: number): Promise<void> {
  for (let waited = 0; !cond(); waited += 50) {
    if (waited >= ms) throw new Error(`chaos: gave up after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

export async function runChaos(o: ChaosOptions): Promise<ChaosResult> {
  const say = o.progress ?? (() => {});
  const rand = seeded(o.seed);
  let broker: Broker = await startBroker({ maxInflight: 20 });
  let proxy: FaultProxy | undefined;
  const received: Arrival[] = [];
  const t0 = Date.now();
  const now = () => Date.now() - t0;
  const sub = subscriber(broker.port, received, now);
  const stateLost: number[] = [];
  const recoveries: number[] = [];
  let brokerKills = 0;
  let brokerWipes = 0;
  const faults: Fault[] = [];
  let powerCuts = 0;
  let brokerRestarts = 0;
  const boards: ChaosBoard[] = [];
  let tick: NodeJS.Timeout | undefined;
  const samples: Sample[] = [];
  let sampled = 0;
  const sampler = setInterval(() => {
    samples.push({ t: now(), arrived: received.length - sampled, queued: boards.reduce((n, b) => n + b.client.core.outbox.count, 0),
      connected: boards.filter((b) => b.client.connected).length });
    sampled = received.length;
  }, 500);
  try {
    // the subscriber's session exists before anything is published
    await until("the checker's subscription", () => broker.log().includes("chaos-checker"), 5000);
    await sleep(300);
    proxy = await startFaultProxy({ target: { host: "127.0.0.1", port: broker.port } });
    for (let k = 1; k <= o.boards; k++) boards.push(new ChaosBoard(`b${k}`, proxy.port));
    await until("every board connected", () => boards.every((b) => b.client.connected), 10000);
    const rate = o.rate ?? 4;
    tick = setInterval(() => {
      for (const b of boards) b.publish(now(), now);
    }, Math.round(1000 / rate));
    /** After a fault: how long until every board is connected again (polled, bounded). */
    const recovered = (end: number) => {
      const poll = setInterval(() => {
        if (boards.every((b) => b.client.connected)) {
          recoveries.push(now() - end);
          clearInterval(poll);
        } else if (now() - end > 60000) clearInterval(poll);
      }, 20);
    };

    // the schedule: a fault every 1-2.5 s, each for 0.5-3 s; one broker restart half way
    const px = proxy;
    const kinds = ["reset", "blackhole", "split", "delay", "refuse", "power-cut"];
    let restarted = false;
    while (now() < o.seconds * 1000) {
      await sleep(1000 + Math.floor(rand() * 1500));
      const from = now();
      // with brokerKills the second fault is a kill -9 and the third a restart without
      // persistence (every such run has both), later ones at random
      const forced = o.brokerKills === true && faults.length === 1 ? "kill" : o.brokerKills === true && faults.length === 2 ? "wipe" : "";
      // (the first fault is a power cut, below)
      const brokerFault = faults.length === 0 ? "" : forced !== "" ? forced : !restarted && from > (o.seconds * 1000) / 2 ? "restart"
        : o.brokerKills === true && rand() < 0.15 ? (rand() < 0.5 ? "kill" : "wipe") : "";
      if (brokerFault !== "") {
        if (brokerFault === "restart") restarted = true;
        const name = brokerFault === "restart" ? "broker restart (SIGTERM, persistence)" : brokerFault === "kill" ? "broker kill -9" : "broker restart without persistence";
        say(`chaos: ${from} ms ${name}`);
        if (brokerFault === "restart") await broker.stop();
        else await broker.kill();
        if (brokerFault !== "restart") stateLost.push(now());
        if (brokerFault === "wipe") {
          // its saved state gone; the boards wait (connections refused) until the checker has
          // its subscription again, or what they resend would reach a broker with no subscriber
          fs.rmSync(path.join(broker.dir, "mosquitto.db"), { force: true });
          await px.refuse(true, "unlisten");
        }
        await sleep(300);
        broker = await startBroker({ maxInflight: 20, port: broker.port, dir: broker.dir });
        if (brokerFault === "wipe") {
          const mark = broker.log().length;
          await until("the checker subscribed again", () => broker.log().slice(mark).includes("chaos-checker"), 10000);
          await sleep(300);
          await px.refuse(false, "unlisten");
          brokerWipes++;
        } else if (brokerFault === "kill") brokerKills++;
        else brokerRestarts++;
        faults.push({ name, from, to: now() });
        recovered(now());
        continue;
      }
      // the first fault is always a power cut: every run has one
      const kind = faults.length === 0 ? "power-cut" : kinds[Math.floor(rand() * kinds.length)];
      const hold = 500 + Math.floor(rand() * 2500);
      say(`chaos: ${from} ms ${kind}${kind === "reset" ? "" : kind === "power-cut" ? " (cut off 1 s first)" : ` for ${hold} ms`}`);
      if (kind === "reset") {
        px.reset();
        faults.push({ name: "reset", from, to: from + 200 });
        recovered(from);
      } else if (kind === "power-cut") {
        // cut off first (its outbox fills), then the power goes: the reboot must resume from flash
        const b = boards[Math.floor(rand() * boards.length)];
        await px.refuse(true, "reset");
        px.reset();
        await sleep(1000);
        b.powerCut(o.brokenOutbox === true);
        await px.refuse(false, "reset");
        powerCuts++;
        faults.push({ name: `power cut of ${b.id}, cut off before it`, from, to: now() });
        recovered(now());
      } else {
        if (kind === "blackhole") px.blackhole(true);
        else if (kind === "split") px.split(1);
        else if (kind === "delay") px.delay(200);
        else await px.refuse(true, "unlisten");
        await sleep(hold);
        if (kind === "blackhole") {
          // a half-open TCP connection never comes back (bytes dropped mid-stream cannot be
          // resumed): the connections it held are reset when it ends, as their kernel would
          px.blackhole(false);
          px.reset();
        } else if (kind === "split") px.split(0);
        else if (kind === "delay") px.delay(0);
        else await px.refuse(false, "unlisten");
        faults.push({ name: kind, from, to: now() });
        recovered(now());
      }
    }
    clearInterval(tick);
    tick = undefined;
    say(`chaos: ${now()} ms schedule over; draining`);
    await until("every board drained (connected, outbox empty)", () => boards.every((b) => b.drained()), 30000).catch((e) => {
      throw new Error(`${(e as Error).message}: ${boards.map((b) => `${b.id} ${b.client.connected ? "connected" : "offline"} outbox ${b.client.core.outbox.count} attempts ${b.client.core.stats.attempts} last ${b.client.core.lastReason}`).join("; ")}`);
    });
    // the subscriber's count settles
    let last = -1;
    await until("the subscriber to settle", () => {
      const settled = received.length === last;
      last = received.length;
      return settled;
    }, 15000).catch(() => {});
    await sleep(1000);
  } finally {
    clearInterval(sampler);
    if (tick !== undefined) clearInterval(tick);
    for (const b of boards) {
      b.client.core.end();
    }
    sub.stop();
    await proxy?.close();
    await broker.close();
  }
  const published: Published[] = [];
  for (const b of boards) for (let q = 0; q <= 2; q++) published.push({ device: b.id, qos: q, count: b.seq[q], at: b.at[q], ackAt: b.ackAt[q] });
  const sorted = recoveries.slice().sort((a, b) => a - b);
  const pick = (q: number) => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]);
  const result: ChaosResult = {
    seed: o.seed, verdict: verdict(published, received, faults, stateLost), faults,
    refused: boards.reduce((n, b) => n + b.refused, 0), powerCuts, brokerRestarts, brokerKills, brokerWipes,
    recovery: { p50: pick(0.5), p99: pick(0.99), max: sorted.length === 0 ? 0 : sorted[sorted.length - 1], samples: sorted.length },
  };
  if (o.report !== undefined) {
    fs.mkdirSync(path.dirname(o.report), { recursive: true });
    fs.writeFileSync(o.report, renderReport(result, samples, { boards: o.boards, seconds: o.seconds, recoveries: recoveries }));
    fs.writeFileSync(o.report.replace(/\.html$/, "") + "-timeline.svg", timelineSvg(result, samples, o.boards));
    result.report = o.report;
  }
  return result;
}
