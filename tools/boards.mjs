// Board profiles (boards/<name>.json): loaded and validated here, so adding a board is adding one
// file, and a typo in it names the field and what it accepts.
//
//   node tools/boards.mjs <name>        builds that board's artifact into dist/boards/<name>/ and
//                                       fails when it is over the profile's byte budget
//   node tools/boards.mjs --check       validates every profile
//   node tools/boards.mjs <name> --library   NodeMCU: the library's entry (require "petrel") packed beside the node
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const BOARDS_DIR = path.join(root, "boards");

const RUNTIMES = ["node", "espruino", "espruino-real", "lua51", "lua53", "fengari"];
const int = (lo, hi) => ({ kind: "int", lo, hi });
const oneOf = (...values) => ({ kind: "enum", values });
const str = { kind: "string" };
const bool = { kind: "bool" };
const obj = (fields) => ({ kind: "object", fields });
const orNull = (s) => ({ kind: "orNull", of: s });
const listOf = (values) => ({ kind: "list", values });

import { ALL_FEATURES, buildEspruinoApp } from "./espruino-app.mjs";
import { buildLfsImage } from "./lfs.mjs";
import { inlineLuaConstants } from "./lua-consts.mjs";
import { foldLuaConstants, foldLuaFeatures, foldLuaSwitches } from "./lua-fold.mjs";

/** Every field a profile has, and what it accepts. */
export const SCHEMA = obj({
  name: str,
  chip: oneOf("esp8266", "esp32"),
  firmware: oneOf("espruino", "nodemcu"),
  firmwareVersion: str,
  lua: oneOf("5.1", "5.3", null),
  runtime: oneOf(...RUNTIMES),
  artifactBytes: int(1000, 4000000),
  // total: what the board has; goal: the most the node may hold at its peak; budget: the peak
  // the tests fail above, lowered as memory is saved (null until the board first boots)
  memory: obj({ unit: oneOf("bytes", "jsvars"), total: int(100, 100000000), goal: int(100, 100000000), budget: orNull(int(100, 100000000)), source: str }),
  features: listOf(ALL_FEATURES),
  // the protocol the sensor node speaks: 5 (MQTT 5.0) needs the mqtt5 feature, and a build with it speaks 5
  protocol: oneOf(4, 5),
  maxPacket: int(64, 268435455),
  maxInboundPacket: int(64, 268435455),
  maxInflight: int(1, 65535),
  outboxMessages: int(1, 100000),
  offlineQueue: int(0, 10000),
  minFreeHeap: int(0, 100000000),
  tls: bool,
  lfs: orNull(obj({ bytes: int(4096, 1048576), goal: int(4096, 1048576), source: str })),
  bytecode: bool,
  console: obj({ uart: int(0, 3), baud: oneOf(9600, 19200, 38400, 57600, 74880, 115200, 230400, 460800, 921600) }),
  pins: obj({ led: int(0, 39), button: int(0, 39) }),
});

const describe = (s) => {
  switch (s.kind) {
    case "int": return `an integer ${s.lo}..${s.hi}`;
    case "enum": return `one of ${s.values.map((v) => JSON.stringify(v)).join(", ")}`;
    case "string": return "a string";
    case "bool": return "true or false";
    case "orNull": return `null or ${describe(s.of)}`;
    case "list": return `a list of ${s.values.map((v) => JSON.stringify(v)).join(", ")} (each at most once)`;
    default: return `an object with ${Object.keys(s.fields).join(", ")}`;
  }
};

/** The problems with a profile value against a schema node (field paths in the messages). */
function check(value, s, at, out) {
  switch (s.kind) {
    case "int":
      if (typeof value !== "number" || !Number.isInteger(value) || value < s.lo || value > s.hi) out.push(`${at} is ${JSON.stringify(value)}: it takes ${describe(s)}`);
      break;
    case "enum":
      if (!s.values.includes(value)) out.push(`${at} is ${JSON.stringify(value)}: it takes ${describe(s)}`);
      break;
    case "string":
      if (typeof value !== "string" || value.length === 0) out.push(`${at} is ${JSON.stringify(value)}: it takes ${describe(s)}`);
      break;
    case "bool":
      if (typeof value !== "boolean") out.push(`${at} is ${JSON.stringify(value)}: it takes ${describe(s)}`);
      break;
    case "orNull":
      if (value !== null) check(value, s.of, at, out);
      break;
    case "list":
      if (!Array.isArray(value) || value.some((v) => !s.values.includes(v)) || new Set(value).size !== value.length) {
        out.push(`${at} is ${JSON.stringify(value)}: it takes ${describe(s)}`);
      }
      break;
    default: {
      if (value === null || typeof value !== "object" || Array.isArray(value)) {
        out.push(`${at} is ${JSON.stringify(value)}: it takes ${describe(s)}`);
        break;
      }
      const known = Object.keys(s.fields);
      for (const k of Object.keys(value)) {
        if (!known.includes(k)) out.push(`${at ? at + "." : ""}${k} is not a profile field; the fields here are ${known.join(", ")}`);
      }
      for (const k of known) {
        const p = at ? `${at}.${k}` : k;
        if (!(k in value)) out.push(`${p} is missing: it takes ${describe(s.fields[k])}`);
        else check(value[k], s.fields[k], p, out);
      }
    }
  }
  return out;
}

