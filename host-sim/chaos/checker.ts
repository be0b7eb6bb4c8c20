/**
 * The chaos lab's verdict, from what an independent subscriber at the broker received (not
 * Petrel code): per device and QoS, the numbered messages each board had accepted, against what
 * arrived. QoS 1 and 2: none lost; QoS 2: none twice; QoS 1 and 2: first arrivals in order (a
 * resend after a reconnect may repeat earlier QoS 1 messages, never reorder new ones). QoS 0
 * losses are counted, not failed. A violation names the message, the device and the fault that
 * was active when the board accepted it.
 *
 * With two brokers (a failover), arrivals are merged: order is checked per broker (nothing orders
 * one broker's deliveries against another's), and a QoS 2 message that arrived once through each
 * is counted apart: exactly-once holds within one broker's session, and a message whose PUBREC
 * came from a broker that then went away is sent again from PUBLISH to the next (the client's
 * documented at-least-once across a lost session).
 *
 * The subscribers print each message's packet id on their own leg. A QoS 2 message that came
 * twice from the same broker under the same packet id is that broker resending to its subscriber
 * (after a restart, its subscriber's answers still unread), counted apart: a repeat the client
 * caused reaches the broker as a second message, sent on under a new packet id.
 */
export interface Published {
  device: string;
  qos: number;
  /** Sequence numbers the board accepted, 0 .. count-1, and when (ms since the run started). */
  count: number;
  at: number[];
  /** When the broker acknowledged each (PUBACK, or PUBCOMP for QoS 2), where the board saw it. */
  ackAt?: (number | undefined)[];
}

/** One arrival at the subscriber: "chaos/<device>/q<qos> <seq>" and when (ms since the run started). */
export interface Arrival {
  line: string;
  t: number;
  /** Which broker's subscriber saw it (one name per broker; absent with one broker). */
  broker?: string;
  /** The packet id that broker gave it on the subscriber's leg. */
  mid?: number;
}

export interface Fault {
  name: string;
  from: number;
  to: number;
  /** What it hit, for the report's colours: the network (the default), a board, a broker. */
  kind?: "network" | "board" | "broker";
}

export interface Verdict {
  ok: boolean;
  /**
   * Losses and QoS 2 repeats the broker caused by losing its state (kill -9, a restart without
   * persistence): a message it had acknowledged before, or had delivered before and got again
   * in a new session. Counted, not failed: the client's leg did its part.
   */
  brokerSide: { lost: number; duplicates: number };
  /** QoS 2 messages that arrived once through each of two brokers (a failover between them). */
  acrossBrokers: number;
  /**
   * QoS 2 repeats on the checker's own leg: the same broker sent the subscriber the same message
   * under the same packet id again (its resend after a restart, with the subscriber's answer still
   * unread). A repeat the client caused reaches the broker as a second message, which it sends on
   * under a new packet id.
   */
  checkerLeg: number;
  /** Commands to the boards (QoS 2, from a client that is not Petrel), as the boards' programs got them. */
  downlink?: DownlinkTotals;
  /** Violations (lost, duplicate, out of order), each naming message, device and fault. */
  violations: string[];
  /** Per device and QoS: sent / received (unique) / duplicates / lost. */
  rows: { device: string; qos: number; sent: number; received: number; duplicates: number; lost: number }[];
  qos0Lost: number;
  /** QoS 1/2: ms from each message's acceptance by its board to its first arrival at a checker. */
  latencies: number[];
}

/** Whether a broker lost its state (an instant in `stateLost`) strictly between `from` and `to`. */
function stateLostBetween(stateLost: number[], from: number, to: number): boolean {
  return stateLost.some((k) => from < k && k < to);
}

/** The fault active at `t`, or "no fault". */
export function faultAt(faults: Fault[], t: number): string {
  const f = faults.filter((x) => x.from <= t && t <= x.to).map((x) => x.name);
  return f.length > 0 ? f.join(" + ") : "no fault";
}

/**
 * `received`: arrivals in order (a bare line arrives at time 0). `stateLost`: when the broker
 * lost its state (ms since the run started).
 */
