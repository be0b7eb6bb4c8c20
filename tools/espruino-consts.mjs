// Inlines a packed Espruino bundle's top-level constants: `var $pX=43` (a number, a boolean or a
// short string, declared once at the top level as the packer leaves a module's `const`) is
// replaced by its value where it is read, and the declaration goes. At Espruino's global scope
// every such name is a variable of its own for as long as the board runs (one slot, two for a
// string); a literal in the code stays in flash with the code (a string one is made when that
// code runs, and let go after).
//
// Conservative: a name is left as it is when anything but a plain read of it appears (an
// assignment, an update, a second declaration, a nested declaration or parameter of that name),
// or when the top level reads it before its declaration (a function's body may: it runs later).
import * as acorn from "acorn";

/** Longest string constant inlined: a longer one made at every read would cost more than it saves. */
const MAX_STRING = 16;

/** The literal text of a constant initialiser, or undefined when it is not one. */
function literalOf(code, init) {
  if (init === null || init === undefined) return undefined;
  if (init.type === "Literal") {
    if (typeof init.value === "number" || typeof init.value === "boolean") return code.slice(init.start, init.end);
    if (typeof init.value === "string" && init.value.length <= MAX_STRING) return code.slice(init.start, init.end);
    return undefined;
  }
  if (init.type === "UnaryExpression" && (init.operator === "-" || init.operator === "!") && init.argument.type === "Literal" &&
    typeof init.argument.value === "number") {
    return code.slice(init.start, init.end);
  }
  return undefined;
}

/**
 * Returns `{ code, inlined }`: the code with the constants `names` may take (`(name) => boolean`,
 * e.g. the packer's prefix) inlined, and the names it inlined.
 */
export function inlineEspruinoConstants(code, mayInline = (name) => name.startsWith("$p")) {
  const ast = acorn.parse(code, { ecmaVersion: 2020, sourceType: "script" });
  const candidates = new Map(); // name -> { text, declarator } (null: declared twice)
  for (const s of ast.body) {
    if (s.type !== "VariableDeclaration") continue;
    for (const d of s.declarations) {
      if (d.id.type !== "Identifier" || !mayInline(d.id.name)) continue;
      const text = literalOf(code, d.init);
      if (text === undefined) continue;
      candidates.set(d.id.name, candidates.has(d.id.name) ? null : { text, declarator: d });
    }
  }
  const refused = new Set();
  const reads = [];
  // every identifier: a read to replace, or a use that keeps the name
  const visit = (n, parent, key, inFunction) => {
    if (n.type === "Property" && n.shorthand && n.value.type === "Identifier" && candidates.has(n.value.name)) {
      // `{$pX}`: one read, written out as `{$pX:(43)}`
      reads.push({ node: n.value, shorthand: true });
      return;
    }
    if (n.type === "Identifier" && candidates.has(n.name)) {
      const c = candidates.get(n.name);
      if (parent.type === "MemberExpression" && key === "property" && !parent.computed) return;
      if ((parent.type === "Property" || parent.type === "MethodDefinition" || parent.type === "PropertyDefinition") && key === "key" && !parent.computed) return;
      if (parent.type === "VariableDeclarator" && key === "id") {
        if (c === null || parent !== c.declarator) refused.add(n.name);
        return;
      }
      if ((parent.type === "AssignmentExpression" && key === "left") || parent.type === "UpdateExpression" ||
        ((parent.type === "FunctionDeclaration" || parent.type === "FunctionExpression" || parent.type === "ArrowFunctionExpression") && key !== "body") ||
        parent.type === "CatchClause" || parent.type === "ClassDeclaration" || parent.type === "ClassExpression" ||
        parent.type === "LabeledStatement" || parent.type === "BreakStatement" || parent.type === "ContinueStatement" ||
        ((parent.type === "ForInStatement" || parent.type === "ForOfStatement") && key === "left")) {
        refused.add(n.name);
        return;
      }
      if (c !== null && !inFunction && n.start < c.declarator.end) {
        refused.add(n.name);
        return;
      }
      reads.push({ node: n, shorthand: false });
      return;
    }
    const fn = inFunction || n.type === "FunctionDeclaration" || n.type === "FunctionExpression" || n.type === "ArrowFunctionExpression";
    for (const k of Object.keys(n)) {
      if (k === "type" || k === "start" || k === "end" || k === "loc") continue;
      const v = n[k];
      if (Array.isArray(v)) { for (const x of v) if (x && typeof x.type === "string") visit(x, n, k, fn); }
      else if (v && typeof v.type === "string") visit(v, n, k, fn);
    }
  };
  visit(ast, { type: "Program" }, "", false);
  const inlined = [...candidates.keys()].filter((name) => candidates.get(name) !== null && !refused.has(name));
  const keep = new Set(inlined);
  const edits = [];
  for (const r of reads) {
    if (!keep.has(r.node.name)) continue;
    const text = `(${candidates.get(r.node.name).text})`;
    edits.push([r.node.start, r.node.end, r.shorthand ? `${r.node.name}:${text}` : text]);
  }
  // the declarators go: a statement left with none goes whole; else each with its comma
  for (const st of ast.body) {
    if (st.type !== "VariableDeclaration") continue;
    const ds = st.declarations;
    const gone = ds.map((d) => d.id.type === "Identifier" && keep.has(d.id.name) && candidates.get(d.id.name).declarator === d);
    if (!gone.includes(true)) continue;
    let last = -1;
    for (let i = 0; i < ds.length; i++) if (!gone[i]) last = i;
    if (last < 0) {
      edits.push([st.start, st.end, ""]);
      continue;
    }
    for (let i = 0; i < last; i++) if (gone[i]) edits.push([ds[i].start, ds[i + 1].start, ""]);
    if (last < ds.length - 1) edits.push([ds[last].end, ds[ds.length - 1].end, ""]);
  }
  edits.sort((a, b) => b[0] - a[0]);
  let out = code;
  for (const [s, e, t] of edits) out = out.slice(0, s) + t + out.slice(e);
  return { code: out, inlined };
}
