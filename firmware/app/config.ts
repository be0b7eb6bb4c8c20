import { port } from "../port/port";
import type { BrokerAddress, ClientOptions } from "../session/options";
import { isSecret, type Settings } from "./settings";

/**
 * The node's settings schema and everything that changes settings: validation that explains a
 * rejection with the accepted form, reading and saving the record through the platform's
 * Storage (whose `write` is atomic on every board: a power cut leaves the old or the new
 * record), and secrets that never leave the board in any output. A lazy module (app/lazy.ts):
 * loaded when the start-up or a command needs it, so its code and texts cost a board RAM only
 * while they run. The schema is switches, not a table, for the same reason: a table of objects
 * would be built in RAM whenever the module loads.
 *
 * Values are kept as text, as typed (normalised: "on"/"off" for switches). `setSetting` checks
 * a value and changes nothing when it is refused; changes are live at once and kept over a
 * reboot only after `saveSettings`. The record is "key=value" lines, only the keys that differ
 * from their defaults.
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
    default: return "";
  }
}

function s(key: string, kind: number, def: string, help: string, min: number, max: number): Setting {
  return { key, kind, def, help, min, max };
}

/** A setting's schema entry, or undefined for an unknown key. */
export function setting(key: string): Setting | undefined {
  switch (key) {
    case "wifi.ssid": return s(key, KIND_TEXT, "", "the Wi-Fi network's name", 1, 32);
    case "wifi.pass": return s(key, KIND_SECRET, "", "the Wi-Fi password (WPA2: 8 to 63 characters; empty for an open network)", 8, 63);
    case "brokers": return s(key, KIND_BROKERS, "127.0.0.1:1883", "brokers in order of preference, [tls:]host:port separated by commas (at most 4)", 1, 4);
    case "tls": return s(key, KIND_SWITCH, "off", "TLS to every broker (on/off); only where the board has TLS", 0, 0);
    case "client.id": return s(key, KIND_CLIENT_ID, "", "the MQTT client id (1 to 23 letters, digits, - or _; empty: made from the chip id)", 1, 23);
    case "mqtt.user": return s(key, KIND_TEXT, "", "the MQTT user name", 1, 64);
    case "mqtt.pass": return s(key, KIND_SECRET, "", "the MQTT password", 1, 64);
    case "keepalive": return s(key, KIND_INT, "60", "seconds between keepalive pings", 10, 3600);
    case "qos": return s(key, KIND_INT, "1", "QoS of telemetry (0, 1 or 2)", 0, 2);
    case "prefix": return s(key, KIND_PREFIX, "petrel", "topic prefix: topics are <prefix>/<client id>/...", 1, 64);
    case "interval": return s(key, KIND_INT, "60", "seconds between sensor readings", 1, 86400);
    case "sleep": return s(key, KIND_SWITCH, "off", "deep sleep between readings (on/off), for battery sensors", 0, 0);
    case "log": return s(key, KIND_CHOICE, "info", `log level (${LOG_LEVELS})`, 0, 0);
    default: return undefined;
  }
}

/** The default of a setting on this board (its own, else the schema's). */
function defaultOf(st: Settings, d: Setting): string {
  const v = st.defaults[d.key];
  return v !== undefined ? v : d.def;
}

