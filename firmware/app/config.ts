import { afterWord, type LineConsole } from "../console/line";
import { port } from "../port/port";
import { find } from "../port/text";
import { FEATURE_FAILOVER, FEATURE_MQTT5, FEATURE_QOS2, FEATURE_SLEEP } from "../features";
import type { BrokerAddress, ClientOptions } from "../session/options";
import { isSecret, schemaDefault, type Settings } from "./settings";

/**
 * The node's settings schema and everything that changes settings: validation that explains a
 * rejection with the accepted form, reading and saving the record through the platform's
 * Storage (whose `write` is atomic on every board: a power cut leaves the old or the new
 * record), the settings commands of the console, and secrets that never leave the board in any
 * output. A lazy module (app/lazy.ts): loaded when the start-up or a command needs it, so its
 * code and texts cost a board RAM only while they run. The schema is switches, not a table, for
 * the same reason: a table of objects would be built in RAM whenever the module loads; and the
 * functions are few and larger, since on Espruino each function object costs RAM too.
 *
 * Values are kept as text, as typed (normalised: "on"/"off" for switches). `setSetting` checks
 * a value and changes nothing when it is refused; changes are live at once and kept over a
 * reboot only after `saveSettings`. The record is "key=value" lines, only the keys that differ
 * from their defaults. `st.unsaved` lists the keys whose value differs from the saved one.
 */
export const KIND_TEXT = 0;
export const KIND_SECRET = 1;
export const KIND_INT = 2;
export const KIND_SWITCH = 3;
export const KIND_CHOICE = 4;
export const KIND_BROKERS = 5;
export const KIND_CLIENT_ID = 6;
export const KIND_PREFIX = 7;

export interface Setting {
  key: string;
  kind: number;
  /** The default, as text ("" for none). */
  def: string;
  /** What it is, for `get`. */
  help: string;
  /** Text: most characters; int: range. */
  min: number;
  max: number;
}

export const SETTINGS_KEY = "settings";
/** Largest settings record; a longer one cannot be saved (each value is bounded above). */
export const SETTINGS_MAX = 1024;
/** What a secret shows as: never its length or any character of it. */
export const MASK = "(set, hidden)";
/** Longest PEM kept (one certificate, not a chain). */
export const PEM_MAX = 4096;
const LOG_LEVELS = "error, warn, info, debug";

/** The i-th setting's key (0-based), "" past the last: the order `show` lists them in. */
export function keyAt(i: number): string {
  switch (i) {
    case 0: return "wifi.ssid";
    case 1: return "wifi.pass";
    case 2: return "brokers";
    case 3: return "tls";
    case 4: return "client.id";
    case 5: return "mqtt.user";
    case 6: return "mqtt.pass";
    case 7: return "keepalive";
    case 8: return "qos";
    case 9: return "prefix";
    case 10: return "interval";
    case 11: return "sleep";
    case 12: return "log";
    case 13: return FEATURE_MQTT5 ? "will.delay" : "";
    case 14: return FEATURE_MQTT5 ? "expiry" : "";
    default: return "";
  }
}

/**
 * Whether a change to the setting applies at once: the node reads interval, qos and log at every
 * use; the connection (brokers, client id, credentials, keepalive, topics) and sleep are fixed
 * when the node starts.
 */
function live(key: string): boolean {
  return key === "interval" || key === "qos" || key === "log";
}

