// Rewrites the sensor node's Espruino bundles so each class has one function for most of its
// methods instead of one function per method. On the board every function costs about four
// variable slots for as long as it exists (its object, its name, and its code in flash behind a
// name of its own), whatever the size of its code, and a class's methods exist for good; the
// client alone has some twenty. So:
//
//   class C { m(a, b) { …m… } n(x) { …n… } }       …   c.m(1, 2); c.n(3)
//
// becomes
//
//   class C { $m() { switch (arguments[0]) { case 0: { var a = arguments[1], b = arguments[2]; …m… } return;
//                                            case 1: { var x = arguments[1]; …n… } return; } } }
//   …   c.$m(0, 1, 2); c.$m(1, 3)
//
// Each method keeps its body, `this` and its return value; only one case runs per call, so the
// locals of the others (one function scope now) never meet. Every class's merged function has
// the same name, and a method's number is the same in every class and every bundle, so a call
// site needs no idea which class it reaches (the methods a class does not have are not called on
// it: the program was right before).
//
// Espruino runs code from its text: a call skips the cases before its own by reading over them.
// So the methods run most (HOT, in that order) come first in every switch.
//
// A method is merged only when that is safe everywhere it appears: its name is one the build
// shortened (the firmware's own, never the REPL's or a library's: tools/mangle-props.mjs), and in
// every bundle of the node the name appears only as a method of a class (not static, not a getter
// or setter) or as the callee of a call (`x.m(…)`): never read as a value, assigned, used as an
// object literal's key or as a string. Methods whose code names `super` or `new.target`, with
// `arguments` anywhere inside (a closure's too), that declare a function at their top level, or
// have parameters that are not plain names keep their own function, as do constructors.
//
// A merged top-level function that makes closures sets `arguments` to 0 once its parameters are
// read: the closures keep the call's scope, and the array there would live as long as they do
// (about 4 slots a scope; in a class body, strict code, the array is emptied instead).
import * as acorn from "acorn";
import { children, makesFunctions } from "./espruino-slim.mjs";

/** The merged function's property name (checked unused in every bundle). */
export const MERGED = "$m";

/**
 * Whether the function's own code (arrows inside it included) names `super` or `new.target`, or
 * any code inside it names `arguments`: Espruino finds `arguments` through the scopes, so once
 * the merged function reads its own, a closure made in it would read that one instead of its own.
 */
function usesOwnContext(fn) {
  let found = false;
  (function walk(n, inner) {
    if (found) return;
    if ((n.type === "Identifier" && n.name === "arguments") || (!inner && (n.type === "Super" || n.type === "MetaProperty"))) {
      found = true;
      return;
    }
    const other = inner || n.type === "FunctionDeclaration" || n.type === "FunctionExpression";
    for (const c of children(n)) walk(c, other);
  })(fn.body, false);
  return found;
}

/**
 * A case's first statement: the function's parameters as locals, read from `arguments` after the
 * case's number. When the function makes functions, `arguments` is then set to 0: each closure
 * keeps the call's scope for as long as it lives, and there the arguments array (two slots and
 * one for each argument) would stay with it. The closures made there keep their own parameters
 * (tools/espruino-slim.mjs), so nothing reads `arguments` after that. In a class body (strict
 * code, where the assignment is not allowed) the array is emptied instead (`splice`: about 2
 * slots of the 3.4; `arguments.length=0` fails an assertion in Espruino 2v29, and V8 has no
 * `arguments.splice`).
 */
function caseHead(fn, sloppy) {
  const params = fn.params.map((p, i) => `${p.name}=arguments[${i + 1}]`);
  return (params.length > 0 ? `var ${params.join(",")};` : "") + (!makesFunctions(fn) ? "" : sloppy ? "arguments=0;" : "[].splice.call(arguments,0);");
}

/**
 * The function's body as a case's: its own `let` and `const` declarations (those at the top of
 * the body, not in a block inside) become `var`. In the case's block they would make Espruino
 * build a block scope at every call, and a closure made there keeps it: about 4 slots a scope
 * (measured on 2v29). At the top of a function body they were scoped to the call already; the
 * other cases' locals never meet them, as only one case runs per call.
 */
