import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { runBundle, runScript } from "../host-sim/espruino/standin";
// @ts-expect-error: a plain .mjs module of the tools, without type declarations
import { walk } from "../tools/files.mjs";
// @ts-expect-error: a plain .mjs module of the tools, without type declarations
import { ALL_FEATURES, buildEspruinoApp } from "../tools/espruino-app.mjs";
import { DIST, runtimes } from "./harness/runtimes";

// The shipped artifacts (not the probe): each exposes the same API, and loads where it runs.

const nodeApi = Object.keys(require(path.join(DIST, "node/firmware/targets/node/index.js"))).filter((k) => k !== "__esModule").sort();
/** Each board target adds its one platform builder to the shared API. */
const withPlatform = (name: string) => [...nodeApi, name].sort();
/** Espruino's also carries what its sensor-node app (dist/espruino/app.js) takes from it. */
const espruinoApi = [...withPlatform("espruinoPlatform"), "espruinoStorage", "elapsed"].sort();

/** A QoS 1 PUBLISH of "21.5" to "s/°C", id 7, encoded then decoded with the bundle's own API. */
const ESPRUINO_CHECK = `
var o = Petrel.port.bytes.out(64);
var n = Petrel.encodePublish(o, 64, "s/°C", "21.5", 1, false, false, 7);
var w = o.toWire();
var b = E.toUint8Array(w);
var d = new Petrel.Decoder(128);
d.feedChunk(b, 0);
print("api " + Object.keys(Petrel).sort().join(","));
print("packet " + n + " " + [].slice.call(b, 0, n).join(","));
print("decoded " + d.status + " " + d.packetId + " " + (d.topicText() === "s/°C") + " " + d.payloadLength);
`;
const EXPECTED_PACKET = "packet 15 50,13,0,5,115,47,194,176,67,0,7,50,49,46,53";

describe("shipped artifacts", () => {
  it("the Espruino bundle, in the stand-in, exposes every run-time export of the Node build and works", () => {
    const lines: string[] = [];
    const ctx = runBundle(path.join(DIST, "espruino/petrel.js"), { print: (l) => lines.push(l) });
    runScript(ctx, ESPRUINO_CHECK);
    expect(lines[0]).toBe(`api ${espruinoApi.join(",")}`);
    expect(lines[1]).toBe(EXPECTED_PACKET);
    expect(lines[2]).toBe("decoded 1 7 true 4");
  });

  it("the Espruino bundle loaded as a module fills `exports`", () => {
    const lines: string[] = [];
    const exportsObj: Record<string, unknown> = {};
    runBundle(path.join(DIST, "espruino/petrel.js"), { print: (l) => lines.push(l), globals: { exports: exportsObj } });
    expect(Object.keys(exportsObj).sort()).toEqual(espruinoApi);
  });

  const real = runtimes["espruino-real"].missing();
  it.skipIf(real !== null)(`the Espruino bundle on a real Espruino binary${real ? ` (skipped: ${real})` : ""}`, () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-art-"));
    fs.writeFileSync(path.join(dir, "t.js"), fs.readFileSync(path.join(DIST, "espruino/petrel.js"), "utf8") + ESPRUINO_CHECK);
    const out = execFileSync(process.env.ESPRUINO as string, ["t.js"], { cwd: dir, input: "", encoding: "latin1" }).replace(/\r/g, "");
    fs.rmSync(dir, { recursive: true, force: true });
    expect(out).toContain(`api ${espruinoApi.join(",")}`);
    expect(out).toContain(EXPECTED_PACKET);
    expect(out).toContain("decoded 1 7 true 4");
  });

  for (const [name, exe, bit] of [["lua51", "lua5.1", true], ["lua53", "lua5.3", false]] as const) {
    const missing = runtimes[name].missing();
    it.skipIf(missing !== null)(`the NodeMCU modules on ${exe} load alone (no probe) and export the same API (plus its platform builder)${missing ? ` (skipped: ${missing})` : ""}`, () => {
      const lua = [
        `package.path = ${JSON.stringify(path.join(DIST, "nodemcu/?.lua"))}`,
        bit ? `bit = require("bit")` : "",
        `debug = nil`,
        `local P = require("firmware.targets.nodemcu.index")`,
        `local keys = {}`,
        `for k in pairs(P) do keys[#keys + 1] = k end`,
        `table.sort(keys)`,
        `print(table.concat(keys, ","))`,
      ].join("\n");
      const r = spawnSync(exe, ["-e", lua], { encoding: "utf8" });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.trim().split(",").filter((k) => k !== "nodemcuPlatform")).toEqual(nodeApi);
    });
  }
});