/** A setting's schema entry, or undefined for an unknown key. */
export function setting(key: string): Setting | undefined {
  let d: Setting | undefined = { key, kind: KIND_TEXT, def: schemaDefault(key), help: "", min: 1, max: 64 };
  // (MQTT 5.0's Will Delay Interval: only a build with mqtt5 has the setting)
  if (FEATURE_MQTT5 && (key === "will.delay" || key === "expiry")) {
    d.kind = KIND_INT;
    d.help = key === "expiry" ? "seconds a queued reading stays worth sending (MQTT 5.0's message expiry); 0: no limit"
      : "seconds the broker waits before publishing the offline status (MQTT 5.0's will delay): a reboot within them publishes none";
    d.min = 0;
    d.max = key === "expiry" ? 2147483 : 3600;
    return d;
  }
  switch (key) {
    case "wifi.ssid": d.help = "the Wi-Fi network's name"; d.max = 32; break;
    case "wifi.pass": d.kind = KIND_SECRET; d.help = "the Wi-Fi password (WPA2: 8 to 63 characters; empty for an open network)"; d.min = 8; d.max = 63; break;
    case "brokers": d.kind = KIND_BROKERS; d.help = `brokers in order of preference, [tls:]host:port separated by commas (at most ${FEATURE_FAILOVER ? 4 : 1})`; d.max = FEATURE_FAILOVER ? 4 : 1; break;
    case "tls": d.kind = KIND_SWITCH; d.help = "TLS to every broker (on/off); only where the board has TLS"; break;
    case "client.id": d.kind = KIND_CLIENT_ID; d.help = "the MQTT client id (1 to 23 letters, digits, - or _; empty: made from the chip id)"; d.max = 23; break;
    case "mqtt.user": d.help = "the MQTT user name"; break;
    case "mqtt.pass": d.kind = KIND_SECRET; d.help = "the MQTT password"; break;
    case "keepalive": d.kind = KIND_INT; d.help = "seconds between keepalive pings"; d.min = 10; d.max = 3600; break;
    case "qos": d.kind = KIND_INT; d.help = `QoS of telemetry (0, 1${FEATURE_QOS2 ? " or 2" : ""})`; d.min = 0; d.max = FEATURE_QOS2 ? 2 : 1; break;
    case "prefix": d.kind = KIND_PREFIX; d.help = "topic prefix: topics are <prefix>/<client id>/..."; break;
    case "interval": d.kind = KIND_INT; d.help = "seconds between sensor readings"; d.max = 86400; break;
    case "sleep": d.kind = KIND_SWITCH; d.help = "deep sleep between readings (on/off), for battery sensors"; break;
    case "log": d.kind = KIND_CHOICE; d.help = `log level (${LOG_LEVELS})`; break;
    default: d = undefined;
  }
  return d;
}

/** Why a value needs a feature this board's build leaves out, and how to have it. */
function leftOut(feature: string): string {
  return `this board's build leaves ${feature} out (its profile's features); fix: add ${feature} to them and flash again`;
}

/** The default of a setting on this board (its own, else the schema's). */
function defaultOf(st: Settings, d: Setting): string {
  const v = st.defaults[d.key];
  return v !== undefined ? v : d.def;
}

/**
 * Keeps `v` as the key's value in effect: an entry only when it is not the default `def`. An
 * entry back at its default goes by a new object without it (`delete` would take a lualib
 * helper on Lua, and an undefined entry keeps its name on Espruino).
 */
function keep(st: Settings, key: string, v: string, def: string): void {
  if (v !== def) {
    st.values[key] = v;
    return;
  }
  if (st.values[key] === undefined) return;
  const next: { [key: string]: string | undefined } = {};
  for (const k in st.values) {
    const x = st.values[k];
    if (k !== key && x !== undefined) next[k] = x;
  }
  st.values = next;
}

/** Where `ch` last occurs in `v`, or -1 (TSTL has no lastIndexOf). */
export function lastIndex(v: string, ch: string): number {
  let at = -1;
  for (let i = find(v, ch); i >= 0; i = find(v, ch, i + 1)) at = i;
  return at;
}

/** The pieces of `v` between each `sep` (String.split's Lua helper has a 32-bit literal). */
export function splitOn(v: string, sep: string): string[] {
  const out: string[] = [];
  let from = 0;
  for (let i = find(v, sep); i >= 0; i = find(v, sep, from)) {
    out.push(v.substring(from, i));
    from = i + sep.length;
  }
  out.push(v.substring(from));
  return out;
}

/** The number written in decimal digits (1 to 9 of them: within 31 bits), else -1. */
function digitsValue(v: string): number {
  if (v.length === 0 || v.length > 9) return -1;
  let n = 0;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return n;
}

/** Whether every character of `v` is a letter or digit, or one of `extra` ("." "-" "_"). */
function nameChars(v: string, extra: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || find(extra, v.charAt(i)) >= 0)) return false;
  }
  return true;
}

/**
 * Checks `value` for `d`; returns the value as stored (normalised) in `out[0]`, and null, or the
 * reason it is refused. A secret's value never appears in the reason. Control characters (and
 * DEL) are refused everywhere: a value is one line of the record.
 */
