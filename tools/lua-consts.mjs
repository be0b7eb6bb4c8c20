/**
 * Inlines a built Lua module's top-level constants: `local NAME = 30000` (an upper-case name, a
 * number or a boolean, at the top level of the module as typescript-to-lua writes a `const`) is
 * replaced by its value where it is read, and the declaration line is left empty (line numbers
 * stay). Every function of the module that reads such a local holds it as an upvalue: on
 * NodeMCU, with the code in LFS, each costs a 16-byte upvalue object of heap for as long as the
 * function lives, and 4 bytes more in every closure that reads it. A literal is a constant of
 * the function's prototype, which stays in flash.
 *
 * Conservative: a name is left as it is when anything but a plain read of it follows the
 * declaration (an assignment, another `local`, a parameter or loop variable of that name), or
 * when it is read before its declaration. A file with a long string or comment is left alone.
 * Runs on the indented TSTL output (top level = no indentation).
 */

const LITERAL = /^(?:-?\d+(?:\.\d+)?|true|false|"[^"\\]*")$/;
const DECL = /^local ([A-Z][A-Z0-9_]*) = (.+)$/;
const IMPORT = /^(____[A-Za-z0-9_]+)\.([A-Z][A-Z0-9_]*)$/;
const REQUIRE = /^local (____[A-Za-z0-9_]+) = require\("([^"]+)"\)$/gm;
const IDENT = /[A-Za-z_][A-Za-z0-9_]*/y;

