import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { verdict, type Published } from "../host-sim/chaos/checker";
import { runChaos } from "../host-sim/chaos/lab";

// The chaos lab's short profile, in make test: boards running the built client through a
// seeded fault schedule (resets, black holes, split bytes, delays, refused connections, a power
// cut while cut off, a broker restart), checked by an independent subscriber at the broker. The
// seed is printed; CHAOS_SEED=<it> repeats the schedule. The lab must also fail a client whose
// outbox does not survive a power cut. Bounded: the schedule is 12 s, the drain at most 30 s.

const seed = Number(process.env.CHAOS_SEED ?? String(Math.floor(Math.random() * 1000000)));

describe("the checker (synthetic arrivals)", () => {
  it("counts apart what the broker lost with its state: a message it had acknowledged, a QoS 2 repeat across the loss", () => {
    const p = { device: "a", qos: 2, count: 3, at: [0, 100, 200], ackAt: [50, 150, 260] };
    // the broker's state is lost at 300: message 1 (acknowledged at 150) never arrives, message 0
    // arrives again after the loss; message 2 arrived before and after too
    const v = verdict([p], [{ line: "chaos/a/q2 0", t: 60 }, { line: "chaos/a/q2 2", t: 210 }, { line: "chaos/a/q2 0", t: 400 }], [], [300]);
    expect(v.ok).toBe(true);
    expect(v.brokerSide).toEqual({ lost: 1, duplicates: 1 });
    // the same without a state loss: both are the client's violations
    const w = verdict([p], [{ line: "chaos/a/q2 0", t: 60 }, { line: "chaos/a/q2 2", t: 210 }, { line: "chaos/a/q2 0", t: 400 }], []);
    expect(w.violations).toEqual(["a QoS 2: message 0 arrived twice (accepted during no fault)", "a QoS 2: message 1 lost (accepted at 100 ms, during no fault)"]);
  });

  const pub = (device: string, qos: number, count: number): Published => ({ device, qos, count, at: Array.from({ length: count }, (_, i) => i * 100) });
  const faults = [{ name: "blackhole", from: 150, to: 250 }];
  it("passes everything delivered once, in order; QoS 1 repeats and QoS 0 losses are counted, not failed", () => {
    const v = verdict([pub("a", 0, 3), pub("a", 1, 3), pub("a", 2, 2)],
      ["chaos/a/q0 0", "chaos/a/q1 0", "chaos/a/q1 1", "chaos/a/q1 0", "chaos/a/q1 2", "chaos/a/q2 0", "chaos/a/q2 1", "chaos/a/q0 2"], faults);
    expect(v.ok).toBe(true);
    expect(v.qos0Lost).toBe(1);
    expect(v.rows.find((r) => r.qos === 1)).toMatchObject({ sent: 3, received: 3, duplicates: 1, lost: 0 });
  });
  it("names a lost QoS 1 message, a QoS 2 duplicate, a reordering and a message never accepted, with the fault active then", () => {
    const v = verdict([pub("a", 1, 3), pub("b", 2, 3)],
      ["chaos/a/q1 0", "chaos/a/q1 1", "chaos/b/q2 0", "chaos/b/q2 2", "chaos/b/q2 1", "chaos/b/q2 2", "chaos/b/q2 9"], faults);
    expect(v.ok).toBe(false);
    expect(v.violations).toEqual([
      "a QoS 1: message 2 lost (accepted at 200 ms, during blackhole)",
      "b QoS 2: message 1 arrived after 2 (accepted during no fault)",
      "b QoS 2: message 2 arrived twice (accepted during blackhole)",
      "b QoS 2: message 9 arrived but was never accepted by the board",
    ]);
  });
});

describe(`the chaos lab, short profile (seed ${seed}; CHAOS_SEED=${seed} repeats it)`, () => {
  it("3 boards through the fault schedule with broker kill -9 and a restart without persistence: nothing lost or repeated on the client's leg, order kept", async () => {
    const report = path.join(os.tmpdir(), `petrel-chaos-${process.pid}-${seed}.html`);
    const r = await runChaos({ boards: 3, seconds: 14, seed, brokerKills: true, report });
    console.log(`[chaos] seed ${seed}: ${r.faults.map((f) => f.name).join(", ")}; QoS 0 lost ${r.verdict.qos0Lost}; ` +
      `broker-side ${r.verdict.brokerSide.lost} lost, ${r.verdict.brokerSide.duplicates} QoS 2 repeats; recovery p50 ${r.recovery.p50} ms, p99 ${r.recovery.p99} ms`);
    expect(r.verdict.violations, `seed ${seed}`).toEqual([]);
    expect(r.powerCuts).toBeGreaterThanOrEqual(1);
    expect(r.brokerRestarts).toBe(1);
    expect(r.brokerKills).toBeGreaterThanOrEqual(1);
    expect(r.brokerWipes).toBeGreaterThanOrEqual(1);
    expect(r.recovery.samples).toBe(r.faults.length);
    for (const row of r.verdict.rows.filter((x) => x.qos > 0)) expect(row.sent).toBeGreaterThan(20);
    // every QoS 1/2 message missing at the subscriber is one the broker lost with its state
    const lost = r.verdict.rows.filter((x) => x.qos > 0).reduce((n, x) => n + x.lost, 0);
    expect(lost).toBe(r.verdict.brokerSide.lost);
    expect(r.verdict.ok).toBe(true);
    // the report: self-contained (nothing to fetch), with the verdict, the seed and the timeline
    const html = fs.readFileSync(report, "utf8");
    const svg = fs.readFileSync(report.replace(/\.html$/, "-timeline.svg"), "utf8");
    fs.rmSync(report, { force: true });
    fs.rmSync(report.replace(/\.html$/, "-timeline.svg"), { force: true });
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect((svg.match(/class="fault"/g) ?? []).length).toBe(r.faults.length);
    expect(html).toContain('<span class="verdict pass">PASS</span>');
    expect(html).toContain(`CHAOS_SEED=${seed}`);
    expect(html).toContain('aria-label="timeline"');
    expect((html.match(/class="fault"/g) ?? []).length).toBe(r.faults.length);
    expect(html).not.toMatch(/\b(src|href)=|@import|url\(/);
  }, 90000);

  it("a client whose outbox does not survive a power cut gets FAIL, naming the lost messages and the fault", async () => {
    const report = path.join(os.tmpdir(), `petrel-chaos-broken-${process.pid}-${seed}.html`);
    const r = await runChaos({ boards: 3, seconds: 6, seed, brokenOutbox: true, report });
    expect(r.verdict.ok).toBe(false);
    const html = fs.readFileSync(report, "utf8");
    fs.rmSync(report, { force: true });
    fs.rmSync(report.replace(/\.html$/, "-timeline.svg"), { force: true });
    expect(html).toContain('<span class="verdict failv">FAIL</span>');
    expect(html).toMatch(/<li>b\d QoS [12]: message \d+ lost/);
    expect(r.verdict.violations.some((v) => /QoS [12]: message \d+ lost \(accepted at \d+ ms, during power cut of b\d, cut off before it\)/.test(v)), r.verdict.violations.join("\n")).toBe(true);
  }, 90000);
});
