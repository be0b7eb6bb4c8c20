#!/usr/bin/env node
// `make test`: build, guard, then every test on every runtime, then branch coverage of the
// scheduler and the session engine. Prints the time each stage took, which runtimes ran each
// cross-target suite, the branch coverage per file, and a closing "N passed, N failed" line.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const report = path.join(root, "dist/test-report");
const times = [];

// The tests' temporary files go to a directory of their own (TMPDIR for every test process), so
// what they leave behind is told apart from other programs' files in /tmp: it must be empty at
// the end. Open to all (sticky, like /tmp): mosquitto started as root drops to its own user and
// writes its persistence under it.
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-test-"));
fs.chmodSync(tmp, 0o1777);

function stage(name, cmd, args, env = {}) {
  const t0 = Date.now();
  console.log(`\n== ${name}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit", env: { ...process.env, ...env } });
  const s = (Date.now() - t0) / 1000;
  times.push([name, s]);
  console.log(`== ${name}: ${s.toFixed(1)} s`);
  return r.status ?? 1;
}

function printTimes() {
  console.log("\nstage times:");
  for (const [n, s] of times) console.log(`  ${n.padEnd(30)} ${s.toFixed(1).padStart(7)} s`);
}

if (stage("build + dialect guard", process.execPath, [path.join(root, "tools/build.mjs")]) !== 0) {
  fs.rmSync(tmp, { recursive: true, force: true });
  printTimes();
  console.log("tests: 0 passed, 1 failed (the build or the dialect guard failed)");
  process.exit(1);
}

fs.rmSync(report, { recursive: true, force: true });
fs.mkdirSync(report, { recursive: true });
const vitestJson = path.join(report, "vitest.json");
const extra = process.argv.slice(2);
const status = stage("tests (vitest)", path.join(root, "node_modules/.bin/vitest"),
  ["run", "--reporter=default", "--reporter=json", `--outputFile.json=${vitestJson}`, ...extra], { PETREL_SKIP_BUILD: "1", TMPDIR: tmp });

// Branch coverage of firmware/sched, firmware/session and firmware/console, measured on the TypeScript sources, so
// only tests that import them in-process count: the cross-target suites run the built probes
// (dist/, excluded here), and only the unit tests run here (test/sched-unit*.test.ts,
// test/session-unit*.test.ts, test/console.test.ts: the broker scenarios already ran above). It fails when the branches
// of all covered files together are under the threshold, or when firmware/session exists without
// any test/session-unit*.test.ts. Files with no run-time code (re-exports, types) are left out.
const COVERAGE_BRANCHES = 90;
const coverageDir = path.join(report, "coverage");
const coverageTests = fs.readdirSync(path.join(root, "test")).filter((f) => /^((sched|session)-unit.*|console)\.test\.ts$/.test(f)).sort();
let coverageStatus = 1;
if (coverageTests.length === 0) {
  // Without a file to name, vitest would run every test.
  console.log("\n== coverage (scheduler, session)\nno test/sched-unit*.test.ts or test/session-unit*.test.ts to run");
} else {
  coverageStatus = stage("coverage (scheduler, session, console)", path.join(root, "node_modules/.bin/vitest"), ["run",
    ...coverageTests.map((f) => `test/${f}`), "--reporter=dot", "--silent=passed-only",
    "--coverage.enabled", "--coverage.provider=v8",
    "--coverage.include=firmware/sched/**", "--coverage.include=firmware/session/**", "--coverage.include=firmware/console/**", "--coverage.exclude=dist/**",
    "--coverage.exclude=firmware/session/index.ts", "--coverage.exclude=firmware/port/platform.ts",
    `--coverage.thresholds.branches=${COVERAGE_BRANCHES}`,
    "--coverage.reporter=text-summary", "--coverage.reporter=text", "--coverage.reporter=json-summary",
    `--coverage.reportsDirectory=${path.relative(root, coverageDir)}`], { PETREL_SKIP_BUILD: "1", TMPDIR: tmp });
}
const coverageNote = fs.existsSync(path.join(root, "firmware/session")) && !coverageTests.some((f) => f.startsWith("session"))
  ? "firmware/session has no test/session-unit*.test.ts" : "";
if (coverageNote) console.log(`coverage: ${coverageNote}`);

printTimes();

// Which runtimes ran each cross-target suite.
const matrices = fs.existsSync(report) ? fs.readdirSync(report).filter((f) => f.startsWith("matrix-")) : [];
if (matrices.length > 0) {
  console.log("\ncross-target suites (runtime: result):");
  for (const f of matrices.sort()) {
    const m = JSON.parse(fs.readFileSync(path.join(report, f), "utf8"));
    console.log(`  ${m.suite} (${m.cases} cases)`);
    for (const [rt, r] of Object.entries(m.runtimes)) console.log(`    ${rt.padEnd(14)} ${r}`);
  }
}

// Scenario × runtime tables; a table that names its columns (the board × step memory table) is
// printed as it is, its cells right-aligned, then its notes.
for (const f of (fs.existsSync(report) ? fs.readdirSync(report) : []).filter((n) => n.startsWith("scenarios-")).sort()) {
  const { title, table, columns, notes: tableNotes } = JSON.parse(fs.readFileSync(path.join(report, f), "utf8"));
  if (Array.isArray(columns)) {
    const rows = Object.keys(table);
    const first = Math.max(...rows.map((r) => r.length));
    const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => String(table[r][c] ?? "-").length)));
    console.log(`\n${title}:`);
    console.log(`  ${"".padEnd(first)}  ${columns.map((c, i) => c.padStart(widths[i])).join("  ")}`);
    for (const r of rows) console.log(`  ${r.padEnd(first)}  ${columns.map((c, i) => String(table[r][c] ?? "-").padStart(widths[i])).join("  ")}`);
    for (const n of tableNotes ?? []) console.log(`    ${n}`);
    continue;
  }
  const order = ["node", "espruino", "espruino-real", "lua51", "lua53", "fengari"];
  const rank = (r) => (order.indexOf(r) < 0 ? order.length : order.indexOf(r));
  const rts = [...new Set(Object.values(table).flatMap((row) => Object.keys(row)))].sort((a, b) => rank(a) - rank(b));
  console.log(`\n${title} (scenario × runtime):`);
  console.log(`  ${"".padEnd(56)} ${rts.map((r) => r.padEnd(13)).join(" ")}`);
  const notes = [];
  for (const [name, row] of Object.entries(table)) {
    const cell = (r) => {
      const v = row[r] ?? "not run";
      const m = /^(\w+)(?::| \((.*)\))/.exec(v);
      if (m && m[2]) notes.push(`${r}: ${m[2]}`);
      if (v.startsWith("skipped")) notes.push(`${r} ${v}`);
      return (m ? m[1] : v).padEnd(13);
    };
    console.log(`  ${name.split(":")[0].slice(0, 56).padEnd(56)} ${rts.map(cell).join(" ")}`);
  }
  for (const n of [...new Set(notes)]) console.log(`    ${n}`);
}

let passed = 0, failed = 0, skipped = 0;
const failures = [];
if (fs.existsSync(vitestJson)) {
  const j = JSON.parse(fs.readFileSync(vitestJson, "utf8"));
  passed = j.numPassedTests;
  // Failed tests, plus test files that failed before running any test (a collection error); both
  // are named again at the very end, where a log cut to its tail still shows them.
  let brokenFiles = 0;
  for (const f of j.testResults) {
    const rel = path.relative(root, f.name);
    const bad = f.assertionResults.filter((x) => x.status === "failed");
    for (const a of bad) {
      const why = String(a.failureMessages?.[0] ?? "").split("\n").find((l) => l.trim() !== "") ?? "";
      failures.push(`${rel} > ${a.fullName}: ${why.slice(0, 300)}`);
    }
    if (f.status === "failed" && bad.length === 0) {
      brokenFiles++;
      failures.push(`${rel}: ${String(f.message ?? "").split("\n")[0].slice(0, 300)}`);
    }
  }
  failed = j.numFailedTests + brokenFiles;
  skipped = j.numPendingTests + (j.numTodoTests ?? 0);
} else {
  failed = 1;
}
if (status !== 0 && failed === 0) failed = 1;

// Branch coverage per file, and in total (what the threshold applies to).
const coverageSummary = path.join(coverageDir, "coverage-summary.json");
let coverage = `coverage: not measured (${coverageNote || "the coverage stage failed before its report"})`;
if (fs.existsSync(coverageSummary)) {
  const c = JSON.parse(fs.readFileSync(coverageSummary, "utf8"));
  console.log("\nbranch coverage (in-process tests, TypeScript sources):");
  for (const [file, m] of Object.entries(c).filter(([f]) => f !== "total").sort()) {
    console.log(`  ${path.relative(root, file).padEnd(34)} ${String(m.branches.pct).padStart(6)}%  (${m.branches.covered}/${m.branches.total})`);
  }
  coverage = `coverage: branches ${c.total.branches.pct}% (threshold ${COVERAGE_BRANCHES}%)`;
  if (coverageNote) coverage = `${coverage}, ${coverageNote}`;
}
// A failed coverage stage (under the threshold, its tests failed, or no session tests while
// firmware/session exists) counts as one failure.
if (coverageStatus !== 0 || coverageNote) {
  failed = failed + 1;
  coverage = `${coverage} FAILED`;
}
// What the tests left in their temporary directory counts as one failure, named.
const left = fs.readdirSync(tmp);
let leftNote = "";
if (left.length > 0) {
  failed = failed + 1;
  leftNote = `; ${left.length} temporary file(s) left by the tests FAILED`;
  console.log(`\ntemporary files the tests left in ${tmp} (removed now):`);
  for (const f of left.sort()) console.log(`  ${f}`);
}
fs.rmSync(tmp, { recursive: true, force: true });
if (failures.length > 0) {
  console.log("\nfailed:");
  for (const f of failures) console.log(`  ${f}`);
}
console.log(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped; ${coverage}${leftNote}`);
process.exit(status !== 0 || failed > 0 ? 1 : 0);
