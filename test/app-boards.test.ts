import { spawnSync } from "node:child_process";
import mqtt from "mqtt";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { APP_TARGETS, REBOOT_STATUS, type AppTarget } from "../host-sim/app-boards";
import { startBroker, type Broker } from "../host-sim/mosquitto";
import { AppBoard } from "./harness/app-board";
import { boardMissing } from "./harness/boards";
import { needs } from "./harness/needs";
import { until } from "./harness/wait";
import { watch } from "./harness/watch";

// The sensor node end to end on every runtime of the matrix (the Node build, the Espruino
// bundle on its stand-in, the NodeMCU build on Lua 5.1, Lua 5.3 and fengari), each a board
// process against a real mosquitto, configured through its serial console. What it publishes
// is watched by mosquitto_sub (not Petrel code); a canary password typed at the console must
// appear in no console output and nothing the broker delivers. Waits are bounded; no timing is
// asserted. Which runtimes ran is in the test names (a missing one is skipped saying why, and
// fails under CI=true).

const CANARY = "canary-Qz81-pass";
let broker: Broker;
const boards: AppBoard[] = [];
const stops: Array<() => void> = [];
const dirs: string[] = [];

beforeAll(async () => {
  broker = await startBroker();
});
afterAll(async () => {
  for (const b of boards) b.kill();
  for (const s of stops) s();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  await broker?.close();
});

function missing(t: AppTarget): string | null {
  return t === "node" ? null : boardMissing(t);
}

/**
 * A request at MQTT 5.0 from MQTT.js: `line` to `topic` with a Response Topic and Correlation
 * Data; the answer's payload and correlation data (hex), bounded.
 */
async function request5(topic: string, line: string, inbox: string, correlation: Buffer): Promise<{ payload: string; correlation: string }> {
  const m = mqtt.connect(`mqtt://127.0.0.1:${broker.port}`, { protocolVersion: 5, clientId: `req-${topic.split("/")[1]}-${process.pid}`, clean: true, reconnectPeriod: 0 });
  try {
    return await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no answer on ${inbox} within 10 s`)), 10000);
      m.on("error", reject);
      m.on("message", (_t, payload, packet) => {
        clearTimeout(t);
        resolve({ payload: payload.toString(), correlation: packet.properties?.correlationData?.toString("hex") ?? "none" });
      });
      m.once("connect", () => m.subscribe(inbox, { qos: 1 }, (err) => {
        if (err) reject(err);
        else m.publish(topic, line, { qos: 1, properties: { responseTopic: inbox, correlationData: correlation } });
      }));
    });
  } finally {
    await new Promise<void>((resolve) => m.end(true, {}, () => resolve()));
  }
}

function command(id: string, line: string): void {
  const r = spawnSync("mosquitto_pub", ["-h", "127.0.0.1", "-p", String(broker.port), "-t", `petrel/${id}/cmd`, "-q", "1", "-m", line]);
  expect(r.status).toBe(0);
}

describe("the sensor node on every runtime", () => {
  for (const target of APP_TARGETS) {
    needs(missing(target), `[${target}] console settings saved over a reboot, telemetry at QoS 1, retained status, commands, diag, a 5.0 request answered on its Response Topic with its Correlation Data, will after its delay (none on a quick reboot); no canary anywhere`, async () => {
      const id = `app-${target}`;
      const flash = fs.mkdtempSync(path.join(os.tmpdir(), `petrel-app-${target}-`));
      dirs.push(flash);
      const w = await watch(broker.port, `petrel/${id}/#`);
      stops.push(w.stop);
      const b = new AppBoard(target, { flash, chipId: "c1", defaults: { brokers: `127.0.0.1:${broker.port}`, "client.id": id } });
      boards.push(b);
      try {
        await scenario(b, id, w.lines);
      } catch (e) {
        throw new Error(`${(e as Error).message}\n--- ${target} board output ---\n${b.out.slice(-4000)}`);
      }
      // the runtimes side by side: each board has its own process, flash and client id, and most of
      // a run is waiting (the will's 10 s delay among it)
    }, 120000, true);
  }
});

