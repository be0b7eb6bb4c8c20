import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { LINE_MAX, LineConsole, commandTable, type Command, type Serial } from "../firmware/console/line";
import { disposeContext, runBundle, runScript, serialInput } from "../host-sim/espruino/standin";
// @ts-expect-error: a plain .mjs module of the tools, without type declarations
import { loadProfile, packBoard } from "../tools/boards.mjs";
import { boardMissing } from "./harness/boards";
import { runLua } from "./harness/lua";
import { needs } from "./harness/needs";
import { DIST, runtimes, type RuntimeName } from "./harness/runtimes";
import { until } from "./harness/wait";

// The serial console (firmware/console/line.ts): one source; its Espruino adapter in the built
// console.js on the Espruino stand-in, its NodeMCU adapter in the packed petrel_console on the
// NodeMCU stand-ins (lua51, lua53, fengari), each handing the line to the REPL and taking it back.

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A serial line on the host: what the console wrote, and whether it holds the line. */
function fakeSerial() {
  const s = { out: "", held: false, chars: undefined as ((t: string) => void) | undefined };
  const serial: Serial = {
    take: (fn) => {
      s.held = true;
      s.chars = fn;
    },
    release: () => {
      s.held = false;
      s.chars = undefined;
    },
    write: (t) => {
      s.out += t;
    },
  };
  return { s, serial };
}

const COMMANDS: Command[] = [
  { name: "ping", help: "WORD  answers pong WORD", run: (args, say) => say(`pong ${args.join("|")}`) },
  { name: "boom", help: " raises an error", run: () => {
    throw new Error("sensor on fire");
  } },
];

/** The console's output as lines, without the prompt's echo noise. */
const linesOf = (out: string) => out.split("\r\n");

