#!/usr/bin/env node
// The dialect guard: checks firmware sources and the built Espruino and Lua output.
// Exit 1 with file:line:col rule: reason; fix: … for each violation.
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { format, rulesFor } from "./rules.mjs";
import { checkProject } from "./source.mjs";
import { checkEspruinoBundle } from "./espruino.mjs";
import { checkLua } from "./lua.mjs";
import { walk } from "../files.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const guarded = (rel) => rulesFor(rel).size > 0;
const seen = new Set();
const violations = [];
const add = (vs) => {
  for (const v of vs) {
    const key = `${v.file}:${v.line}:${v.col}:${v.rule}`;
    if (!seen.has(key)) {
      seen.add(key);
      violations.push(v);
    }
  }
};

// Sources: shared code is checked in both target programs (their types can differ).
add(checkProject(root, "tsconfig.lua.json", guarded, rulesFor));
add(checkProject(root, "tsconfig.espruino.json", guarded, rulesFor));
const sourceCount = seen.size;

// Built output.
const espDir = path.join(root, "dist/espruino");
const luaDirs = [path.join(root, "dist/nodemcu"), path.join(root, "dist/nodemcu-probe")];
let bundles = 0;
let luaFiles = 0;
let luaStats = { maxLocals: 0, maxUpvalues: 0 };
if (fs.existsSync(espDir)) {
  for (const f of fs.readdirSync(espDir).filter((f) => f.endsWith(".js"))) {
    bundles++;
    add(checkEspruinoBundle(fs.readFileSync(path.join(espDir, f), "utf8"), path.relative(root, path.join(espDir, f))));
  }
}
for (const luaDir of luaDirs.filter((d) => fs.existsSync(d))) {
  for (const f of walk(luaDir).filter((f) => f.endsWith(".lua"))) {
    luaFiles++;
    const r = checkLua(fs.readFileSync(f, "latin1"), path.relative(root, f));
    add(r.violations);
    luaStats = { maxLocals: Math.max(luaStats.maxLocals, r.maxLocals), maxUpvalues: Math.max(luaStats.maxUpvalues, r.maxUpvalues) };
  }
}

for (const v of violations) console.log(format(v));
console.log(`guard: ${violations.length} violation(s); sources ${sourceCount === 0 ? "clean" : "checked"}, ` +
  `${bundles} Espruino bundle(s), ${luaFiles} Lua file(s) (max ${luaStats.maxLocals} active locals, ${luaStats.maxUpvalues} upvalues per function)`);
process.exit(violations.length > 0 ? 1 : 0);
