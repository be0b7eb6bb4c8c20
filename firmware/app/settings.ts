import type { Bytes } from "../port/bytes";
import { port } from "../port/port";
import type { Storage } from "../port/storage";

/**
 * The node's settings: a schema, validation that explains a rejection with the accepted form,
 * secrets that never leave the board in any output, and saving through the platform's Storage
 * (whose `write` is atomic on every board: a power cut leaves the old or the new record).
 *
 * Values are kept as text, as typed (normalised: "on"/"off" for switches). `set` checks a value
 * and changes nothing when it is refused; changes are live at once and kept over a reboot only
 * after `save`. The record is "key=value" lines, only the keys that differ from their defaults.
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
  /** What it is, for `help set`-style listings. */
  help: string;
  /** Text: most characters; int: range. */
  min: number;
  max: number;
  /** KIND_CHOICE: the accepted words. */
  choices?: string[];
}

const s = (key: string, kind: number, def: string, help: string, min: number, max: number, choices?: string[]): Setting =>
  ({ key, kind, def, help, min, max, choices });

export const SCHEMA: Setting[] = [
  s("wifi.ssid", KIND_TEXT, "", "the Wi-Fi network's name", 1, 32),
  s("wifi.pass", KIND_SECRET, "", "the Wi-Fi password (WPA2: 8 to 63 characters; empty for an open network)", 8, 63),
  s("brokers", KIND_BROKERS, "127.0.0.1:1883", "brokers in order of preference, [tls:]host:port separated by commas (at most 4)", 1, 4),
  s("tls", KIND_SWITCH, "off", "TLS to every broker (on/off); only where the board has TLS", 0, 0),
  s("client.id", KIND_CLIENT_ID, "", "the MQTT client id (1 to 23 letters, digits, - or _; empty: made from the chip id)", 1, 23),
  s("mqtt.user", KIND_TEXT, "", "the MQTT user name", 1, 64),
  s("mqtt.pass", KIND_SECRET, "", "the MQTT password", 1, 64),
  s("keepalive", KIND_INT, "60", "seconds between keepalive pings", 10, 3600),
  s("qos", KIND_INT, "1", "QoS of telemetry (0, 1 or 2)", 0, 2),
  s("prefix", KIND_PREFIX, "petrel", "topic prefix: topics are <prefix>/<client id>/...", 1, 64),
  s("interval", KIND_INT, "60", "seconds between sensor readings", 1, 86400),
  s("sleep", KIND_SWITCH, "off", "deep sleep between readings (on/off), for battery sensors", 0, 0),
  s("log", KIND_CHOICE, "info", "log level", 0, 0, ["error", "warn", "info", "debug"]),
];

export const SETTINGS_KEY = "settings";
/** Largest settings record; a longer one cannot be saved (each value is bounded above). */
export const SETTINGS_MAX = 1024;
/** What a secret shows as: never its length or any character of it. */
export const MASK = "(set, hidden)";

export function find(key: string): Setting | undefined {
  for (const d of SCHEMA) if (d.key === key) return d;
  return undefined;
}

/** Whether `key` names a secret (masked everywhere, set at the serial console only). */
export function isSecret(key: string): boolean {
  const d = find(key);
  return d !== undefined && d.kind === KIND_SECRET;
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

/** A port number 1..65535 as text, else -1. */
function portOf(v: string): number {
  const n = digitsValue(v);
  return n >= 1 && n <= 65535 ? n : -1;
}

/** Host names: letters, digits, '.', '-' (and ':' inside [ ] for IPv6), 1..253 characters. */
function hostOk(h: string): boolean {
  if (h.length < 1 || h.length > 253) return false;
  for (let i = 0; i < h.length; i++) {
    const c = h.charCodeAt(i);
    const ok = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 46 || c === 45;
    if (!ok) return false;
  }
  return true;
}

/** Control characters (and DEL) are refused everywhere: a value is one line of the record. */
function hasControl(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 32 || c === 127) return true;
  }
  return false;
}

/**
 * Checks `value` for `d`; returns the value as stored (normalised) in `out[0]`, and null, or the
 * reason it is refused. A secret's value never appears in the reason.
 */
export function checkValue(d: Setting, value: string, boardTls: boolean, out: string[]): string | null {
  const shown = d.kind === KIND_SECRET ? `${value.length} characters` : `"${value}"`;
  if (hasControl(value)) return `${d.key} takes no control characters`;
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
    case KIND_CHOICE: {
      const cs = d.choices as string[];
      for (const c of cs) if (c === value) return null;
      return `${d.key} is one of ${cs.join(", ")} (got ${shown})`;
    }
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
    if (colon < 1 || !hostOk(p.substring(0, colon)) || portOf(p.substring(colon + 1)) < 0) {
      return `${form} (got "${p0}": ${colon < 1 ? "no :port" : !hostOk(p.substring(0, colon)) ? "a host name has letters, digits, . and -" : "the port is 1 to 65535"})`;
    }
  }
  return null;
}

/** Whether `key` is one of `keys` (Array.indexOf's Lua helper is large). */
export function listed(keys: string[], key: string): boolean {
  for (const k of keys) if (k === key) return true;
  return false;
}

