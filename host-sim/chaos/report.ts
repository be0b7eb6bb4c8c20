/**
 * The chaos lab's report: one self-contained HTML file (inline SVG and CSS, nothing fetched):
 * the verdict, a timeline of faults against throughput at the subscriber and the boards' queue
 * depth, histograms of delivery latency and recovery times, per-runtime and per-board tables,
 * the downlink, and the faults.
 */
import type { ChaosResult } from "./lab";

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

export interface Sample {
  /** ms since the run started */
  t: number;
  /** messages that arrived at the subscriber since the previous sample */
  arrived: number;
  /** messages in the boards' outboxes */
  queued: number;
  connected: number;
}

/** The fault kinds' colours in the timeline (network, board, broker). */
const KIND_STYLE = ".fault{fill:#f2b8b8;opacity:.55}.fault[data-kind=board]{fill:#c9b3f0}.fault[data-kind=broker]{fill:#9fd3e6}" +
  ".k.network{background:#f2b8b8}.k.board{background:#c9b3f0}.k.broker{background:#9fd3e6}.tick{stroke:#bbb}.fn{font-size:9px;fill:#333}";

/** Seconds between the time axis' ticks: the smallest of a few round steps giving at most 12. */
export function tickStep(endMs: number): number {
  const s = endMs / 1000;
  for (const step of [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600]) if (s / step <= 12) return step;
  return 3600 * Math.ceil(s / 3600 / 12);
}

function timeline(r: ChaosResult, samples: Sample[], boards: number): string {
  const W = 900;
  const H = 220;
  const end = Math.max(1, ...samples.map((s) => s.t), ...r.faults.map((f) => f.to));
  const x = (t: number) => (t / end) * W;
  const maxA = Math.max(1, ...samples.map((s) => s.arrived));
  const maxQ = Math.max(1, ...samples.map((s) => s.queued));
  const line = (vals: number[], max: number) => samples.map((s, i) => `${x(s.t).toFixed(1)},${(H - (vals[i] / max) * (H - 20)).toFixed(1)}`).join(" ");
  // each band numbered as in the list of faults below, coloured by its kind
  const spans = r.faults.map((f, i) => `<rect x="${x(f.from).toFixed(1)}" y="0" width="${Math.max(2, x(f.to) - x(f.from)).toFixed(1)}" height="${H}" class="fault" data-kind="${f.kind ?? "network"}"><title>${i + 1}. ${esc(f.name)} (${f.from}-${f.to} ms)</title></rect>` +
    `<text x="${(x(f.from) + 1).toFixed(1)}" y="9" class="fn">${i + 1}</text>`).join("");
  const step = tickStep(end);
  const ticks: string[] = [];
  for (let s = 0; s * 1000 <= end; s += step) {
    const at = x(s * 1000);
    const label = step >= 60 && s % 60 === 0 ? `${s / 60} min` : `${s} s`;
    ticks.push(`<line x1="${at.toFixed(1)}" y1="${H}" x2="${at.toFixed(1)}" y2="${H + 4}" class="tick"/><text x="${Math.min(W - 30, at).toFixed(1)}" y="${H + 15}">${label}</text>`);
  }
  return `<svg viewBox="0 0 ${W} ${H + 20}" width="100%" role="img" aria-label="timeline">
${spans}
<polyline points="${line(samples.map((s) => s.arrived), maxA)}" class="arrived"/>
<polyline points="${line(samples.map((s) => s.queued), maxQ)}" class="queued"/>
<polyline points="${line(samples.map((s) => s.connected), boards)}" class="connected"/>
${ticks.join("")}
</svg>
<p class="legend"><span class="k arrived"></span> arrivals per 0.5 s (max ${maxA}) <span class="k queued"></span> queued in outboxes (max ${maxQ}) <span class="k connected"></span> boards connected (of ${boards}); faults, numbered as listed below: <span class="k network"></span> network <span class="k board"></span> board <span class="k broker"></span> broker</p>`;
}

