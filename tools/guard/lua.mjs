// The dialect guard over built Lua: what NodeMCU's Lua 5.1 (ESP8266) and 32-bit Lua 5.3
// (ESP32) refuse, even where Debian's lua5.1/lua5.3 would accept it.
import luaparse from "luaparse";

export const MAX_ACTIVE_LOCALS = 50;
export const MAX_UPVALUES = 60;
const INT_MAX = 2147483647;

const isNode = (x) => x !== null && typeof x === "object" && typeof x.type === "string";
const kids = (n) => Object.keys(n).filter((k) => k !== "loc" && k !== "range").flatMap((k) => {
  const v = n[k];
  return Array.isArray(v) ? v.filter(isNode) : isNode(v) ? [v] : [];
});

function parse(code, version) {
  return luaparse.parse(code, { luaVersion: version, locations: true, comments: false, encodingMode: "pseudo-latin1" });
}

/**
 * Largest number of locals active at one point, and of upvalues, in each function
 * (Lua's own limits, LUAI_MAXVARS and LUAI_MAXUPVALUES, count exactly these; NodeMCU allows 50 locals).
 */
function limits(ast, report) {
  const funcs = [];
  const scopes = [];
  let maxLocals = 0;
  let maxUpvalues = 0;
  const declare = (name) => {
    const f = funcs[funcs.length - 1];
    scopes[scopes.length - 1].set(name, { fi: funcs.length - 1 });
    f.active++;
    if (f.active > f.max) f.max = f.active;
  };
  const hidden = (n) => {
    const f = funcs[funcs.length - 1];
    f.active += n;
    if (f.active > f.max) f.max = f.active;
  };
  const ref = (name) => {
    for (let s = scopes.length - 1; s >= 0; s--) {
      const v = scopes[s].get(name);
      if (v) {
        for (let k = v.fi + 1; k < funcs.length; k++) funcs[k].upvals.add(v);
        return;
      }
    }
  };
  const block = (stmts, pre) => {
    const f = funcs[funcs.length - 1];
    const saved = f.active;
    scopes.push(new Map());
    if (pre) pre();
    stmts.forEach(stmt);
    scopes.pop();
    f.active = saved;
  };
  const fn = (node, name) => {
    funcs.push({ active: 0, max: 0, upvals: new Set(), node, name });
    scopes.push(new Map());
    (node.parameters ?? []).forEach((p) => (p.type === "Identifier" ? declare(p.name) : null));
    block(node.body);
    scopes.pop();
    const f = funcs.pop();
    maxLocals = Math.max(maxLocals, f.max);
    maxUpvalues = Math.max(maxUpvalues, f.upvals.size);
    if (f.max > MAX_ACTIVE_LOCALS) report(node, "lua-locals", `${name}: ${f.max} active locals`);
    if (f.upvals.size > MAX_UPVALUES) report(node, "lua-upvalues", `${name}: ${f.upvals.size} upvalues`);
  };
  const expr = (n) => {
    if (!n) return;
    if (n.type === "Identifier") return ref(n.name);
    if (n.type === "FunctionDeclaration") return fn(n, `function at line ${n.loc.start.line}`);
    if (n.type === "MemberExpression") return expr(n.base);
    kids(n).forEach(expr);
  };
  const stmt = (s) => {
    switch (s.type) {
      case "LocalStatement":
        s.init.forEach(expr);
        s.variables.forEach((v) => declare(v.name));
        break;
      case "FunctionDeclaration":
        if (s.isLocal && s.identifier) {
          declare(s.identifier.name);
          fn(s, s.identifier.name);
        } else {
          if (s.identifier) expr(s.identifier);
          fn(s, s.identifier ? (s.identifier.name ?? `function at line ${s.loc.start.line}`) : "function");
        }
        break;
      case "DoStatement": block(s.body); break;
      case "WhileStatement": expr(s.condition); block(s.body); break;
      case "RepeatStatement": block(s.body.concat([{ type: "CallStatement", expression: s.condition }])); break;
      case "IfStatement": s.clauses.forEach((c) => { expr(c.condition); block(c.body); }); break;
      case "ForNumericStatement":
        [s.start, s.end, s.step].forEach(expr);
        block(s.body, () => { hidden(3); declare(s.variable.name); });
        break;
      case "ForGenericStatement":
        s.iterators.forEach(expr);
        block(s.body, () => { hidden(3); s.variables.forEach((v) => declare(v.name)); });
        break;
      default:
        kids(s).forEach(expr);
    }
  };
  funcs.push({ active: 0, max: 0, upvals: new Set(), node: ast, name: "main chunk" });
  block(ast.body);
  const main = funcs.pop();
  maxLocals = Math.max(maxLocals, main.max);
  if (main.max > MAX_ACTIVE_LOCALS) report(ast, "lua-locals", `main chunk: ${main.max} active locals`);
  return { maxLocals, maxUpvalues };
}

export function checkLua(code, file) {
  const violations = [];
  const report = (n, rule, detail) => violations.push({ file, line: n.loc?.start.line ?? 1, col: (n.loc?.start.column ?? 0) + 1, rule, detail });
  let ast;
  try {
    ast = parse(code, "5.3");
  } catch (e) {
    violations.push({ file, line: e.line ?? 1, col: e.column ?? 1, rule: "lua51-syntax", detail: e.message });
    return { violations, maxLocals: 0, maxUpvalues: 0 };
  }
  const visit = (n) => {
    if (n.type === "GotoStatement" || n.type === "LabelStatement") report(n, "lua-goto");
    if (n.type === "BinaryExpression" && n.operator === "//") report(n, "lua-idiv");
    if ((n.type === "BinaryExpression" && ["&", "|", "~", "<<", ">>"].includes(n.operator)) || (n.type === "UnaryExpression" && n.operator === "~")) {
      report(n, "lua-bitop", n.operator);
    }
    if (n.type === "NumericLiteral" && /^(0[xX][0-9a-fA-F]+|\d+)$/.test(n.raw) && n.value > INT_MAX) report(n, "lua-int-literal", n.raw);
    kids(n).forEach(visit);
  };
  visit(ast);
  if (violations.length === 0) {
    try {
      parse(code, "5.1");
    } catch (e) {
      violations.push({ file, line: e.line ?? 1, col: e.column ?? 1, rule: "lua51-syntax", detail: e.message });
    }
  }
  const stats = limits(ast, report);
  return { violations, ...stats };
}
