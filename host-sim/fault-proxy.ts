/**
 * A loopback TCP proxy that injects faults between a client and a broker, for tests and the
 * simulator. It listens on an ephemeral 127.0.0.1 port and forwards each accepted connection to
 * one target; at any moment a test can:
 * - `reset()`   abort every current connection (RST to the client, upstream closed);
 * - `blackhole` drop every byte both ways, or one way, while the sockets stay open (a half-open link);
 * - `split(n)`  forward in pieces of n bytes, one write each, a setImmediate between them;
 * - `delay(ms)` hold each chunk ms before forwarding it (order kept);
 * - `jitter(ms)` add 0..ms more to each chunk's delay, at random (order kept);
 * - `bandwidth(bps)` let no more than bps bytes per second through each direction of a connection;
 * - `hold`      keep every byte and close both ways while on, release them in order when off;
 * - `refuse`    close new connections at once, or stop listening (connection refused).
 *
 * Faults apply to current and new connections alike. Counters tell what was forwarded. Every
 * wait is bounded or ends with its socket; `close()` leaves no socket, timer or listener behind.
 *
 * Directions: `toBroker` is client → target, `toClient` is target → client.
 */
import * as net from "node:net";

export interface FaultProxyOptions {
  /** Where each accepted connection is forwarded (a broker). */
  target: { host: string; port: number };
  /** Address to listen on: 127.0.0.1 unless told. */
  host?: string;
  /** Port to listen on: an ephemeral one unless told. */
  port?: number;
  /** Bound on connecting to the target; the client is reset when it is exceeded. 5000 unless told. */
  connectTimeoutMs?: number;
  /** The jitter's random source (0 ≤ x < 1): a seeded one repeats a run. Math.random unless told. */
  random?: () => number;
}

/** One counter per direction. */
export interface PerDirection {
  /** Client → target. */
  toBroker: number;
  /** Target → client. */
  toClient: number;
}

export type RefuseMode =
  /** Accept, then abort with a RST at once: the client's connect may succeed, then it is reset. */
  | "reset"
  /** Stop listening: connects fail with ECONNREFUSED. Listening again reuses the same port. */
  | "unlisten";

export interface FaultProxy {
  readonly host: string;
  readonly port: number;
  /** Connections accepted and forwarded, in total (refused ones are not counted here). */
  readonly connections: number;
  /** Connections accepted then closed at once by `refuse(true, "reset")`. */
  readonly refused: number;
  /** Bytes forwarded (written to the other side). */
  readonly bytes: Readonly<PerDirection>;
  /** Writes made to forward those bytes (`split(1)` makes one per byte). */
  readonly writes: Readonly<PerDirection>;
  /** Bytes dropped by the black hole. */
  readonly dropped: Readonly<PerDirection>;
  /** Connections currently open (either side still open). */
  open(): number;
  /** Aborts every current connection: RST on the client side, the upstream closed. */
  reset(): void;
  /**
   * While on, bytes both ways are dropped (so is a close, held until off); the sockets stay open.
   * New connections are accepted, connected upstream and black-holed too. With `dir`, only that
   * direction (an uplink that fades while the downlink works: the peer's acknowledgements lost).
   */
  blackhole(on: boolean, dir?: keyof PerDirection): void;
  /** Forwards in pieces of n bytes, each its own write, a setImmediate between; 0 = off. */
  split(n: number): void;
  /** Holds each chunk `ms` after its arrival before forwarding it, order kept; 0 = off. */
  delay(ms: number): void;
  /** Adds a random 0..ms to each chunk's delay (order kept, so a late chunk holds back the next); 0 = off. */
  jitter(ms: number): void;
  /** Caps each direction of each connection at `bytesPerSecond` (a chunk leaves once its share of time has passed); 0 = off. */
  bandwidth(bytesPerSecond: number): void;
  /**
   * While on, nothing is forwarded either way (bytes and closes queue up, the sockets stay open);
   * off releases everything in order. Unlike the black hole, nothing is lost.
   */
  hold(on: boolean): void;
  /**
   * While on, new connections fail (see `RefuseMode`, "reset" unless told); current ones go on.
   * Resolves once listening again when turned off in "unlisten" mode; at once otherwise.
   */
  refuse(on: boolean, mode?: RefuseMode): Promise<void>;
  /** Stops listening and destroys every connection and timer. Idempotent. */
  close(): Promise<void>;
}