/** The code of `src` with strings and comments blanked (same length), so names are found only in code. */
export function codeOnly(src) {
  let out = "";
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (c === "-" && src[i + 1] === "-") {
      const end = src.indexOf("\n", i);
      const j = end < 0 ? src.length : end;
      out += " ".repeat(j - i);
      i = j;
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < src.length && src[j] !== c && src[j] !== "\n") j += src[j] === "\\" ? 2 : 1;
      out += c + " ".repeat(Math.min(j, src.length) - i - 1) + (j < src.length ? c : "");
      i = j + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** Each place `name` occurs as a whole identifier in `code`. */
export function occurrences(code, name) {
  const at = [];
  let i = code.indexOf(name);
  while (i >= 0) {
    const before = i > 0 ? code[i - 1] : " ";
    const after = code[i + name.length] ?? " ";
    if (!/[A-Za-z0-9_]/.test(before) && !/[A-Za-z0-9_]/.test(after)) at.push(i);
    i = code.indexOf(name, i + name.length);
  }
  return at;
}

/** Whether the occurrence at `i` is a plain read of the local (not a field, a key, a target or a new binding). */
function isRead(code, i, name) {
  let b = i - 1;
  while (b >= 0 && (code[b] === " " || code[b] === "\t")) b--;
  // `t.NAME`, `t:NAME` (but `x .. NAME` reads it)
  if (b >= 0 && ((code[b] === "." && code[b - 1] !== ".") || code[b] === ":")) return "field";
  let a = i + name.length;
  while (a < code.length && (code[a] === " " || code[a] === "\t")) a++;
  if (code[a] === "=" && code[a + 1] !== "=") return false;
  // a new binding of the name: `local a, NAME`, `for NAME`, `function f(a, NAME)`
  const lineStart = code.lastIndexOf("\n", i) + 1;
  const head = code.slice(lineStart, i);
  if (/\blocal\s+(?:[A-Za-z_][A-Za-z0-9_]*\s*,\s*)*$/.test(head)) return false;
  if (/\bfor\s+(?:[A-Za-z_][A-Za-z0-9_]*\s*,\s*)*$/.test(head)) return false;
  if (/\bfunction\b[^()]*\([^)]*$/.test(head)) return false;
  IDENT.lastIndex = i;
  return IDENT.test(code) ? "read" : false;
}

/**
 * The literal a module exports as `name` (`____exports.NAME = 5` at its top level, assigned
 * nowhere else), from its built source; undefined when there is none.
 */
export function exportedLiteral(src, name) {
  const set = src.split("\n").filter((l) => new RegExp(`____exports\\.${name}\\s*=(?!=)`).test(l));
  if (set.length !== 1) return undefined;
  const m = new RegExp(`^____exports\\.${name} = (.+)$`).exec(set[0]);
  return m !== null && LITERAL.test(m[1]) ? m[1] : undefined;
}

/**
 * `src` with its top-level constants inlined; `inlined` names them. `imported(module, name)`
 * gives the literal another module exports (`local NAME = ____mod.NAME` after
 * `local ____mod = require("module")`), or undefined to leave that import alone. `importsOnly`:
 * those imports only (for code whose indentation is stripped, where a function's own constants
 * look like the module's).
 */
export function inlineLuaConstants(src, imported = () => undefined, importsOnly = false) {
  if (/\[=*\[/.test(src)) return { code: src, inlined: [] };
  const lines = src.split("\n");
  const inlined = [];
  const requires = new Map([...src.matchAll(REQUIRE)].map((r) => [r[1], r[2]]));
  let out = src;
  for (let n = 0; n < lines.length; n++) {
    const m = DECL.exec(lines[n]);
    if (m === null) continue;
    const name = m[1];
    let value = m[2];
    const imp = IMPORT.exec(value);
    if (imp !== null) {
      if (imp[2] !== name) continue;
      const mod = requires.get(imp[1]);
      const lit = mod !== undefined ? imported(mod, name) : undefined;
      if (lit === undefined) continue;
      value = lit;
    } else if (importsOnly) continue;
    if (!LITERAL.test(value)) continue;
    const code = codeOnly(out);
    const declAt = out.split("\n").slice(0, n).join("\n").length + (n > 0 ? 1 : 0);
    const all = occurrences(code, name);
    const uses = [];
    let ok = true;
    for (const i of all) {
      if (i === declAt + "local ".length) continue;
      const kind = isRead(code, i, name);
      if (kind === "field") continue;
      const lineStart = code.lastIndexOf("\n", i) + 1;
      if (kind !== "read" || i < declAt || code.slice(lineStart, i).trim() === "") {
        ok = false;
        break;
      }
      uses.push(i);
    }
    if (!ok) continue;
    const lit = value === "true" || value === "false" ? value : `(${value})`;
    let next = out;
    for (const i of uses.reverse()) next = next.slice(0, i) + lit + next.slice(i + name.length);
    const ls = next.split("\n");
    ls[n] = "";
    out = ls.join("\n");
    inlined.push(name);
  }
  return { code: inlined.length > 0 ? foldNumberTexts(out) : out, inlined };
}

/**
 * `("A" .. tostring(N)) .. "B"` as the one literal "ANB" where N is a whole-number literal (what
 * a template string around an inlined constant becomes): a constant of the prototype instead of
 * a call and two concatenations in the image. tostring of a whole number is its digits on Lua
 * 5.1 and 5.3 alike.
 */
export function foldNumberTexts(src) {
  return src.replace(/\("((?:[^"\\\n]|\\.)*)" \.\. tostring\(\(?(-?\d+)\)?\)\) \.\. "((?:[^"\\\n]|\\.)*)"/g, '"$1$2$3"');
}

/** Module `mod`'s built file under `dir` (firmware.port.log: firmware/port/log.lua). */
const fileOf = (dir, mod) => `${dir}/${mod.split(".").join("/")}.lua`;

/**
 * Inlines the constants of every built module under `dir` (in place), imports from other modules
 * of `dir` included, except from the modules in `skip` (firmware.features: each board's pack
 * writes its own). Returns how many names were inlined.
 */
export function inlineLuaDir(fs, dir, skip = ["firmware.features"]) {
  const cache = new Map();
  const imported = (mod, name) => {
    if (skip.includes(mod)) return undefined;
    if (!cache.has(mod)) {
      const f = fileOf(dir, mod);
      cache.set(mod, fs.existsSync(f) ? fs.readFileSync(f, "latin1") : "");
    }
    return exportedLiteral(cache.get(mod), name);
  };
  let count = 0;
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const f = `${d}/${e.name}`;
      if (e.isDirectory()) walk(f);
      else if (e.name.endsWith(".lua")) {
        const r = inlineLuaConstants(fs.readFileSync(f, "latin1"), imported);
        if (r.inlined.length > 0) fs.writeFileSync(f, r.code, "latin1");
        count += r.inlined.length;
      }
    }
  };
  walk(dir);
  return count;
}
