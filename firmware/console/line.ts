/**
 * The serial console, line by line, the same on every target. `start` takes the board's serial
 * line from the REPL (each target's `Serial` adapter), echoes what is typed, and hands each line
 * to a dispatch function (the sensor node's loads its commands only then: see app/lazy.ts); the
 * built-in `repl` command hands the line back to the REPL, so a board running the app can still
 * be flashed and debugged. `commandTable` makes a dispatch function from a list of commands.
 *
 * Typing: Enter (CR, LF or CR LF) ends a line; Backspace/DEL erases; Ctrl-C drops the line.
 * A line over LINE_MAX characters is refused whole (nothing runs); it never grows a buffer.
 */
export interface Serial {
  /** Takes the line: every character typed goes to `chars`, none to the REPL. */
  take(this: void, chars: (this: void, s: string) => void): void;
  /** Hands the line back to the REPL. */
  release(this: void): void;
  /** Writes to the serial line (whoever holds the REPL). */
  write(this: void, s: string): void;
}

/** Runs one command line; `say` prints a line of its answer. Never throws (errors are said). */
export type Dispatch = (this: void, line: string, say: (this: void, l: string) => void) => void;

export interface Command {
  name: string;
  /** For `help`: the arguments and what it does, e.g. "KEY VALUE  changes a setting". */
  help: string;
  /** `args`: the words after the name; `rest`: the text after the name as typed (from its first non-space). */
  run(this: void, args: string[], say: (this: void, line: string) => void, rest: string): void;
}

export const LINE_MAX = 200;
const PROMPT = "petrel> ";
const CR = 13;
const LF = 10;
const BS = 8;
const DEL = 127;
const CTRL_C = 3;

export class LineConsole {
  private line = "";
  /** The line as echoed (secrets as "*"), for redrawing it under a log line. */
  private shown = "";
  /** These are 0/1, not booleans: on Espruino a boolean value takes a variable slot of its own, a small number none. */
  private running = 0;
  private tooLong = 0;
  private lastCr = 0;
  private active = 0;

  /**
   * `back`: what the user types at the REPL to take the console again, for the `repl` message.
   * `hide`: given the line typed so far, whether the next character is echoed as "*" (a secret
   * being typed: its characters never go back out on the serial line).
   */
  constructor(private readonly serial: Serial, private readonly dispatch: Dispatch, private readonly back: string,
    private readonly hide?: (this: void, typed: string) => boolean) {}

  /** Takes the serial line (again, after `repl`); does nothing while it holds it. */
  start(): void {
    // made before the branch: Espruino must not skip an arrow using `this` (tools/guard)
    const chars = (s: string) => {
      this.feed(s);
    };
    if (this.active === 1) return;
    this.active = 1;
    this.line = "";
    this.shown = "";
    this.tooLong = 0;
    this.serial.take(chars);
    this.say("console: type help for the commands, repl to hand the line back to the REPL");
    this.serial.write(PROMPT);
  }

  /** Whether the console holds the line. */
  holds(): boolean {
    return this.active === 1;
  }

  /** Characters typed so far (a node about to sleep stays awake while someone types). */
  keys = 0;
  /** Lines go here instead of running as commands, until it returns true (pasted text). */
  private collector: ((this: void, line: string) => boolean) | undefined = undefined;
  private collectSecret = 0;

  /**
   * The lines typed next go to `fn`, not to the commands, until it returns true (a PEM being
   * pasted); `secret`: they are echoed as "*". Ctrl-C ends it (fn gets no more lines).
   */
  collect(fn: (this: void, line: string) => boolean, secret: boolean): void {
    this.collector = fn;
    this.collectSecret = secret ? 1 : 0;
  }

  /** Characters typed (from the adapter). */
  feed(s: string): void {
    this.keys += s.length;
    for (let i = 0; i < s.length && this.active === 1; i++) {
      // character codes: no control characters in the built source (a raw Ctrl-C in a bundle
      // typed at a REPL would interrupt it)
      const k = s.charCodeAt(i);
      const cr = this.lastCr === 1;
      this.lastCr = k === CR ? 1 : 0;
      if (k === CR || k === LF) {
        if (k === LF && cr) continue; // CR LF is one Enter
        this.serial.write("\r\n");
        this.enter();
      } else if (k === BS || k === DEL) {
        if (this.line.length > 0 && this.tooLong === 0) {
          this.line = this.line.substring(0, this.line.length - 1);
          this.shown = this.shown.substring(0, this.shown.length - 1);
          this.serial.write("\b \b");
        }
      } else if (k === CTRL_C) {
        this.collector = undefined;
        this.line = "";
        this.shown = "";
        this.tooLong = 0;
        this.serial.write("^C\r\n" + PROMPT);
      } else if (k >= 32) {
        if (this.line.length >= LINE_MAX) {
          this.tooLong = 1;
        } else {
          const c = s.charAt(i);
          const masked = this.collector !== undefined ? this.collectSecret === 1 : this.hide !== undefined && this.hide(this.line);
          this.line += c;
          this.shown += masked ? "*" : c;
          this.serial.write(masked ? "*" : c);
        }
      }
    }
  }