function caseBody(code, fn) {
  const from = fn.body.start + 1;
  let out = "";
  let at = from;
  for (const st of fn.body.body) {
    if (st.type !== "VariableDeclaration" || st.kind === "var") continue;
    out += code.slice(at, st.start) + "var";
    at = st.start + st.kind.length;
  }
  return out + code.slice(at, fn.body.end - 1);
}

function parse(code, returnOutside) {
  return acorn.parse(code, { ecmaVersion: 2020, sourceType: "script", allowReturnOutsideFunction: returnOutside });
}

/**
 * `bundles`: [{ code, returnOutside }] of one build (they share one mangle cache). `names`: the
 * names the build shortened. `hot`: shortened names of the methods run most, hottest first.
 * Returns { codes, merged, classes, methods }: the rewritten codes, the names merged, and how many
 * classes and methods were rewritten.
 */
export function mergeMethods(bundles, names, hot = []) {
  const asts = bundles.map((b) => parse(b.code, b.returnOutside === true));
  const defs = new Map(); // name -> [{ bundle, cls, method }]
  const bad = new Set();
  let mergedTaken = false;
  asts.forEach((ast, bi) => {
    (function walk(n, parent) {
      if (n.type === "MethodDefinition") {
        const key = !n.computed && n.key.type === "Identifier" ? n.key.name : undefined;
        if (key === MERGED) mergedTaken = true;
        if (key !== undefined) {
          const fn = n.value;
          const plain = fn.params.every((p) => p.type === "Identifier");
          const topFn = fn.body.body.some((s) => s.type === "FunctionDeclaration");
          if (n.kind === "method" && !n.static && plain && !topFn && !fn.generator && !fn.async && !usesOwnContext(fn)) {
            if (!defs.has(key)) defs.set(key, []);
            defs.get(key).push({ bundle: bi, cls: parent, method: n });
          } else if (n.kind !== "constructor") bad.add(key);
        }
        // the key is not a use; the body is walked below
        walk(n.value, n);
        return;
      }
      if (n.type === "MemberExpression" && !n.computed && n.property.type === "Identifier") {
        const name = n.property.name;
        if (name === MERGED) mergedTaken = true;
        if (!(parent !== undefined && parent.type === "CallExpression" && parent.callee === n)) bad.add(name);
      } else if (n.type === "Property" || n.type === "PropertyDefinition") {
        if (!n.computed && n.key.type === "Identifier") bad.add(n.key.name);
      } else if (n.type === "Literal" && typeof n.value === "string") {
        bad.add(n.value);
      }
      for (const c of children(n)) {
        if (n.type === "Property" && c === n.key && !n.computed) continue;
        walk(c, n);
      }
    })(ast, undefined);
  });
  if (mergedTaken) throw new Error(`espruino-merge: the name ${MERGED} is already used in the bundles`);

  const candidates = [...defs.keys()].filter((k) => names.has(k) && !bad.has(k));
  // numbers: hot names first (in their order), then the rest by name (stable builds)
  const order = [...hot.filter((h) => candidates.includes(h)), ...candidates.filter((c) => !hot.includes(c)).sort()];
  const number = new Map(order.map((n, i) => [n, i]));

  let classes = 0;
  const codes = bundles.map((b, bi) => {
    const code = b.code;
    const edits = []; // [start, end, text]
    // class bodies: the merged methods out, one function with a case per method in
    const byClass = new Map();
    for (const [name, list] of defs) {
      if (!number.has(name)) continue;
      for (const d of list) {
        if (d.bundle !== bi) continue;
        if (!byClass.has(d.cls)) byClass.set(d.cls, []);
        byClass.get(d.cls).push({ name, method: d.method });
      }
    }
    for (const [cls, list] of byClass) {
      classes++;
      list.sort((x, y) => number.get(x.name) - number.get(y.name));
      const cases = list.map(({ name, method }) => {
        const fn = method.value;
        const body = caseBody(code, fn);
        return `case ${number.get(name)}:{${caseHead(fn, false)}${body}}return;`;
      });
      for (const { method } of list) edits.push([method.start, method.end, ""]);
      // the class body's closing brace: the merged function goes just before it
      edits.push([cls.end - 1, cls.end - 1, `${MERGED}(){switch(arguments[0]){${cases.join("")}}}`]);
    }
    edits.sort((x, y) => y[0] - x[0] || y[1] - x[1]);
    let out = code;
    for (const [st, e, t] of edits) out = out.slice(0, st) + t + out.slice(e);
    return out;
  });
  // then every call site, in the merged functions' bodies as everywhere else
  return { codes: codes.map((c, i) => rewriteCalls(c, bundles[i].returnOutside === true, number)), merged: order, classes, methods: order.length };
}

