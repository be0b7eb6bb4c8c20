import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { runBundle } from "../../host-sim/espruino/standin";
// @ts-expect-error: a plain .mjs module of the tools, without type declarations
import { LUAC_CROSS_HELP, runtimesDir } from "../../tools/lfs.mjs";

/**
 * The runtime matrix (../shared/platforms.md): every runtime runs the *built* probe, the same
 * program compiled from the same sources, on the same case lines.
 */
export const RUNTIMES = ["node", "espruino", "espruino-real", "lua51", "lua53", "fengari"] as const;
/**
 * The cross-target matrix (test/harness/matrix.ts): the runtimes above, and NodeMCU's own Lua:
 * its luac.cross from ../shared/runtimes (32-bit, as the boards), which runs the probe from its
 * modules' source. It has no sockets, so the mosquitto scenarios (board-matrix) leave it out.
 */
export const MATRIX_RUNTIMES = [...RUNTIMES, "luac51", "luac53"] as const;
export type RuntimeName = (typeof MATRIX_RUNTIMES)[number];

/** Only this runtime may be absent under CI=true (it needs a locally built Espruino binary). */
export const OPTIONAL_IN_CI: RuntimeName[] = ["espruino-real"];

export const ROOT = path.resolve(__dirname, "../..");
export const DIST = path.join(ROOT, "dist");
const LUA_DIST = path.join(DIST, "nodemcu-probe");
const LUA_PROBE = "test.probe.entry_nodemcu";

export interface Runtime {
  name: RuntimeName;
  /** null when the runtime can run here, else why not (and how to get it). */
  missing(): string | null;
  /** Runs the probe on the case lines; returns the result lines (one per case). */
  run(input: string): string[];
}

const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;

/** The lines between the probe's own output and its closing "probe-cases N" line. */
function probeLines(out: string, runtime: string): string[] {
  const lines = out.replace(/\r/g, "").split("\n");
  const end = lines.findIndex((l) => l.startsWith("probe-cases "));
  if (end < 0) throw new Error(`${runtime}: the probe did not finish; output was:\n${out.slice(-2000)}`);
  const start = lines.lastIndexOf("probe-start", end);
  const body = lines.slice(start + 1, end).filter((l) => l.length > 0);
  const count = Number(lines[end].slice("probe-cases ".length));
  if (count !== body.length) throw new Error(`${runtime}: probe said ${count} cases but printed ${body.length}`);
  return body;
}

/** Lua prelude shared by the Lua runtimes: the built modules on the path, like NodeMCU's flash. */
function luaDriver(opts: { bit: boolean; noDebug: boolean }): string {
  return [
    `package.path = ${JSON.stringify(LUA_DIST + "/?.lua")} .. ";" .. package.path`,
    opts.bit ? `bit = require("bit") -- NodeMCU has bit built in; Debian lua-bitop stands in` : "",
    opts.noDebug ? `debug = nil; package.loaded.debug = nil -- NodeMCU 5.1 has no debug library` : "",
    `print("probe-start")`,
    `require(${JSON.stringify(LUA_PROBE)}).run(io.read("*a"))`,
  ].join("\n");
}

function luaProcess(name: RuntimeName, exe: string, opts: { bit: boolean; noDebug: boolean }): Runtime {
  return {
    name,
    missing() {
      if (!has(exe)) return `${exe} is not installed (Debian package ${exe}; make test installs it)`;
      if (opts.bit && spawnSync(exe, ["-e", `require("bit")`]).status !== 0) {
        return `lua-bitop is not installed for ${exe} (Debian package lua-bitop)`;
      }
      return null;
    },
    run(input) {
      const r = spawnSync(exe, ["-e", luaDriver(opts)], { input, encoding: "latin1", maxBuffer: 1 << 28 });
      if (r.status !== 0) throw new Error(`${name} failed (exit ${r.status}):\n${r.stderr}\n${r.stdout.slice(-2000)}`);
      return probeLines(r.stdout, name);
    },
  };
}

const fengariRuntime: Runtime = {
  name: "fengari",
  missing() {
    try {
      require.resolve("fengari");
      return null;
    } catch {
      return "the fengari npm package is not installed (npm ci installs it)";
    }
  },
  run(input) {
    // fengari: Lua 5.3 with 32-bit integers, like NodeMCU's ESP32 builds, in this process.
    const { lua, lauxlib, lualib, to_luastring } = require("fengari");
    const L = lauxlib.luaL_newstate();
    lualib.luaL_openlibs(L);
    lua.lua_pushstring(L, to_luastring(input));
    lua.lua_setglobal(L, to_luastring("PROBE_INPUT"));
    const code = [
      `local out = {}`,
      `print = function(...) local t = {...}; for i = 1, #t do t[i] = tostring(t[i]) end; out[#out + 1] = table.concat(t, "\\t") end`,
      `package.path = ${JSON.stringify(LUA_DIST + "/?.lua")} .. ";" .. package.path`,
      `print("probe-start")`,
      `require(${JSON.stringify(LUA_PROBE)}).run(PROBE_INPUT)`,
      `return table.concat(out, "\\n")`,
    ].join("\n");
    if (lauxlib.luaL_loadstring(L, to_luastring(code)) !== lua.LUA_OK || lua.lua_pcall(L, 0, 1, 0) !== lua.LUA_OK) {
      throw new Error(`fengari failed: ${lua.lua_tojsstring(L, -1)}`);
    }
    // Lua strings are bytes: read them as Latin-1, one character per byte, like the other runtimes.
    return probeLines(Buffer.from(lua.lua_tostring(L, -1)).toString("latin1"), "fengari");
  },
};

