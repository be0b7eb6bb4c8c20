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
import { startFaultProxy, type FaultProxy } from "./fault-proxy";
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

/**
 * Whether a NATS node's monitoring port answers /healthz?js-server-only=true with 200 (bounded at
 * 2 s): the node is up and current with the JetStream meta leader. (The full /healthz of NATS
 * 2.9.10 reports a restarted node's idle MQTT consumers "not current" for minutes on end.)
 */
function healthz(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect({ host: HOST, port }, () => c.write(`GET /healthz?js-server-only=true HTTP/1.0\r\nHost: ${HOST}\r\n\r\n`));
    let out = "";
    const bound = setTimeout(() => c.destroy(), 2000);
    c.on("data", (d: Buffer) => (out += d.toString("latin1")));
    c.on("error", () => undefined);
    c.on("close", () => {
      clearTimeout(bound);
      resolve(/^HTTP\/1\.[01] 200/.test(out));
    });
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
    RABBITMQ_PID_FILE: path.join(dir, "pid"), ERL_CRASH_DUMP: path.join(dir, "erl_crash.dump"),
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
  /**
   * Cuts the node off from the other nodes (true) or joins it again (false): the links between
   * them reset and new ones refused, while clients still reach it. Only on a cluster started with
   * `partitions` (else it throws).
   */
  isolate(on: boolean): Promise<void>;
}

export interface ClusterOptions {
  /**
   * Ready for `isolate`: NATS routes through a fault proxy per ordered pair of nodes; RabbitMQ
   * needs nothing more (its nodes are cut apart through their Erlang distribution).
   */
  partitions?: boolean;
}

export interface Cluster {
  name: string;
  nodes: ClusterNode[];
  /** HAProxy in front of the nodes (TCP mode, health checks): where boards connect. */
  host: string;
  port: number;
  /** Restarts HAProxy (every connection through it drops). */
  restartProxy(): Promise<void>;
  /**
   * Whether every node is up and serving as part of the cluster (NATS: every node's /healthz with
   * js-server-only, in contact with the JetStream meta leader; RabbitMQ: every node's MQTT
   * listener open, which a paused minority node closes).
   */
  ready(): Promise<boolean>;
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
 * Starts a cluster again on new ports (at most three tries) when one of the ports it chose was
 * taken before its node bound it: a port is free when chosen, and the machine's own outgoing
 * connections draw from the same range while a node boots for seconds.
 */
async function freshPorts(start: () => Promise<Cluster>): Promise<Cluster> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (e) {
      if (attempt >= 3 || !/already_used|EADDRINUSE|address already in use/i.test(String(e))) throw e;
    }
  }
}

/**
 * HAProxy in TCP mode in front of `backends`, health-checking each every 200 ms (down after 2
 * failures): `balance first`, so every connection goes to the first node that is up (the one a
 * test's faults then hit), and a connection to a node that refuses is sent to another.
 */
