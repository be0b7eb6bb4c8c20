import type { Command } from "../console/line";
import { port } from "../port/port";
import type { Bytes } from "../port/bytes";
import type { Storage } from "../port/storage";

/**
 * TLS certificates for the broker connection, pasted at the serial console as PEM and kept on
 * flash, one record each: the CA the broker's certificate must be signed by, and the board's
 * own certificate and key where the broker asks for one. The key is a secret: echoed as "*"
 * while pasted, never printed. Only on boards whose firmware has TLS.
 */
export const PEM_NAMES = ["ca", "cert", "key"];
export const PEM_MAX = 4096;

const recordOf = (name: string) => `pem.${name}`;

export interface Pems {
  ca?: string;
  cert?: string;
  key?: string;
}

/** The PEMs on flash (read at start-up, for the platform's TLS). */
export function readPems(storage: Storage): Pems {
  const out: Pems = {};
  let buf: Bytes | undefined = undefined;
  for (const name of PEM_NAMES) {
    if (storage.list(recordOf(name)).length === 0) continue;
    if (buf === undefined) buf = port.bytes.alloc(PEM_MAX);
    const n = storage.read(recordOf(name), buf, PEM_MAX);
    if (n <= 0) continue;
    const text = port.bytes.readText(buf, 0, n);
    if (name === "ca") out.ca = text;
    else if (name === "cert") out.cert = text;
    else out.key = text;
  }
  return out;
}

/**
 * The console command `pem`: `pem` lists them, `pem NAME` takes a pasted PEM (to its -----END
 * line), `pem NAME clear` removes one. `collect` hands the next lines to a function (the
 * console's collect mode). Takes effect at the next boot.
 */
export function pemCommand(storage: Storage, boardTls: boolean,
  collect: (this: void, fn: (this: void, line: string) => boolean, secret: boolean) => void): Command {
  return {
    name: "pem",
    help: "[ca|cert|key [clear]]  lists, pastes (to its -----END line) or clears a TLS certificate or key",
    run: (args, say) => {
      if (!boardTls) {
        say("error: this board's firmware has no TLS, so it keeps no certificates");
        return;
      }
      if (args.length === 0) {
        let line = "";
        for (const name of PEM_NAMES) {
          const has = storage.list(recordOf(name)).length > 0;
          line += `${line.length > 0 ? ", " : ""}${name} ${has ? (name === "key" ? "(set, hidden)" : "(set)") : "(none)"}`;
        }
        say(`pem: ${line}`);
        return;
      }
      const name = args[0];
      let known = false;
      for (const n of PEM_NAMES) if (n === name) known = true;
      if (!known || args.length > 2 || (args.length === 2 && args[1] !== "clear")) {
        say("error: pem takes ca, cert or key, then nothing (paste it next) or clear; e.g. pem ca");
        return;
      }
      if (args.length === 2) {
        storage.remove(recordOf(name));
        say(`pem ${name}: cleared; reboot to use the change`);
        return;
      }
      say(`pem ${name}: paste it now, from its -----BEGIN line to its -----END line (Ctrl-C stops)`);
      let text = "";
      let size = 0;
      collect((line) => {
        if (text.length === 0 && line.substring(0, 10) !== "-----BEGIN") {
          say(`error: a PEM starts with its -----BEGIN line; nothing was saved. Fix: pem ${name}, then paste the whole PEM`);
          return true;
        }
        text += line + "\n";
        size += line.length + 1;
        if (size > PEM_MAX) {
          say(`error: over ${PEM_MAX} bytes; nothing was saved. Fix: paste one certificate, not a chain or a bundle`);
          return true;
        }
        if (line.substring(0, 8) !== "-----END") return false;
        const buf = port.bytes.alloc(size);
        const n = port.bytes.writeText(buf, 0, text);
        const r = storage.write(recordOf(name), buf, n);
        say(r === 0 ? `pem ${name}: saved (${n} bytes); reboot to use it` : `error: the flash write failed; the old ${name} is kept. Fix: free flash, then paste again`);
        return true;
      }, name === "key");
    },
  };
}
