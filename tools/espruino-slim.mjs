// Rewrites a built Espruino bundle so its functions cost fewer variable slots while they exist,
// without changing what they do. Measured on the board-sized interpreters (code run from Storage,
// where a function's body stays in flash; docs/platform-notes.md):
// - every declared parameter is a variable slot held for as long as the function exists; a local
//   variable costs slots only during a call. So `function f(a,b){…}` becomes
//   `function f(){var $A=arguments,a=$A[0],b=$A[1];…}` (one parameter: `var a=arguments[0]`).
//   About 300 slots for the sensor node, paid back as a few transient slots per call.
// - an arrow function with an expression body keeps a copy of that body in RAM (`(x,y)=>x+y` costs
//   16 slots where `function(x,y){return x+y}` costs 8). An arrow that uses neither `this` nor
//   `arguments` becomes a function expression; one that does keeps its arrow and gets a block
//   body.
// Espruino makes `arguments` on first use as a variable of the call's scope, where a closure made
// in that call finds it before its own: so a function inside one that reads `arguments` keeps its
// parameters (and an arrow there stays an arrow).
// A function that makes functions keeps its parameters: each closure keeps the call's scope, and
// `arguments` there costs more than the parameters would. dropConstructorLinks (below) deletes
// each class's prototype.constructor once the app has run.
// Left as they are: setters (one parameter by the language), generators and async functions,
// parameters that are not plain names (the dialect guard forbids them anyway), and a function
// whose own code names `arguments` or the temporary's name.
import * as acorn from "acorn";

const ARGS = "$A";

function isFunction(n) {
  return n.type === "FunctionDeclaration" || n.type === "FunctionExpression" || n.type === "ArrowFunctionExpression";
}

/** A node's child nodes, in source order (shared with tools/espruino-merge.mjs). */
export function children(n) {
  const out = [];
  for (const k of Object.keys(n)) {
    if (k === "type" || k === "start" || k === "end") continue;
    const v = n[k];
    if (Array.isArray(v)) for (const x of v) { if (x && typeof x.type === "string") out.push(x); }
    else if (v && typeof v.type === "string") out.push(v);
  }
  return out;
}

/**
 * Whether `fn`'s own code (arrows inside it included, other functions not) has a node that passes
 * `test` (a function inside is tested itself, not its code).
 */
function uses(fn, test) {
  let found = false;
  (function walk(n, top) {
    if (found) return;
    if (test(n)) { found = true; return; }
    if (!top && (n.type === "FunctionDeclaration" || n.type === "FunctionExpression")) return;
    for (const c of children(n)) walk(c, false);
  })(fn.body, true);
  return found;
}

/** Whether `fn`'s own code (not that of the functions inside it) makes a function. */
export const makesFunctions = (fn) => uses(fn, isFunction);

const usesArguments = (n) => n.type === "Identifier" && (n.name === "arguments" || n.name === ARGS);
const usesThis = (n) => n.type === "ThisExpression" || n.type === "Super" || n.type === "MetaProperty" || usesArguments(n);

/** The statement that declares `fn`'s parameters as locals (empty without parameters). */
function paramLocals(fn) {
  const names = fn.params.map((p) => p.name);
  if (names.length === 0) return "";
  if (names.length === 1) return `var ${names[0]}=arguments[0];`;
  return `var ${ARGS}=arguments,${names.map((n, i) => `${n}=${ARGS}[${i}]`).join(",")};`;
}

/**
 * The bundle `code` rewritten; `opts.returnOutside`: the code is a function body (a lazy module).
 * Returns { code, params, arrows }: the parameters and arrows it rewrote.
 */