/** Validates a parsed profile: the list of problems, empty when it is good. */
export function validateProfile(p, fileName) {
  const out = check(p, SCHEMA, "", []);
  if (out.length > 0) return out;
  if (`${p.name}.json` !== fileName) out.push(`name is "${p.name}" but the file is ${fileName}: they must match`);
  if ((p.firmware === "nodemcu") !== (p.lua !== null)) out.push(`lua is ${JSON.stringify(p.lua)}: NodeMCU boards take "5.1" or "5.3", Espruino boards null`);
  const runtimes = p.firmware === "espruino" ? ["espruino", "espruino-real"] : p.lua === "5.1" ? ["lua51"] : ["lua53", "fengari"];
  if (!runtimes.includes(p.runtime)) out.push(`runtime is "${p.runtime}": for this firmware it takes one of ${runtimes.join(", ")}`);
  if (p.memory.unit !== (p.firmware === "espruino" ? "jsvars" : "bytes")) out.push(`memory.unit is "${p.memory.unit}": Espruino counts jsvars, NodeMCU bytes`);
  if (p.memory.goal > p.memory.total) out.push(`memory.goal ${p.memory.goal} is more than memory.total ${p.memory.total}`);
  if (p.memory.budget !== null && p.memory.budget > p.memory.total) out.push(`memory.budget ${p.memory.budget} is more than memory.total ${p.memory.total}`);
  if ((p.lfs !== null) !== (p.firmware === "nodemcu")) out.push(`lfs is ${JSON.stringify(p.lfs)}: NodeMCU boards give their LFS region ({ bytes, source }), Espruino boards null`);
  if (p.bytecode && p.firmware !== "nodemcu") out.push(`bytecode is true: only NodeMCU boards compile Lua to bytecode`);
  if ((p.protocol === 5) !== p.features.includes("mqtt5")) {
    out.push(`protocol is ${p.protocol}: a board speaks MQTT 5.0 (protocol 5) exactly when its features have mqtt5 (features: ${p.features.join(", ")})`);
  }
  for (const f of ["auth", "aliasin"]) {
    if (p.features.includes(f) && !p.features.includes("mqtt5")) out.push(`features has ${f} without mqtt5: ${f} is part of MQTT 5.0; add mqtt5 (and protocol 5) or leave ${f} out`);
  }
  if (p.maxInboundPacket > p.maxPacket) out.push(`maxInboundPacket ${p.maxInboundPacket} is more than maxPacket ${p.maxPacket}: the receive buffer is maxPacket bytes`);
  return out;
}

/** Loads and validates boards/<name>.json; throws an Error naming every problem. */
export function loadProfile(name, dir = BOARDS_DIR) {
  const file = path.join(dir, `${name}.json`);
  if (!fs.existsSync(file)) {
    throw new Error(`no board "${name}": the boards are ${listBoards(dir).join(", ")}`);
  }
  let p;
  try {
    p = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new Error(`boards/${name}.json is not valid JSON: ${e.message}`);
  }
  const problems = validateProfile(p, `${name}.json`);
  if (problems.length > 0) throw new Error(`boards/${name}.json:\n  ${problems.join("\n  ")}`);
  return p;
}

export function listBoards(dir = BOARDS_DIR) {
  return fs.readdirSync(dir).filter((f) => f.endsWith(".json")).map((f) => f.slice(0, -5)).sort();
}


/** The app's lazy modules (firmware/app/lazy.ts), packed beside the modules the entries require. */
export const LUA_LAZY = ["config", "commands", "held"];