function isDigits(v: string): boolean {
  if (v.length === 0) return false;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** Where `ch` last occurs in `v`, or -1 (TSTL has no lastIndexOf). */
export function lastIndex(v: string, ch: string): number {
  let at = -1;
  for (let i = v.indexOf(ch); i >= 0; i = v.indexOf(ch, i + 1)) at = i;
  return at;
}

/** The pieces of `v` between each `sep` (String.split's Lua helper has a 32-bit literal). */
export function splitOn(v: string, sep: string): string[] {
  const out: string[] = [];
  let from = 0;
  for (let i = v.indexOf(sep); i >= 0; i = v.indexOf(sep, from)) {
    out.push(v.substring(from, i));
    from = i + sep.length;
  }
  out.push(v.substring(from));
  return out;
}

/** The number written in decimal digits (at most 9 of them: within 31 bits), else -1. */
function digitsValue(v: string): number {
  if (!isDigits(v) || v.length > 9) return -1;
  let n = 0;
  for (let i = 0; i < v.length; i++) n = n * 10 + (v.charCodeAt(i) - 48);
  return n;
}

/** Host names: letters, digits, '.', '-', 1..253 characters. */
function hostOk(h: string): boolean {
  if (h.length < 1 || h.length > 253) return false;
  for (let i = 0; i < h.length; i++) {
    const c = h.charCodeAt(i);
    const ok = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 46 || c === 45;
    if (!ok) return false;
  }
  return true;
}

/**
 * Checks `value` for `d`; returns the value as stored (normalised) in `out[0]`, and null, or the
 * reason it is refused. A secret's value never appears in the reason. Control characters (and
 * DEL) are refused everywhere: a value is one line of the record.
 */
export function checkValue(d: Setting, value: string, boardTls: boolean, out: string[]): string | null {
  const shown = d.kind === KIND_SECRET ? `${value.length} characters` : `"${value}"`;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 32 || c === 127) return `${d.key} takes no control characters`;
  }
  out[0] = value;
  switch (d.kind) {
    case KIND_TEXT:
    case KIND_SECRET:
      if (value.length === 0 && d.key !== "wifi.ssid") return null;
      if (value.length < d.min || value.length > d.max) {
        return `${d.key} must be ${d.min} to ${d.max} characters (got ${value.length === 0 ? "none" : shown})`;
      }
      return null;
    case KIND_INT: {
      const n = digitsValue(value);
      if (n < d.min || n > d.max) return `${d.key} must be a whole number from ${d.min} to ${d.max} (got ${shown})`;
      out[0] = `${n}`;
      return null;
    }
    case KIND_SWITCH: {
      const v = value.toLowerCase();
      if (v === "on" || v === "true" || v === "1" || v === "yes") out[0] = "on";
      else if (v === "off" || v === "false" || v === "0" || v === "no") out[0] = "off";
      else return `${d.key} is on or off (got ${shown})`;
      if (d.key === "tls" && out[0] === "on" && !boardTls) {
        return "tls: this board's firmware has no TLS (its profile says tls: false); its brokers are plain TCP";
      }
      return null;
    }
    case KIND_CHOICE:
      // the one choice setting: the log level
      if (value === "error" || value === "warn" || value === "info" || value === "debug") return null;
      return `${d.key} is one of ${LOG_LEVELS} (got ${shown})`;
    case KIND_BROKERS:
      return checkBrokers(value, boardTls);
    case KIND_CLIENT_ID: {
      if (value.length === 0) return null;
      let ok = value.length <= d.max;
      for (let i = 0; i < value.length && ok; i++) {
        const c = value.charCodeAt(i);
        ok = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 45 || c === 95;
      }
      if (!ok) return `client.id must be 1 to 23 letters, digits, - or _ (what every MQTT 3.1.1 broker accepts; got ${shown})`;
      return null;
    }
    default: {
      // KIND_PREFIX: a topic level path without wildcards, not starting or ending with '/'
      const bad = value.length < d.min || value.length > d.max || value.indexOf("+") >= 0 || value.indexOf("#") >= 0 ||
        value.charAt(0) === "/" || value.charAt(value.length - 1) === "/";
      if (bad) return `${d.key} must be 1 to ${d.max} characters without + or # and not start or end with / (got ${shown})`;
      return null;
    }
  }
}

