/**
 * A real mosquitto for tests and the simulator: its own config in a temp directory, an ephemeral
 * loopback port, a persistence directory it can write, its log kept for assertions, and torn
 * down after. Every wait is bounded.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

export interface BrokerOptions {
  /** user → password; when given, anonymous clients are refused. */
  users?: Record<string, string>;
  /** Extra mosquitto.conf lines. */
  extra?: string[];
  /** Explicit on purpose: mosquitto 2.0.11 drops QoS 2 messages beyond it (platforms.md). 0 = unlimited. */
  maxInflight?: number;
  /** Reuse a port (restarts keep the address). */
  port?: number;
  /** Reuse a directory (restarts keep persistence). */
  dir?: string;
  /** Log types (default: all; a fleet of thousands logs errors and notices only). */
  logTypes?: string[];
  /** Saved state across restarts (default true). */
  persistence?: boolean;
  /**
   * Seconds between saves of that state (default: a save after every change, so a kill -9 loses
   * nothing a test just saw acknowledged). Every save writes the whole database, so a broker
   * holding a large backlog slows to a few dozen messages a second when it saves after each one.
   */
  autosaveSeconds?: number;
  /** Makes the listener TLS only (no plain MQTT on it). */
  tls?: BrokerTls;
}

/** A TLS listener's files (PEM paths) and how it treats client certificates. */
export interface BrokerTls {
  certfile: string;
  keyfile: string;
  /** CA that client certificates must chain to; required with `requireCertificate`. */
  cafile?: string;
  /** Refuses clients without a certificate signed by `cafile`. */
  requireCertificate?: boolean;
  /** The client certificate's CN becomes the user name (needs `requireCertificate`). */
  useIdentityAsUsername?: boolean;
}

/** The mosquitto.conf lines that make the listener just defined use TLS. */
function tlsLines(t: BrokerTls): string[] {
  if (t.requireCertificate && !t.cafile) throw new Error("BrokerTls.requireCertificate needs cafile");
  const lines = [`certfile ${t.certfile}`, `keyfile ${t.keyfile}`];
  if (t.cafile) lines.push(`cafile ${t.cafile}`);
  lines.push(`require_certificate ${t.requireCertificate ? "true" : "false"}`);
  if (t.useIdentityAsUsername) lines.push("use_identity_as_username true");
  return lines;
}

export interface Broker {
  host: string;
  port: number;
  dir: string;
  log(): string;
  /** SIGTERM: mosquitto saves its persistence and exits. */
  stop(): Promise<void>;
  /** SIGKILL: whatever was not saved is lost. */
  kill(): Promise<void>;
  /** The same port and directory, a new process. */
  restart(): Promise<Broker>;
  /** Stops it and removes its directory. */
  close(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (bound then released). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, logFile: string): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    if (child.exitCode !== null) throw new Error(`mosquitto exited (${child.exitCode}): ${fs.existsSync(logFile) ? fs.readFileSync(logFile, "utf8") : ""}`);
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect({ host: "127.0.0.1", port }, () => {
        c.destroy();
        resolve(true);
      });
      c.once("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`mosquitto did not listen on ${port} within 5 s`);
}

function waitExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      child.kill("SIGKILL");
    }, 5000);
    child.once("exit", () => {
      clearTimeout(t);
      resolve();
    });
  });
}

export async function startBroker(opts: BrokerOptions = {}): Promise<Broker> {
  const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), "petrel-mosquitto-"));
  const port = opts.port ?? (await freePort());
  const logFile = path.join(dir, "mosquitto.log");
  const lines = [
    `listener ${port} 127.0.0.1`,
    // Listener options apply to the listener above them: right after it, before any `extra`.
    ...(opts.tls ? tlsLines(opts.tls) : []),
    `persistence ${opts.persistence === false ? "false" : "true"}`,
    `persistence_location ${dir}/`,
    `autosave_interval ${opts.autosaveSeconds ?? 1}`,
    `autosave_on_changes ${opts.autosaveSeconds === undefined ? "true" : "false"}`,
    `max_inflight_messages ${opts.maxInflight ?? 20}`,
    `log_dest file ${logFile}`,
    ...(opts.logTypes ?? ["all"]).map((t) => `log_type ${t}`),
  ];
  // Started as root, mosquitto drops to the `mosquitto` user, which cannot write our directory.
  if (process.getuid?.() === 0) lines.push("user root");
  if (opts.users) {
    const pw = path.join(dir, "passwords");
    fs.writeFileSync(pw, "");
    for (const [u, p] of Object.entries(opts.users)) {
      const r = spawn("mosquitto_passwd", ["-b", pw, u, p], { stdio: "ignore" });
      await new Promise((res) => r.once("exit", res));
    }
    lines.push("allow_anonymous false", `password_file ${pw}`);
  } else {
    lines.push("allow_anonymous true");
  }
  lines.push(...(opts.extra ?? []));
  const conf = path.join(dir, "mosquitto.conf");
  fs.writeFileSync(conf, lines.join("\n") + "\n");
  const child = spawn("mosquitto", ["-c", conf], { stdio: "ignore" });
  await waitForPort(port, child, logFile);
  const broker: Broker = {
    host: "127.0.0.1",
    port,
    dir,
    log: () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, "utf8") : ""),
    stop: async () => {
      child.kill("SIGTERM");
      await waitExit(child);
    },
    kill: async () => {
      child.kill("SIGKILL");
      await waitExit(child);
    },
    restart: async () => {
      await broker.stop();
      return startBroker({ ...opts, port, dir });
    },
    close: async () => {
      await broker.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return broker;
}
