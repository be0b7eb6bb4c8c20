import type { Serial } from "../../console/line";

/**
 * The serial line of the console on Espruino: taken by moving the REPL to LoopbackA and
 * listening on the device the REPL was on (Serial1, USB, Telnet); handing it back moves the REPL
 * home again.
 */
declare const global: { [name: string]: unknown };
declare const E: { getConsole(): string | undefined };

declare interface Device {
  on(ev: string, fn: (d: string) => void): void;
  removeAllListeners(ev: string): void;
  setConsole(): void;
  write(s: string): void;
}

/** The serial line the REPL is on now (Serial1 if the REPL is already away on LoopbackA). */
export function espruinoSerial(): Serial {
  const name = E.getConsole();
  const dev = global[name !== undefined && name !== "LoopbackA" ? name : "Serial1"] as Device;
  const loop = global["LoopbackA"] as Device;
  return {
    take: (chars) => {
      loop.setConsole();
      dev.on("data", chars);
    },
    release: () => {
      dev.removeAllListeners("data");
      dev.setConsole();
    },
    write: (s) => {
      dev.write(s);
    },
  };
}
