// The dialect guard over TypeScript sources: walks the syntax tree with the type checker.
import * as path from "node:path";
import ts from "typescript";
import { ERROR_CLASSES, ESPRUINO_MISSING_GLOBALS, MISSING_BUILTINS } from "./rules.mjs";

const TYPED_ARRAYS = new Set(["Uint8Array", "Int8Array", "Uint8ClampedArray", "Uint16Array", "Int16Array", "Uint32Array",
  "Int32Array", "Float32Array", "Float64Array", "ArrayBuffer", "DataView", "BigInt64Array", "BigUint64Array"]);
const HOST_GLOBALS = new Set(["JSON", "Date", "console", "process", "require", "Buffer", "setTimeout", "setInterval",
  "clearTimeout", "clearInterval", "setImmediate", "Promise", "globalThis", "window", "global", "print", "eval", "Function",
  "parseInt", "parseFloat", "isNaN", "isFinite", "E", "_G", "module", "exports"]);
const BITWISE = new Set([ts.SyntaxKind.AmpersandToken, ts.SyntaxKind.BarToken, ts.SyntaxKind.CaretToken,
  ts.SyntaxKind.LessThanLessThanToken, ts.SyntaxKind.GreaterThanGreaterThanToken, ts.SyntaxKind.GreaterThanGreaterThanGreaterThanToken,
  ts.SyntaxKind.AmpersandEqualsToken, ts.SyntaxKind.BarEqualsToken, ts.SyntaxKind.CaretEqualsToken,
  ts.SyntaxKind.LessThanLessThanEqualsToken, ts.SyntaxKind.GreaterThanGreaterThanEqualsToken,
  ts.SyntaxKind.GreaterThanGreaterThanGreaterThanEqualsToken]);
const FLOAT_MATH = new Set(["floor", "ceil", "round", "trunc"]);

/** `// dialect-allow <rule>: <reason>` on the line of the construct or the line above exempts it. */
function allowances(sf) {
  const map = new Map();
  const re = /\/\/\s*dialect-allow\s+([a-z0-9-]+)\s*:\s*(\S.*)$/;
  sf.text.split("\n").forEach((line, i) => {
    const m = re.exec(line);
    if (m) {
      for (const l of [i, i + 1]) {
        if (!map.has(l)) map.set(l, new Set());
        map.get(l).add(m[1]);
      }
    }
  });
  return map;
}

/** A declaration from the default library (or an @types package): a runtime global. */
function isGlobal(checker, program, id) {
  const sym = checker.getSymbolAtLocation(id);
  if (!sym) return true;
  const decls = sym.declarations ?? [];
  if (decls.length === 0) return true;
  return decls.every((d) => {
    const sf = d.getSourceFile();
    return program.isSourceFileDefaultLibrary(sf) || sf.fileName.includes("/node_modules/");
  });
}

/** True when a value of this type can be 0, NaN or "" (falsy in JS, truthy in Lua). */
function numberOrStringLike(type) {
  const F = ts.TypeFlags;
  const bad = F.Number | F.NumberLiteral | F.String | F.StringLiteral | F.BigInt | F.BigIntLiteral | F.Any | F.Unknown |
    F.Enum | F.EnumLiteral | F.TemplateLiteral | F.StringMapping;
  if (type.isUnion()) return type.types.some(numberOrStringLike);
  if (type.flags & F.TypeParameter) return true;
  return (type.flags & bad) !== 0;
}

