/**
 * The chaos lab against a cluster (`make chaos BROKER=nats-cluster|rabbitmq-cluster`): three
 * broker nodes behind HAProxy (host-sim/brokers.ts), Petrel boards publishing numbered QoS 0 and
 * QoS 1 messages, and a seeded schedule of the faults a cluster meets:
 * - `kill`: a node's kill -9, started again after 2-6 s on the same files;
 * - `stop`: a node stopped in order (SIGTERM), started again after 2-6 s;
 * - `proxy`: HAProxy restarted (every connection through it drops; the "haproxy" route only);
 * - `partition`: a node cut off from the other two for 8-15 s while clients still reach it.
 * One fault at a time, each on a node drawn from the seed, the next once every board is connected
 * again and the cluster is whole (`Cluster.ready`). The boards connect through HAProxy (route
 * "haproxy") or straight to the three nodes as their own broker list (route "list").
 *
 * QoS 2 is left out: neither cluster keeps it (NATS closes the connection on a QoS 2 PUBLISH,
 * RabbitMQ answers it with PUBACK; docs/brokers.md, and the mosquitto lab covers QoS 2).
 *
 * The checker, an independent MQTT.js subscriber with a persistent QoS 1 session, subscribes
 * through HAProxy. The verdict splits a QoS 1 loss by who had the message: one the cluster never
 * acknowledged is lost on the client's leg (Petrel's to keep and resend: any such loss is a FAIL),
 * one the cluster acknowledged and never delivered is the cluster's own loss, counted apart.
 * Every wait is bounded.
 */
import * as mqtt from "mqtt";
import type { PetrelError } from "../../firmware/port/log";
import type { MqttClient } from "../../firmware/session/mqtt";
import { connect } from "../node/client";
import type { Cluster } from "../brokers";
import { seeded } from "../seeded";

export type ClusterFaultKind = "kill" | "stop" | "proxy" | "partition";
export const CLUSTER_FAULTS: ClusterFaultKind[] = ["kill", "stop", "proxy", "partition"];
export type ClusterRoute = "haproxy" | "list";

export interface ClusterChaosOptions {
  cluster: Cluster;
  route: ClusterRoute;
  boards: number;
  /** Length of the fault schedule, s: faults start until it has passed (the drain is bounded apart). */
  seconds: number;
  seed: number;
  /** Messages per board per QoS per second (2). */
  rate?: number;
  /** The first faults, in order; a seeded deck of every kind follows while `seconds` last. */
  first?: ClusterFaultKind[];
  /** The nodes (indexes) the first faults hit, in order; drawn from the seed where absent. */
  firstNodes?: number[];
  progress?: (line: string) => void;
  /**
   * The lab's proof that it can fail: boards that drop a message published while they have no
   * connection, as a client without an offline queue does (counted as sent, never handed to
   * Petrel). The verdict must be FAIL whenever a fault leaves a board offline for a publish.
   */
  brokenOffline?: boolean;
  /** The boards' own log lines (info and worse), each with the board's name and ms from the start. */
  boardLog?: (line: string) => void;
}

export interface ClusterFault {
  kind: ClusterFaultKind;
  /** The node it hit (none for `proxy`). */
  node?: string;
  /** ms from the start: when it began, when it ended (node started, HAProxy up, cut healed). */
  at: number;
  end: number;
  /** ms from its end until every board was connected again and the cluster whole. */
  back: number;
  /** The longest a board was without a connection, from the fault's start until `back` (ms, sampled every 50 ms). */
  offline: number;
}

export interface ClusterRow {
  qos: 0 | 1;
  /** Publishes the boards' clients took (refused ones are counted apart). */
  sent: number;
  /** QoS 1: acknowledged by the cluster (PUBACK). */
  acked: number;
  /** Distinct messages at the checker. */
  received: number;
  /** Messages the checker got more than once. */
  duplicates: number;
  /** QoS 1: never acknowledged and never delivered (the client's leg: a FAIL). QoS 0: not delivered. */
  lost: number;
  /** QoS 1: acknowledged by the cluster and never delivered (the cluster's own loss). */
  lostByCluster: number;
  /** QoS 1: the first few still unacknowledged when the drain ended ("b0 #12"). */
  unacked: string[];
}