export function slimEspruino(code, opts = {}) {
  const ast = acorn.parse(code, { ecmaVersion: 2020, sourceType: "script", allowReturnOutsideFunction: opts.returnOutside === true });
  const stats = { params: 0, arrows: 0 };
  const setters = new Set();
  (function mark(n) {
    if ((n.type === "Property" || n.type === "MethodDefinition") && n.kind === "set") setters.add(n.value);
    for (const c of children(n)) mark(c);
  })(ast);

  /**
   * code[start, end) with every function inside it rewritten. `inside`: an enclosing function
   * reads `arguments`, so these may not (see below).
   */
  function gen(node, start, end, inside = false) {
    let out = "";
    let at = start;
    (function walk(n) {
      if (n.end <= at || n.start >= end) return;
      if (isFunction(n) && n.start >= at) {
        out += code.slice(at, n.start) + fn(n, inside);
        at = n.end;
        return;
      }
      for (const c of children(n)) walk(c);
    })(node);
    return out + code.slice(at, end);
  }

  function fn(n, inside) {
    // Espruino makes `arguments` on first use as a variable of the call's scope, and a function
    // made inside that call finds it there before its own: a closure inside a function that
    // reads `arguments` must not read it too (measured on 2v29). The outer one keeps the rewrite.
    const plain = n.params.every((p) => p.type === "Identifier") && !n.generator && !n.async && !setters.has(n) && !inside;
    const arrow = n.type === "ArrowFunctionExpression";
    const reads = plain && n.params.length > 0;
    const blockBody = () => gen(n.body, n.body.start + 1, n.body.end - 1, reads || inside);
    // an arrow's expression body, with the parentheses around it (`x=>({…})`)
    const arrowAt = arrow ? code.indexOf("=>", n.params.length > 0 ? n.params[n.params.length - 1].end : n.start) : -1;
    const expression = () => gen(n.body, arrowAt + 2, n.end, reads || inside).trimStart();
    // `return(x)=>…` written as `return function…` needs the space
    const gap = /[\w$]/.test(code[n.start - 1] ?? "") ? " " : "";
    const own = !arrow && uses(n, usesArguments);
    // a function that makes functions keeps its parameters: each closure it makes keeps the call's
    // scope, where `arguments` and its array cost about four slots more than the parameters
    // (a closure over one value: 7.6 slots against 12.2, measured on 2v29); the parameters'
    // slots on the function itself are paid once
    if (!arrow && plain && !own && makesFunctions(n)) {
      return code.slice(n.start, n.body.start) + gen(n.body, n.body.start, n.body.end, false);
    }
    if (!arrow && (!plain || own)) {
      return code.slice(n.start, n.body.start) + gen(n.body, n.body.start, n.body.end, inside || own);
    }
    if (arrow && (!plain || uses(n, usesThis))) {
      // keeps its arrow (for `this`); an expression body becomes a block, which stays in flash
      if (!n.expression) return code.slice(n.start, n.body.start) + gen(n.body, n.body.start, n.body.end, inside);
      stats.arrows++;
      return `${code.slice(n.start, arrowAt + 2)}{return ${expression()}}`;
    }
    stats.params += n.params.length;
    if (arrow) stats.arrows++;
    const body = arrow && n.expression ? `return ${expression()}` : blockBody();
    if (arrow) return `${gap}function(){${paramLocals(n)}${body}}`;
    // the head up to the parameter list: `function name`, or a method's key
    const open = code.lastIndexOf("(", n.params.length > 0 ? n.params[0].start : n.body.start);
    return `${code.slice(n.start, open)}(){${paramLocals(n)}${body}}`;
  }

  return { code: gen(ast, 0, code.length), ...stats };
}

/**
 * `code` (a bundle run at top level) with each top-level class's `prototype.constructor` deleted
 * once the bundle has run: the link costs two variable slots a class (the name "constructor"
 * takes two blocks) and nothing here reads it. Left as it is when the code reads a
 * `.constructor` or uses `instanceof` (which a later reader might take to need it).
 * Returns { code, classes }.
 */
export function dropConstructorLinks(code) {
  const ast = acorn.parse(code, { ecmaVersion: 2020, sourceType: "script" });
  let reads = false;
  (function walk(n) {
    if (reads) return;
    if ((n.type === "MemberExpression" && ((!n.computed && n.property.name === "constructor") || (n.computed && n.property.value === "constructor"))) ||
      (n.type === "BinaryExpression" && n.operator === "instanceof")) {
      reads = true;
      return;
    }
    for (const c of children(n)) walk(c);
  })(ast);
  if (reads) return { code, classes: 0 };
  const names = [];
  for (const s of ast.body) {
    if (s.type === "ClassDeclaration") names.push(s.id.name);
    else if (s.type === "VariableDeclaration") {
      for (const d of s.declarations) if (d.init && d.init.type === "ClassExpression" && d.id.type === "Identifier") names.push(d.id.name);
    } else if (s.type === "ExpressionStatement") {
      const exprs = s.expression.type === "SequenceExpression" ? s.expression.expressions : [s.expression];
      for (const e of exprs) {
        if (e.type === "AssignmentExpression" && e.operator === "=" && e.left.type === "Identifier" && e.right.type === "ClassExpression") names.push(e.left.name);
      }
    }
  }
  if (names.length === 0) return { code, classes: 0 };
  // one loop, not a statement a class: the bundle's bytes are budgeted too (a function made and
  // dropped here costs slots only while it runs)
  return { code: `${code.replace(/;?\s*$/, ";")}[${names.join(",")}].forEach(function(c){delete c.prototype.constructor});\n`, classes: names.length };
}