export function verdict(published: Published[], received: (string | Arrival)[], faults: Fault[], stateLost: number[] = [], collectionCut?: string): Verdict {
  const byKey = new Map<string, { n: number; t: number; broker: string; mid: number; k: number }[]>();
  // each arrival's place among its broker's (packet ids repeat only after 65,535 others)
  const counts = new Map<string, number>();
  for (const r of received) {
    const a: Arrival = typeof r === "string" ? { line: r, t: 0 } : r;
    const k = counts.get(a.broker ?? "") ?? 0;
    counts.set(a.broker ?? "", k + 1);
    const m = /^chaos\/([^/]+)\/q([012]) (\d+)$/.exec(a.line);
    if (m === null) continue;
    const key = `${m[1]} ${m[2]}`;
    let list = byKey.get(key);
    if (list === undefined) byKey.set(key, (list = []));
    list.push({ n: Number(m[3]), t: a.t, broker: a.broker ?? "", mid: a.mid ?? -1, k });
  }
  const lostBetween = (from: number, to: number) => stateLostBetween(stateLost, from, to);
  const brokerSide = { lost: 0, duplicates: 0 };
  const violations: string[] = [];
  const rows: Verdict["rows"] = [];
  let qos0Lost = 0;
  let acrossBrokers = 0;
  let checkerLeg = 0;
  const latencies: number[] = [];
  for (const p of published) {
    const got = byKey.get(`${p.device} ${p.qos}`) ?? [];
    const seen = new Map<number, { t: number; broker: string; mid: number; k: number }>();
    let duplicates = 0;
    const last = new Map<string, number>();
    for (const { n, t, broker, mid, k } of got) {
      if (n >= p.count) violations.push(`${p.device} QoS ${p.qos}: message ${n} arrived but was never accepted by the board`);
      const first = seen.get(n);
      if (first !== undefined) {
        duplicates++;
        if (p.qos === 2 && lostBetween(first.t, t)) brokerSide.duplicates++;
        else if (p.qos === 2 && first.broker !== broker) acrossBrokers++;
        else if (p.qos === 2 && mid >= 0 && mid === first.mid && k - first.k < 65535) checkerLeg++;
        else if (p.qos === 2) violations.push(`${p.device} QoS 2: message ${n} arrived twice (accepted during ${faultAt(faults, p.at[n] ?? -1)}; arrived at ${first.t}${first.broker === "" ? "" : ` via ${first.broker}`} and ${t} ms, during ${faultAt(faults, t)})`);
        continue;
      }
      seen.set(n, { t, broker, mid, k });
      if (p.qos > 0 && n < p.count) latencies.push(Math.max(0, t - p.at[n]));
      const before = last.get(broker) ?? -1;
      if (p.qos > 0 && n < before) violations.push(`${p.device} QoS ${p.qos}: message ${n} arrived after ${before}${broker === "" ? "" : ` at broker ${broker}`} (accepted during ${faultAt(faults, p.at[n] ?? -1)}; arrived at ${t} ms, during ${faultAt(faults, t)})`);
      if (n > before) last.set(broker, n);
    }
    let lost = 0;
    for (let n = 0; n < p.count; n++) {
      if (seen.has(n)) continue;
      lost++;
      const acked = p.ackAt?.[n];
      if (p.qos > 0 && acked !== undefined && lostBetween(acked, Infinity)) brokerSide.lost++;
      else if (p.qos > 0) violations.push(`${p.device} QoS ${p.qos}: message ${n} lost (accepted at ${p.at[n]} ms, during ${faultAt(faults, p.at[n])})${collectionCut === undefined ? "" : `; ${collectionCut}`}`);
    }
    if (p.qos === 0) qos0Lost += lost;
    rows.push({ device: p.device, qos: p.qos, sent: p.count, received: seen.size, duplicates, lost });
  }
  return { ok: violations.length === 0, violations, rows, qos0Lost, brokerSide, acrossBrokers, checkerLeg, latencies };
}

export interface DownlinkTotals {
  sent: number;
  delivered: number;
  /** Delivered twice with the broker's state intact in between: each is a violation. */
  duplicates: number;
  /** Delivered twice across a broker's lost state (kill -9, no persistence): counted apart. */
  brokerSide: number;
  /** Never delivered, all told; then by where each was lost: */
  lost: number;
  /** never taken by a broker (no PUBREC to the sender): the sender's leg; */
  notTaken: number;
  /**
   * taken by a broker that had no subscription of the board's: it had restarted without
   * persistence, and the board had not sent SUBSCRIBE to it again yet (MQTT drops a message
   * nobody is subscribed to);
   */
  notSubscribed: number;
  /** taken, then its broker lost its state (kill -9, no persistence) before delivering it; */
  lostWithState: number;
  /**
   * taken, with the broker's state and the board's subscription kept since, and not at the
   * board's program by the end (the lab ends with every board back on the first broker, the
   * commander's): lost on the board's leg.
   */
  undelivered: number;
}

/**
 * The downlink: numbered QoS 2 commands a client that is not Petrel sent to each board, against
 * when the board's program got each one. A command its program got twice is a violation (the
 * client's duplicate check is what stops a broker's resend after a lost PUBREC), unless the broker
 * lost its state in between.
 */
export function downlinkVerdict(boards: { device: string; sent: number; delivered: number[][]; taken?: (number | undefined)[]; subscribedAt?: number[] }[],
  faults: Fault[], stateLost: number[], wipes: number[] = []): { totals: DownlinkTotals; violations: string[] } {
  const totals: DownlinkTotals = { sent: 0, delivered: 0, duplicates: 0, brokerSide: 0, lost: 0, notTaken: 0, notSubscribed: 0, lostWithState: 0, undelivered: 0 };
  /** Whether the broker had the board's subscription at `t`: not between a wipe and the board's next SUBSCRIBE. */
  const unsubscribed = (subscribedAt: number[], t: number): boolean => {
    let wipe = -1;
    for (const w of wipes) if (w < t && w > wipe) wipe = w;
    return wipe >= 0 && !subscribedAt.some((s) => wipe < s && s < t);
  };
  const violations: string[] = [];
  for (const b of boards) {
    totals.sent += b.sent;
    for (let n = 0; n < b.sent; n++) {
      const times = b.delivered[n] ?? [];
      if (times.length === 0) {
        totals.lost++;
        const taken = b.taken?.[n];
        if (taken === undefined) totals.notTaken++;
        else if (unsubscribed(b.subscribedAt ?? [], taken)) totals.notSubscribed++;
        else if (stateLostBetween(stateLost, taken, Infinity)) totals.lostWithState++;
        else totals.undelivered++;
      } else totals.delivered++;
      for (let k = 1; k < times.length; k++) {
        if (stateLostBetween(stateLost, times[k - 1], times[k])) totals.brokerSide++;
        else {
          totals.duplicates++;
          violations.push(`${b.device} downlink QoS 2: command ${n} delivered to the program twice (at ${times[k - 1]} and ${times[k]} ms, during ${faultAt(faults, times[k])})`);
        }
      }
    }
  }
  return { totals, violations };
}
