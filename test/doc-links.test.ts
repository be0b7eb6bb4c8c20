import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, expect, it } from "vitest";
// @ts-expect-error: a plain .mjs module of the tools, without type declarations
import { anchors, brokenLinks, slug } from "../tools/doc-links.mjs";

// Every relative link in README.md and docs/*.md names a file that exists and, with #anchor, a
// heading of it. The checker is first shown to catch a broken file, a broken anchor and to
// accept good ones, on documents made here.

const root = path.resolve(__dirname, "..");
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

it("the link checker finds a missing file and a missing anchor, and accepts good links", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-links-"));
  dirs.push(dir);
  fs.mkdirSync(path.join(dir, "docs"));
  fs.writeFileSync(path.join(dir, "docs", "a.md"), "# A page\n\n## The `make sim` controls\n\n## Notes\n\n## Notes\n");
  fs.writeFileSync(
    path.join(dir, "README.md"),
    [
      "[ok](docs/a.md) [ok](docs/a.md#the-make-sim-controls) [ok](docs/a.md#notes-1) [ok](#top) ![img](docs)",
      "[web](https://example.com/missing) `[in code](nowhere.md)`",
      "[bad file](docs/b.md) [bad anchor](docs/a.md#no-such-heading)",
      "# Top",
      "```",
      "[fenced](nowhere.md)",
      "```",
    ].join("\n"),
  );
  const problems: string[] = brokenLinks(path.join(dir, "README.md"));
  expect(problems).toHaveLength(2);
  expect(problems[0]).toMatch(/:3: docs\/b\.md: no such file$/);
  expect(problems[1]).toMatch(/:3: docs\/a\.md#no-such-heading: no heading with that anchor/);
  expect(slug("What fits where")).toBe("what-fits-where");
  expect([...anchors("# Ending it\n## Settings, and the flash\n")]).toEqual(["ending-it", "settings-and-the-flash"]);
});

it("every relative link in README.md and docs/*.md resolves", () => {
  const files = [path.join(root, "README.md"), ...fs.readdirSync(path.join(root, "docs")).filter((f) => f.endsWith(".md")).map((f) => path.join(root, "docs", f))];
  expect(files.length).toBeGreaterThan(5);
  const problems = files.flatMap((f) => brokenLinks(f) as string[]);
  expect(problems).toEqual([]);
});

it("the README stays a two-minute read: under 12 KB, no table cell longer than 200 characters", () => {
  const text = fs.readFileSync(path.join(root, "README.md"), "utf8");
  expect(Buffer.byteLength(text)).toBeLessThan(12 * 1024);
  const long = text
    .split("\n")
    .filter((l) => l.startsWith("|"))
    .flatMap((l) => l.split(" | "))
    .filter((c) => c.length > 200);
  expect(long).toEqual([]);
});
