import "../firmware/targets/node/index";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { diagnose, type DiagFacts } from "../firmware/app/diag";
import { SensorNode } from "../firmware/app/node";
import { runLine } from "../firmware/app/commands";
import { settingsWith } from "./harness/app";
import { freePort, startBroker, type Broker } from "../host-sim/mosquitto";
import { nodePlatform, simulatedLink } from "../firmware/targets/node/platform";
import { memoryStorage } from "../firmware/targets/node/storage";
import { until } from "./harness/wait";

// `diag` against each broken link it claims to detect, each made real: a Wi-Fi drop (the
// simulated link), an unknown host (the stub resolver's table), a refused port (a port nothing
// listens on), bad credentials (a mosquitto password file), a refused subscription (a mosquitto
// ACL) and a duplicate client id (two nodes with one id on one mosquitto). Waits are bounded;
// what is asserted is the diagnosis, not timing.

const brokers: Broker[] = [];
const nodes: SensorNode[] = [];
afterAll(async () => {
  for (const n of nodes) n.client?.end();
  for (const b of brokers) await b.close();
});

async function broker(opts: Parameters<typeof startBroker>[0] = {}): Promise<Broker> {
  const b = await startBroker(opts);
  brokers.push(b);
  return b;
}

function node(set: Record<string, string>, link?: ReturnType<typeof simulatedLink>) {
  const logs: string[] = [];
  const platform = nodePlatform({ chipId: "diag", link, hosts: { "broker.lan": "127.0.0.1" } });
  const st = settingsWith(memoryStorage(), false, { interval: "60", ...set });
  const n = new SensorNode({ platform, tls: false, version: "0.1.0-test", reboot: () => {}, log: (l) => logs.push(l), sensors: [] }, st);
  nodes.push(n);
  expect(n.launch()).toBeNull();
  const diag = () => {
    const out: string[] = [];
    runLine({ node: n, settings: n.settings }, "diag", (l) => out.push(l), false);
    return out;
  };
  return { n, logs, diag };
}

const verdict = (lines: string[]) => lines[lines.length - 1];

/**
 * diag's lines once `ready` holds, read between attempts: while the next attempt dials, what it
 * has not reached yet is "not yet known", and the failing node retries on its own.
 */
async function between(what: string, ready: () => boolean, diag: () => string[]): Promise<string[]> {
  let out: string[] = [];
  await until(`${what}, and diag between attempts`, () => {
    if (!ready()) return false;
    out = diag();
    return !out.some((l) => l.includes("not yet known"));
  }, 10000);
  return out;
}

