// The build's stamps. The whole build's: a hash of everything the build reads (the sources,
// tests, tools, board profiles, TypeScript configs, the locked dependencies, and the Node running
// it), written to dist/.build-stamp when a build finishes; the next build with the same hash and
// its outputs in place has nothing to do. Each target's (STAGES): a hash of what that target's
// stage reads, written to dist/.stamp-<stage> when the stage finishes; a build that has something
// to do runs the type check and the dialect guard, and only the stages whose inputs changed.
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

export const STAMP_FILE = ".build-stamp";
const INPUT_DIRS = ["firmware", "host-sim", "test", "tools", "boards", "bench"];
/** What a finished build leaves in dist/ (a build removed by hand is built again). */
const OUTPUTS = ["node/host-sim/sim.js", "espruino/petrel.js", "espruino/app.js", "nodemcu", "nodemcu-probe"];

/** What every stage reads beside its own inputs (a change to a tool rebuilds every target). */
const COMMON = ["tools", "package.json", "package-lock.json", "node_modules/.package-lock.json", "tsconfig.json"];

/**
 * The stages that make a target: what each reads (beside COMMON; the TypeScript configs' own
 * `include` lists say which sources) and what it leaves in dist/.
 */
export const STAGES = {
  node: { inputs: ["firmware", "host-sim", "test/probe", "test/agent", "tsconfig.node-build.json"], outputs: ["node/host-sim/sim.js"] },
  lua: { inputs: ["firmware", "test/probe", "test/agent", "tsconfig.lua.json", "tsconfig.lua-probe.json"], outputs: ["nodemcu", "nodemcu-probe"] },
  espruino: { inputs: ["firmware", "test/probe", "test/agent", "test/fixtures/espruino", "tsconfig.espruino.json"], outputs: ["espruino/petrel.js", "espruino/app.js"] },
};

/** The hash of one stage's inputs under `root`. */
export function stageHash(root, stage) {
  return hashOf(root, [...COMMON, ...STAGES[stage].inputs]);
}

/** The stage's outputs in dist/ were built from exactly these inputs (its stamp) and are there. */
export function stageCurrent(root, dist, stage, hash = stageHash(root, stage)) {
  const stamp = path.join(dist, `.stamp-${stage}`);
  return fs.existsSync(stamp) && fs.readFileSync(stamp, "utf8") === hash && STAGES[stage].outputs.every((o) => fs.existsSync(path.join(dist, o)));
}

/** The hash of the build's inputs under `root`. */
export function inputsHash(root) {
  const files = ["package.json", "package-lock.json", "node_modules/.package-lock.json", ...fs.readdirSync(root).filter((f) => /^tsconfig.*\.json$/.test(f)).sort()];
  return hashOf(root, [...INPUT_DIRS, ...files]);
}

/** The hash of the files and folders `rels` under `root` (and the Node running it). */
function hashOf(root, rels) {
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
  for (const d of rels) add(d);
  return h.digest("hex");
}

/** dist/ was built from exactly these inputs and its outputs are there. */
export function isCurrent(root, dist, hash = inputsHash(root)) {
  const stamp = path.join(dist, STAMP_FILE);
  return fs.existsSync(stamp) && fs.readFileSync(stamp, "utf8") === hash && OUTPUTS.every((o) => fs.existsSync(path.join(dist, o)));
}
