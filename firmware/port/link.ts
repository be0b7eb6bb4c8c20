/**
 * The board's network link (the Wi-Fi station): whether it is up (associated, with an address),
 * and word when that changes. The client does not dial while the link is down, drops its
 * connection the moment the link goes, and dials at once when it returns, so a Wi-Fi outage
 * neither burns the reconnect backoff nor leaves the board waiting for a ping timeout.
 * Joining and rejoining the network is the firmware's (its auto-reconnect) or the adapter's.
 */
export interface Link {
  /** True when the station is up; true too when the firmware cannot tell (dialling then decides). */
  isUp(this: void): boolean;
  /** One watcher: fn(true) when the link comes up, fn(false) when it goes down. */
  watchLink(this: void, fn: (this: void, up: boolean) => void): void;
}