  private say(line: string): void {
    this.serial.write(line + "\r\n");
  }

  /**
   * A line from the program (a log line) while the console holds the serial line: it goes above
   * the prompt, and the prompt and what was typed so far (secrets still masked) are drawn again
   * under it. Without the console, it is simply written.
   */
  print(line: string): void {
    if (this.active === 0 || this.running === 1) {
      this.say(line);
      return;
    }
    let pad = "";
    for (let i = line.length; i < PROMPT.length + this.shown.length; i++) pad += " ";
    this.serial.write("\r" + line + pad + "\r\n" + PROMPT + this.shown);
  }

  private enter(): void {
    const line = this.line;
    const tooLong = this.tooLong === 1;
    this.line = "";
    this.shown = "";
    this.tooLong = 0;
    this.running = 1;
    const collector = this.collector;
    if (tooLong) {
      this.collector = undefined;
      this.say(`error: the line is over ${LINE_MAX} characters; nothing was run. Fix: type a shorter line`);
    } else if (collector !== undefined) {
      if (collector(line)) this.collector = undefined;
    } else {
      this.run(words(line), line);
    }
    this.running = 0;
    if (this.active === 1) this.serial.write(PROMPT);
  }

  private run(args: string[], line: string): void {
    if (args.length === 0) return;
    if (args[0] === "repl") {
      this.say(`console: the serial line is the REPL's now; ${this.back} (or a reset) brings the console back`);
      this.active = 0;
      this.serial.release();
      return;
    }
    // `self`, not `this`: see the guard's arrow-this-skipped rule
    const self = this;
    this.dispatch(line, (l) => self.say(l));
    if (args[0] === "help") this.say(`repl  hands the serial line back to the REPL (${this.back} takes it again)`);
  }
}

/** A dispatch function over a list of commands: `help` lists them (then the console adds `repl`). */
export function commandTable(commands: Command[]): Dispatch {
  return (line, say) => {
    const args = words(line);
    if (args[0] === "help") {
      say("help  lists the commands");
      for (const c of commands) say(`${c.name} ${c.help}`);
      return;
    }
    runCommand(commands, args, line, say);
  };
}

/**
 * Runs one command line (`args`: its words) against `commands` (the console's, or a remote
 * command topic's):
 * an unknown name and a command that throws are answered through `say`, never raised.
 */
export function runCommand(commands: Command[], args: string[], line: string, say: (this: void, l: string) => void): void {
  if (args.length === 0) return;
  const name = args[0];
  for (const c of commands) {
    if (c.name === name) {
      const rest: string[] = [];
      for (let i = 1; i < args.length; i++) rest.push(args[i]);
      try {
        c.run(rest, say, afterWord(line));
      } catch (e) {
        say(`error: ${name} failed: ${String(e)}`);
      }
      return;
    }
  }
  say(`error: unknown command "${name}"; type help for the list`);
}

/** The line after its first word, from the next non-space character. */
export function afterWord(line: string): string {
  let i = 0;
  while (i < line.length && (line.charAt(i) === " " || line.charAt(i) === "\t")) i++;
  while (i < line.length && line.charAt(i) !== " " && line.charAt(i) !== "\t") i++;
  while (i < line.length && (line.charAt(i) === " " || line.charAt(i) === "\t")) i++;
  return line.substring(i);
}

/** The space-separated words of a line. */
export function words(line: string): string[] {
  const out: string[] = [];
  let w = "";
  for (let i = 0; i < line.length; i++) {
    const c = line.charAt(i);
    if (c === " " || c === "\t") {
      if (w.length > 0) out.push(w);
      w = "";
    } else {
      w += c;
    }
  }
  if (w.length > 0) out.push(w);
  return out;
}
