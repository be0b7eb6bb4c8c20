// The dialect guard over a built Espruino bundle: parses it and refuses what Espruino 2v29
// cannot run. The minifier and bundler run after the source checks, so their output is
// checked again here (syntax they could reintroduce, and use before declaration).
import * as acorn from "acorn";
import { ERROR_CLASSES, ESPRUINO_MISSING_GLOBALS as MISSING_GLOBALS, MISSING_BUILTINS } from "./rules.mjs";


const isNode = (x) => x !== null && typeof x === "object" && typeof x.type === "string";
function children(node) {
  const out = [];
  for (const k of Object.keys(node)) {
    if (k === "loc" || k === "start" || k === "end" || k === "type") continue;
    const v = node[k];
    if (Array.isArray(v)) v.forEach((c) => isNode(c) && out.push(c));
    else if (isNode(v)) out.push(v);
  }
  return out;
}
const isFunction = (n) => n.type === "FunctionDeclaration" || n.type === "FunctionExpression" || n.type === "ArrowFunctionExpression";

/** Every name bound anywhere inside `node` (over-approximates scopes: never a false hoisting report). */
function boundNames(node, into = new Set()) {
  const bindPattern = (p) => {
    if (!p) return;
    if (p.type === "Identifier") into.add(p.name);
    else if (p.type === "ObjectPattern") p.properties.forEach((q) => bindPattern(q.type === "RestElement" ? q.argument : q.value));
    else if (p.type === "ArrayPattern") p.elements.forEach(bindPattern);
    else if (p.type === "AssignmentPattern") bindPattern(p.left);
    else if (p.type === "RestElement") bindPattern(p.argument);
  };
  const visit = (n) => {
    if (n.type === "VariableDeclarator") bindPattern(n.id);
    if ((n.type === "FunctionDeclaration" || n.type === "ClassDeclaration") && n.id) into.add(n.id.name);
    if (isFunction(n)) n.params.forEach(bindPattern);
    if ((n.type === "FunctionExpression" || n.type === "ClassExpression") && n.id) into.add(n.id.name);
    if (n.type === "CatchClause") bindPattern(n.param);
    children(n).forEach(visit);
  };
  visit(node);
  return into;
}

/** Identifier nodes that are references (not property names, keys, labels or declarations). */
function references(node, { skipFunctions }, out = []) {
  const visit = (n, parent) => {
    if (n !== node && skipFunctions && isFunction(n) && !invokedNow(n, parent)) return;
    if (n.type === "Identifier") {
      const p = parent;
      const isKey = p && ((p.type === "MemberExpression" && p.property === n && !p.computed) ||
        ((p.type === "Property" || p.type === "MethodDefinition" || p.type === "PropertyDefinition") && p.key === n && !p.computed && !(p.shorthand && p.value === n)) ||
        p.type === "LabeledStatement" || p.type === "BreakStatement" || p.type === "ContinueStatement");
      if (!isKey) out.push(n);
      return;
    }
    if ((n.type === "ClassDeclaration" || n.type === "ClassExpression") && skipFunctions) {
      if (n.superClass) visit(n.superClass, n);
      for (const m of n.body.body) if (m.static && m.type === "PropertyDefinition" && m.value) visit(m.value, m);
      return;
    }
    for (const c of children(n)) visit(c, n);
  };
  visit(node, null);
  return out;
}

const parents = new WeakMap();
function invokedNow(fn, parent) {
  let p = parent ?? parents.get(fn);
  return !!p && p.type === "CallExpression" && p.callee === fn;
}

/**
 * True when `fn` (an arrow) has a `this` token anywhere in it: Espruino's lexer marks the arrow
 * on any `this` in its text, nested functions and classes included (measured).
 */
function arrowUsesThis(fn) {
  let found = false;
  const visit = (n) => {
    if (found) return;
    if (n.type === "ThisExpression") {
      found = true;
      return;
    }
    children(n).forEach(visit);
  };
  visit(fn);
  return found;
}

