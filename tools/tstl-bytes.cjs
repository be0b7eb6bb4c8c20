// typescript-to-lua plugin: on NodeMCU, `Bytes` (firmware/port/bytes.ts) is a Lua string, so
// shared code's `b[i]` on a Bytes value becomes `string.byte(b, i + 1)`. Every other index is left
// to TSTL (`t[i + 1]` on tables). `b.length` needs nothing: TSTL writes `#b`, a string's byte length.
// A write `b[i] = x` cannot reach here: Bytes is read-only in TypeScript.
const ts = require("typescript");
const tstl = require("typescript-to-lua");

/** Whether `type` is (or is a union member of) the Bytes brand: it has the `__bytes` property. */
function isBytes(type) {
  if (type.isUnion()) return type.types.every((t) => isBytes(t));
  return type.getProperty("__bytes") !== undefined;
}

module.exports = {
  visitors: {
    [ts.SyntaxKind.ElementAccessExpression]: (node, context) => {
      const type = context.checker.getTypeAtLocation(node.expression);
      if (!isBytes(type)) return context.superTransformExpression(node);
      const s = context.transformExpression(node.expression);
      const i = context.transformExpression(node.argumentExpression);
      const index = tstl.createBinaryExpression(i, tstl.createNumericLiteral(1), tstl.SyntaxKind.AdditionOperator);
      const byte = tstl.createTableIndexExpression(tstl.createIdentifier("string"), tstl.createStringLiteral("byte"));
      return tstl.createCallExpression(byte, [s, index], node);
    },
  },
};