export function checkValue(d: Setting, value: string, boardTls: boolean, out: string[]): string | null {
  const shownValue = d.kind === KIND_SECRET ? `${value.length} characters` : `"${value}"`;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 32 || c === 127) return `${d.key} takes no control characters`;
  }
  out[0] = value;
  const kind = d.kind;
  if (kind === KIND_TEXT || kind === KIND_SECRET) {
    if (value.length === 0 && d.key !== "wifi.ssid") return null;
    if (value.length < d.min || value.length > d.max) return `${d.key} must be ${d.min} to ${d.max} characters (got ${value.length === 0 ? "none" : shownValue})`;
  } else if (kind === KIND_INT) {
    const n = digitsValue(value);
    if (!FEATURE_QOS2 && d.key === "qos" && n === 2) return `qos: 0 or 1: ${leftOut("qos2")}`;
    if (n < d.min || n > d.max) return `${d.key} must be a whole number from ${d.min} to ${d.max} (got ${shownValue})`;
    out[0] = `${n}`;
  } else if (kind === KIND_SWITCH) {
    const v = value.toLowerCase();
    if (v === "on" || v === "true" || v === "1" || v === "yes") out[0] = "on";
    else if (v === "off" || v === "false" || v === "0" || v === "no") out[0] = "off";
    else return `${d.key} is on or off (got ${shownValue})`;
    if (d.key === "tls" && out[0] === "on" && !boardTls) return "tls: this board's firmware has no TLS (its profile says tls: false); its brokers are plain TCP";
    if (!FEATURE_SLEEP && d.key === "sleep" && out[0] === "on") return `sleep: ${leftOut("sleep")}`;
  } else if (kind === KIND_CHOICE) {
    // the one choice setting: the log level
    if (value !== "error" && value !== "warn" && value !== "info" && value !== "debug") return `${d.key} is one of ${LOG_LEVELS} (got ${shownValue})`;
  } else if (kind === KIND_BROKERS) {
    const form = "brokers is [tls:]host:port, up to 4 separated by commas, e.g. 192.168.1.10:1883,tls:broker.example.com:8883";
    const parts = splitOn(value, ",");
    if (value.length === 0 || parts.length > 4) return `${form} (got ${parts.length > 4 ? `${parts.length} brokers` : "none"})`;
    if (parts.length > d.max) return `brokers: one broker (got ${parts.length}): ${leftOut("failover")}`;
    for (const p0 of parts) {
      let p = p0;
      if (p.substring(0, 4) === "tls:") {
        if (!boardTls) return `brokers: ${p0} asks for TLS, and this board's firmware has no TLS (its profile says tls: false)`;
        p = p.substring(4);
      }
      const colon = lastIndex(p, ":");
      const host = p.substring(0, colon);
      const portNumber = digitsValue(p.substring(colon + 1));
      const hostOk = host.length >= 1 && host.length <= 253 && nameChars(host, ".-");
      if (colon < 1 || !hostOk || portNumber < 1 || portNumber > 65535) {
        return `${form} (got "${p0}": ${colon < 1 ? "no :port" : !hostOk ? "a host name has letters, digits, . and -" : "the port is 1 to 65535"})`;
      }
    }
  } else if (kind === KIND_CLIENT_ID) {
    if (value.length > 0 && (value.length > d.max || !nameChars(value, "-_"))) {
      return `client.id must be 1 to 23 letters, digits, - or _ (what every MQTT 3.1.1 broker accepts; got ${shownValue})`;
    }
  } else if (value.length < d.min || value.length > d.max || value.indexOf("+") >= 0 || value.indexOf("#") >= 0 ||
    value.charAt(0) === "/" || value.charAt(value.length - 1) === "/") {
    // KIND_PREFIX: a topic level path without wildcards, not starting or ending with '/'
    return `${d.key} must be 1 to ${d.max} characters without + or # and not start or end with / (got ${shownValue})`;
  }
  return null;
}

