/**
 * An Espruino board's REPL on a loopback TCP port, over the Espruino stand-in: what the
 * `espruino` CLI (and the Web IDE) talk to on a real board's console. Each line is evaluated in
 * the stand-in context and answered as the interpreter does: echoed (unless it starts with
 * \x10, "echo off"), its printed output, then the ">" prompt. Ctrl-C (\x03) clears the line;
 * "ESC [ n d" line-number hints the tools send are dropped. Host-only.
 *
 *   const r = await startRepl({ storageDir }); … `espruino -p tcp://127.0.0.1:${r.port}` …; r.close()
 */
import * as net from "node:net";
import { createContext, disposeContext, runScript } from "./standin";

export interface Repl {
  port: number;
  /** Everything the REPL printed (its console), for assertions. */
  output(): string;
  close(): Promise<void>;
}

/**
 * `garble`: a line-noise fault for tests; the n-th line (counting from 1) that carries base64
 * data (`atob("…")`) has one character of it changed, so the length written stays right and
 * only a checksum can tell.
 */
export async function startRepl(opts: { storageDir: string; esp32?: boolean; garble?: number }): Promise<Repl> {
  let dataLines = 0;
  let sock: net.Socket | undefined;
  let all = "";
  const write = (s: string) => {
    all += s;
    sock?.write(s, "latin1");
  };
  const ctx = createContext({ print: (l) => write(`${l}\r\n`), storageDir: opts.storageDir, esp32: opts.esp32 });
  const server = net.createServer((s) => {
    sock?.destroy();
    sock = s;
    s.setNoDelay(true);
    let buf = "";
    s.on("data", (d: Buffer) => {
      buf += d.toString("latin1").replace(/\x1b\[\d*d/g, "");
      let i: number;
      while ((i = buf.search(/[\r\n]/)) >= 0) {
        let line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        const cut = line.lastIndexOf("\x03");
        if (cut >= 0) line = line.slice(cut + 1);
        const echo = !line.startsWith("\x10");
        if (!echo) line = line.slice(1);
        if (line.trim().length === 0) {
          write("\r\n>");
          continue;
        }
        if (echo) write(`${line}\r\n`);
        const at = line.indexOf('atob("');
        if (at >= 0 && ++dataLines === opts.garble) {
          const i = at + 6;
          line = line.slice(0, i) + (line[i] === "Q" ? "R" : "Q") + line.slice(i + 1);
        }
        try {
          const r = runScript(ctx, line);
          if (echo && r !== undefined) write(`=${String(r)}\r\n`);
        } catch (e) {
          write(`Uncaught ${String(e)}\r\n`);
        }
        write(">");
      }
    });
    s.on("error", () => {});
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    output: () => all,
    close: () => new Promise((r) => {
      sock?.destroy();
      disposeContext(ctx);
      server.close(() => r());
    }),
  };
}
