#!/usr/bin/env node
// `make test`: build, guard, then every test on every runtime. Prints the time each stage took,
// which runtimes ran each cross-target suite, and a closing "N passed, N failed" line.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const report = path.join(root, "dist/test-report");
const times = [];

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
  for (const [n, s] of times) console.log(`  ${n.padEnd(28)} ${s.toFixed(1).padStart(7)} s`);
}

if (stage("build + dialect guard", process.execPath, [path.join(root, "tools/build.mjs")]) !== 0) {
  printTimes();
  console.log("tests: 0 passed, 1 failed (the build or the dialect guard failed)");
  process.exit(1);
}

fs.rmSync(report, { recursive: true, force: true });
fs.mkdirSync(report, { recursive: true });
const vitestJson = path.join(report, "vitest.json");
const extra = process.argv.slice(2);
const status = stage("tests (vitest)", path.join(root, "node_modules/.bin/vitest"),
  ["run", "--reporter=default", "--reporter=json", `--outputFile.json=${vitestJson}`, ...extra], { PETREL_SKIP_BUILD: "1" });

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

let passed = 0, failed = 0, skipped = 0;
if (fs.existsSync(vitestJson)) {
  const j = JSON.parse(fs.readFileSync(vitestJson, "utf8"));
  passed = j.numPassedTests;
  // Failed tests, plus test files that failed before running any test (a collection error).
  const brokenFiles = j.testResults.filter((f) => f.status === "failed" && !f.assertionResults.some((a) => a.status === "failed")).length;
  failed = j.numFailedTests + brokenFiles;
  skipped = j.numPendingTests + (j.numTodoTests ?? 0);
} else {
  failed = 1;
}
if (status !== 0 && failed === 0) failed = 1;
console.log(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(status !== 0 || failed > 0 ? 1 : 0);
