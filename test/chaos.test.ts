import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { downlinkVerdict, verdict, type Published } from "../host-sim/chaos/checker";
import { FAULTS, faultKinds, runChaos, storedMessage } from "../host-sim/chaos/lab";
import { encodePublish } from "../firmware/codec/encode";
import { port } from "../firmware/port/port";

// The chaos lab's short profile, in make test: boards running the built client (three in this
// process, one on each other runtime of the matrix) through a seeded fault schedule that starts
// with one fault of each heavy kind (power cuts, broker kill -9, a restart without persistence, a
// failover to the second broker, flash full, a task overrun, a Wi-Fi drop, an uplink lost) and
// goes on with a seeded deck of every kind, checked by independent subscribers at both brokers.
// The seed is printed; CHAOS_SEED=<it> repeats the schedule. The lab must also fail two broken
// clients: an outbox that does not survive a power cut, and the QoS 2 duplicate check removed.
// Bounded: the schedule is 32 s, each drain at most 30 s.

/** The report, its timeline and the brokers' logs beside it. */
function removeReport(report: string): void {
  const base = report.replace(/\.html$/, "");
  for (const f of [report, `${base}-timeline.svg`, `${base}-broker-a.log`, `${base}-broker-b.log`, `${base}-violations.txt`]) fs.rmSync(f, { force: true });
}

const seed = Number(process.env.CHAOS_SEED ?? String(Math.floor(Math.random() * 1000000)));

