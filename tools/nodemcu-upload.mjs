// Uploads files to a NodeMCU board through its Lua REPL over a serial port, and verifies each.
//
//   node tools/nodemcu-upload.mjs --port /dev/ttyUSB0 [--baud 115200] [--dir dist/boards/<name>] [files…]
//
// How: a few helper functions are defined on the board first (one short line each). A file is
// written to `<name>.up` in numbered lines of hex, each under the REPL's 255-character limit;
// the board acknowledges every line with its number, and skips a number it has already written,
// so a line lost or garbled on the wire is simply sent again. Then the file is closed, its size
// and Adler-32 sums are computed on the board and compared, and only then is it renamed over
// `<name>`: an interrupted upload never leaves a half file under the real name. A file that
// does not verify is uploaded again from the start (bounded). A board that does not answer, or
// a full flash, ends the upload with an error that says so and what to do.
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { walk } from "./files.mjs";

/** Bytes of file data per line: 2 hex characters each, inside NodeMCU's 255-character line. */
export const CHUNK = 100;

/** Adler-32's two sums (a, b), as the board computes them. */
export function adler(buf) {
  let a = 1;
  let b = 0;
  for (const c of buf) {
    a = (a + c) % 65521;
    b = (b + a) % 65521;
  }
  return [a, b];
}

/**
 * The helpers, one REPL line each. `__o` opens files on both firmwares (ESP8266 `file.open`,
 * ESP32 `io.open`); `__w(n, hex)` writes line n once; `__v(name)` prints size and sums.
 */
export const PRELUDE = [
  `__o=file.open or io.open`,
  `__n=0 __f=nil`,
  `function __s(name) file.remove(name..".up") __f=__o(name..".up","w") __n=0 print(__f and "u-open" or "u-noopen") end`,
  `function __w(n,h) if n==__n+1 then if __f:write((h:gsub("..",function(x) return string.char(tonumber(x,16)) end)))==nil then print("u-full") return end __n=n end print("u"..__n) end`,
  `function __c() if __f then __f:close() __f=nil end print("u-closed") end`,
  `__A,__B,__S=1,0,0`,
  `function __a(c) for i=1,#c do __A=(__A+c:byte(i))%65521 __B=(__B+__A)%65521 end __S=__S+#c end`,
  `function __v(name) local h=__o(name..".up","r") __A,__B,__S=1,0,0 while h do local c=h:read(240) if not c then break end __a(c) end if h then h:close() end print("u-v "..__S.." "..__A.." "..__B) end`,
  `function __r(name) if file.exists(name..".up") then file.remove(name) file.rename(name..".up",name) end print(file.exists(name) and "u-renamed" or "u-norename") end`,
  // a stale compiled copy would be loaded instead of the new source (require prefers .lc)
  `function __x(name) local lc=name:gsub("%.lua$",".lc") if lc~=name then file.remove(lc) end print("u-x") end`,
  `function __fs() local r=file.fsinfo() print("u-free "..r) end`,
  // bytecode compiled on the board itself (its number format), then the source removed
  `function __k(name) local lc=name:gsub("%.lua$",".lc") node.compile(name) if file.exists(lc) then file.remove(name) end print(file.exists(lc) and "u-k" or "u-nok") end`,
];

class UploadError extends Error {}

/** NodeMCU's REPL takes lines of at most 255 characters. */
export const LINE_MAX = 255;
for (const l of PRELUDE) {
  if (`${l} print("u-ok")`.length > LINE_MAX) throw new Error(`nodemcu-upload: a helper line is over ${LINE_MAX} characters: ${l}`);
}
if (`__w(99999,"${"ff".repeat(CHUNK)}")`.length > LINE_MAX) throw new Error("nodemcu-upload: CHUNK is too large for one REPL line");

/**
 * A line-oriented link to the REPL: write a line, then wait (bounded) for an output line that
 * matches. `io` is { write(text), onData(fn(string)), close() }.
 */
