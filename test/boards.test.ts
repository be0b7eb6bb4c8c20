import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
// @ts-expect-error: a plain .mjs module of the build tools, without type declarations
import { listBoards, loadProfile, packBoard, validateProfile } from "../tools/boards.mjs";
import { DIST, ROOT } from "./harness/runtimes";
// @ts-expect-error: a plain .mjs module of the tools, without type declarations
import { ALL_FEATURES, buildEspruinoApp } from "../tools/espruino-app.mjs";

// Board profiles: every one loads; a typo or a bad value is named with what is accepted; the
// byte budget fails the board's build clearly.

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A boards/ directory holding one profile: esp8266-nodemcu with `change` applied. */
function variant(change: (p: Record<string, unknown>) => void): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-boards-"));
  dirs.push(dir);
  const p = JSON.parse(fs.readFileSync(path.join(__dirname, "../boards/esp8266-nodemcu.json"), "utf8"));
  change(p);
  fs.writeFileSync(path.join(dir, "esp8266-nodemcu.json"), JSON.stringify(p));
  return dir;
}

const problems = (change: (p: Record<string, unknown>) => void): string => {
  try {
    loadProfile("esp8266-nodemcu", variant(change));
    return "";
  } catch (e) {
    return (e as Error).message;
  }
};

describe("board profiles", () => {
  it("the four boards of the matrix each have a valid profile", () => {
    expect(listBoards()).toEqual(expect.arrayContaining(["esp32-espruino", "esp32-nodemcu", "esp8266-espruino", "esp8266-nodemcu"]));
    for (const b of listBoards()) expect(loadProfile(b).name).toBe(b);
  });

  it("a misspelt field is named, with the fields that exist", () => {
    const m = problems((p) => {
      p.maxInflght = p.maxInflight;
      delete p.maxInflight;
    });
    expect(m).toContain("maxInflght is not a profile field; the fields here are name, chip, firmware");
    expect(m).toContain("maxInflight is missing: it takes an integer 1..65535");
  });

  it("a bad value names the field and the accepted values or range", () => {
    expect(problems((p) => (p.chip = "esp8285"))).toContain('chip is "esp8285": it takes one of "esp8266", "esp32"');
    expect(problems((p) => (p.maxPacket = 2.5))).toContain("maxPacket is 2.5: it takes an integer 64..268435455");
    expect(problems((p) => ((p.console as Record<string, unknown>).baud = 115201))).toContain("console.baud is 115201: it takes one of 9600");
    expect(problems((p) => ((p.pins as Record<string, unknown>).ledd = 2))).toContain("pins.ledd is not a profile field; the fields here are led, button");
  });

  it("fields that must agree are checked together", () => {
    expect(problems((p) => (p.runtime = "fengari"))).toContain('runtime is "fengari": for this firmware it takes one of lua51');
    expect(problems((p) => (p.lua = null))).toContain('lua is null: NodeMCU boards take "5.1" or "5.3", Espruino boards null');
    expect(problems((p) => (p.maxInboundPacket = 4096))).toContain("maxInboundPacket 4096 is more than maxPacket 512");
    // (this profile, esp8266-nodemcu, leaves mqtt5 out)
    expect(problems((p) => (p.protocol = 5))).toContain("protocol is 5: a board speaks MQTT 5.0 (protocol 5) exactly when its features have mqtt5 (features: qos2, failover, sleep, texts)");
    expect(problems((p) => (p.features = [...(p.features as string[]), "auth"]))).toContain("features has auth without mqtt5: auth is part of MQTT 5.0; add mqtt5 (and protocol 5) or leave auth out");
    expect(problems((p) => (p.protocol = 3))).toContain("protocol is 3: it takes one of 4, 5");
    expect(problems((p) => (p.name = "esp8266"))).toContain('name is "esp8266" but the file is esp8266-nodemcu.json');
    expect(problems((p) => {
      p.firmware = "espruino";
      p.lua = null;
      p.runtime = "espruino";
      (p.memory as Record<string, unknown>).unit = "jsvars";
    })).toContain("bytecode is true: only NodeMCU boards compile Lua to bytecode");
    expect(validateProfile(JSON.parse(fs.readFileSync(path.join(__dirname, "../boards/esp32-espruino.json"), "utf8")), "esp32-espruino.json")).toEqual([]);
  });

  it("an unknown board lists the boards there are", () => {
    expect(() => loadProfile("esp8266-nodmcu")).toThrow(`no board "esp8266-nodmcu": the boards are ${listBoards().join(", ")}`);
  });

  it("make BOARD=…: the artifact goes to dist/boards/<name>/ with its profile, and a build over the byte budget fails saying by how much", async () => {
    const p = loadProfile("esp8266-nodemcu");
    // the file-system layout (every module a file); the LFS image is test/nodemcu-lfs.test.ts's
    const r = await packBoard(p, DIST, { lfs: false });
    expect(r.files).toBeGreaterThan(20);
    // the sensor node; the library's entry (require "petrel") only when asked for
    expect(fs.existsSync(path.join(DIST, "boards/esp8266-nodemcu/app.lua"))).toBe(true);
    expect(fs.existsSync(path.join(DIST, "boards/esp8266-nodemcu/petrel.lua"))).toBe(false);
    await packBoard(p, DIST, { lfs: false, library: true });
    expect(fs.existsSync(path.join(DIST, "boards/esp8266-nodemcu/petrel.lua"))).toBe(true);
    expect(r.bytes).toBeLessThanOrEqual(p.artifactBytes);
    expect(JSON.parse(fs.readFileSync(path.join(DIST, "boards/esp8266-nodemcu/profile.json"), "utf8")).name).toBe("esp8266-nodemcu");
    const tight = { ...loadProfile("esp8266-espruino"), artifactBytes: 10000 };
    await expect(packBoard(tight, DIST)).rejects.toThrow(/esp8266-espruino: the espruino artifact is \d+ bytes, over the profile's artifactBytes budget of 10000 by \d+; fix:/);
  });

  it("a feature a profile leaves out is not in its artifact, and the console says so", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-features-"));
    try {
      const text = (files: Record<string, string>) => Object.values(files).map((f) => fs.readFileSync(f, "latin1")).join("\n");
      const all = text(await buildEspruinoApp(ROOT, path.join(dir, "all"), ALL_FEATURES));
      const none = text(await buildEspruinoApp(ROOT, path.join(dir, "none"), []));
      // failover's log line on leaving a fallback broker; sleep's before it sleeps
      for (const mark of ["trying the first broker again", "node: deep sleep for"]) {
        expect(all, mark).toContain(mark);
        expect(none, mark).not.toContain(mark);
      }
      expect(none.length, "the build without the three features is smaller").toBeLessThan(all.length - 1000);
      // what the console says on such a board: help, status, and the settings it refuses
      expect(none).toContain("left out of this board's build:");
      expect(none).toContain("this board's build leaves ");
      expect(none).toContain("QoS 2 is left out of this board's build");
      expect(all).not.toContain("QoS 2 is left out of this board's build");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
