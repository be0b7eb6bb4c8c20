import { describe, expect, it } from "vitest";
import { tickStep, timelineSvg } from "../host-sim/chaos/report";
import { progressLine, type ChaosResult } from "../host-sim/chaos/lab";

// The chaos report's timeline, drawn from a made-up run: fault bands numbered and coloured by
// kind with a legend, and a time axis with round ticks whatever the run's length.

describe("the chaos report's timeline", () => {
  it("picks at most 12 round ticks for any length of run", () => {
    expect(tickStep(30_000)).toBe(5);
    expect(tickStep(60_000)).toBe(5);
    expect(tickStep(95_000)).toBe(10);
    expect(tickStep(900_000)).toBe(120);
    expect(tickStep(1_000)).toBe(1);
    for (const ms of [1_000, 7_000, 32_000, 61_000, 400_000, 1_020_000, 7_200_000]) expect(ms / 1000 / tickStep(ms)).toBeLessThanOrEqual(12);
  });

  it("numbers each fault band, colours it by kind, and labels the axis", () => {
    const r = {
      faults: [
        { name: "reset", from: 1000, to: 1200, kind: "network" },
        { name: "every board's network cut, then a power cut of b2", from: 5000, to: 6000, kind: "board" },
        { name: "broker kill -9", from: 20000, to: 20300, kind: "broker" },
      ],
    } as unknown as ChaosResult;
    const samples = [0, 10000, 20000, 32000].map((t) => ({ t, arrived: 5, queued: 1, connected: 3 }));
    const svg = timelineSvg(r, samples, 3);
    expect(svg).toContain('class="fault" data-kind="network"><title>1. reset (1000-1200 ms)</title>');
    expect(svg).toContain("data-kind=\"board\"><title>2. every board's network cut");
    expect(svg).toContain('data-kind="broker"><title>3. broker kill -9');
    for (const n of [1, 2, 3]) expect(svg).toMatch(new RegExp(`class="fn">${n}</text>`));
    // 32 s: a tick every 5 s, 0 to 30
    const labels = [...svg.matchAll(/<text x="[\d.]+" y="235">([^<]+)<\/text>/g)].map((m) => m[1]);
    expect(labels).toEqual(["0 s", "5 s", "10 s", "15 s", "20 s", "25 s", "30 s"]);
    // the colours travel with the standalone file
    expect(svg).toContain(".fault[data-kind=board]{");
  });
});

describe("the chaos lab's progress", () => {
  it("counts the schedule's seconds, then says it is draining", () => {
    expect(progressLine(20_400, 30, false, 900, 11)).toBe("chaos: 20 s of 30 s, 900 messages checked, 11 faults injected");
    expect(progressLine(40_100, 30, true, 1400, 16)).toBe("chaos: draining (faults over after 30 s), 40 s in, 1400 messages checked, 16 faults injected");
  });
});
