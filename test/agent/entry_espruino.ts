import { installPort } from "../../firmware/port/port";
import { espruinoPlatform } from "../../firmware/targets/espruino/platform";
import { espruinoPort } from "../../firmware/targets/espruino/port";
import { startAgent } from "./agent";

declare function print(line: string): void;
declare const global: { [name: string]: unknown };
declare const process: { memory?(): { usage: number; total: number } } | undefined;
/** Set in front of the bundle by a test harness: lines come from this loopback port, not the REPL. */
declare const AGENT_PORT: number | undefined;
/** Set in front of the bundle by a test harness: the CA (PEM) TLS brokers must be signed by. */
declare const AGENT_CA: string | undefined;

interface NetSocket {
  on(event: string, fn: (data: string) => void): void;
}

// The board agent on Espruino: each console line is typed at the REPL as `Agent("…")`.
installPort(espruinoPort);

function hex(w: unknown): string {
  const s = w as string;
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out += (c < 16 ? "0" : "") + c.toString(16);
  }
  return out;
}

function unhex(h: string): string {
  let out = "";
  for (let i = 0; i + 1 < h.length; i += 2) out += String.fromCharCode(parseInt(h.substring(i, i + 2), 16));
  return out;
}

const agent = startAgent({
  platform: espruinoPlatform({ logLevel: 1, tls: typeof AGENT_CA === "string" ? { ca: AGENT_CA } : undefined }),
  split: (s, sep) => s.split(sep),
  print: (line) => print(line),
  hex: hex as (w: unknown) => string,
  unhex,
  memory: () => {
    if (typeof process === "undefined" || process === undefined || process.memory === undefined) return "not measured (no process.memory here)";
    const m = process.memory();
    return `${m.usage} of ${m.total} JsVars`;
  },
});
global["Agent"] = agent.line;

// Console lines over TCP: the Linux interpreter's stdin thread races its event queue on long
// input (an ASSERT in jsdevices.c), so a harness can feed lines through a socket instead.
if (typeof AGENT_PORT === "number") {
  const netModule = (global["require"] as (name: string) => { connect(o: { host: string; port: number }): NetSocket })("net");
  const s = netModule.connect({ host: "127.0.0.1", port: AGENT_PORT });
  let rest = "";
  s.on("data", (d) => {
    rest += d;
    let nl = rest.indexOf("\n");
    while (nl >= 0) {
      agent.line(rest.substring(0, nl));
      rest = rest.substring(nl + 1);
      nl = rest.indexOf("\n");
    }
  });
}
