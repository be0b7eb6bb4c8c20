import { afterWord, words, type LineConsole } from "../console/line";
import { port } from "../port/port";
import { factoryReset, saveSettings, setSetting, setting, shown, keyAt, unsaved, unsetSetting, PEM_MAX, pemRecord } from "./config";
import { diagnose, type DiagFacts } from "./diag";
import type { SensorNode } from "./node";
import { isSecret } from "./settings";

/**
 * The node's commands, for the serial console and the command topic: one lazy module (app/lazy.ts),
 * loaded when a line is typed or arrives and let go after. Nothing a command prints carries a
 * secret's value (config.ts's `shown` masks it; refusals never echo it). From the command topic
 * (`remote`): no unset, factory-reset or pem, and set refuses secrets.
 */
export interface CommandContext {
  node: SensorNode;
  /** The serial console (pem pastes through its collect mode); none for the command topic. */
  console?: LineConsole;
  /** factory-reset asked for its confirmation: the next `factory-reset yes` does it. */
  confirmReset?: boolean;
  /** Said after factory-reset, once the settings are the defaults (the app's log line). */
  afterReset?: (this: void) => void;
}

type Say = (this: void, line: string) => void;

/** The commands and what they take, for `help` (in its order). */
function help(remote: boolean, tls: boolean, say: Say): void {
  say("help  lists the commands");
  say("show  every setting (secrets masked), with * on unsaved changes");
  say("get KEY  one setting (secrets masked)");
  say("set KEY VALUE  changes a setting now (save keeps it); the value is the rest of the line");
  if (!remote) say("unset KEY  back to the default (save keeps it)");
  say("save  writes the settings to flash (a power cut leaves the old or the new ones)");
  if (!remote) say("factory-reset  erases every setting (asks to confirm: factory-reset yes)");
  say("status  connection, uptime, readings sent and dropped, unsaved settings");
  say("diag  walks Wi-Fi, DNS, TCP, TLS, MQTT, subscription and ping; names the first broken link");
  say("publish  a reading now");
  say("pub TOPIC QOS TEXT  publishes TEXT now (QoS 0, 1 or 2): to try a broker, a subscriber or a rule");
  say("reboot  restarts the board (unsaved settings are lost)");
  if (!remote && tls) say("pem [ca|cert|key [clear]]  lists, pastes (to its -----END line) or clears a TLS certificate or key");
}

/** What `diag` reads: the node's view of its client's last attempts. */
export function diagFacts(node: SensorNode): DiagFacts {
  const c = node.client;
  const link = node.board.platform.link;
  const st = node.settings;
  return {
    link: link === undefined ? "none" : link.up() ? "up" : "down",
    connected: node.connected,
    failed: node.facts.failed,
    attempts: c !== undefined ? c.stats.attempts : 0,
    brokers: st.get("brokers"),
    tls: st.on("tls") || st.get("brokers").indexOf("tls:") >= 0,
    clientId: node.id(),
    subscription: node.facts.subscription,
    cmdTopic: node.topics.cmd,
    pingMs: c !== undefined ? c.stats.pingMs : -1,
    keepalive: st.int("keepalive"),
    shortDrops: node.facts.shortDrops,
  };
}

/**
 * Runs one command line; every answer goes through `say`. An unknown command, a wrong use and a
 * failing command are answered, never raised.
 */