function replLink(io, timeoutMs) {
  let buf = "";
  const lines = [];
  let waiter = null;
  io.onData((d) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      lines.push(buf.slice(0, nl).replace(/\r$/, "").replace(/^(> )+/, ""));
      buf = buf.slice(nl + 1);
    }
    if (waiter) waiter();
  });
  const take = (test) => {
    const i = lines.findIndex(test);
    if (i < 0) return undefined;
    const l = lines[i];
    lines.splice(0, i + 1);
    return l;
  };
  return {
    /** Sends `line` and resolves with the first reply line matching `test`, or undefined after the timeout. */
    async ask(line, test, ms = timeoutMs) {
      lines.length = 0;
      io.write(line + "\r\n");
      const deadline = Date.now() + ms;
      for (;;) {
        const got = take(test);
        if (got !== undefined) return got;
        const left = deadline - Date.now();
        if (left <= 0) return undefined;
        await new Promise((r) => {
          const t = setTimeout(r, Math.min(left, 50));
          waiter = () => {
            clearTimeout(t);
            waiter = null;
            r();
          };
        });
      }
    },
    /**
     * ask(), sent again after each timeout (at most `tries` times): for commands that do the
     * same thing when run twice, so a lost or garbled line costs only a resend.
     */
    async askAgain(line, test, tries = 3) {
      for (let i = 0; i < tries; i++) {
        const r = await this.ask(line, test);
        if (r !== undefined) return r;
      }
      return undefined;
    },
    /** Sends a line without waiting for anything. */
    send(line) {
      lines.length = 0;
      io.write(line + "\r\n");
    },
    /** Everything the board said since the last ask (for error messages). */
    recent: () => lines.slice(-5).join(" | "),
  };
}

/** Checks the board answers at its REPL, then defines the helpers there. */
async function prepare(link, timeoutMs) {
  // The board answers? (a running app must have handed the console back first)
  const hello = await link.askAgain("print(\"u-hello\")", (l) => l === "u-hello", 2);
  if (hello === undefined) {
    throw new UploadError(`the board does not answer at the Lua prompt (no reply within ${timeoutMs} ms); fix: check the port and the baud rate (NodeMCU: 115200), reset the board, or hand the console back to the REPL if an app holds it`);
  }
  for (const l of PRELUDE) {
    if ((await link.askAgain(`${l} print("u-ok")`, (x) => x === "u-ok")) === undefined) {
      throw new UploadError(`the board did not accept the uploader's helper functions (said: ${link.recent()})`);
    }
  }
}

