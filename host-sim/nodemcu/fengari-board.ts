/**
 * A simulated NodeMCU board on fengari (Lua 5.3 in JavaScript, 32-bit integers like ESP32
 * builds): runs a Lua program on the NodeMCU stand-in (standin.lua), its host layer being this
 * file instead of luasocket. Host-only: never shipped to a board.
 *
 *   node dist/node/host-sim/nodemcu/fengari-board.js program.lua
 *
 * The stand-in's event loop blocks (as it does over luasocket's select), so sockets and the
 * console live in a worker thread: the Lua side sends it commands, and waits for its events with
 * Atomics.wait on a shared counter, reading them with receiveMessageOnPort. Files are Node's,
 * synchronous. Environment as for the luasocket stand-in (PETREL_STANDIN_DIR, STANDIN_FLASH, …).
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as tls from "node:tls";
import * as path from "node:path";
import { MessageChannel, type MessagePort, Worker, isMainThread, receiveMessageOnPort, workerData } from "node:worker_threads";

interface HostEvent {
  id?: number;
  kind: "open" | "fail" | "data" | "eof" | "reset" | "sent" | "line";
  data?: Uint8Array;
}
type Command =
  | { op: "connect"; id: number; ip: string; port: number; ca?: string | true }
  | { op: "send"; id: number; data: Uint8Array }
  | { op: "close"; id: number }
  | { op: "console" };

/** The worker: sockets and stdin on Node's event loop, each event posted then signalled. */
function worker(port: MessagePort, signal: Int32Array): void {
  const socks = new Map<number, net.Socket>();
  const emit = (e: HostEvent) => {
    port.postMessage(e);
    Atomics.add(signal, 0, 1);
    Atomics.notify(signal, 0);
  };
  port.on("message", (c: Command) => {
    if (c.op === "connect") {
      // TLS as the stand-in's tls module does it: the chain verified against the CA when one is
      // set (not the host name), or no verification at all.
      const s = c.ca === undefined
        ? net.connect({ host: c.ip, port: c.port })
        : tls.connect({ host: c.ip, port: c.port, ca: c.ca === true ? undefined : c.ca, rejectUnauthorized: c.ca !== true,
          checkServerIdentity: () => undefined });
      socks.set(c.id, s);
      let opened = false;
      let ended = false;
      s.on(c.ca === undefined ? "connect" : "secureConnect", () => {
        opened = true;
        emit({ id: c.id, kind: "open" });
      });
      s.on("data", (d: Buffer) => emit({ id: c.id, kind: "data", data: new Uint8Array(d) }));
      s.on("end", () => {
        ended = true;
        socks.delete(c.id);
        s.destroy();
        emit({ id: c.id, kind: "eof" });
      });
      s.on("error", () => {
        if (!socks.has(c.id) || ended) return;
        socks.delete(c.id);
        emit({ id: c.id, kind: opened ? "reset" : "fail" });
      });
      s.on("close", () => {
        if (!socks.has(c.id)) return;
        socks.delete(c.id);
        emit({ id: c.id, kind: opened ? "reset" : "fail" });
      });
    } else if (c.op === "send") {
      const s = socks.get(c.id);
      if (s !== undefined) s.write(Buffer.from(c.data), () => { if (socks.has(c.id)) emit({ id: c.id, kind: "sent" }); });
    } else if (c.op === "close") {
      const s = socks.get(c.id);
      socks.delete(c.id);
      s?.destroy();
    } else {
      let rest = "";
      // A libuv stream, not fs reads: stdin may be a non-blocking pipe (EAGAIN for fs.read).
      const input = new net.Socket({ fd: 0, readable: true, writable: false });
      input.on("data", (d: string | Buffer) => {
        rest += d.toString("latin1");
        let nl;
        while ((nl = rest.indexOf("\n")) >= 0) {
          emit({ kind: "line", data: new Uint8Array(Buffer.from(rest.slice(0, nl + 1), "latin1")) });
          rest = rest.slice(nl + 1);
        }
      });
      input.on("error", () => {}); // the test closed its end: no more lines
    }
  });
}

