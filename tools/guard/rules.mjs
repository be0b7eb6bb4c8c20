// The dialect rules: what a target cannot run, why, and what to write instead.
// Sources: ../shared/platforms.md, measured on Espruino 2v29, NodeMCU and TSTL 1.37.

export const RULES = {
  // Espruino 2v29
  "default-param": ["Espruino has no default parameters", "test for undefined in the body"],
  destructuring: ["Espruino has no destructuring", "read the fields one by one"],
  "spread-rest": ["Espruino has no spread or rest syntax", "pass arrays, loop explicitly"],
  "extends-error": ["`class X extends Error` breaks instanceof on Espruino and Error objects crash NodeMCU 5.1", "return {code, message} values"],
  "let-closure": ["a closure capturing a `for (let …)` variable sees only its last value on Espruino", "capture a copy made by a helper function call"],
  async: ["Espruino has no async/await", "use callbacks or Promise.then"],
  generator: ["Espruino has no generators", "use an explicit iterator object"],
  "promise-finally": ["Espruino has no Promise.prototype.finally", "call the cleanup in both then and catch"],
  "optional-chain": ["Espruino has no `?.`", "test for undefined explicitly"],
  exponent: ["Espruino has no `**`", "multiply, or use a helper"],
  "string-search": ["Espruino 2v29's String indexOf, includes and replace also match a needle whose first characters end the string (\"abct\".indexOf(\"tx\") is 3, \"abct\".replace(\"tx\", \"Q\") is \"abcQ\"; measured)", "search with find() from port/text.ts, or with a one-character literal"],
  "length-assign": ["Espruino refuses an assignment to `length` (\"Assignment to a constant\", measured on 2v29: an array cannot be truncated that way)", "assign a new array, or splice"],
  "computed-key": ["Espruino has no computed property keys", "assign obj[key] = value after creating the object"],
  label: ["labels are refused by Espruino and TSTL", "use a flag or a function with return"],
  "tagged-template": ["Espruino has no tagged templates", "call the function with a string"],
  "missing-global": ["this global does not exist on Espruino (Map, Set, WeakMap, Symbol, Proxy, Reflect, TextEncoder…)", "use plain objects and arrays"],
  "missing-builtin": ["this built-in is missing on Espruino (Array.from/of, Uint8Array.from, Number.isInteger, Object.freeze)", "write the loop or check by hand"],
  "prototype-lookup": ["`X.prototype.method` is undefined on Espruino", "use an instance ([].slice.call) or a helper"],
  "error-class": ["Espruino has only plain Error instances; NodeMCU 5.1 crashes on `new Error()`", "report errors as {code, message} values"],
  "class-self-name": ["Espruino does not bind a named class expression's own name inside its body (`var A=class B{m(){return new B}}`: B is undefined)", "refer to the class from outside it (a module-level function), or use `this` in a static method"],
  "arrow-this-skipped": ["an arrow function using `this` where Espruino 2v29 skips code token by token (the right of && || ??, a ?: branch, an unbraced if/else or loop body, a switch case; and always the body of an expression-bodied arrow, parsed without running when that arrow is made) crashes it when that code is not run (ASSERT in jsvObjectSetChild; measured). Braced blocks are skipped safely, but the minifier removes braces", "create the arrow before the branch (`const f = () => this.x(); if (c) use(f)`), or capture `const self = this` and use self in the arrow"],
  hoisting: ["Espruino does not hoist functions: this runs before the function is declared", "move the declaration above its first use"],
  // typescript-to-lua / NodeMCU
  bitwise: ["TS bitwise operators do not compile portably to Lua 5.1/5.3", "use port.ints (band, bor, bxor, lshift, rshift)"],
  "typed-array": ["typed arrays compile for Lua without a warning and crash at run time", "use Bytes from port.bytes (alloc)"],
  regex: ["TSTL refuses regex literals", "scan the string with charCodeAt"],
  bigint: ["BigInt exists on no target", "use numbers below 2^31"],
  "float-math": ["`/` and Math.floor/ceil/round/trunc are inexact above 2^24 on NodeMCU's single-precision Lua", "use port.ints.idiv / imod (or `// dialect-allow float-math: <why>` for true fractions)"],
  "non-ascii": ["a character outside ASCII in a text the firmware keeps: the Espruino minifier may write it as one Latin-1 byte, NodeMCU keeps its UTF-8 bytes, so the board prints different bytes on each", "write it in ASCII (\"section 3.3\" for \"§3.3\", \"...\" for \"…\")"],
  throw: ["firmware never throws: exceptions cost an Error object and a pcall", "return an error code or {code, message}"],
  truthiness: ["0 and \"\" are true in Lua: this test means something else on NodeMCU", "compare explicitly (x !== 0, s !== \"\", v !== undefined)"],
  "host-global": ["this global is not on every target (JSON, Date, console, timers, Promise, require, Buffer, process…)", "take it from the port"],
  arguments: ["`arguments` does not compile to Lua", "declare the parameters"],
  // built Lua
  "lua51-syntax": ["Lua 5.1 (NodeMCU ESP8266) cannot parse this", "keep to Lua 5.1 syntax: no goto, //, or bitwise operators"],
  "lua-goto": ["Lua 5.1 has no goto (TSTL emits it for `continue` on 5.2+ targets)", "build with luaTarget universal"],
  "lua-idiv": ["Lua 5.1 has no `//`", "use port.ints.idiv"],
  "lua-bitop": ["Lua 5.1 has no bitwise operators", "use port.ints"],
  "lua-locals": ["more than 50 active locals in one Lua function: NodeMCU refuses to load it", "split the module or function"],
  "lua-upvalues": ["more than 60 upvalues in one Lua function: Lua refuses to load it", "group values in a table"],
  "lua-int-literal": ["an integer literal above 2^31-1 is a float on NodeMCU's 32-bit Lua", "keep constants within 31 bits"],
  "js-syntax": ["the bundle does not parse", "see the parser message"],
};

