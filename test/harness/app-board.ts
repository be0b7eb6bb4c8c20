import { spawn, type ChildProcess } from "node:child_process";
import { appCommand, type AppBoardSpec, type AppTarget } from "../../host-sim/app-boards";
import { until } from "./wait";

/**
 * A sensor-node board process (host-sim/app-boards.ts) driven through its serial console: lines
 * typed on stdin, everything it writes kept. `reply(line)` types a command and returns the
 * console lines it printed before the next prompt. Waits are bounded.
 */
export class AppBoard {
  out = "";
  exit: number | null | undefined = undefined;
  private child: ChildProcess;

  constructor(readonly target: AppTarget, readonly spec: AppBoardSpec) {
    this.child = this.start();
  }

  private start(): ChildProcess {
    const c = appCommand(this.target, this.spec);
    const child = spawn(c.exe, c.args, { cwd: this.spec.flash, env: { ...process.env, ...c.env }, stdio: ["pipe", "pipe", "pipe"] });
    this.exit = undefined;
    child.stdout!.on("data", (d: Buffer) => (this.out += d.toString("latin1")));
    child.stderr!.on("data", (d: Buffer) => (this.out += d.toString("latin1")));
    child.on("exit", (code) => (this.exit = code));
    child.stdin!.on("error", () => {});
    return child;
  }

  /** The output as lines: carriage returns and prompts dropped. */
  lines(from = 0): string[] {
    return this.out.slice(from).split("\n").map((l) => l.replace(/\r/g, "").replace(/^(petrel> )+/, "")).filter((l) => l.length > 0);
  }

  async waitFor(what: string | RegExp, ms = 15000, from = 0): Promise<string> {
    const hit = () => this.lines(from).find((l) => (typeof what === "string" ? l.includes(what) : what.test(l)));
    await until(`${this.target}: ${what}`, () => hit() !== undefined || this.exit !== undefined, ms).catch((e) => {
      throw new Error(`${e.message}\n--- board output ---\n${this.out.slice(-3000)}`);
    });
    const h = hit();
    if (h === undefined) throw new Error(`${this.target}: exited (${this.exit}) before ${what}\n--- board output ---\n${this.out.slice(-3000)}`);
    return h;
  }

  type(line: string): void {
    this.child.stdin!.write(line + "\n");
  }

  /**
   * Types a command; the lines it printed (log lines left out). An empty line follows it: its
   * prompt ends the reply, whether the board writes its output as it goes or a line at a time.
   */
  async reply(line: string, ms = 15000): Promise<string[]> {
    // from the start of the line the prompt is on (a board that writes as it goes has sent it)
    const from = this.out.lastIndexOf("\n") + 1;
    const first = line.split(" ")[0];
    this.type(line);
    this.type("");
    let got: string[] | undefined;
    const parse = () => {
      const ls = this.out.slice(from).split("\n").map((l) => l.replace(/\r/g, ""));
      const echo = ls.findIndex((l) => l.startsWith(`petrel> ${first}`));
      if (echo < 0) return false;
      const end = ls.findIndex((l, k) => k > echo && l.replace(/ +$/, "") === "petrel>");
      if (end < 0) return false;
      got = ls.slice(echo + 1, end).filter((l) => l.length > 0 && !/^\[ *\d+\.\d{3}\] /.test(l));
      return true;
    };
    await until(`${this.target}: the reply to ${line}`, () => parse() || this.exit !== undefined, ms).catch((e) => {
      throw new Error(`${e.message}\n--- board output ---\n${this.out.slice(-3000)}`);
    });
    if (got === undefined) throw new Error(`${this.target}: exited (${this.exit}) before answering ${line}\n--- board output ---\n${this.out.slice(-3000)}`);
    return got;
  }

  /** Waits for the process to end by itself (a reboot); its exit status. */
  async ended(ms = 15000): Promise<number | null> {
    await until(`${this.target} to end`, () => this.exit !== undefined, ms);
    return this.exit as number | null;
  }

  /** Powers the board on again over the same flash. */
  powerOn(): void {
    this.out = "";
    this.child = this.start();
  }

  kill(): void {
    this.child.kill("SIGKILL");
  }
}
