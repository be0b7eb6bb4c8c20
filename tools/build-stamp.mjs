// The build's stamp: a hash of everything the build reads (the sources, tests, tools, board
// profiles, TypeScript configs, the locked dependencies, and the Node running it), written to
// dist/.build-stamp when a build finishes. The next build with the same hash and its outputs in
// place has nothing to do.
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

export const STAMP_FILE = ".build-stamp";
const INPUT_DIRS = ["firmware", "host-sim", "test", "tools", "boards", "bench"];
/** What a finished build leaves in dist/ (a build removed by hand is built again). */
const OUTPUTS = ["node/host-sim/sim.js", "espruino/petrel.js", "espruino/app.js", "nodemcu", "nodemcu-probe"];

/** The hash of the build's inputs under `root`. */
export function inputsHash(root) {
  const h = crypto.createHash("sha256");
  h.update(process.version);
  const add = (rel) => {
    const abs = path.join(root, rel);
    if (!fs.existsSync(abs)) return;
    if (fs.statSync(abs).isDirectory()) {
      for (const f of fs.readdirSync(abs).sort()) add(path.join(rel, f));
      return;
    }
    h.update(`${rel}\0`);
    h.update(fs.readFileSync(abs));
    h.update("\0");
  };
  const files = ["package.json", "package-lock.json", "node_modules/.package-lock.json", ...fs.readdirSync(root).filter((f) => /^tsconfig.*\.json$/.test(f)).sort()];
  for (const d of [...INPUT_DIRS, ...files]) add(d);
  return h.digest("hex");
}

/** dist/ was built from exactly these inputs and its outputs are there. */
export function isCurrent(root, dist, hash = inputsHash(root)) {
  const stamp = path.join(dist, STAMP_FILE);
  return fs.existsSync(stamp) && fs.readFileSync(stamp, "utf8") === hash && OUTPUTS.every((o) => fs.existsSync(path.join(dist, o)));
}