/** Every call of a merged method: x.m(a) -> x.$m(K,a). */
function rewriteCalls(code, returnOutside, number) {
  const ast = parse(code, returnOutside);
  const edits = [];
  (function walk(n) {
    if (n.type === "CallExpression" && n.callee.type === "MemberExpression" && !n.callee.computed &&
      n.callee.property.type === "Identifier" && number.has(n.callee.property.name)) {
      const p = n.callee.property;
      edits.push([p.start, p.end, MERGED]);
      const open = code.indexOf("(", n.callee.end);
      edits.push([open + 1, open + 1, n.arguments.length > 0 ? `${number.get(p.name)},` : `${number.get(p.name)}`]);
    }
    for (const c of children(n)) walk(c);
  })(ast);
  // back to front; at one position the renamed callee first, then the number in front of it (a.m(b.m()))
  edits.sort((x, y) => y[0] - x[0] || y[1] - x[1]);
  let out = code;
  for (const [s, e, t] of edits) out = out.slice(0, s) + t + out.slice(e);
  return out;
}

/** The merged top-level functions' names: $q0, $q1, … (checked unused). */
const GROUP = "$q";

/**
 * The same for the resident bundle's top-level functions (after tools/espruino-globals.mjs has
 * given them their $p names): those only ever called by name (`f(…)`, never read as a value) go,
 * a few kilobytes of code at a time in source order (so one module's functions stay together),
 * into functions `$q0`, `$q1`, … that take the function's number first; the shortest first in
 * each, as a call reads over the cases before its own. A name declared anywhere else in the
 * bundle (a local of the same name) keeps its function. Returns { code, functions, groups }.
 */