/** NodeMCU's entry module in a board's files: `require("petrel")`. */
export const LUA_ENTRY = "petrel";
/** SPIFFS keeps names of at most 31 characters; the uploader writes `<name>.up` first: 28 here. */
export const SPIFFS_NAME_MAX = 31;
const PACKED_NAME_MAX = SPIFFS_NAME_MAX - ".up".length;

/** The flat file-system name of a built module: firmware.session.client → p_session_client. */
export function flatModuleName(mod) {
  if (mod === "firmware.targets.nodemcu.index") return LUA_ENTRY;
  if (mod === "firmware.targets.nodemcu.boot") return "petrel_boot";
  if (mod === "firmware.targets.nodemcu.console") return "petrel_console";
  if (mod === "firmware.targets.nodemcu.app") return "app";
  if (!mod.startsWith("firmware.")) return mod;
  return "p_" + mod.slice("firmware.".length).replace(/^targets\./, "").split(".").join("_");
}

/**
 * Modules that only a feature uses: a NodeMCU board whose profile leaves the feature out gets an
 * empty module in their place (on Espruino the bundler leaves them out by itself).
 */
export const FEATURE_MODULES = {
  mqtt5: ["firmware.codec.mqtt5", "firmware.session.session5"],
  texts: ["firmware.session.reasons"],
  auth: ["firmware.session.auth5"],
  aliasin: ["firmware.session.alias5"],
};

/** Whether module `mod` belongs only to a feature profile `p` leaves out. */
function leftOut(p, mod) {
  return Object.keys(FEATURE_MODULES).some((f) => !p.features.includes(f) && FEATURE_MODULES[f].includes(mod));
}

/**
 * The NodeMCU modules the entry needs, under flat names (SPIFFS has no directories and takes 31
 * characters: `firmware/targets/nodemcu/transport.lua` would not fit), with their `require`s
 * rewritten to match. Modules the entry never requires (type-only ones) are left out.
 */
function packLua(src, out, p, lfs, library) {
  const fileOf = (mod) => path.join(src, ...mod.split(".")) + ".lua";
  const seen = new Set();
  // the entries, and the app's lazy modules (app/lazy.ts), which the app requires by a computed
  // name: "firmware.app." + name, its prefix renamed below with the modules
  const todo = [...(library ? ["firmware.targets.nodemcu.index"] : []), "firmware.targets.nodemcu.boot", "firmware.targets.nodemcu.console",
    "firmware.targets.nodemcu.app", ...LUA_LAZY.map((n) => `firmware.app.${n}`)];
  const written = [];
  while (todo.length > 0) {
    const mod = todo.pop();
    if (seen.has(mod)) continue;
    seen.add(mod);
    // firmware/features.ts: the profile's features on, the others off
    let code = mod !== "firmware.features" ? fs.readFileSync(fileOf(mod), "latin1") : "local ____exports = {}\n" +
      ALL_FEATURES.map((f) => `____exports.FEATURE_${f.toUpperCase()} = ${p.features.includes(f)}\n`).join("") +
      `____exports.FEATURES = {${p.features.map((f) => JSON.stringify(f)).join(", ")}}\nreturn ____exports\n`;
    // the profile's features as literals where a module imports them (tools/lua-consts.mjs)
    code = inlineLuaConstants(code, (m, n) => (m === "firmware.features" && /^FEATURE_[A-Z0-9]+$/.test(n) ?
      String(p.features.includes(n.slice("FEATURE_".length).toLowerCase())) : undefined), true).code;
    // the branches of the features the profile leaves out, folded away (tools/lua-fold.mjs)
    const off = ALL_FEATURES.filter((f) => !p.features.includes(f)).map((f) => `FEATURE_${f.toUpperCase()}`);
    // (the features that are on leave `true and …` behind: made plain first, and `not true`
    // becomes a `false` the feature fold takes out)
    code = foldLuaConstants(code).code;
    code = foldLuaFeatures(code, off).code;
    // switches whose cases all return or break: each case a plain test (tools/lua-fold.mjs)
    code = foldLuaSwitches(code).code;
    code = code.replace(/require\("([A-Za-z0-9_.]+)"\)/g, (_, dep) => {
      // a module only a feature the profile leaves out uses is not packed: an empty table in its
      // place (its users test the feature's constant first, so nothing of it is ever called)
      if (leftOut(p, dep)) return "{}";
      todo.push(dep);
      return `require("${flatModuleName(dep)}")`;
    }).replace(/"firmware\.app\."/g, '"p_app_"');
    const name = flatModuleName(mod) + ".lua";
    if (name.length > PACKED_NAME_MAX) throw new Error(`module ${mod} packs as ${name}: over ${PACKED_NAME_MAX} characters (SPIFFS takes ${SPIFFS_NAME_MAX}, and uploads go through <name>.up); fix: a shorter module path`);
    const to = path.join(out, name);
    fs.writeFileSync(to, code, "latin1");
    written.push(to);
  }
  // NodeMCU runs init.lua at power-on: the board's profile for the app, the boot guard, then the
  // module "app" (the sensor node).
  const boot = `PETREL_BOARD = ${luaTable(appProfile(p))}\nrequire("petrel_boot").boot("app")\n`;
  const init = path.join(out, "init.lua");
  if (!lfs) {
    fs.writeFileSync(init, boot);
    written.push(init);
    return written;
  }
  // LFS: the modules go into the image, with _init, which makes require() find them there.
  // init.lua stays on SPIFFS (the firmware runs it from there) and starts _init protected: a
  // missing or broken image must not become a boot loop.
  const lfsInit = path.join(out, "_init.lua");
  fs.writeFileSync(lfsInit, LFS_INIT);
  written.push(lfsInit);
  fs.writeFileSync(init, "local L = node.LFS\n" +
    "if not (L and pcall(L.get(\"_init\"))) then\n" +
    `  print("petrel: the LFS holds no Petrel image (lfs.img not loaded); flash the board again: make flash BOARD=${p.name} PORT=...")\n` +
    "  return\nend\n" + boot);
  written.push(init);
  return written;
}