async function startProxy(dir: string, port: number, backends: { name: string; port: number; healthz?: number }[]): Promise<{ restart(): Promise<void>; close(): Promise<void>; log(): string; pid(): number }> {
  const cfg = path.join(dir, "haproxy.cfg");
  const http = backends.some((b) => b.healthz !== undefined);
  fs.writeFileSync(cfg, [
    "global", "  maxconn 4096",
    "defaults", "  mode tcp", "  timeout connect 1s", "  timeout check 1s", "  timeout client 300s", "  timeout server 300s", "  retries 3", "  option redispatch",
    "frontend mqtt", `  bind ${HOST}:${port}`, "  default_backend nodes",
    "backend nodes", "  balance first",
    ...(http ? ["  option httpchk GET /healthz?js-server-only=true"] : []),
    ...backends.map((b) => `  server ${b.name} ${HOST}:${b.port} check inter 200 fall 2 rise 2 maxconn 4096${b.healthz !== undefined ? ` port ${b.healthz}` : ""}`),
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
export function startNatsCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  return freshPorts(() => natsCluster(opts));
}

async function natsCluster(opts: ClusterOptions): Promise<Cluster> {
  const why = clusterMissing();
  if (why !== null) throw new Error(why);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-nats-cluster-"));
  const ports: { client: number; mqtt: number; route: number; http: number }[] = [];
  for (let i = 0; i < 3; i++) ports.push({ client: await freePort(), mqtt: await freePort(), route: await freePort(), http: await freePort() });
  // with partitions, node i reaches node j only through links[i][j], a fault proxy to j's route
  // port, so a node is cut off by cutting its four links (two each way); each node advertises a
  // port where nothing listens, so no route learnt from a peer can go around the proxies
  const links: (FaultProxy | undefined)[][] = [[], [], []];
  if (opts.partitions === true) {
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) if (i !== j) links[i][j] = await startFaultProxy({ target: { host: HOST, port: ports[j].route } });
  }
  const routesOf = (i: number) => ports.map((p, j) => (opts.partitions === true ? (j === i ? undefined : links[i][j]!.port) : p.route))
    .filter((p) => p !== undefined).map((p) => `nats-route://${HOST}:${p}`).join(", ");
  const nowhere = opts.partitions === true ? await freePort() : 0;
  /** Every node's health check passes (Cluster.ready). */
  const healthy = async () => (await Promise.all(ports.map((q) => healthz(q.http)))).every((ok) => ok);
  const children: (ChildProcess | undefined)[] = [];
  const logs: string[] = [];
  const nodes: ClusterNode[] = ports.map((p, i) => {
    const name = `n${i + 1}`;
    const conf = path.join(dir, `${name}.conf`);
    const logFile = path.join(dir, `${name}.log`);
    logs.push(logFile);
    fs.writeFileSync(conf, [
      `listen: "${HOST}:${p.client}"`, `server_name: "${name}"`, `http: "${HOST}:${p.http}"`,
      `jetstream { store_dir: "${dir}/js-${name}" }`,
      `mqtt { listen: "${HOST}:${p.mqtt}", stream_replicas: 3 }`,
      `cluster { name: "petrel", listen: "${HOST}:${p.route}", routes: [ ${routesOf(i)} ]${nowhere > 0 ? `, advertise: "${HOST}:${nowhere}"` : ""} }`,
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
      isolate: async (on) => {
        if (opts.partitions !== true) throw new Error("isolate: start the cluster with { partitions: true }");
        for (let k = 0; k < 3; k++) {
          for (const l of k === i ? [] : [links[i][k]!, links[k][i]!]) {
            await l.refuse(on, "reset");
            if (on) l.reset();
          }
        }
      },
    };
    return node;
  });
  const proxyPort = await freePort();
  let proxy: Awaited<ReturnType<typeof startProxy>> | undefined;
  const close = async () => {
    if (proxy !== undefined) await proxy.close();
    for (const n of nodes) await n.stop();
    for (const l of links.flat()) await l?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await Promise.all(nodes.map((n) => n.start()));
    // the JetStream meta leader is elected once the routes are up: MQTT sessions need it
    const until = Date.now() + 30_000;
    while (!logs.some((l) => /metadata leader/.test(readLog(l))) || !(await healthy())) {
      if (Date.now() > until) throw new Error(`the NATS cluster elected no JetStream leader, or a node was not healthy, within 30 s: ${logs.map(readLog).join("\n").slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    // HAProxy checks each node's /healthz?js-server-only=true, which fails while the node has no
    // contact with the JetStream meta leader (cut off from the others, or rejoining after a
    // restart): a TCP check would keep sending boards to a node that closes every MQTT session it
    // cannot store
    proxy = await startProxy(dir, proxyPort, nodes.map((n, i) => ({ name: n.name, port: n.port, healthz: ports[i].http })));
  } catch (e) {
    await close();
    throw e;
  }
  const v = version("nats-server", ["--version"], /v([0-9.]+)/);
  const p = proxy;
  return {
    name: `NATS Server ${v}, 3 nodes behind HAProxy`, nodes, host: HOST, port: proxyPort,
    restartProxy: () => p.restart(),
    ready: healthy,
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
export function startRabbitCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  return freshPorts(() => rabbitCluster(opts));
}

async function rabbitCluster(opts: ClusterOptions): Promise<Cluster> {
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
  /** rabbitmqctl eval on node i (asynchronous: the boards in this process keep running), bounded. */
  const ctl = (i: number, expr: string) => new Promise<void>((resolve, reject) => {
    let out = "";
    const c = spawn("/usr/lib/rabbitmq/bin/rabbitmqctl", ["-n", names[i], "eval", expr], {
      stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, HOME: dir, ERL_EPMD_PORT: String(epmdPort), ERL_CRASH_DUMP: path.join(dir, "erl_crash.dump") } });
    c.stdout?.on("data", (d: Buffer) => (out += d.toString()));
    c.stderr?.on("data", (d: Buffer) => (out += d.toString()));
    const bound = setTimeout(() => c.kill("SIGKILL"), 30_000);
    c.on("close", (code) => {
      clearTimeout(bound);
      if (code === 0) resolve();
      else reject(new Error(`rabbitmqctl eval on ${names[i]} failed (${code}): ${out.slice(-500)}`));
    });
  });
  const nodes: ClusterNode[] = ports.map((p, i) => {
    const name = `r${i + 1}`;
    const nd = path.join(dir, name);
    fs.mkdirSync(nd, { recursive: true });
    fs.writeFileSync(path.join(nd, "rabbitmq.conf"), [
      `listeners.tcp.default = ${HOST}:${p.amqp}`,
      `mqtt.listeners.tcp.default = ${HOST}:${p.mqtt}`,
      "mqtt.allow_anonymous = true", `mqtt.default_user = ${USER}`, `mqtt.default_pass = ${PASSWORD}`,
      "mqtt.durable_queue_type = quorum",
      // a node cut off from the other two stops (closing its MQTT listener, so HAProxy's check
      // sends boards to the majority) and starts again once it sees them: no split brain
      "cluster_partition_handling = pause_minority",
      `load_definitions = ${path.join(dir, "definitions.json")}`,
      "loopback_users = none",
      "cluster_formation.peer_discovery_backend = classic_config",
      ...names.map((n, k) => `cluster_formation.classic_config.nodes.${k + 1} = ${n}`),
    ].join("\n") + "\n");
    const env = {
      ...process.env, HOME: dir, RABBITMQ_NODENAME: names[i], RABBITMQ_CONFIG_FILE: path.join(nd, "rabbitmq"),
      RABBITMQ_ENABLED_PLUGINS_FILE: path.join(dir, "enabled_plugins"), RABBITMQ_MNESIA_BASE: path.join(nd, "mnesia"),
      RABBITMQ_LOG_BASE: path.join(nd, "log"), RABBITMQ_DIST_PORT: String(p.dist), ERL_EPMD_PORT: String(epmdPort),
      RABBITMQ_PID_FILE: path.join(nd, "pid"), ERL_CRASH_DUMP: path.join(nd, "erl_crash.dump"),
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
      // a cut through the Erlang distribution: the node takes a wrong cookie for each peer and
      // drops its links, so every handshake between them fails until the right cookie is back
      // (then a ping rejoins them; a paused minority node also pings them every second)
      isolate: async (on) => {
        if (opts.partitions !== true) throw new Error("isolate: start the cluster with { partitions: true }");
        const peers = names.filter((_, k) => k !== i).map((n) => `'${n}'`).join(", ");
        await ctl(i, on
          ? `[begin erlang:set_cookie(N, petrel_cut), erlang:disconnect_node(N) end || N <- [${peers}]], ok.`
          : `[begin erlang:set_cookie(N, erlang:get_cookie()), net_adm:ping(N) end || N <- [${peers}]], ok.`);
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
    ready: async () => (await Promise.all(ports.map((q) => listening(q.mqtt)))).every((ok) => ok),
    groups: () => [...children.map((c) => c?.pid as number), px.pid()],
    log: () => outs.map((o, i) => `r${i + 1}:\n${o}`).join("\n") + `\nhaproxy:\n${px.log()}`,
    close,
  };
}