const espruinoStandin: Runtime = {
  name: "espruino",
  missing: () => (fs.existsSync(path.join(DIST, "espruino/probe.js")) ? null : "dist/espruino/probe.js is not built (make build)"),
  run(input) {
    const out: string[] = ["probe-start"];
    runBundle(path.join(DIST, "espruino/probe.js"), { print: (l) => out.push(l), globals: { PROBE_INPUT: input } });
    return probeLines(out.join("\n"), "espruino");
  },
};

/**
 * The real interpreter is slow on the large fixtures (about 5 s per 16 KB case: interpreted
 * loops over 32,000-character hex arguments), so it gets a long limit. It only runs with ESPRUINO set.
 */
export const ESPRUINO_REAL_TIMEOUT_MS = 900_000;

/** Espruino's banner and prompt lines are dropped by probeLines (it reads between markers). */
const espruinoReal: Runtime = {
  name: "espruino-real",
  missing() {
    const exe = process.env.ESPRUINO;
    if (!exe) return "set ESPRUINO=/path/to/espruino (an Espruino Linux build without unicode strings, like the boards)";
    if (!fs.existsSync(exe)) return `ESPRUINO=${exe} does not exist`;
    return null;
  },
  run(input) {
    const exe = process.env.ESPRUINO as string;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-espruino-"));
    try {
      const file = path.join(dir, "probe.js");
      // 8-bit strings like the boards: "°" in a UTF-8 source is two characters. A unicode build is refused.
      const check = 'if ("\u00b0".length !== 2) print("probe-unicode-build");\n';
      fs.writeFileSync(file, check + `print("probe-start");\nvar PROBE_INPUT=${JSON.stringify(input)};\n` +
        fs.readFileSync(path.join(DIST, "espruino/probe.js"), "utf8"));
      const out = execFileSync(exe, ["probe.js"], { cwd: dir, input: "", encoding: "latin1", timeout: ESPRUINO_REAL_TIMEOUT_MS, maxBuffer: 1 << 28 });
      if (out.includes("probe-unicode-build")) {
        throw new Error(`ESPRUINO=${exe} has unicode strings (ESPR_UNICODE_SUPPORT); boards have 8-bit strings: build one without it`);
      }
      return probeLines(out, "espruino-real");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
};

const nodeRuntime: Runtime = {
  name: "node",
  missing: () => (fs.existsSync(path.join(DIST, "node/test/probe/entry_node.js")) ? null : "dist/node is not built (make build)"),
  run(input) {
    const probe = require(path.join(DIST, "node/test/probe/entry_node.js")) as { run(i: string): string[] };
    return probe.run(input);
  },
};

/**
 * NodeMCU's luac.cross (`-e script`), 32-bit: the firmware's Lua with its built-in `bit`. Its 5.1
 * crashes on io.read(), so the driver reads io.stdin; its 5.3 exits 0 after an error, so success
 * is the probe's closing line (probeLines).
 */
function luacCross(name: RuntimeName, file: string): Runtime {
  const exe = () => path.join(runtimesDir() as string, file);
  return {
    name,
    missing: () => (fs.existsSync(exe()) ? null : `${exe()} is missing: ${LUAC_CROSS_HELP as string}; set PETREL_RUNTIMES to the folder that holds it`),
    run(input) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-luac-"));
      try {
        const driver = path.join(dir, "probe.lua");
        fs.writeFileSync(driver, [
          `package.path = ${JSON.stringify(LUA_DIST + "/?.lua")} .. ";" .. package.path`,
          `local input = io.stdin:read("*a")`,
          `print("probe-start")`,
          `require(${JSON.stringify(LUA_PROBE)}).run(input)`,
        ].join("\n"));
        const r = spawnSync(exe(), ["-e", driver], { input, encoding: "latin1", maxBuffer: 1 << 28 });
        if (r.status !== 0) throw new Error(`${name} failed (exit ${r.status}):\n${r.stderr}\n${r.stdout.slice(-2000)}`);
        if (r.stderr.trim() !== "") throw new Error(`${name} reported:\n${r.stderr.slice(-2000)}`);
        return probeLines(r.stdout, name);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/** Lua 5.1 without any bit library: exercises the arithmetic fallback (not a matrix runtime). */
export const lua51NoBit: Runtime = luaProcess("lua51", "lua5.1", { bit: false, noDebug: true });

export const runtimes: Record<RuntimeName, Runtime> = {
  node: nodeRuntime,
  espruino: espruinoStandin,
  "espruino-real": espruinoReal,
  lua51: luaProcess("lua51", "lua5.1", { bit: true, noDebug: true }),
  lua53: luaProcess("lua53", "lua5.3", { bit: false, noDebug: false }),
  fengari: fengariRuntime,
  luac51: luacCross("luac51", "luac-cross-51-32"),
  luac53: luacCross("luac53", "luac-cross-53-32"),
};
