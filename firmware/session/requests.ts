import { encodeFilters } from "../codec/encode";
import { CodecError } from "../codec/constants";
import { encodeFilters5 } from "../codec/mqtt5";
import { FEATURE_MQTT5 } from "../features";
import type { Out } from "../port/bytes";
import type { PetrelError } from "../port/log";
import { port } from "../port/port";
import { codecFail, fail } from "./errors";

/**
 * SUBSCRIBE (`q` given) or UNSUBSCRIBE at 5.0. A value of `q` is the QoS plus the subscription
 * options (below 64) plus 64 times the request's Subscription Identifier (the same on each
 * filter; 0: none, at most 2^24 - 1 so that the value stays a 31-bit integer on every target).
 */
export function encodeRequest5(o: Out, cap: number, id: number, filters: string[], q: number[] | undefined, count: number): number {
  if (q === undefined) return encodeFilters5(o, cap, id, filters, undefined, count, undefined);
  const sid = port.ints.idiv(q[0], 64);
  const opts: number[] = [];
  for (let i = 0; i < count; i++) {
    if (!(q[i] >= 0 && q[i] < 1073741824) || port.ints.idiv(q[i], 64) !== sid) return -CodecError.InvalidQos;
    opts[i] = q[i] - 64 * sid;
  }
  return encodeFilters5(o, cap, id, filters, opts, count, sid > 0 ? { subscriptionId: sid } : undefined);
}

/** Called with the granted QoS per filter (SUBSCRIBE; 128 = refused) or nothing (UNSUBSCRIBE). */
export type RequestDone = (this: void, err: PetrelError | undefined, granted: number[] | undefined) => void;

/**
 * SUBSCRIBE and UNSUBSCRIBE requests waiting for SUBACK / UNSUBACK, in order. A request has a
 * packet id only while it is sent on the current connection; after a reconnect every request is
 * sent again with a new id (the broker may not have seen it). Bounded by maxRequests for the
 * program's requests; restored subscriptions after a session loss are added on top. A request's
 * `qos` is undefined for an UNSUBSCRIBE.
 */
export class Requests {
  count = 0;
  readonly filters: string[][] = [];
  readonly qos: (number[] | undefined)[] = [];
  readonly sizes: number[] = [];
  /** Packet id while sent on this connection, else 0. */
  readonly ids: number[] = [];
  readonly dones: (RequestDone | undefined)[] = [];
  /** Whether each is the program's (restored subscriptions are the client's own and do not count). */
  private readonly owned: boolean[] = [];

  constructor(private readonly max: number) {}

  /**
   * Validates a request by encoding it into `scratch` (cleared after) and queues a copy of its
   * filters. Returns an error value when nothing was queued.
   */
  track(filters: string[], qos: number[] | undefined, count: number, done: RequestDone | undefined,
    scratch: Out, cap: number, v5: boolean): PetrelError | undefined {
    let own = 0;
    // counted, not kept: a ninth field would double the table's hash part on Lua (160 bytes)
    for (let k = 0; k < this.count; k++) if (this.owned[k]) own = own + 1;
    if (own >= this.max) {
      return fail("too-many-requests", `${own} subscribe/unsubscribe requests already wait for the broker; fix: wait for their callbacks, or raise maxRequests`);
    }
    // at 5.0 a QoS value may carry the subscription options too (No Local 4, Retain As Published
    // 8, Retain Handling 16 x 0-2) and the Subscription Identifier (x 64)
    const n = FEATURE_MQTT5 && v5 ? encodeRequest5(scratch, cap, 1, filters, qos, count) : encodeFilters(scratch, cap, 1, filters, qos, count);
    scratch.discard();
    if (n < 0) {
      if (-n === 1) return fail("message-too-large", `the request does not fit in maxPacket (${cap} bytes); fix: split it, or raise maxPacket`);
      return codecFail(n);
    }
    const f: string[] = [];
    const q: number[] = [];
    for (let i = 0; i < count; i++) {
      f[i] = filters[i];
      if (qos !== undefined) q[i] = qos[i];
    }
    this.insert(this.count, f, qos !== undefined ? q : undefined, count, done, true);
    return undefined;
  }

