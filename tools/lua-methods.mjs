/**
 * Makes a built Lua module's class methods lazy: instead of one closure per method, made when the
 * module loads and held for good by the class's prototype table, the prototype's `__index` is one
 * function that makes the method a caller asks for, by name, when it is asked for:
 *
 *     function Client.prototype.start(self) ... end          Client.prototype.__index = function(_, k) if k == "start" then return function(self) ... end
 *     function Client.prototype.pump(self, all) ... end  →   elseif k == "pump" then return function(self, all) ... end
 *                                                            elseif k == "constructor" then return Client end end
 *                                                            setmetatable(Client.prototype, Client.prototype)
 *
 * On NodeMCU, with the code in LFS, each method costs heap as long as its class is loaded: a
 * closure (16 bytes and 4 per upvalue) and a slot of the prototype's hash part (20 bytes, in a
 * power of two). The merged class holds one closure and a prototype of two fields; a method call
 * pays for it in time: the `__index` call, the name compares before its own, and a closure that
 * is garbage after the call.
 *
 * What an instance holds itself (fields, functions set in the constructor) is found as before:
 * `__index` is asked only for what the instance lacks. `constructor` is answered as
 * `__TS__Class` sets it, and the prototype is its own metatable, so `Client.prototype.start` still
 * reads the method (a new closure each time: never compare methods by identity). A class is left
 * as it is when its methods are not one run of top-level definitions (a static function between
 * them is moved above the first method, keeping the line count; anything else leaves the class
 * alone), or when the file has a long string or comment. Line numbers of the methods' bodies stay. Runs on the indented TSTL output (top level = no
 * indentation), like tools/lua-consts.mjs.
 */

const CLASS = /^(?:local ([A-Za-z_][A-Za-z0-9_]*) = __TS__Class\(\)|____exports\.([A-Za-z_][A-Za-z0-9_]*) = __TS__Class\(\))$/;
const methodHead = (cls) => new RegExp(`^(?:function ${cls}\\.prototype\\.([A-Za-z_][A-Za-z0-9_]*)\\((.*)$|${cls}\\.prototype\\["([A-Za-z_][A-Za-z0-9_]*)"\\] = function\\((.*)$)`);
const staticHead = (cls) => new RegExp(`^function ${cls}\\.[A-Za-z_][A-Za-z0-9_]*\\(`);

/** The line after the top-level `end` that closes the definition starting at `from`, or -1. */
function blockEnd(lines, from) {
  for (let i = from + 1; i < lines.length; i++) {
    if (lines[i] === "end") return i + 1;
    if (lines[i] !== "" && !/^\s/.test(lines[i]) && !lines[i].startsWith("--")) return -1;
  }
  return -1;
}

/**
 * `src` with its classes' methods made lazy, except those of the classes named in `keep`. Returns { code, classes: [{ name, methods }],
 * skipped: [{ name, why }] }.
 */
export function lazyLuaMethods(src, keep = []) {
  const none = { code: src, classes: [], skipped: [] };
  if (/\[=*\[/.test(src)) return none;
  let lines = src.split("\n");
  const names = [];
  for (let i = 0; i < lines.length; i++) {
    const m = CLASS.exec(lines[i]);
    if (m === null) continue;
    if (m[1] !== undefined) names.push(m[1]);
    else if (lines[i + 1] === `local ${m[2]} = ____exports.${m[2]}`) names.push(m[2]);
  }
  const classes = [];
  const skipped = [];
  for (const cls of names) {
    if (keep.includes(cls)) continue;
    const head = methodHead(cls);
    const stat = staticHead(cls);
    // the run of definitions: methods, and statics, blank lines and comments between them
    const blocks = [];
    let why;
    let i = lines.findIndex((l) => head.test(l));
    if (i < 0) continue;
    const first = i;
    let last = i;
    while (i < lines.length) {
      const l = lines[i];
      if (head.test(l) || stat.test(l)) {
        const end = blockEnd(lines, i);
        if (end < 0) {
          why = `the definition at line ${i + 1} has no top-level end`;
          break;
        }
        blocks.push({ from: i, to: end, method: head.test(l) });
        i = end;
        last = end;
      } else if (l === "" || l.startsWith("--")) {
        i++;
      } else break;
    }
    if (why === undefined && lines.slice(last).some((l) => head.test(l))) why = "its methods are not one run of definitions";
    if (why !== undefined) {
      skipped.push({ name: cls, why });
      continue;
    }
    const methods = blocks.filter((b) => b.method);
    // statics first, then the methods (the same lines in all)
    const moved = [...blocks.filter((b) => !b.method), ...methods];
    const gaps = [];
    for (let b = 0; b < blocks.length; b++) gaps.push(lines.slice(blocks[b].to, b + 1 < blocks.length ? blocks[b + 1].from : last));
    const body = [];
    let at = 0;
    for (const b of moved) {
      const chunk = lines.slice(b.from, b.to);
      if (b.method) {
        const m = head.exec(chunk[0]);
        const name = m[1] ?? m[3];
        const params = m[2] ?? m[4];
        chunk[0] = `${at === 0 ? `${cls}.prototype.__index = function(_, k) if` : "elseif"} k == "${name}" then return function(${params}`;
        at++;
        if (at === methods.length) chunk[chunk.length - 1] = `end elseif k == "constructor" then return ${cls} end end setmetatable(${cls}.prototype, ${cls}.prototype)`;
      }
      body.push(...chunk, ...gaps.shift());
    }
    lines = [...lines.slice(0, first), ...body, ...lines.slice(last)];
    classes.push({ name: cls, methods: methods.length });
  }
  return { code: lines.join("\n"), classes, skipped };
}

/**
 * Makes the methods of every built module under `dir` lazy (in place), except those of the
 * classes named in `keep`. Returns { classes, methods, skipped }.
 */
export function lazyLuaDir(fs, dir, keep = []) {
  const total = { classes: 0, methods: 0, skipped: [] };
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const f = `${d}/${e.name}`;
      if (e.isDirectory()) walk(f);
      else if (e.name.endsWith(".lua")) {
        const src = fs.readFileSync(f, "latin1");
        const r = lazyLuaMethods(src, keep);
        if (r.classes.length > 0) fs.writeFileSync(f, r.code, "latin1");
        total.classes += r.classes.length;
        total.methods += r.classes.reduce((n, c) => n + c.methods, 0);
        total.skipped.push(...r.skipped.map((s) => `${f}: ${s.name}: ${s.why}`));
      }
    }
  };
  walk(dir);
  return total;
}
