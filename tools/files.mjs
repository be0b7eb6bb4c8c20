// Small file helpers shared by the build tools.
import * as fs from "node:fs";
import * as path from "node:path";

/** Every file below `d` (recursively), as paths joined onto `d`. */
export function walk(d) {
  return fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]));
}
