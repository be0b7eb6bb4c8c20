// The sensor node on Espruino: its resident bundle (app.js, the Storage file `app`) and its lazy
// modules (firmware/app/lazy.ts: app.<name>.js, the Storage files `app.<name>`), built for one
// set of features (a board profile's, or all of them for the tests).
// - app.js runs at global scope (the boot guard hands it to setTimeout as a string), where a
//   function costs a variable slot less than inside a function; its top-level names are renamed
//   to $p0, $p1, … (tools/espruino-globals.mjs) so they stay out of the way of the REPL's.
// - app.<name>.js is the body of a function that returns the module's exports: the app's loader
//   makes it with `new Function` from the code where it lies in flash, and its functions cost
//   RAM only while something holds those exports.
// - Property names the firmware declares itself are shortened the same way in all of them (one
//   esbuild mangle cache: tools/mangle-props.mjs).
// - Most methods of each class become one function, and top-level functions only ever called by
//   name go into a few (tools/espruino-merge.mjs): on the board a function costs its slots
//   whatever its length.
// - Every bundle's functions are rewritten to hold fewer variable slots (tools/espruino-slim.mjs).
// - firmware/features.ts is replaced by the chosen features: the bundler leaves out the code
//   behind the others.
import * as fs from "node:fs";
import * as path from "node:path";
import * as esbuild from "esbuild";
import { renameTopLevel } from "./espruino-globals.mjs";
import { inlineEspruinoConstants } from "./espruino-consts.mjs";
import { mergeFunctions, mergeMethods } from "./espruino-merge.mjs";
import { dropConstructorLinks, slimEspruino } from "./espruino-slim.mjs";
import { mangleableProps } from "./mangle-props.mjs";

export const ESPRUINO_APP = "firmware/targets/espruino/app.ts";
export const ESPRUINO_LAZY = { config: "firmware/app/config.ts", commands: "firmware/app/commands.ts", held: "firmware/app/held.ts" };
/** Modules only the lazy ones may import (the resident bundle reaches them through lazy()). */
const LAZY_ONLY = [...Object.values(ESPRUINO_LAZY), "firmware/app/diag.ts"];
/** Every feature (firmware/features.ts). */
export const ALL_FEATURES = ["qos2", "failover", "sleep", "mqtt5", "texts", "auth", "aliasin"];

/** Options every Espruino bundle is built with. */
export const ESPRUINO_OPTIONS = {
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

/**
 * The bundler puts a feature's constant in place (`if(!1){...}`) only as it writes the bundle,
 * after its dead-code pass: a second syntax-only pass (no names changed) drops the code behind
 * a feature that is off.
 */
async function foldFeatures(code) {
  return (await esbuild.transform(code, { minifySyntax: true, minifyWhitespace: true, target: ESPRUINO_OPTIONS.target,
    charset: "utf8", legalComments: "none", format: "esm", treeShaking: true, logLevel: "silent" })).code;
}

/**
 * A lazy bundle's export list cut to the names some bundle of the node reads (`.name`: resident
 * code reaches a lazy module only as `lazy("…").name`). The rest are exported for the Node build
 * and the tests; on the board each kept export is a function object for as long as the module
 * is loaded, and a function nothing else names is dead code the next fold removes. Returns the
 * code with the shorter list.
 */
function keepUsedExports(code, file, codes) {
  const m = /export\s*\{([^}]*)\};?\s*$/.exec(code);
  if (m === null) throw new Error(`${file}: no export list to cut`);
  const used = m[1].split(",").map((e) => e.trim()).filter((e) => e.length > 0).filter((e) => {
    const [, name] = /^(?:\S+\s+as\s+)?(\S+)$/.exec(e);
    const read = new RegExp(`\\.${name.replace(/\$/g, "\\$")}\\b`);
    return codes.some((c) => read.test(c));
  });
  return code.slice(0, m.index) + `export{${used.join(",")}};\n`;
}

/** firmware/features.ts with the chosen features on and the rest off. */
function featuresPlugin(features) {
  return {
    name: "petrel-features",
    setup(build) {
      build.onResolve({ filter: /(^|\/)features$/ }, () => ({ path: "features", namespace: "petrel-features" }));
      build.onLoad({ filter: /.*/, namespace: "petrel-features" }, () => ({
        loader: "js",
        contents: ALL_FEATURES.map((f) => `export const FEATURE_${f.toUpperCase()} = ${features.includes(f)};`).join("\n") +
          `\nexport const FEATURES = ${JSON.stringify(features)};`,
      }));
    },
  };
}

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

