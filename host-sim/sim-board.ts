/**
 * `make sim TARGET=espruino|lua51|lua53|fengari`: the sensor node built for that runtime, as a
 * board process (host-sim/app-boards.ts), against a mosquitto this starts (or BROKER=host:port),
 * its serial console on this terminal. A reboot powers the board on again over the same flash;
 * a deep sleep powers it on after the sleep. Ctrl-C or Ctrl-D ends it (a second Ctrl-C forces it).
 *
 * The stand-ins read their console a line at a time (as a UART with line-oriented input), so
 * this terminal edits the line (Backspace) and echoes it, secrets as "*", and sends it
 * at Enter; the board's own echo of that line is not shown again. The console is also a
 * pseudo-terminal, <flash>/tty: `make console PORT=…` or serialport talk to it as to a USB board
 * (lines go to the board at Enter, and it echoes them).
 *
 *   SIM_STORE   the board's flash (default dist/sim-board-<target>)
 *   SIM_INTERVAL, SIM_ID   the board's default interval (s) and client id
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { typingSecret } from "../firmware/app/settings";
import { APP_TARGETS, REBOOT_STATUS, appCommand, type AppTarget } from "./app-boards";
import { startBroker, type Broker } from "./mosquitto";
import { openPty, type Pty } from "./node/pty";

const SLEEP_STATUS = 5;

function say(line: string): void {
  process.stdout.write(`${line}\r\n`);
}

async function main(): Promise<void> {
  const target = (process.env.TARGET ?? "node") as AppTarget;
  if (!APP_TARGETS.includes(target)) {
    say(`sim: TARGET=${target} is not a runtime here; it takes one of ${APP_TARGETS.join(", ")}`);
    process.exit(2);
  }
  const flash = path.resolve(process.env.SIM_STORE ?? `dist/sim-board-${target}`);
  fs.mkdirSync(flash, { recursive: true });
  let broker: Broker | undefined;
  let brokerAt = process.env.BROKER;
  if (brokerAt === undefined) {
    broker = await startBroker({ extra: ["autosave_on_changes true"] });
    brokerAt = `${broker.host}:${broker.port}`;
    say(`sim: started mosquitto on ${brokerAt} (its log: ${path.join(broker.dir, "mosquitto.log")})`);
  }
  const id = process.env.SIM_ID ?? `sim-${target}`;
  const defaults = { brokers: brokerAt, interval: process.env.SIM_INTERVAL ?? "5", "client.id": id };
  say(`sim: a ${target} board, its flash ${flash}; watch it with: mosquitto_sub -h ${brokerAt.replace(/:\d+$/, "")} -p ${brokerAt.replace(/^.*:/, "")} -t 'petrel/${id}/#' -v`);

  let child: ChildProcess | undefined;
  let ptyLine = "";
  const pty: Pty = await openPty(path.join(flash, "tty"), (s) => {
    for (const ch of s) {
      if (ch === "\r" || ch === "\n") {
        if (ch === "\n" && ptyLine.length === 0) continue;
        child?.stdin?.write(ptyLine + "\n");
        ptyLine = "";
      } else if (ch === "\b" || ch === "\x7f") ptyLine = ptyLine.slice(0, -1);
      else if (ch >= " ") ptyLine += ch;
    }
  });
  say(`sim: its console is also on ${pty.path}: make console PORT=${pty.path}`);
  say("sim: Ctrl-C (or Ctrl-D) ends it; type help for the console's commands");
  let ending = false;
  /** The line sent last: the board's echo of it is dropped (this terminal showed it already). */
  let sentEcho: string | undefined;
  let rest = "";
  const power = () => {
    const c = appCommand(target, { flash, chipId: id, defaults });
    child = spawn(c.exe, c.args, { cwd: flash, env: { ...process.env, ...c.env }, stdio: ["pipe", "pipe", "inherit"] });
    child.stdout!.on("data", (d: Buffer) => {
      pty.write(d.toString("latin1").replace(/\r?\n/g, "\r\n"));
      rest += d.toString("latin1");
      const parts = rest.split("\n");
      rest = parts.pop() as string;
      for (const p of parts) {
        const l = p.replace(/\r/g, "");
        if (sentEcho !== undefined && l.replace(/^(petrel> )+/, "") === sentEcho) {
          sentEcho = undefined;
          continue;
        }
        if (/^(petrel> )+$/.test(l)) continue; // a prompt: this terminal draws its own
        process.stdout.write(`\r${l.replace(/^(petrel> )+/, "")}\r\n`);
      }
      process.stdout.write(`\rpetrel> ${shown}`);
    });
    child.on("exit", (code) => {
      if (ending) return;
      if (code === REBOOT_STATUS) {
        say("sim: the board rebooted; powering it on again");
        power();
      } else if (code === SLEEP_STATUS) {
        const m = /SLEEP (\d+)/.exec(rest);
        const ms = m !== null ? Number(m[1]) : 5000;
        say(`sim: the board is in deep sleep for ${ms / 1000} s`);
        setTimeout(power, ms);
      } else {
        finish(code ?? 1, `sim: the board stopped (status ${code})`);
      }
      rest = "";
    });
  };

  let line = "";
  let shown = "";
  const finish = (code: number, why: string) => {
    if (ending) {
      // a second Ctrl-C (or signal) while the broker closes: kill it, remove its directory, go
      say("sim: stopping at once");
      if (broker !== undefined) {
        void broker.kill();
        fs.rmSync(broker.dir, { recursive: true, force: true });
      }
      process.exit(code);
    }
    ending = true;
    say(why);
    if (process.stdin.isTTY) process.stdin.setRawMode(false);
    child?.kill("SIGKILL");
    pty.close();
    void (broker?.close() ?? Promise.resolve()).then(() => process.exit(code));
  };
  if (process.stdin.isTTY) process.stdin.setRawMode(true);
  process.stdin.on("data", (d: Buffer) => {
    for (const ch of d.toString("latin1")) {
      const k = ch.charCodeAt(0);
      if (k === 4) return finish(0, "sim: stopping");
      if (k === 3 && process.stdin.isTTY) {
        return finish(0, "sim: stopping");
      } else if (k === 13 || k === 10) {
        process.stdout.write("\r\n");
        sentEcho = shown;
        child?.stdin?.write(line + "\n");
        line = "";
        shown = "";
      } else if (k === 8 || k === 127) {
        if (line.length > 0) {
          line = line.slice(0, -1);
          shown = shown.slice(0, -1);
          process.stdout.write("\b \b");
        }
      } else if (k >= 32) {
        const c = typingSecret(line) ? "*" : ch;
        line += ch;
        shown += c;
        process.stdout.write(c);
      }
    }
  });
  process.stdin.on("end", () => finish(0, "sim: the terminal closed"));
  process.on("SIGINT", () => finish(0, "sim: stopping"));
  process.on("SIGTERM", () => finish(0, "sim: stopping (SIGTERM)"));
  process.on("SIGHUP", () => finish(0, "sim: stopping (the terminal hung up)"));
  process.stdin.on("error", () => finish(0, "sim: the terminal closed"));
  process.stdout.on("error", () => {});
  power();
}

main().catch((e) => {
  say(`sim: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