type Item =
  | { kind: "data"; buf: Buffer; due: number }
  | { kind: "end" }
  | { kind: "reset" };

const HIGH_WATER = 1 << 20;
const LOW_WATER = 1 << 18;

/** Aborts a socket with a RST (or just destroys it when it has no TCP handle any more). */
function rst(s: net.Socket): void {
  if (s.destroyed) return;
  try {
    s.resetAndDestroy();
  } catch {
    s.destroy();
  }
}

/** One direction of one connection: a queue, and a pump that forwards it under the faults. */
class Pipe {
  private readonly queue: Item[] = [];
  private offset = 0; // into queue[0] when it is data being split
  private queued = 0; // bytes in the queue
  private lastDue = 0;
  private pausedSrc = false;
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private drainWait: (() => void) | null = null;
  private stopped = false;

  constructor(
    private readonly proxy: LoopbackProxy,
    private readonly dir: keyof PerDirection,
    private readonly src: net.Socket,
    private readonly dst: net.Socket,
    private readonly dstReady: () => boolean,
  ) {}

  push(item: Item): void {
    if (this.stopped) return;
    if (item.kind === "data") {
      if (this.proxy.isBlackholed(this.dir)) {
        this.proxy.count("dropped", this.dir, item.buf.length);
        return;
      }
      item.due = Math.max(this.lastDue, item.due);
      // a capped link: this chunk leaves when the bytes before it and itself have had their time
      const bps = this.proxy.bandwidthCap();
      if (bps > 0) item.due = Math.max(item.due, this.lastDue) + Math.ceil((item.buf.length * 1000) / bps);
      this.lastDue = item.due;
      this.queued += item.buf.length;
      if (this.queued > HIGH_WATER && !this.pausedSrc) {
        this.pausedSrc = true;
        this.src.pause();
      }
    }
    this.queue.push(item);
    this.pump();
  }

  private busy(): boolean {
    return this.timer !== null || this.immediate !== null || this.drainWait !== null;
  }

  private shift(): void {
    const head = this.queue.shift();
    this.offset = 0;
    if (head?.kind === "data") {
      this.queued -= head.buf.length;
      if (this.pausedSrc && this.queued < LOW_WATER) {
        this.pausedSrc = false;
        if (!this.src.destroyed) this.src.resume();
      }
    }
  }

  pump(): void {
    if (this.stopped || this.busy()) return;
    for (;;) {
      const head = this.queue[0];
      if (head === undefined) return;
      if (this.dst.destroyed || this.dst.writableEnded) {
        // Nothing more can reach that side.
        while (this.queue.length > 0) this.shift();
        return;
      }
      if (!this.dstReady()) return; // the upstream's connect pumps again
      if (this.proxy.isHeld()) return; // hold(false) pumps again
      if (head.kind === "data") {
        if (this.proxy.isBlackholed(this.dir)) {
          this.proxy.count("dropped", this.dir, head.buf.length - this.offset);
          this.shift();
          continue;
        }
        const wait = head.due - Date.now();
        if (wait > 0) {
          this.timer = setTimeout(() => {
            this.timer = null;
            this.pump();
          }, wait);
          return;
        }
        const n = this.proxy.splitSize();
        const end = n > 0 ? Math.min(head.buf.length, this.offset + n) : head.buf.length;
        const piece = head.buf.subarray(this.offset, end);
        this.offset = end;
        if (this.offset >= head.buf.length) this.shift();
        this.proxy.count("bytes", this.dir, piece.length);
        this.proxy.count("writes", this.dir, 1);
        const flushed = this.dst.write(piece);
        if (!flushed) {
          const onDrain = (): void => {
            this.drainWait = null;
            this.dst.off("drain", onDrain);
            if (n > 0) this.later();
            else this.pump();
          };
          this.drainWait = onDrain;
          this.dst.on("drain", onDrain);
          return;
        }
        if (n > 0 && this.queue.length > 0) {
          this.later();
          return;
        }
        continue;
      }
      // A close is held, not dropped, while the black hole is on: it is delivered after.
      if (this.proxy.isBlackholed(this.dir)) return;
      this.shift();
      if (head.kind === "end") this.dst.end();
      else rst(this.dst);
    }
  }