/** The brokers setting as client addresses: "tls:" entries, or every entry with tls on. */
export function brokersOf(value: string, tlsAll: boolean): BrokerAddress[] {
  const out: BrokerAddress[] = [];
  for (const p0 of splitOn(value, ",")) {
    const tls = tlsAll || p0.substring(0, 4) === "tls:";
    const p = p0.substring(0, 4) === "tls:" ? p0.substring(4) : p0;
    const colon = lastIndex(p, ":");
    out.push({ host: p.substring(0, colon), port: digitsValue(p.substring(colon + 1)), tls });
  }
  return out;
}

/**
 * The settings record on flash as key → value (only its valid lines); the names of the bad lines
 * go to `bad` ("!" first when the record is too long to read). With `only`, that key's lines alone.
 */
function readRecord(st: Settings, bad: string[], only?: string): { [key: string]: string | undefined } {
  const rec: { [key: string]: string | undefined } = {};
  const w = st.storage.getRecord(SETTINGS_KEY);
  if (w === undefined) return rec;
  if (port.bytes.wireLength(w) > SETTINGS_MAX) {
    bad[0] = "!";
    return rec;
  }
  const out: string[] = [""];
  for (const line of splitOn(port.bytes.textOf(w), "\n")) {
    if (line.length === 0) continue;
    const eq = line.indexOf("=");
    const key = eq > 0 ? line.substring(0, eq) : "";
    if (only !== undefined && key !== only) continue;
    const d = eq > 0 ? setting(key) : undefined;
    if (d === undefined || checkValue(d, line.substring(eq + 1), st.boardTls, out) !== null) bad.push(eq > 0 ? key : "a line without =");
    else rec[d.key] = out[0];
  }
  return rec;
}

/**
 * Compares the values in effect with the saved ones (the record, else the default): `st.unsaved`
 * becomes the keys that differ. With `load`, the saved ones become the values in effect first.
 * With `only` (a set), only that key can have changed: its saved value alone is read and
 * checked, not the whole record's (on a small board the difference between a set that runs and
 * one out of memory), and the others keep their place in the list (every change of a value or
 * of the record keeps it). Returns what was wrong with the record, or null.
 */
function sync(st: Settings, load: boolean, only?: string): string | null {
  const bad: string[] = [];
  const rec = readRecord(st, bad, only);
  const was = `,${st.unsaved.join(",")},`;
  st.unsaved = [];
  for (let i = 0; keyAt(i) !== ""; i++) {
    const key = keyAt(i);
    if (only !== undefined && key !== only) {
      if (find(was, `,${key},`) >= 0) st.unsaved.push(key);
      continue;
    }
    const v = rec[key];
    const def = defaultOf(st, setting(key) as Setting);
    const saved = v !== undefined ? v : def;
    if (load) keep(st, key, saved, def);
    else if (st.get(key) !== saved) st.unsaved.push(key);
  }
  if (bad[0] === "!") return `settings: the saved record is over ${SETTINGS_MAX} bytes and was not read; the defaults apply. Fix: factory-reset, then set and save again`;
  if (bad.length > 0) return `settings: ignored ${bad.join(", ")} in the saved record (unknown or invalid here); save writes the record without them`;
  return null;
}

/**
 * Reads the saved settings into `st` (every key: saved, else the default); returns null, or what
 * was wrong with the record (the settings are then the defaults plus whatever lines were good,
 * and the message names the fix).
 */
export function loadSettings(st: Settings): string | null {
  return sync(st, true);
}

/** Keys whose value in effect differs from the saved one (also kept in `st.unsaved`). */
export function unsaved(st: Settings): string[] {
  sync(st, false);
  return st.unsaved;
}

/**
 * Sets a value now (not saved): `value` undefined is the default. With `asDefault`, `value`
 * becomes this board's default instead (a profile's, or the simulator's broker: before
 * loadSettings). Returns null, or why it was refused (nothing changed).
 */
export function setSetting(st: Settings, key: string, value: string | undefined, asDefault?: boolean): string | null {
  const d = setting(key);
  if (d === undefined) return asDefault === true ? `unknown setting "${key}"` : `unknown setting "${key}"; show lists them`;
  const out: string[] = [defaultOf(st, d)];
  if (value !== undefined) {
    const why = checkValue(d, value, st.boardTls, out);
    if (why !== null) return why;
  }
  if (asDefault === true) st.defaults[key] = out[0];
  else {
    keep(st, key, out[0], defaultOf(st, d));
    sync(st, false, key);
  }
  return null;
}