/** Writes one file ({ name, data }) and verifies it; its report line. Throws UploadError. */
async function sendFile(link, f, opts) {
  const retries = opts.retries ?? 3;
  const log = opts.log ?? (() => {});
  let resent = 0;
  for (let attempt = 1; attempt <= retries; attempt++) {
    log(`${f.name}: ${f.data.length} bytes, attempt ${attempt}`);
    if ((await link.askAgain(`__s(${JSON.stringify(f.name)})`, (l) => l === "u-open" || l === "u-noopen")) !== "u-open") {
      throw new UploadError(`${f.name}: the board cannot create ${f.name}.up (said: ${link.recent()}); fix: check the file system (file.format() erases it)`);
    }
    const lines = Math.ceil(f.data.length / CHUNK);
    for (let n = 1; n <= lines; n++) {
      const hex = f.data.subarray((n - 1) * CHUNK, n * CHUNK).toString("hex");
      let acked = false;
      for (let tries = 0; tries < 5 && !acked; tries++) {
        if (tries > 0) resent++;
        const r = await link.ask(`__w(${n},"${hex}")`, (l) => l === `u${n}` || l === "u-full");
        if (r === "u-full") {
          const free = await link.askAgain("__fs()", (l) => l.startsWith("u-free "));
          throw new UploadError(`${f.name}: the flash is full after ${(n - 1) * CHUNK} of ${f.data.length} bytes (${free ? free.slice(7) + " bytes free" : "free space unknown"}); fix: remove files from the board (file.remove), or upload fewer or smaller files`);
        }
        acked = r !== undefined;
      }
      if (!acked) {
        throw new UploadError(`${f.name}: the board stopped acknowledging at line ${n} of ${lines} (said: ${link.recent()}); fix: check the cable and the baud rate, then upload again`);
      }
    }
    if ((await link.askAgain("__c()", (l) => l === "u-closed")) === undefined) {
      throw new UploadError(`${f.name}: closing the file on the board failed (said: ${link.recent()})`);
    }
    const v = await link.askAgain(`__v(${JSON.stringify(f.name)})`, (l) => l.startsWith("u-v "));
    const [a, b] = adler(f.data);
    const want = `u-v ${f.data.length} ${a} ${b}`;
    if (v === want) {
      if ((await link.askAgain(`__r(${JSON.stringify(f.name)})`, (l) => l === "u-renamed" || l === "u-norename")) !== "u-renamed") {
        throw new UploadError(`${f.name}: the verified file could not be renamed into place (said: ${link.recent()})`);
      }
      await link.askAgain(`__x(${JSON.stringify(f.name)})`, (l) => l === "u-x");
      if (opts.compile === true && f.name.endsWith(".lua") && f.name !== "init.lua") {
        if ((await link.askAgain(`__k(${JSON.stringify(f.name)})`, (l) => l === "u-k" || l === "u-nok", 2)) !== "u-k") {
          throw new UploadError(`${f.name}: node.compile did not produce ${f.name.replace(/\.lua$/, ".lc")} (said: ${link.recent()}); fix: free heap on the board (compile needs RAM), or flash without bytecode`);
        }
      }
      return { name: f.name, bytes: f.data.length, attempts: attempt, resent };
    }
    const free = await link.askAgain("__fs()", (l) => l.startsWith("u-free "));
    if (free !== undefined && Number(free.slice(7)) < f.data.length) {
      throw new UploadError(`${f.name}: the flash is full (${free.slice(7)} bytes free for ${f.data.length}); fix: remove files from the board (file.remove), or upload fewer or smaller files`);
    }
    log(`${f.name}: verification failed (board ${v ?? "no answer"}, expected ${want}); uploading it again`);
  }
  throw new UploadError(`${f.name}: did not verify after ${retries} attempts (size or checksum differ on the board); fix: check the cable and lower the baud rate`);
}

/**
 * Uploads `files` ([{ name, data: Buffer }]) through `io` (see replLink). Returns a report
 * { files: [{ name, bytes, attempts, resent }] }; throws UploadError saying what went wrong.
 */
export async function uploadFiles(io, files, opts = {}) {
  const timeoutMs = opts.timeoutMs ?? 2000;
  const link = replLink(io, timeoutMs);
  await prepare(link, timeoutMs);
  const report = [];
  for (const f of files) report.push(await sendFile(link, f, opts));
  return { files: report };
}

/**
 * REPL lines of the LFS flash, each under LINE_MAX. `__lfs` prints the modules in LFS, sorted;
 * `__aside` keeps the old init.lua as init.old (resent safely: it does nothing the second time),
 * so that the restart after the reload comes back at the REPL, not in an app that takes the
 * console; `__back` puts it back after a failure; `__tidy` removes the image file and copies of
 * the image's modules left on the file system by an earlier flash of separate files.
 */
export const LFS_LINES = [
  `function __lfs() local l=node.LFS.list() or {} table.sort(l) print("u-lfs "..table.concat(l," ")) end`,
  `function __aside() if file.exists("init.lua") then file.remove("init.old") file.rename("init.lua","init.old") end print("u-aside") end`,
  `function __back() if file.exists("init.old") and not file.exists("init.lua") then file.rename("init.old","init.lua") end print("u-back") end`,
  `function __tidy() file.remove("lfs.img") for _,m in ipairs(node.LFS.list() or {}) do file.remove(m..".lua") file.remove(m..".lc") end print(file.exists("lfs.img") and "u-kept" or "u-tidy") end`,
];
for (const l of LFS_LINES) {
  if (`${l} print("u-ok")`.length > LINE_MAX) throw new Error(`nodemcu-upload: an LFS helper line is over ${LINE_MAX} characters: ${l}`);
}