/**
 * Why `node` may be parsed in Espruino's skip mode, token by token, or null. A skipped `{ … }`
 * block is passed over by brace matching (safe, measured), so a block between the node and the
 * skipping construct makes it safe. Token-by-token skipping: the right of && || ??, a ?: branch,
 * an unbraced if/else or loop body, a switch case, and the body of an expression-bodied arrow,
 * which is parsed without running when the arrow is made.
 */
function skippablePosition(node, parentOf) {
  let child = node;
  let p = parentOf.get(node);
  let inBlock = false;
  while (p && p.type !== "Program") {
    if (p.type === "ArrowFunctionExpression" && p.expression && child === p.body) {
      return "the body of an expression-bodied arrow (parsed without running when that arrow is made)";
    }
    if (isFunction(p)) return null;
    let where = null;
    switch (p.type) {
      case "IfStatement": if (child !== p.test) where = "an if/else branch"; break;
      case "ConditionalExpression": if (child !== p.test) where = "a ?: branch"; break;
      case "LogicalExpression": if (child === p.right) where = `the right of ${p.operator}`; break;
      case "SwitchCase": if (child !== p.test) where = "a switch case"; break;
      case "WhileStatement": case "ForStatement": case "ForInStatement": case "ForOfStatement":
        if (child === p.body) where = "a loop body";
        else if (child === p.update) where = "a loop's update";
        break;
      default: break;
    }
    if (child.type === "BlockStatement") inBlock = true;
    if (where !== null && !inBlock) return where;
    if (where !== null && inBlock) return null;
    child = p;
    p = parentOf.get(p);
  }
  return null;
}

/**
 * `file` is a script, or (app.js and app.<name>.js: the sensor node, made on the board with
 * `new Function`) the body of a function.
 */