/** Writes the settings; null, or why it failed (the saved record is then as it was). */
export function saveSettings(st: Settings): string | null {
  let text = "";
  for (let i = 0; keyAt(i) !== ""; i++) {
    const key = keyAt(i);
    if (st.get(key) !== defaultOf(st, setting(key) as Setting)) text += `${key}=${st.get(key)}\n`;
  }
  const size = port.bytes.textLength(text);
  if (size < 0 || size > SETTINGS_MAX) return `settings: over ${SETTINGS_MAX} bytes; nothing was saved. Fix: shorten a value`;
  const r = st.storage.putRecord(SETTINGS_KEY, port.bytes.wireOf(text));
  if (r !== 0) return `settings: the flash write failed (${r === 1 ? "the flash is full" : "the flash failed"}); the saved settings are as they were. Fix: free flash, then save again`;
  st.unsaved = [];
  return null;
}

/** The value as any output may show it: secrets masked. */
export function shown(st: Settings, key: string): string {
  const v = st.get(key);
  if (isSecret(key)) return v.length > 0 ? MASK : "(not set)";
  return v.length > 0 ? v : "(not set)";
}

/** The PEMs on flash (read at start-up, for the platform's TLS): records pem.ca, pem.cert, pem.key. */
export function readPems(st: Settings): { ca?: string; cert?: string; key?: string } {
  const out: { ca?: string; cert?: string; key?: string } = {};
  for (let i = 0; i < 3; i++) {
    const name = i === 0 ? "ca" : i === 1 ? "cert" : "key";
    const w = st.storage.listRecords(`pem.${name}`).length > 0 ? st.storage.getRecord(`pem.${name}`) : undefined;
    if (w === undefined || port.bytes.wireLength(w) === 0 || port.bytes.wireLength(w) > PEM_MAX) continue;
    const text = port.bytes.textOf(w);
    if (i === 0) out.ca = text;
    else if (i === 1) out.cert = text;
    else out.key = text;
  }
  return out;
}

/** The client options the node's settings make (its will and topics are the node's to add). */
export function clientOptions(st: Settings, clientId: string): ClientOptions {
  const user = st.get("mqtt.user");
  const pass = st.get("mqtt.pass");
  return {
    brokers: brokersOf(st.get("brokers"), st.on("tls")),
    clientId,
    clean: false,
    keepalive: st.int("keepalive"),
    username: user.length > 0 ? user : undefined,
    password: pass.length > 0 ? pass : undefined,
  };
}

/** What the settings commands need of the app: its settings, and the console for pasting a PEM. */
export interface SettingsContext {
  /** (Whether the board's firmware has TLS: settings.boardTls, its profile's.) */
  settings: Settings;
  console?: LineConsole;
  /** factory-reset asked for its confirmation: the next `factory-reset yes` does it. */
  confirmReset?: boolean;
  /** Said after factory-reset, once the settings are the defaults (the app's log line). */
  afterReset?: (this: void) => void;
}

/** The settings commands and what they take, for `help` (the console's only lines when not `remote`). */
export function settingsHelp(remote: boolean, tls: boolean, say: (this: void, line: string) => void): void {
  say("show  every setting (secrets masked), with * on unsaved changes");
  say("get KEY  one setting (secrets masked)");
  say("set KEY VALUE  changes a setting (save keeps it); interval, qos and log apply at once, the others from the next boot; the value is the rest of the line");
  if (!remote) say("unset KEY  back to the default (save keeps it)");
  say("save  writes the settings to flash (a power cut leaves the old or the new ones)");
  if (!remote) say("factory-reset  erases every setting (asks to confirm: factory-reset yes)");
  if (!remote && tls) say("pem [ca|cert|key [clear]]  lists, pastes (to its -----END line) or clears a TLS certificate or key");
}

/**
 * Runs a settings command (`args`: the line's words, the command first); false when `args[0]`
 * is not one. From the command topic (`remote`): no unset, factory-reset or pem, and set refuses
 * secrets. Nothing it prints carries a secret's value.
 */
