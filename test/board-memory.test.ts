import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, describe, expect } from "vitest";
// @ts-expect-error: a plain .mjs module of the tools, without type declarations
import { loadProfile } from "../tools/boards.mjs";
import { ESPRUINO_BOARD_RUNTIMES, espruinoBoard, espruinoBoardMissing, packEspruinoBoard, runtimesDir } from "./harness/board-espruino";
import { nodemcuBoard, nodemcuBoardMissing } from "./harness/board-nodemcu";
import { runBoardScenario, STEPS, type BoardUnderTest, type ScenarioResult } from "./harness/board-scenario";
import { needs } from "./harness/needs";
import { DIST } from "./harness/runtimes";

// The board memory scenario (test/harness/board-scenario.ts) on the board-sized interpreters:
// each Espruino board profile packed as `make flash` writes it, booted on the 32-bit Espruino
// build with that board's variable slots, driven through its console and over MQTT while its
// memory in use is sampled after every step. Then the same again with the headroom the profile
// promises (its total less its budget, or less its goal while it has no budget) taken before
// boot, which must not run the board out.
//
// Verdicts follow the profile: with memory.budget null (the board has not yet booted in this
// scenario) a failure and the figures are reported, and the test passes; with a budget, a failed
// step or a peak over it fails. The board × step table goes to
// dist/test-report/scenarios-board-memory.json (`make test` prints it).
//
// The soak's counts: BOARD_SOAK_RECONNECTS / BOARD_SOAK_PUBLISHES (the issue's full run: 100 and
// 1,000) for every run; by default 10 and 50, and half that in the headroom runs (the leak check
// is the plain run's; the headroom run proves the peak fits), so that the suite takes about three
// minutes on a 2-core machine once both boards boot: the board-sized interpreters run under qemu,
// where a reconnect takes about a second and a command about a third of one.

const FULL = process.env.BOARD_SOAK_RECONNECTS !== undefined || process.env.BOARD_SOAK_PUBLISHES !== undefined;
const RECONNECTS = Number(process.env.BOARD_SOAK_RECONNECTS ?? 10);
const PUBLISHES = Number(process.env.BOARD_SOAK_PUBLISHES ?? 50);
/**
 * Slots the soak may leave in use above where it started. A connected node's use moves by about
 * five slots with what is in flight at the moment of the sample (measured on the 64-bit build over
 * 40 reconnects); a leak of a slot per reconnect is over this after the default ten.
 */
const TOLERANCE_SLOTS = 6;
/** Fixed, so a run repeats: the memory counts depend on what was sent. */
const SEED = 18;

interface Profile {
  name: string;
  features: string[];
  maxInboundPacket: number;
  memory: { unit: string; total: number; goal: number; budget: number | null; source: string };
}

interface Run {
  column: string;
  profile: Profile;
  ballast: number;
  result?: ScenarioResult;
  /** Why the run did not finish (the harness, not the board), when it did not. */
  error?: string;
}

const runs: Run[] = [];
const packs = new Map<string, Promise<{ storage: Record<string, string>; dist: string }>>();

afterAll(async () => {
  for (const p of packs.values()) await p.then((x) => fs.rmSync(x.dist, { recursive: true, force: true }), () => undefined);
  if (runs.length === 0) return;
  const dir = path.join(DIST, "test-report");
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "scenarios-board-memory.json"), JSON.stringify(report(), null, 1));
});

