import * as readline from "node:readline";
import type { Wire } from "../../firmware/port/bytes";
import { installPort } from "../../firmware/port/port";
import { nodePort } from "../../firmware/targets/node/port";
import { nodePlatform } from "../../host-sim/node/platform";
import { startAgent } from "./agent";

// The board agent on Node: its flash is the directory PETREL_FLASH, its console stdin/stdout.
installPort(nodePort);

const agent = startAgent({
  platform: nodePlatform({ storageDir: process.env.PETREL_FLASH, log: (_l, line) => process.stderr.write(line + "\n"), logLevel: 1 }),
  split: (s, sep) => s.split(sep),
  print: (line) => process.stdout.write(line + "\n"),
  hex: (w: Wire) => Buffer.from(w as unknown as Uint8Array).toString("hex"),
  unhex: (h) => Buffer.from(h, "hex") as unknown as number[],
  memory: () => `${Math.round(process.memoryUsage().heapUsed / 1024)} KB JS heap`,
});
const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (l) => agent.line(l));
rl.on("close", () => process.exit(0));
