import type { Serial } from "../../firmware/console/line";

/**
 * The simulated board's serial line on the host: the terminal (stdin in raw mode when it is a
 * TTY, so keys arrive one by one as on a UART; lines otherwise) and stdout. Node has no REPL to
 * hand the line to: `release` says so and Enter takes the console back (`back`).
 */
export function terminalSerial(input: NodeJS.ReadStream, output: NodeJS.WriteStream, back: () => void): Serial {
  let listener: ((d: Buffer) => void) | undefined;
  const listen = (fn: (d: Buffer) => void) => {
    if (listener !== undefined) input.off("data", listener);
    listener = fn;
    input.on("data", fn);
  };
  return {
    take: (chars) => {
      if (input.isTTY) input.setRawMode(true);
      input.resume();
      listen((d) => {
        const s = d.toString("latin1");
        // Ctrl-D (raw mode has no end of file): the user leaves the simulator
        if (s.includes("\x04")) process.kill(process.pid, "SIGINT");
        chars(s);
      });
    },
    release: () => {
      output.write("(the simulator has no REPL of its own: press Enter to take the console back)\r\n");
      listen((d) => {
        if (/[\r\n]/.test(d.toString("latin1"))) back();
      });
    },
    write: (s) => {
      output.write(s);
    },
  };
}
