import { afterWord, words } from "../console/line";
import type { SettingsContext } from "./config";
import { lazy } from "./lazy";
import { find } from "../port/text";
import { diagnose, type DiagFacts } from "./diag";
import { FEATURE_FAILOVER, FEATURE_MQTT5, FEATURE_QOS2, FEATURE_SLEEP } from "../features";
import type { SensorNode } from "./node";

/**
 * The node's commands, for the serial console and the command topic: one lazy module
 * (app/lazy.ts), loaded when a line is typed or arrives and let go after; the settings commands
 * are config.ts's (another lazy module, loaded only for them). From the command topic
 * (`remote`): no unset, factory-reset or pem, and set refuses secrets.
 */
export interface CommandContext extends SettingsContext {
  node: SensorNode;
}

/**
 * Runs one command line; every answer goes through `say`. An unknown command, a wrong use and a
 * failing command are answered, never raised.
 */
export function runLine(ctx: CommandContext, line: string, say: (this: void, line: string) => void, remote: boolean): void {
  const args = words(line);
  if (args.length === 0) return;
  const name = args[0];
  const node = ctx.node;
  const c = node.client;
  const st = node.settings;
  if (name === "help") {
    say("help  lists the commands");
    lazy("config").settingsHelp(remote, node.board.tls, say);
    say("status  connection, uptime, readings queued, sent, acknowledged and dropped, unsaved settings");
    say("diag  walks Wi-Fi, DNS, TCP, TLS, MQTT, subscription and ping; names the first broken link");
    say("publish  a reading now");
    say(`pub TOPIC QOS TEXT  publishes TEXT now (QoS 0, 1${FEATURE_QOS2 ? " or 2" : ""}): to try a broker, a subscriber or a rule`);
    say("held [retry|drop N]  messages the broker refused (it closed the connection on them): lists them, sends N again, or deletes it");
    say("reboot  restarts the board (unsaved settings are lost)");
    say(featuresLine());
  } else if (name === "status") {
    say(`node ${node.clientId}: ${node.connected ? "connected" : "not connected"}, up ${node.uptime()} s, ` +
      `${node.connects > 0 ? node.connects - 1 : 0} reconnects, readings: ${node.queued} queued, ${readingsSent(node)} sent, ` +
      `${st.int("qos") > 0 ? `${node.acked} acknowledged, ` : ""}${node.dropped} dropped` +
      `${c !== undefined ? `, outbox ${c.outbox.count}` : ""}`);
    const le = node.lastError;
    say(`last error: ${le !== undefined ? `${le.code}: ${le.message}` : "none"}`);
    if (FEATURE_MQTT5 && c !== undefined && c.v5 !== undefined) say(`protocol: ${protocolOf(c.v5.level)}`);
    // (the held module only when something is held: it is another lazy module)
    if (c !== undefined && c.p.storage.listRecords(c.settings.storePrefix + "h").length > 0) say(lazy("held").heldLine(c));
    const memory = node.board.platform.memory;
    if (memory !== undefined) say(`memory: ${memory()}`);
    say(st.unsaved.length > 0 ? `unsaved settings: ${st.unsaved.join(", ")} (save keeps them)` : "settings: all saved");
    say(featuresLine());
  } else if (name === "diag") {
    const link = node.board.platform.link;
    const facts: DiagFacts = {
      link: link === undefined ? "none" : link.isUp() ? "up" : "down",
      connected: node.connected,
      failed: node.facts.failed,
      attempts: c !== undefined ? c.stats.attempts : 0,
      brokers: st.get("brokers"),
      tls: st.on("tls") || find(st.get("brokers"), "tls:") >= 0,
      clientId: node.clientId,
      subscription: node.facts.subscription,
      cmdTopic: node.topics.cmd,
      pingMs: c !== undefined ? c.stats.pingMs : -1,
      keepalive: st.int("keepalive"),
      shortDrops: node.facts.shortDrops,
    };
    const v5 = c !== undefined ? c.v5 : undefined;
    if (FEATURE_MQTT5 && v5 !== undefined) {
      facts.protocol = protocolOf(v5.level);
      // (a reason code the broker gave: the client's last error names it, with the broker's words)
      if (v5.reason !== 0 && c !== undefined && c.lastError !== undefined) facts.said = c.lastError;
    }
    for (const l of diagnose(facts)) say(l);
  } else if (name === "publish") {
    if (node.task >= 0) node.board.platform.sched.wake(node.task);
    say("publishing a reading now");
  } else if (name === "pub") {
    const q = args.length >= 4 ? args[2] : "";
    if (q === "2" && !FEATURE_QOS2) say("pub: QoS 2 is left out of this board's build; use 0 or 1");
    else if (q !== "0" && q !== "1" && q !== "2") say("pub: usage: pub TOPIC QOS TEXT, QoS 0, 1 or 2 (e.g. pub test/hello 1 hi)");
    else if (c === undefined) say("pub: no client (the settings cannot make one: diag says why)");
    else {
      // QoS 1/2: the broker's acknowledgement (or why there will be none) is told when it comes
      const text = afterWord(afterWord(afterWord(line)));
      const what = `${args[1]} ${q} ${text}`;
      const log = node.board.log;
      const err = c.publish(args[1], text, q === "0" ? 0 : q === "1" ? 1 : 2, false, q === "0" ? undefined : (e) => {
        log(e === undefined ? `pub: acknowledged: ${what}` : `pub: not delivered: ${what}: ${e.code}: ${e.message}`);
      });
      say(err === undefined ? `pub: queued (outbox ${c.outbox.count})` : `pub: ${err.code}: ${err.message}`);
    }
  } else if (name === "held") {
    lazy("held").heldCommand(node, args, say);
  } else if (name === "reboot") {
    say("rebooting");
    node.board.reboot();
  } else if (!lazy("config").settingsCommand(ctx, args, line, say, remote)) {
    say(`error: unknown command "${name}"; type help for the list`);
  }
}