/**
 * The LFS image's _init module (`pcall(node.LFS.get("_init"))` in init.lua runs it): a loader
 * ahead of the file system's, so require() takes modules from LFS (code and constants in flash,
 * not heap) even where stale copies are on SPIFFS.
 */
const LFS_INIT = `-- Petrel's LFS start: require() finds the modules in LFS first.
local get = node.LFS.get
local loaders = package.searchers or package.loaders
table.insert(loaders, 2, function(name)
  return get(name) or ("\\n\\tno module '" .. name .. "' in LFS")
end)
`;

/** What the app takes from a profile (PETREL_BOARD on the board). */
export function appProfile(p) {
  return { chip: p.chip, tls: p.tls, maxPacket: p.maxPacket, maxInflight: p.maxInflight, outboxMessages: p.outboxMessages,
    offlineQueue: p.offlineQueue, minFreeHeap: p.minFreeHeap };
}

/** A flat object of strings, numbers and booleans as a Lua table constructor. */
function luaTable(o) {
  return `{ ${Object.entries(o).map(([k, v]) => `${k} = ${typeof v === "string" ? JSON.stringify(v) : String(v)}`).join(", ")} }`;
}

/** The LFS image of a packed NodeMCU board, beside its modules in dist/boards/<name>/. */
export const LFS_IMAGE = "lfs.img";

/**
 * Copies the built artifact of a board's firmware into dist/boards/<name>/ with its profile, and
 * checks the byte budget. Returns { bytes, files, dir, storage, lfs } (storage: Espruino's
 * Storage file names → packed files); throws when over budget.
 *
 * NodeMCU boards with an LFS region (`lfs` in the profile) get `lfs.img`: every packed module and
 * `_init`, built with the luac.cross of the profile's Lua (tools/lfs.mjs), and an init.lua that
 * starts from it; the image's size in flash must fit the region. What goes to the board is
 * lfs.img and init.lua: `bytes` counts those two, and `lfs` says { image, fileBytes, size, how,
 * luac, modules }. The modules stay in the directory too (the stand-in tests run them from there).
 *   opts.lfs = false     the file-system layout instead (every module a file, no image), as
 *                        for a board without LFS
 *   opts.checkLfs = false  the image is built and measured, not failed for its size (the
 *                        memory tests measure a board that does not fit yet)
 *   opts.library = true  NodeMCU: the library's entry (`require("petrel")`, the MQTT.js-style
 *                        client) packed too, for programs of one's own beside the node. A board's
 *                        artifact is the sensor node, which never requires it: by default it is
 *                        left out (about 9 KB of LFS image), as dist/nodemcu has it whole;
 *                        such a pack is not held to the profile's artifactBytes
 */
