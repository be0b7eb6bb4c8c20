import "../firmware/targets/node/index";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { typingSecret } from "../firmware/app/settings";
import { logLine, type App } from "../firmware/app/main";
import { LineConsole, type Serial } from "../firmware/console/line";
import { freePort } from "../host-sim/mosquitto";
import { nodeApp } from "../host-sim/node/app";
import { until } from "./harness/wait";

// The app's start-up pieces on the host: log lines (timestamped, levelled, filtered by the log
// setting), and a log line arriving while a line is being typed (drawn above the prompt, the
// typed line drawn again under it, a secret still masked).

const apps: App[] = [];
const dirs: string[] = [];
afterAll(() => {
  for (const a of apps) a.node.client?.end();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function serial(): Serial & { out: string[]; typed(s: string): void } {
  let chars: ((s: string) => void) | undefined;
  const out: string[] = [];
  return { out, take: (fn) => (chars = fn), release: () => {}, write: (s) => out.push(s), typed: (s) => chars?.(s) };
}

describe("log lines", () => {
  it("carry seconds since boot to the millisecond and the level", () => {
    expect(logLine(12345, 2, "node: up")).toBe("[   12.345] info  node: up");
    expect(logLine(5, 0, "boom")).toBe("[    0.005] error boom");
    expect(logLine(100000007, 3, "x")).toBe("[100000.007] debug x");
    expect(logLine(1000, 1, "careful")).toBe("[    1.000] warn  careful");
  });

  it("arriving while a line is typed: above the prompt, the typed line (secret masked) drawn again", () => {
    const s = serial();
    const con = new LineConsole(s, () => {}, "x", typingSecret);
    con.start();
    s.typed("set mqtt.pass hunter2");
    s.out.length = 0;
    con.print("[    1.000] info  node: connected");
    const drawn = s.out.join("");
    expect(drawn.startsWith("\r[    1.000] info  node: connected")).toBe(true);
    expect(drawn.endsWith("\r\npetrel> set mqtt.pass *******")).toBe(true);
    expect(drawn).not.toContain("hunter2");
    // a short log line is padded to cover the longer typed line under it
    s.out.length = 0;
    con.print("hi");
    expect(s.out.join("")).toMatch(/^\rhi {27}\r\npetrel> set mqtt\.pass \*{7}$/);
  });

  it("the log setting filters what reaches the console", async () => {
    const flash = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-app-main-"));
    dirs.push(flash);
    const s = serial();
    const port = await freePort();
    const app = nodeApp({ flash, chipId: "m1", serial: s, reboot: () => {}, defaults: { brokers: `127.0.0.1:${port}`, log: "debug" } });
    apps.push(app);
    await until("a debug line", () => s.out.some((l) => l.includes("] debug mqtt: dialling 127.0.0.1:")), 5000);
    s.typed("set log error\r");
    const mark = s.out.length;
    await until("the next refused attempt", () => app.node.client!.stats.attempts >= 3, 15000);
    expect(s.out.slice(mark).some((l) => / (debug|info ) /.test(l))).toBe(false);
  }, 20000);
});