  /** Puts a request at index `at`, moving the ones from there back. */
  private insert(at: number, f: string[], q: number[] | undefined, count: number, done: RequestDone | undefined, owned: boolean): void {
    for (let k = this.count; k > at; k--) {
      this.filters[k] = this.filters[k - 1];
      this.qos[k] = this.qos[k - 1];
      this.sizes[k] = this.sizes[k - 1];
      this.ids[k] = this.ids[k - 1];
      this.dones[k] = this.dones[k - 1];
      this.owned[k] = this.owned[k - 1];
    }
    this.filters[at] = f;
    this.qos[at] = q;
    this.sizes[at] = count;
    this.ids[at] = 0;
    this.dones[at] = done;
    this.owned[at] = owned;
    this.count = this.count + 1;
  }

  /** The request sent on this connection with packet id `id`, or -1. */
  slotFor(id: number): number {
    for (let k = 0; k < this.count; k++) if (this.ids[k] === id) return k;
    return -1;
  }

  /**
   * Encodes the first unsent request into `o` with a packet id from `alloc`; its length, 0 when
   * nothing waits. (Every request was validated when added, so encoding cannot fail.)
   */
  encodeNext(o: Out, cap: number, alloc: (this: void) => number, v5: boolean): number {
    for (let k = 0; k < this.count; k++) {
      if (this.ids[k] === 0) {
        const id = alloc();
        this.ids[k] = id;
        const q = this.qos[k];
        if (FEATURE_MQTT5 && v5) return encodeRequest5(o, cap, id, this.filters[k], q, this.sizes[k]);
        // at 3.1.1 (a broker that refused 5.0) the subscription options and identifier have no place: the QoS alone
        if (FEATURE_MQTT5 && q !== undefined) for (let i = 0; i < this.sizes[k]; i++) q[i] = q[i] % 4;
        return encodeFilters(o, cap, id, this.filters[k], q, this.sizes[k]);
      }
    }
    return 0;
  }

  /** The first request sent on this connection and not answered yet, or -1. */
  firstSent(): number {
    for (let k = 0; k < this.count; k++) if (this.ids[k] !== 0) return k;
    return -1;
  }

  /** The connection ended: every request is sent again on the next one. */
  unsend(): void {
    for (let k = 0; k < this.count; k++) this.ids[k] = 0;
  }

  /**
   * The broker has no session: queue SUBSCRIBE requests for the remembered filters not already
   * waiting in a request, ahead of the program's own, as many filters per packet as fit in `cap`
   * (`scratch` measures, and is cleared).
   */
  restore(filters: string[], qos: number[], count: number, scratch: Out, cap: number): void {
    let f: string[] = [];
    let q: number[] = [];
    let n = 0;
    let at = 0;
    for (let i = 0; i < count; i++) {
      let waiting = false;
      for (let k = 0; k < this.count && !waiting; k++) {
        const rq = this.filters[k];
        if (this.qos[k] !== undefined) for (let j = 0; j < this.sizes[k]; j++) if (rq[j] === filters[i]) waiting = true;
      }
      if (!waiting) {
        f[n] = filters[i];
        q[n] = qos[i];
        if (n > 0 && encodeFilters(scratch, cap, 1, f, q, n + 1) < 0) {
          // full: the batch so far is one packet, this filter starts the next
          this.insert(at, f, q, n, undefined, false);
          at = at + 1;
          f = [filters[i]];
          q = [qos[i]];
          n = 0;
        }
        scratch.discard();
        n = n + 1;
      }
    }
    if (n > 0) this.insert(at, f, q, n, undefined, false);
  }

  /** Removes request k and returns its callback. */
  untrack(k: number): RequestDone | undefined {
    const done = this.dones[k];
    const last = this.count - 1;
    for (let j = k; j < last; j++) {
      this.filters[j] = this.filters[j + 1];
      this.qos[j] = this.qos[j + 1];
      this.sizes[j] = this.sizes[j + 1];
      this.ids[j] = this.ids[j + 1];
      this.dones[j] = this.dones[j + 1];
      this.owned[j] = this.owned[j + 1];
    }
    // the last slot lets go of what it held
    this.filters[last] = undefined as unknown as string[];
    this.qos[last] = undefined;
    this.dones[last] = undefined;
    this.count = last;
    return done;
  }
}