  private later(): void {
    this.immediate = setImmediate(() => {
      this.immediate = null;
      this.pump();
    });
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    if (this.drainWait) this.dst.off("drain", this.drainWait);
    this.timer = null;
    this.immediate = null;
    this.drainWait = null;
    this.queue.length = 0;
    this.queued = 0;
  }
}

/** One accepted connection and its upstream. */
class Link {
  private connected = false;
  private closedSides = 0;
  private connectTimer: NodeJS.Timeout | null;
  private done = false;
  readonly up: Pipe;
  readonly down: Pipe;
  readonly upstream: net.Socket;

  constructor(private readonly proxy: LoopbackProxy, readonly client: net.Socket, target: { host: string; port: number }, connectTimeoutMs: number) {
    this.upstream = net.connect({ host: target.host, port: target.port, allowHalfOpen: true });
    const upstream = this.upstream;
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    this.up = new Pipe(proxy, "toBroker", client, upstream, () => this.connected);
    this.down = new Pipe(proxy, "toClient", upstream, client, () => true);

    this.connectTimer = setTimeout(() => {
      this.connectTimer = null;
      if (!this.connected) this.abort();
    }, connectTimeoutMs);
    upstream.once("connect", () => {
      this.connected = true;
      this.clearConnectTimer();
      this.up.pump();
    });

    const now = (): number => Date.now() + proxy.delayMs() + proxy.jitterMs();
    client.on("data", (b: Buffer) => this.up.push({ kind: "data", buf: b, due: now() }));
    upstream.on("data", (b: Buffer) => this.down.push({ kind: "data", buf: b, due: now() }));
    client.on("end", () => this.up.push({ kind: "end" }));
    upstream.on("end", () => this.down.push({ kind: "end" }));
    client.on("error", () => {});
    upstream.on("error", () => {});
    client.on("close", (hadError) => {
      if (hadError) this.up.push({ kind: "reset" });
      this.sideClosed();
    });
    upstream.on("close", (hadError) => {
      if (!this.connected) {
        // The target refused or vanished before connecting: the client is reset.
        this.abort();
        return;
      }
      if (hadError) {
        this.down.push({ kind: "reset" });
      }
      this.sideClosed();
    });
  }

  private clearConnectTimer(): void {
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.connectTimer = null;
  }

  private sideClosed(): void {
    this.closedSides++;
    if (this.closedSides >= 2) this.finish();
  }

  /** RST to the client, the upstream closed; forgotten at once. */
  abort(): void {
    rst(this.client);
    this.upstream.destroy();
    this.finish();
  }

  /** Both sides destroyed; forgotten at once. */
  destroy(): void {
    this.client.destroy();
    this.upstream.destroy();
    this.finish();
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.clearConnectTimer();
    this.up.stop();
    this.down.stop();
    this.proxy.forget(this);
  }

  pump(): void {
    this.up.pump();
    this.down.pump();
  }
}

class LoopbackProxy implements FaultProxy {
  readonly host: string;
  port = 0;
  connections = 0;
  refused = 0;
  readonly bytes: PerDirection = { toBroker: 0, toClient: 0 };
  readonly writes: PerDirection = { toBroker: 0, toClient: 0 };
  readonly dropped: PerDirection = { toBroker: 0, toClient: 0 };

  private server: net.Server | null = null;
  private readonly links = new Set<Link>();
  private readonly refusedSockets = new Set<net.Socket>();
  private readonly hole: PerDirection = { toBroker: 0, toClient: 0 };
  private splitN = 0;
  private delayN = 0;
  private jitterN = 0;
  private bps = 0;
  private held = false;
  private readonly random: () => number;
  private refusing: RefuseMode | null = null;
  private closing: Promise<void> | null = null;
  private readonly target: { host: string; port: number };
  private readonly connectTimeoutMs: number;

