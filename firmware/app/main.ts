import { LineConsole, type Serial } from "../console/line";
import { port } from "../port/port";
import type { LogSink } from "../port/log";
import type { Storage } from "../port/storage";
import type { Platform } from "../port/platform";
import { elapsed } from "../sched/time";
import type { CommandContext } from "./commands";
import { lazy } from "./lazy";
import { runCommand, SensorNode, type Sensor } from "./node";
import { Settings, typingSecret } from "./settings";

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
  platform(this: void, wifi: { ssid: string; password: string } | undefined, log: LogSink, tls: { ca?: string; cert?: string; key?: string }): Platform;
  /** Client sizes from the board profile. */
  maxPacket?: number;
  maxInflight?: number;
  outboxMessages?: number;
  offlineQueue?: number;
  minFreeHeap?: number;
}

/** The running app: what its commands reach (CommandContext) and what a host or the REPL may look at. */
export interface App extends CommandContext {
  settings: Settings;
  node: SensorNode;
  console: LineConsole;
  platform: Platform;
}

/** "[  12.345] info  text": seconds since boot, then the level. */
export function logLine(ms: number, level: number, line: string): string {
  const s = `${port.ints.idiv(ms, 1000)}`;
  const frac = `${1000 + port.ints.imod(ms, 1000)}`.substring(1);
  let pad = "";
  for (let i = s.length; i < 5; i++) pad += " ";
  const name = level === 0 ? "error" : level === 1 ? "warn " : level === 2 ? "info " : level === 3 ? "debug" : `${level}`;
  return `[${pad}${s}.${frac}] ${name} ${line}`;
}

function levelOf(name: string): number {
  return name === "error" ? 0 : name === "warn" ? 1 : name === "debug" ? 3 : 2;
}

/** The running app with what its callbacks need: the serial line, and when it booted. */
interface Running extends App {
  serial: Serial;
  bootAt: number;
  log: LogSink;
}

/*
 * The app's long-lived callbacks are made by the functions below, each keeping only the app: a
 * closure made inside startApp would keep every local of that call for good (on Espruino, all of
 * them), the board's description and the settings module's leftovers among them.
 */

/** The log sink: lines at or above the `log` setting, to the console (or the serial line before it exists). */
function appLog(app: Running): LogSink {
  return {
    writeLog: (level, line) => {
      if (level > levelOf(app.settings.get("log"))) return;
      const p = app.platform;
      const l = logLine(p !== undefined ? elapsed(app.bootAt, p.clock.clockNow()) : 0, level, line);
      if (app.console !== undefined) app.console.print(l);
      else app.serial.write(l + "\r\n");
    },
  };
}

/** A console line: the commands module runs it. */
function appLine(app: Running): (this: void, line: string, say: (this: void, line: string) => void) => void {
  return (line, say) => {
    runCommand(app, line, say, false);
  };
}

/** Keys typed at the console so far. */
function appKeys(app: Running): (this: void) => number {
  return () => (app.console !== undefined ? app.console.keys : 0);
}

/** An info line of the node's. */
function appInfo(app: Running): (this: void, line: string) => void {
  return (line) => app.log.writeLog(2, line);
}

/**
 * Starts the node. `defaults`: this board's own defaults for some settings (e.g. the broker a
 * simulator started), under what is saved.
 */
export function startApp(board: AppBoard, defaults?: { [key: string]: string }): App {
  const st = new Settings(board.storage, board.tls);
  const bad: string[] = [];
  let cfg = lazy("config");
  if (defaults !== undefined) {
    for (const k in defaults) {
      const why = cfg.setSetting(st, k, defaults[k], true);
      if (why !== null) bad.push(`default ${k}: ${why}`);
    }
  }
  const loaded = cfg.loadSettings(st);
  const ssid = st.get("wifi.ssid");
  const tls = board.tls ? cfg.readPems(st) : {};
  cfg = undefined as unknown as typeof cfg; // let the module go: the running node does not need it
  const app = { settings: st, serial: board.serial, bootAt: 0 } as Running;
  const log = appLog(app);
  app.log = log;
  const platform = board.platform(ssid.length > 0 ? { ssid, password: st.get("wifi.pass") } : undefined, log, tls);
  app.bootAt = platform.clock.clockNow();
  app.platform = platform;
  if (loaded !== null) log.writeLog(1, loaded);
  for (const b of bad) log.writeLog(1, b);
  const node = new SensorNode({
    platform, tls: board.tls, version: board.version, sensors: board.sensors, reboot: board.reboot,
    sleep: board.sleep, awakeMs: board.awakeMs, keys: appKeys(app), log: appInfo(app),
    maxPacket: board.maxPacket, maxInflight: board.maxInflight, outboxMessages: board.outboxMessages,
    offlineQueue: board.offlineQueue, minFreeHeap: board.minFreeHeap,
  }, st);
  app.node = node;
  app.afterReset = afterReset(app);
  app.console = new LineConsole(board.serial, appLine(app), board.back, typingSecret);
  app.console.start();
  const problem = node.launch();
  if (problem !== null) log.writeLog(0, `${problem}; fix the setting at the console (show, set, save, reboot)`);
  return app;
}

/** Said after factory-reset. */
function afterReset(app: Running): (this: void) => void {
  return () => app.log.writeLog(2, "settings are the defaults now; reboot to use them");
}