/** Defines the LFS helpers on the board. */
async function prepareLfs(link) {
  for (const l of LFS_LINES) {
    if ((await link.askAgain(`${l} print("u-ok")`, (x) => x === "u-ok")) === undefined) {
      throw new UploadError(`the board did not accept the uploader's LFS helper functions (said: ${link.recent()})`);
    }
  }
}

/**
 * Flashes an LFS board through `io`: `image` (lfs.img, a Buffer) written and verified as a file,
 * loaded with node.LFS.reload (the board restarts), the modules in LFS compared with `modules`
 * (the image's), the image file removed, then `init` (init.lua) written and verified last.
 * The old init.lua is set aside during the reload, so the board comes back at the REPL; a
 * refused image puts it back. `restartMs` bounds the wait for the board after the reload (a
 * board writes the image to flash and restarts, twice on Lua 5.3). Returns { files, modules,
 * restartMs }; throws UploadError.
 */
export async function flashLfs(io, { image, init, modules }, opts = {}) {
  const timeoutMs = opts.timeoutMs ?? 2000;
  const restartMs = opts.restartMs ?? 60000;
  const log = opts.log ?? (() => {});
  const link = replLink(io, timeoutMs);
  await prepare(link, timeoutMs);
  await prepareLfs(link);
  const files = [await sendFile(link, { name: "lfs.img", data: image }, { ...opts, compile: false })];
  if ((await link.askAgain("__aside()", (l) => l === "u-aside")) === undefined) {
    throw new UploadError(`init.lua could not be set aside for the reload (said: ${link.recent()})`);
  }
  const want = [...modules].sort().join(" ");
  let restartedMs = 0;
  // A reload line lost on the wire looks like a board back at once with the old LFS: sent again
  // (bounded); a board that did restart has the image's modules.
  for (let attempt = 1; ; attempt++) {
    log(`lfs.img: node.LFS.reload${attempt > 1 ? ` (attempt ${attempt})` : ""}`);
    const t0 = Date.now();
    // Sent once: on success the board restarts and never prints the answer. Then "u-up" is asked
    // until the board answers: lines that reach it while it writes the image and restarts are
    // lost, and a refused image is answered first (the REPL runs lines in order).
    link.send(`print("u-reload "..tostring(node.LFS.reload("lfs.img")))`);
    let back;
    while (back === undefined && Date.now() - t0 < restartMs) {
      back = await link.ask(`print("u-up")`, (l) => l === "u-up" || l.startsWith("u-reload "), 1000);
    }
    if (back === undefined || back.startsWith("u-reload ")) {
      const why = back === undefined ? `the board did not answer within ${restartMs} ms of node.LFS.reload` : `node.LFS.reload refused lfs.img: ${back.slice("u-reload ".length)}`;
      if (back !== undefined) await link.askAgain("__back()", (l) => l === "u-back");
      throw new UploadError(`${why}; fix: build the image with the luac.cross of this board's firmware (Lua 5.1 or 5.3, the same number type), ` +
        `check that the firmware has an LFS region at least as large as the image (make BOARD=<name> prints its size)` +
        `${back === undefined ? ", and reset the board: its old init.lua is kept as init.old" : ""}`);
    }
    restartedMs = Date.now() - t0;
    log(`lfs.img: the board answers again after ${restartedMs} ms`);
    // the helpers went with the restart
    await prepare(link, timeoutMs);
    await prepareLfs(link);
    const got = await link.askAgain("__lfs()", (l) => l.startsWith("u-lfs"));
    const has = got === undefined ? undefined : got.slice("u-lfs".length).trim();
    if (has === want) break;
    if (attempt < 2) continue;
    await link.askAgain("__back()", (l) => l === "u-back");
    throw new UploadError(`after node.LFS.reload the board's LFS ${has === undefined ? "did not answer node.LFS.list()" : `holds ${has ? has.split(" ").length : 0} modules (${has.slice(0, 200) || "none"}), not the image's ${modules.length}`}; ` +
      `fix: check that the firmware has LFS (node.LFS) and flash again`);
  }
  if ((await link.askAgain("__tidy()", (l) => l === "u-tidy" || l === "u-kept")) !== "u-tidy") {
    throw new UploadError(`lfs.img could not be removed after the reload (said: ${link.recent()})`);
  }
  files.push(await sendFile(link, { name: "init.lua", data: init }, { ...opts, compile: false }));
  await link.askAgain(`file.remove("init.old") print("u-old")`, (l) => l === "u-old");
  return { files, modules: modules.length, restartMs: restartedMs };
}