function isIdentifierReference(node) {
  const p = node.parent;
  if (!p) return true;
  if (ts.isPropertyAccessExpression(p) && p.name === node) return false;
  if ((ts.isPropertyAssignment(p) || ts.isPropertyDeclaration(p) || ts.isMethodDeclaration(p) || ts.isPropertySignature(p) ||
    ts.isMethodSignature(p) || ts.isGetAccessor(p) || ts.isSetAccessor(p) || ts.isEnumMember(p)) && p.name === node) return false;
  if (ts.isQualifiedName(p) || ts.isTypeReferenceNode(p) || ts.isImportSpecifier(p) || ts.isExportSpecifier(p)) return false;
  if (ts.isTypeQueryNode(p)) return false;
  // Declarations bind, they do not reference.
  if ((ts.isVariableDeclaration(p) || ts.isFunctionDeclaration(p) || ts.isClassDeclaration(p) || ts.isParameter(p) ||
    ts.isInterfaceDeclaration(p) || ts.isTypeAliasDeclaration(p) || ts.isImportClause(p) || ts.isNamespaceImport(p) ||
    ts.isBindingElement(p)) && p.name === node) return false;
  // Inside a type annotation: not a runtime reference.
  for (let n = p; n; n = n.parent) {
    if (ts.isTypeNode(n) && !ts.isExpressionWithTypeArguments(n)) return false;
    if (ts.isStatement(n) || ts.isSourceFile(n)) break;
  }
  return true;
}

const isFunctionLike = (n) => ts.isFunctionDeclaration(n) || ts.isFunctionExpression(n) || ts.isArrowFunction(n) ||
  ts.isMethodDeclaration(n) || ts.isConstructorDeclaration(n) || ts.isGetAccessor(n) || ts.isSetAccessor(n);

/**
 * Espruino does not hoist: in each statement list, a statement may not use a function declared
 * further down, directly or through functions it calls that are declared above it.
 */
function checkHoisting(checker, stmts, report) {
  const decls = new Map(); // symbol -> index
  stmts.forEach((s, i) => {
    if (ts.isFunctionDeclaration(s) && s.name) {
      const sym = checker.getSymbolAtLocation(s.name);
      if (sym) decls.set(sym, i);
    }
  });
  if (decls.size === 0) return;
  const refsCache = new Map();
  // Symbols referenced anywhere inside a node (used for function bodies: they run when called).
  const refsIn = (node) => {
    if (refsCache.has(node)) return refsCache.get(node);
    const out = [];
    const visit = (n) => {
      if (ts.isIdentifier(n) && isIdentifierReference(n)) {
        const sym = checker.getSymbolAtLocation(n);
        if (sym && decls.has(sym)) out.push([sym, n]);
      }
      ts.forEachChild(n, visit);
    };
    visit(node);
    refsCache.set(node, out);
    return out;
  };
  // Symbols referenced by code that runs when the statement runs (not inside function bodies).
  const immediate = (node) => {
    const out = [];
    const visit = (n) => {
      if (n !== node && isFunctionLike(n) && !isInvokedNow(n)) return;
      if (ts.isClassDeclaration(n) || ts.isClassExpression(n)) {
        // Only static initializers and heritage run at definition time.
        n.heritageClauses?.forEach(visit);
        n.members.forEach((m) => {
          if (ts.isPropertyDeclaration(m) && m.modifiers?.some((x) => x.kind === ts.SyntaxKind.StaticKeyword) && m.initializer) visit(m.initializer);
        });
        return;
      }
      if (ts.isIdentifier(n) && isIdentifierReference(n)) {
        const sym = checker.getSymbolAtLocation(n);
        if (sym && decls.has(sym)) out.push([sym, n]);
      }
      ts.forEachChild(n, visit);
    };
    if (ts.isFunctionDeclaration(node)) return out;
    visit(node);
    return out;
  };
  stmts.forEach((s, i) => {
    const seen = new Set();
    const work = immediate(s);
    while (work.length > 0) {
      const [sym, at] = work.pop();
      if (seen.has(sym)) continue;
      seen.add(sym);
      const j = decls.get(sym);
      if (j > i) {
        report(at, "hoisting", `${sym.name} is declared at line ${lineOf(stmts[j])}`);
        continue;
      }
      const body = stmts[j].body;
      if (body) for (const [s2] of refsIn(body)) work.push([s2, at]);
    }
  });
}