/** Node file descriptors with io-like positions (Node has no lseek). */
interface OpenFile {
  fd: number;
  pos: number;
  append: boolean;
}

function main(program: string): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { lua, lauxlib, lualib, to_luastring } = require("fengari");
  const shared = new SharedArrayBuffer(4);
  const signal = new Int32Array(shared);
  const { port1, port2 } = new MessageChannel();
  const w = new Worker(__filename, { workerData: { port: port2, shared }, transferList: [port2] });
  w.unref();

  const L = lauxlib.luaL_newstate();
  lualib.luaL_openlibs(L);
  const files = new Map<number, OpenFile>();
  let nextConn = 0;
  let nextFile = 0;

  const str = (i: number): string => lua.lua_tojsstring(L, i);
  const bytes = (i: number): Uint8Array => lua.lua_tolstring(L, i);
  const send = (c: Command) => port1.postMessage(c);

  const fns: Record<string, () => number> = {
    now: () => { lua.lua_pushnumber(L, performance.now() / 1000); return 1; },
    connect: () => {
      nextConn++;
      const t = lua.lua_type(L, 3);
      const ca = t === lua.LUA_TSTRING ? str(3) : t === lua.LUA_TBOOLEAN && lua.lua_toboolean(L, 3) ? true : undefined;
      send({ op: "connect", id: nextConn, ip: str(1), port: lua.lua_tonumber(L, 2), ca });
      lua.lua_pushinteger(L, nextConn);
      return 1;
    },
    send: () => { send({ op: "send", id: lua.lua_tointeger(L, 1), data: new Uint8Array(bytes(2)) }); return 0; },
    close: () => { send({ op: "close", id: lua.lua_tointeger(L, 1) }); return 0; },
    console: () => { send({ op: "console" }); return 0; },
    resolve: () => {
      const name = str(1);
      let ip: string | null = net.isIP(name) ? name : null;
      if (ip === null) {
        try {
          ip = execFileSync("getent", ["ahostsv4", name], { encoding: "utf8" }).split(/\s/)[0] || null;
        } catch {
          ip = null;
        }
      }
      if (ip === null) lua.lua_pushnil(L);
      else lua.lua_pushstring(L, to_luastring(ip));
      return 1;
    },
    wait: () => {
      const timeout = lua.lua_tonumber(L, 1);
      const seq = Atomics.load(signal, 0);
      let m = receiveMessageOnPort(port1);
      if (m === undefined && timeout > 0) {
        Atomics.wait(signal, 0, seq, timeout * 1000);
        m = receiveMessageOnPort(port1);
      }
      lua.lua_createtable(L, 0, 0);
      let n = 0;
      while (m !== undefined) {
        const e = m.message as HostEvent;
        lua.lua_createtable(L, 0, 3);
        if (e.id !== undefined) {
          lua.lua_pushinteger(L, e.id);
          lua.lua_setfield(L, -2, to_luastring("id"));
        }
        lua.lua_pushstring(L, to_luastring(e.kind));
        lua.lua_setfield(L, -2, to_luastring("kind"));
        if (e.data !== undefined) {
          lua.lua_pushstring(L, e.data);
          lua.lua_setfield(L, -2, to_luastring("data"));
        }
        lua.lua_rawseti(L, -2, ++n);
        m = receiveMessageOnPort(port1);
      }
      return 1;
    },
    fopen: () => {
      const mode = str(2).replace("b", "");
      const flags = ({ r: "r", w: "w", a: "a", "r+": "r+", "w+": "w+", "a+": "a+" } as Record<string, string>)[mode];
      let fd: number;
      try {
        fd = fs.openSync(str(1), flags);
      } catch {
        lua.lua_pushnil(L);
        return 1;
      }
      files.set(++nextFile, { fd, pos: 0, append: mode.startsWith("a") });
      lua.lua_pushinteger(L, nextFile);
      return 1;
    },
    fread: () => {
      const f = files.get(lua.lua_tointeger(L, 1)) as OpenFile;
      const want = lua.lua_tonumber(L, 2);
      const size = fs.fstatSync(f.fd).size;
      const n = Math.max(0, want < 0 ? size - f.pos : Math.min(want, size - f.pos));
      if (n === 0 && want !== 0 && want >= 0) {
        lua.lua_pushnil(L);
        return 1;
      }
      const buf = Buffer.alloc(n);
      fs.readSync(f.fd, buf, 0, n, f.pos);
      f.pos += n;
      lua.lua_pushstring(L, new Uint8Array(buf));
      return 1;
    },
    fwrite: () => {
      const f = files.get(lua.lua_tointeger(L, 1)) as OpenFile;
      const data = Buffer.from(bytes(2));
      if (f.append) f.pos = fs.fstatSync(f.fd).size;
      fs.writeSync(f.fd, data, 0, data.length, f.pos);
      f.pos += data.length;
      lua.lua_pushboolean(L, true);
      return 1;
    },
    fseek: () => {
      const f = files.get(lua.lua_tointeger(L, 1)) as OpenFile;
      const whence = str(2);
      const off = lua.lua_tonumber(L, 3);
      const base = whence === "set" ? 0 : whence === "end" ? fs.fstatSync(f.fd).size : f.pos;
      f.pos = base + off;
      lua.lua_pushinteger(L, f.pos);
      return 1;
    },
    fclose: () => {
      const k = lua.lua_tointeger(L, 1);
      const f = files.get(k);
      if (f !== undefined) fs.closeSync(f.fd);
      files.delete(k);
      return 0;
    },
    list: () => {
      const dir = str(1);
      lua.lua_createtable(L, 0, 0);
      let names: string[] = [];
      try {
        names = fs.readdirSync(dir);
      } catch {
        names = [];
      }
      for (const name of names) {
        const st = fs.statSync(path.join(dir, name), { throwIfNoEntry: false });
        if (st === undefined || !st.isFile()) continue;
        lua.lua_pushinteger(L, st.size);
        lua.lua_setfield(L, -2, to_luastring(name));
      }
      return 1;
    },
    remove: () => {
      try {
        fs.unlinkSync(str(1));
        lua.lua_pushboolean(L, true);
      } catch {
        lua.lua_pushboolean(L, false);
      }
      return 1;
    },
    rename: () => {
      try {
        fs.renameSync(str(1), str(2));
        lua.lua_pushboolean(L, true);
      } catch {
        lua.lua_pushboolean(L, false);
      }
      return 1;
    },
  };
  lua.lua_createtable(L, 0, Object.keys(fns).length);
  for (const [name, fn] of Object.entries(fns)) {
    lua.lua_pushjsfunction(L, fn);
    lua.lua_setfield(L, -2, to_luastring(name));
  }
  lua.lua_setglobal(L, to_luastring("PETREL_JS"));

  const here = process.env.PETREL_STANDIN_DIR ?? path.resolve(__dirname, "../../../../host-sim/nodemcu");
  const boot = `PETREL_HOST = dofile(${JSON.stringify(path.join(here, "host-fengari.lua"))})
return dofile(${JSON.stringify(program)})`;
  let code = 0;
  if (lauxlib.luaL_loadstring(L, to_luastring(boot)) !== lua.LUA_OK || lua.lua_pcall(L, 0, 0, 0) !== lua.LUA_OK) {
    process.stderr.write(`lua: ${lua.lua_tojsstring(L, -1)}\n`);
    code = 1;
  }
  for (const f of files.values()) fs.closeSync(f.fd);
  process.exit(code);
}

if (isMainThread) {
  const program = process.argv[2];
  if (program === undefined) {
    process.stderr.write("usage: fengari-board.js program.lua\n");
    process.exit(2);
  }
  main(path.resolve(program));
} else {
  const d = workerData as { port: MessagePort; shared: SharedArrayBuffer };
  worker(d.port, new Int32Array(d.shared));
}