/** The board × step table: slots in use after each step, the peak beside the goal, and notes. */
function report(): { title: string; columns: string[]; table: Record<string, Record<string, string>>; notes: string[] } {
  const table: Record<string, Record<string, string>> = {};
  const notes: string[] = [];
  const row = (name: string) => (table[name] ??= {});
  for (const r of runs) {
    const res = r.result;
    for (const s of STEPS) {
      const got = res?.steps.find((x) => x.name === s);
      row(s)[r.column] = got === undefined ? "-" : `${got.memory ?? "?"}${got.ok ? "" : " FAIL"}`;
    }
    const m = r.profile.memory;
    // the headroom runs' figures include their ballast: so do their goal and budget here
    const plus = (n: number) => (r.ballast > 0 ? `${n}+${r.ballast}` : `${n}`);
    row("peak (goal)")[r.column] = `${res?.peak != null ? res.peak : "?"} (${plus(m.goal)})`;
    row("budget")[r.column] = m.budget === null ? "none yet" : plus(m.budget);
    row("total")[r.column] = `${m.total}`;
    const boot = res?.steps.find((x) => x.name === "boot");
    if (boot !== undefined && !boot.ok && boot.memory !== null) notes.push(`${r.column}: the boot figure is what the REPL reported after the failure`);
    if (r.ballast > 0) notes.push(`${r.column}: ${r.ballast} slots of ballast asked, ${ballastOf(r)} measured, taken before boot; figures include it`);
    if (res !== undefined) {
      notes.push(`${r.column}: on ${res.runtime} (soak of ${res.reconnects} reconnects, ${res.publishes} publishes): ` +
        `${res.failure !== undefined ? `FAILED at ${res.failure}` : "every step passed"}; peak ${res.peak ?? "?"} in ${res.peakStep || "?"}`);
      const soak = res.steps.find((s) => s.name === "soak");
      if (soak !== undefined) notes.push(`${r.column}: soak: ${soak.note}`);
    }
    if (r.error !== undefined) notes.push(`${r.column}: the run did not finish: ${r.error}`);
  }
  return {
    title: "board memory after each step: Espruino, variable slots in use (32-bit board-sized builds, process.memory() after a collection); " +
      "NodeMCU, bytes of Lua heap that are the node's (32-bit luac.cross 5.3 with the board's LFS image, after two full collections)",
    columns: runs.map((r) => r.column),
    table,
    notes,
  };
}

/**
 * A run's table printed, then its verdict by the profile: with memory.budget null (the board has
 * not yet passed this scenario) reported, not failed; with a budget, a failed step fails, and so
 * does a peak over the budget where `peak` says (a ballast run's figures include its ballast).
 */
function verdict(run: Run, board: string, peak: boolean): void {
  const res = run.result as ScenarioResult;
  console.log(printed(run));
  const budget = run.profile.memory.budget;
  if (budget === null) {
    console.log(`${run.column}: memory.budget is null in boards/${board}.json: reported, not failed`);
    return;
  }
  const failed = res.steps.find((s) => !s.ok);
  expect(res.failure, `${run.column}: ${failed !== undefined ? `step "${failed.name}" failed (${failed.memory ?? "?"} ${res.unit} in use): ${failed.note}` : res.failure}`).toBeUndefined();
  if (peak) {
    expect(res.peak as number, `${run.column}: the peak, ${res.peak} ${res.unit} in step "${res.peakStep}", is over the budget of ${budget} (boards/${board}.json)`)
      .toBeLessThanOrEqual(budget);
  }
}

const ballastSlots = new Map<string, number>();
const ballastOf = (r: Run) => ballastSlots.get(r.column) ?? 0;

/** The run's table as text, for the test's own output. */
function printed(r: Run): string {
  const res = r.result as ScenarioResult;
  const w = Math.max(...STEPS.map((s) => s.length));
  const lines = res.steps.map((s) => `  ${s.name.padEnd(w)} ${String(s.memory ?? "?").padStart(5)} ${s.ok ? "ok  " : "FAIL"} ${s.note}`);
  const m = r.profile.memory;
  lines.push(`  ${"peak".padEnd(w)} ${String(res.peak ?? "?").padStart(5)}      in ${res.peakStep || "?"}; goal ${m.goal}${r.ballast > 0 ? ` + ${ballastOf(r)} ballast` : ""}, ` +
    `budget ${m.budget ?? "none yet"}, total ${m.total}`);
  return `${r.column} on ${res.runtime} (${res.unit}):\n${lines.join("\n")}${res.failure !== undefined ? `\n  FAILED at ${res.failure}` : ""}`;
}

