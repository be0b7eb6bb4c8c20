import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, describe, expect } from "vitest";
import { espruinoBoard, espruinoBoardMissing, packEspruinoBoard, runtimesDir } from "./harness/board-espruino";
import { needs } from "./harness/needs";

// A console command on a board with too little memory left for it: the loader of the lazy modules
// (firmware/targets/espruino/app.ts) refuses it with the figures and a fix, and the node and its
// console go on. Without that refusal the interpreter runs out of variables part-way through the
// command: the console goes silent, or the interpreter stops (measured on the 1,600-slot build).
//
// The esp8266-espruino pack on the 1,600-slot interpreter, with more and more ballast taken before
// boot until `set` is refused (with none it runs; with 150 the console runs out of memory before
// the loader is reached, so the refusal has to come before that): bounded to four boots, so the
// case keeps proving the refusal when the node gets smaller.

const RUNTIME = "espruino-esp8266";
const BALLASTS = [0, 100, 125, 150];
const REFUSED = /^error: not enough memory for this command: \d+ variable slots free, it needs about \d+; nothing was run\. Fix: .+/;

describe("a console command the board has no memory for (esp8266-espruino on the 1,600-slot interpreter)", () => {
  let dist: string | undefined;
  afterAll(() => {
    if (dist !== undefined) fs.rmSync(dist, { recursive: true, force: true });
  });

  needs(espruinoBoardMissing(RUNTIME), "is refused with the slots free and needed and a fix, and the console answers the next command", async () => {
    const pk = await packEspruinoBoard("esp8266-espruino");
    dist = pk.dist;
    const seen: string[] = [];
    let refusal: string | undefined;
    for (const ballast of BALLASTS) {
      const b = espruinoBoard("esp8266-espruino", path.join(runtimesDir(), RUNTIME), { storage: pk.storage, ballast });
      try {
        await b.boot();
        seen.push(`ballast ${ballast}: booted`);
        const set = await b.type("set brokers 192.0.2.7:1883").catch((e: Error) => {
          throw new Error(`${seen.join("\n")}\n${e.message}`);
        });
        refusal = set.find((l) => REFUSED.test(l));
        seen.push(`ballast ${ballast}: ${set.join(" | ")}`);
        if (refusal === undefined) {
          // it had the room: the setting took
          expect(set.join("\n")).toContain("brokers = 192.0.2.7:1883");
          continue;
        }
        // refused: the console goes on
        const after = await b.type("status");
        expect(after.join("\n"), seen.join("\n")).toMatch(/node petrel-\w+: not connected/);
        console.log(`[${RUNTIME}] ballast ${ballast} (${b.ballastSlots} slots): ${refusal}`);
        break;
      } finally {
        await b.dispose();
      }
    }
    expect(refusal, `no refusal with up to ${BALLASTS[BALLASTS.length - 1]} slots of ballast:\n${seen.join("\n")}`).toBeDefined();
  }, 240_000);

  // Out of memory part-way through the app's start, Espruino abandons the whole evaluation and
  // prints its message on the REPL's loopback, where the console has already moved the REPL: a
  // console that answers and a node that does not run, and nothing said. A timer set before the
  // start says so on the serial line. Out of memory strikes at a different point for every size of
  // the node, so here the start is stopped the same way by an error thrown at its end.
  needs(espruinoBoardMissing(RUNTIME), "a start that stops part-way says so on the serial line, with the fix", async () => {
    const pk = await packEspruinoBoard("esp8266-espruino");
    const app = pk.storage["app"];
    const code = fs.readFileSync(app, "latin1");
    const at = code.lastIndexOf("global.petrelConsole=");
    expect(at, "the end of the app's start in app.js").toBeGreaterThan(0);
    const broken = path.join(pk.dist, "app-broken.js");
    fs.writeFileSync(broken, `${code.slice(0, at)}throw "stopped here";${code.slice(at)}`, "latin1");
    const b = espruinoBoard("esp8266-espruino", path.join(runtimesDir(), RUNTIME), { storage: { ...pk.storage, app: broken } });
    try {
      await b.boot();
      let said: string | undefined;
      for (let waited = 0; said === undefined && waited < 5000; waited += 100) {
        said = b.lines().find((l) => l.startsWith("error: the app stopped part-way through its start"));
        if (said === undefined) await new Promise((r) => setTimeout(r, 100));
      }
      expect(said, b.lines().join("\n")).toMatch(/most likely out of memory \(\d+ variable slots free\); the node is not running\. Fix: free memory .+, then reset$/);
    } finally {
      await b.dispose();
      fs.rmSync(pk.dist, { recursive: true, force: true });
    }
  }, 120_000);
});
