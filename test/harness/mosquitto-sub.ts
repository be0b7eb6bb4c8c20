import { spawn, type ChildProcess } from "node:child_process";
import { until } from "./wait";

/**
 * mosquitto_sub on `topic` at `qos` against the broker on 127.0.0.1:`port`, each message given to
 * `onLine` as mosquitto_sub prints it with `format` (its -F). Resolves once its SUBACK came
 * (bounded: 5 s), with the process, for the caller to kill.
 */
export async function mosquittoSub(port: number, topic: string, qos: number, format: string, onLine: (line: string) => void): Promise<ChildProcess> {
  // stdbuf: mosquitto_sub's stdout is a pipe here, block-buffered unless told otherwise
  const child = spawn("stdbuf", ["-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", String(port), "-t", topic, "-q", String(qos), "-d", "-F", format],
    { stdio: ["ignore", "pipe", "ignore"] });
  let rest = "";
  let subscribed = false;
  child.stdout.on("data", (d: Buffer) => {
    rest += d.toString("latin1");
    const parts = rest.split("\n");
    rest = parts.pop() as string;
    for (const p of parts) {
      // -d: the client's own protocol lines come before and between the messages
      if (p.startsWith("Client ") || p.startsWith("Subscribed ")) subscribed ||= p.includes("received SUBACK");
      else if (p.length > 0) onLine(p);
    }
  });
  try {
    await until(`mosquitto_sub on ${topic} to get its SUBACK`, () => subscribed, 5000);
  } catch (e) {
    child.kill("SIGKILL");
    throw e;
  }
  return child;
}
