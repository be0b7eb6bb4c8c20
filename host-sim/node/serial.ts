import type { Serial } from "../../firmware/console/line";

/**
 * The simulated board's serial line on the host: the terminal (stdin in raw mode when it is a
 * TTY, so keys arrive one by one as on a UART; lines otherwise) and stdout. Node has no REPL to
 * hand the line to: `release` says so and Enter takes the console back (`back`). Ctrl-D leaves
 * (a SIGINT to this process); with `ctrlCQuits` Ctrl-C does too (the simulator's terminal, where
 * the user expects Ctrl-C to end the program), else Ctrl-C reaches the console, which drops the
 * line being typed as on a board.
 */
export function terminalSerial(input: NodeJS.ReadStream, output: NodeJS.WriteStream, back: () => void, ctrlCQuits?: boolean): Serial {
  const quits = (s: string) => s.includes("\x04") || (ctrlCQuits === true && s.includes("\x03"));
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
        // Ctrl-D (raw mode has no end of file), or Ctrl-C where it quits: the user leaves
        if (quits(s)) {
          process.kill(process.pid, "SIGINT");
          return;
        }
        chars(s);
      });
    },
    release: () => {
      output.write("(the simulator has no REPL of its own: press Enter to take the console back)\r\n");
      listen((d) => {
        const s = d.toString("latin1");
        if (quits(s)) process.kill(process.pid, "SIGINT");
        else if (/[\r\n]/.test(s)) back();
      });
    },
    write: (s) => {
      output.write(s);
    },
  };
}