let mangleRegex;

/**
 * The methods the node runs most, hottest first: first in their class's merged function, where a
 * call reads over the cases before its own (tools/espruino-merge.mjs). Packet writing and reading,
 * the scheduler, the outbox, the settings the node reads at every reading, the console's keys.
 */
const HOT_METHODS = ["byte", "putText", "copy", "toWire", "discard", "gathered", "feedChunk", "checkHeader", "finish", "publishFields", "reset", "topic",
  "checkTopicBytes", "chunk", "packet", "send", "control", "pump", "tick", "requestAcked", "memoryLow", "pass", "arm", "nextIn", "wake", "enqueue",
  "admit", "releaseAt", "slotOf", "wireAt", "takeAt", "hasId", "addId", "dropId", "track", "slotFor", "untrack", "cancel", "get", "int", "on", "feed", "print"];

/**
 * Builds the node for `features` into `outDir` (app.js, app.<name>.js); `prefix` goes in front of
 * app.js (the board profile): a string, or a function given the build's shortened property names
 * (name → short name) that returns it. Returns the Storage file name → file written.
 */
export async function buildEspruinoApp(root, outDir, features, prefix = "") {
  if (mangleRegex === undefined) mangleRegex = new RegExp(`^(${mangleableProps(root, "tsconfig.espruino.json").join("|")})$`);
  const plugins = [featuresPlugin(features)];
  const app = await esbuild.build({ ...ESPRUINO_OPTIONS, entryPoints: [path.join(root, ESPRUINO_APP)], format: "esm", write: false,
    metafile: true, mangleProps: mangleRegex, mangleCache: {}, plugins });
  const pulled = Object.keys(app.metafile.inputs).filter((f) => LAZY_ONLY.includes(f));
  if (pulled.length > 0) throw new Error(`the Espruino app bundle imports ${pulled.join(", ")}: lazy modules are reached through lazy() (firmware/app/lazy.ts), never imported`);
  fs.mkdirSync(outDir, { recursive: true });
  const bundles = [{ name: "app", code: await foldFeatures(app.outputFiles[0].text), returnOutside: false }];
  const lazies = [];
  for (const [name, entry] of Object.entries(ESPRUINO_LAZY)) {
    const r = await esbuild.build({ ...ESPRUINO_OPTIONS, entryPoints: [path.join(root, entry)], format: "esm", write: false,
      plugins: [...plugins, sharedPortPlugin], mangleProps: mangleRegex, mangleCache: app.mangleCache });
    lazies.push({ name, entry, code: r.outputFiles[0].text });
  }
  const codes = [bundles[0].code, ...lazies.map((l) => l.code)];
  for (const l of lazies) {
    const code = await foldFeatures(keepUsedExports(l.code, l.entry, codes));
    bundles.push({ name: `app.${l.name}`, code: exportsAsReturn(code, l.entry), returnOutside: true });
  }
  // one function per class for most methods (tools/espruino-merge.mjs), over all the bundles at once
  const short = app.mangleCache;
  const names = new Set(Object.values(short).filter((v) => typeof v === "string"));
  const merged = mergeMethods(bundles, names, HOT_METHODS.map((m) => short[m]).filter((m) => typeof m === "string"));
  // then each bundle's top-level functions in groups (the resident one's after their $p names and
  // its constants inlined: tools/espruino-consts.mjs), and parameters as locals (tools/espruino-slim.mjs)
  const files = {};
  bundles.forEach((b, i) => {
    files[b.name] = path.join(outDir, `${b.name}.js`);
    const code = b.name === "app" ? (typeof prefix === "function" ? prefix(short) : prefix) +
      dropConstructorLinks(slimEspruino(mergeFunctions(inlineEspruinoConstants(renameTopLevel(merged.codes[i], ESPRUINO_APP).code).code).code).code).code
      : slimEspruino(mergeFunctions(merged.codes[i], 3000, true).code, { returnOutside: true }).code;
    fs.writeFileSync(files[b.name], code, "latin1");
  });
  return files;
}