/** The files with init.lua moved last: a reset part-way through does not boot a half-uploaded set. */
export function initLast(files) {
  return [...files].sort((a, b) => (a.name === "init.lua" ? 1 : 0) - (b.name === "init.lua" ? 1 : 0));
}

/** `io` over a serialport path. */
async function serialIo(portPath, baud) {
  const { SerialPort } = await import("serialport");
  const sp = new SerialPort({ path: portPath, baudRate: baud, autoOpen: false });
  await new Promise((resolve, reject) => sp.open((e) => (e ? reject(new UploadError(`cannot open ${portPath}: ${e.message}; fix: check the port name and that nothing else holds it`)) : resolve())));
  return {
    write: (t) => sp.write(t),
    onData: (fn) => sp.on("data", (d) => fn(d.toString("latin1"))),
    close: () => new Promise((r) => sp.close(() => r())),
  };
}

/** Flashes an LFS board at `portPath` (see flashLfs). */
export async function uploadLfs(portPath, what, opts = {}) {
  const io = await serialIo(portPath, opts.baud ?? 115200);
  try {
    return await flashLfs(io, what, opts);
  } finally {
    await io.close();
  }
}

/** Uploads files to the board at `portPath`. */
export async function upload(portPath, files, opts = {}) {
  const io = await serialIo(portPath, opts.baud ?? 115200);
  try {
    return await uploadFiles(io, files, opts);
  } finally {
    await io.close();
  }
}


if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const opt = (name) => {
    const i = args.indexOf(name);
    if (i < 0) return undefined;
    const v = args[i + 1];
    args.splice(i, 2);
    return v;
  };
  const port = opt("--port");
  const baud = Number(opt("--baud") ?? "115200");
  const dir = opt("--dir");
  let files = args.map((f) => ({ name: path.basename(f), data: fs.readFileSync(f) }));
  if (dir !== undefined) {
    // a packed board (make BOARD=<name>): flat module names that fit SPIFFS
    const lua = walk(dir).filter((f) => f.endsWith(".lua"));
    const nested = lua.find((f) => path.relative(dir, f).includes(path.sep));
    if (nested !== undefined) {
      console.error(`upload: ${nested} is in a subdirectory; SPIFFS has none: upload a packed board (make BOARD=<name>, then --dir dist/boards/<name>)`);
      process.exit(2);
    }
    files = files.concat(lua.map((f) => ({ name: path.basename(f), data: fs.readFileSync(f) })));
  }
  files = initLast(files);
  if (port === undefined || files.length === 0) {
    console.error("usage: nodemcu-upload.mjs --port /dev/ttyUSB0 [--baud 115200] [--dir DIR] [files…]");
    process.exit(2);
  }
  upload(port, files, { baud, log: (l) => console.log(l) }).then((r) => {
    for (const f of r.files) console.log(`uploaded ${f.name}: ${f.bytes} bytes, verified${f.attempts > 1 ? ` (attempt ${f.attempts})` : ""}${f.resent ? `, ${f.resent} line(s) resent` : ""}`);
  }, (e) => {
    console.error(`upload: ${e.message}`);
    process.exit(1);
  });
}
