import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { freePort, startBroker, type Broker } from "../host-sim/mosquitto";
// @ts-expect-error: a plain .mjs module of the tools, without type declarations
import { loadProfile, packBoard } from "../tools/boards.mjs";
import { Board, boardMissing } from "./harness/boards";
import { runLua, type LuaRun } from "./harness/lua";
import { needs } from "./harness/needs";
import { DIST, ROOT, runtimes } from "./harness/runtimes";

// The shipped NodeMCU build (dist/nodemcu) on the host stand-in of NodeMCU's firmware API
// (host-sim/nodemcu/standin.lua: net, tmr, file, node, wifi, uart over luasocket), against a real
// mosquitto. Runtimes: lua51 (Debian lua5.1 + lua-bitop, no debug library: an ESP8266 with its
// `file` module) and lua53 (Debian lua5.3, no bit library: an ESP32, files through io.open).
// fengari (32-bit integers) runs the clock and timer checks here; with Node's sockets and files
// as its host layer (host-sim/nodemcu/fengari-board.ts) it runs the mosquitto scenarios of
// test/board-matrix.test.ts like every other runtime. Every wait is bounded:
// the stand-in's event loop raises after its deadline, and each process is killed after a limit.

const FIXTURES = path.join(ROOT, "test/fixtures/nodemcu");
const LUA_DIST = path.join(DIST, "nodemcu");

const LUAS = [
  { name: "lua51", exe: "lua5.1", esp32: false },
  { name: "lua53", exe: "lua5.3", esp32: true },
] as const;

/** Why luasocket cannot run under `exe`, or null. */
function socketMissing(exe: string): string | null {
  const r = spawnSync(exe, ["-e", 'require("socket")'], { encoding: "utf8" });
  return r.status === 0 ? null : `luasocket is not installed for ${exe} (Debian package lua-socket)`;
}

const tmpDirs: string[] = [];
function tmpDir(tag: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `petrel-nodemcu-${tag}-`));
  tmpDirs.push(d);
  return d;
}

/** mosquitto_sub with a persistent session (-c): subscribe and leave, or collect what waits. */
function mosquittoSub(port: number, id: string, topic: string, args: string[]): string {
  const r = spawnSync("mosquitto_sub", ["-h", "127.0.0.1", "-p", String(port), "-i", id, "-c", "-q", "1", "-t", topic, ...args], {
    encoding: "utf8",
    timeout: 10000,
  });
  if (r.error) throw r.error;
  return r.stdout;
}

let broker: Broker;

beforeAll(async () => {
  broker = await startBroker();
});

