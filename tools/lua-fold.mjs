// Folds away, in a board's Lua, the branches of features its profile leaves out. Lua compiles
// `if false and x then ... end` into bytecode all the same (it folds constants, not dead blocks),
// so without this every NodeMCU board would carry the code of every feature in its LFS image.
// esbuild does the same for the Espruino bundles by itself.
//
// A branch goes when its condition is `F` or starts `F and`, F being `false` or the name of a
// feature constant that is off for the board (its local in each module is the features
// module's value, which the board's build writes): such a condition is false and has no other
// effect. The `if` clause becomes the next `elseif` (now `if`), or a `do` block of the `else`,
// or nothing; an `elseif` clause is taken out. The Lua compiler (luac.cross) then checks the
// result as it builds the image.

const KEYWORDS = new Set(["if", "then", "elseif", "else", "end", "function", "do", "repeat", "until", "and", "or", "not"]);
const OPENERS = new Set(["if", "function", "do", "repeat"]);
const NUMBER = /^(0[xX][0-9a-fA-F.]+([pP][+-]?\d+)?|\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?)/;

/** Lua tokens that matter here: keywords and names (with their offsets); strings and comments skipped. */
export function luaTokens(src) {
  const out = [];
  let i = 0;
  const n = src.length;
  const longEnd = (at) => {
    // a long bracket [==[ at `at`: the offset after its closing ]==], or -1 when it is not one
    const m = /^\[(=*)\[/.exec(src.slice(at, at + 64));
    if (m === null) return -1;
    const close = src.indexOf(`]${m[1]}]`, at + m[0].length);
    if (close < 0) throw new Error(`lua-fold: an unclosed long bracket at offset ${at}`);
    return close + m[1].length + 2;
  };
  while (i < n) {
    const c = src[i];
    if (c === " " || c === "\t" || c === "\n" || c === "\r") {
      i++;
    } else if (c === "-" && src[i + 1] === "-") {
      const e = src[i + 2] === "[" ? longEnd(i + 2) : -1;
      if (e >= 0) i = e;
      else {
        const nl = src.indexOf("\n", i);
        i = nl < 0 ? n : nl;
      }
    } else if (c === "\"" || c === "'") {
      let j = i + 1;
      while (j < n && src[j] !== c) j += src[j] === "\\" ? 2 : 1;
      if (j >= n) throw new Error(`lua-fold: an unclosed string at offset ${i}`);
      i = j + 1;
    } else if (c === "[" && (src[i + 1] === "[" || src[i + 1] === "=")) {
      const e = longEnd(i);
      i = e >= 0 ? e : i + 1;
    } else if (/[A-Za-z_]/.test(c)) {
      let j = i + 1;
      while (j < n && /[A-Za-z0-9_]/.test(src[j])) j++;
      const word = src.slice(i, j);
      // a field (t.end cannot be, but t.name can be a feature's name): not the local
      const field = i > 0 && (src[i - 1] === "." || src[i - 1] === ":") && src[i - 2] !== ".";
      out.push({ v: word, kw: KEYWORDS.has(word), field, start: i, end: j });
      i = j;
    } else if ("(){}[]".includes(c)) {
      out.push({ v: c, kw: false, field: false, start: i, end: i + 1 });
      i++;
    } else {
      const m = /[0-9.]/.test(c) ? NUMBER.exec(src.slice(i, i + 64)) : null;
      i += m !== null && m[0].length > 0 ? m[0].length : 1;
    }
  }
  return out;
}

/**
 * The clauses of the `if` at token `k`: the tokens of its `then`, each `elseif`/`else`, and its
 * `end` (their indices), or null when the block does not close.
 */
function clauses(tokens, k) {
  const at = [];
  let depth = 0;
  for (let j = k; j < tokens.length; j++) {
    const t = tokens[j];
    if (!t.kw) continue;
    if (OPENERS.has(t.v)) depth++;
    else if (t.v === "end" || t.v === "until") {
      depth--;
      if (depth === 0) {
        at.push(j);
        return at;
      }
    } else if (depth === 1 && (t.v === "then" || t.v === "elseif" || t.v === "else")) at.push(j);
  }
  return null;
}

/**
 * Whether the condition starting at token `k` is false: `F` or `F and ...` with F off, and no
 * `or` outside brackets before its `then` (`F and x or y` is y).
 */
function falseAt(tokens, k, off) {
  const t = tokens[k];
  if (t === undefined || t.field || !(t.v === "false" || off.has(t.v))) return false;
  const next = tokens[k + 1];
  if (next === undefined || !(next.v === "then" || next.v === "and")) return false;
  let depth = 0;
  for (let j = k + 1; j < tokens.length; j++) {
    const v = tokens[j].v;
    if (v === "(" || v === "{" || v === "[" || v === "function") depth++;
    else if (v === ")" || v === "}" || v === "]" || (v === "end" && depth > 0)) depth--;
    else if (depth === 0 && v === "or") return false;
    else if (depth === 0 && v === "then") return true;
  }
  return false;
}

/** One fold in `src`, or null when there is none left. */
function foldOnce(src, off) {
  const tokens = luaTokens(src);
  for (let k = 0; k < tokens.length; k++) {
    const t = tokens[k];
    if (!(t.v === "if" || t.v === "elseif") || !falseAt(tokens, k + 1, off)) continue;
    // the clause list of the whole if statement
    let head = k;
    if (t.v === "elseif") {
      // find the `if` this elseif belongs to: the nearest if whose clauses include k
      for (let h = k - 1; h >= 0; h--) {
        if (tokens[h].v !== "if") continue;
        const c = clauses(tokens, h);
        if (c !== null && c.includes(k)) {
          head = h;
          break;
        }
      }
      if (head === k) throw new Error(`lua-fold: an elseif at offset ${t.start} without its if`);
    }
    const c = clauses(tokens, head);
    if (c === null) throw new Error(`lua-fold: the if at offset ${tokens[head].start} does not close`);
    // the boundary after this clause's body: the first elseif/else/end after its `then`
    const thenAt = c.find((j) => j > k && tokens[j].v === "then");
    const next = c.find((j) => j > thenAt && tokens[j].v !== "then");
    const nt = tokens[next];
    if (t.v === "elseif") {
      // the clause goes: from this elseif to the next boundary
      return src.slice(0, t.start) + src.slice(nt.start);
    }
    if (nt.v === "elseif") return src.slice(0, t.start) + "if" + src.slice(nt.end);
    if (nt.v === "else") return src.slice(0, t.start) + "do" + src.slice(nt.end);
    return src.slice(0, t.start) + src.slice(nt.end);
  }
  return null;
}

/**
 * `src` with the branches of the features in `offNames` (FEATURE_* names, off for the board)
 * folded away; `folds` counts them.
 */
export function foldLuaFeatures(src, offNames) {
  const off = new Set(offNames);
  let out = src;
  let folds = 0;
  for (;;) {
    const next = foldOnce(out, off);
    if (next === null) return { code: out, folds };
    out = next;
    folds++;
    if (folds > 10000) throw new Error("lua-fold: no end to the folds");
  }
}

/** A Lua string literal (quoted, one line) or a whole number, at the start of the text. */
const LITERAL = /^("(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|\d+)/;

/**
 * `src` with the constant conditions the features' literals leave behind made plain, so that no
 * test of a constant is compiled: `if true and x then` / `elseif true and x then` become `if x
 * then`, and `true and A or B` / `false and A or B` with A and B literals (strings, whole
 * numbers: never false or nil) become A / B. `not true` becomes `false`, which the feature fold
 * then takes out. Only code is touched (tokens outside strings and comments); `folds` counts them.
 */
export function foldLuaConstants(src) {
  const tokens = luaTokens(src);
  const edits = [];
  for (let k = 0; k + 1 < tokens.length; k++) {
    const t = tokens[k];
    if (t.field || t.kw || (t.v !== "true" && t.v !== "false")) continue;
    const prev = tokens[k - 1];
    const next = tokens[k + 1];
    if (t.v === "true" && prev !== undefined && prev.v === "not" && !prev.field && prev.end <= t.start) {
      edits.push({ from: prev.start, to: t.end, text: "false" });
      continue;
    }
    if (next.v !== "and" || next.field) continue;
    if (t.v === "true" && prev !== undefined && (prev.v === "if" || prev.v === "elseif") && !prev.field) {
      const ws = /^\s*/.exec(src.slice(next.end))[0].length;
      edits.push({ from: t.start, to: next.end + ws, text: "" });
      continue;
    }
    // true and A or B, false and A or B: A and B literals, nothing after B but a closer or an operator-free end
    const rest = src.slice(next.end);
    const a = LITERAL.exec(rest.replace(/^\s+/, ""));
    if (a === null) continue;
    const lead = rest.length - rest.replace(/^\s+/, "").length;
    const afterA = rest.slice(lead + a[0].length);
    const orm = /^\s+or\s+/.exec(afterA);
    if (orm === null) continue;
    const b = LITERAL.exec(afterA.slice(orm[0].length));
    if (b === null) continue;
    const end = next.end + lead + a[0].length + orm[0].length + b[0].length;
    // only a whole expression: what comes before must open it (a bracket, a comma, an
    // assignment, return) and what follows must close it (a bracket, a comma, the line's end)
    const pre = src.slice(0, t.start).replace(/\s+$/, "");
    if (!/([({[,]|(^|[^=<>~])=|\breturn)$/.test(pre)) continue;
    if (!/^(\s*[),}\]]|[ \t]*\n|\s*$|\s+end\b)/.test(src.slice(end, end + 8))) continue;
    edits.push({ from: t.start, to: end, text: t.v === "true" ? a[0] : b[0] });
  }
  let out = src;
  for (let i = edits.length - 1; i >= 0; i--) out = out.slice(0, edits[i].from) + edits[i].text + out.slice(edits[i].to);
  return { code: out, folds: edits.length };
}

/**
 * TSTL writes a `switch` as `repeat local ____switchN = x; local ____condN = ____switchN == A;
 * if ____condN then ... end; ____condN = ____condN or ____switchN == B; if ____condN then ...
 * end ... until true`: the `____condN or` carries a fall-through from the case before. When that
 * case cannot fall through (its block ends in `return` or `break`), the test is just `____switchN
 * == B`, and the pair of lines becomes `if ____switchN == B then`: about six instructions fewer
 * per case (24 bytes of LFS image), with no local `____condN`. A switch is rewritten only when
 * every line that names its `____condN` has one of those two shapes, each followed by `if
 * ____condN then`, and every case after the first follows a block that ends in `return`/`break`;
 * any other use leaves the whole switch as it was. Returns { code, folds } (folds: cases).
 */
export function foldLuaSwitches(src) {
  const lines = src.split("\n");
  let folds = 0;
  const switches = new Set();
  for (const l of lines) {
    const m = /^local (____switch\d+) = /.exec(l);
    if (m !== null) switches.add(m[1]);
  }
  for (const sw of switches) {
    const cond = sw.replace("____switch", "____cond");
    const first = new RegExp(`^local ${cond} = (${sw} == .+)$`);
    const next = new RegExp(`^${cond} = ${cond} or (${sw} == .+)$`);
    const uses = [];
    let ok = true;
    for (let i = 0; i < lines.length && ok; i++) {
      if (!new RegExp(`\\b${cond}\\b`).test(lines[i])) continue;
      const m1 = first.exec(lines[i]);
      const m2 = m1 === null ? next.exec(lines[i]) : null;
      if (m1 === null && m2 === null) {
        // `if ____condN then` right after a shape above is its own; anything else stops the fold
        if (lines[i] === `if ${cond} then` && uses.length > 0 && uses[uses.length - 1].at === i - 1) continue;
        ok = false;
        break;
      }
      if (lines[i + 1] !== `if ${cond} then`) ok = false;
      // the case before must not fall through: its block's last line returns or breaks
      if (m2 !== null && !(lines[i - 1] === "end" && /^(return\b|break$)/.test(lines[i - 2] ?? ""))) ok = false;
      uses.push({ at: i, test: (m1 ?? m2)[1] });
    }
    if (!ok || uses.length === 0) continue;
    for (const u of uses) {
      lines[u.at] = `if ${u.test} then`;
      lines[u.at + 1] = "";
      folds++;
    }
  }
  return { code: lines.join("\n"), folds };
}
