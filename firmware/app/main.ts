import { LineConsole, type Serial } from "../console/line";
import { port } from "../port/port";
import type { LogSink } from "../port/log";
import type { Storage } from "../port/storage";
import type { Platform } from "../session/platform";
import { elapsed } from "../sched/time";
import { settingsCommands, typingSecret } from "./commands";
import { SensorNode, type Sensor } from "./node";
import { pemCommand, readPems, type Pems } from "./pem";
import { Settings } from "./settings";

/**
 * The sensor node's start-up, one source for every target: settings from flash, then the
 * board's platform (its Wi-Fi from those settings, its log lines through the console), the
 * node, and the serial console. A target's entry gives the board's parts (AppBoard) and calls
 * startApp; nothing here knows which board it is on.
 */
export interface AppBoard {
  storage: Storage;
  /** The board's firmware has TLS (its profile). */
  tls: boolean;
  version: string;
  sensors: Sensor[];
  /** The serial line of the console. */
  serial: Serial;
  /** What to type at the REPL to take the console again (after `repl`). */
  back: string;
  reboot(this: void): void;
  /** Deep sleep for `ms`, then boot again; missing where the board cannot. */
  sleep?: (this: void, ms: number) => void;
  /** How long a waking node waits for its reading's acknowledgement before sleeping anyway (ms). */
  awakeMs?: number;
  /**
   * The platform, made once the settings are read: `wifi` is the station to join (undefined:
   * the board's saved one), `log` where its log lines go, `tls` the certificates on flash.
   */
  platform(this: void, wifi: { ssid: string; password: string } | undefined, log: LogSink, tls: Pems): Platform;
  /** Client sizes from the board profile. */
  maxPacket?: number;
  maxInflight?: number;
  outboxMessages?: number;
  offlineQueue?: number;
  minFreeHeap?: number;
}

export interface App {
  settings: Settings;
  node: SensorNode;
  console: LineConsole;
  platform: Platform;
}

const LEVELS = ["error", "warn", "info", "debug"];

/** "[  12.345] info  text": seconds since boot, then the level. */
export function logLine(ms: number, level: number, line: string): string {
  const s = `${port.ints.idiv(ms, 1000)}`;
  const frac = `${1000 + ms - port.ints.idiv(ms, 1000) * 1000}`.substring(1);
  let pad = "";
  for (let i = s.length; i < 5; i++) pad += " ";
  const name = level >= 0 && level < LEVELS.length ? LEVELS[level] : `${level}`;
  return `[${pad}${s}.${frac}] ${name}${name.length < 5 ? " " : ""} ${line}`;
}

/**
 * Starts the node. `defaults`: this board's own defaults for some settings (e.g. the broker a
 * simulator started), under what is saved.
 */
export function startApp(board: AppBoard, defaults?: { [key: string]: string }): App {
  const st = new Settings(board.storage, board.tls);
  const bad: string[] = [];
  if (defaults !== undefined) {
    for (const k in defaults) {
      const why = st.setDefault(k, defaults[k]);
      if (why !== null) bad.push(`default ${k}: ${why}`);
    }
  }
  const loaded = st.load();
  let con: LineConsole | undefined = undefined;
  let bootAt = 0;
  let clock: Platform["clock"] | undefined = undefined;
  const log: LogSink = {
    write: (level, line) => {
      if (level > levelOf(st.get("log"))) return;
      const ms = clock !== undefined ? elapsed(bootAt, clock.now()) : 0;
      const l = logLine(ms, level, line);
      if (con !== undefined) con.print(l);
      else board.serial.write(l + "\r\n");
    },
  };
  const ssid = st.get("wifi.ssid");
  const platform = board.platform(ssid.length > 0 ? { ssid, password: st.get("wifi.pass") } : undefined, log,
    board.tls ? readPems(board.storage) : {});
  clock = platform.clock;
  bootAt = clock.now();
  if (loaded !== null) log.write(1, loaded);
  for (const b of bad) log.write(1, b);
  const node = new SensorNode({
    platform, tls: board.tls, version: board.version, sensors: board.sensors, reboot: board.reboot,
    sleep: board.sleep, awakeMs: board.awakeMs, keys: () => (con !== undefined ? con.keys : 0),
    log: (line) => log.write(2, line),
    maxPacket: board.maxPacket, maxInflight: board.maxInflight, outboxMessages: board.outboxMessages,
    offlineQueue: board.offlineQueue, minFreeHeap: board.minFreeHeap,
  }, st);
  const commands = settingsCommands(st, () => log.write(2, "settings are the defaults now; reboot to use them"));
  for (const c of node.commands()) commands.push(c);
  commands.push(pemCommand(board.storage, board.tls, (fn, secret) => {
    if (con !== undefined) con.collect(fn, secret);
  }));
  con = new LineConsole(board.serial, commands, board.back, typingSecret);
  con.start();
  const problem = node.start();
  if (problem !== null) log.write(0, `${problem}; fix the setting at the console (show, set, save, reboot)`);
  return { settings: st, node, console: con, platform };
}

function levelOf(name: string): number {
  for (let i = 0; i < LEVELS.length; i++) if (LEVELS[i] === name) return i;
  return 2;
}