export function runLine(ctx: CommandContext, line: string, say: Say, remote: boolean): void {
  const args = words(line);
  if (args.length === 0) return;
  const name = args[0];
  const node = ctx.node;
  const st = node.settings;
  const key = args.length > 1 ? args[1] : "";
  switch (name) {
    case "help":
      help(remote, node.board.tls, say);
      return;
    case "show": {
      const changed = unsaved(st);
      for (let i = 0; keyAt(i) !== ""; i++) {
        let star = " ";
        for (const k of changed) if (k === keyAt(i)) star = "*";
        say(`${star} ${keyAt(i)} = ${shown(st, keyAt(i))}`);
      }
      if (changed.length > 0) say("* not saved: save keeps them over a reboot");
      return;
    }
    case "get": {
      const d = setting(key);
      if (args.length !== 2) say("error: get takes one setting name, e.g. get brokers; show lists them");
      else if (d === undefined) say(`error: unknown setting "${key}"; show lists them`);
      else say(`${key} = ${shown(st, key)}  (${d.help})`);
      return;
    }
    case "set": {
      if (args.length < 2) {
        say("error: set takes a setting name and a value, e.g. set interval 30; show lists the names");
        return;
      }
      if (remote && isSecret(key)) {
        say(`error: ${key} is a secret: it is set at the serial console only`);
        return;
      }
      // the value: the rest of the line after the key
      const why = setSetting(st, key, afterWord(afterWord(line)));
      if (why !== null) say(`error: ${why}; nothing was changed`);
      else say(`${key} = ${shown(st, key)} (not saved yet)`);
      return;
    }
    case "save": {
      const n = unsaved(st).length;
      const why = saveSettings(st);
      if (why !== null) say(`error: ${why}`);
      else say(`saved (${n} change${n === 1 ? "" : "s"})`);
      return;
    }
    case "status": {
      const c = node.client;
      say(`node ${node.id()}: ${node.connected ? "connected" : "not connected"}, up ${node.uptime()} s, ` +
        `${node.reconnects()} reconnects, ${node.sent} readings sent, ${node.dropped} dropped` +
        `${c !== undefined ? `, outbox ${c.outbox.count}` : ""}`);
      say(`last error: ${node.lastError.length > 0 ? node.lastError : "none"}`);
      const memory = node.board.platform.memory;
      if (memory !== undefined) say(`memory: ${memory()}`);
      const changed = unsaved(st);
      say(changed.length > 0 ? `unsaved settings: ${changed.join(", ")} (save keeps them)` : "settings: all saved");
      return;
    }
    case "diag":
      for (const l of diagnose(diagFacts(node))) say(l);
      return;
    case "publish":
      node.publishNow();
      say("publishing a reading now");
      return;
    case "pub": {
      const q = args.length >= 4 ? args[2] : "";
      if (q !== "0" && q !== "1" && q !== "2") {
        say("pub: usage: pub TOPIC QOS TEXT, QoS 0, 1 or 2 (e.g. pub test/hello 1 hi)");
        return;
      }
      if (node.client === undefined) {
        say("pub: no client (the settings cannot make one: diag says why)");
        return;
      }
      const err = node.pub(key, q === "0" ? 0 : q === "1" ? 1 : 2, afterWord(afterWord(afterWord(line))));
      say(err === undefined ? `pub: queued (outbox ${node.client.outbox.count})` : `pub: ${err.code}: ${err.message}`);
      return;
    }
    case "reboot":
      say("rebooting");
      node.board.reboot();
      return;
  }
  if (remote || (name !== "unset" && name !== "factory-reset" && name !== "pem")) {
    say(`error: unknown command "${name}"; type help for the list`);
    return;
  }
  if (name === "unset") {
    const why = args.length === 2 ? unsetSetting(st, key) : "unset takes one setting name";
    if (why !== null) say(`error: ${why}`);
    else say(`${key} = ${shown(st, key)} (the default; not saved yet)`);
  } else if (name === "factory-reset") {
    if (args.length === 2 && key === "yes" && ctx.confirmReset === true) {
      ctx.confirmReset = false;
      factoryReset(st);
      say("factory-reset: every setting is back to its default, on flash too");
      if (ctx.afterReset !== undefined) ctx.afterReset();
      return;
    }
    ctx.confirmReset = true;
    say("factory-reset erases every setting, Wi-Fi and broker credentials included; type factory-reset yes to do it");
  } else {
    pem(ctx, args, say);
  }
}

/**
 * `pem` lists the TLS certificates on flash, `pem NAME` takes a pasted PEM (to its -----END
 * line) through the console's collect mode, `pem NAME clear` removes one. The key is a secret:
 * echoed as "*" while pasted, never printed. Takes effect at the next boot.
 */
function pem(ctx: CommandContext, args: string[], say: Say): void {
  const storage = ctx.node.settings.storage;
  if (!ctx.node.board.tls) {
    say("error: this board's firmware has no TLS, so it keeps no certificates");
    return;
  }
  const name = args.length > 1 ? args[1] : "";
  if (args.length === 1) {
    const has = (n: string) => storage.list(pemRecord(n)).length > 0;
    say(`pem: ca ${has("ca") ? "(set)" : "(none)"}, cert ${has("cert") ? "(set)" : "(none)"}, key ${has("key") ? "(set, hidden)" : "(none)"}`);
    return;
  }
  if ((name !== "ca" && name !== "cert" && name !== "key") || args.length > 3 || (args.length === 3 && args[2] !== "clear")) {
    say("error: pem takes ca, cert or key, then nothing (paste it next) or clear; e.g. pem ca");
    return;
  }
  if (args.length === 3) {
    storage.remove(pemRecord(name));
    say(`pem ${name}: cleared; reboot to use the change`);
    return;
  }
  const con = ctx.console;
  if (con === undefined) return;
  say(`pem ${name}: paste it now, from its -----BEGIN line to its -----END line (Ctrl-C stops)`);
  let text = "";
  con.collect((l) => {
    if (text.length === 0 && l.substring(0, 10) !== "-----BEGIN") {
      say(`error: a PEM starts with its -----BEGIN line; nothing was saved. Fix: pem ${name}, then paste the whole PEM`);
      return true;
    }
    text += l + "\n";
    if (text.length > PEM_MAX) {
      say(`error: over ${PEM_MAX} bytes; nothing was saved. Fix: paste one certificate, not a chain or a bundle`);
      return true;
    }
    if (l.substring(0, 8) !== "-----END") return false;
    const w = port.bytes.wireOf(text);
    const r = storage.write(pemRecord(name), w);
    say(r === 0 ? `pem ${name}: saved (${port.bytes.wireLength(w)} bytes); reboot to use it` : `error: the flash write failed; the old ${name} is kept. Fix: free flash, then paste again`);
    return true;
  }, name === "key");
}