export async function packBoard(p, dist = path.join(root, "dist"), opts = {}) {
  const out = path.join(dist, "boards", p.name);
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out, { recursive: true });
  let files;
  let upload;
  let lfs;
  /** Espruino: the Storage file each packed file is written to (make flash). */
  const storage = {};
  if (p.firmware === "espruino") {
    // the sensor node with the profile's features (the Storage file "app" the boot guard
    // starts, the profile in front of it) and its lazy modules (Storage files "app.<name>")
    // the profile's keys as the app's bundle names them (its properties are shortened: one slot each)
    const board = (short) => `PETREL_BOARD=${JSON.stringify(Object.fromEntries(Object.entries(appProfile(p)).map(([k, v]) => [typeof short[k] === "string" ? short[k] : k, v])))};`;
    Object.assign(storage, await buildEspruinoApp(root, out, p.features, board));
    storage[".bootcde"] = path.join(dist, "espruino/boot.js");
    files = Object.values(storage);
    upload = files;
  } else {
    const useLfs = p.lfs !== null && opts.lfs !== false;
    files = packLua(path.join(dist, "nodemcu"), out, p, useLfs, opts.library === true);
    upload = files;
    if (useLfs) {
      const modules = files.map((f) => path.basename(f)).filter((f) => f !== "init.lua").sort();
      const built = buildLfsImage({ dir: out, files: modules, lua: p.lua, out: path.join(out, LFS_IMAGE) });
      lfs = { ...built, modules: modules.map((f) => f.replace(/\.lua$/, "")) };
      if (opts.checkLfs !== false && built.size > p.lfs.bytes) {
        fs.rmSync(built.image, { force: true });
        const e = new Error(`${p.name}: lfs.img is ${built.size} bytes in flash (${built.how}; ${modules.length} modules), over the profile's LFS region of ${p.lfs.bytes} bytes by ${built.size - p.lfs.bytes}; ` +
          `fix: make the firmware's Lua smaller (fewer or smaller modules, features left out of the profile), or build the firmware with a larger LFS region and raise lfs.bytes in boards/${p.name}.json with its source` +
          `${p.chip === "esp8266" ? " (ESP8266 NodeMCU allows up to 256 KB)" : ""}`);
        e.lfs = lfs;
        throw e;
      }
      upload = [built.image, files.find((f) => path.basename(f) === "init.lua")];
    }
  }
  fs.writeFileSync(path.join(out, "profile.json"), JSON.stringify(p, null, 2) + "\n");
  const bytes = upload.reduce((n, f) => n + fs.statSync(f).size, 0);
  // (the budget is the sensor node's: a pack with the library beside it is a developer's, not checked)
  if (bytes > p.artifactBytes && opts.library !== true) {
    throw new Error(`${p.name}: the ${p.firmware} artifact${lfs ? " (lfs.img and init.lua)" : ""} is ${bytes} bytes, over the profile's artifactBytes budget of ${p.artifactBytes} by ${bytes - p.artifactBytes}; fix: shrink the firmware, or raise artifactBytes in boards/${p.name}.json if the board has the room`);
  }
  return { bytes, files: files.length, dir: out, storage, lfs };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = process.argv[2];
  try {
    if (arg === undefined || arg === "--check") {
      for (const b of listBoards()) loadProfile(b);
      console.log(`boards: ${listBoards().length} profiles valid (${listBoards().join(", ")})`);
    } else {
      const p = loadProfile(arg);
      const r = await packBoard(p, undefined, { library: process.argv.includes("--library") });
      if (r.lfs !== undefined) {
        console.log(`board ${p.name}: lfs.img of ${r.lfs.modules.length} modules, ${r.lfs.size} bytes in flash (${r.lfs.how}) of the ${p.lfs.bytes}-byte LFS region (` +
          `${r.lfs.size <= p.lfs.goal ? `within its goal of ${p.lfs.goal}` : `its goal of ${p.lfs.goal} not met: over by ${r.lfs.size - p.lfs.goal}`}), ` +
          `${r.lfs.fileBytes} bytes as a file; with init.lua ${r.bytes} of ${p.artifactBytes} bytes, in ${path.relative(root, r.dir)}/`);
      } else {
        console.log(`board ${p.name}: ${r.files} file(s), ${r.bytes} of ${p.artifactBytes} bytes, in ${path.relative(root, r.dir)}/`);
      }
    }
  } catch (e) {
    console.error(`board: ${e.message}`);
    process.exit(1);
  }
}
