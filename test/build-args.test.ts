import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
// @ts-expect-error: a plain .mjs module of the tools, without type declarations
import { problems } from "../tools/check-args.mjs";
// @ts-expect-error: a plain .mjs module of the tools, without type declarations
import { cliCause } from "../tools/flash.mjs";
// @ts-expect-error: a plain .mjs module of the tools, without type declarations
import { STAMP_FILE, inputsHash, isCurrent, stageCurrent, stageHash } from "../tools/build-stamp.mjs";

// make's arguments are checked before any build (tools/check-args.mjs, run by the Makefile's
// check-board and check-flash), and a build whose inputs did not change is skipped
// (tools/build-stamp.mjs); both on folders made here, so the real dist/ is never touched.

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-args-"));
  dirs.push(d);
  return d;
}

describe("argument checks", () => {
  it("name an unknown board with the boards there are, a missing port with the serial ports there are", () => {
    const d = tmp();
    fs.mkdirSync(path.join(d, "boards"));
    fs.mkdirSync(path.join(d, "dev"));
    for (const b of ["esp32-espruino", "esp8266-nodemcu"]) fs.writeFileSync(path.join(d, "boards", `${b}.json`), "{}");
    const dirsOf = { boards: path.join(d, "boards"), dev: path.join(d, "dev") };
    expect(problems({ board: "esp9000-foo" }, dirsOf)).toEqual(['no board "esp9000-foo": BOARD takes one of esp32-espruino, esp8266-nodemcu']);
    expect(problems({ board: "esp32-espruino", port: path.join(d, "dev", "ttyUSB0") }, dirsOf)[0]).toMatch(/^no serial port .*ttyUSB0: nothing is connected there \(no \/dev\/ttyUSB\* or \/dev\/ttyACM\* now/);
    fs.writeFileSync(path.join(d, "dev", "ttyACM1"), "");
    expect(problems({ port: path.join(d, "dev", "ttyUSB0") }, dirsOf)[0]).toContain(`serial ports now: ${path.join(d, "dev", "ttyACM1")}`);
    expect(problems({ port: path.join(d, "dev", "ttyACM1") }, dirsOf)).toEqual([]);
    expect(problems({ port: "tcp://192.168.4.1:23" }, dirsOf)).toEqual([]);
    expect(problems({ port: "tcp://192.168.4.1" }, dirsOf)).toEqual(["PORT=tcp://192.168.4.1 is not tcp://host:port"]);
    expect(problems({ needBoard: true, needPort: true }, dirsOf)).toEqual([
      "BOARD is missing: it takes one of esp32-espruino, esp8266-nodemcu",
      `PORT is missing: the board's serial device, e.g. PORT=${path.join(d, "dev", "ttyACM1")} (serial ports now: ${path.join(d, "dev", "ttyACM1")}), or tcp://host:port`,
    ]);
  });

  it("make flash's tool leads with a missing port, before packing anything", () => {
    const port = path.join(tmp(), "ttyUSB9");
    const r = spawnSync(process.execPath, [path.resolve("tools/flash.mjs"), "--board", "esp32-espruino", "--port", port], { encoding: "utf8", timeout: 30000 });
    expect(r.status).toBe(1);
    expect(r.stderr.split("\n")[0].startsWith(`flash: no serial port ${port}: nothing is connected there (`)).toBe(true);
    const r2 = spawnSync(process.execPath, [path.resolve("tools/check-args.mjs"), "--board", "esp9000-foo", "--need-board"], { encoding: "utf8", timeout: 30000 });
    expect(r2.status).toBe(2);
    expect(r2.stderr).toContain('make: no board "esp9000-foo": BOARD takes one of esp32-espruino, esp32-nodemcu, esp8266-espruino, esp8266-nodemcu');
  });
});

describe("make flash's errors", () => {
  it("lead with the cause the espruino CLI names, with the fix", () => {
    const noPort = 'Espruino Command-line Tool 0.1.67\n-----------------------------------\n\nConnecting to \'/dev/ttyUSB0\'\nERROR: Port "/dev/ttyUSB0" not found\n';
    expect(cliCause(noPort)).toBe('Port "/dev/ttyUSB0" not found: nothing was written; fix: check PORT (ls /dev/ttyUSB* /dev/ttyACM*) and the cable');
    expect(cliCause("Error: Error: EACCES: permission denied, open '/dev/ttyUSB0'\n")).toMatch(/^EACCES: permission denied, open '\/dev\/ttyUSB0': nothing was written; fix: add yourself to the dialout group/);
    expect(cliCause("Connected\nsomething else went wrong\n")).toBeUndefined();
  });
});

describe("the Makefile", () => {
  // its copy in a folder of its own, with the real argument check and stand-ins for the steps
  // that install, build and flash (each says it ran), so no make runs in this checkout
  function fakeCheckout(): string {
    const d = tmp();
    fs.mkdirSync(path.join(d, "tools"));
    fs.cpSync(path.resolve("boards"), path.join(d, "boards"), { recursive: true });
    fs.copyFileSync(path.resolve("Makefile"), path.join(d, "Makefile"));
    fs.copyFileSync(path.resolve("tools/check-args.mjs"), path.join(d, "tools/check-args.mjs"));
    fs.writeFileSync(path.join(d, "tools/install-deps.sh"), "echo RAN deps\n");
    for (const f of ["build.mjs", "boards.mjs", "flash.mjs", "console.mjs"]) fs.writeFileSync(path.join(d, "tools", f), `console.log("RAN ${f}");\n`);
    return d;
  }
  const make = (d: string, ...args: string[]) => spawnSync("make", ["--no-print-directory", "-C", d, ...args], { encoding: "utf8", timeout: 30000 });

  it("refuses a wrong board or a missing port before installing or building anything", () => {
    const d = fakeCheckout();
    const board = make(d, "BOARD=esp9000-foo");
    expect(board.status).not.toBe(0);
    expect(board.stderr).toContain('make: no board "esp9000-foo": BOARD takes one of');
    expect(board.stdout).not.toContain("RAN");
    const port = path.join(d, "ttyUSB7");
    const flash = make(d, "flash", "BOARD=esp32-espruino", `PORT=${port}`);
    expect(flash.status).not.toBe(0);
    expect(flash.stderr).toContain(`make: no serial port ${port}: nothing is connected there`);
    expect(flash.stdout).not.toContain("RAN");
    const console_ = make(d, "console");
    expect(console_.stderr).toContain("make: PORT is missing");
    expect(console_.stdout).not.toContain("RAN console.mjs");
  });

  it("with good arguments goes on to install, build and flash", () => {
    const d = fakeCheckout();
    fs.writeFileSync(path.join(d, "ttyUSB7"), "");
    const flash = make(d, "flash", "BOARD=esp32-espruino", `PORT=${path.join(d, "ttyUSB7")}`);
    expect(flash.status, flash.stderr).toBe(0);
    expect(flash.stdout.trim().split("\n")).toEqual(["RAN deps", "RAN build.mjs", "RAN flash.mjs"]);
  });
});

describe("the build's stamp", () => {
  it("is current only for the same inputs with the outputs in place", () => {
    const root = tmp();
    for (const d of ["firmware/app", "test", "tools", "dist/node/host-sim", "dist/espruino", "dist/nodemcu", "dist/nodemcu-probe"]) fs.mkdirSync(path.join(root, d), { recursive: true });
    fs.writeFileSync(path.join(root, "firmware/app/node.ts"), "export const a = 1;\n");
    fs.writeFileSync(path.join(root, "tsconfig.json"), "{}");
    for (const f of ["dist/node/host-sim/sim.js", "dist/espruino/petrel.js", "dist/espruino/app.js"]) fs.writeFileSync(path.join(root, f), "");
    const dist = path.join(root, "dist");
    expect(isCurrent(root, dist)).toBe(false); // never built
    const h = inputsHash(root);
    fs.writeFileSync(path.join(dist, STAMP_FILE), h);
    expect(isCurrent(root, dist)).toBe(true);
    // docs and the README are not inputs
    fs.writeFileSync(path.join(root, "README.md"), "# changed\n");
    expect(isCurrent(root, dist)).toBe(true);
    // a source changed
    fs.writeFileSync(path.join(root, "firmware/app/node.ts"), "export const a = 2;\n");
    expect(isCurrent(root, dist)).toBe(false);
    fs.writeFileSync(path.join(root, "firmware/app/node.ts"), "export const a = 1;\n");
    expect(isCurrent(root, dist)).toBe(true);
    // a config changed, a file added
    fs.writeFileSync(path.join(root, "tsconfig.lua.json"), "{}");
    expect(isCurrent(root, dist)).toBe(false);
    fs.rmSync(path.join(root, "tsconfig.lua.json"));
    fs.writeFileSync(path.join(root, "test/new.test.ts"), "");
    expect(isCurrent(root, dist)).toBe(false);
    fs.rmSync(path.join(root, "test/new.test.ts"));
    // an output removed by hand
    expect(isCurrent(root, dist)).toBe(true);
    fs.rmSync(path.join(root, "dist/nodemcu"), { recursive: true });
    expect(isCurrent(root, dist)).toBe(false);
  });

  it("is kept per target: a change rebuilds only the targets that read it", () => {
    const root = tmp();
    for (const d of ["firmware/app", "host-sim", "test/probe", "test/fixtures/espruino", "tools", "dist/node/host-sim", "dist/espruino", "dist/nodemcu", "dist/nodemcu-probe"]) {
      fs.mkdirSync(path.join(root, d), { recursive: true });
    }
    const write = (f: string, text: string) => fs.writeFileSync(path.join(root, f), text);
    write("firmware/app/node.ts", "export const a = 1;\n");
    write("host-sim/sim.ts", "export const b = 1;\n");
    write("test/probe/entry.ts", "export const c = 1;\n");
    write("test/sim.test.ts", "");
    for (const f of ["dist/node/host-sim/sim.js", "dist/espruino/petrel.js", "dist/espruino/app.js"]) write(f, "");
    const dist = path.join(root, "dist");
    const stages = ["node", "lua", "espruino"];
    const current = () => stages.filter((st) => stageCurrent(root, dist, st));
    expect(current()).toEqual([]); // never built
    const stampAll = () => { for (const st of stages) write(`dist/.stamp-${st}`, stageHash(root, st)); };
    stampAll();
    expect(current()).toEqual(stages);
    // a test that is no target's source: every target kept (the type check and the guard still run)
    write("test/sim.test.ts", "// changed\n");
    expect(current()).toEqual(stages);
    // the simulator: only the Node build
    write("host-sim/sim.ts", "export const b = 2;\n");
    expect(current()).toEqual(["lua", "espruino"]);
    stampAll();
    // the probe: every target that runs it
    write("test/probe/entry.ts", "export const c = 2;\n");
    expect(current()).toEqual([]);
    stampAll();
    // an Espruino test fixture: the Espruino bundles only
    write("test/fixtures/espruino/console.ts", "");
    expect(current()).toEqual(["node", "lua"]);
    stampAll();
    // the firmware, or a tool: every target
    write("firmware/app/node.ts", "export const a = 2;\n");
    expect(current()).toEqual([]);
    stampAll();
    write("tools/x.mjs", "");
    expect(current()).toEqual([]);
    stampAll();
    // a target's output removed by hand: that target
    fs.rmSync(path.join(root, "dist/nodemcu-probe"), { recursive: true });
    expect(current()).toEqual(["node", "espruino"]);
  });
});
