/**
 * The brokers people run, each started for a test the same way: its own configuration in a temp
 * directory, ephemeral loopback ports, two users (`petrel`, the client under test, and `checker`,
 * the independent peer; anyone else is refused), and one subtree `petrel` may not read (`deny/#`:
 * its subscriptions are refused, or on mosquitto filtered), torn down after. mosquitto 2.0 (host-sim/mosquitto.ts), aedes (npm, its own
 * process: host-sim/brokers/aedes-broker.mjs), NATS Server 2.9 in MQTT mode (JetStream on) and
 * RabbitMQ 3.10 with its MQTT plugin (Debian packages; tools/install-deps.sh installs them).
 * Every wait is bounded.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { freePort, startBroker } from "./mosquitto";

export type BrokerKind = "mosquitto" | "aedes" | "nats" | "rabbitmq";
export const BROKER_KINDS: BrokerKind[] = ["mosquitto", "aedes", "nats", "rabbitmq"];

/** The users every broker takes, and their passwords. */
export const USER = "petrel";
export const PASSWORD = "petrel-secret";
export const CHECKER = "checker";
export const CHECKER_PASSWORD = "checker-secret";

export interface InteropBroker {
  kind: BrokerKind;
  /** What ran, with its version (e.g. "NATS Server 2.9.10"). */
  name: string;
  host: string;
  port: number;
  /** The broker's own log so far (for a failure's message). */
  log(): string;
  /** Stops it (SIGTERM, then SIGKILL after 10 s) and removes its directory. */
  close(): Promise<void>;
}

const ROOT = path.resolve(__dirname, "..", __dirname.includes(`${path.sep}dist${path.sep}`) ? "../.." : "");
const HOST = "127.0.0.1";

/** Why `kind` cannot be started on this machine (with how to get it), or null. */
export function brokerMissing(kind: BrokerKind): string | null {
  const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
  switch (kind) {
    case "mosquitto": return has("mosquitto") ? null : "mosquitto is not installed (Debian package mosquitto; make deps installs it)";
    case "aedes": return fs.existsSync(path.join(ROOT, "node_modules/aedes")) ? null : "aedes is not installed (npm ci installs it)";
    case "nats": return has("nats-server") ? null : "nats-server is not installed (Debian package nats-server; make deps installs it)";
    case "rabbitmq": return fs.existsSync("/usr/lib/rabbitmq/bin/rabbitmq-server") ? null : "RabbitMQ is not installed (Debian package rabbitmq-server; make deps installs it)";
  }
}

async function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect({ host: HOST, port }, () => {
      c.destroy();
      resolve(true);
    });
    c.once("error", () => resolve(false));
  });
}

/** Waits until `port` takes connections: at most `ms`, failing early when `child` exits. */
async function waitPort(what: string, port: number, child: ChildProcess, ms: number, log: () => string): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`${what} exited (${child.exitCode}) before listening on ${port}: ${log().slice(-2000)}`);
    if (await listening(port)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not listen on ${port} within ${ms / 1000} s: ${log().slice(-2000)}`);
}

/** SIGTERM to the process group, SIGKILL after `ms`; resolves when the leader is gone. */
function stopGroup(child: ChildProcess, ms = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const signal = (s: NodeJS.Signals) => {
    try {
      process.kill(-(child.pid as number), s);
    } catch {
      // (gone already)
    }
  };
  return new Promise((resolve) => {
    const t = setTimeout(() => signal("SIGKILL"), ms);
    child.once("exit", () => {
      clearTimeout(t);
      // what the leader started and left behind
      signal("SIGKILL");
      resolve();
    });
    signal("SIGTERM");
  });
}

/** SIGKILL to the process group: gone at once; resolves when the leader has exited. */
async function killGroup(c: ChildProcess | undefined): Promise<void> {
  if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
  const gone = new Promise<void>((r) => c.once("exit", () => r()));
  process.kill(-(c.pid as number), "SIGKILL");
  await gone;
}

/** RabbitMQ's password hash for a definitions file: base64(salt + SHA-256(salt + password)), a 4-byte salt. */
function rabbitHash(pw: string): string {
  const salt = crypto.randomBytes(4);
  return Buffer.concat([salt, crypto.createHash("sha256").update(Buffer.concat([salt, Buffer.from(pw)])).digest()]).toString("base64");
}

function readLog(file: string): string {
  return fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
}

function version(cmd: string, args: string[], pattern: RegExp): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 10_000 });
  const m = pattern.exec(`${r.stdout ?? ""}${r.stderr ?? ""}`);
  return m !== null ? m[1] : "?";
}

/** Starts a broker of `kind` with the user and the refused subtree. */
export async function startInteropBroker(kind: BrokerKind): Promise<InteropBroker> {
  const why = brokerMissing(kind);
  if (why !== null) throw new Error(why);
  switch (kind) {
    case "mosquitto": return startMosquitto();
    case "aedes": return startAedes();
    case "nats": return startNats();
    case "rabbitmq": return startRabbit();
  }
}

async function startMosquitto(): Promise<InteropBroker> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-interop-mosquitto-"));
  const acl = path.join(dir, "acl");
  // (an ACL's # does not cover topics that start with $: those are named)
  fs.writeFileSync(acl, `user ${USER}\ntopic deny deny/#\ntopic readwrite #\ntopic readwrite $petrel/#\n\n` +
    `user ${CHECKER}\ntopic readwrite #\ntopic readwrite $petrel/#\n`);
  const b = await startBroker({ dir, users: { [USER]: PASSWORD, [CHECKER]: CHECKER_PASSWORD }, extra: [`acl_file ${acl}`] });
  const v = version("mosquitto", ["-h"], /mosquitto version ([0-9.]+)/);
  return { kind: "mosquitto", name: `mosquitto ${v}`, host: HOST, port: b.port, log: b.log, close: b.close };
}

