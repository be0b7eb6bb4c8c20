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
}

export interface Fault {
  name: string;
  from: number;
  to: number;
}

export interface Verdict {
  ok: boolean;
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

/** `received`: "chaos/<device>/q<qos> <seq>" lines in arrival order. */
export function verdict(published: Published[], received: string[], faults: Fault[]): Verdict {
  const byKey = new Map<string, number[]>();
  for (const line of received) {
    const m = /^chaos\/([^/]+)\/q([012]) (\d+)$/.exec(line);
    if (m === null) continue;
    const key = `${m[1]} ${m[2]}`;
    let list = byKey.get(key);
    if (list === undefined) byKey.set(key, (list = []));
    list.push(Number(m[3]));
  }
  const violations: string[] = [];
  const rows: Verdict["rows"] = [];
  let qos0Lost = 0;
  for (const p of published) {
    const got = byKey.get(`${p.device} ${p.qos}`) ?? [];
    const seen = new Set<number>();
    let duplicates = 0;
    let last = -1;
    for (const n of got) {
      if (n >= p.count) violations.push(`${p.device} QoS ${p.qos}: message ${n} arrived but was never accepted by the board`);
      if (seen.has(n)) {
        duplicates++;
        if (p.qos === 2) violations.push(`${p.device} QoS 2: message ${n} arrived twice (accepted during ${faultAt(faults, p.at[n] ?? -1)})`);
        continue;
      }
      seen.add(n);
      if (p.qos > 0 && n < last) violations.push(`${p.device} QoS ${p.qos}: message ${n} arrived after ${last} (accepted during ${faultAt(faults, p.at[n] ?? -1)})`);
      if (n > last) last = n;
    }
    let lost = 0;
    for (let n = 0; n < p.count; n++) {
      if (seen.has(n)) continue;
      lost++;
      if (p.qos > 0) violations.push(`${p.device} QoS ${p.qos}: message ${n} lost (accepted at ${p.at[n]} ms, during ${faultAt(faults, p.at[n])})`);
    }
    if (p.qos === 0) qos0Lost += lost;
    rows.push({ device: p.device, qos: p.qos, sent: p.count, received: seen.size, duplicates, lost });
  }
  return { ok: violations.length === 0, violations, rows, qos0Lost };
}