/**
 * Byte budgets of the shipped artifacts: a change that grows one past its budget fails here, in
 * CI, and has to raise the budget on purpose (with the reason in its commit). The Espruino figure
 * is what `Storage` holds; the NodeMCU one what is uploaded to SPIFFS (before LFS or bytecode).
 */
// espruinoBundle 52,000 → 56,000: the slot-saving rewrite (tools/espruino-slim.mjs) adds about
// 4 KB of flash to save about 280 variable slots of RAM.
// espruinoBundle 56,000 → 57,000: held messages (session/held.ts, publish-refused) add about 300 bytes.
// nodemcuApp 56,500: the held messages' console command (app/held.ts, a lazy module of its own) took it over 56,000;
// 57,000: a command from the command topic that throws is answered, not let through to the client (app/node.ts runCommand).
// nodemcuLua 134,000 → 134,500: the reconnect policy as a module of its own (session/policy.ts, about 400 bytes with its comment).
// 135,000: the outbox's phase changes as its own methods (markSent, markReleaseSent, rewind), about 260 bytes.
// nodemcuLua 135,000 → 119,000 and nodemcuApp 57,000 → 50,000: the built Lua's comment lines stripped (tools/build.mjs).
// nodemcuApp 50,000 → 50,500: the settings keep only values that are not the defaults, the defaults
// as code (app/settings.ts schemaDefault, about 450 bytes): 300 bytes of heap and 37 Espruino slots fewer.
// 51,000: readings sent counted apart in status (app/commands.ts readingsSent) and the node's end
// callback kept in its sleep state, about 480 bytes.
// espruinoApp 60,500: the outbox's packed index (its four readers, about 470 bytes of flash) saves
// 2 slots per queued message and every slot of a drained outbox (docs/benchmarks.md).
// MQTT 5.0 (the mqtt5 feature, codec/mqtt5.ts) is budgeted apart: the library artifacts here carry
// every feature, and a board without mqtt5 must not pay for it. nodemcuLua counts the library
// without the feature's module (119,500: the decoder's and errors' 5.0 hooks and the encoders'
// shared helpers, about 300 bytes); espruinoApp is the sensor node built without mqtt5, and
// espruinoBundle is the library less what the same bundle weighs without the feature.
// The session at 5.0 (session/session5.ts, with codec/mqtt5.ts in the mqtt5 feature's budgets):
// espruinoBundle 57,000 → 57,600 and espruinoApp 60,500 → 61,100 for what stays when the feature
// is folded out (the client's level() and tell(), SUBACK codes read from one place, the outbox's
// rewriteAt, about 550 bytes); nodemcuLua 119,500 → 125,000: Lua has no fold, so the client's
// 5.0 branches (their texts are in session5) ride in every NodeMCU build, about 5.4 KB;
// nodemcuMqtt5 21,000 → 36,500 and espruinoMqtt5 5,500 → 21,000: the session's 5.0 (every
// reason code as an error with its fix, about 6 KB of text) and, now that the session uses
// them, the 5.0 encoders the Espruino app left out before.
// nodemcuApp 51,000 → 52,000: the sensor node at 5.0 (status's and diag's protocol lines, a
// refusal explained in the broker's words), about 1 KB that Lua keeps on 3.1.1 boards too.
// nodemcuApp 52,000 → 52,500, nodemcuMqtt5 36,500 → 38,500, espruinoMqtt5 21,000 → 22,000: topic
// aliases and the will delay (the client's alias table and the rewrite of a PUBLISH at send time,
// the will.delay setting). These measure dist/nodemcu, which has every feature; a board's pack
// folds away the branches of the features its profile leaves out (tools/lua-fold.mjs).
// espruinoBundle 57,600 → 57,700, nodemcuLua 125,000 → 127,000, nodemcuApp 52,500 → 53,000,
// espruinoApp 61,100 → 61,200, nodemcuMqtt5 38,500 → 40,500, espruinoMqtt5 22,000 → 23,000: a
// message's 5.0 properties handed to the program and a publish's sent (the handler's sixth
// argument, publish's props, binary values as a Wire), and the node's answer on a request's
// Response Topic with its Correlation Data. nodemcuLua counts the client's 5.0 branches, which a
// 3.1.1 board's pack folds away.
// nodemcuLua 127,000 → 128,000, nodemcuMqtt5 40,500 → 43,000, espruinoMqtt5 23,000 → 26,000:
// Message Expiry of the outbox's messages (each one's expiry kept by packet id, checked and
// brought down to what is left as it is sent, dropped unsent when past), and the DISCONNECT with
// a reason code this client sends when it closes for the broker's fault.
// nodemcuApp 53,000 → 53,500: the node's expiry setting (a reading's Message Expiry).
// espruinoBundle 57,700 → 58,400, nodemcuLua 128,000 → 130,000: the facade's 5.0 subscribe
// options (nl, rap, rh, a Subscription Identifier, each checked with its fix) and end's reason
// code, the requests' identifier carried above the QoS; espruinoApp 61,200 → 61,300 (end's will).
// nodemcuMqtt5 43,000 → 45,500 and espruinoMqtt5 26,000 → 27,000: the reason codes' texts moved
// to their own module (session/reasons, the `texts` feature, counted here with the 5.0 modules:
// a board without the feature packs none of it), Subscription Identifier Available honoured.
// Server Reference (CONNACK / DISCONNECT 0x9C, 0x9D: the server it names dialled once) adds
// about 1.4 KB to nodemcuMqtt5 (→ 47,500) and 1 KB to espruinoMqtt5 (→ 28,000).
// Enhanced authentication (session/auth5, the `auth` feature) adds about 3 KB to nodemcuMqtt5
// (→ 51,000) and 2 KB to espruinoMqtt5 (→ 30,000); none of the board profiles carries it yet.
// What stays of it in every build (the client's AUTH step before CONNACK, authMethod refused
// by a build without the feature, the options' types): espruinoBundle → 59,000, nodemcuLua →
// 131,000, espruinoApp → 61,500. Incoming topic aliases (the `aliasin` feature) and held
// messages kept in their 3.1.1 form at 5.0 leave their checks in every build: espruinoBundle →
// 59,500, nodemcuLua → 132,000, espruinoApp → 62,000. What the other brokers need (a request the
// broker closes the connection over given up, a PUBACK to QoS 2 taken as QoS 1, 3.1.1 after two
// 5.0 CONNECTs closed unanswered; docs/brokers.md): espruinoBundle → 61,000, nodemcuLua →
// 134,000, espruinoApp → 63,000, nodemcuMqtt5 → 51,500, espruinoMqtt5 → 30,500. A message in
// flight unanswered for two keepalives ends the connection (ack-timeout; a NATS cluster run left
// messages unacknowledged on a live link): espruinoBundle → 61,500, nodemcuLua → 135,000,
// espruinoApp → 63,500.
// espruinoApp 63,500 → 64,000: the Espruino app says on the serial line when its start stopped
// part-way (out of memory, which Espruino reports only on the REPL's loopback by then), about
// 400 bytes, and deletes its classes' prototype.constructor links after start (2 slots a class).
// espruinoApp 64,000 → 64,500: merged closure makers let go of their arguments array
// (tools/espruino-merge.mjs), about 170 bytes. nodemcuApp 53,500 → 54,000: a remote command runs
// from the scheduler once the read that brought it has unwound (Scheduler.later) and a set reads
// only its own line of the settings record, about 140 bytes.
const BUDGETS = { espruinoBundle: 61_500, nodemcuLua: 135_000, nodemcuApp: 54_000, espruinoApp: 64_500, espruinoLazy: 30_000,
  nodemcuMqtt5: 51_500, espruinoMqtt5: 30_500 };