export function mergeFunctions(code, groupBytes = 3000, returnOutside = false) {
  const ast = parse(code, returnOutside);
  const tops = new Map();
  const every = new Map(); // every top-level function declaration, for the reach below
  for (const s of ast.body) {
    if (s.type === "FunctionDeclaration") every.set(s.id.name, s);
    if (s.type !== "FunctionDeclaration" || s.generator || s.async) continue;
    if (!s.params.every((p) => p.type === "Identifier")) continue;
    if (s.body.body.some((x) => x.type === "FunctionDeclaration") || usesOwnContext(s)) continue;
    tops.set(s.id.name, s);
  }
  const bad = new Set();
  const declared = new Map(); // name -> declarations seen
  const count = (name) => declared.set(name, (declared.get(name) ?? 0) + 1);
  let taken = false;
  (function walk(n, parent) {
    if (n.type === "Identifier") {
      if (n.name.startsWith(GROUP)) taken = true;
      const decl = parent !== undefined && (((parent.type === "FunctionDeclaration" || parent.type === "FunctionExpression" || parent.type === "ClassDeclaration" ||
        parent.type === "ClassExpression") && parent.id === n) || (parent.type === "VariableDeclarator" && parent.id === n) ||
        (parent.type === "CatchClause" && parent.param === n) || ((parent.type === "FunctionDeclaration" || parent.type === "FunctionExpression" ||
        parent.type === "ArrowFunctionExpression") && parent.params.includes(n)));
      if (decl) count(n.name);
      else if (tops.has(n.name)) {
        const member = parent !== undefined && parent.type === "MemberExpression" && parent.property === n && !parent.computed;
        const key = parent !== undefined && (parent.type === "Property" || parent.type === "MethodDefinition" || parent.type === "PropertyDefinition") &&
          parent.key === n && !parent.computed && !parent.shorthand;
        if (!member && !key && !(parent !== undefined && parent.type === "CallExpression" && parent.callee === n)) bad.add(n.name);
      }
    }
    for (const c of children(n)) walk(c, n);
  })(ast, undefined);
  if (taken) throw new Error(`espruino-merge: names starting ${GROUP} are already used in the bundle`);
  // Espruino does not hoist: a function the top-level code reaches before the last function
  // declaration (through calls, or through functions it holds as values) keeps its own, so that
  // no top-level statement can reach a merged function ahead of its group (the dialect guard's
  // hoisting rule sees a group as one function that reaches what all its members reach).
  const last = ast.body.reduce((at, st, i) => (st.type === "FunctionDeclaration" ? i : at), -1);
  const early = new Set();
  const refsOf = (node, skipFunctions) => {
    const out = [];
    (function walk(n, top) {
      if (!top && skipFunctions && (n.type === "FunctionExpression" || n.type === "ArrowFunctionExpression" || n.type === "FunctionDeclaration")) return;
      if (n.type === "Identifier" && every.has(n.name)) out.push(n.name);
      for (const c of children(n)) walk(c, false);
    })(node, true);
    return out;
  };
  ast.body.forEach((st, i) => {
    if (st.type === "FunctionDeclaration" || i > last) return;
    const work = refsOf(st, true);
    while (work.length > 0) {
      const name = work.pop();
      if (early.has(name)) continue;
      early.add(name);
      work.push(...refsOf(every.get(name).body, false));
    }
  });
  const chosen = [...tops.keys()].filter((k) => !bad.has(k) && !early.has(k) && declared.get(k) === 1);
  // groups: consecutive in source order, up to groupBytes of code each
  const groups = [];
  let cur = [];
  let size = 0;
  for (const s of ast.body) {
    if (s.type !== "FunctionDeclaration" || !chosen.includes(s.id.name)) continue;
    const n = s.end - s.start;
    if (cur.length > 0 && size + n > groupBytes) {
      groups.push(cur);
      cur = [];
      size = 0;
    }
    cur.push(s);
    size += n;
  }
  if (cur.length > 0) groups.push(cur);
  const where = new Map(); // name -> [group, number]
  const edits = [];
  groups.forEach((g, gi) => {
    // where the first of them was (Espruino does not hoist: top-level code after it may call it)
    const at = g[0].start;
    g.sort((a, b) => (a.end - a.start) - (b.end - b.start));
    const cases = g.map((fn, k) => {
      where.set(fn.id.name, [gi, k]);
      return `case ${k}:{${caseHead(fn, true)}${caseBody(code, fn)}}return;`;
    });
    for (const fn of g) edits.push([fn.start, fn.end, ""]);
    edits.push([at, at, `function ${GROUP}${gi}(){switch(arguments[0]){${cases.join("")}}}`]);
  });
  // calls (anywhere, in the moved bodies too: handled below on the new code)
  edits.sort((x, y) => y[0] - x[0] || (y[1] - y[0]) - (x[1] - x[0]));
  let out = code;
  for (const [s, e, t] of edits) out = out.slice(0, s) + t + out.slice(e);
  const ast2 = parse(out, returnOutside);
  const calls = [];
  (function walk(n) {
    if (n.type === "CallExpression" && n.callee.type === "Identifier" && where.has(n.callee.name)) {
      const [gi, k] = where.get(n.callee.name);
      calls.push([n.callee.start, n.callee.end, `${GROUP}${gi}`]);
      const open = out.indexOf("(", n.callee.end);
      calls.push([open + 1, open + 1, n.arguments.length > 0 ? `${k},` : `${k}`]);
    }
    for (const c of children(n)) walk(c);
  })(ast2);
  // back to front; at one position the renamed callee first, then the number in front of it (f(g(x)))
  calls.sort((x, y) => y[0] - x[0] || y[1] - x[1]);
  for (const [s, e, t] of calls) out = out.slice(0, s) + t + out.slice(e);
  return { code: out, functions: where.size, groups: groups.length };
}
