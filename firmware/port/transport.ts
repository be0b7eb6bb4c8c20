import type { Bytes, Wire } from "./bytes";

/**
 * A byte stream to one broker (TCP, or TLS where the board has it), as the session sees it.
 *
 * Promises of every implementation:
 * - `open` starts connecting and returns at once; the outcome comes later through exactly one
 *   of `onOpen` or `onClose` (a refused connection that a platform reports synchronously, as
 *   Espruino on ESP32 does, is still reported through `onClose`, never thrown).
 * - `write` queues one whole write and returns false when the transport cannot take more now;
 *   `onWritable` follows when it can. Writes are delivered in order, never interleaved or split
 *   into reordered pieces. On NodeMCU each send waits for the previous `sent` event inside the
 *   adapter: the session never sees that.
 * - `onData` delivers chunks as they arrive, split anywhere.
 * - `close` is idempotent, never throws, and is followed by one `onClose` if the transport was
 *   open or opening. After `onClose` nothing else is called.
 * - No callback is ever called from inside `open`, `write` or `close`: always later, from the
 *   platform's event loop, so the session's state is consistent when it runs.
 */
export interface TransportEvents {
  onOpen(this: void): void;
  onData(this: void, chunk: Bytes): void;
  onWritable(this: void): void;
  /** `reason` is an error code ("refused", "reset", "timeout", "tls", "closed", …), "" for a close we asked for. */
  onClose(this: void, reason: string): void;
}

export interface Transport {
  /**
   * `host` is the address to dial (the resolver's answer); `name` is the host name as configured,
   * which a TLS transport verifies the certificate against (defaults to `host`).
   */
  openStream(this: void, host: string, port: number, tls: boolean, events: TransportEvents, name?: string): void;
  sendWire(this: void, data: Wire): boolean;
  hangUp(this: void): void;
}

/**
 * Host names to addresses. The firmware never resolves names by itself, so tests never send a
 * DNS query off the machine: the host simulator's resolver answers from a table. `resolve`
 * answers later through `done` with an address, or with "" and an error code ("not-found",
 * "no-network"); it never throws and never calls `done` from inside `resolve`.
 */
export interface Resolver {
  lookUp(this: void, host: string, done: (this: void, address: string, error: string) => void): void;
}
