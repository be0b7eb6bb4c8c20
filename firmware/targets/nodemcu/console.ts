import { LineConsole, commandTable, type Command, type Serial } from "../../console/line";

/**
 * The serial console on NodeMCU (the module petrel_console): uart.on("data", "\r", fn, 0) takes
 * the console UART's input from the Lua interpreter (run_input off); uart.on("data") gives it
 * back. The interpreter does not echo while it does not run the input: the console echoes.
 */
interface UartModule {
  on(this: void, ev: string, delim?: string, fn?: (this: void, data: string) => void, run?: number): void;
  write(this: void, id: number, s: string): void;
}

export function nodemcuSerial(): Serial {
  const uart = _G["uart"] as UartModule;
  return {
    take: (chars) => {
      uart.on("data", "\r", chars, 0);
    },
    release: () => {
      uart.on("data");
    },
    write: (s) => {
      uart.write(0, s);
    },
  };
}

/** A console on UART 0; `petrel_console()` at the Lua prompt takes the line again. */
export function serialConsole(this: void, commands: Command[]): LineConsole {
  const c = new LineConsole(nodemcuSerial(), commandTable(commands), "petrel_console()");
  _G["petrel_console"] = () => {
    c.start();
  };
  return c;
}

export { LineConsole };