/** What Espruino 2v29 lacks (measured), and the error classes no target should see. */
export const ESPRUINO_MISSING_GLOBALS = new Set(["Map", "Set", "WeakMap", "WeakSet", "Symbol", "Proxy", "Reflect",
  "TextEncoder", "TextDecoder", "WeakRef", "FinalizationRegistry"]);
export const MISSING_BUILTINS = { Array: ["from", "of"], Uint8Array: ["from", "of"], Number: ["isInteger", "isSafeInteger"], Object: ["freeze"] };
export const ERROR_CLASSES = new Set(["Error", "TypeError", "RangeError", "SyntaxError", "ReferenceError", "EvalError", "URIError", "AggregateError"]);

/** Rule groups. */
export const ESPRUINO = ["default-param", "destructuring", "spread-rest", "extends-error", "let-closure", "async",
  "generator", "promise-finally", "optional-chain", "exponent", "length-assign", "string-search", "computed-key", "label", "tagged-template",
  "missing-global", "missing-builtin", "prototype-lookup", "error-class", "hoisting", "class-self-name", "arrow-this-skipped"];
export const LUA = ["bitwise", "typed-array", "regex", "label", "bigint", "extends-error", "error-class", "truthiness", "arguments"];
export const SHARED_ONLY = ["float-math", "throw", "host-global", "non-ascii"];

/** Which rules apply to a source file, by where it lives. */
export function rulesFor(rel) {
  const p = rel.split("\\").join("/");
  const set = (...groups) => new Set(groups.flat());
  if (p.startsWith("firmware/targets/node/") || p === "test/probe/entry_node.ts") return set();
  if (p.startsWith("firmware/targets/js/") || p.startsWith("firmware/targets/espruino/") || p === "test/probe/entry_espruino.ts") {
    return set(ESPRUINO);
  }
  if (p.startsWith("firmware/targets/nodemcu/") || p === "test/probe/entry_nodemcu.ts") return set(LUA);
  if (p.startsWith("firmware/") || p.startsWith("test/probe/")) return set(ESPRUINO, LUA, SHARED_ONLY);
  return set();
}

export function format(v) {
  const [why, fix] = RULES[v.rule] ?? ["", ""];
  return `${v.file}:${v.line}:${v.col} ${v.rule}: ${v.detail ? v.detail + ": " : ""}${why}; fix: ${fix}`;
}
