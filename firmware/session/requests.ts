import { PacketType } from "../codec/constants";
import { encodeSubscribe, encodeUnsubscribe } from "../codec/encode";
import { codecErrorMessage, codecErrorName } from "../codec/errors";
import type { Bytes } from "../port/bytes";
import type { PetrelError } from "../port/log";
import { fail } from "./errors";

/** Called with the granted QoS per filter (SUBSCRIBE; 128 = refused) or nothing (UNSUBSCRIBE). */
export type RequestDone = (this: void, err: PetrelError | undefined, granted: number[] | undefined) => void;


/**
 * SUBSCRIBE and UNSUBSCRIBE requests waiting for SUBACK / UNSUBACK, in order. A request has a
 * packet id only while it is sent on the current connection; after a reconnect every request is
 * sent again with a new id (the broker may not have seen it). Bounded by maxRequests for the
 * program's requests; restored subscriptions after a session loss are added on top.
 */
export class Requests {
  count = 0;
  readonly kinds: number[] = [];
  readonly filters: string[][] = [];
  readonly qos: number[][] = [];
  readonly sizes: number[] = [];
  /** Packet id while sent on this connection, else 0. */
  readonly ids: number[] = [];
  readonly dones: (RequestDone | undefined)[] = [];
  /** The program's requests (restored subscriptions are the client's own and do not count). */
  private own = 0;
  private readonly owned: boolean[] = [];

  constructor(private readonly max: number) {}

  /**
   * Validates a request by encoding it into `scratch` and queues a copy of its filters. Returns
   * an error value when nothing was queued.
   */
  add(kind: number, filters: string[], qos: number[] | undefined, count: number,
    done: RequestDone | undefined, scratch: Bytes, cap: number): PetrelError | undefined {
    if (this.own >= this.max) {
      return fail("too-many-requests", `${this.own} subscribe/unsubscribe requests already wait for the broker; fix: wait for their callbacks, or raise maxRequests`);
    }
    const n = kind === PacketType.Subscribe
      ? encodeSubscribe(scratch, 0, cap, 1, filters, qos as number[], count)
      : encodeUnsubscribe(scratch, 0, cap, 1, filters, count);
    if (n < 0) {
      if (-n === 1) return fail("message-too-large", `the request does not fit in maxPacket (${cap} bytes); fix: split it, or raise maxPacket`);
      return fail(codecErrorName(n), codecErrorMessage(n));
    }
    const f: string[] = [];
    const q: number[] = [];
    for (let i = 0; i < count; i++) {
      f[i] = filters[i];
      q[i] = qos !== undefined ? qos[i] : 0;
    }
    this.push(kind, f, q, count, done);
    this.owned[this.count - 1] = true;
    this.own = this.own + 1;
    return undefined;
  }

  private push(kind: number, f: string[], q: number[], count: number, done: RequestDone | undefined): void {
    const k = this.count;
    this.kinds[k] = kind;
    this.filters[k] = f;
    this.qos[k] = q;
    this.sizes[k] = count;
    this.ids[k] = 0;
    this.dones[k] = done;
    this.owned[k] = false;
    this.count = k + 1;
  }

  /** Whether a request sent on this connection holds packet id `id`. */
  uses(id: number): boolean {
    for (let k = 0; k < this.count; k++) if (this.ids[k] === id) return true;
    return false;
  }

  find(id: number): number {
    for (let k = 0; k < this.count; k++) if (this.ids[k] === id) return k;
    return -1;
  }

  /** Whether a waiting SUBSCRIBE already names `filter`. */
  pending(filter: string): boolean {
    for (let k = 0; k < this.count; k++) {
      if (this.kinds[k] === PacketType.Subscribe) {
        const f = this.filters[k];
        for (let i = 0; i < this.sizes[k]; i++) if (f[i] === filter) return true;
      }
    }
    return false;
  }

  /**
   * Encodes the first unsent request into buf with a packet id from `alloc`; its length, 0 when
   * nothing waits. (Every request was validated when added, so encoding cannot fail.)
   */
  encodeNext(buf: Bytes, cap: number, alloc: (this: void) => number): number {
    for (let k = 0; k < this.count; k++) {
      if (this.ids[k] === 0) {
        const id = alloc();
        const n = this.kinds[k] === PacketType.Subscribe
          ? encodeSubscribe(buf, 0, cap, id, this.filters[k], this.qos[k], this.sizes[k])
          : encodeUnsubscribe(buf, 0, cap, id, this.filters[k], this.sizes[k]);
        // every request was validated (or measured) when queued
        this.ids[k] = id;
        return n;
      }
    }
    return 0;
  }

  /** The connection ended: every request is sent again on the next one. */
  unsend(): void {
    for (let k = 0; k < this.count; k++) this.ids[k] = 0;
  }

  /**
   * The broker has no session: queue SUBSCRIBE requests for the remembered filters not already
   * waiting in a request, ahead of the program's own, as many filters per packet as fit in `cap`
   * (`scratch` is used to measure).
   */
  restoreFrom(filters: string[], qos: number[], count: number, scratch: Bytes, cap: number): void {
    let f: string[] = [];
    let q: number[] = [];
    let n = 0;
    const start = this.count;
    for (let i = 0; i < count; i++) {
      if (!this.pending(filters[i])) {
        f[n] = filters[i];
        q[n] = qos[i];
        if (n > 0 && encodeSubscribe(scratch, 0, cap, 1, f, q, n + 1) < 0) {
          // full: the batch so far is one packet, this filter starts the next
          this.push(PacketType.Subscribe, f, q, n, undefined);
          f = [filters[i]];
          q = [qos[i]];
          n = 0;
        }
        n = n + 1;
      }
    }
    if (n > 0) this.push(PacketType.Subscribe, f, q, n, undefined);
    // move the restored requests ahead of the program's
    const added = this.count - start;
    for (let r = 0; r < added; r++) this.rotateLastToFront();
  }

  private rotateLastToFront(): void {
    const last = this.count - 1;
    const kind = this.kinds[last];
    const f = this.filters[last];
    const q = this.qos[last];
    const size = this.sizes[last];
    const done = this.dones[last];
    const owned = this.owned[last];
    for (let k = last; k > 0; k--) {
      this.kinds[k] = this.kinds[k - 1];
      this.filters[k] = this.filters[k - 1];
      this.qos[k] = this.qos[k - 1];
      this.sizes[k] = this.sizes[k - 1];
      this.ids[k] = this.ids[k - 1];
      this.dones[k] = this.dones[k - 1];
      this.owned[k] = this.owned[k - 1];
    }
    this.kinds[0] = kind;
    this.filters[0] = f;
    this.qos[0] = q;
    this.sizes[0] = size;
    this.ids[0] = 0;
    this.dones[0] = done;
    this.owned[0] = owned;
  }

  /** Removes request k and returns its callback. */
  remove(k: number): RequestDone | undefined {
    const done = this.dones[k];
    if (this.owned[k]) this.own = this.own - 1;
    const last = this.count - 1;
    for (let j = k; j < last; j++) {
      this.kinds[j] = this.kinds[j + 1];
      this.filters[j] = this.filters[j + 1];
      this.qos[j] = this.qos[j + 1];
      this.sizes[j] = this.sizes[j + 1];
      this.ids[j] = this.ids[j + 1];
      this.dones[j] = this.dones[j + 1];
      this.owned[j] = this.owned[j + 1];
    }
    this.dones[last] = undefined;
    this.count = last;
    return done;
  }
}
