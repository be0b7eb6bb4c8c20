import type { Bytes } from "../port/bytes";
import type { PetrelError } from "../port/log";
import { port } from "../port/port";
import type { Storage } from "../port/storage";

/** Called when a QoS 1/2 message is acknowledged (PUBACK / PUBCOMP), or with why it never will be. */
export type Done = (this: void, err: PetrelError | undefined) => void;

/** Where an outbox message is on the current connection. */
export const enum Phase {
  /** PUBLISH not sent on this connection yet. */
  Queued = 0,
  /** PUBLISH sent, waiting for PUBACK (QoS 1) or PUBREC (QoS 2). */
  Sent = 1,
  /** QoS 2 past PUBREC: PUBREL sent, waiting for PUBCOMP. */
  Released = 2,
  /** QoS 2 past PUBREC: PUBREL not sent on this connection yet. */
  ReleaseQueued = 3,
}

/** Digits of a decimal number at s[from..], or -1. */
export function parseDecimal(s: string, from: number): number {
  let n = 0;
  if (s.length <= from || s.length - from > 9) return -1;
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return n;
}

/** Sorts numbers ascending in place (insertion sort: start-up only, a few hundred at most). */
function sortNumbers(a: number[], n: number): void {
  for (let i = 1; i < n; i++) {
    const v = a[i];
    let j = i - 1;
    while (j >= 0 && a[j] > v) {
      a[j + 1] = a[j];
      j = j - 1;
    }
    a[j + 1] = v;
  }
}

/** Sorted record numbers of every key `prefix<number>`; other keys under the prefix are ignored. */
function numberedKeys(storage: Storage, prefix: string): number[] {
  const names = storage.list(prefix);
  const out: number[] = [];
  let n = 0;
  for (let i = 0; i < names.length; i++) {
    const v = parseDecimal(names[i], prefix.length);
    if (v > 0) {
      out[n] = v;
      n = n + 1;
    }
  }
  sortNumbers(out, n);
  return out;
}

/**
 * The QoS and packet id of a stored PUBLISH packet of `len` bytes (qos * 65536 + id), or -1 when
 * the record is not a whole QoS 1/2 PUBLISH.
 */
export function storedPublishInfo(buf: Bytes, len: number): number {
  const ints = port.ints;
  if (len < 7) return -1;
  const b0 = buf[0];
  const qos = ints.band(ints.rshift(b0, 1), 3);
  if (ints.rshift(b0, 4) !== 3 || qos === 0 || qos === 3) return -1;
  let p = 1;
  let mult = 1;
  let rem = 0;
  for (;;) {
    if (p >= len || p > 4) return -1;
    const d = buf[p];
    rem = rem + ints.band(d, 127) * mult;
    p = p + 1;
    if (d < 128) break;
    mult = mult * 128;
  }
  if (p + rem !== len) return -1;
  const id = p + 2 + buf[p] * 256 + buf[p + 1];
  if (id + 2 > len) return -1;
  const pid = buf[id] * 256 + buf[id + 1];
  return pid === 0 ? -1 : qos * 65536 + pid;
}

/**
 * The outbox: every QoS 1/2 message accepted by publish(), in order, until the broker has
 * acknowledged it. Each message is one storage record `<prefix>o<seq>` holding the PUBLISH packet
 * exactly as first sent (DUP clear), written before publish() returns; a QoS 2 message past
 * PUBREC also has a small `<prefix>r<seq>` record, so a restart sends PUBREL, not PUBLISH. RAM
 * holds only an index (sequence, packet id, QoS, size, phase) in arrays that grow to the limit
 * once and are reused. Records are written whole and are independent, so a power cut leaves
 * each one old or new (the storage contract), never a torn outbox.
 */
export class Outbox {
  count = 0;
  bytes = 0;
  readonly seqs: number[] = [];
  readonly ids: number[] = [];
  readonly qoss: number[] = [];
  readonly sizes: number[] = [];
  readonly phases: number[] = [];
  /** The PUBLISH was (or may have been) sent before: resend with DUP set. */
  readonly dups: boolean[] = [];
  readonly dones: (Done | undefined)[] = [];
  /** Sequence number of the next record. */
  nextSeq = 1;
  /** Records found at load that are larger than the packet buffer (maxPacket was lowered): kept, not sent. */
  tooLarge = 0;
  /** Records found at load that were not a stored PUBLISH (torn or foreign): removed. */
  removed = 0;
  private readonly okey: string;
  private readonly rkey: string;
  /**
   * The body of a marker record (its name is the information), written with length 0: any
   * buffer serves, so it is the client's small scratch buffer (no buffer of its own).
   */
  private readonly empty: Bytes;

  constructor(private readonly storage: Storage, prefix: string, scratch: Bytes) {
    this.okey = prefix + "o";
    this.rkey = prefix + "r";
    this.empty = scratch;
  }

