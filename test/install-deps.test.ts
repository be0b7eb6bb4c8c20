import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, expect, it } from "vitest";

// tools/install-deps.sh against stand-ins for dpkg-query, apt-get, sleep and systemctl (on PATH,
// in a copy of the script's folder, so neither this machine's packages nor node_modules are
// touched): a missing package is installed with apt-get waiting for dpkg's lock, and an update
// refused for the package lists' lock is tried again instead of failing the first make.

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function fakeRepo(lockFailures: number, otherError = ""): { dir: string; run: () => ReturnType<typeof spawnSync>; calls: () => string[] } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-deps-"));
  dirs.push(dir);
  const bin = path.join(dir, "bin");
  fs.mkdirSync(path.join(dir, "tools"));
  fs.mkdirSync(bin);
  fs.mkdirSync(path.join(dir, "node_modules"));
  fs.copyFileSync(path.resolve("tools/install-deps.sh"), path.join(dir, "tools/install-deps.sh"));
  // npm ci is not wanted: node_modules is newer than the lock file
  fs.writeFileSync(path.join(dir, "package-lock.json"), "{}");
  fs.writeFileSync(path.join(dir, "node_modules/.package-lock.json"), "{}");
  const past = new Date(Date.now() - 60_000);
  fs.utimesSync(path.join(dir, "package-lock.json"), past, past);
  const log = path.join(dir, "calls.log");
  const count = path.join(dir, "updates");
  const script = (name: string, body: string) => fs.writeFileSync(path.join(bin, name), `#!/usr/bin/env bash\n${body}\n`, { mode: 0o755 });
  // every package installed but socat
  script("dpkg-query", `[ "\${@: -1}" = socat ] && exit 1; printf 'install ok installed'`);
  script("apt-get", [
    `echo "apt-get $*" >> ${log}`,
    `if [[ " $* " == *" update "* ]]; then`,
    `  n=$(cat ${count} 2>/dev/null || echo 0); echo $((n + 1)) > ${count}`,
    otherError ? `  echo "${otherError}" >&2; exit 100` : "",
    `  if [ "$n" -lt ${lockFailures} ]; then echo "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 1234 (unattended-upgr)" >&2; exit 100; fi`,
    `fi`,
  ].join("\n"));
  script("sleep", `echo "sleep $*" >> ${log}`);
  script("systemctl", "exit 0");
  script("sudo", `"$@"`);
  return {
    dir,
    run: () => spawnSync("bash", [path.join(dir, "tools/install-deps.sh")], { encoding: "utf8", env: { ...process.env, PATH: `${bin}:${process.env.PATH}` }, timeout: 30000 }),
    calls: () => (fs.existsSync(log) ? fs.readFileSync(log, "utf8").trim().split("\n") : []),
  };
}

it("installs a missing package with apt-get waiting for dpkg's lock, and retries an update refused for the lists' lock", () => {
  const repo = fakeRepo(2);
  const r = repo.run();
  expect(r.status, String(r.stderr)).toBe(0);
  expect(r.stdout).toContain("deps: installing Debian packages: socat");
  expect(r.stdout).toContain("another package manager holds apt's lock; waiting for it");
  const calls = repo.calls();
  expect(calls.filter((c) => c.includes(" update "))).toHaveLength(3);
  expect(calls.filter((c) => c.startsWith("sleep"))).toHaveLength(2);
  const install = calls.find((c) => c.includes(" install "));
  expect(install).toContain("-o DPkg::Lock::Timeout=600");
  expect(install).toContain("socat");
  expect(calls.filter((c) => c.startsWith("apt-get")).every((c) => c.includes("-o DPkg::Lock::Timeout=600"))).toBe(true);
});

it("an update failing for another reason fails at once, with apt-get's message", () => {
  const repo = fakeRepo(0, "E: The repository is not signed");
  const r = repo.run();
  expect(r.status).not.toBe(0);
  expect(r.stderr).toContain("E: The repository is not signed");
  expect(repo.calls().filter((c) => c.includes(" update "))).toHaveLength(1);
  expect(repo.calls().some((c) => c.includes(" install "))).toBe(false);
});
