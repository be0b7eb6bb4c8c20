#!/usr/bin/env node
// Builds every target from the one TypeScript source, then runs the dialect guard over the
// sources and the built output. Prints the time each step took. Exit 1 on any failure.
//
//   dist/node/       the Node build (tsc, CommonJS): the host simulator runs this
//   dist/espruino/   minified bundles for Espruino (esbuild, ES2015): petrel.js, probe.js
//   dist/nodemcu/    Lua modules for NodeMCU (typescript-to-lua, require-minimal lualib)
//   dist/nodemcu-probe/  the same with the cross-target test probe (tests run this)
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { ALL_FEATURES, ESPRUINO_OPTIONS, buildEspruinoApp } from "./espruino-app.mjs";
import { slimEspruino } from "./espruino-slim.mjs";
import { inlineLuaDir } from "./lua-consts.mjs";
import { localLuaExportsDir } from "./lua-exports.mjs";
import { lazyLuaDir } from "./lua-methods.mjs";
import { STAMP_FILE, inputsHash, isCurrent, stageCurrent, stageHash } from "./build-stamp.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => path.join(root, "node_modules/.bin", name);
const dist = path.join(root, "dist");

/** Espruino bundles that run as scripts (IIFE): entry → output. */
export const ESPRUINO_BUNDLES = [
  ["firmware/targets/espruino/index.ts", "petrel.js"],
  ["test/probe/entry_espruino.ts", "probe.js"],
  ["test/agent/entry_espruino.ts", "agent.js"],
  ["firmware/targets/espruino/boot.ts", "boot.js"],
  ["test/fixtures/espruino/console.ts", "console-test.js"],
  ["test/fixtures/espruino/settings.ts", "settings-test.js"],
];

async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
  } catch (e) {
    console.error(`build: ${name} failed after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    if (e.stdout) process.stderr.write(e.stdout);
    if (e.stderr) process.stderr.write(e.stderr);
    if (!e.stdout && !e.stderr) console.error(e.message ?? e);
    process.exit(1);
  }
  console.log(`build: ${name} ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: "pipe", encoding: "utf8" });

// Nothing changed since the last build that finished: dist/ is current and the build is skipped
// (tools/build-stamp.mjs says what counts as an input). PETREL_FORCE_BUILD=1 builds anyway.
const inputs = inputsHash(root);
if (process.env.PETREL_FORCE_BUILD !== "1" && isCurrent(root, dist, inputs)) {
  console.log("build: nothing changed since the last build; dist/ is current (PETREL_FORCE_BUILD=1 builds anyway)");
  process.exit(0);
}
const STAMP = path.join(dist, STAMP_FILE);
fs.rmSync(STAMP, { force: true });
const force = process.env.PETREL_FORCE_BUILD === "1";

/**
 * Whether a target's stage must run (its inputs changed since it last finished, or its outputs
 * are gone): its stamp is removed until it finishes again (finished()). Otherwise it says so.
 */
const stale = {};
function mustBuild(stage) {
  const hash = stageHash(root, stage);
  if (!force && stageCurrent(root, dist, stage, hash)) {
    console.log(`build: ${stage} target unchanged since its last build; kept (PETREL_FORCE_BUILD=1 builds it anyway)`);
    return false;
  }
  stale[stage] = hash;
  fs.rmSync(path.join(dist, `.stamp-${stage}`), { force: true });
  return true;
}
function finished(stage) {
  fs.mkdirSync(dist, { recursive: true });
  fs.writeFileSync(path.join(dist, `.stamp-${stage}`), stale[stage]);
}

await step("typecheck (node, espruino)", () => {
  run(bin("tsc"), ["-p", "tsconfig.json"]);
  run(bin("tsc"), ["-p", "tsconfig.espruino.json"]);
});

if (mustBuild("node")) {
  await step("node build", () => {
    fs.rmSync(path.join(dist, "node"), { recursive: true, force: true });
    run(bin("tsc"), ["-p", "tsconfig.node-build.json"]);
  });
  finished("node");
}