  /**
   * Reads the records left by an earlier run into the index (start-up) and returns how many.
   * Records that are not a stored PUBLISH are removed (counted in `removed`); records larger than
   * `cap` are kept (counted in `tooLarge`).
   */
  load(buf: Bytes, cap: number): number {
    const seqs = numberedKeys(this.storage, this.okey);
    this.removed = 0;
    this.count = 0;
    this.bytes = 0;
    this.tooLarge = 0;
    for (let i = 0; i < seqs.length; i++) {
      const seq = seqs[i];
      const len = this.storage.read(this.okey + seq, buf, cap);
      const info = len > 0 ? storedPublishInfo(buf, len) : -1;
      if (len === -2) {
        // accepted once, so never deleted here: a larger maxPacket sends it
        this.tooLarge = this.tooLarge + 1;
        this.nextSeq = seq + 1;
      } else if (info < 0) {
        this.storage.remove(this.okey + seq);
        this.removed = this.removed + 1;
      } else {
        const k = this.count;
        this.put(k, seq, port.ints.band(info, 65535), port.ints.rshift(info, 16), len, undefined);
        this.dups[k] = true;
        this.nextSeq = seq + 1;
      }
    }
    const released = numberedKeys(this.storage, this.rkey);
    for (let i = 0; i < released.length; i++) {
      const k = this.findSeq(released[i]);
      if (k >= 0 && this.qoss[k] === 2) this.phases[k] = Phase.ReleaseQueued;
      else this.storage.remove(this.rkey + released[i]); // its message was completed before the cut
    }
    return this.count;
  }

  private put(k: number, seq: number, id: number, qos: number, len: number, done: Done | undefined): void {
    this.seqs[k] = seq;
    this.ids[k] = id;
    this.qoss[k] = qos;
    this.sizes[k] = len;
    this.phases[k] = Phase.Queued;
    this.dups[k] = false;
    this.dones[k] = done;
    this.count = k + 1;
    this.bytes = this.bytes + len;
  }

  /** Stores buf[0..len) as a new message at the end; 0, or the storage error code. */
  add(buf: Bytes, len: number, id: number, qos: number, done: Done | undefined): number {
    const seq = this.nextSeq;
    const r = this.storage.write(this.okey + seq, buf, len);
    if (r !== 0) return r;
    this.nextSeq = seq + 1;
    this.put(this.count, seq, id, qos, len, done);
    return 0;
  }

  /** Reads message k's packet into buf; its length, or a negative value when the record is gone. */
  read(k: number, buf: Bytes, cap: number): number {
    const len = this.storage.read(this.okey + this.seqs[k], buf, cap);
    return len === this.sizes[k] ? len : -1;
  }

  /** QoS 2 message k is past PUBREC; 0, or the storage error (the phase moves on regardless). */
  release(k: number): number {
    this.phases[k] = Phase.Released;
    return this.storage.write(this.rkey + this.seqs[k], this.empty, 0);
  }

  /** A new session: message k starts again from PUBLISH (its PUBREC was for a session now gone). */
  restart(k: number): void {
    if (this.phases[k] === Phase.Released || this.phases[k] === Phase.ReleaseQueued) this.storage.remove(this.rkey + this.seqs[k]);
    this.phases[k] = Phase.Queued;
    this.dups[k] = false;
  }

  /** Index of the message with packet id `id`, or -1. */
  find(id: number): number {
    for (let k = 0; k < this.count; k++) if (this.ids[k] === id) return k;
    return -1;
  }

  private findSeq(seq: number): number {
    for (let k = 0; k < this.count; k++) if (this.seqs[k] === seq) return k;
    return -1;
  }

  /** Removes message k (acknowledged, or lost) and returns its callback. */
  remove(k: number): Done | undefined {
    const done = this.dones[k];
    const seq = this.seqs[k];
    const wasReleased = this.phases[k] === Phase.Released || this.phases[k] === Phase.ReleaseQueued;
    this.storage.remove(this.okey + seq);
    if (wasReleased) this.storage.remove(this.rkey + seq);
    this.bytes = this.bytes - this.sizes[k];
    const last = this.count - 1;
    for (let j = k; j < last; j++) {
      this.seqs[j] = this.seqs[j + 1];
      this.ids[j] = this.ids[j + 1];
      this.qoss[j] = this.qoss[j + 1];
      this.sizes[j] = this.sizes[j + 1];
      this.phases[j] = this.phases[j + 1];
      this.dups[j] = this.dups[j + 1];
      this.dones[j] = this.dones[j + 1];
    }
    this.dones[last] = undefined;
    this.count = last;
    return done;
  }
}

/**
 * Packet ids of incoming QoS 2 messages between PUBREC and PUBREL: the message was delivered
 * when its PUBLISH arrived, and a PUBLISH with a listed id is a duplicate (whatever its DUP flag
 * says). Only ids are kept, never payloads; each is a tiny record so a restart still recognises
 * duplicates.
 *
 * Ids belong to one broker's session: with failover, a broker left behind keeps its session and
 * sends its unreleased messages again when the client returns, while the next broker numbers its
 * own. So each id is kept with its broker (the record `<prefix>i<broker * 65536 + id>`, which is
 * `<prefix>i<id>` for the first broker), and only the current broker's ids are consulted.
 */
