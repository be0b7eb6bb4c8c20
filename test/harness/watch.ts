import { spawn } from "node:child_process";
import { until } from "./wait";

/**
 * An independent observer at the broker: mosquitto_sub on `topic` (QoS 1), collecting
 * "TOPIC PAYLOAD" per message, the payload decoded from hex so that one may hold newlines.
 * Resolves once its SUBACK came (bounded); `stop` kills it.
 */
export async function watch(port: number, topic: string, auth?: { user: string; pass: string }): Promise<{ lines: string[]; stop(): void }> {
  const login = auth !== undefined ? ["-u", auth.user, "-P", auth.pass] : [];
  // stdbuf: mosquitto_sub's stdout is a pipe here, block-buffered unless told otherwise
  const child = spawn("stdbuf", ["-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", String(port), ...login, "-t", topic, "-q", "1", "-d", "-F", "%t %x"]);
  const lines: string[] = [];
  let rest = "";
  let subscribed = false;
  child.stdout.on("data", (d: Buffer) => {
    rest += d.toString();
    const parts = rest.split("\n");
    rest = parts.pop() as string;
    for (const p of parts) {
      if (p.startsWith("Client ") || p.startsWith("Subscribed ")) subscribed ||= p.includes("received SUBACK");
      else if (p.length > 0) {
        const sp = p.indexOf(" ");
        lines.push(`${p.slice(0, sp)} ${Buffer.from(p.slice(sp + 1), "hex").toString("utf8")}`);
      }
    }
  });
  const stop = () => child.kill("SIGKILL");
  try {
    await until(`mosquitto_sub on ${topic} subscribed`, () => subscribed, 5000);
  } catch (e) {
    stop();
    throw e;
  }
  return { lines, stop };
}