export interface ClusterChaosResult {
  cluster: string;
  route: ClusterRoute;
  seed: number;
  boards: number;
  faults: ClusterFault[];
  rows: ClusterRow[];
  /** Publishes a client refused (its outbox full): the caller was told, not counted as sent. */
  refused: number;
  /** Connections the boards made in all. */
  connects: number;
  /** The boards' error codes, with counts. */
  errors: Record<string, number>;
  recovery: { p50: number; p99: number; max: number };
  /** The longest a board was without a connection in any fault, ms. */
  offline: number;
  violations: string[];
  ok: boolean;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `cond` every 50 ms for at most `ms`; whether it held. */
async function waitFor(cond: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(50)) if (await cond()) return true;
  return await cond();
}

function pct(xs: number[], p: number): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

interface Board {
  id: string;
  client: MqttClient;
  seq: [number, number];
  /** Per QoS 1 number: when the cluster acknowledged it (ms from the start). */
  acked: (number | undefined)[];
  /** QoS 1 numbers a broken board dropped (never handed to Petrel: the drain does not wait for them). */
  dropped: Set<number>;
}

export async function runClusterChaos(o: ClusterChaosOptions): Promise<ClusterChaosResult> {
  const c = o.cluster;
  const log = o.progress ?? (() => undefined);
  const rand = seeded(o.seed);
  const rate = o.rate ?? 2;
  const t0 = Date.now();
  const now = () => Date.now() - t0;
  const run = `${o.route}${o.seed}p${process.pid}`;
  const base = `chaos/${run}`;
  const violations: string[] = [];

  // the checker: one copy of what arrives per board and QoS, counted
  const got = new Map<string, number>();
  const checker = mqtt.connect(`mqtt://${c.host}:${c.port}`, { protocolVersion: 4, clientId: `checker-${run}`, clean: false, reconnectPeriod: 200, connectTimeout: 5000 });
  checker.on("message", (t, payload) => {
    const k = `${t} ${payload.toString()}`;
    got.set(k, (got.get(k) ?? 0) + 1);
  });
  checker.on("error", () => undefined);
  const subscribed = await waitFor(() => checker.connected, 30_000) && await new Promise<boolean>((resolve) =>
    checker.subscribe(`${base}/#`, { qos: 1 }, (err) => resolve(!err)));
  if (!subscribed) {
    checker.end(true);
    throw new Error(`the checker could not subscribe through HAProxy at ${c.host}:${c.port} within 30 s`);
  }

  const brokers = o.route === "haproxy" ? [{ host: c.host, port: c.port }] : c.nodes.map((n) => ({ host: c.host, port: n.port }));
  const errors: Record<string, number> = {};
  const boards: Board[] = [];
  for (let b = 0; b < o.boards; b++) {
    const id = `b${b}`;
    // 3.1.1: neither cluster speaks 5.0 (a 5.0 board spends one refused attempt per broker first)
    const client = connect({ brokers, clientId: `petrel-${run}-${id}`, clean: false, keepalive: 5, reconnectMinMs: 100,
      reconnectMaxMs: 2000, protocolVersion: 4, outboxMessages: 400, outboxBytes: 40_000,
      log: o.boardLog === undefined ? undefined : (_level, line) => o.boardLog!(`${now()} ${id} ${line}`), logLevel: 2 });
    client.on("error", (e: PetrelError) => (errors[e.code] = (errors[e.code] ?? 0) + 1));
    boards.push({ id, client, seq: [0, 0], acked: [], dropped: new Set() });
  }
  const allConnected = () => boards.every((b) => b.client.connected);
  let refused = 0;
  // each board's time without a connection: since when (or undefined), and the longest since the fault began
  const downSince: (number | undefined)[] = boards.map(() => undefined);
  let longest = 0;
  const sample = () => {
    boards.forEach((b, i) => {
      if (!b.client.connected) downSince[i] ??= now();
      else if (downSince[i] !== undefined) {
        longest = Math.max(longest, now() - downSince[i]!);
        downSince[i] = undefined;
      }
    });
  };
  const sampler = setInterval(sample, 50);
  try {
    if (!(await waitFor(allConnected, 60_000))) throw new Error(`not every board connected within 60 s (${boards.filter((b) => b.client.connected).length} of ${o.boards})`);

    // the publishers: every board, both QoS, `rate` a second, numbered from 0
    let publishing = true;
    const pub = (async () => {
      const gap = 1000 / rate;
      for (let tick = 0; publishing; tick++) {
        for (const b of boards) {
          for (const qos of [0, 1] as const) {
            const n = b.seq[qos];
            if (o.brokenOffline === true && !b.client.connected) {
              if (qos === 1) b.dropped.add(n);
              b.seq[qos]++;
              continue;
            }
            const e = b.client.core.publish(`${base}/${b.id}/q${qos}`, String(n), qos, false, qos === 1 ? (err) => {
              if (err === undefined) b.acked[n] = now();
            } : undefined);
            if (e === undefined) b.seq[qos]++;
            else refused++;
          }
        }
        await sleep(Math.max(0, t0 + (tick + 1) * gap - Date.now()));
      }
    })();

    // the schedule: the first faults as told, then a seeded deck of every kind
    const kinds = CLUSTER_FAULTS.filter((k) => k !== "proxy" || o.route === "haproxy");
    const firsts = [...(o.first ?? [])];
    const deck: ClusterFaultKind[] = [];
    const nodes = [...(o.firstNodes ?? [])];
    const faults: ClusterFault[] = [];
    await sleep(1000 + Math.floor(rand() * 2000));
    // the first faults all run; the deck's start while `seconds` last
    while (firsts.length > 0 || now() < o.seconds * 1000) {
      if (firsts.length === 0 && deck.length === 0) {
        const d = [...kinds];
        for (let i = d.length - 1; i > 0; i--) {
          const j = Math.floor(rand() * (i + 1));
          [d[i], d[j]] = [d[j], d[i]];
        }
        deck.push(...d);
      }
      const kind = firsts.length > 0 ? firsts.shift()! : deck.shift()!;
      const drawn = Math.floor(rand() * c.nodes.length);
      const told = nodes.shift();
      const node = kind === "proxy" ? undefined : c.nodes[told ?? drawn];
      const at = now();
      sample();
      longest = 0;
      log(`chaos: ${(at / 1000).toFixed(1)} s: ${kind}${node ? ` ${node.name}` : ""}`);
      if (kind === "kill" || kind === "stop") {
        await (kind === "kill" ? node!.kill() : node!.stop());
        await sleep(2000 + Math.floor(rand() * 4000));
        await node!.start();
      } else if (kind === "proxy") {
        await c.restartProxy();
      } else {
        await node!.isolate(true);
        await sleep(8000 + Math.floor(rand() * 7000));
        await node!.isolate(false);
      }
      const end = now();
      const whole = await waitFor(async () => allConnected() && (await c.ready()), 120_000);
      const back = now() - end;
      sample();
      const offline = Math.max(longest, ...downSince.map((d) => (d === undefined ? 0 : now() - d)));
      faults.push({ kind, node: node?.name, at, end, back, offline });
      if (!whole) {
        violations.push(`after ${kind}${node ? ` ${node.name}` : ""} (${(at / 1000).toFixed(1)} s): ${allConnected() ? "the cluster was not whole again" : `${boards.filter((b) => !b.client.connected).length} boards not connected again`} within 120 s`);
        break;
      }
      log(`chaos: ${(now() / 1000).toFixed(1)} s: every board connected and the cluster whole ${back} ms after the ${kind} ended; the longest a board was offline: ${offline} ms`);
      await sleep(2000 + Math.floor(rand() * 2000));
    }
    publishing = false;
    await pub;

    // the drain: every QoS 1 message acknowledged and every acknowledged one at the checker, bounded
    const at = (b: Board, qos: number, n: number) => got.has(`${base}/${b.id}/q${qos} ${n}`);
    const drained = () => boards.every((b) => {
      for (let n = 0; n < b.seq[1]; n++) if (!b.dropped.has(n) && (b.acked[n] === undefined || !at(b, 1, n))) return false;
      return true;
    });
    log(`chaos: ${(now() / 1000).toFixed(1)} s: the schedule is over (${faults.length} faults); draining`);
    await waitFor(drained, 90_000);

    const rows: ClusterRow[] = [0, 1].map((qos) => {
      const r: ClusterRow = { qos: qos as 0 | 1, sent: 0, acked: 0, received: 0, duplicates: 0, lost: 0, lostByCluster: 0, unacked: [] };
      for (const b of boards) {
        for (let n = 0; n < b.seq[qos]; n++) {
          r.sent++;
          const k = got.get(`${base}/${b.id}/q${qos} ${n}`) ?? 0;
          if (qos === 1 && b.acked[n] !== undefined) r.acked++;
          else if (qos === 1 && !b.dropped.has(n)) r.unacked.push(`${b.id} #${n}`);
          if (k > 0) r.received++;
          if (k > 1) r.duplicates++;
          if (k === 0 && qos === 1 && b.acked[n] !== undefined) r.lostByCluster++;
          else if (k === 0) r.lost++;
        }
      }
      return r;
    });
    const q1 = rows[1];
    if (q1.lost > 0) violations.push(`QoS 1: ${q1.lost} messages neither acknowledged by the cluster nor delivered (lost on the client's leg)`);
    if (q1.unacked.length > 0) violations.push(`QoS 1: ${q1.unacked.length} messages still unacknowledged 90 s after the schedule (${q1.unacked.slice(0, 8).join(", ")})`);
    if (faults.length === 0) violations.push("no fault ran");
    const backs = faults.map((f) => f.back);
    return {
      cluster: c.name, route: o.route, seed: o.seed, boards: o.boards, faults, rows, refused,
      connects: boards.reduce((s, b) => s + b.client.core.stats.connects, 0), errors,
      recovery: { p50: pct(backs, 50), p99: pct(backs, 99), max: Math.max(0, ...backs) },
      offline: Math.max(0, ...faults.map((f) => f.offline)),
      violations, ok: violations.length === 0,
    };
  } finally {
    clearInterval(sampler);
    await Promise.all(boards.map((b) => new Promise<void>((resolve) => {
      const bound = setTimeout(resolve, 5000);
      b.client.end(() => {
        clearTimeout(bound);
        resolve();
      });
    })));
    await new Promise<void>((resolve) => checker.end(true, {}, () => resolve()));
  }
}