export class Settings {
  // undefined, not `delete` (whose Lua helper is large): unset keys read as undefined everywhere
  private values: { [key: string]: string | undefined } = {};
  private saved: { [key: string]: string | undefined } = {};
  private readonly buf: Bytes;
  /** The board's own defaults, where they differ from the schema's (see setDefault). */
  private readonly defaults: { [key: string]: string | undefined } = {};

  constructor(private readonly storage: Storage, private readonly boardTls: boolean) {
    this.buf = port.bytes.alloc(SETTINGS_MAX);
  }

  /**
   * Reads the saved settings; returns null, or what was wrong with the record (the settings are
   * then the defaults plus whatever lines were good, and the message names the fix).
   */
  load(): string | null {
    this.values = {};
    this.saved = {};
    const n = this.storage.read(SETTINGS_KEY, this.buf, SETTINGS_MAX);
    if (n === -1) return null;
    if (n < 0) return `settings: the saved record is over ${SETTINGS_MAX} bytes and was not read; the defaults apply. Fix: factory-reset, then set and save again`;
    const text = port.bytes.readText(this.buf, 0, n);
    const bad: string[] = [];
    const out: string[] = [""];
    for (const line of splitOn(text, "\n")) {
      if (line.length === 0) continue;
      const eq = line.indexOf("=");
      const d = eq > 0 ? find(line.substring(0, eq)) : undefined;
      if (d === undefined || checkValue(d, line.substring(eq + 1), this.boardTls, out) !== null) {
        bad.push(eq > 0 ? line.substring(0, eq) : "a line without =");
      } else {
        this.values[d.key] = out[0];
        this.saved[d.key] = out[0];
      }
    }
    if (bad.length > 0) return `settings: ignored ${bad.join(", ")} in the saved record (unknown or invalid here); save writes the record without them`;
    return null;
  }

  /**
   * A board's default for `key` (a profile's, or the simulator's broker); checked like a value.
   * Returns null, or why it is refused.
   */
  setDefault(key: string, value: string): string | null {
    const d = find(key);
    if (d === undefined) return `unknown setting "${key}"`;
    const out: string[] = [""];
    const why = checkValue(d, value, this.boardTls, out);
    if (why === null) this.defaults[key] = out[0];
    return why;
  }

  private defOf(d: Setting): string {
    const v = this.defaults[d.key];
    return v !== undefined ? v : d.def;
  }

  /** The value in effect (the default when not set). */
  get(key: string): string {
    const v = this.values[key];
    if (v !== undefined) return v;
    const d = find(key);
    return d !== undefined ? this.defOf(d) : "";
  }

  int(key: string): number {
    return digitsValue(this.get(key));
  }

  on(key: string): boolean {
    return this.get(key) === "on";
  }

  /** The value as any output may show it: secrets masked. */
  shown(key: string): string {
    const d = find(key);
    const v = this.get(key);
    if (d !== undefined && d.kind === KIND_SECRET) return v.length > 0 ? MASK : "(not set)";
    return v.length > 0 ? v : "(not set)";
  }

  /** Sets a value; returns null, or why it was refused (nothing changed). */
  set(key: string, value: string): string | null {
    const d = find(key);
    if (d === undefined) return `unknown setting "${key}"; show lists them`;
    const out: string[] = [""];
    const why = checkValue(d, value, this.boardTls, out);
    if (why !== null) return why;
    this.values[key] = out[0] === this.defOf(d) ? undefined : out[0];
    return null;
  }

  /** Back to the default; null, or why not. */
  unset(key: string): string | null {
    if (find(key) === undefined) return `unknown setting "${key}"; show lists them`;
    this.values[key] = undefined;
    return null;
  }

  /** Keys whose value in effect differs from the saved one. */
  unsaved(): string[] {
    const out: string[] = [];
    for (const d of SCHEMA) {
      const a = this.values[d.key];
      const b = this.saved[d.key];
      if ((a !== undefined ? a : this.defOf(d)) !== (b !== undefined ? b : this.defOf(d))) out.push(d.key);
    }
    return out;
  }

  /** Writes the settings; null, or why it failed (the saved record is then as it was). */
  save(): string | null {
    let text = "";
    for (const d of SCHEMA) {
      const v = this.values[d.key];
      if (v !== undefined) text += `${d.key}=${v}\n`;
    }
    const size = port.bytes.textLength(text);
    if (size < 0 || size > SETTINGS_MAX) return `settings: over ${SETTINGS_MAX} bytes; nothing was saved. Fix: shorten a value`;
    const n = port.bytes.writeText(this.buf, 0, text);
    const r = this.storage.write(SETTINGS_KEY, this.buf, n);
    if (r !== 0) return `settings: the flash write failed (${r === 1 ? "the flash is full" : "the flash failed"}); the saved settings are as they were. Fix: free flash, then save again`;
    this.saved = {};
    for (const d of SCHEMA) this.saved[d.key] = this.values[d.key];
    return null;
  }

  /** Every setting back to its default, in effect and on flash. */
  factoryReset(): void {
    this.storage.remove(SETTINGS_KEY);
    this.values = {};
    this.saved = {};
  }
}
