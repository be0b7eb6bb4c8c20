import type { Payload } from "../../firmware/codec/encode";
import type { Wire } from "../../firmware/port/bytes";
import type { PetrelError } from "../../firmware/port/log";
import { MqttClient, connect } from "../../firmware/session/mqtt";
import type { BrokerAddress, ClientOptions } from "../../firmware/session/options";
import type { Platform } from "../../firmware/port/platform";

/**
 * The board agent: the built client driven by text lines, the same program on every runtime of
 * the matrix (Node, Espruino, NodeMCU Lua), so one scenario written in the test drives each of
 * them through its console. Commands (one per line, fields separated by single spaces):
 *
 *   open brokers=[tls:]h:p[,…] id=ID [clean=0|1] [keepalive=S] [min=MS] [max=MS] [retry=S]
 *        [will=TOPIC,QOS,RETAIN,HEX] [user=U] [pass=P] [packet=BYTES] [minheap=BYTES]        → "open ok" or "open-error CODE"
 *   sub TOPIC QOS         → "suback TOPIC GRANTED" (or "suback TOPIC error CODE")
 *   unsub TOPIC           → "unsuback TOPIC"
 *   pub REF TOPIC QOS RETAIN HEX   → "pubdone REF ok" or "pubdone REF CODE" (when it completes)
 *   stats                 → "stats outbox=N connects=N delivered=N duplicates=N attempts=N"
 *   mem                   → "mem TEXT" (the runtime's memory in use)
 *   end                   → "ended"
 *
 * Events: "connect sp=0|1", "msg TOPIC QOS RETAIN HEX", "error CODE", "offline", "close REASON".
 * Payloads travel as hex, so binary and UTF-8 pass every console unchanged.
 */
export interface AgentHost {
  platform: Platform;
  split(this: void, s: string, sep: string): string[];
  print(this: void, line: string): void;
  /** A received payload as hex. */
  hex(this: void, w: Wire): string;
  /** Hex as a payload for publish (bytes, not text). */
  unhex(this: void, hex: string): Payload;
  /** The runtime's own memory figure, as text (JsVars, Lua KB, JS heap). */
  memory(this: void): string;
}

export interface Agent {
  line(this: void, line: string): void;
}

/** "host:port", or "tls:host:port" for a TLS listener. */
function parseBroker(s: string, split: AgentHost["split"]): BrokerAddress {
  const hp = split(s, ":");
  if (hp[0] === "tls") return { host: hp[1], port: parseInt(hp[2], 10), tls: true };
  return { host: hp[0], port: parseInt(hp[1], 10) };
}

function flag(v: string | undefined): boolean {
  return v === "1";
}

function errText(e: PetrelError | undefined): string {
  return e === undefined ? "ok" : e.code;
}

export function startAgent(host: AgentHost): Agent {
  const say = host.print;
  let client: MqttClient | undefined = undefined;

  function open(fields: string[]): void {
    const o: ClientOptions = { brokers: [] };
    for (let i = 1; i < fields.length; i++) {
      const kv = fields[i];
      const eq = kv.indexOf("=");
      const k = kv.substring(0, eq);
      const v = kv.substring(eq + 1);
      if (k === "brokers") {
        const list = host.split(v, ",");
        for (let j = 0; j < list.length; j++) o.brokers[j] = parseBroker(list[j], host.split);
      } else if (k === "id") o.clientId = v;
      else if (k === "clean") o.clean = flag(v);
      else if (k === "keepalive") o.keepalive = parseInt(v, 10);
      else if (k === "min") o.reconnectMinMs = parseInt(v, 10);
      else if (k === "max") o.reconnectMaxMs = parseInt(v, 10);
      else if (k === "retry") o.primaryRetry = parseInt(v, 10);
      else if (k === "packet") o.maxPacket = parseInt(v, 10);
      else if (k === "minheap") o.minFreeHeap = parseInt(v, 10);
      else if (k === "user") o.username = v;
      else if (k === "pass") o.password = v;
      else if (k === "will") {
        const w = host.split(v, ",");
        o.will = { topic: w[0], qos: parseInt(w[1], 10), retain: flag(w[2]), payload: host.unhex(w[3]) };
      } else {
        say("open-error unknown-field " + k);
        return;
      }
    }
    const c = connect(host.platform, o);
    if (!(c instanceof MqttClient)) {
      say("open-error " + c.code);
      return;
    }
    const mc = c;
    client = mc;
    mc.on("connect", (ack) => say("connect sp=" + (ack.sessionPresent ? "1" : "0")));
    mc.on("message", (topic, payload, info) =>
      say("msg " + topic + " " + info.qos + " " + (info.retain ? "1" : "0") + " " + host.hex(payload)));
    mc.on("error", (e) => say("error " + e.code));
    mc.on("offline", () => say("offline"));
    mc.on("close", (reason) => say("close " + reason));
    say("open ok");
  }

  function line(text: string): void {
    const f = host.split(text, " ");
    const cmd = f[0];
    if (cmd === "open") {
      open(f);
      return;
    }
    if (cmd === "mem") {
      say("mem " + host.memory());
      return;
    }
    const c = client;
    if (c === undefined) {
      say("agent-error no client: open first");
      return;
    }
    if (cmd === "sub") {
      const topic = f[1];
      c.subscribe(topic, { qos: parseInt(f[2], 10) }, (e, granted) => {
        say("suback " + topic + " " + (e === undefined && granted !== undefined ? "" + granted[0] : "error " + errText(e)));
      });
    } else if (cmd === "unsub") {
      const topic = f[1];
      c.unsubscribe(topic, () => say("unsuback " + topic));
    } else if (cmd === "pub") {
      const ref = f[1];
      c.publish(f[2], host.unhex(f[5]), { qos: parseInt(f[3], 10), retain: flag(f[4]) }, (e) => say("pubdone " + ref + " " + errText(e)));
    } else if (cmd === "stats") {
      const s = c.core.stats;
      say("stats outbox=" + c.core.outbox.count + " connects=" + s.connects + " delivered=" + s.delivered + " duplicates=" + s.duplicates +
        " attempts=" + s.attempts);
    } else if (cmd === "end") {
      c.end(() => {
        client = undefined;
        say("ended");
      });
    } else {
      say("agent-error unknown command " + cmd);
    }
  }

  say("agent ready");
  return { line };
}