  constructor(opts: FaultProxyOptions) {
    this.host = opts.host ?? "127.0.0.1";
    this.port = opts.port ?? 0;
    this.target = { host: opts.target.host, port: opts.target.port };
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 5000;
    this.random = opts.random ?? Math.random;
  }

  listen(): Promise<void> {
    const server = net.createServer({ allowHalfOpen: true }, (s) => this.accept(s));
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, this.host, () => {
        server.off("error", reject);
        server.on("error", () => {});
        this.port = (server.address() as net.AddressInfo).port;
        if (this.closing) server.close(); // closed while listening again
        else this.server = server;
        resolve();
      });
    });
  }

  private accept(s: net.Socket): void {
    if (this.closing) {
      s.destroy();
      return;
    }
    if (this.refusing) {
      this.refused++;
      this.refusedSockets.add(s);
      s.on("error", () => {});
      s.once("close", () => this.refusedSockets.delete(s));
      rst(s);
      return;
    }
    this.connections++;
    this.links.add(new Link(this, s, this.target, this.connectTimeoutMs));
  }

  isBlackholed(dir: keyof PerDirection): boolean {
    return this.hole[dir] !== 0;
  }
  splitSize(): number {
    return this.splitN;
  }
  delayMs(): number {
    return this.delayN;
  }
  jitterMs(): number {
    return this.jitterN > 0 ? Math.floor(this.random() * this.jitterN) : 0;
  }
  bandwidthCap(): number {
    return this.bps;
  }
  isHeld(): boolean {
    return this.held;
  }
  count(what: "bytes" | "writes" | "dropped", dir: keyof PerDirection, n: number): void {
    this[what][dir] += n;
  }
  forget(link: Link): void {
    this.links.delete(link);
  }

  open(): number {
    return this.links.size;
  }

  reset(): void {
    for (const l of [...this.links]) l.abort();
  }

  blackhole(on: boolean, dir?: keyof PerDirection): void {
    if (dir === undefined || dir === "toBroker") this.hole.toBroker = on ? 1 : 0;
    if (dir === undefined || dir === "toClient") this.hole.toClient = on ? 1 : 0;
    if (!on) for (const l of this.links) l.pump();
  }

  split(n: number): void {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`split: ${n} is not a byte count`);
    this.splitN = n;
  }

  delay(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`delay: ${ms} is not a duration`);
    this.delayN = ms;
  }

  jitter(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`jitter: ${ms} is not a duration`);
    this.jitterN = ms;
  }

  bandwidth(bytesPerSecond: number): void {
    if (!Number.isFinite(bytesPerSecond) || bytesPerSecond < 0) throw new RangeError(`bandwidth: ${bytesPerSecond} is not a rate`);
    this.bps = bytesPerSecond;
  }

  hold(on: boolean): void {
    this.held = on;
    if (!on) for (const l of this.links) l.pump();
  }

  async refuse(on: boolean, mode: RefuseMode = "reset"): Promise<void> {
    if (this.closing) return;
    if (on) {
      this.refusing = mode;
      if (mode === "unlisten" && this.server) {
        // Closing the listening handle stops accepting at once; accepted sockets go on.
        this.server.close();
        this.server = null;
      }
      return;
    }
    this.refusing = null;
    if (!this.server) await this.listen();
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    const server = this.server;
    this.server = null;
    for (const l of [...this.links]) l.destroy();
    for (const s of this.refusedSockets) s.destroy();
    this.refusedSockets.clear();
    this.closing = new Promise<void>((resolve) => {
      if (!server) return resolve();
      const bound = setTimeout(resolve, 2000);
      server.close(() => {
        clearTimeout(bound);
        resolve();
      });
    });
    return this.closing;
  }
}

/** A proxy listening on 127.0.0.1 (an ephemeral port unless told), forwarding to `target`. */
export async function startFaultProxy(opts: FaultProxyOptions): Promise<FaultProxy> {
  const p = new LoopbackProxy(opts);
  await p.listen();
  return p;
}
