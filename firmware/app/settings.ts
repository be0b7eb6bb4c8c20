import type { Storage } from "../port/storage";

/**
 * The node's settings as the running node reads them: every setting's value in effect, as text
 * ("on"/"off" for switches). What changes them (the schema, validation that explains a
 * rejection, reading and saving the record, secrets masked in every output) is the lazy module
 * config.ts, loaded when a command or the start-up needs it: on a board it is code in flash that
 * costs RAM only while it runs, where the running node keeps just the values that are not the
 * defaults (the defaults are code: schemaDefault).
 */
export class Settings {
  /**
   * The values in effect that differ from the default (config.ts keeps it): a setting at its
   * default has no entry, which on a board is a name and a value fewer in RAM for each.
   */
  values: { [key: string]: string | undefined } = {};
  /** The board's own defaults where they differ from the schema's (the simulator's broker). */
  readonly defaults: { [key: string]: string | undefined } = {};
  /** The keys whose value in effect differs from the saved one (config.ts keeps it). */
  unsaved: string[] = [];

  constructor(readonly storage: Storage, readonly boardTls: boolean) {}

  /** The value in effect ("" for a setting with none). */
  get(key: string): string {
    const v = this.values[key];
    if (v !== undefined) return v;
    const d = this.defaults[key];
    return d !== undefined ? d : schemaDefault(key);
  }

  /** A whole-number setting's value (-1 when it is not digits: never, once validated). */
  int(key: string): number {
    const v = this.get(key);
    let n = 0;
    if (v.length === 0 || v.length > 9) return -1;
    for (let i = 0; i < v.length; i++) {
      const c = v.charCodeAt(i) - 48;
      if (c < 0 || c > 9) return -1;
      n = n * 10 + c;
    }
    return n;
  }

  on(key: string): boolean {
    return this.get(key) === "on";
  }
}

/**
 * A setting's default in the schema ("" for none); config.ts's schema takes its defaults from
 * here. A board profile's or the simulator's own default (Settings.defaults) comes first.
 */
export function schemaDefault(key: string): string {
  if (key === "brokers") return "127.0.0.1:1883";
  if (key === "tls" || key === "sleep") return "off";
  if (key === "keepalive" || key === "interval") return "60";
  if (key === "qos") return "1";
  if (key === "prefix") return "petrel";
  if (key === "will.delay") return "10";
  if (key === "expiry") return "0";
  return key === "log" ? "info" : "";
}

/**
 * Whether `key` names a secret (masked everywhere, set at the serial console only): the secret
 * settings are exactly those whose name ends in ".pass" (config.ts checks its schema keeps to it),
 * so the console can mask a secret as it is typed without loading the schema.
 */
export function isSecret(key: string): boolean {
  return key.length > 5 && key.substring(key.length - 5) === ".pass";
}

/**
 * For the console's echo: whether the line typed so far is "set <secret key> " followed by
 * (part of) a value, so the value's characters are echoed as "*".
 */
export function typingSecret(this: void, typed: string): boolean {
  let i = 0;
  while (typed.charAt(i) === " " || typed.charAt(i) === "\t") i++;
  if (typed.substring(i, i + 3) !== "set" || (typed.charAt(i + 3) !== " " && typed.charAt(i + 3) !== "\t")) return false;
  i += 4;
  while (typed.charAt(i) === " " || typed.charAt(i) === "\t") i++;
  let end = i;
  while (end < typed.length && typed.charAt(end) !== " " && typed.charAt(end) !== "\t") end++;
  return end < typed.length && isSecret(typed.substring(i, end));
}
