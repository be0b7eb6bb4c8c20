import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

// The session's shape, held by checks: the outbox's state (its index arrays and counters) is
// written only by the outbox's own methods (firmware/session/outbox.ts). Anything else (the
// client, the app, the chaos lab, a test) reads it, or calls markSent / markReleaseSent / rewind /
// releaseAt / restart / takeAt. Found with the type checker: a write through any name or cast.

const ROOT = path.resolve(__dirname, "..");
const OUTBOX = path.join(ROOT, "firmware/session/outbox.ts");

/** The expression a write lands on, with element access, parentheses and casts taken off. */
function target(e: ts.Expression): ts.Expression {
  for (;;) {
    if (ts.isParenthesizedExpression(e) || ts.isAsExpression(e) || ts.isNonNullExpression(e) || ts.isTypeAssertionExpression(e)) e = e.expression;
    else if (ts.isElementAccessExpression(e)) e = e.expression;
    else return e;
  }
}

const ASSIGN = new Set([ts.SyntaxKind.EqualsToken, ts.SyntaxKind.PlusEqualsToken, ts.SyntaxKind.MinusEqualsToken, ts.SyntaxKind.AsteriskEqualsToken,
  ts.SyntaxKind.SlashEqualsToken, ts.SyntaxKind.PercentEqualsToken, ts.SyntaxKind.BarEqualsToken, ts.SyntaxKind.AmpersandEqualsToken,
  ts.SyntaxKind.QuestionQuestionEqualsToken, ts.SyntaxKind.BarBarEqualsToken, ts.SyntaxKind.AmpersandAmpersandEqualsToken]);

/** Writes to a member of class Outbox of `outboxFile` in `program`'s files other than that one: "file:line member". */
function outboxWrites(program: ts.Program, outboxFile: string): string[] {
  const checker = program.getTypeChecker();
  const found: string[] = [];
  const check = (sf: ts.SourceFile, e: ts.Expression) => {
    const t = target(e);
    if (!ts.isPropertyAccessExpression(t)) return;
    const sym = checker.getSymbolAtLocation(t.name);
    const decl = sym?.declarations?.[0];
    const cls = decl?.parent;
    if (cls === undefined || !ts.isClassDeclaration(cls) || cls.name?.text !== "Outbox" || path.resolve(decl!.getSourceFile().fileName) !== outboxFile) return;
    found.push(`${path.relative(ROOT, sf.fileName)}:${sf.getLineAndCharacterOfPosition(e.getStart()).line + 1} ${t.name.text}`);
  };
  for (const sf of program.getSourceFiles()) {
    if (sf.isDeclarationFile || path.resolve(sf.fileName) === outboxFile || sf.fileName.includes("node_modules")) continue;
    const visit = (n: ts.Node): void => {
      if (ts.isBinaryExpression(n) && ASSIGN.has(n.operatorToken.kind)) check(sf, n.left);
      else if ((ts.isPrefixUnaryExpression(n) || ts.isPostfixUnaryExpression(n)) &&
        (n.operator === ts.SyntaxKind.PlusPlusToken || n.operator === ts.SyntaxKind.MinusMinusToken)) check(sf, n.operand);
      else if (ts.isDeleteExpression(n)) check(sf, n.expression);
      ts.forEachChild(n, visit);
    };
    visit(sf);
  }
  return found;
}

describe("the outbox owns its state", () => {
  it("nothing outside firmware/session/outbox.ts writes the outbox's index or counters (firmware, host-sim, tests)", () => {
    const cfg = ts.getParsedCommandLineOfConfigFile(path.join(ROOT, "tsconfig.json"), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} })!;
    const program = ts.createProgram(cfg.fileNames, { ...cfg.options, noEmit: true });
    expect(program.getSourceFiles().some((f) => path.resolve(f.fileName) === OUTBOX)).toBe(true);
    expect(outboxWrites(program, OUTBOX)).toEqual([]);
  }, 120_000);

  it("the check finds a write through a name, a cast and an increment", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-shape-"));
    try {
      fs.writeFileSync(path.join(dir, "outbox.ts"), "export class Outbox { count = 0; readonly phases: readonly number[] = []; }\n");
      fs.writeFileSync(path.join(dir, "user.ts"),
        "import { Outbox } from './outbox';\nconst o = new Outbox();\no.count = 3;\n(o.phases as number[])[0] = 1;\no.count++;\nexport const n = o.count + o.phases[0];\n");
      const program = ts.createProgram([path.join(dir, "user.ts")], { noEmit: true, target: ts.ScriptTarget.ES2020, module: ts.ModuleKind.CommonJS, moduleResolution: ts.ModuleResolutionKind.Node10 });
      expect(outboxWrites(program, path.join(dir, "outbox.ts")).map((x) => x.replace(/^.*user\.ts/, "user.ts"))).toEqual(["user.ts:3 count", "user.ts:4 phases", "user.ts:5 count"]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** The instance fields of class `name` in `file` (declared, and constructor parameter properties), with their types. */
function fieldsOf(program: ts.Program, file: string, name: string): { name: string; type: string }[] {
  const checker = program.getTypeChecker();
  const sf = program.getSourceFiles().find((f) => path.resolve(f.fileName) === file)!;
  const cls = sf.statements.find((n): n is ts.ClassDeclaration => ts.isClassDeclaration(n) && n.name?.text === name)!;
  const out: { name: string; type: string }[] = [];
  for (const m of cls.members) {
    const isStatic = ts.canHaveModifiers(m) && (ts.getModifiers(m) ?? []).some((x) => x.kind === ts.SyntaxKind.StaticKeyword);
    if (ts.isPropertyDeclaration(m) && !isStatic) out.push({ name: m.name.getText(sf), type: checker.typeToString(checker.getTypeAtLocation(m)) });
    if (ts.isConstructorDeclaration(m)) {
      for (const prm of m.parameters) {
        if (ts.canHaveModifiers(prm) && (ts.getModifiers(prm) ?? []).length > 0) out.push({ name: prm.name.getText(sf), type: checker.typeToString(checker.getTypeAtLocation(prm)) });
      }
    }
  }
  return out;
}

describe("the client's shape", () => {
  const CLIENT = path.join(ROOT, "firmware/session/client.ts");
  const program = ts.createProgram([CLIENT], { noEmit: true, target: ts.ScriptTarget.ES2020, module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler, strict: true });
  const fields = fieldsOf(program, CLIENT, "Client");

  it("has no boolean fields: its state is State and Mode, typed", () => {
    expect(fields.filter((f) => f.type === "boolean" || f.type === "true" || f.type === "false").map((f) => f.name)).toEqual([]);
    expect(fields.find((f) => f.name === "state")?.type).toBe("State");
    expect(fields.find((f) => f.name === "mode")?.type).toBe("Mode");
  });

  it("keeps the field count its comment states (at most 31: under a Lua table's 32 slots)", () => {
    const src = fs.readFileSync(CLIENT, "utf8");
    const stated = /what else it keeps are numbers, strings and objects, never a boolean flag: (\d+) fields/.exec(src);
    expect(stated).not.toBeNull();
    expect(fields.length, fields.map((f) => f.name).join(", ")).toBe(Number(stated![1]));
    expect(fields.length).toBeLessThanOrEqual(31);
  });
});