afterAll(async () => {
  await broker?.close();
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

const CLOCK_TIMER = [
  "clock exact over 46 h true",
  "long wait armed 1200000,1200000,1200000,600000,1200000; fired once after 3 pieces true",
  "0 ms armed as 1; fired 2; stopped timer keeps reading the clock every 1200000 ms",
  "clock read while stopped true; fired still 2",
];

/** A fixture script on fengari (Lua 5.3 with 32-bit integers, like ESP32 builds), in this process. */
function runFengari(script: string): string[] {
  const { lua, lauxlib, lualib, to_luastring } = require("fengari");
  const L = lauxlib.luaL_newstate();
  lualib.luaL_openlibs(L);
  const code = [
    `local out = {}`,
    `print = function(...) local t = {...}; for i = 1, #t do t[i] = tostring(t[i]) end; out[#out + 1] = table.concat(t, "\\t") end`,
    `PETREL_LUA_DIST = ${JSON.stringify(LUA_DIST)}`,
    `local ok, e = pcall(dofile, ${JSON.stringify(path.join(FIXTURES, script))})`,
    `if not ok then out[#out + 1] = "error " .. tostring(e) end`,
    `return table.concat(out, "\\n")`,
  ].join("\n");
  if (lauxlib.luaL_loadstring(L, to_luastring(code)) !== lua.LUA_OK || lua.lua_pcall(L, 0, 1, 0) !== lua.LUA_OK) {
    throw new Error(`fengari failed: ${lua.lua_tojsstring(L, -1)}`);
  }
  return (lua.lua_tojsstring(L, -1) as string).split("\n").filter((l) => l.length > 0);
}

describe("the NodeMCU clock and timer adapters on a fake tmr", () => {
  for (const lua of LUAS) {
    needs(runtimes[lua.name].missing(), `${lua.name}: exact ms across µs and ms wraps; long waits in pieces`, async () => {
      const r = await runLua(lua.exe, lua.esp32, "clock-timer.lua", tmpDir("clock"), {});
      expect(r.code, r.stderr).toBe(0);
      expect(r.out).toEqual(CLOCK_TIMER);
    });
  }
  needs(runtimes.fengari.missing(), "fengari (32-bit integers): the same", () => {
    expect(runFengari("clock-timer.lua")).toEqual(CLOCK_TIMER);
  });
});

describe("the NodeMCU stand-in itself", () => {
  for (const lua of LUAS) {
    const missing = runtimes[lua.name].missing() ?? socketMissing(lua.exe);
    const tag = lua.name;
    const check = (name: string, env: Record<string, string> = {}) =>
      runLua(lua.exe, lua.esp32, "standin-checks.lua", tmpDir("checks"), { PETREL_CHECK: name, ...env }, 10000);

    needs(missing, `${tag}: a second sk:send before "sent" fails the run, even inside a pcall`, async () => {
      const r = await check("back-to-back");
      expect(r.out).toEqual(["second send refused true"]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(`stand-in: sk:send before the previous send's "sent" event`);
    });

    needs(missing, `${tag}: the event loop gives up at its deadline`, async () => {
      const r = await check("deadline");
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain("stand-in: the program did not finish within 0.3 s");
    });

    needs(missing, `${tag}: "receive" delivers at most one 1,460-byte segment per event`, async () => {
      const r = await check("segments");
      expect(r.code, r.stderr).toBe(0);
      expect(r.out).toEqual(["received 5000 bytes in 4 or more events, largest 1460"]);
    });

    needs(missing, `${tag}: a refused connection is a "reconnection" event from the loop`, async () => {
      const r = await check("refused", { PETREL_PORT: String(await freePort()) });
      expect(r.code, r.stderr).toBe(0);
      expect(r.out).toEqual(["reconnection -11 from the loop true"]);
    });

    needs(missing, `${tag}: tmr.now() wraps at 31 bits; single alarms unregister; a 0 ms alarm is refused`, async () => {
      const r = await check("timers");
      expect(r.code, r.stderr).toBe(0);
      expect(r.out).toEqual(["us wrapped true single alarm unregistered true"]);
      const z = await check("zero-interval");
      expect(z.code).not.toBe(0);
      expect(z.stderr).toContain("stand-in: tmr interval must be 1..6870947 ms (got 0)");
    });
  }
});

describe("NodeMCU build on the NodeMCU stand-in, against mosquitto", () => {
  for (const lua of LUAS) {
    const missing = runtimes[lua.name].missing() ?? socketMissing(lua.exe);
    const tag = lua.name;

    needs(missing, `${tag}: storage writes and removes are atomic under a power cut at every flash step`, async () => {
      const r = await runLua(lua.exe, lua.esp32, "storage-cuts.lua", tmpDir("cuts"), {});
      expect(r.code, r.stderr).toBe(0);
      // A write is four flash steps (header, data, remove the old file, rename): a cut in the
      // first two leaves the old record, in the last two the new one; never a torn one.
      expect(r.out).toEqual([
        "write cut 1 -> old files rec rewrite true",
        "write cut 2 -> old files rec rewrite true",
        "write cut 3 -> new files rec rewrite true",
        "write cut 4 -> new files rec rewrite true",
        "write cut 5 -> new files rec rewrite true (not cut)",
        "remove cut 1 -> old files rec",
        "remove cut 2 -> none files  (not cut)",
        "pending new, read before settle -> new",
        "pending new, after boot -> new files rec",
        "torn new, read -> old",
        "torn new, after boot -> old files rec",
        "empty record true list mark,rec",
        "bad key 2 nil",
      ]);
    });

    needs(missing, `${tag}: subscribes, publishes QoS 0/1/2 to itself, a 3,000-byte message and a burst, then ends`, async () => {
      const topic = `petrel/standin/${lua.name}/${process.pid}`;
      const r = await runLua(lua.exe, lua.esp32, "pubsub.lua", tmpDir("pubsub"), {
        PETREL_PORT: String(broker.port),
        PETREL_TOPIC: topic,
        PETREL_CLIENT: `petrel-standin-${lua.name}-${process.pid}`,
      });
      expect(r.code, `${r.stderr}\n${r.out.join("\n")}`).toBe(0);
      const heap = r.out.filter((l) => l.startsWith("heap "));
      console.log(`[observed] ${lua.name}: ${heap.join("; ")}`);
      const lines = r.out.filter((l) => !l.startsWith("heap "));
      // Arrival order between the QoS levels is the broker's; the set and the frame are fixed.
      expect(lines.slice(0, 2)).toEqual(["connect sessionPresent=false", "suback ok granted=2"]);
      expect(lines.slice(2, 11).sort()).toEqual([
        "burst in order true",
        "callback big ok",
        "callback q0 ok",
        "callback q1 ok",
        "callback q2 ok",
        "message big qos=1 len=3000 intact=true",
        "message q0 zero qos=0",
        "message q1 one qos=1",
        "message q2 two qos=2",
      ]);
      expect(lines.slice(11)).toEqual([
        "end",
        "writes refused while the queue was full true",
        "clock wrapped true tracks host true",
        "us counter wrapped true",
        "stats delivered=14 connects=1",
        "outbox records 0",
      ]);
    });

    needs(missing, `${tag}: the packed board files (flat SPIFFS names, entry "petrel") run the same publish and subscribe`, async () => {
      const board = lua.esp32 ? "esp32-nodemcu" : "esp8266-nodemcu";
      const packed = await packBoard(loadProfile(board), DIST, { lfs: false, library: true }); // every module a file, run from the directory
      const topic = `petrel/packed/${lua.name}/${process.pid}`;
      const r = await runLua(lua.exe, lua.esp32, "pubsub.lua", tmpDir("packed"), {
        PETREL_LUA_DIST: packed.dir,
        PETREL_ENTRY: "petrel",
        PETREL_PORT: String(broker.port),
        PETREL_TOPIC: topic,
        PETREL_CLIENT: `petrel-packed-${lua.name}-${process.pid}`,
      });
      expect(r.code, `${r.stderr}\n${r.out.join("\n")}`).toBe(0);
      expect(r.out).toContain("message big qos=1 len=3000 intact=true");
      expect(r.out).toContain("stats delivered=14 connects=1");
      for (const f of fs.readdirSync(packed.dir)) expect(f.length, f).toBeLessThanOrEqual(31);
    });

    needs(missing, `${tag}: a QoS 1 message published while the broker is unreachable survives a SIGKILL and is delivered by the next boot`, async () => {
      const flash = tmpDir("restart");
      const topic = `petrel/standin-restart/${lua.name}/${process.pid}`;
      const client = `petrel-standin-restart-${lua.name}-${process.pid}`;
      const observer = `observer-${lua.name}-${process.pid}`;
      // The observer's persistent session holds what arrives while it is away.
      mosquittoSub(broker.port, observer, topic, ["-E"]);

      const closed = await freePort(); // nothing listens there
      const a = await runLua(lua.exe, lua.esp32, "restart-a.lua", flash, { PETREL_PORT: String(closed), PETREL_TOPIC: topic, PETREL_CLIENT: client },
        10000, "running");
      expect(a.signal, a.stderr).toBe("SIGKILL");
      expect(a.out).toEqual(["outbox records 1", "refused attempts seen true", "running"]);
      expect(fs.readdirSync(flash).filter((f) => f.startsWith("mqo"))).toEqual(["mqo1"]);

      const b = await runLua(lua.exe, lua.esp32, "restart-b.lua", flash, { PETREL_PORT: String(broker.port), PETREL_TOPIC: topic, PETREL_CLIENT: client });
      expect(b.code, b.stderr).toBe(0);
      expect(b.out).toEqual(["outbox records at boot 1", "connect", "outbox empty", "end"]);

      const got = mosquittoSub(broker.port, observer, topic, ["-C", "1", "-W", "5"]);
      expect(got.trim()).toBe("stored-1");
    });
  }
});

describe("low heap on the NodeMCU build: new work is refused, the board keeps running", () => {
  for (const rt of ["lua51", "lua53", "fengari"] as const) {
    needs(boardMissing(rt), `${rt}: with node.heap() at 3,000 bytes and minFreeHeap 8,192, publish and subscribe say low-memory and keep nothing`, async () => {
      const b = new Board(rt, tmpDir("heap"), { STANDIN_HEAP: "3000" });
      try {
        b.send(`open brokers=127.0.0.1:${broker.port} id=heap-${rt}-${process.pid} clean=1 minheap=8192`);
        await b.waitFor("connect", "connect sp=0");
        b.send("pub 1 heap/t 1 0 6869");
        b.send("pub 2 heap/t 0 0 6869");
        b.send("sub heap/# 1");
        await b.waitFor("refusals", (l) => l.startsWith("suback"));
        expect(b.lines.filter((l) => /^(pubdone|suback)/.test(l))).toEqual(["pubdone 1 low-memory", "pubdone 2 low-memory", "suback heap/# error low-memory"]);
        b.send("stats");
        await b.waitFor("stats", "stats outbox=0 connects=1 delivered=0 duplicates=0 attempts=1");
        b.send("end");
        await b.waitFor("end", "ended");
      } finally {
        await b.kill();
      }
    });
  }
});

describe("the boot guard (init.lua of a packed board) on the NodeMCU stand-in", () => {
  const RTS = [
    { name: "lua51", exe: "lua5.1", args: [] as string[], board: "esp8266-nodemcu", esp32: false },
    { name: "lua53", exe: "lua5.3", args: [] as string[], board: "esp32-nodemcu", esp32: true },
    { name: "fengari", exe: process.execPath, args: [path.join(DIST, "node/host-sim/nodemcu/fengari-board.js")], board: "esp32-nodemcu", esp32: true },
  ] as const;

  /** One boot: the fixture on the packed board, in `flash`; `keys` typed on the console at once. */
  async function bootOnce(rt: (typeof RTS)[number], flash: string, env: Record<string, string>, keys?: string): Promise<LuaRun> {
    const packed = await packBoard(loadProfile(rt.board), DIST, { lfs: false, library: true }); // every module a file, run from the directory
    return runLua(rt.exe, rt.esp32, "bootguard.lua", flash, { PETREL_LUA_DIST: packed.dir, PETREL_ENTRY: "petrel", ...env }, 15000, undefined,
      { args: [...rt.args], input: keys });
  }

  for (const rt of RTS) {
    needs(boardMissing(rt.name), `${rt.name}: three boots that crash, then safe mode; cleared at the REPL, the next boot starts the app and counts as good`, async () => {
      const flash = tmpDir("bootguard");
      for (let i = 1; i <= 3; i++) {
        const r = await bootOnce(rt, flash, { PETREL_APP: "crash" });
        expect(r.code, r.stderr).not.toBe(0);
        expect(r.stderr).toContain("app crashed at boot");
        expect(r.out).toContain("boot: press a key within 0.2 s for safe mode (the REPL, no app)");
      }
      const safe = await bootOnce(rt, flash, { PETREL_APP: "good", PETREL_THEN_OK: "1" });
      expect(safe.code, safe.stderr).toBe(0);
      expect(safe.out[0]).toMatch(/^SAFE MODE: the app did not run 0\.5 s after each of the last 3 boots .*Fix: .*petrelBootOk\(\)/);
      expect(safe.out).not.toContain("app running");
      expect(safe.out).toContain("boot count cleared");
      const good = await bootOnce(rt, flash, { PETREL_APP: "good" });
      expect(good.code, good.stderr).toBe(0);
      expect(good.out).toEqual(["boot: press a key within 0.2 s for safe mode (the REPL, no app)", "app running", "app ran 0.7 s"]);
      // the good boot cleared the count: one crash later, the app still starts
      const again = await bootOnce(rt, flash, { PETREL_APP: "crash" });
      expect(again.stderr).toContain("app crashed at boot");
      const after = await bootOnce(rt, flash, { PETREL_APP: "good" });
      expect(after.out).toContain("app running");
    });

    needs(boardMissing(rt.name), `${rt.name}: a key in the boot window enters safe mode; the app is not started`, async () => {
      const flash = tmpDir("bootkey");
      const r = await bootOnce(rt, flash, { PETREL_APP: "good" }, "x\n");
      expect(r.code, r.stderr).toBe(0);
      expect(r.out).toContain("SAFE MODE: a key was pressed in the boot window; the app is not started and the console is the REPL. Reset to start the app");
      expect(r.out).not.toContain("app running");
    });
  }
});

describe("the app's settings save under a power cut, on each NodeMCU stand-in", () => {
  const runs = [
    { name: "lua51", exe: "lua5.1", esp32: false, args: [] as string[] },
    { name: "lua53", exe: "lua5.3", esp32: true, args: [] as string[] },
    { name: "fengari", exe: process.execPath, esp32: true, args: [path.join(DIST, "node/host-sim/nodemcu/fengari-board.js")] },
  ] as const;
  for (const lua of runs) {
    needs(runtimes[lua.name].missing(), `${lua.name}: save leaves the old or the new settings under a cut at every flash step`, async () => {
      const r = await runLua(lua.exe, lua.esp32, "settings-cuts.lua", tmpDir("settings-cuts"), {}, 20000, undefined, { args: [...lua.args] });
      expect(r.code, r.stderr).toBe(0);
      // the storage's four flash steps: a cut in the first two keeps the old settings, in the
      // last two the new ones; each time load() finds nothing wrong and the next save works
      expect(r.out).toEqual([
        "save cut 1 -> old load nil save-after true",
        "save cut 2 -> old load nil save-after true",
        "save cut 3 -> new load nil save-after true",
        "save cut 4 -> new load nil save-after true",
        "save cut 5 -> new load nil save-after true (not cut)",
      ]);
    });
  }
});