async function scenario(b: AppBoard, id: string, seen: string[]): Promise<void> {
      const target = b.target;
      await b.waitFor(`node: connected as ${id}`);

      // the console: help, validation, a secret typed and masked, saved
      const help = await b.reply("help");
      for (const c of ["show", "get", "set", "unset", "save", "factory-reset", "status", "diag", "publish", "reboot", "repl"]) {
        expect(help.some((l) => l.startsWith(`${c} `)), `help lists ${c}`).toBe(true);
      }
      expect(await b.reply("set interval 0")).toEqual([expect.stringMatching(/^error: interval must be a whole number from 1 to .*; nothing was changed$/)]);
      expect(await b.reply("set qos 3")).toEqual([expect.stringMatching(/^error: qos .*; nothing was changed$/)]);
      expect(await b.reply("set interval 1")).toEqual(["interval = 1 (not saved yet)"]);
      expect(await b.reply("set qos 1")).toEqual(["qos = 1 (not saved yet)"]);
      expect(await b.reply("set mqtt.user node")).toEqual(["mqtt.user = node (not saved yet; used from the next boot: save, then reboot)"]);
      expect(await b.reply(`set mqtt.pass ${CANARY}`)).toEqual(["mqtt.pass = (set, hidden) (not saved yet; used from the next boot: save, then reboot)"]);
      const status = await b.reply("status");
      expect(status[0]).toMatch(new RegExp(`^node ${id}: connected, up \\d+ s, 0 reconnects`));
      // qos 1 is the default; a line on memory comes before it where the board can tell
      expect(status).toContain("unsaved settings: mqtt.user, mqtt.pass, interval (save keeps them)");
      expect(status.indexOf("unsaved settings: mqtt.user, mqtt.pass, interval (save keeps them)")).toBe(status.length - 2);
      // the host and these stand-ins carry every feature a profile may leave out
      expect(status[status.length - 1]).toBe("features: qos2 failover sleep mqtt5");
      expect(help).toContain("features: qos2 failover sleep mqtt5");
      // every runtime's node speaks MQTT 5.0 to mosquitto (its build has the mqtt5 feature)
      expect(status[2]).toBe("protocol: MQTT 5.0");
      if (status.length === 6) expect(status[3]).toMatch(/^memory: (\d+ bytes of Lua heap in use|Lua heap unknown|\d+ of \d+ variable slots in use|not measured here)/);
      expect(await b.reply("save")).toEqual(["saved (3 changes)"]);
      expect(await b.reply("get mqtt.pass")).toEqual([expect.stringMatching(/^mqtt\.pass = \(set, hidden\)/)]);
      const diag = await b.reply("diag");
      expect(diag[diag.length - 1]).toBe("diag: every link works");

      // a reboot: the saved settings are what the board comes back with
      b.type("reboot");
      expect(await b.ended()).toBe(REBOOT_STATUS);
      const before = b.out;
      const mark = seen.length;
      b.powerOn();
      await b.waitFor(`node: connected as ${id}`);
      expect(await b.reply("get interval")).toEqual([expect.stringMatching(/^interval = 1 /)]);
      expect(await b.reply("get qos")).toEqual([expect.stringMatching(/^qos = 1 /)]);
      expect((await b.reply("status")).slice(-2)).toEqual(["settings: all saved", "features: qos2 failover sleep mqtt5"]);

      // telemetry every second at QoS 1, the retained status, a remote command answered
      await until("two readings after the reboot", () => seen.slice(mark).filter((l) => l.startsWith(`petrel/${id}/telemetry `)).length >= 2, 15000);
      const reading = JSON.parse(seen.find((l) => l.startsWith(`petrel/${id}/telemetry `))!.slice(`petrel/${id}/telemetry `.length));
      expect(typeof reading).toBe("object");
      command(id, "get interval");
      await until("the reply", () => seen.some((l) => l.startsWith(`petrel/${id}/reply interval = 1`)), 10000);
      // at 5.0 a request names where its answer goes (Response Topic) and what comes back with it
      // (Correlation Data, bytes that are not UTF-8 here, returned exactly)
      const answer = await request5(`petrel/${id}/cmd`, "get interval", `requester/${id}/inbox`, Buffer.from([0xde, 0xad, 0xbe, 0xef, 0xff]));
      expect(answer.payload).toMatch(/^interval = 1 /);
      expect(answer.correlation).toBe("deadbeefff");
      command(id, `set mqtt.pass x${CANARY}`);
      await until("the refusal", () => seen.some((l) => l.includes("is a secret: it is set at the serial console only")), 10000);
      const retained = spawnSync("mosquitto_sub", ["-h", "127.0.0.1", "-p", String(broker.port), "-t", `petrel/${id}/status`, "-C", "1", "-W", "5"], { encoding: "utf8" });
      expect(JSON.parse(retained.stdout)).toMatchObject({ state: "online", version: expect.any(String) });

      // the rest of the console: publish, unset, factory-reset (asks first), repl and back
      expect(await b.reply("publish")).toEqual(["publishing a reading now"]);
      expect(await b.reply("unset qos")).toEqual([expect.stringMatching(/^qos = 1 \(the default; not saved yet\)$/)]);
      expect(await b.reply("unset nosuch")).toEqual([expect.stringMatching(/^error: unknown setting "nosuch"/)]);
      expect(await b.reply("factory-reset")).toEqual(["factory-reset erases every setting, Wi-Fi and broker credentials included; type factory-reset yes to do it"]);
      const reset = await b.reply("factory-reset yes");
      expect(reset[0]).toBe("factory-reset: every setting is back to its default, on flash too");
      expect(await b.reply("get interval")).toEqual([expect.stringMatching(/^interval = 60 /)]);
      expect(await b.reply("get mqtt.pass")).toEqual([expect.stringMatching(/^mqtt\.pass = \(not set\) /)]);
      expect(await b.reply("frobnicate")).toEqual(['error: unknown command "frobnicate"; type help for the list']);

      // at 5.0 the will waits will.delay (10 s by default): a power cut and a reboot within it
      // publish no offline status (the session resumes, and the broker drops the will) ...
      const offline = `petrel/${id}/status {"state":"offline"}`;
      const quick = seen.length;
      b.kill();
      await b.ended();
      b.powerOn();
      await b.waitFor(`node: connected as ${id}`);
      await until("online again", () => seen.slice(quick).some((l) => l.startsWith(`petrel/${id}/status {"state":"online"`)), 10000);

      // ... and a longer outage does, once: the first cut's will would have come before this one's
      const long = seen.length;
      b.kill();
      await until("the will, after its delay", () => seen.slice(long).includes(offline), 30000);
      expect(seen.slice(quick).filter((l) => l === offline), "offline statuses since the quick reboot").toHaveLength(1);

      // no canary in anything the board printed or the broker delivered (only the refused remote
      // line carries it, inside the command the test itself published)
      expect(before + b.out).not.toContain(CANARY);
      expect(seen.filter((l) => !l.startsWith(`petrel/${id}/cmd `)).join("\n")).not.toContain(CANARY);
      console.log(`[app] ${target}: ${seen.filter((l) => l.startsWith(`petrel/${id}/telemetry `)).length} readings seen at the broker`);
}
