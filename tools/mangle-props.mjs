// Which property names the Espruino board bundles may shorten (esbuild mangleProps). On Espruino
// a property name longer than 4 characters takes a second variable slot, in every object that
// has it and on every prototype method; the sensor node's own fields and methods are shortened
// by the build so the source keeps clear names (docs/benchmarks.md says what it saves).
//
// A name is shortened only when the firmware declares it itself, as a member of a class or of an
// interface, and never anywhere that describes something outside Petrel: the TypeScript library
// (String, Uint8Array, …), an ambient declaration (`declare const E: {…}`, `declare interface`:
// the firmware's APIs), or an inline type literal (`x as { message?: string }`: data from
// outside). Names the REPL and the board profile use are kept (KEEP).
import * as path from "node:path";
import ts from "typescript";

/**
 * Kept whole: the profile keys the host simulator sets (defaults) or a profile carries. The packer
 * writes the other profile keys (maxPacket, …) under their shortened names (tools/boards.mjs).
 * The app's objects are not an API at the board's REPL (the `petrel` module is): their names are
 * shortened too, and its methods merged.
 */
const KEEP = ["defaults", "chip", "features"];

function isAmbient(node) {
  for (let n = node; n !== undefined; n = n.parent) {
    if (ts.canHaveModifiers(n) && (ts.getModifiers(n) ?? []).some((m) => m.kind === ts.SyntaxKind.DeclareKeyword)) return true;
    if (ts.isSourceFile(n)) return n.isDeclarationFile;
  }
  return false;
}

/** The names to shorten in a program built from `tsconfigFile` (the Espruino one). */
export function mangleableProps(root, tsconfigFile) {
  const cfg = ts.getParsedCommandLineOfConfigFile(path.join(root, tsconfigFile), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} });
  const program = ts.createProgram(cfg.fileNames, cfg.options);
  program.getTypeChecker(); // binds the files: parent links
  const ours = new Set();
  const outside = new Set(KEEP);
  const nameOf = (n) => (n.name !== undefined && (ts.isIdentifier(n.name) || ts.isPrivateIdentifier(n.name)) ? n.name.text : undefined);
  for (const sf of program.getSourceFiles()) {
    const lib = sf.isDeclarationFile || sf.fileName.includes("node_modules");
    const visit = (n) => {
      const isMember = ts.isPropertyDeclaration(n) || ts.isMethodDeclaration(n) || ts.isGetAccessorDeclaration(n) ||
        ts.isSetAccessorDeclaration(n) || ts.isPropertySignature(n) || ts.isMethodSignature(n);
      if (isMember) {
        const name = nameOf(n);
        if (name !== undefined) {
          const inClass = ts.isClassLike(n.parent);
          const inInterface = ts.isInterfaceDeclaration(n.parent);
          if (lib || isAmbient(n) || ts.isTypeLiteralNode(n.parent) || (!inClass && !inInterface)) outside.add(name);
          else ours.add(name);
        }
      }
      // constructor parameter properties (`constructor(private readonly p: P)`) are class members too
      if (ts.isParameter(n) && ts.isConstructorDeclaration(n.parent) && ts.isIdentifier(n.name) &&
        (ts.getModifiers(n) ?? []).some((m) => m.kind === ts.SyntaxKind.PrivateKeyword || m.kind === ts.SyntaxKind.ReadonlyKeyword ||
          m.kind === ts.SyntaxKind.PublicKeyword || m.kind === ts.SyntaxKind.ProtectedKeyword)) {
        ours.add(n.name.text);
      }
      ts.forEachChild(n, visit);
    };
    visit(sf);
  }
  return [...ours].filter((n) => !outside.has(n)).sort();
}