/** The result as lines: the faults, then the verdict per QoS. */
export function clusterLines(r: ClusterChaosResult): string[] {
  const out = [`chaos: ${r.cluster}, boards via ${r.route === "haproxy" ? "HAProxy" : "their own list of the three nodes"}: ${r.faults.length} faults (` +
    CLUSTER_FAULTS.map((k) => `${r.faults.filter((f) => f.kind === k).length} ${k}`).join(", ") + `); back after a fault: p50 ${r.recovery.p50} ms, max ${r.recovery.max} ms; the longest a board was offline: ${r.offline} ms`];
  for (const row of r.rows) {
    out.push(`  QoS ${row.qos}: sent ${row.sent}, ${row.qos === 1 ? `acknowledged ${row.acked}, ` : ""}at the checker ${row.received}, duplicates ${row.duplicates}, ` +
      (row.qos === 1 ? `lost on the client's leg ${row.lost}, lost by the cluster after acknowledging ${row.lostByCluster}` : `not delivered ${row.lost}`));
  }
  const errs = Object.entries(r.errors).map(([k, n]) => `${k} ${n}`).join(", ");
  out.push(`  the boards connected ${r.connects} times; refused publishes (outbox full) ${r.refused}; errors they heard: ${errs || "none"}`);
  for (const v of r.violations) out.push(`  VIOLATION ${v}`);
  out.push(`chaos: ${r.ok ? "PASS" : `FAIL (${r.violations.length} violations)`} (${r.route}, seed ${r.seed})`);
  return out;
}