describe("the serial console (shared code, on the host)", () => {
  it("takes the line, echoes, runs commands with their words, and answers help, unknown and failing commands", () => {
    const { s, serial } = fakeSerial();
    const c = new LineConsole(serial, commandTable(COMMANDS), "back()");
    c.start();
    expect(s.held).toBe(true);
    s.chars!("ping  a   b\rnope\r\nboom\rhelp\n");
    expect(linesOf(s.out)).toEqual([
      "console: type help for the commands, repl to hand the line back to the REPL",
      "petrel> ping  a   b",
      "pong a|b",
      "petrel> nope",
      'error: unknown command "nope"; type help for the list',
      "petrel> boom",
      "error: boom failed: Error: sensor on fire",
      "petrel> help",
      "help  lists the commands",
      "ping WORD  answers pong WORD",
      "boom  raises an error",
      "repl  hands the serial line back to the REPL (back() takes it again)",
      "petrel> ",
    ]);
  });

  it("typed in pieces: backspace and DEL erase, Ctrl-C drops the line, CR LF is one Enter", () => {
    const { s, serial } = fakeSerial();
    const c = new LineConsole(serial, commandTable(COMMANDS), "back()");
    c.start();
    for (const ch of "pinx\x7fg\bg z\r\n") s.chars!(ch);
    s.chars!("ping dropped\x03");
    s.chars!("\r");
    const lines = linesOf(s.out);
    expect(lines).toContain("pong z");
    expect(lines.filter((l) => l.startsWith("pong"))).toEqual(["pong z"]);
    expect(s.out).toContain("x\b \bg\b \bg z"); // the erasures echoed
    expect(lines.filter((l) => l === "petrel> " || l === "petrel> petrel> ").length).toBeGreaterThan(0);
  });

  it(`a line over ${LINE_MAX} characters is refused whole and nothing runs; the next line works`, () => {
    const { s, serial } = fakeSerial();
    let ran = 0;
    const c = new LineConsole(serial, commandTable([{ name: "x", help: "", run: () => void ran++ }]), "back()");
    c.start();
    s.chars!(`x ${"y".repeat(LINE_MAX * 3)}\r`);
    expect(ran).toBe(0);
    expect(s.out).toContain(`error: the line is over ${LINE_MAX} characters; nothing was run. Fix: type a shorter line`);
    expect(s.out.length).toBeLessThan(LINE_MAX + 400); // the echo stops at the limit
    s.chars!("x\r");
    expect(ran).toBe(1);
  });

  it("repl hands the line back (nothing more is read, no prompt); start takes it again", () => {
    const { s, serial } = fakeSerial();
    const c = new LineConsole(serial, commandTable(COMMANDS), "back()");
    c.start();
    const chars = s.chars!;
    chars("repl\rping lost\r");
    expect(s.held).toBe(false);
    expect(c.holds()).toBe(false);
    expect(s.out).toContain("console: the serial line is the REPL's now; back() (or a reset) brings the console back\r\n");
    expect(s.out.endsWith("petrel> ")).toBe(false);
    expect(s.out).not.toContain("pong");
    c.start();
    expect(s.held).toBe(true);
    s.chars!("ping again\r");
    expect(s.out).toContain("pong again");
  });

  it("collect mode: lines go to the collector (echoed as * when secret) until it says done; Ctrl-C or an over-long line ends it", () => {
    const { s, serial } = fakeSerial();
    const c = new LineConsole(serial, commandTable(COMMANDS), "back()");
    c.start();
    const got: string[] = [];
    c.collect((l) => {
      got.push(l);
      return l === "END";
    }, true);
    s.out = "";
    s.chars!("ping hidden\rEND\rping shown\r");
    expect(got).toEqual(["ping hidden", "END"]);
    expect(s.out).not.toContain("pong hidden");
    expect(s.out).not.toContain("ping hidden");
    expect(s.out).toContain("***********");
    expect(s.out).toContain("pong shown");
    // Ctrl-C leaves collect mode: the next line is a command again
    c.collect((l) => got.push(l) < 0, false);
    s.chars!("\x03ping after\r");
    expect(got).toEqual(["ping hidden", "END"]);
    expect(s.out).toContain("pong after");
    // a line over LINE_MAX ends it too, with the refusal
    c.collect((l) => got.push(l) < 0, false);
    s.chars!("x".repeat(LINE_MAX + 1) + "\rping last\r");
    expect(got).toEqual(["ping hidden", "END"]);
    expect(s.out).toContain("pong last");
  });

  it("print: a program's line above the prompt, the typed part drawn again; plain while a command runs or after repl", () => {
    const { s, serial } = fakeSerial();
    let con: LineConsole | undefined;
    const c = new LineConsole(serial, commandTable([{ name: "log", help: "", run: (_a, say) => {
      con!.print("from inside");
      say("done");
    } }]), "back()");
    con = c;
    c.start();
    s.chars!("pi");
    s.out = "";
    c.print("a log line");
    expect(s.out).toBe("\ra log line\r\npetrel> pi");
    s.chars!("\x03log\r");
    expect(s.out).toContain("from inside\r\ndone\r\n");
    c.feed("repl\r");
    s.out = "";
    c.print("later");
    expect(s.out).toBe("later\r\n");
    expect(c.keys).toBeGreaterThan(0);
  });
});

describe("the serial console on the Espruino stand-in (dist/espruino/console.js)", () => {
  it("moves the REPL to LoopbackA while it holds Serial1; repl moves it home; petrelConsole() takes it again", () => {
    const printed: string[] = [];
    const storageDir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-con-"));
    dirs.push(storageDir);
    const ctx = runBundle(path.join(DIST, "espruino/console-test.js"), { print: (l) => printed.push(l), storageDir });
    try {
      runScript(ctx, `var c = PetrelConsole.serialConsole([{ name: "ping", help: "WORD  answers", run: function (a, say) { say("pong " + a[0]); } }]); c.start();`);
      expect(runScript(ctx, "E.getConsole()")).toBe("LoopbackA");
      expect(serialInput(ctx, "ping one\r")).toBe(true);
      expect(printed).toContain("pong one");
      expect(serialInput(ctx, "repl\r")).toBe(true);
      expect(printed).toContain("console: the serial line is the REPL's now; petrelConsole() (or a reset) brings the console back");
      expect(runScript(ctx, "E.getConsole()")).toBe("Serial1");
      expect(serialInput(ctx, "ping two\r")).toBe(false); // the REPL's now: the stand-in hands it to the caller
      runScript(ctx, "petrelConsole()");
      expect(serialInput(ctx, "ping three\r")).toBe(true);
      expect(printed).toContain("pong three");
      expect(printed).not.toContain("pong two");
    } finally {
      disposeContext(ctx);
    }
  });
});

