import type { Link } from "../../port/link";

declare const global: { [name: string]: unknown };
declare function setTimeout(fn: () => void, ms: number): number;

declare interface WifiModule {
  on(event: string, fn: (details?: unknown) => void): void;
  connect(ssid: string, options: { password?: string }, done: (err?: unknown) => void): void;
  getIP?(): { ip?: string } | undefined;
}

export interface EspruinoWifiOptions {
  /** Join this network now, and again after each drop. Without it the saved network is used. */
  ssid?: string;
  password?: string;
  /** Ms between rejoin attempts while the station is down [10000]. */
  rejoinMs?: number;
}

/**
 * The Wi-Fi station as the client's Link, over Espruino's `Wifi` module (ESP8266, ESP32):
 * `connected` / `disconnected` events, and a rejoin every `rejoinMs` while down when an SSID is
 * given. Undefined where the firmware has no Wifi module (the Linux build, wired boards).
 */
export function espruinoLink(o: EspruinoWifiOptions): Link | undefined {
  let w: WifiModule;
  try {
    w = (global["require"] as (n: string) => WifiModule)("Wifi");
  } catch (e) {
    return undefined;
  }
  // Unknown means up: dialling then decides, as without a link.
  let up = true;
  const ip = w.getIP !== undefined ? w.getIP() : undefined;
  if (ip !== undefined && typeof ip.ip === "string") up = ip.ip !== "0.0.0.0";
  let watcher: ((this: void, up: boolean) => void) | undefined = undefined;
  let rejoining = false;
  const ssid = o.ssid;
  let rejoin = (): void => {};
  const join = (): void => {
    // a failed join may report no 'disconnected': its callback schedules the next try too
    if (ssid !== undefined) w.connect(ssid, { password: o.password }, (err) => { if (err !== undefined && err !== null) rejoin(); });
  };
  rejoin = (): void => {
    if (ssid === undefined || rejoining) return;
    rejoining = true;
    setTimeout(() => {
      rejoining = false;
      if (!up) {
        join();
        rejoin();
      }
    }, o.rejoinMs !== undefined ? o.rejoinMs : 10000);
  };
  const set = (v: boolean): void => {
    if (v === up) return;
    up = v;
    if (watcher !== undefined) watcher(v);
  };
  w.on("connected", () => set(true));
  w.on("disconnected", () => {
    set(false);
    rejoin();
  });
  if (ssid !== undefined) join();
  return { up: () => up, watch: (fn) => { watcher = fn; } };
}
