import { afterWord, type Command } from "../console/line";
import { SCHEMA, find, isSecret, listed, type Settings } from "./settings";

/**
 * For the console's echo: whether the line typed so far is "set <secret key> " followed by
 * (part of) a value, so the value's characters are echoed as "*".
 */
export function typingSecret(this: void, typed: string): boolean {
  let i = 0;
  while (typed.charAt(i) === " ") i++;
  if (typed.substring(i, i + 4) !== "set ") return false;
  i += 4;
  while (typed.charAt(i) === " ") i++;
  const end = typed.indexOf(" ", i);
  return end >= 0 && isSecret(typed.substring(i, end));
}

/**
 * The settings commands of the serial console: show, get, set, unset, save, factory-reset.
 * Nothing they print carries a secret's value (Settings.shown masks it; refusals never echo it).
 * `afterReset` runs once the settings are back to their defaults (the app restarts its work).
 * `remote` (the command topic): no unset or factory-reset, and set refuses secrets.
 */
export function settingsCommands(st: Settings, afterReset: (this: void) => void, remote?: boolean): Command[] {
  let confirmReset = false;
  const all: Command[] = [
    {
      name: "show",
      help: " every setting (secrets masked), with * on unsaved changes",
      run: (_args, say) => {
        const unsaved = st.unsaved();
        for (const d of SCHEMA) {
          say(`${listed(unsaved, d.key) ? "*" : " "} ${d.key} = ${st.shown(d.key)}`);
        }
        if (unsaved.length > 0) say(`* not saved: save keeps them over a reboot`);
      },
    },
    {
      name: "get",
      help: "KEY  one setting (secrets masked)",
      run: (args, say) => {
        if (args.length !== 1) {
          say("error: get takes one setting name, e.g. get brokers; show lists them");
          return;
        }
        const d = find(args[0]);
        if (d === undefined) say(`error: unknown setting "${args[0]}"; show lists them`);
        else say(`${args[0]} = ${st.shown(args[0])}  (${d.help})`);
      },
    },
    {
      name: "set",
      help: "KEY VALUE  changes a setting now (save keeps it); the value is the rest of the line",
      run: (args, say, rest) => {
        if (args.length < 1) {
          say("error: set takes a setting name and a value, e.g. set interval 30; show lists the names");
          return;
        }
        if (remote === true && isSecret(args[0])) {
          say(`error: ${args[0]} is a secret: it is set at the serial console only`);
          return;
        }
        // the value: the rest of the line after the key
        const why = st.set(args[0], afterWord(rest));
        if (why !== null) say(`error: ${why}; nothing was changed`);
        else say(`${args[0]} = ${st.shown(args[0])} (not saved yet)`);
      },
    },
    {
      name: "unset",
      help: "KEY  back to the default (save keeps it)",
      run: (args, say) => {
        const why = args.length === 1 ? st.unset(args[0]) : "unset takes one setting name";
        if (why !== null) say(`error: ${why}`);
        else say(`${args[0]} = ${st.shown(args[0])} (the default; not saved yet)`);
      },
    },
    {
      name: "save",
      help: " writes the settings to flash (a power cut leaves the old or the new ones)",
      run: (_args, say) => {
        const n = st.unsaved().length;
        const why = st.save();
        if (why !== null) say(`error: ${why}`);
        else say(`saved (${n} change${n === 1 ? "" : "s"})`);
      },
    },
    {
      name: "factory-reset",
      help: " erases every setting (asks to confirm: factory-reset yes)",
      run: (args, say) => {
        if (args.length === 1 && args[0] === "yes" && confirmReset) {
          confirmReset = false;
          st.factoryReset();
          say("factory-reset: every setting is back to its default, on flash too");
          afterReset();
          return;
        }
        confirmReset = true;
        say("factory-reset erases every setting, Wi-Fi and broker credentials included; type factory-reset yes to do it");
      },
    },
  ];
  if (remote !== true) return all;
  const out: Command[] = [];
  for (const c of all) if (c.name !== "unset" && c.name !== "factory-reset") out.push(c);
  return out;
}