async function startAedes(): Promise<InteropBroker> {
  const port = await freePort();
  let out = "";
  const child = spawn(process.execPath, [path.join(ROOT, "host-sim/brokers/aedes-broker.mjs"), String(port), JSON.stringify({ [USER]: PASSWORD, [CHECKER]: CHECKER_PASSWORD }), USER],
    { stdio: ["ignore", "pipe", "pipe"], detached: true });
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  await waitPort("aedes", port, child, 15_000, () => out);
  const v = JSON.parse(fs.readFileSync(path.join(ROOT, "node_modules/aedes/package.json"), "utf8")).version as string;
  return { kind: "aedes", name: `aedes ${v}`, host: HOST, port, log: () => out, close: () => stopGroup(child) };
}

async function startNats(): Promise<InteropBroker> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-interop-nats-"));
  const [client, mqtt] = [await freePort(), await freePort()];
  const logFile = path.join(dir, "nats.log");
  // MQTT needs a server name and JetStream (sessions and retained messages live in streams)
  fs.writeFileSync(path.join(dir, "nats.conf"), [
    `listen: "${HOST}:${client}"`,
    `server_name: "petrel-${process.pid}-${client}"`,
    `jetstream { store_dir: "${dir}/js" }`,
    `mqtt { listen: "${HOST}:${mqtt}" }`,
    // NATS subjects: the MQTT topic deny/x is the subject deny.x
    `authorization { users: [ { user: "${USER}", password: "${PASSWORD}", permissions: { subscribe: { deny: ["deny.>"] } } },`,
    `  { user: "${CHECKER}", password: "${CHECKER_PASSWORD}" } ] }`,
    `log_file: "${logFile}"`,
  ].join("\n") + "\n");
  const child = spawn("nats-server", ["-c", path.join(dir, "nats.conf")], { stdio: "ignore", detached: true });
  await waitPort("nats-server", mqtt, child, 20_000, () => readLog(logFile));
  const v = version("nats-server", ["--version"], /v([0-9.]+)/);
  return {
    kind: "nats", name: `NATS Server ${v}`, host: HOST, port: mqtt, log: () => readLog(logFile),
    close: async () => {
      await stopGroup(child);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function startRabbit(): Promise<InteropBroker> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-interop-rabbitmq-"));
  const [amqp, mqtt, dist, epmdPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const node = `petrel${process.pid}x${mqtt}@localhost`;
  fs.writeFileSync(path.join(dir, "rabbitmq.conf"), [
    `listeners.tcp.default = ${HOST}:${amqp}`,
    `mqtt.listeners.tcp.default = ${HOST}:${mqtt}`,
    "mqtt.allow_anonymous = false",
    // the users and their permissions, loaded at first boot (so no rabbitmqctl call); users may
    // come from loopback only by default, so allowed there
    `load_definitions = ${path.join(dir, "definitions.json")}`,
    "loopback_users = none",
  ].join("\n") + "\n");
  const user = (name: string, pw: string) => ({ name, password_hash: rabbitHash(pw), hashing_algorithm: "rabbit_password_hashing_sha256", tags: [] });
  const all = (name: string) => ({ user: name, vhost: "/", configure: ".*", write: ".*", read: ".*" });
  fs.writeFileSync(path.join(dir, "definitions.json"), JSON.stringify({
    users: [user(USER, PASSWORD), user(CHECKER, CHECKER_PASSWORD)], vhosts: [{ name: "/" }], permissions: [all(USER), all(CHECKER)],
    // the MQTT plugin's exchange: petrel may not read routing keys deny.* (the topic deny/...)
    topic_permissions: [{ user: USER, vhost: "/", exchange: "amq.topic", write: ".*", read: "^(?!deny\\.).*" }],
  }));
  fs.writeFileSync(path.join(dir, "enabled_plugins"), "[rabbitmq_mqtt].\n");
  const env = {
    ...process.env, HOME: dir, RABBITMQ_NODENAME: node, RABBITMQ_CONFIG_FILE: path.join(dir, "rabbitmq"),
    RABBITMQ_ENABLED_PLUGINS_FILE: path.join(dir, "enabled_plugins"), RABBITMQ_MNESIA_BASE: path.join(dir, "mnesia"),
    RABBITMQ_LOG_BASE: path.join(dir, "log"), RABBITMQ_DIST_PORT: String(dist), ERL_EPMD_PORT: String(epmdPort),
    RABBITMQ_PID_FILE: path.join(dir, "pid"),
  };
  // an Erlang port mapper of its own, in the foreground, so it goes with the broker
  const epmd = spawn("epmd", ["-port", String(epmdPort)], { stdio: "ignore", detached: true, env });
  let out = "";
  const child = spawn("/usr/lib/rabbitmq/bin/rabbitmq-server", [], { stdio: ["ignore", "pipe", "pipe"], detached: true, env });
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  const close = async () => {
    await stopGroup(child, 20_000);
    await stopGroup(epmd);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitPort("rabbitmq-server", mqtt, child, 90_000, () => out);
  } catch (e) {
    await close();
    throw e;
  }
  const v = version("dpkg-query", ["-W", "-f=${Version}", "rabbitmq-server"], /^([0-9.]+)/);
  return { kind: "rabbitmq", name: `RabbitMQ ${v}`, host: HOST, port: mqtt, log: () => out, close };
}

/** One node of a cluster: its MQTT port, and faults on it. */
export interface ClusterNode {
  name: string;
  port: number;
  /** SIGKILL: the node is gone at once, its files as they were. */
  kill(): Promise<void>;
  /** SIGTERM: the node shuts down in order. */
  stop(): Promise<void>;
  /** Starts it again (after kill or stop) on the same ports and files; resolves when it listens. */
  start(): Promise<void>;
}

export interface Cluster {
  name: string;
  nodes: ClusterNode[];
  /** HAProxy in front of the nodes (TCP mode, health checks): where boards connect. */
  host: string;
  port: number;
  /** Restarts HAProxy (every connection through it drops). */
  restartProxy(): Promise<void>;
  /** The process groups of the nodes and HAProxy (each started in a group of its own): for CPU figures. */
  groups(): number[];
  log(): string;
  close(): Promise<void>;
}

/** Why a NATS cluster behind HAProxy cannot run here, or null. */
export function clusterMissing(): string | null {
  const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
  if (!has("nats-server")) return "nats-server is not installed (Debian package nats-server; make deps installs it)";
  if (!has("haproxy")) return "haproxy is not installed (Debian package haproxy; make deps installs it)";
  return null;
}

/**
 * HAProxy in TCP mode in front of `backends`, health-checking each every 200 ms (down after 2
 * failures): `balance first`, so every connection goes to the first node that is up (the one a
 * test's faults then hit), and a connection to a node that refuses is sent to another.
 */
async function startProxy(dir: string, port: number, backends: { name: string; port: number }[]): Promise<{ restart(): Promise<void>; close(): Promise<void>; log(): string; pid(): number }> {
  const cfg = path.join(dir, "haproxy.cfg");
  fs.writeFileSync(cfg, [
    "global", "  maxconn 4096",
    "defaults", "  mode tcp", "  timeout connect 1s", "  timeout client 300s", "  timeout server 300s", "  retries 3", "  option redispatch",
    "frontend mqtt", `  bind ${HOST}:${port}`, "  default_backend nodes",
    "backend nodes", "  balance first",
    ...backends.map((b) => `  server ${b.name} ${HOST}:${b.port} check inter 200 fall 2 rise 2 maxconn 4096`),
  ].join("\n") + "\n");
  let out = "";
  let child: ChildProcess;
  const start = async () => {
    child = spawn("haproxy", ["-f", cfg, "-db"], { stdio: ["ignore", "pipe", "pipe"], detached: true });
    child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
    await waitPort("haproxy", port, child, 10_000, () => out);
  };
  await start();
  return {
    restart: async () => {
      await stopGroup(child);
      await start();
    },
    close: () => stopGroup(child),
    log: () => out,
    pid: () => child.pid as number,
  };
}

/**
 * Three NATS Server nodes in MQTT mode, clustered with routes, JetStream on each with the MQTT
 * streams replicated to all three (`stream_replicas: 3`: a session and its messages survive the
 * loss of a node), behind HAProxy. Anonymous (no users): the cluster profile is about faults.
 */
export async function startNatsCluster(): Promise<Cluster> {
  const why = clusterMissing();
  if (why !== null) throw new Error(why);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-nats-cluster-"));
  const ports: { client: number; mqtt: number; route: number }[] = [];
  for (let i = 0; i < 3; i++) ports.push({ client: await freePort(), mqtt: await freePort(), route: await freePort() });
  const routes = ports.map((p) => `nats-route://${HOST}:${p.route}`).join(", ");
  const children: (ChildProcess | undefined)[] = [];
  const logs: string[] = [];
  const nodes: ClusterNode[] = ports.map((p, i) => {
    const name = `n${i + 1}`;
    const conf = path.join(dir, `${name}.conf`);
    const logFile = path.join(dir, `${name}.log`);
    logs.push(logFile);
    fs.writeFileSync(conf, [
      `listen: "${HOST}:${p.client}"`, `server_name: "${name}"`,
      `jetstream { store_dir: "${dir}/js-${name}" }`,
      `mqtt { listen: "${HOST}:${p.mqtt}", stream_replicas: 3 }`,
      `cluster { name: "petrel", listen: "${HOST}:${p.route}", routes: [ ${routes} ] }`,
      `log_file: "${logFile}"`,
    ].join("\n") + "\n");
    const node: ClusterNode = {
      name, port: p.mqtt,
      start: async () => {
        const c = spawn("nats-server", ["-c", conf], { stdio: "ignore", detached: true });
        children[i] = c;
        await waitPort(`nats-server ${name}`, p.mqtt, c, 20_000, () => readLog(logFile));
      },
      kill: () => killGroup(children[i]),
      stop: async () => {
        const c = children[i];
        if (c !== undefined) await stopGroup(c);
      },
    };
    return node;
  });
  const proxyPort = await freePort();
  let proxy: Awaited<ReturnType<typeof startProxy>> | undefined;
  const close = async () => {
    if (proxy !== undefined) await proxy.close();
    for (const n of nodes) await n.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await Promise.all(nodes.map((n) => n.start()));
    // the JetStream meta leader is elected once the routes are up: MQTT sessions need it
    const until = Date.now() + 30_000;
    while (!logs.some((l) => /metadata leader/.test(readLog(l)))) {
      if (Date.now() > until) throw new Error(`the NATS cluster elected no JetStream leader within 30 s: ${logs.map(readLog).join("\n").slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    proxy = await startProxy(dir, proxyPort, nodes.map((n) => ({ name: n.name, port: n.port })));
  } catch (e) {
    await close();
    throw e;
  }
  const v = version("nats-server", ["--version"], /v([0-9.]+)/);
  const p = proxy;
  return {
    name: `NATS Server ${v}, 3 nodes behind HAProxy`, nodes, host: HOST, port: proxyPort,
    restartProxy: () => p.restart(),
    groups: () => [...children.map((c) => c?.pid as number), p.pid()],
    log: () => logs.map((l) => `${path.basename(l)}:\n${readLog(l)}`).join("\n") + `\nhaproxy:\n${p.log()}`,
    close,
  };
}

/**
 * Three RabbitMQ nodes (distinct node names and ports, one Erlang cookie and port mapper), formed
 * into one cluster by classic peer discovery, with the MQTT plugin keeping durable sessions in
 * quorum queues (`mqtt.durable_queue_type = quorum`: replicated, so a session survives a node's
 * loss while two of three are up), behind HAProxy. MQTT clients without credentials are taken as
 * user petrel.
 */
export async function startRabbitCluster(): Promise<Cluster> {
  const why = brokerMissing("rabbitmq") ?? clusterMissing();
  if (why !== null) throw new Error(why);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-rabbitmq-cluster-"));
  const epmdPort = await freePort();
  const names = [1, 2, 3].map((i) => `petrel${process.pid}r${i}@localhost`);
  const ports: { amqp: number; mqtt: number; dist: number }[] = [];
  for (let i = 0; i < 3; i++) ports.push({ amqp: await freePort(), mqtt: await freePort(), dist: await freePort() });
  fs.writeFileSync(path.join(dir, ".erlang.cookie"), crypto.randomBytes(16).toString("hex"), { mode: 0o400 });
  fs.writeFileSync(path.join(dir, "definitions.json"), JSON.stringify({
    users: [{ name: USER, password_hash: rabbitHash(PASSWORD), hashing_algorithm: "rabbit_password_hashing_sha256", tags: [] }],
    vhosts: [{ name: "/" }], permissions: [{ user: USER, vhost: "/", configure: ".*", write: ".*", read: ".*" }],
  }));
  fs.writeFileSync(path.join(dir, "enabled_plugins"), "[rabbitmq_mqtt].\n");
  const epmd = spawn("epmd", ["-port", String(epmdPort)], { stdio: "ignore", detached: true });
  const children: (ChildProcess | undefined)[] = [];
  const outs: string[] = ["", "", ""];
  const nodes: ClusterNode[] = ports.map((p, i) => {
    const name = `r${i + 1}`;
    const nd = path.join(dir, name);
    fs.mkdirSync(nd, { recursive: true });
    fs.writeFileSync(path.join(nd, "rabbitmq.conf"), [
      `listeners.tcp.default = ${HOST}:${p.amqp}`,
      `mqtt.listeners.tcp.default = ${HOST}:${p.mqtt}`,
      "mqtt.allow_anonymous = true", `mqtt.default_user = ${USER}`, `mqtt.default_pass = ${PASSWORD}`,
      "mqtt.durable_queue_type = quorum",
      `load_definitions = ${path.join(dir, "definitions.json")}`,
      "loopback_users = none",
      "cluster_formation.peer_discovery_backend = classic_config",
      ...names.map((n, k) => `cluster_formation.classic_config.nodes.${k + 1} = ${n}`),
    ].join("\n") + "\n");
    const env = {
      ...process.env, HOME: dir, RABBITMQ_NODENAME: names[i], RABBITMQ_CONFIG_FILE: path.join(nd, "rabbitmq"),
      RABBITMQ_ENABLED_PLUGINS_FILE: path.join(dir, "enabled_plugins"), RABBITMQ_MNESIA_BASE: path.join(nd, "mnesia"),
      RABBITMQ_LOG_BASE: path.join(nd, "log"), RABBITMQ_DIST_PORT: String(p.dist), ERL_EPMD_PORT: String(epmdPort),
      RABBITMQ_PID_FILE: path.join(nd, "pid"),
    };
    return {
      name, port: p.mqtt,
      start: async () => {
        const c = spawn("/usr/lib/rabbitmq/bin/rabbitmq-server", [], { stdio: ["ignore", "pipe", "pipe"], detached: true, env });
        c.stdout?.on("data", (d: Buffer) => (outs[i] += d.toString()));
        c.stderr?.on("data", (d: Buffer) => (outs[i] += d.toString()));
        children[i] = c;
        await waitPort(`rabbitmq-server ${name}`, p.mqtt, c, 120_000, () => outs[i]);
      },
      kill: () => killGroup(children[i]),
      stop: async () => {
        const c = children[i];
        if (c !== undefined) await stopGroup(c, 30_000);
      },
    };
  });
  const proxyPort = await freePort();
  let proxy: Awaited<ReturnType<typeof startProxy>> | undefined;
  const close = async () => {
    if (proxy !== undefined) await proxy.close();
    for (const n of nodes) await n.stop();
    await stopGroup(epmd);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    // the first node forms the cluster; the other two join it
    await nodes[0].start();
    await Promise.all([nodes[1].start(), nodes[2].start()]);
    proxy = await startProxy(dir, proxyPort, nodes.map((n) => ({ name: n.name, port: n.port })));
  } catch (e) {
    await close();
    throw e;
  }
  const v = version("dpkg-query", ["-W", "-f=${Version}", "rabbitmq-server"], /^([0-9.]+)/);
  const px = proxy;
  return {
    name: `RabbitMQ ${v}, 3 nodes behind HAProxy`, nodes, host: HOST, port: proxyPort,
    restartProxy: () => px.restart(),
    groups: () => [...children.map((c) => c?.pid as number), px.pid()],
    log: () => outs.map((o, i) => `r${i + 1}:\n${o}`).join("\n") + `\nhaproxy:\n${px.log()}`,
    close,
  };
}