export class Received {
  count = 0;
  readonly ids: number[] = [];
  /** The broker (its index in the list) each listed id came from. */
  private readonly brokers: number[] = [];
  /** The broker whose ids are consulted (the one connected to). */
  private current = 0;
  /** Arrival number of each listed id (kept in its record, so a reboot restores the order). */
  private readonly arrivals: number[] = [];
  private nextArrival = 1;
  private readonly key: string;
  /**
   * A record's body: the arrival number, 4 bytes. The client's small scratch buffer (at least 4
   * bytes), filled and written or read in one call: storage copies, nothing keeps it.
   */
  private readonly body: Bytes;

  constructor(private readonly storage: Storage, prefix: string, scratch: Bytes) {
    this.key = prefix + "i";
    this.body = scratch;
  }

  /** Reads the ids left by an earlier run, oldest arrival first (start-up only). */
  load(): number {
    const keys = numberedKeys(this.storage, this.key);
    const b = this.body;
    const ints = port.ints;
    this.count = 0;
    for (let i = 0; i < keys.length; i++) {
      const id = ints.band(keys[i], 65535);
      const broker = ints.rshift(keys[i], 16);
      if (id > 0 && broker < 256) {
        const n = this.storage.read(this.key + keys[i], b, 4);
        const arrival = n === 4 ? ((b[0] * 256 + b[1]) * 256 + b[2]) * 256 + b[3] : 0;
        // insertion by arrival (a record without one counts as oldest)
        let k = this.count;
        while (k > 0 && this.arrivals[k - 1] > arrival) {
          this.ids[k] = this.ids[k - 1];
          this.brokers[k] = this.brokers[k - 1];
          this.arrivals[k] = this.arrivals[k - 1];
          k = k - 1;
        }
        this.ids[k] = id;
        this.brokers[k] = broker;
        this.arrivals[k] = arrival;
        this.count = this.count + 1;
        if (arrival >= this.nextArrival) this.nextArrival = arrival + 1;
      }
    }
    return this.count;
  }

  /** From now on, ids are this broker's (the client connected to it). */
  scope(broker: number): void {
    this.current = broker;
  }

  private recordKey(k: number): string {
    return this.key + (this.brokers[k] * 65536 + this.ids[k]);
  }

  has(id: number): boolean {
    for (let k = 0; k < this.count; k++) if (this.ids[k] === id && this.brokers[k] === this.current) return true;
    return false;
  }

  /** Adds an id; 0, or the storage error (the id is kept in RAM either way). */
  add(id: number): number {
    const a = this.nextArrival;
    // 2^31 arrivals would take decades of QoS 2 traffic; wrap to 1 rather than overflow
    this.nextArrival = a >= 2147483647 ? 1 : a + 1;
    const k = this.count;
    this.ids[k] = id;
    this.brokers[k] = this.current;
    this.arrivals[k] = a;
    this.count = k + 1;
    const ints = port.ints;
    const b = this.body;
    b[0] = ints.band(ints.rshift(a, 24), 255);
    b[1] = ints.band(ints.rshift(a, 16), 255);
    b[2] = ints.band(ints.rshift(a, 8), 255);
    b[3] = ints.band(a, 255);
    return this.storage.write(this.recordKey(k), b, 4);
  }

  /** Removes an id of the current broker (PUBREL); false when it was not listed. Keeps the others in arrival order. */
  remove(id: number): boolean {
    for (let k = 0; k < this.count; k++) {
      if (this.ids[k] === id && this.brokers[k] === this.current) {
        this.drop(k);
        return true;
      }
    }
    return false;
  }

  /** Forgets the id that has waited longest for its PUBREL (the list is full). */
  evictOldest(): void {
    if (this.count > 0) this.drop(0);
  }

  private drop(k: number): void {
    this.storage.remove(this.recordKey(k));
    this.count = this.count - 1;
    for (let j = k; j < this.count; j++) {
      this.ids[j] = this.ids[j + 1];
      this.brokers[j] = this.brokers[j + 1];
      this.arrivals[j] = this.arrivals[j + 1];
    }
  }

  /** The current broker's session is gone: no PUBREL will come for any of its ids (other brokers' stay). */
  clear(): void {
    let kept = 0;
    for (let k = 0; k < this.count; k++) {
      if (this.brokers[k] === this.current) this.storage.remove(this.recordKey(k));
      else {
        this.ids[kept] = this.ids[k];
        this.brokers[kept] = this.brokers[k];
        this.arrivals[kept] = this.arrivals[k];
        kept = kept + 1;
      }
    }
    this.count = kept;
  }
}
