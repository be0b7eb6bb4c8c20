/**
 * The chaos lab's verdict, from what an independent subscriber at the broker received (not
 * Petrel code): per device and QoS, the numbered messages each board had accepted, against what
 * arrived. QoS 1 and 2: none lost; QoS 2: none twice; QoS 1 and 2: first arrivals in order (a
 * resend after a reconnect may repeat earlier QoS 1 messages, never reorder new ones). QoS 0
 * losses are counted, not failed. A violation names the message, the device and the fault that
 * was active when the board accepted it.
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
}

export interface Fault {
  name: string;
  from: number;
  to: number;
}

export interface Verdict {
  ok: boolean;
  /**
   * Losses and QoS 2 repeats the broker caused by losing its state (kill -9, a restart without
   * persistence): a message it had acknowledged before, or had delivered before and got again
   * in a new session. Counted, not failed: the client's leg did its part.
   */
  brokerSide: { lost: number; duplicates: number };
  /** Violations (lost, duplicate, out of order), each naming message, device and fault. */
  violations: string[];
  /** Per device and QoS: sent / received (unique) / duplicates / lost. */
  rows: { device: string; qos: number; sent: number; received: number; duplicates: number; lost: number }[];
  qos0Lost: number;
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
export function verdict(published: Published[], received: (string | Arrival)[], faults: Fault[], stateLost: number[] = []): Verdict {
  const byKey = new Map<string, { n: number; t: number }[]>();
  for (const r of received) {
    const a = typeof r === "string" ? { line: r, t: 0 } : r;
    const m = /^chaos\/([^/]+)\/q([012]) (\d+)$/.exec(a.line);
    if (m === null) continue;
    const key = `${m[1]} ${m[2]}`;
    let list = byKey.get(key);
    if (list === undefined) byKey.set(key, (list = []));
    list.push({ n: Number(m[3]), t: a.t });
  }
  const lostBetween = (from: number, to: number) => stateLost.some((k) => from < k && k < to);
  const brokerSide = { lost: 0, duplicates: 0 };
  const violations: string[] = [];
  const rows: Verdict["rows"] = [];
  let qos0Lost = 0;
  for (const p of published) {
    const got = byKey.get(`${p.device} ${p.qos}`) ?? [];
    const seen = new Map<number, number>();
    let duplicates = 0;
    let last = -1;
    for (const { n, t } of got) {
      if (n >= p.count) violations.push(`${p.device} QoS ${p.qos}: message ${n} arrived but was never accepted by the board`);
      const first = seen.get(n);
      if (first !== undefined) {
        duplicates++;
        if (p.qos === 2 && lostBetween(first, t)) brokerSide.duplicates++;
        else if (p.qos === 2) violations.push(`${p.device} QoS 2: message ${n} arrived twice (accepted during ${faultAt(faults, p.at[n] ?? -1)})`);
        continue;
      }
      seen.set(n, t);
      if (p.qos > 0 && n < last) violations.push(`${p.device} QoS ${p.qos}: message ${n} arrived after ${last} (accepted during ${faultAt(faults, p.at[n] ?? -1)})`);
      if (n > last) last = n;
    }
    let lost = 0;
    for (let n = 0; n < p.count; n++) {
      if (seen.has(n)) continue;
      lost++;
      const acked = p.ackAt?.[n];
      if (p.qos > 0 && acked !== undefined && lostBetween(acked, Infinity)) brokerSide.lost++;
      else if (p.qos > 0) violations.push(`${p.device} QoS ${p.qos}: message ${n} lost (accepted at ${p.at[n]} ms, during ${faultAt(faults, p.at[n])})`);
    }
    if (p.qos === 0) qos0Lost += lost;
    rows.push({ device: p.device, qos: p.qos, sent: p.count, received: seen.size, duplicates, lost });
  }
  return { ok: violations.length === 0, violations, rows, qos0Lost, brokerSide };
}
