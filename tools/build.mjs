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

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => path.join(root, "node_modules/.bin", name);
const dist = path.join(root, "dist");

/** Espruino bundles: entry → output. */
export const ESPRUINO_BUNDLES = [
  ["firmware/targets/espruino/index.ts", "petrel.js"],
  ["test/probe/entry_espruino.ts", "probe.js"],
  ["test/agent/entry_espruino.ts", "agent.js"],
  ["firmware/targets/espruino/boot.ts", "boot.js"],
  ["firmware/targets/espruino/console.ts", "console.js"],
  ["firmware/targets/espruino/app.ts", "app.js"],
  ["test/fixtures/espruino/settings.ts", "settings-test.js"],
];

/**
 * The app bundle takes the client and the console from the board's Storage modules `petrel`
 * and `petrel-console` instead of carrying copies: every import of a firmware module outside
 * firmware/app resolves to this one module, which reads them from those two. A name the app
 * imports that they do not export fails the build (esbuild: no matching export).
 */
const FROM_LIBRARY = {
  petrel: ["port", "connect", "connackError", "explainClose", "elapsed", "espruinoPlatform", "espruinoStorage", "IDLE"],
  "petrel-console": ["LineConsole", "espruinoSerial", "afterWord", "runCommand", "words"],
};
const libraryPlugin = {
  name: "petrel-library",
  setup(build) {
    build.onResolve({ filter: /^\.\.?\// }, (a) => {
      const to = path.resolve(a.resolveDir, a.path);
      const rel = path.relative(path.join(root, "firmware"), to);
      if (rel.startsWith("..") || rel.startsWith("app" + path.sep)) return undefined;
      return { path: "library", namespace: "petrel-library" };
    });
    build.onLoad({ filter: /.*/, namespace: "petrel-library" }, () => ({
      loader: "js",
      contents: Object.entries(FROM_LIBRARY).map(([mod, names], i) =>
        `var M${i} = global["require"](${JSON.stringify(mod)});\n` + names.map((n) => `export var ${n} = M${i}.${n};`).join("\n")).join("\n"),
    }));
  },
};

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

await step("typecheck (node, espruino)", () => {
  run(bin("tsc"), ["-p", "tsconfig.json"]);
  run(bin("tsc"), ["-p", "tsconfig.espruino.json"]);
});

await step("node build", () => {
  fs.rmSync(path.join(dist, "node"), { recursive: true, force: true });
  run(bin("tsc"), ["-p", "tsconfig.node-build.json"]);
});

await step("nodemcu lua build (firmware, and firmware + probe)", () => {
  fs.rmSync(path.join(dist, "nodemcu"), { recursive: true, force: true });
  fs.rmSync(path.join(dist, "nodemcu-probe"), { recursive: true, force: true });
  run(bin("tstl"), ["-p", "tsconfig.lua.json"]);
  run(bin("tstl"), ["-p", "tsconfig.lua-probe.json"]);
});

/**
 * Strips the indentation of the built Lua (a quarter of its bytes): less to upload and to keep
 * in SPIFFS. Line numbers stay as they were. Refused for a file with a long string or comment
 * (`[[`, `[=[`), whose lines must stay as they are.
 */
function stripLuaIndent(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const f = path.join(dir, e.name);
    if (e.isDirectory()) stripLuaIndent(f);
    else if (e.name.endsWith(".lua")) {
      const src = fs.readFileSync(f, "latin1");
      if (/\[=*\[/.test(src)) throw new Error(`${f}: has a long string or comment; indentation not stripped`);
      fs.writeFileSync(f, src.replace(/^[ \t]+/gm, ""), "latin1");
    }
  }
}

await step("nodemcu lua: strip indentation", () => {
  stripLuaIndent(path.join(dist, "nodemcu"));
  stripLuaIndent(path.join(dist, "nodemcu-probe"));
});

/** Bundles that are also Storage modules: the global each copies to `exports` under require(). */
const EXPORTS = { "petrel.js": "Petrel", "console.js": "PetrelConsole" };

await step("espruino bundles", async () => {
  fs.rmSync(path.join(dist, "espruino"), { recursive: true, force: true });
  for (const [entry, out] of ESPRUINO_BUNDLES) {
    await (out === "app.js" ? esbuild.build : esbuild.buildSync)({
      entryPoints: [path.join(root, entry)],
      outfile: path.join(dist, "espruino", out),
      bundle: true,
      format: "iife",
      platform: "neutral",
      target: "es2015",
      minify: true,
      // Raw UTF-8 in string literals: on the board's 8-bit strings that is the UTF-8 bytes;
      // a "\u00b0" escape would be the single byte 0xB0 there.
      charset: "utf8",
      legalComments: "none",
      // The product bundle runs as an Espruino module (exports) or as a plain script (global Petrel).
      ...(EXPORTS[out] !== undefined ? { footer: { js: `if(typeof exports!=="undefined")Object.assign(exports,${EXPORTS[out]});` } } : {}),
      logLevel: "silent",
      ...(out === "app.js" ? { plugins: [libraryPlugin] } : {}),
    });
  }
});

await step("dialect guard (sources and built output)", () => {
  const out = run(process.execPath, [path.join(root, "tools/guard/cli.mjs")]);
  process.stdout.write(out.split("\n").map((l) => (l ? `  ${l}` : l)).join("\n"));
});
