// Renames every top-level declaration of a minified script to a name under one prefix ($p0,
// $p1, ..., $pz, $p10, ...), so the script can run at Espruino's global scope without taking
// names a user's own code or the REPL may use. Why global scope at all: there a function costs
// one variable slot less than inside a function (no link to an enclosing scope), and the sensor
// node has a hundred functions (docs/benchmarks.md).
//
// Scope-aware: a nested declaration of the same name (esbuild's minifier reuses short names in
// inner scopes) is left alone, and so is every reference that resolves to it. Handles what the
// Espruino dialect has (tools/guard): var/let/const/function/class declarations, parameters
// (plain identifiers: no destructuring or defaults), catch parameters, arrows, shorthand
// properties. Anything it does not understand is an error, not a silent skip.
import * as acorn from "acorn";

const PREFIX = "$p";

/** The n-th name under the prefix: $p0 … $pz, $p10 … (up to 4 characters: one Espruino slot). */
function nameOf(n) {
  return PREFIX + n.toString(36);
}

function isFunction(n) {
  return n.type === "FunctionDeclaration" || n.type === "FunctionExpression" || n.type === "ArrowFunctionExpression";
}

/** Children of a node that are nodes, in source order. */
function children(n) {
  const out = [];
  for (const k of Object.keys(n)) {
    if (k === "type" || k === "start" || k === "end" || k === "loc") continue;
    const v = n[k];
    if (Array.isArray(v)) for (const x of v) { if (x && typeof x.type === "string") out.push(x); }
    else if (v && typeof v.type === "string") out.push(v);
  }
  return out;
}

function declareParams(fn, names, what) {
  for (const p of fn.params) {
    if (p.type !== "Identifier") throw new Error(`${what}: a parameter that is not a plain name (${p.type}) at ${p.start}`);
    names.add(p.name);
  }
}

/**
 * Returns the code with its top-level names renamed, and the map old → new.
 * `allowReturn`: the code is a function body (parsed with `return` allowed).
 */
export function renameTopLevel(code, what, allowReturn = false) {
  const ast = acorn.parse(code, { ecmaVersion: 2020, sourceType: "script", allowReturnOutsideFunction: allowReturn });
  // scope of every node that opens one: a Set of the names declared in it
  const scopes = new Map();
  const scopeOf = (node) => {
    let s = scopes.get(node);
    if (s === undefined) {
      s = new Set();
      scopes.set(node, s);
    }
    return s;
  };
  // pass 1: declarations. `fnScope`: where var and function declarations go; `blockScope`: let/const/class
  const declare = (node, fnScope, blockScope) => {
    switch (node.type) {
      case "VariableDeclaration":
        for (const d of node.declarations) {
          if (d.id.type !== "Identifier") throw new Error(`${what}: a destructuring declaration at ${d.start}`);
          (node.kind === "var" ? fnScope : blockScope).add(d.id.name);
        }
        break;
      case "FunctionDeclaration":
        blockScope.add(node.id.name);
        break;
      case "ClassDeclaration":
        blockScope.add(node.id.name);
        break;
      default:
        break;
    }
    if (isFunction(node)) {
      const inner = scopeOf(node);
      if (node.type === "FunctionExpression" && node.id) inner.add(node.id.name);
      declareParams(node, inner, what);
      const body = node.body;
      if (body.type === "BlockStatement") {
        scopes.set(body, inner); // the body block shares the function's scope
        for (const c of body.body) declare(c, inner, inner);
      } else {
        declare(body, inner, inner);
      }
      return;
    }
    if (node.type === "ClassExpression" && node.id) scopeOf(node).add(node.id.name);
    if (node.type === "CatchClause") {
      const s = scopeOf(node);
      if (node.param) {
        if (node.param.type !== "Identifier") throw new Error(`${what}: a catch pattern at ${node.start}`);
        s.add(node.param.name);
      }
      declare(node.body, fnScope, scopeOf(node.body));
      return;
    }
    if (node.type === "BlockStatement" || node.type === "ForStatement" || node.type === "ForInStatement" ||
      node.type === "ForOfStatement" || node.type === "SwitchStatement") {
      const s = scopeOf(node);
      for (const c of children(node)) declare(c, fnScope, s);
      return;
    }
    for (const c of children(node)) declare(c, fnScope, blockScope);
  };
  const top = scopeOf(ast);
  for (const c of ast.body) declare(c, top, top);

  const map = new Map();
  let n = 0;
  for (const name of top) map.set(name, nameOf(n++));

  // pass 2: references, resolved innermost scope first
  const edits = [];
  const resolvesTop = (name, chain) => {
    for (let i = chain.length - 1; i >= 0; i--) if (chain[i].has(name)) return i === 0;
    return false;
  };
  const rename = (id, chain) => {
    if (map.has(id.name) && resolvesTop(id.name, chain)) edits.push([id.start, id.end, map.get(id.name)]);
  };
  const visit = (node, parent, key, chain) => {
    const s = scopes.get(node);
    const here = s !== undefined && s !== chain[chain.length - 1] ? [...chain, s] : chain;
    if (node.type === "Identifier") {
      // not a reference: a member's property, an object key, a method name, a label
      if (parent && parent.type === "MemberExpression" && key === "property" && !parent.computed) return;
      if (parent && (parent.type === "Property" || parent.type === "MethodDefinition" || parent.type === "PropertyDefinition") &&
        key === "key" && !parent.computed) {
        if (parent.type === "Property" && parent.shorthand && map.has(node.name) && resolvesTop(node.name, here)) {
          // {a} → {a:$p3}: the key stays, the value is renamed
          edits.push([parent.value.start, parent.value.end, `${node.name}:${map.get(node.name)}`]);
        }
        return;
      }
      if (parent && parent.type === "Property" && parent.shorthand && key === "value") return; // done with its key
      if (parent && (parent.type === "LabeledStatement" || parent.type === "BreakStatement" || parent.type === "ContinueStatement")) return;
      rename(node, here);
      return;
    }
    for (const k of Object.keys(node)) {
      if (k === "type" || k === "start" || k === "end" || k === "loc") continue;
      const v = node[k];
      if (Array.isArray(v)) for (const x of v) { if (x && typeof x.type === "string") visit(x, node, k, here); }
      else if (v && typeof v.type === "string") visit(v, node, k, here);
    }
  };
  visit(ast, null, null, [top]);
  edits.sort((a, b) => b[0] - a[0]);
  let out = code;
  for (const [start, end, text] of edits) out = out.slice(0, start) + text + out.slice(end);
  return { code: out, map };
}