export function checkEspruinoBundle(code, file) {
  const out = [];
  let ast;
  try {
    const body = /(^|[\\/])app\.\w+\.js$/.test(file);
    ast = acorn.parse(code, { ecmaVersion: "latest", sourceType: "script", locations: true, allowReturnOutsideFunction: body });
  } catch (e) {
    return [{ file, line: e.loc?.line ?? 1, col: (e.loc?.column ?? 0) + 1, rule: "js-syntax", detail: e.message }];
  }
  const report = (n, rule, detail) => out.push({ file, line: n.loc.start.line, col: n.loc.start.column + 1, rule, detail });
  const declared = boundNames(ast);
  const isGlobal = (id) => id.type === "Identifier" && !declared.has(id.name);

  const checkBody = (stmts) => {
    const decls = new Map();
    stmts.forEach((s, i) => s.type === "FunctionDeclaration" && s.id && decls.set(s.id.name, i));
    if (decls.size === 0) return;
    const freeCache = new Map();
    const freeOf = (fnDecl) => {
      if (!freeCache.has(fnDecl)) {
        const inner = boundNames({ type: "X", params: fnDecl.params, body: fnDecl.body });
        fnDecl.params.forEach((p) => p.type === "Identifier" && inner.add(p.name));
        freeCache.set(fnDecl, references(fnDecl.body, { skipFunctions: false }).filter((r) => !inner.has(r.name) && decls.has(r.name)));
      }
      return freeCache.get(fnDecl);
    };
    stmts.forEach((s, i) => {
      if (s.type === "FunctionDeclaration") return;
      // Names bound inside IIFEs of this statement shadow the outer functions there.
      const shadow = new Set();
      const visitIife = (n, parent) => {
        if (isFunction(n) && invokedNow(n, parent)) boundNames({ type: "X", params: n.params, body: n.body }, shadow);
        children(n).forEach((c) => visitIife(c, n));
      };
      visitIife(s, null);
      const work = references(s, { skipFunctions: true }).filter((r) => decls.has(r.name) && !shadow.has(r.name)).map((r) => [r.name, r]);
      const seen = new Set();
      while (work.length > 0) {
        const [name, at] = work.pop();
        if (seen.has(name)) continue;
        seen.add(name);
        const j = decls.get(name);
        if (j > i) {
          report(at, "hoisting", `${name}() is declared at line ${stmts[j].loc.start.line}`);
          continue;
        }
        for (const r of freeOf(stmts[j])) work.push([r.name, at]);
      }
    });
  };

  const visit = (n, parent) => {
    parents.set(n, parent);
    switch (n.type) {
      case "AssignmentPattern": report(n, "default-param"); break;
      case "ObjectPattern": case "ArrayPattern": report(n, "destructuring"); break;
      case "SpreadElement": case "RestElement": report(n, "spread-rest"); break;
      case "AwaitExpression": report(n, "async", "await"); break;
      case "YieldExpression": report(n, "generator", "yield"); break;
      case "ChainExpression": report(n, "optional-chain"); break;
      case "LabeledStatement": report(n, "label", n.label.name); break;
      case "TaggedTemplateExpression": report(n, "tagged-template"); break;
      case "BinaryExpression": case "AssignmentExpression":
        if (n.operator === "**" || n.operator === "**=") report(n, "exponent");
        if (n.type === "AssignmentExpression" && n.left.type === "MemberExpression" && !n.left.computed && n.left.property.name === "length") report(n, "length-assign");
        break;
      case "Property": case "MethodDefinition": case "PropertyDefinition":
        if (n.computed) report(n, "computed-key");
        break;
      case "Literal":
        if (typeof n.bigint === "string") report(n, "bigint");
        break;
      case "ClassDeclaration": case "ClassExpression":
        if (n.superClass && isGlobal(n.superClass) && ERROR_CLASSES.has(n.superClass.name)) report(n, "extends-error", n.superClass.name);
        if (n.type === "ClassExpression" && n.id) {
          const self = references(n.body, { skipFunctions: false }).find((r) => r.name === n.id.name);
          if (self) report(self, "class-self-name", n.id.name);
        }
        break;
      case "MemberExpression":
        if (!n.computed && n.property.type === "Identifier") {
          const name = n.property.name;
          if (name === "finally") report(n.property, "promise-finally");
          if (isGlobal(n.object) && MISSING_BUILTINS[n.object.name]?.includes(name)) report(n, "missing-builtin", `${n.object.name}.${name}`);
          if (n.object.type === "MemberExpression" && !n.object.computed && n.object.property.name === "prototype" && isGlobal(n.object.object)) {
            report(n, "prototype-lookup", `${n.object.object.name}.prototype.${name}`);
          }
        }
        break;
      case "ForStatement": case "ForOfStatement": case "ForInStatement": {
        const init = n.type === "ForStatement" ? n.init : n.left;
        if (init && init.type === "VariableDeclaration" && init.kind !== "var") {
          const names = boundNames({ type: "X", declarations: init.declarations });
          const inClosure = (m, inside) => {
            if (isFunction(m)) inside = true;
            if (inside && m.type === "Identifier" && names.has(m.name)) {
              report(m, "let-closure", m.name);
              return;
            }
            children(m).forEach((c) => inClosure(c, inside));
          };
          inClosure(n.body, false);
        }
        break;
      }
      case "Program": checkBody(n.body); break;
      case "BlockStatement": checkBody(n.body); break;
      default: break;
    }
    if (isFunction(n)) {
      if (n.async) report(n, "async");
      if (n.generator) report(n, "generator");
    }
    if (n.type === "ArrowFunctionExpression" && arrowUsesThis(n)) {
      const where = skippablePosition(n, parents);
      if (where !== null) report(n, "arrow-this-skipped", `an arrow using this in ${where}`);
    }
    for (const c of children(n)) visit(c, n);
  };
  visit(ast, null);

  for (const r of references(ast, { skipFunctions: false })) {
    if (declared.has(r.name)) continue;
    if (MISSING_GLOBALS.has(r.name)) report(r, "missing-global", r.name);
    if (ERROR_CLASSES.has(r.name)) report(r, "error-class", r.name);
  }
  return out;
}