/**
 * The node's readings sent: written to the network at least once (QoS 0: written; QoS 1/2: the
 * first PUBLISH written, acknowledged or not). Those acknowledged (QoS 0: written) are counted
 * (node.acked); the others sent are still in the outbox, published with the node's reading
 * callback and marked sent before (their DUP flag is due). So queued >= sent >= acknowledged.
 * A reading the broker refused (held: app/held.ts) or lost to storage trouble after it was sent
 * leaves the outbox unacknowledged and is counted no more.
 */
export function readingsSent(node: SensorNode): number {
  let n = node.acked;
  const c = node.client;
  // (a node with a client has its reading callback: launch() sets both)
  if (c === undefined) return n;
  const o = c.outbox;
  for (let k = 0; k < o.count; k++) if (o.dones[k] === node.reading && o.dupAt(k) === 1) n = n + 1;
  return n;
}

/** The protocol a 5.0 client speaks: 5.0, or 3.1.1 to a broker that answered 5.0 in 3.1.1. */
function protocolOf(level: number): string {
  return level === 5 ? "MQTT 5.0" : "MQTT 3.1.1 (the broker answered MQTT 5.0 in 3.1.1; it gets 3.1.1 until a reboot)";
}

/**
 * What this board's build carries of the features a profile may leave out (boards/<name>.json,
 * `features`): `status` and `help` end with it.
 */
function featuresLine(): string {
  const name = (on: boolean, n: string) => (on ? ` ${n}` : "");
  const has = `${name(FEATURE_QOS2, "qos2")}${name(FEATURE_FAILOVER, "failover")}${name(FEATURE_SLEEP, "sleep")}${name(FEATURE_MQTT5, "mqtt5")}`;
  const out = `${name(!FEATURE_QOS2, "qos2")}${name(!FEATURE_FAILOVER, "failover")}${name(!FEATURE_SLEEP, "sleep")}${name(!FEATURE_MQTT5, "mqtt5")}`;
  return `features:${has.length > 0 ? has : " the floor only"}${out.length > 0 ? `; left out of this board's build:${out}` : ""}`;
}
