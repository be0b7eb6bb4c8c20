import "../firmware/targets/node/index";
import "../firmware/targets/node/app";
import { describe, expect, it } from "vitest";
import { runLine, type CommandContext } from "../firmware/app/commands";
import { KIND_SECRET, MASK, SETTINGS_KEY, keyAt, loadSettings, setting, unsaved } from "../firmware/app/config";
import { SensorNode } from "../firmware/app/node";
import { Settings, isSecret, typingSecret } from "../firmware/app/settings";
import { LineConsole, type Serial } from "../firmware/console/line";
import { nodePlatform } from "../firmware/targets/node/platform";
import { memoryStorage } from "../firmware/targets/node/storage";

// The node's settings and their console commands (shared code, on the host). The canaries are
// secrets that must never appear in anything the console prints.

const CANARY_WIFI = "canary-wifi-7Q2x";
const CANARY_MQTT = "canary-mqtt-9Zk4";

/** Every setting's key, in the schema's order. */
// (the Node build has every feature: will.delay and expiry, MQTT 5.0's, are the 14th and 15th)
const KEYS = Array.from({ length: 15 }, (_, i) => keyAt(i));

/**
 * A console over a host serial line with the node's commands (the node not started: the settings
 * commands need none of it); `type` returns what it printed.
 */
function node(opts: { tls?: boolean; storage?: ReturnType<typeof memoryStorage> } = {}) {
  const storage = opts.storage ?? memoryStorage();
  const st = new Settings(storage, opts.tls ?? true);
  const loadMessage = loadSettings(st);
  let out = "";
  let chars: ((s: string) => void) | undefined;
  const serial: Serial = { take: (fn) => (chars = fn), release: () => (chars = undefined), write: (s) => (out += s) };
  let resets = 0;
  const sensor = new SensorNode({ platform: nodePlatform({ chipId: "t" }), tls: opts.tls ?? true, version: "t", sensors: [], reboot: () => {}, log: () => {} }, st);
  const ctx: CommandContext = { node: sensor, settings: st, afterReset: () => resets++ };
  const c = new LineConsole(serial, (line, say) => runLine(ctx, line, say, false), "back()", typingSecret);
  c.start();
  const type = (line: string) => {
    const from = out.length;
    chars!(`${line}\r`);
    // the echo of the line, then what the command said, then the next prompt
    const said = out.slice(from).split("\r\n");
    expect(said[0]).toBe(line.replace(/^(set\s+(?:wifi|mqtt)\.pass\s+)(.*)$/, (_, head: string, v: string) => head + "*".repeat(v.length)));
    expect(said[said.length - 1]).toBe("petrel> ");
    return said.slice(1, -1);
  };
  return { st, storage, type, all: () => out, loadMessage, resets: () => resets };
}