export function settingsCommand(ctx: SettingsContext, args: string[], line: string, say: (this: void, line: string) => void, remote: boolean): boolean {
  const st = ctx.settings;
  const name = args[0];
  const key = args.length > 1 ? args[1] : "";
  if (name === "show") {
    const changed = unsaved(st);
    for (let i = 0; keyAt(i) !== ""; i++) {
      let star = " ";
      for (const k of changed) if (k === keyAt(i)) star = "*";
      say(`${star} ${keyAt(i)} = ${shown(st, keyAt(i))}`);
    }
    if (changed.length > 0) say("* not saved: save keeps them over a reboot");
  } else if (name === "get") {
    const d = setting(key);
    if (args.length !== 2) say("error: get takes one setting name, e.g. get brokers; show lists them");
    else if (d === undefined) say(`error: unknown setting "${key}"; show lists them`);
    else say(`${key} = ${shown(st, key)}  (${d.help})`);
  } else if (name === "set") {
    if (args.length < 2) say("error: set takes a setting name and a value, e.g. set interval 30; show lists the names");
    else if (remote && isSecret(key)) say(`error: ${key} is a secret: it is set at the serial console only`);
    else {
      // the value: the rest of the line after the key
      const why = setSetting(st, key, afterWord(afterWord(line)));
      say(why !== null ? `error: ${why}; nothing was changed` : `${key} = ${shown(st, key)} (not saved yet${live(key) ? "" : "; used from the next boot: save, then reboot"})`);
    }
  } else if (name === "save") {
    const n = unsaved(st).length;
    const why = saveSettings(st);
    say(why !== null ? `error: ${why}` : `saved (${n} change${n === 1 ? "" : "s"})`);
  } else if (remote) {
    return false;
  } else if (name === "unset") {
    const why = args.length === 2 ? setSetting(st, key, undefined) : "unset takes one setting name";
    say(why !== null ? `error: ${why}` : `${key} = ${shown(st, key)} (the default; not saved yet)`);
  } else if (name === "factory-reset") {
    if (args.length === 2 && key === "yes" && ctx.confirmReset === true) {
      ctx.confirmReset = false;
      st.storage.dropRecord(SETTINGS_KEY);
      sync(st, true);
      say("factory-reset: every setting is back to its default, on flash too");
      if (ctx.afterReset !== undefined) ctx.afterReset();
    } else {
      ctx.confirmReset = true;
      say("factory-reset erases every setting, Wi-Fi and broker credentials included; type factory-reset yes to do it");
    }
  } else if (name === "pem") {
    pem(ctx, args, say);
  } else {
    return false;
  }
  return true;
}

/**
 * `pem` lists the TLS certificates on flash, `pem NAME` takes a pasted PEM (to its -----END
 * line) through the console's collect mode, `pem NAME clear` removes one. The key is a secret:
 * echoed as "*" while pasted, never printed. Takes effect at the next boot.
 */
function pem(ctx: SettingsContext, args: string[], say: (this: void, line: string) => void): void {
  const storage = ctx.settings.storage;
  const name = args.length > 1 ? args[1] : "";
  const con = ctx.console;
  if (!ctx.settings.boardTls) {
    say("error: this board's firmware has no TLS, so it keeps no certificates");
  } else if (args.length === 1) {
    let line = "pem:";
    for (let i = 0; i < 3; i++) {
      const n = i === 0 ? "ca" : i === 1 ? "cert" : "key";
      line += `${i > 0 ? "," : ""} ${n} ${storage.listRecords(`pem.${n}`).length > 0 ? (i === 2 ? "(set, hidden)" : "(set)") : "(none)"}`;
    }
    say(line);
  } else if ((name !== "ca" && name !== "cert" && name !== "key") || args.length > 3 || (args.length === 3 && args[2] !== "clear")) {
    say("error: pem takes ca, cert or key, then nothing (paste it next) or clear; e.g. pem ca");
  } else if (args.length === 3) {
    storage.dropRecord(`pem.${name}`);
    say(`pem ${name}: cleared; reboot to use the change`);
  } else if (con !== undefined) {
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
      const r = storage.putRecord(`pem.${name}`, w);
      say(r === 0 ? `pem ${name}: saved (${port.bytes.wireLength(w)} bytes); reboot to use it` : `error: the flash write failed; the old ${name} is kept. Fix: free flash, then paste again`);
      return true;
    }, name === "key");
  }
}