function histogram(values: number[], bins: number[], label: string): string {
  if (values.length === 0) return "<p>none</p>";
  const counts = bins.map(() => 0);
  for (const v of values) counts[bins.findIndex((b) => v <= b)]++;
  const max = Math.max(...counts);
  const bars = counts.map((c, i) => `<rect x="${i * 90 + 5}" y="${120 - (c / max) * 100}" width="80" height="${(c / max) * 100}" class="bar"><title>${c}</title></rect>` +
    `<text x="${i * 90 + 10}" y="138">${bins[i] === Infinity ? "more" : `≤ ${bins[i]} ms`}</text><text x="${i * 90 + 35}" y="${115 - (c / max) * 100}">${c}</text>`).join("");
  return `<svg viewBox="0 0 640 145" width="640" role="img" aria-label="${label}">${bars}</svg>`;
}

const SVG_STYLE = KIND_STYLE + ".arrived{fill:none;stroke:#2a6fdb;stroke-width:1.5}.queued{fill:none;stroke:#d98a00;stroke-width:1.5}" +
  ".connected{fill:none;stroke:#2b9b4b;stroke-width:1.5;stroke-dasharray:4 3}text{font:11px sans-serif;fill:#555}";

/** The timeline alone as a standalone SVG file (styles inside), for the README. */
export function timelineSvg(r: ChaosResult, samples: Sample[], boards: number): string {
  const svg = timeline(r, samples, boards);
  const end = svg.indexOf("</svg>");
  return svg.slice(0, end + 6).replace('<svg ', '<svg xmlns="http://www.w3.org/2000/svg" ').replace(/>\n/, `><style>${SVG_STYLE}</style>\n`)
    .replace('width="100%"', 'width="900" height="240"') + "\n";
}

/** Per runtime and QoS: the rows of its boards added up. */
function runtimeRows(r: ChaosResult): string {
  const sums = new Map<string, { boards: Set<string>; sent: number; received: number; duplicates: number; lost: number }>();
  for (const x of r.verdict.rows) {
    const key = `${r.runtimes[x.device] ?? "node"} ${x.qos}`;
    let m = sums.get(key);
    if (m === undefined) sums.set(key, (m = { boards: new Set(), sent: 0, received: 0, duplicates: 0, lost: 0 }));
    m.boards.add(x.device);
    m.sent += x.sent;
    m.received += x.received;
    m.duplicates += x.duplicates;
    m.lost += x.lost;
  }
  return [...sums.entries()].map(([k, m]) => {
    const [rt, qos] = k.split(" ");
    return `<tr><td>${esc(rt)}</td><td>${m.boards.size}</td><td>${qos}</td><td>${m.sent}</td><td>${m.received}</td><td>${m.duplicates}</td><td class="${m.lost > 0 && qos !== "0" ? "bad" : ""}">${m.lost}</td></tr>`;
  }).join("\n");
}