const lineOf = (n) => n.getSourceFile().getLineAndCharacterOfPosition(n.getStart()).line + 1;

function isInvokedNow(fn) {
  let p = fn.parent;
  while (p && ts.isParenthesizedExpression(p)) p = p.parent;
  return !!p && ts.isCallExpression(p) && (p.expression === fn || ts.skipPartiallyEmittedExpressions(p.expression) === fn ||
    (ts.isParenthesizedExpression(p.expression) && ts.skipParentheses(p.expression) === fn));
}

/** Checks one source file under a rule set; returns violations {file, line, col, rule, detail}. */
export function checkSourceFile(program, sf, rules, rel) {
  const checker = program.getTypeChecker();
  const out = [];
  const allow = allowances(sf);
  const on = (r) => rules.has(r);
  const report = (node, rule, detail) => {
    if (!on(rule)) return;
    const { line, character } = sf.getLineAndCharacterOfPosition(node.getStart(sf));
    if (allow.get(line)?.has(rule)) return;
    out.push({ file: rel, line: line + 1, col: character + 1, rule, detail });
  };
  const conditionCheck = (expr) => {
    if (!expr) return;
    const e = ts.skipParentheses(expr);
    if (ts.isBinaryExpression(e) && (e.operatorToken.kind === ts.SyntaxKind.AmpersandAmpersandToken ||
      e.operatorToken.kind === ts.SyntaxKind.BarBarToken)) {
      conditionCheck(e.left);
      conditionCheck(e.right);
      return;
    }
    if (ts.isPrefixUnaryExpression(e) && e.operator === ts.SyntaxKind.ExclamationToken) return; // checked at the `!`
    if (numberOrStringLike(checker.getTypeAtLocation(e))) {
      report(e, "truthiness", `\`${e.getText(sf).slice(0, 40)}\` is ${checker.typeToString(checker.getTypeAtLocation(e))}`);
    }
  };

  const visit = (node) => {
    switch (node.kind) {
      case ts.SyntaxKind.Parameter:
        if (node.initializer) report(node, "default-param");
        if (node.dotDotDotToken) report(node, "spread-rest", "rest parameter");
        break;
      case ts.SyntaxKind.ObjectBindingPattern:
      case ts.SyntaxKind.ArrayBindingPattern:
        report(node, "destructuring");
        break;
      case ts.SyntaxKind.SpreadElement:
      case ts.SyntaxKind.SpreadAssignment:
        report(node, "spread-rest");
        break;
      case ts.SyntaxKind.BinaryExpression: {
        const op = node.operatorToken.kind;
        if (op === ts.SyntaxKind.EqualsToken && (ts.isObjectLiteralExpression(node.left) || ts.isArrayLiteralExpression(node.left))) {
          report(node, "destructuring", "destructuring assignment");
        }
        if (op === ts.SyntaxKind.AsteriskAsteriskToken || op === ts.SyntaxKind.AsteriskAsteriskEqualsToken) report(node, "exponent");
        if (op >= ts.SyntaxKind.FirstAssignment && op <= ts.SyntaxKind.LastAssignment && ts.isPropertyAccessExpression(node.left) && node.left.name.text === "length") {
          report(node, "length-assign");
        }
        if (BITWISE.has(op)) report(node, "bitwise", node.operatorToken.getText(sf));
        if (op === ts.SyntaxKind.SlashToken || op === ts.SyntaxKind.SlashEqualsToken) report(node, "float-math", "`/`");
        if (op === ts.SyntaxKind.AmpersandAmpersandToken || op === ts.SyntaxKind.BarBarToken) conditionCheck(node.left);
        break;
      }
      case ts.SyntaxKind.PrefixUnaryExpression:
        if (node.operator === ts.SyntaxKind.TildeToken) report(node, "bitwise", "~");
        if (node.operator === ts.SyntaxKind.ExclamationToken) conditionCheck(node.operand);
        break;
      case ts.SyntaxKind.IfStatement:
      case ts.SyntaxKind.WhileStatement:
      case ts.SyntaxKind.DoStatement:
        conditionCheck(node.expression);
        break;
      case ts.SyntaxKind.ForStatement:
        conditionCheck(node.condition);
        checkLetClosure(node);
        break;
      case ts.SyntaxKind.ForOfStatement:
      case ts.SyntaxKind.ForInStatement:
        if (ts.isObjectLiteralExpression(node.initializer) || ts.isArrayLiteralExpression(node.initializer)) report(node, "destructuring");
        checkLetClosure(node);
        break;
      case ts.SyntaxKind.ConditionalExpression:
        conditionCheck(node.condition);
        break;
      case ts.SyntaxKind.ClassDeclaration:
      case ts.SyntaxKind.ClassExpression:
        for (const h of node.heritageClauses ?? []) {
          for (const t of h.types) {
            if (h.token === ts.SyntaxKind.ExtendsKeyword && ts.isIdentifier(t.expression) && ERROR_CLASSES.has(t.expression.text)) {
              report(t, "extends-error", t.expression.text);
            }
          }
        }
        break;
      case ts.SyntaxKind.AwaitExpression:
        report(node, "async", "await");
        break;
      case ts.SyntaxKind.YieldExpression:
        report(node, "generator", "yield");
        break;
      case ts.SyntaxKind.PropertyAccessExpression:
      case ts.SyntaxKind.ElementAccessExpression:
      case ts.SyntaxKind.CallExpression:
        if (node.questionDotToken) report(node, "optional-chain");
        if (ts.isPropertyAccessExpression(node)) checkMember(node);
        break;
      case ts.SyntaxKind.ComputedPropertyName:
        report(node, "computed-key");
        break;
      case ts.SyntaxKind.LabeledStatement:
        report(node, "label", node.label.text);
        break;
      case ts.SyntaxKind.TaggedTemplateExpression:
        report(node, "tagged-template");
        break;
      case ts.SyntaxKind.RegularExpressionLiteral:
        report(node, "regex");
        break;
      case ts.SyntaxKind.BigIntLiteral:
        report(node, "bigint");
        break;
      case ts.SyntaxKind.StringLiteral:
      case ts.SyntaxKind.NoSubstitutionTemplateLiteral:
      case ts.SyntaxKind.TemplateHead:
      case ts.SyntaxKind.TemplateMiddle:
      case ts.SyntaxKind.TemplateTail:
        // a text the board prints: Espruino and NodeMCU strings are bytes, and a terminal may not be UTF-8
        if (/[^\x00-\x7f]/.test(node.text)) report(node, "non-ascii", JSON.stringify(node.text.match(/[^\x00-\x7f]/)[0]));
        break;
      case ts.SyntaxKind.ThrowStatement:
        report(node, "throw");
        break;
      case ts.SyntaxKind.Identifier:
        checkIdentifier(node);
        break;
      case ts.SyntaxKind.SourceFile:
      case ts.SyntaxKind.Block:
      case ts.SyntaxKind.ModuleBlock:
        if (on("hoisting")) checkHoisting(checker, node.statements, report);
        break;
      default:
        break;
    }
    if (isFunctionLike(node)) {
      if (node.modifiers?.some((m) => m.kind === ts.SyntaxKind.AsyncKeyword)) report(node, "async");
      if (node.asteriskToken) report(node, "generator");
    }
    ts.forEachChild(node, visit);
  };

  function checkMember(node) {
    const name = node.name.text;
    if (name === "finally") report(node.name, "promise-finally");
    if ((name === "indexOf" || name === "includes" || name === "replace") && ts.isCallExpression(node.parent) && node.parent.expression === node &&
      (checker.getTypeAtLocation(node.expression).flags & ts.TypeFlags.StringLike) !== 0) {
      const arg = node.parent.arguments[0];
      const oneChar = arg !== undefined && ts.isStringLiteralLike(arg) && arg.text.length === 1;
      if (name === "replace" || !oneChar) report(node, "string-search", `${name}(${arg !== undefined ? arg.getText(sf).slice(0, 30) : ""})`);
    }
    const obj = node.expression;
    if (ts.isIdentifier(obj) && isGlobal(checker, program, obj)) {
      if (MISSING_BUILTINS[obj.text]?.includes(name)) report(node, "missing-builtin", `${obj.text}.${name}`);
      if (obj.text === "Math" && FLOAT_MATH.has(name)) report(node, "float-math", `Math.${name}`);
    }
    if (ts.isPropertyAccessExpression(obj) && obj.name.text === "prototype" && ts.isIdentifier(obj.expression) &&
      isGlobal(checker, program, obj.expression)) {
      report(node, "prototype-lookup", `${obj.expression.text}.prototype.${name}`);
    }
  }

  function checkIdentifier(node) {
    if (!isIdentifierReference(node)) return;
    const name = node.text;
    if (name === "arguments") {
      report(node, "arguments");
      return;
    }
    const interesting = ESPRUINO_MISSING_GLOBALS.has(name) || TYPED_ARRAYS.has(name) || ERROR_CLASSES.has(name) || HOST_GLOBALS.has(name);
    if (!interesting || !isGlobal(checker, program, node)) return;
    if (ESPRUINO_MISSING_GLOBALS.has(name)) report(node, "missing-global", name);
    if (TYPED_ARRAYS.has(name)) report(node, "typed-array", name);
    if (ERROR_CLASSES.has(name)) report(node, "error-class", name);
    if (HOST_GLOBALS.has(name)) report(node, "host-global", name);
  }

  function checkLetClosure(loop) {
    const init = loop.initializer;
    if (!init || !ts.isVariableDeclarationList(init) || !(init.flags & (ts.NodeFlags.Let | ts.NodeFlags.Const))) return;
    const syms = new Set();
    for (const d of init.declarations) {
      const names = [];
      const collect = (b) => (ts.isIdentifier(b) ? names.push(b) : b.elements?.forEach((e) => e.name && collect(e.name)));
      collect(d.name);
      for (const n of names) {
        const s = checker.getSymbolAtLocation(n);
        if (s) syms.add(s);
      }
    }
    const inClosure = (n, inside) => {
      if (isFunctionLike(n)) inside = true;
      if (inside && ts.isIdentifier(n) && syms.has(checker.getSymbolAtLocation(n))) {
        report(n, "let-closure", n.text);
        return;
      }
      ts.forEachChild(n, (c) => inClosure(c, inside));
    };
    inClosure(loop.statement, false);
  }

  visit(sf);
  return out;
}

/** Checks source files with roles from their paths, using a tsconfig's program for types. */
export function checkProject(root, tsconfig, filter, rulesFor) {
  const cfgPath = path.join(root, tsconfig);
  const cfg = ts.getParsedCommandLineOfConfigFile(cfgPath, {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} });
  const program = ts.createProgram({ rootNames: cfg.fileNames, options: cfg.options });
  const out = [];
  for (const sf of program.getSourceFiles()) {
    if (sf.isDeclarationFile) continue;
    const rel = path.relative(root, sf.fileName);
    if (rel.startsWith("..") || !filter(rel)) continue;
    out.push(...checkSourceFile(program, sf, rulesFor(rel), rel));
  }
  return out;
}

/** Checks loose files (tests plant violations this way) with one rule set. */
export function checkFiles(files, rules, extraOptions = {}) {
  const program = ts.createProgram({
    rootNames: files,
    options: { target: ts.ScriptTarget.ES2020, lib: ["lib.es2020.d.ts"], types: [], strict: true, noEmit: true, ...extraOptions },
  });
  const out = [];
  for (const f of files) out.push(...checkSourceFile(program, program.getSourceFile(f), rules, path.basename(f)));
  return out;
}