describe("settings: validation explains the accepted form, and a refused set changes nothing", () => {
  const refusals: Array<[string, RegExp]> = [
    ["set interval 0", /^error: interval must be a whole number from 1 to 86400 \(got "0"\); nothing was changed$/],
    ["set interval ten", /^error: interval must be a whole number from 1 to 86400 \(got "ten"\); nothing was changed$/],
    ["set qos 3", /^error: qos must be a whole number from 0 to 2 \(got "3"\)/],
    ["set keepalive 5", /^error: keepalive must be a whole number from 10 to 3600/],
    ["set sleep maybe", /^error: sleep is on or off \(got "maybe"\)/],
    ["set log loud", /^error: log is one of error, warn, info, debug \(got "loud"\)/],
    ["set brokers", /^error: brokers is \[tls:\]host:port, up to 4 separated by commas, e\.g\. .* \(got none\)/],
    ["set brokers example.com", /^error: brokers is .* \(got "example\.com": no :port\)/],
    ["set brokers ex_ample.com:1883", /\(got "ex_ample\.com:1883": a host name has letters, digits, \. and -\)/],
    ["set brokers a:1,b:2,c:3,d:4,e:5", /\(got 5 brokers\)/],
    ["set brokers a.example:70000", /\(got "a\.example:70000": the port is 1 to 65535\)/],
    ["set client.id has space", /^error: client\.id must be 1 to 23 letters, digits, - or _ \(what every MQTT 3\.1\.1 broker accepts; got "has space"\)/],
    ["set client.id abcdefghijklmnopqrstuvwxyz", /client\.id must be 1 to 23/],
    ["set prefix a/+/b", /^error: prefix must be 1 to 64 characters without \+ or # and not start or end with \//],
    ["set prefix /lead", /prefix must be/],
    ["set wifi.ssid", /^error: wifi\.ssid must be 1 to 32 characters \(got none\)/],
    ["set nosuch 1", /^error: unknown setting "nosuch"; show lists them; nothing was changed$/],
    ["set", /^error: set takes a setting name and a value, e\.g\. set interval 30; show lists the names$/],
  ];
  for (const [line, want] of refusals) {
    it(line, () => {
      const n = node();
      const before = KEYS.map((k) => n.st.get(k));
      const out = n.type(line);
      expect(out.length, out.join("\n")).toBe(1);
      expect(out[0]).toMatch(want);
      expect(KEYS.map((k) => n.st.get(k))).toEqual(before);
      expect(unsaved(n.st)).toEqual([]);
    });
  }

  it("a secret's refusal names its length, never its value", () => {
    const n = node();
    const out = n.type("set wifi.pass short");
    expect(out).toEqual(["error: wifi.pass must be 8 to 63 characters (got 5 characters); nothing was changed"]);
  });

  it("set tls on (or a tls: broker) on a board without TLS is refused, and says why", () => {
    const n = node({ tls: false });
    expect(n.type("set tls on")).toEqual(["error: tls: this board's firmware has no TLS (its profile says tls: false); its brokers are plain TCP; nothing was changed"]);
    expect(n.type("set brokers tls:b.example:8883")[0]).toMatch(/^error: brokers: tls:b\.example:8883 asks for TLS, and this board's firmware has no TLS/);
    const t = node({ tls: true });
    expect(t.type("set tls on")).toEqual(["tls = on (not saved yet; used from the next boot: save, then reboot)"]);
  });

  it("values are normalised and a value with spaces is the rest of the line", () => {
    const n = node();
    expect(n.type("set sleep YES")).toEqual(["sleep = on (not saved yet; used from the next boot: save, then reboot)"]);
    expect(n.type("set interval 030")).toEqual(["interval = 30 (not saved yet)"]);
    expect(n.type("set wifi.ssid  My Home  Net")).toEqual(["wifi.ssid = My Home  Net (not saved yet; used from the next boot: save, then reboot)"]);
    expect(n.st.get("wifi.ssid")).toBe("My Home  Net");
    expect(n.st.int("interval")).toBe(30);
    expect(n.st.on("sleep")).toBe(true);
  });
});

describe("settings: show, get, unsaved changes, save and reload, unset, factory-reset", () => {
  it("show masks secrets and marks unsaved changes; save keeps them over a reboot (a new Settings on the same flash)", () => {
    const n = node();
    n.type(`set wifi.pass ${CANARY_WIFI}`);
    n.type(`set mqtt.pass ${CANARY_MQTT}`);
    n.type("set brokers 10.0.0.2:1883,tls:b.example.com:8883");
    n.type("set interval 15");
    const shown = n.type("show");
    expect(shown).toContain(`* wifi.pass = ${MASK}`);
    expect(shown).toContain("* interval = 15");
    expect(shown).toContain("  qos = 1");
    expect(shown).toContain("  wifi.ssid = (not set)");
    expect(shown[shown.length - 1]).toBe("* not saved: save keeps them over a reboot");
    expect(n.type("get mqtt.pass")).toEqual([`mqtt.pass = ${MASK}  (the MQTT password)`]);
    expect(n.type("save")).toEqual(["saved (4 changes)"]);
    expect(n.type("show").filter((l) => l.startsWith("*"))).toEqual([]);
    // reboot: the same flash, a new node
    const again = node({ storage: n.storage });
    expect(again.loadMessage).toBeNull();
    expect(again.st.get("wifi.pass")).toBe(CANARY_WIFI);
    expect(again.st.get("brokers")).toBe("10.0.0.2:1883,tls:b.example.com:8883");
    expect(again.st.int("interval")).toBe(15);
    expect(unsaved(again.st)).toEqual([]);
    // no output anywhere carried a secret
    for (const out of [n.all(), again.all()]) {
      expect(out).not.toContain(CANARY_WIFI);
      expect(out).not.toContain(CANARY_MQTT);
    }
  });

  it("unsaved changes are lost by a reboot; unset goes back to the default", () => {
    const n = node();
    n.type("set qos 2");
    n.type("save");
    n.type("set qos 0");
    expect(node({ storage: n.storage }).st.get("qos")).toBe("2");
    expect(n.type("unset qos")).toEqual(["qos = 1 (the default; not saved yet)"]);
    expect(unsaved(n.st)).toEqual(["qos"]);
  });

  it("set and unset keep the unsaved list that status shows, in the order show lists the keys, as a full comparison with the record would", () => {
    const n = node();
    const steps: [string, string[]][] = [
      ["set qos 0", ["qos"]],
      ["set interval 30", ["qos", "interval"]],
      ["set brokers 10.0.0.2:1883", ["brokers", "qos", "interval"]],
      ["set qos 1", ["brokers", "interval"]], // back to the saved value (the default)
      ["save", []],
      ["set interval 30", []], // the saved value again
      ["set interval 31", ["interval"]],
      ["unset brokers", ["brokers", "interval"]], // saved 10.0.0.2:1883, the default differs
      ["set brokers 10.0.0.2:1883", ["interval"]],
    ];
    for (const [line, want] of steps) {
      n.type(line);
      expect([...n.st.unsaved], line).toEqual(want);
      // the same as the whole record read and compared again
      expect(unsaved(n.st), line).toEqual(want);
    }
  });

  it("factory-reset asks first; factory-reset yes erases the flash record and restarts the app's work", () => {
    const n = node();
    n.type("set interval 5");
    n.type("save");
    expect(n.type("factory-reset yes")[0]).toMatch(/^factory-reset erases every setting.*type factory-reset yes to do it$/);
    expect(n.st.get("interval")).toBe("5"); // not without the question first
    n.type("factory-reset");
    expect(n.type("factory-reset yes")).toEqual(["factory-reset: every setting is back to its default, on flash too"]);
    expect(n.resets()).toBe(1);
    expect(n.storage.keys()).not.toContain(SETTINGS_KEY);
    expect(node({ storage: n.storage }).st.get("interval")).toBe("60");
  });

  it("a full flash: save says so, and the saved settings stay as they were", () => {
    const storage = memoryStorage(40);
    const n = node({ storage });
    n.type("set interval 5");
    expect(n.type("save")).toEqual(["saved (1 change)"]);
    n.type("set wifi.ssid a-rather-long-network-name-here");
    expect(n.type("save")).toEqual(["error: settings: the flash write failed (the flash is full); the saved settings are as they were. Fix: free flash, then save again"]);
    const again = node({ storage });
    expect(again.st.get("interval")).toBe("5");
    expect(again.st.get("wifi.ssid")).toBe("");
  });

  it("a saved record with unknown or now-invalid lines: they are ignored and named, the rest is kept", () => {
    const storage = memoryStorage();
    const text = Buffer.from("interval=20\ncolour=blue\nqos=7\nlog=debug\n");
    storage.putRecord(SETTINGS_KEY, text as never);
    const n = node({ storage });
    expect(n.loadMessage).toBe("settings: ignored colour, qos in the saved record (unknown or invalid here); save writes the record without them");
    expect(n.st.get("interval")).toBe("20");
    expect(n.st.get("log")).toBe("debug");
    expect(n.st.get("qos")).toBe("1");
  });
});

describe("settings schema", () => {
  it("the secret settings are exactly those named *.pass (the console masks them as typed without the schema)", () => {
    expect(KEYS.filter((k) => k !== "")).toHaveLength(15);
    expect(keyAt(13)).toBe("will.delay");
    expect(keyAt(14)).toBe("expiry");
    expect(keyAt(15)).toBe("");
    for (const k of KEYS) {
      const d = setting(k);
      expect(d, k).toBeDefined();
      expect(d!.key).toBe(k);
      expect(isSecret(k), k).toBe(d!.kind === KIND_SECRET);
    }
    expect(setting("nosuch")).toBeUndefined();
    expect(typingSecret("set mqtt.pass hu")).toBe(true);
    expect(typingSecret("  set\twifi.pass x")).toBe(true);
    expect(typingSecret("set mqtt.pass")).toBe(false);
    expect(typingSecret("set mqtt.user x")).toBe(false);
    expect(typingSecret("get mqtt.pass ")).toBe(false);
  });
});