if (mustBuild("lua")) {
  await step("nodemcu lua build (firmware, and firmware + probe)", () => {
    fs.rmSync(path.join(dist, "nodemcu"), { recursive: true, force: true });
    fs.rmSync(path.join(dist, "nodemcu-probe"), { recursive: true, force: true });
    run(bin("tstl"), ["-p", "tsconfig.lua.json"]);
    run(bin("tstl"), ["-p", "tsconfig.lua-probe.json"]);
  });

  // a module's top-level constants as literals: no upvalue per constant (tools/lua-consts.mjs)
  await step("nodemcu lua: inline constants", () => {
    const n = inlineLuaDir(fs, path.join(dist, "nodemcu"));
    inlineLuaDir(fs, path.join(dist, "nodemcu-probe"));
    console.log(`  ${n} constant(s) inlined`);
  });

  // a module's own uses of its exports as locals and literals: its export table can go (tools/lua-exports.mjs)
  await step("nodemcu lua: exports used as locals", () => {
    const r = localLuaExportsDir(fs, path.join(dist, "nodemcu"));
    localLuaExportsDir(fs, path.join(dist, "nodemcu-probe"));
    console.log(`  ${r.functions} function(s) and ${r.literals} literal(s)`);
  });

  /**
   * Classes whose methods stay resident: the codec's per-packet path (the decoder and the byte
   * port's packet writer), where a lazy method's closure per call would be garbage per packet
   * (test/codec-alloc.test.ts bounds it).
   */
  const RESIDENT_CLASSES = ["Decoder", "Pieces"];

  // class methods made when asked for, not held by the prototypes (tools/lua-methods.mjs)
  await step("nodemcu lua: lazy methods", () => {
    const r = lazyLuaDir(fs, path.join(dist, "nodemcu"), RESIDENT_CLASSES);
    lazyLuaDir(fs, path.join(dist, "nodemcu-probe"), RESIDENT_CLASSES);
    console.log(`  ${r.methods} method(s) of ${r.classes} class(es) made lazy`);
    for (const s of r.skipped) console.log(`  left as it is: ${s}`);
  });

  /**
   * Strips the indentation of the built Lua (a quarter of its bytes) and its comment lines (the
   * TypeScript's doc comments, about 27 KB): less to upload and to keep in SPIFFS. A comment line
   * is left empty, so line numbers stay as they were. Refused for a file with a long string or
   * comment (`[[`, `[=[`) or a string continued over a line end, whose lines must stay as they are.
   */
  function stripLuaIndent(dir) {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const f = path.join(dir, e.name);
      if (e.isDirectory()) stripLuaIndent(f);
      else if (e.name.endsWith(".lua")) {
        const src = fs.readFileSync(f, "latin1");
        if (/\[=*\[/.test(src)) throw new Error(`${f}: has a long string or comment; indentation not stripped`);
        if (/\\\n/.test(src)) throw new Error(`${f}: has a string continued over a line end; indentation not stripped`);
        fs.writeFileSync(f, src.replace(/^[ \t]+/gm, "").replace(/^--.*$/gm, ""), "latin1");
      }
    }
  }

  await step("nodemcu lua: strip indentation and comment lines", () => {
    stripLuaIndent(path.join(dist, "nodemcu"));
    stripLuaIndent(path.join(dist, "nodemcu-probe"));
  });
  finished("lua");
}

/** Bundles that are also Storage modules: the global each copies to `exports` under require(). */
const EXPORTS = { "petrel.js": "Petrel" };

if (mustBuild("espruino")) {
  await step("espruino bundles", async () => {
    const out = path.join(dist, "espruino");
    fs.rmSync(out, { recursive: true, force: true });
    for (const [entry, file] of ESPRUINO_BUNDLES) {
      esbuild.buildSync({
        ...ESPRUINO_OPTIONS,
        entryPoints: [path.join(root, entry)],
        outfile: path.join(out, file),
        format: "iife",
        // The library runs as an Espruino module (exports) or as a plain script (global Petrel).
        ...(EXPORTS[file] !== undefined ? { footer: { js: `if(typeof exports!=="undefined")Object.assign(exports,${EXPORTS[file]});` } } : {}),
      });
      // parameters as locals, arrows as functions: fewer variable slots (tools/espruino-slim.mjs)
      const built = path.join(out, file);
      fs.writeFileSync(built, slimEspruino(fs.readFileSync(built, "latin1")).code, "latin1");
    }
    // the sensor node with every feature (tests; a board's own build is tools/boards.mjs)
    await buildEspruinoApp(root, out, ALL_FEATURES);
  });
  finished("espruino");
}

await step("dialect guard (sources and built output)", () => {
  const out = run(process.execPath, [path.join(root, "tools/guard/cli.mjs")]);
  process.stdout.write(out.split("\n").map((l) => (l ? `  ${l}` : l)).join("\n"));
});

// every step passed: the next build with the same inputs is skipped
fs.writeFileSync(STAMP, inputs);
