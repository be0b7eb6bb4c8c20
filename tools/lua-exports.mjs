/**
 * Lets a built Lua module's export table go once the module is loaded: typescript-to-lua writes
 * an exported function as `function ____exports.f(...)` and every use of it or of an exported
 * constant inside the module as `____exports.f` / `____exports.MAX`, so each function that uses
 * one holds the whole export table as an upvalue, and with it every other export (boot-only
 * functions included) for as long as that function lives. Here:
 *
 *     local ____exports = {}                    local ____exports = {} local f, g
 *     function ____exports.f(x)            →    function f(x)
 *         return ____exports.g(x) + ____exports.MAX       return g(x) + (8)
 *     end                                       end ____exports.f = f
 *
 * An exported function becomes a local of the module (declared with `____exports`, so a use
 * before its definition finds it too) that the export table is given after its definition; an
 * exported literal assigned once (`____exports.MAX = 8`) is written where it is read. Line
 * numbers stay. A function is left as it is when its name is bound or read anywhere else in the
 * module (a local, a parameter, a table key, a global of that name), or assigned more than once;
 * a file with a long string or comment is left alone. The module's top level gains a local per
 * function: the dialect guard holds it to NodeMCU's 50. Runs on the indented TSTL output.
 */
import { codeOnly, exportedLiteral, occurrences } from "./lua-consts.mjs";

const DECL = "local ____exports = {}";
const FN = /^function ____exports\.([A-Za-z_][A-Za-z0-9_]*)\(/;
const SET = /^____exports\.([A-Za-z_][A-Za-z0-9_]*) = /;

/** The line after the top-level `end` that closes the definition starting at `from`, or -1. */
function blockEnd(lines, from) {
  for (let i = from + 1; i < lines.length; i++) if (lines[i] === "end") return i;
  return -1;
}

/** `src` with its export uses made local. Returns { code, functions, literals } (the names). */
export function localLuaExports(src) {
  const none = { code: src, functions: [], literals: [] };
  if (/\[=*\[/.test(src)) return none;
  let lines = src.split("\n");
  const decl = lines.indexOf(DECL);
  if (decl < 0) return none;
  const code = codeOnly(src);
  const ref = "____exports.";
  /** Every `____exports.NAME` in the code: its offset and NAME. */
  const uses = [];
  for (let i = code.indexOf(ref); i >= 0; i = code.indexOf(ref, i + 1)) {
    if (i > 0 && /[A-Za-z0-9_.:]/.test(code[i - 1])) continue;
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(code.slice(i + ref.length));
    if (m !== null) uses.push({ at: i, name: m[0] });
  }
  const isSet = (u) => /^\s*=(?!=)/.test(code.slice(u.at + ref.length + u.name.length));
  const lineOf = (at) => code.slice(0, at).split("\n").length - 1;
  const functions = [];
  const literals = [];
  const names = new Set(uses.map((u) => u.name));
  for (const name of names) {
    const mine = uses.filter((u) => u.name === name);
    const defs = mine.filter((u) => FN.test(lines[lineOf(u.at)]) && code.slice(u.at - "function ".length, u.at) === "function ");
    const sets = mine.filter(isSet);
    if (defs.length === 1 && sets.length === 0) {
      // the bare name must be nowhere else: no local, parameter, key or global to clash with
      const bare = occurrences(code, name).filter((i) => code[i - 1] !== "." && code[i - 1] !== ":" || code[i - 2] === ".");
      if (bare.length === 0 && lineOf(defs[0].at) > decl) functions.push(name);
    } else if (defs.length === 0 && sets.length === 1 && SET.test(lines[lineOf(sets[0].at)]) && exportedLiteral(src, name) !== undefined) {
      if (mine.length > 1) literals.push(name);
    }
  }
  if (functions.length === 0 && literals.length === 0) return none;
  // rewrite from the end, so offsets before stay valid
  let out = src;
  const ends = new Map();
  for (const u of [...uses].sort((a, b) => b.at - a.at)) {
    const at = u.at;
    if (functions.includes(u.name)) {
      out = out.slice(0, at) + u.name + out.slice(at + ref.length + u.name.length);
    } else if (literals.includes(u.name) && !isSet(u)) {
      const lit = exportedLiteral(src, u.name);
      out = out.slice(0, at) + (lit === "true" || lit === "false" ? lit : `(${lit})`) + out.slice(at + ref.length + u.name.length);
    }
  }
  lines = out.split("\n");
  for (const name of functions) {
    const def = lines.findIndex((l) => l.startsWith(`function ${name}(`));
    const end = blockEnd(lines, def);
    if (def < 0 || end < 0) throw new Error(`lua-exports: the definition of ${name} was not found again`);
    ends.set(end, [...(ends.get(end) ?? []), name]);
  }
  for (const [end, ns] of ends) lines[end] = `end${ns.map((n) => ` ____exports.${n} = ${n}`).join("")}`;
  if (functions.length > 0) lines[decl] = `${DECL} local ${functions.join(", ")}`;
  return { code: lines.join("\n"), functions, literals };
}

/** Makes the export uses of every built module under `dir` local (in place). Returns { functions, literals } (counts). */
export function localLuaExportsDir(fs, dir) {
  const total = { functions: 0, literals: 0 };
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const f = `${d}/${e.name}`;
      if (e.isDirectory()) walk(f);
      else if (e.name.endsWith(".lua")) {
        const r = localLuaExports(fs.readFileSync(f, "latin1"));
        if (r.functions.length + r.literals.length > 0) fs.writeFileSync(f, r.code, "latin1");
        total.functions += r.functions.length;
        total.literals += r.literals.length;
      }
    }
  };
  walk(dir);
  return total;
}