for (const [board, runtime] of Object.entries(ESPRUINO_BOARD_RUNTIMES)) {
  const profile = loadProfile(board) as Profile;
  // the headroom the profile promises: what its budget leaves (its goal's until it has a budget)
  const headroom = profile.memory.total - (profile.memory.budget ?? profile.memory.goal);
  const exe = path.join(runtimesDir(), runtime);
  const missing = espruinoBoardMissing(runtime);
  const pack = () => {
    if (!packs.has(board)) packs.set(board, packEspruinoBoard(board));
    return packs.get(board) as Promise<{ storage: Record<string, string>; dist: string }>;
  };
  // bounds: boots, a broker restart and reconnects take seconds each; a command a fraction of one.
  // Twice what a run takes beside the other test files here (esp32-espruino's: 320 s of 375 s
  // once), for a slower machine
  const timeout = 480_000 + RECONNECTS * 12_000 + PUBLISHES * 3_000;

  // one board's two runs at a time (a suite of their own): side by side, then the next board
  describe(board, () => { for (const ballast of [0, headroom]) {
    const column = ballast > 0 ? `${board} +${ballast}` : board;
    const reconnects = ballast > 0 && !FULL ? Math.ceil(RECONNECTS / 2) : RECONNECTS;
    const publishes = ballast > 0 && !FULL ? Math.ceil(PUBLISHES / 2) : PUBLISHES;
    const soak = `soak: ${reconnects} reconnects, ${publishes} publishes`;
    const name = ballast > 0
      ? `${board} on ${runtime}: the scenario with the profile's headroom (${ballast} slots) taken before boot (${soak})`
      : `${board} on ${runtime}: the board memory scenario (${soak})`;
    needs(missing, name, async () => {
      const run: Run = { column, profile, ballast };
      runs.push(run);
      const b = espruinoBoard(board, exe, { ballast, storage: (await pack()).storage });
      try {
        run.result = await runBoardScenario(b, {
          maxInboundPacket: profile.maxInboundPacket,
          features: profile.features,
          reconnects,
          publishes,
          tolerance: TOLERANCE_SLOTS,
          seed: SEED,
        });
      } catch (e) {
        run.error = e instanceof Error ? e.message : String(e);
        throw e;
      } finally {
        ballastSlots.set(column, b.ballastSlots);
        if (process.env.BOARD_MEMORY_TRACE === "1") console.log(`${column}: the board's console, every boot:\n${b.allLines().join("\n")}`);
        else if (run.result === undefined) console.log(`${column}: last output:\n${b.lines().slice(-30).join("\n")}`);
        await b.dispose();
      }
      verdict(run, board, ballast === 0);
      // a board's two runs side by side: each has its own emulator, broker and proxy, and what they
      // measure is variable slots, which the other run's load does not move (only the wall time)
    }, timeout, true);
  } });
}

// The NodeMCU boards: the same scenario on each board's LFS image, booted on the 32-bit 5.3
// luac.cross with the stand-in (test/harness/board-nodemcu.ts); the figures are the node's share of
// the Lua heap. One run each: a Lua heap cannot be pre-filled with ballast the way Espruino's
// variables can (the collector moves the limit), so the headroom is the profile's total less the
// peak, reported.
for (const board of ["esp8266-nodemcu", "esp32-nodemcu"]) {
  const profile = loadProfile(board) as Profile;
  const soak = `soak: ${RECONNECTS} reconnects, ${PUBLISHES} publishes`;
  needs(nodemcuBoardMissing(board), `${board} on its LFS image: the board memory scenario (${soak})`, async () => {
    const run: Run = { column: board, profile, ballast: 0 };
    runs.push(run);
    const b: BoardUnderTest = nodemcuBoard(board);
    try {
      run.result = await runBoardScenario(b, {
        maxInboundPacket: profile.maxInboundPacket,
        features: profile.features,
        reconnects: RECONNECTS,
        publishes: PUBLISHES,
        // a Lua heap moves by a few hundred bytes with what is in flight when it is sampled
        tolerance: 1024,
        seed: SEED,
      });
    } catch (e) {
      run.error = e instanceof Error ? e.message : String(e);
      throw e;
    } finally {
      if (run.result === undefined) console.log(`${board}: last output:\n${b.lines().slice(-30).join("\n")}`);
      await b.dispose();
    }
    verdict(run, board, true);
    // the two NodeMCU boards side by side (each its own interpreter, broker and proxy)
  }, 240_000 + RECONNECTS * 6_000 + PUBLISHES * 1_500, true);
}