describe("diag names the first broken link", () => {
  it("a working node: every link works, the subscription granted, the ping timed", async () => {
    const b = await broker();
    const { n, diag } = node({ brokers: `broker.lan:${b.port}`, "client.id": "diag-ok", keepalive: "10" });
    await until("a ping round trip", () => (n.client?.stats.pingMs ?? -1) >= 0, 25000);
    const out = diag();
    expect(out).toContain("diag: wifi  no Wi-Fi on this board (the host's network)");
    expect(out).toContain("diag: mqtt  ok: connected as diag-ok");
    expect(out).toContain("diag: protocol  MQTT 5.0");
    expect(out).toContain("diag: subscribe  ok: petrel/diag-ok/cmd granted QoS 1");
    expect(out.find((l) => l.startsWith("diag: ping"))).toMatch(/^diag: ping {2}\d+ ms round trip/);
    expect(verdict(out)).toBe("diag: every link works");
  }, 30000);

  it("Wi-Fi down: wifi, with the settings to check", async () => {
    const b = await broker();
    const link = simulatedLink();
    const { n, diag } = node({ brokers: `127.0.0.1:${b.port}`, "client.id": "diag-wifi" }, link);
    await until("connected", () => n.connected === true, 10000);
    link.set(false);
    await until("offline", () => n.connected === false, 10000);
    const out = diag();
    expect(out[0]).toMatch(/^diag: wifi {2}FAILED: .*not on Wi-Fi.*wifi\.ssid and wifi\.pass/);
    expect(out.slice(1, 5).every((l) => l.endsWith("not reached"))).toBe(true);
    expect(verdict(out)).toBe("diag: first broken link: wifi");
    link.set(true);
    await until("back", () => n.connected === true, 10000);
    expect(verdict(diag())).toBe("diag: every link works");
  });

  it("an unknown host: dns, naming the brokers setting", async () => {
    const { n, diag } = node({ brokers: "nosuch.lan:1883", "client.id": "diag-dns" });
    const out = await between("an attempt", () => n.client!.stats.attempts >= 1 && n.lastError !== undefined, diag);
    expect(out[0]).toBe("diag: wifi  no Wi-Fi on this board (the host's network)");
    expect(out[1]).toMatch(/^diag: dns {2}FAILED: the broker's host name did not resolve.*\(brokers = nosuch\.lan:1883\)$/);
    expect(verdict(out)).toBe("diag: first broken link: dns");
  });

  it("a refused port: tcp", async () => {
    const port = await freePort();
    const { n, diag } = node({ brokers: `127.0.0.1:${port}`, "client.id": "diag-tcp" });
    const out = await between("an attempt", () => n.lastError !== undefined, diag);
    expect(out[1]).toBe("diag: dns  ok");
    expect(out[2]).toMatch(/^diag: tcp {2}FAILED: the broker's address refused the connection/);
    expect(out[3]).toBe("diag: tls  not reached");
    expect(verdict(out)).toBe("diag: first broken link: tcp");
  });

  it("bad credentials (mosquitto password file): mqtt, the CONNACK's reason code explained in the broker's words (MQTT 5.0)", async () => {
    const b = await broker({ users: { node: "right-pass" } });
    const { n, diag } = node({ brokers: `127.0.0.1:${b.port}`, "client.id": "diag-cred", "mqtt.user": "node", "mqtt.pass": "wrong-pass" });
    const out = await between("a refusal", () => n.lastError !== undefined, diag);
    expect(out[2]).toBe("diag: tcp  ok");
    // mosquitto 2.0 answers a wrong password at 5.0 with 0x87, as with return code 5 at 3.1.1
    expect(out[4]).toMatch(/^diag: mqtt {2}FAILED: the broker refused: .*not authorized.*\(reason code 0x87 in CONNACK\)$/);
    expect(verdict(out)).toBe("diag: first broken link: mqtt");
    expect(out.join("\n")).not.toContain("wrong-pass");
  });

  it("a subscription the broker's ACL denies (mosquitto dynamic security): subscribe", async () => {
    // mosquitto's acl_file never refuses a SUBSCRIBE (it filters deliveries); its dynamic
    // security plugin does, with SUBACK 0x80.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-dynsec-"));
    const file = path.join(dir, "dynsec.json");
    const ctl = (args: string[]) => {
      const r = spawnSync("mosquitto_ctrl", args, { encoding: "utf8" });
      expect(r.status, `mosquitto_ctrl ${args.join(" ")}: ${r.stderr}`).toBe(0);
    };
    ctl(["dynsec", "init", file, "admin", "admin-pass"]);
    const b = await broker({ extra: ["plugin /usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so", `plugin_opt_config_file ${file}`] });
    const admin = ["-h", "127.0.0.1", "-p", String(b.port), "-u", "admin", "-P", "admin-pass", "dynsec"];
    ctl([...admin, "createClient", "node", "-p", "node-pass"]);
    ctl([...admin, "createRole", "nocmd"]);
    ctl([...admin, "addRoleACL", "nocmd", "publishClientSend", "petrel/#", "allow", "5"]);
    ctl([...admin, "addRoleACL", "nocmd", "subscribePattern", "petrel/+/cmd", "deny", "5"]);
    ctl([...admin, "addClientRole", "node", "nocmd"]);
    const { n, diag, logs } = node({ brokers: `127.0.0.1:${b.port}`, "client.id": "diag-acl", "mqtt.user": "node", "mqtt.pass": "node-pass" });
    await until("the SUBACK", () => diag().some((l) => l.startsWith("diag: subscribe  FAILED")), 10000).catch((e) => { throw new Error(`${e.message}\n${diag().join("\n")}\n${logs.join("\n")}`); });
    const out = diag();
    expect(out[4]).toBe("diag: mqtt  ok: connected as diag-acl");
    expect(out).toContain("diag: subscribe  FAILED: the broker refused the subscription to petrel/diag-acl/cmd; fix: allow this client (or its user) to read that topic in the broker's ACL");
    expect(verdict(out)).toBe("diag: first broken link: subscribe");
    expect(n.connected).toBe(true);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("two boards with one client id: the connect/disconnect loop is named", async () => {
    const b = await broker();
    const one = node({ brokers: `127.0.0.1:${b.port}`, "client.id": "twin" });
    const two = node({ brokers: `127.0.0.1:${b.port}`, "client.id": "twin" });
    await until("three short drops", () => verdict(one.diag()) === "diag: first broken link: client id" ||
      verdict(two.diag()) === "diag: first broken link: client id", 30000);
    const out = verdict(one.diag()) === "diag: first broken link: client id" ? one.diag() : two.diag();
    expect(out.find((l) => l.startsWith("diag: client id"))).toMatch(/another device is probably connecting with the same client id \(twin\)/);
    two.n.client?.end();
  }, 40000);
});

describe("diagnose (the walk itself)", () => {
  const base: DiagFacts = {
    link: "up", connected: false, failed: "", attempts: 1, brokers: "h:1883", tls: true, clientId: "c",
    subscription: "", cmdTopic: "p/c/cmd", pingMs: -1, keepalive: 60, shortDrops: 0,
  };
  it("puts each close reason at its link", () => {
    const at = (failed: string) => verdict(diagnose({ ...base, failed }));
    expect(at("no-network")).toBe("diag: first broken link: wifi");
    expect(at("not-found")).toBe("diag: first broken link: dns");
    for (const r of ["refused", "timeout", "unreachable"]) expect(at(r)).toBe("diag: first broken link: tcp");
    for (const r of ["tls", "tls-expired", "tls-untrusted", "tls-name-mismatch", "tls-client-cert-required"]) expect(at(r)).toBe("diag: first broken link: tls");
    for (const r of ["connect-timeout", "bad-credentials", "not-authorized", "connack-identifier-rejected", "protocol-error"]) {
      expect(at(r)).toBe("diag: first broken link: mqtt");
    }
  });
  it("explains CONNACK codes and TLS failures with their fixes", () => {
    const out = diagnose({ ...base, failed: "connack-identifier-rejected" });
    expect(out[4]).toContain("CONNACK refused: the broker rejected the client id (return code 2)");
    expect(diagnose({ ...base, failed: "tls-untrusted" })[3]).toContain("not signed by the configured CA");
  });
  it("still connecting, not yet tried, keepalive 0, and a pending SUBACK", () => {
    expect(verdict(diagnose({ ...base }))).toContain("still connecting");
    expect(diagnose({ ...base, attempts: 0 })[1]).toBe("diag: dns  not yet tried");
    const up = diagnose({ ...base, connected: true, keepalive: 0, tls: false });
    expect(up).toContain("diag: tls  off (tls off for every broker)");
    expect(up).toContain("diag: subscribe  waiting for SUBACK");
    expect(up).toContain("diag: ping  none yet (keepalive 0: no pings)");
  });
});
