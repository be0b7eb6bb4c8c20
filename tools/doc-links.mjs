// Relative links in Markdown files: each must name a file or directory that exists and, with a
// #anchor, a heading of that Markdown file (GitHub's slugs: lower case, punctuation dropped,
// spaces to hyphens, a repeated heading gets -1, -2, ...). Links to other sites are not checked.
import * as fs from "node:fs";
import * as path from "node:path";

/** GitHub's anchor for a heading's text. */
export function slug(heading) {
  return heading
    .trim()
    .toLowerCase()
    .replace(/`/g, "")
    .replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-");
}

/** The anchors of a Markdown text's headings (outside code fences). */
export function anchors(text) {
  const seen = new Map();
  const out = new Set();
  let fence = false;
  for (const line of text.split("\n")) {
    if (/^\s*```/.test(line)) fence = !fence;
    if (fence) continue;
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (m === null) continue;
    const base = slug(m[1]);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** The links of a Markdown text: [text](target) and ![alt](target), outside code. */
export function links(text) {
  const out = [];
  let fence = false;
  text.split("\n").forEach((line, i) => {
    if (/^\s*```/.test(line)) fence = !fence;
    if (fence) return;
    const bare = line.replace(/`[^`]*`/g, "");
    for (const m of bare.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) out.push({ line: i + 1, target: m[1] });
  });
  return out;
}

/** Problems with the relative links of `file`: "file:line: target: why". */
export function brokenLinks(file) {
  const text = fs.readFileSync(file, "utf8");
  const problems = [];
  for (const { line, target } of links(text)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // http:, https:, mailto:
    const [p, anchor] = target.split("#", 2);
    const dest = p === "" ? file : path.resolve(path.dirname(file), decodeURIComponent(p));
    const where = `${path.relative(process.cwd(), file)}:${line}: ${target}`;
    if (!fs.existsSync(dest)) {
      problems.push(`${where}: no such file`);
      continue;
    }
    if (anchor !== undefined && anchor !== "") {
      if (!/\.md$/i.test(dest)) continue;
      if (!anchors(fs.readFileSync(dest, "utf8")).has(anchor)) problems.push(`${where}: no heading with that anchor in ${path.relative(process.cwd(), dest)}`);
    }
  }
  return problems;
}
