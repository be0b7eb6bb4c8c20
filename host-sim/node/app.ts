/**
 * The sensor node (firmware/app/main.ts) as the host simulator's Node board: the same startApp
 * the Espruino and NodeMCU entries call, given the host's parts: sockets, a table resolver,
 * a directory as flash, simulated sensors (temperature, Wi-Fi RSSI, free heap), and a serial
 * line (the terminal, a pipe or a pseudo-terminal).
 */
import "../../firmware/targets/node/index";
import "../../firmware/targets/node/app";
import type { Serial } from "../../firmware/console/line";
import { startApp, type App } from "../../firmware/app/main";
import { LOG_DEBUG } from "../../firmware/port/log";
import { nodePlatform } from "../../firmware/targets/node/platform";
import { fileStorage } from "../../firmware/targets/node/storage";

export interface NodeAppOptions {
  /** The board's flash (settings, outbox): a directory. */
  flash: string;
  chipId: string;
  serial: Serial;
  reboot(): void;
  /** Deep sleep: the board is off for `ms`, then boots again (the caller's to do). */
  sleep?(ms: number): void;
  awakeMs?: number;
  version?: string;
  /** Host name → address for the stub resolver. */
  hosts?: Record<string, string>;
  /** Source address of the board's connections to a broker on this machine (a fleet spreads over 127.0.0.x). */
  localAddress?: string;
  /** Settings defaults for this board (e.g. the simulator's broker), before the saved ones. */
  defaults?: Record<string, string>;
}

export function nodeApp(o: NodeAppOptions): App {
  let heap = 30000;
  let t = 0;
  const storage = fileStorage(o.flash);
  const random = (n: number) => Math.floor(Math.random() * n);
  return startApp({
    storage,
    tls: true,
    version: o.version ?? "0.1.0-sim",
    sensors: [
      { name: "temp", read: () => Math.round((21 + 2 * Math.sin(t++ / 20) + random(10) / 50) * 10) / 10 },
      { name: "rssi", read: () => -55 - random(12) },
      { name: "heap", read: () => (heap = 30000 - random(800)) },
    ],
    serial: o.serial,
    back: "Enter",
    reboot: o.reboot,
    sleep: o.sleep,
    awakeMs: o.awakeMs,
    platform: (_wifi, log, tls) => nodePlatform({ storage, chipId: o.chipId, hosts: o.hosts, freeHeap: () => heap, tls, localAddress: o.localAddress,
      logLevel: LOG_DEBUG, log: (level, line) => log.writeLog(level, line) }),
  }, o.defaults);
}