export function renderReport(r: ChaosResult, samples: Sample[], opts: { boards: number; seconds: number; recoveries: number[]; latencies: number[] }): string {
  const v = r.verdict;
  const d = v.downlink;
  const rows = v.rows.map((x) => `<tr><td>${esc(x.device)}</td><td>${esc(r.runtimes[x.device] ?? "node")}</td><td>${x.qos}</td><td>${x.sent}</td><td>${x.received}</td><td>${x.duplicates}</td><td class="${x.lost > 0 && x.qos > 0 ? "bad" : ""}">${x.lost}</td></tr>`).join("\n");
  const violations = v.violations.slice(0, 200).map((s) => `<li>${esc(s)}</li>`).join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Petrel chaos lab: ${v.ok ? "PASS" : "FAIL"} (seed ${r.seed})</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:960px;color:#222}
.verdict{font-size:28px;font-weight:bold;padding:.3em .6em;display:inline-block;border-radius:6px}
.pass{background:#d8f5d8;color:#145214}.failv{background:#fbdada;color:#7a1010}
${KIND_STYLE}.arrived{fill:none;stroke:#2a6fdb;stroke-width:1.5}.queued{fill:none;stroke:#d98a00;stroke-width:1.5}
.connected{fill:none;stroke:#2b9b4b;stroke-width:1.5;stroke-dasharray:4 3}.bar{fill:#2a6fdb}
.k{display:inline-block;width:14px;height:10px;margin:0 4px 0 12px}.k.arrived{background:#2a6fdb}.k.queued{background:#d98a00}.k.connected{background:#2b9b4b}.k.fault{background:#f2b8b8}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}.bad{background:#fbdada}
svg text{font-size:11px;fill:#555}
</style></head><body>
<h1>Petrel chaos lab</h1>
<p><span class="verdict ${v.ok ? "pass" : "failv"}">${v.ok ? "PASS" : "FAIL"}</span></p>
<p>Seed <b>${r.seed}</b> (repeat with <code>CHAOS_SEED=${r.seed}</code>), ${opts.boards} boards, ${opts.seconds} s of faults:
${r.faults.length} faults (${faultSummary(r)}).
QoS 0 lost: ${v.qos0Lost}. Lost or repeated by the broker with its own state: ${v.brokerSide.lost} lost, ${v.brokerSide.duplicates} QoS 2 repeats. QoS 2 through both brokers (failover): ${v.acrossBrokers}. QoS 2 resent by a broker to its checker under the same packet id (the checker's own leg): ${v.checkerLeg}.
Recovery after a fault: p50 ${r.recovery.p50} ms, p99 ${r.recovery.p99} ms, max ${r.recovery.max} ms.</p>
<h2>Timeline</h2>
${timeline(r, samples, opts.boards)}
<h2>Delivery latency (QoS 1 and 2: accepted by the board to first arrival at the checker)</h2>
${histogram(opts.latencies, [10, 50, 100, 250, 1000, 5000, Infinity], "latency histogram")}
<h2>Recovery after each fault (until every board in the lab's process is connected again)</h2>
${histogram(opts.recoveries, [100, 250, 500, 1000, 2000, 5000, Infinity], "recovery histogram")}
<h2>Violations (${v.violations.length})</h2>
${v.violations.length === 0 ? "<p>none</p>" : `<ol>${violations}</ol>`}
<h2>Per runtime and QoS</h2>
<table><tr><th>runtime</th><th>boards</th><th>QoS</th><th>sent</th><th>received</th><th>duplicates</th><th>lost</th></tr>
${runtimeRows(r)}
</table>
${r.consoleAcks.seen + r.consoleAcks.unseen === 0 ? "" : `<p>The boards on other runtimes told ${r.consoleAcks.seen} acknowledgements at their consoles (<code>pub: acknowledged: …</code>); ${r.consoleAcks.unseen} of their QoS 1/2 messages went unseen (left in flash by a power cut and acknowledged after the reboot, with no one to tell): those count from their acceptance.</p>`}
<h2>Downlink (numbered QoS 2 commands to the boards in the lab's process)</h2>
${d === undefined ? "<p>none</p>" : `<p>${d.sent} sent, ${d.delivered} delivered to the boards' programs, ${d.duplicates} delivered twice, ${d.brokerSide} twice across a broker's lost state, ${d.lost} never delivered: ${d.notTaken} never taken by a broker (no PUBREC to the sender: the sender's leg), ${d.notSubscribed} taken by a broker that had no subscription of the board's (restarted without persistence, before the board subscribed again: MQTT drops those), ${d.lostWithState} lost with a broker's state (taken before a kill -9 or a restart without persistence), ${d.undelivered} taken with the broker's state and the board's subscription kept since, and not at the board's program by the end (the lab waits for every board to be back on the first broker, the commander's, with its outbox empty, so these would be lost on the board's leg). The boards' duplicate check caught ${r.duplicatesCaught} repeats.</p>`}
<h2>Per board and QoS</h2>
<table><tr><th>board</th><th>runtime</th><th>QoS</th><th>sent</th><th>received</th><th>duplicates</th><th>lost</th></tr>
${rows}
</table>
<h2>Faults</h2>
<ol>${r.faults.map((f) => `<li>${esc(f.name)}: ${f.from}-${f.to} ms</li>`).join("")}</ol>
</body></html>
`;
}

/** The faults of a run by kind, in words. */
export function faultSummary(r: ChaosResult): string {
  const network = r.faults.length - r.powerCuts - r.brokerRestarts - r.brokerKills - r.brokerWipes - r.failovers - r.storageFull - r.overruns - r.wifiDrops;
  return `${network} network, ${r.powerCuts} power cuts, ${r.storageFull} flash full, ${r.overruns} task overruns (${r.overrunsReported} reported by the scheduler), ` +
    `${r.wifiDrops} Wi-Fi drops, ${r.brokerRestarts} broker restarts, ${r.brokerKills} kill -9, ${r.brokerWipes} without persistence, ${r.failovers} failovers`;
}