describe("the fault kinds (one entry each)", () => {
  it("the deck holds every kind, the broker kills and the failover only with their options", () => {
    const base = ["reset", "blackhole", "uplink-loss", "split", "delay", "jitter", "bandwidth", "hold", "refuse", "partition", "power-cut", "storage-full", "overrun", "wifi-drop", "restart"];
    expect(faultKinds({})).toEqual(base);
    expect(faultKinds({ brokerKills: true })).toEqual([...base, "kill", "wipe"]);
    expect(faultKinds({ failover: true })).toEqual([...base, "failover"]);
    expect(faultKinds({ brokerKills: true, failover: true })).toEqual(Object.keys(FAULTS));
  });

  it.each([
    ["partition", { hold: 9000, ms: 0 }, "long partition (nothing either way)", 9000],
    ["reset", { hold: 700, ms: 0 }, "reset", 0],
    ["failover", { hold: 700, ms: 0 }, "failover: broker down 2200 ms, the second one takes the boards", 2200],
    ["kill", { hold: 700, ms: 0 }, "broker kill -9", 300],
    ["overrun", { hold: 700, ms: 450, board: { id: "b2" } }, "b2: a sensor task overrunning its slice (450 ms)", 550],
    ["power-cut", { hold: 700, ms: 0, board: { id: "b1" } }, "every board's network cut, then a power cut of b1", 1000],
    ["wifi-drop", { hold: 1200, ms: 0, board: { id: "b3" } }, "b3: Wi-Fi drop and rejoin", 1200],
  ])("%s: its name and how long it lasts", (kind, shot, name, lasts) => {
    const f = FAULTS[kind];
    expect(f.name(shot as never)).toBe(name);
    expect(f.lasts(shot as never)).toBe(lasts);
    expect(FAULTS.partition.long).toBe(true);
  });
});

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
    expect(w.violations).toEqual(["a QoS 2: message 0 arrived twice (accepted during no fault; arrived at 60 and 400 ms, during no fault)", "a QoS 2: message 1 lost (accepted at 100 ms, during no fault)"]);
  });

  it("a collection cut short while messages still arrived says so beside each message it calls lost (still a violation)", () => {
    const p = { device: "a", qos: 1, count: 2, at: [0, 100], ackAt: [50, 150] };
    const v = verdict([p], [{ line: "chaos/a/q1 0", t: 60 }], [], [], "not seen when collection stopped");
    expect(v.ok).toBe(false);
    expect(v.violations).toEqual(["a QoS 1: message 1 lost (accepted at 100 ms, during no fault); not seen when collection stopped"]);
  });

  it("with two brokers: order per broker, a QoS 2 message through each counted apart, not failed", () => {
    const p = { device: "a", qos: 2, count: 3, at: [0, 100, 200] };
    // message 1 reached broker A (its subscriber got it later, after A came back), then went
    // again through B with message 2
    const v = verdict([p], [{ line: "chaos/a/q2 0", t: 10, broker: "A" }, { line: "chaos/a/q2 1", t: 150, broker: "B" }, { line: "chaos/a/q2 2", t: 250, broker: "B" },
      { line: "chaos/a/q2 1", t: 900, broker: "A" }], []);
    expect(v.violations).toEqual([]);
    expect(v.acrossBrokers).toBe(1);
    // the same repeat through one broker is a violation
    const w = verdict([p], [{ line: "chaos/a/q2 0", t: 10, broker: "B" }, { line: "chaos/a/q2 1", t: 150, broker: "B" }, { line: "chaos/a/q2 2", t: 250, broker: "B" },
      { line: "chaos/a/q2 1", t: 900, broker: "B" }], []);
    expect(w.violations).toEqual(["a QoS 2: message 1 arrived twice (accepted during no fault; arrived at 150 via B and 900 ms, during no fault)"]);
  });

  it("a QoS 2 repeat from the same broker under the same packet id is the checker's own leg; under a new id it is a violation", () => {
    const p = { device: "a", qos: 2, count: 2, at: [0, 100] };
    const v = verdict([p], [{ line: "chaos/a/q2 0", t: 10, broker: "A", mid: 7 }, { line: "chaos/a/q2 1", t: 110, broker: "A", mid: 8 }, { line: "chaos/a/q2 0", t: 900, broker: "A", mid: 7 }], []);
    expect(v.violations).toEqual([]);
    expect(v.checkerLeg).toBe(1);
    const w = verdict([p], [{ line: "chaos/a/q2 0", t: 10, broker: "A", mid: 7 }, { line: "chaos/a/q2 1", t: 110, broker: "A", mid: 8 }, { line: "chaos/a/q2 0", t: 900, broker: "A", mid: 9 }], []);
    expect(w.checkerLeg).toBe(0);
    expect(w.violations).toEqual(["a QoS 2: message 0 arrived twice (accepted during no fault; arrived at 10 via A and 900 ms, during no fault)"]);
  });

  it("downlink: a command the board's program got twice is a violation, unless the broker lost its state in between", () => {
    const faults = [{ name: "uplink lost", from: 100, to: 300 }];
    const d = downlinkVerdict([{ device: "a", sent: 4, delivered: [[10], [120, 320], [], [400, 700]] }], faults, [500]);
    expect(d.totals).toEqual({ sent: 4, delivered: 3, duplicates: 1, brokerSide: 1, lost: 1, notTaken: 1, notSubscribed: 0, lostWithState: 0, undelivered: 0 });
    expect(d.violations).toEqual(["a downlink QoS 2: command 1 delivered to the program twice (at 120 and 320 ms, during no fault)"]);
  });

  it("downlink: an undelivered command is the sender's (no broker took it), the broker's (it lost its state after taking it), or neither", () => {
    const d = downlinkVerdict([{ device: "a", sent: 4, delivered: [[10], [], [], []], taken: [5, undefined, 200, 600] }], [], [500]);
    expect(d.totals).toMatchObject({ delivered: 1, lost: 3, notTaken: 1, lostWithState: 1, undelivered: 1 });
    expect(d.violations).toEqual([]);
  });

  it("downlink: a command taken after a restart without persistence, before the board subscribed again, was dropped for want of a subscription", () => {
    // wipe at 100; the board subscribed again at 300: command 1 (taken at 200) had no subscriber,
    // command 2 (taken at 400) did and is undelivered for another reason
    const d = downlinkVerdict([{ device: "a", sent: 3, delivered: [[10], [], []], taken: [5, 200, 400], subscribedAt: [0, 300] }], [], [100], [100]);
    expect(d.totals).toMatchObject({ delivered: 1, lost: 2, notSubscribed: 1, lostWithState: 0, undelivered: 1 });
    // without the wipe, neither is put down to a missing subscription
    const e = downlinkVerdict([{ device: "a", sent: 3, delivered: [[10], [], []], taken: [5, 200, 400], subscribedAt: [0, 300] }], [], [], []);
    expect(e.totals).toMatchObject({ notSubscribed: 0, undelivered: 2 });
  });

  it("reads which message an outbox record holds (the lab's acknowledgement times for messages loaded after a reboot)", () => {
    const o = port.bytes.out(300);
    encodePublish(o, 300, "chaos/b7/q2", "1234", 2, false, false, 77);
    expect(storedMessage(o.toWire() as unknown as Buffer)).toEqual({ qos: 2, seq: 1234 });
    encodePublish(o, 300, `chaos/b7/q1`, "5", 1, false, true, 9);
    expect(storedMessage(o.toWire() as unknown as Buffer)).toEqual({ qos: 1, seq: 5 });
    encodePublish(o, 300, "petrel/x/telemetry", "{}", 1, false, false, 3);
    expect(storedMessage(o.toWire() as unknown as Buffer)).toBeUndefined();
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
  it("gives each QoS 1/2 message's latency from its acceptance to its first arrival, repeats and QoS 0 left out", () => {
    const v = verdict([pub("a", 0, 2), pub("a", 1, 2), pub("a", 2, 2)],
      [{ line: "chaos/a/q0 0", t: 5 }, { line: "chaos/a/q1 0", t: 30 }, { line: "chaos/a/q1 1", t: 170 }, { line: "chaos/a/q1 0", t: 400 }, { line: "chaos/a/q2 1", t: 100 }], faults);
    expect(v.latencies).toEqual([30, 70, 0]);
  });
  it("names a lost QoS 1 message, a QoS 2 duplicate, a reordering and a message never accepted, with the fault active then", () => {
    const v = verdict([pub("a", 1, 3), pub("b", 2, 3)],
      ["chaos/a/q1 0", "chaos/a/q1 1", "chaos/b/q2 0", "chaos/b/q2 2", "chaos/b/q2 1", "chaos/b/q2 2", "chaos/b/q2 9"], faults);
    expect(v.ok).toBe(false);
    expect(v.violations).toEqual([
      "a QoS 1: message 2 lost (accepted at 200 ms, during blackhole)",
      "b QoS 2: message 1 arrived after 2 (accepted during no fault; arrived at 0 ms, during no fault)",
      "b QoS 2: message 2 arrived twice (accepted during blackhole; arrived at 0 and 0 ms, during no fault)",
      "b QoS 2: message 9 arrived but was never accepted by the board",
    ]);
  });
});

