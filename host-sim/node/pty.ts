/**
 * A pseudo-terminal for a simulated board's serial console, so `make console PORT=<path>` and
 * `serialport` talk to the simulator as to a USB board: socat makes the pty (raw, no echo) and
 * links it at `link`; what a client writes there comes to `onData`, and `write` sends to it.
 * A client closing the pty does not end it; `close` does (and removes the link). Output nobody
 * reads is dropped past 64 KB.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";

export interface Pty {
  readonly path: string;
  write(s: string): void;
  close(): void;
}

export async function openPty(link: string, onData: (s: string) => void): Promise<Pty> {
  fs.rmSync(link, { force: true });
  let child: ChildProcess | undefined;
  let closed = false;
  let starts = 0;
  const start = () => {
    starts++;
    const c = spawn("socat", [`pty,raw,echo=0,link=${link}`, "stdio"], { stdio: ["pipe", "pipe", "ignore"] });
    child = c;
    c.stdout!.on("data", (d: Buffer) => onData(d.toString("latin1")));
    c.stdin!.on("error", () => {});
    // socat outlives a client closing the pty; should it end anyway, a new one takes the link
    // (a few times at most: a socat that cannot start is not retried for ever)
    c.on("exit", () => {
      if (!closed && starts < 5) start();
    });
  };
  start();
  for (let waited = 0; !fs.existsSync(link); waited += 20) {
    if (waited >= 5000) throw new Error(`socat made no pseudo-terminal at ${link} within 5 s (is socat installed? make deps installs it)`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    path: link,
    write: (s) => {
      // nobody reading the pty: its buffer fills and socat stops taking more; output is then
      // dropped, as a USB serial line drops what no one reads, instead of piling up here
      const w = child?.stdin;
      if (w !== undefined && w !== null && w.writableLength < 65536) w.write(s, "latin1");
    },
    close: () => {
      closed = true;
      child?.kill("SIGKILL");
      fs.rmSync(link, { force: true });
    },
  };
}
