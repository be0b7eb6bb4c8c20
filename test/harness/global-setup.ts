import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

/** Tests run the built artifacts: build first when `vitest` is run on its own without `make build`. */
export default function setup(): void {
  const root = path.resolve(__dirname, "../..");
  if (process.env.PETREL_SKIP_BUILD === "1" && fs.existsSync(path.join(root, "dist/espruino/probe.js"))) return;
  execFileSync(process.execPath, [path.join(root, "tools/build.mjs")], { cwd: root, stdio: "inherit" });
}
