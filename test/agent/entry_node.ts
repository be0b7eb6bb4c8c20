import * as fs from "node:fs";
import * as readline from "node:readline";
import type { Wire } from "../../firmware/port/bytes";
import { installPort } from "../../firmware/port/port";
import { nodePort } from "../../firmware/targets/node/port";
import { nodePlatform, simulatedLink } from "../../firmware/targets/node/platform";
import { startAgent } from "./agent";

// The board agent on Node: its flash is the directory PETREL_FLASH, its console stdin/stdout.
installPort(nodePort);

// The host has no Wi-Fi: "wifi down" / "wifi up" switch a simulated station.
const link = simulatedLink();
const agent = startAgent({
  platform: nodePlatform({ link, storageDir: process.env.PETREL_FLASH,
    // PETREL_CA: the CA (PEM file) TLS brokers must be signed by
    tls: process.env.PETREL_CA ? { ca: fs.readFileSync(process.env.PETREL_CA, "utf8") } : undefined, log: (_l, line) => process.stderr.write(line + "\n"), logLevel: 1 }),
  split: (s, sep) => s.split(sep),
  print: (line) => process.stdout.write(line + "\n"),
  hex: (w: Wire) => Buffer.from(w as unknown as Uint8Array).toString("hex"),
  unhex: (h) => Buffer.from(h, "hex") as unknown as number[],
  memory: () => `${Math.round(process.memoryUsage().heapUsed / 1024)} KB JS heap`,
});
const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (l) => {
  if (l === "wifi down" || l === "wifi up") link.set(l === "wifi up");
  else agent.line(l);
});
rl.on("close", () => process.exit(0));