/** The mqtt5 feature and the features only a 5.0 build has (the reason codes' texts, enhanced authentication). */
const MQTT5_FEATURES = ["mqtt5", "texts", "auth", "aliasin"];
/** Their NodeMCU modules (a board without the features does not pack them). */
const MQTT5_MODULES = ["codec/mqtt5.lua", "session/session5.lua", "session/reasons.lua", "session/auth5.lua", "session/alias5.lua"].map((m) => path.join(DIST, "nodemcu/firmware", m));
const isMqtt5 = (f: string) => MQTT5_MODULES.includes(f);

/** The sensor-node app's NodeMCU files: firmware/app and its entry (the board's module `app`). */
const isNodemcuApp = (f: string) => f.startsWith(path.join(DIST, "nodemcu/firmware/app") + path.sep) ||
  f === path.join(DIST, "nodemcu/firmware/targets/nodemcu/app.lua");

/** The Espruino app's resident bundle built without mqtt5, in bytes: built once for the tests that need it. */
let withoutMqtt5: Promise<number> | undefined;
function appWithoutMqtt5(): Promise<number> {
  if (withoutMqtt5 === undefined) {
    withoutMqtt5 = (async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-app-"));
      try {
        await buildEspruinoApp(path.resolve(DIST, ".."), dir, ALL_FEATURES.filter((f: string) => !MQTT5_FEATURES.includes(f)));
        return fs.statSync(path.join(dir, "app.js")).size;
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    })();
  }
  return withoutMqtt5;
}