const realWhy = runtimes["espruino-real"].missing();
describe.skipIf(realWhy !== null)(`the serial console on a real Espruino Linux binary${realWhy ? ` (skipped: ${realWhy})` : ""}`, () => {
  it("holds the console device (USB here), hands it to the REPL with repl, and takes it again with petrelConsole()", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-con-real-"));
    dirs.push(dir);
    fs.writeFileSync(path.join(dir, "main.js"), fs.readFileSync(path.join(DIST, "espruino/console-test.js"), "latin1") +
      '\nvar c = PetrelConsole.serialConsole([{ name: "ping", help: "WORD  answers", run: function (a, say) { say("pong " + a[0]); } }]);' +
      "\nc.start();\nsetInterval(function () {}, 60000);\n", "latin1");
    const child = spawn(process.env.ESPRUINO as string, ["main.js"], { cwd: dir, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString("latin1").replace(/\r/g, "")));
    // one short line at a time, each after the answer to the last (the binary's stdin thread
    // races its event queue on long bursts of input)
    const type = async (line: string, answer: string) => {
      const from = out.length; // the answer to this line, not an earlier one
      child.stdin.write(`${line}\r`);
      await until(`"${answer}" after typing ${line}`, () => out.indexOf(answer, from) >= 0, 8000);
    };
    try {
      await until("the console's prompt", () => out.includes("petrel> "), 8000);
      await type("ping one", "\npong one\n");
      await type("nope", 'error: unknown command "nope"; type help for the list');
      await type("repl", "console: the serial line is the REPL's now; petrelConsole() (or a reset) brings the console back");
      await type('print("at the REPL " + (1 + 1))', "\nat the REPL 2\n");
      await type("petrelConsole()", "console: type help for the commands");
      await type("ping two", "\npong two\n");
    } finally {
      child.kill("SIGKILL");
    }
  });
});

describe("the serial console on the NodeMCU stand-in (petrel_console of a packed board)", () => {
  const RTS: Array<{ name: RuntimeName; exe: string; args: string[]; board: string; esp32: boolean }> = [
    { name: "lua51", exe: "lua5.1", args: [], board: "esp8266-nodemcu", esp32: false },
    { name: "lua53", exe: "lua5.3", args: [], board: "esp32-nodemcu", esp32: true },
    { name: "fengari", exe: process.execPath, args: [path.join(DIST, "node/host-sim/nodemcu/fengari-board.js")], board: "esp32-nodemcu", esp32: true },
  ];
  for (const rt of RTS) {
    const name = `${rt.name}: uart taken (no echo from the REPL), repl gives it back to the Lua REPL, petrel_console() takes it again`;
    needs(boardMissing(rt.name), name, async () => {
      const packed = await packBoard(loadProfile(rt.board), DIST, { lfs: false, library: true }); // every module a file, run from the directory
      const flash = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-con-"));
      dirs.push(flash);
      // a terminal's Enter; the stand-in reads stdin by lines, the console's delimiter is "\r"
      const input = ["ping one", "nope", "boom", "repl", 'print("from the REPL " .. (1 + 1))', "petrel_console()", "ping two", "halt"].join("\n") + "\n";
      const r = await runLua(rt.exe, rt.esp32, "console.lua", flash, { PETREL_LUA_DIST: packed.dir, PETREL_ENTRY: "petrel", STANDIN_REPL: "1" },
        20000, undefined, { args: rt.args, input });
      expect(r.code, r.stderr + r.out.join("\n")).toBe(0);
      const lines = r.out.map((l) => l.replace(/\r/g, ""));
      const at = (l: string) => lines.indexOf(l);
      expect(lines).toContain("pong one");
      expect(lines).toContain('error: unknown command "nope"; type help for the list');
      expect(lines.some((l) => /^error: boom failed: .*sensor on fire$/.test(l))).toBe(true);
      expect(at("console: the serial line is the REPL's now; petrel_console() (or a reset) brings the console back")).toBeGreaterThan(at("pong one"));
      expect(lines.some((l) => l.endsWith("from the REPL 2"))).toBe(true);
      expect(lines).toContain("pong two");
      expect(at("pong two")).toBeGreaterThan(lines.findIndex((l) => l.endsWith("from the REPL 2")));
    });
  }
});
