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
import { renameTopLevel } from "./espruino-globals.mjs";
import { mangleableProps } from "./mangle-props.mjs";

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

/**
 * The sensor node on Espruino: its resident bundle (app.js, the Storage file `app`) and its lazy
 * modules (app/lazy.ts: app.<name>.js, the Storage files `app.<name>`).
 * - app.js runs at global scope (the boot guard hands it to setTimeout as a string), where a
 *   function costs a variable slot less than inside a function; its top-level names are renamed
 *   to $p0, $p1, … (tools/espruino-globals.mjs) so they stay out of the way of the REPL's.
 * - app.<name>.js is the body of a function that returns the module's exports: the app's loader
 *   makes it with `new Function` from the code where it lies in flash, and its functions cost
 *   RAM only while something holds those exports.
 */
export const ESPRUINO_APP = "firmware/targets/espruino/app.ts";
export const ESPRUINO_LAZY = { config: "firmware/app/config.ts", commands: "firmware/app/commands.ts" };

/**
 * A lazy module's bundle shares one thing with the resident bundle: the installed port. Its
 * imports of port/port.ts read it from the function's parameter `P` (the loader passes the
 * resident bundle's `port`); everything else it imports is bundled in (code in flash costs no RAM).
 */
const sharedPortPlugin = {
  name: "petrel-shared-port",
  setup(build) {
    build.onResolve({ filter: /port\/port$/ }, () => ({ path: "shared-port", namespace: "petrel-shared-port" }));
    build.onLoad({ filter: /.*/, namespace: "petrel-shared-port" }, () => ({
      loader: "js",
      contents: "export var port = P; export function installPort() {}",
    }));
  },
};

/** The ES-module output's closing `export{a as b,...}` as a function body's `return{b:a,...}`. */
function exportsAsReturn(code, file) {
  const m = /export\s*\{([^}]*)\};?\s*$/.exec(code);
  if (m === null) throw new Error(`${file}: no export list to return`);
  const props = m[1].split(",").map((e) => e.trim()).filter((e) => e.length > 0).map((e) => {
    const [local, name] = e.split(/\s+as\s+/);
    return `${name ?? local}:${local}`;
  });
  return code.slice(0, m.index) + `return{${props.join(",")}};\n`;
}

/** Options every Espruino bundle is built with. */
const ESPRUINO_OPTIONS = {
  bundle: true,
  platform: "neutral",
  target: "es2015",
  minify: true,
  // Raw UTF-8 in string literals: on the board's 8-bit strings that is the UTF-8 bytes;
  // a "\u00b0" escape would be the single byte 0xB0 there.
  charset: "utf8",
  legalComments: "none",
  logLevel: "silent",
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
const EXPORTS = { "petrel.js": "Petrel" };

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
  }
  // the sensor node, its property names shortened (tools/mangle-props.mjs) the same way in the
  // resident bundle and its lazy modules (one cache)...
  const mangleProps = new RegExp(`^(${mangleableProps(root, "tsconfig.espruino.json").join("|")})$`);
  const app = esbuild.buildSync({ ...ESPRUINO_OPTIONS, entryPoints: [path.join(root, ESPRUINO_APP)], format: "esm", write: false, metafile: true,
    mangleProps, mangleCache: {} });
  const mangleCache = app.mangleCache;
  const lazyFiles = [...Object.values(ESPRUINO_LAZY), "firmware/app/diag.ts"];
  const pulled = Object.keys(app.metafile.inputs).filter((f) => lazyFiles.includes(f));
  if (pulled.length > 0) throw new Error(`the Espruino app bundle imports ${pulled.join(", ")}: lazy modules are reached through lazy() (firmware/app/lazy.ts), never imported`);
  fs.writeFileSync(path.join(out, "app.js"), renameTopLevel(app.outputFiles[0].text, ESPRUINO_APP).code);
  // ...and its lazy modules, each a function body that returns its exports
  for (const [name, entry] of Object.entries(ESPRUINO_LAZY)) {
    const r = await esbuild.build({ ...ESPRUINO_OPTIONS, entryPoints: [path.join(root, entry)], format: "esm", write: false, plugins: [sharedPortPlugin],
      mangleProps, mangleCache });
    fs.writeFileSync(path.join(out, `app.${name}.js`), exportsAsReturn(r.outputFiles[0].text, entry));
  }
});

await step("dialect guard (sources and built output)", () => {
  const out = run(process.execPath, [path.join(root, "tools/guard/cli.mjs")]);
  process.stdout.write(out.split("\n").map((l) => (l ? `  ${l}` : l)).join("\n"));
});