describe("artifact byte budgets (CI gate)", () => {

  it(`the Espruino bundle is at most ${BUDGETS.espruinoBundle} bytes without mqtt5 (what the app's bundle weighs for it)`, async () => {
    const all = fs.statSync(path.join(DIST, "espruino/petrel.js")).size;
    const mqtt5 = fs.statSync(path.join(DIST, "espruino/app.js")).size - await appWithoutMqtt5();
    const n = all - mqtt5;
    console.log(`[artifacts] dist/espruino/petrel.js ${all} bytes, ${n} less mqtt5's ${mqtt5} (budget ${BUDGETS.espruinoBundle})`);
    expect(mqtt5).toBeGreaterThan(0);
    expect(n).toBeLessThanOrEqual(BUDGETS.espruinoBundle);
  });

  it(`the NodeMCU Lua modules are at most ${BUDGETS.nodemcuLua} bytes in all`, () => {
    // the library (client, console, boot guard); the sensor-node app (firmware/app) is its own budget
    const files = (walk(path.join(DIST, "nodemcu")) as string[]).filter((f) => f.endsWith(".lua") && !isNodemcuApp(f) && !isMqtt5(f));
    const n = files.reduce((s, f) => s + fs.statSync(f).size, 0);
    console.log(`[artifacts] dist/nodemcu ${files.length} files, ${n} bytes without mqtt5 (budget ${BUDGETS.nodemcuLua})`);
    expect(files.length).toBeGreaterThan(20);
    expect(n).toBeLessThanOrEqual(BUDGETS.nodemcuLua);
  });

  it(`the NodeMCU sensor-node app (firmware/app and its entry) is at most ${BUDGETS.nodemcuApp} bytes`, () => {
    const files = (walk(path.join(DIST, "nodemcu")) as string[]).filter((f) => f.endsWith(".lua") && isNodemcuApp(f));
    const n = files.reduce((s, f) => s + fs.statSync(f).size, 0);
    console.log(`[artifacts] NodeMCU app ${files.length} files, ${n} bytes (budget ${BUDGETS.nodemcuApp})`);
    expect(files.length).toBeGreaterThanOrEqual(5);
    expect(n).toBeLessThanOrEqual(BUDGETS.nodemcuApp);
  });

  it(`the NodeMCU mqtt5 modules (codec and session) are at most ${BUDGETS.nodemcuMqtt5} bytes`, () => {
    const n = MQTT5_MODULES.reduce((s, f) => s + fs.statSync(f).size, 0);
    console.log(`[artifacts] dist/nodemcu mqtt5.lua, session5.lua, reasons.lua, auth5.lua and alias5.lua ${n} bytes (budget ${BUDGETS.nodemcuMqtt5})`);
    expect(n).toBeLessThanOrEqual(BUDGETS.nodemcuMqtt5);
  });

  it(`the Espruino sensor node's resident bundle (app.js) without mqtt5 is at most ${BUDGETS.espruinoApp} bytes; mqtt5 adds at most ${BUDGETS.espruinoMqtt5}`, async () => {
    const all = fs.statSync(path.join(DIST, "espruino/app.js")).size;
    const n = await appWithoutMqtt5();
    console.log(`[artifacts] dist/espruino/app.js ${n} bytes without mqtt5 (budget ${BUDGETS.espruinoApp}), ${all} with it (+${all - n}, budget ${BUDGETS.espruinoMqtt5})`);
    expect(n).toBeLessThanOrEqual(BUDGETS.espruinoApp);
    expect(all - n).toBeLessThanOrEqual(BUDGETS.espruinoMqtt5);
  }, 60_000);

  it(`the Espruino sensor node's lazy modules (dist/espruino/app.<name>.js) are at most ${BUDGETS.espruinoLazy} bytes in all`, () => {
    const files = fs.readdirSync(path.join(DIST, "espruino")).filter((f) => /^app\.\w+\.js$/.test(f));
    const n = files.reduce((s, f) => s + fs.statSync(path.join(DIST, "espruino", f)).size, 0);
    console.log(`[artifacts] dist/espruino/app.<name>.js ${files.length} files, ${n} bytes (budget ${BUDGETS.espruinoLazy})`);
    expect(files.length).toBeGreaterThanOrEqual(2);
    expect(n).toBeLessThanOrEqual(BUDGETS.espruinoLazy);
  });
});
