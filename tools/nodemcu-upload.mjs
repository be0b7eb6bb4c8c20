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
    /** Everything the board said since the last ask (for error messages). */
    recent: () => lines.slice(-5).join(" | "),
  };
}

/**
 * Uploads `files` ([{ name, data: Buffer }]) through `io` (see replLink). Returns a report
 * { files: [{ name, bytes, attempts, resent }] }; throws UploadError saying what went wrong.
 */
export async function uploadFiles(io, files, opts = {}) {
  const timeoutMs = opts.timeoutMs ?? 2000;
  const retries = opts.retries ?? 3;
  const log = opts.log ?? (() => {});
  const link = replLink(io, timeoutMs);
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
  const report = [];
  for (const f of files) {
    let done = false;
    let resent = 0;
    for (let attempt = 1; attempt <= retries && !done; attempt++) {
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
        done = true;
        report.push({ name: f.name, bytes: f.data.length, attempts: attempt, resent });
      } else {
        const free = await link.askAgain("__fs()", (l) => l.startsWith("u-free "));
        if (free !== undefined && Number(free.slice(7)) < f.data.length) {
          throw new UploadError(`${f.name}: the flash is full (${free.slice(7)} bytes free for ${f.data.length}); fix: remove files from the board (file.remove), or upload fewer or smaller files`);
        }
        log(`${f.name}: verification failed (board ${v ?? "no answer"}, expected ${want}); uploading it again`);
      }
    }
    if (!done) throw new UploadError(`${f.name}: did not verify after ${retries} attempts (size or checksum differ on the board); fix: check the cable and lower the baud rate`);
  }
  return { files: report };
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