function checkBrokers(value: string, boardTls: boolean): string | null {
  const form = "brokers is [tls:]host:port, up to 4 separated by commas, e.g. 192.168.1.10:1883,tls:broker.example.com:8883";
  const parts = splitOn(value, ",");
  if (value.length === 0 || parts.length > 4) return `${form} (got ${parts.length > 4 ? `${parts.length} brokers` : "none"})`;
  for (const p0 of parts) {
    let p = p0;
    if (p.substring(0, 4) === "tls:") {
      if (!boardTls) return `brokers: ${p0} asks for TLS, and this board's firmware has no TLS (its profile says tls: false)`;
      p = p.substring(4);
    }
    const colon = lastIndex(p, ":");
    const port = digitsValue(p.substring(colon + 1));
    if (colon < 1 || !hostOk(p.substring(0, colon)) || port < 1 || port > 65535) {
      return `${form} (got "${p0}": ${colon < 1 ? "no :port" : !hostOk(p.substring(0, colon)) ? "a host name has letters, digits, . and -" : "the port is 1 to 65535"})`;
    }
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

/** The settings record on flash as key → value (only its valid lines), and the names of the bad ones. */
function readRecord(st: Settings, bad: string[]): { [key: string]: string | undefined } {
  const rec: { [key: string]: string | undefined } = {};
  const w = st.storage.read(SETTINGS_KEY);
  if (w === undefined) return rec;
  if (port.bytes.wireLength(w) > SETTINGS_MAX) {
    bad[0] = "!";
    return rec;
  }
  const out: string[] = [""];
  for (const line of splitOn(port.bytes.textOf(w), "\n")) {
    if (line.length === 0) continue;
    const eq = line.indexOf("=");
    const d = eq > 0 ? setting(line.substring(0, eq)) : undefined;
    if (d === undefined || checkValue(d, line.substring(eq + 1), st.boardTls, out) !== null) bad.push(eq > 0 ? line.substring(0, eq) : "a line without =");
    else rec[d.key] = out[0];
  }
  return rec;
}

/**
 * Reads the saved settings into `st` (every key: saved, else the default); returns null, or what
 * was wrong with the record (the settings are then the defaults plus whatever lines were good,
 * and the message names the fix).
 */
export function loadSettings(st: Settings): string | null {
  const bad: string[] = [];
  const rec = readRecord(st, bad);
  for (let i = 0; keyAt(i) !== ""; i++) {
    const key = keyAt(i);
    const v = rec[key];
    st.values[key] = v !== undefined ? v : defaultOf(st, setting(key) as Setting);
  }
  if (bad[0] === "!") return `settings: the saved record is over ${SETTINGS_MAX} bytes and was not read; the defaults apply. Fix: factory-reset, then set and save again`;
  if (bad.length > 0) return `settings: ignored ${bad.join(", ")} in the saved record (unknown or invalid here); save writes the record without them`;
  return null;
}

/**
 * A board's default for `key` (a profile's, or the simulator's broker); checked like a value.
 * Returns null, or why it is refused. Call before loadSettings.
 */
export function setDefault(st: Settings, key: string, value: string): string | null {
  const d = setting(key);
  if (d === undefined) return `unknown setting "${key}"`;
  const out: string[] = [""];
  const why = checkValue(d, value, st.boardTls, out);
  if (why === null) st.defaults[key] = out[0];
  return why;
}

/** The value as any output may show it: secrets masked. */
export function shown(st: Settings, key: string): string {
  const v = st.get(key);
  if (isSecret(key)) return v.length > 0 ? MASK : "(not set)";
  return v.length > 0 ? v : "(not set)";
}

/** Sets a value now (not saved); returns null, or why it was refused (nothing changed). */
export function setSetting(st: Settings, key: string, value: string): string | null {
  const d = setting(key);
  if (d === undefined) return `unknown setting "${key}"; show lists them`;
  const out: string[] = [""];
  const why = checkValue(d, value, st.boardTls, out);
  if (why !== null) return why;
  st.values[key] = out[0];
  return null;
}

/** Back to the default (not saved); null, or why not. */
export function unsetSetting(st: Settings, key: string): string | null {
  const d = setting(key);
  if (d === undefined) return `unknown setting "${key}"; show lists them`;
  st.values[key] = defaultOf(st, d);
  return null;
}

/** Keys whose value in effect differs from the saved one (the record, else the default). */
export function unsaved(st: Settings): string[] {
  const rec = readRecord(st, []);
  const out: string[] = [];
  for (let i = 0; keyAt(i) !== ""; i++) {
    const key = keyAt(i);
    const v = rec[key];
    if (st.get(key) !== (v !== undefined ? v : defaultOf(st, setting(key) as Setting))) out.push(key);
  }
  return out;
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
  const r = st.storage.write(SETTINGS_KEY, port.bytes.wireOf(text));
  if (r !== 0) return `settings: the flash write failed (${r === 1 ? "the flash is full" : "the flash failed"}); the saved settings are as they were. Fix: free flash, then save again`;
  return null;
}

/** Every setting back to its default, in effect and on flash. */
export function factoryReset(st: Settings): void {
  st.storage.remove(SETTINGS_KEY);
  for (let i = 0; keyAt(i) !== ""; i++) st.values[keyAt(i)] = defaultOf(st, setting(keyAt(i)) as Setting);
}

/** Longest PEM kept (one certificate, not a chain). */
export const PEM_MAX = 4096;

/** The flash record of a TLS certificate or key ("ca", "cert", "key"). */
export function pemRecord(name: string): string {
  return `pem.${name}`;
}

/** The PEMs on flash (read at start-up, for the platform's TLS). */
export function readPems(st: Settings): { ca?: string; cert?: string; key?: string } {
  const out: { ca?: string; cert?: string; key?: string } = {};
  for (let i = 0; i < 3; i++) {
    const name = i === 0 ? "ca" : i === 1 ? "cert" : "key";
    const w = st.storage.list(pemRecord(name)).length > 0 ? st.storage.read(pemRecord(name)) : undefined;
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