describe(`the chaos lab, short profile (seed ${seed}; CHAOS_SEED=${seed} repeats it)`, () => {
  it("3 boards here and one on each other runtime, all at MQTT 5.0, through every kind of fault: nothing lost or repeated on the client's leg, order kept", async () => {
    const report = path.join(os.tmpdir(), `petrel-chaos-${process.pid}-${seed}.html`);
    const runtimes = ["espruino", "lua51", "lua53", "fengari"] as const;
    const r = await runChaos({ boards: 3, seconds: 32, seed, brokerKills: true, failover: true, runtimes: [...runtimes], report, protocolVersion: 5,
      first: ["power-cut", "kill", "wipe", "failover", "storage-full", "overrun", "wifi-drop", "uplink-loss"] });
    console.log(`[chaos] seed ${seed}: ${r.faults.map((f) => f.name).join(", ")}; QoS 0 lost ${r.verdict.qos0Lost}; ` +
      `broker-side ${r.verdict.brokerSide.lost} lost, ${r.verdict.brokerSide.duplicates} QoS 2 repeats; recovery p50 ${r.recovery.p50} ms, p99 ${r.recovery.p99} ms; ` +
      `duplicates caught ${r.duplicatesCaught}; runtimes ${Object.values(r.runtimes).join(", ")}`);
    expect(r.verdict.violations, `seed ${seed}`).toEqual([]);
    expect(Object.values(r.runtimes).filter((t) => t === "node (MQTT 5.0)")).toHaveLength(3);
    expect(r.powerCuts).toBeGreaterThanOrEqual(1);
    expect(r.brokerKills).toBeGreaterThanOrEqual(1);
    expect(r.brokerWipes).toBeGreaterThanOrEqual(1);
    expect(r.failovers).toBeGreaterThanOrEqual(1);
    expect(r.storageFull).toBeGreaterThanOrEqual(1);
    expect(r.overruns).toBeGreaterThanOrEqual(1);
    // the scheduler saw each overrun (a board's watchdog would have)
    expect(r.overrunsReported).toBeGreaterThanOrEqual(r.overruns);
    expect(r.wifiDrops).toBeGreaterThanOrEqual(1);
    expect(r.faults.some((f) => f.name.startsWith("uplink lost"))).toBe(true);
    expect(r.recovery.samples).toBe(r.faults.length);
    // every runtime of the matrix had a board (the real Espruino binary has its own tests)
    expect(new Set(Object.values(r.runtimes))).toEqual(new Set(["node (MQTT 5.0)", ...runtimes]));
    for (const row of r.verdict.rows.filter((x) => x.qos > 0)) expect(row.sent, `${row.device} QoS ${row.qos}`).toBeGreaterThan(20);
    // the downlink: every command the boards got, once
    expect(r.verdict.downlink!.duplicates).toBe(0);
    expect(r.verdict.downlink!.delivered).toBeGreaterThan(0);
    // every QoS 1/2 message missing at the subscriber is one the broker lost with its state
    const lost = r.verdict.rows.filter((x) => x.qos > 0).reduce((n, x) => n + x.lost, 0);
    expect(lost).toBe(r.verdict.brokerSide.lost);
    expect(r.verdict.ok).toBe(true);
    // the report: self-contained (nothing to fetch), with the verdict, the seed and the timeline
    const html = fs.readFileSync(report, "utf8");
    const svg = fs.readFileSync(report.replace(/\.html$/, "-timeline.svg"), "utf8");
    const brokerLog = fs.readFileSync(report.replace(/\.html$/, "-broker-b.log"), "utf8");
    removeReport(report);
    expect(brokerLog).toContain("mosquitto version");
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect((svg.match(/class="fault"/g) ?? []).length).toBe(r.faults.length);
    // the bands coloured by kind (a power cut is the first fault: a board's) and numbered
    expect(svg).toContain('class="fault" data-kind="board"><title>1. every board\'s network cut, then a power cut of');
    expect(html).toContain('<span class="verdict pass">PASS</span>');
    expect(html).toContain(`CHAOS_SEED=${seed}`);
    expect(html).toContain('aria-label="timeline"');
    expect((html.match(/class="fault"/g) ?? []).length).toBe(r.faults.length);
    expect(html).not.toMatch(/\b(src|href)=|@import|url\(/);
    expect(html).toContain('aria-label="latency histogram"');
    for (const rt of runtimes) expect(html).toContain(`<td>${rt}</td>`);
  }, 150000);

  it("a client whose outbox does not survive a power cut gets FAIL, naming the lost messages and the fault", async () => {
    const report = path.join(os.tmpdir(), `petrel-chaos-broken-${process.pid}-${seed}.html`);
    const r = await runChaos({ boards: 3, seconds: 6, seed, brokenOutbox: true, report });
    expect(r.verdict.ok).toBe(false);
    const html = fs.readFileSync(report, "utf8");
    removeReport(report);
    expect(html).toContain('<span class="verdict failv">FAIL</span>');
    expect(html).toMatch(/<li>b\d QoS [12]: message \d+ lost/);
    expect(r.verdict.violations.some((v) => /QoS [12]: message \d+ lost \(accepted at \d+ ms, during every board's network cut, then a power cut of b\d\)/.test(v)), r.verdict.violations.join("\n")).toBe(true);
  }, 90000);

  it("a client with its QoS 2 duplicate check removed gets FAIL, naming the command its program got twice and the fault", async () => {
    // an uplink lost: the boards get the broker's messages, their PUBRECs do not get through, and
    // the broker sends those messages again after the reconnect
    const r = await runChaos({ boards: 3, seconds: 5, seed, brokenDuplicates: true, first: ["uplink-loss", "uplink-loss"] });
    expect(r.verdict.ok).toBe(false);
    expect(r.verdict.downlink!.duplicates).toBeGreaterThan(0);
    expect(r.verdict.violations.some((v) => /^b\d downlink QoS 2: command \d+ delivered to the program twice \(at \d+ and \d+ ms, during /.test(v)), r.verdict.violations.join("\n")).toBe(true);
    // the same schedule with the check in place: the repeats are caught, nothing delivered twice
    const ok = await runChaos({ boards: 3, seconds: 5, seed, first: ["uplink-loss", "uplink-loss"] });
    expect(ok.verdict.violations).toEqual([]);
    expect(ok.duplicatesCaught).toBeGreaterThan(0);
  }, 120000);
});
