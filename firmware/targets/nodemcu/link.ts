import type { Link } from "../../port/link";

/** NodeMCU's two Wi-Fi APIs: ESP8266 (eventmon, setmode) and ESP32 (sta.on, mode, start). */
interface WifiModule {
  STATION: number;
  setmode?(this: void, mode: number): number;
  mode?(this: void, mode: number): void;
  start?(this: void): void;
  eventmon?: { STA_GOT_IP: number; STA_DISCONNECTED: number; register(this: void, ev: number, fn: (this: void) => void): void };
  sta: {
    config(this: void, cfg: { ssid: string; pwd?: string; auto?: boolean }): unknown;
    connect?(this: void): void;
    getip?(this: void): string | undefined;
    status?(this: void): number;
    on?(this: void, ev: string, fn: (this: void) => void): void;
  };
}

export interface NodemcuWifiOptions {
  /** Configure the station for this network (auto-reconnect on); without it the saved config is used. */
  ssid?: string;
  pwd?: string;
}

/**
 * The Wi-Fi station as the client's Link. ESP8266: `wifi.eventmon` STA_GOT_IP /
 * STA_DISCONNECTED, `wifi.sta.getip()` for the state now. ESP32: `wifi.sta.on("got_ip" |
 * "disconnected")`. Rejoining is the firmware's (auto = true). Undefined without a wifi module.
 */
export function nodemcuLink(o: NodemcuWifiOptions): Link | undefined {
  const wifi = _G["wifi"] as WifiModule | undefined;
  if (wifi === undefined || wifi.sta === undefined) return undefined;
  // Unknown means up: dialling then decides, as without a link.
  let up = true;
  let watcher: ((this: void, up: boolean) => void) | undefined = undefined;
  const set = (v: boolean): void => {
    if (v === up) return;
    up = v;
    if (watcher !== undefined) watcher(v);
  };
  const ev = wifi.eventmon;
  if (ev !== undefined) {
    if (wifi.sta.getip !== undefined) up = wifi.sta.getip() !== undefined;
    ev.register(ev.STA_GOT_IP, () => set(true));
    ev.register(ev.STA_DISCONNECTED, () => set(false));
    if (o.ssid !== undefined && wifi.setmode !== undefined) {
      wifi.setmode(wifi.STATION);
      wifi.sta.config({ ssid: o.ssid, pwd: o.pwd, auto: true });
    }
    // ESP8266 can say now whether it has an address: read it live, so a lost event (another
    // callback registered in the one slot eventmon has) does not leave a stale state here.
    const status = wifi.sta.status;
    if (status !== undefined) {
      const STA_GOTIP = 5;
      return { isUp: () => status() === STA_GOTIP, watchLink: (fn) => { watcher = fn; } };
    }
  } else if (wifi.sta.on !== undefined) {
    wifi.sta.on("got_ip", () => set(true));
    wifi.sta.on("disconnected", () => set(false));
    if (o.ssid !== undefined && wifi.mode !== undefined && wifi.start !== undefined) {
      // started here: down until its got_ip (which then dials at once)
      up = false;
      wifi.mode(wifi.STATION);
      wifi.sta.config({ ssid: o.ssid, pwd: o.pwd, auto: true });
      wifi.start();
    }
  } else {
    return undefined;
  }
  return { isUp: () => up, watchLink: (fn) => { watcher = fn; } };
}
