import type { Wire } from "../port/bytes";
import type { PetrelError } from "../port/log";
import { port } from "../port/port";
import type { Storage } from "../port/storage";

/** Called when a QoS 1/2 message is acknowledged (PUBACK / PUBCOMP), or with why it never will be. */
export type Done = (this: void, err: PetrelError | undefined) => void;

/**
 * The outbox's storage records: `<storePrefix>o<seq>` holds a message's PUBLISH packet exactly as
 * first sent, `<storePrefix>r<seq>` (empty) marks a QoS 2 message past PUBREC. A contract, for
 * tools that watch the flash (the chaos lab): the record names and their contents.
 */
export const OUTBOX_RECORD = "o";
export const RELEASE_RECORD = "r";

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

/**
 * Sorted record numbers of every key `prefix<number>` (other keys under the prefix are ignored);
 * insertion sort: start-up only, a few hundred records at most.
 */
function numberedKeys(storage: Storage, prefix: string): number[] {
  const names = storage.listRecords(prefix);
  const out: number[] = [];
  let n = 0;
  for (let i = 0; i < names.length; i++) {
    const v = parseDecimal(names[i], prefix.length);
    if (v > 0) {
      let j = n - 1;
      while (j >= 0 && out[j] > v) {
        out[j + 1] = out[j];
        j = j - 1;
      }
      out[j + 1] = v;
      n = n + 1;
    }
  }
  return out;
}

/**
 * The QoS and packet id of a stored PUBLISH packet (qos * 65536 + id), or -1 when the record is
 * not a whole QoS 1/2 PUBLISH.
 */
export function storedPublishInfo(w: Wire): number {
  const buf = port.bytes.bytesOf(w);
  const len = buf.length;
  if (len < 7) return -1;
  const b0 = buf[0];
  const qos = port.ints.idiv(b0 % 8, 2);
  if (port.ints.idiv(b0, 16) !== 3 || qos === 0 || qos === 3) return -1;
  let p = 1;
  let mult = 1;
  let rem = 0;
  for (;;) {
    if (p >= len || p > 4) return -1;
    const d = buf[p];
    rem = rem + (d % 128) * mult;
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
 * PUBREC also has an empty `<prefix>r<seq>` record, so a restart sends PUBREL, not PUBLISH. RAM
 * holds only an index (sequence, size, and packet id, QoS, phase and DUP mark as one number) in
 * arrays that grow and shrink with the messages. Records are written whole and are independent, so a power cut leaves
 * each one old or new (the storage contract), never a torn outbox.
 */
export class Outbox {
  count = 0;
  bytes = 0;
  // The index, read-only outside this file (the phase changes are the outbox's own methods: a
  // test refuses a write to the outbox's state anywhere else). Written here through a cast (no
  // code: a type only). Three numbers and a callback per message: on Espruino each element is a
  // variable slot, on Lua a table entry, so the packet id, QoS, phase and DUP mark share one
  // number (metas, read with idAt, qosAt, phaseAt, dupAt). The arrays shrink as messages leave,
  // so an outage that filled the outbox does not keep its slots once it has drained.
  readonly seqs: readonly number[] = [];
  readonly sizes: readonly number[] = [];
  /**
   * id + 65536 * (qos + 4 * phase + 16 * dup): dup is 1 when the PUBLISH was (or may have been)
   * sent before, so a resend carries DUP. At most 2^21: an integer on every target.
   */
  readonly metas: readonly number[] = [];
  readonly dones: readonly (Done | undefined)[] = [];
  /** Sequence number of the next record. */
  nextSeq = 1;
  /** The oldest message in flight as inFlightSince() last saw it (its sequence x 4 + phase; 0: none), and since when. */
  private headKey = 0;
  private headAt = 0;
  /** Records found at load that are larger than the packet size (maxPacket was lowered): kept, not sent. */
  tooLarge = 0;
  /** Records found at load that were not a stored PUBLISH (torn or foreign): removed. */
  removed = 0;
  /**
   * The packet of the newest message (record nextSeq - 1) as admit() stored it, so that its first
   * send does not read it back from storage; undefined once read (wireAt) or taken.
   */
  private fresh: Wire | undefined = undefined;
  private readonly okey: string;
  private readonly rkey: string;

  constructor(private readonly storage: Storage, prefix: string) {
    this.okey = prefix + OUTBOX_RECORD;
    this.rkey = prefix + RELEASE_RECORD;
  }

  /** Message k's packet id. */
  idAt(k: number): number {
    return port.ints.imod(this.metas[k], 65536);
  }

  /** Message k's QoS (1 or 2). */
  qosAt(k: number): number {
    return port.ints.imod(port.ints.idiv(this.metas[k], 65536), 4);
  }

  /** Message k's Phase. */
  phaseAt(k: number): number {
    return port.ints.imod(port.ints.idiv(this.metas[k], 262144), 4);
  }

  /** 1 when message k was (or may have been) sent before: its next PUBLISH carries DUP; else 0. */
  dupAt(k: number): number {
    return port.ints.idiv(this.metas[k], 1048576);
  }

  /** Message k moves to phase `ph`, its DUP mark set when `dup` is 1 (kept when 0). */
  private move(k: number, ph: number, dup: number): void {
    const d = dup > this.dupAt(k) ? 1048576 : 0;
    (this.metas as number[])[k] = this.metas[k] + 262144 * (ph - this.phaseAt(k)) + d;
  }

  /**
   * Reads the records left by an earlier run into the index (start-up) and returns how many.
   * Records that are not a stored PUBLISH are removed (counted in `removed`); records larger than
   * `cap` are kept (counted in `tooLarge`).
   */
  load(cap: number): number {
    const st = this.storage;
    const seqs = numberedKeys(st, this.okey);
    this.removed = 0;
    this.bytes = 0;
    this.tooLarge = 0;
    this.fresh = undefined;
    while (this.count > 0) this.cut();
    for (let i = 0; i < seqs.length; i++) {
      const seq = seqs[i];
      const w = st.getRecord(this.okey + seq);
      const len = w !== undefined ? port.bytes.wireLength(w) : 0;
      const info = w !== undefined && len <= cap ? storedPublishInfo(w) : -1;
      if (len > cap) {
        // accepted once, so never deleted here: a larger maxPacket sends it
        this.tooLarge = this.tooLarge + 1;
        this.nextSeq = seq + 1;
      } else if (info < 0) {
        st.dropRecord(this.okey + seq);
        this.removed = this.removed + 1;
      } else {
        // stored by an earlier run, so it may have been sent: DUP on its resend
        this.put(seq, info + 1048576, len, undefined);
        this.nextSeq = seq + 1;
      }
    }
    const released = numberedKeys(st, this.rkey);
    for (let i = 0; i < released.length; i++) {
      let k = this.count - 1;
      while (k >= 0 && this.seqs[k] !== released[i]) k = k - 1;
      if (k >= 0 && this.qosAt(k) === 2) this.move(k, Phase.ReleaseQueued, 0);
      else st.dropRecord(this.rkey + released[i]); // its message was completed before the cut
    }
    return this.count;
  }

  /** Appends a message (phase Queued) whose meta without the phase is `meta`. */
  private put(seq: number, meta: number, len: number, done: Done | undefined): void {
    const k = this.count;
    (this.seqs as number[])[k] = seq;
    (this.sizes as number[])[k] = len;
    (this.metas as number[])[k] = meta;
    (this.dones as (Done | undefined)[])[k] = done;
    this.count = k + 1;
    this.bytes = this.bytes + len;
  }

  /** Drops the last element of each array (its message already moved or gone). */
  private cut(): void {
    (this.seqs as number[]).pop();
    (this.sizes as number[]).pop();
    (this.metas as number[]).pop();
    // (not pop: a Lua table's length is not defined across nil entries, which callbacks may be)
    (this.dones as (Done | undefined)[])[this.count - 1] = undefined;
    this.count = this.count - 1;
  }

  /** Stores a packet as a new message at the end; 0, or the storage error code. */
  admit(w: Wire, id: number, qos: number, done: Done | undefined): number {
    const seq = this.nextSeq;
    const r = this.storage.putRecord(this.okey + seq, w);
    if (r !== 0) return r;
    this.nextSeq = seq + 1;
    this.put(seq, id + 65536 * qos, port.bytes.wireLength(w), done);
    this.fresh = w;
    return 0;
  }

  /** Message k's packet as stored (DUP clear), or undefined when the record is gone or changed. */
  wireAt(k: number): Wire | undefined {
    const f = this.fresh;
    if (f !== undefined && this.seqs[k] === this.nextSeq - 1) {
      this.fresh = undefined;
      return f;
    }
    const w = this.storage.getRecord(this.okey + this.seqs[k]);
    return w !== undefined && port.bytes.wireLength(w) === this.sizes[k] ? w : undefined;
  }

  /** Message k's record written again as `w` (the same message in another form); 0, or the storage error. */
  rewriteAt(k: number, w: Wire): number {
    const seq = this.seqs[k];
    if (seq === this.nextSeq - 1) this.fresh = undefined;
    const r = this.storage.putRecord(this.okey + seq, w);
    if (r !== 0) return r;
    const len = port.bytes.wireLength(w);
    this.bytes = this.bytes + len - this.sizes[k];
    (this.sizes as number[])[k] = len;
    return 0;
  }

  /** QoS 2 message k is past PUBREC; 0, or the storage error (the phase moves on regardless). */
  releaseAt(k: number): number {
    this.move(k, Phase.Released, 0);
    return this.storage.putRecord(this.rkey + this.seqs[k], port.bytes.wireOf(""));
  }

  /**
   * A new session: message k starts again from PUBLISH (its PUBREC was for a session now gone).
   * A message sent before goes with DUP set, to whichever broker (MQTT-3.3.1-1: DUP is only a
   * hint, MQTT-3.3.1-3, so setting it is always safe).
   */
  restart(k: number): void {
    if (this.phaseAt(k) >= Phase.Released) this.storage.dropRecord(this.rkey + this.seqs[k]);
    this.move(k, Phase.Queued, 0);
  }

  /**
   * QoS 1/2 message k goes out as PUBLISH now (phase Sent). Returns 1 when it was (or may have
   * been) sent before: that resend carries DUP (MQTT-3.3.1-1); else 0.
   */
  markSent(k: number): number {
    const d = this.dupAt(k);
    this.move(k, Phase.Sent, 1);
    return d;
  }

  /** QoS 2 message k, past PUBREC, goes out as PUBREL now (phase Released). */
  markReleaseSent(k: number): void {
    this.move(k, Phase.Released, 0);
  }

  /**
   * The connection ended: what was sent and not acknowledged on it is to be sent again (PUBLISH
   * to Queued, PUBREL to ReleaseQueued). Returns the packet id of the oldest PUBLISH that was
   * sent and not acknowledged, or 0.
   */
  rewind(): number {
    let id = 0;
    this.headKey = 0;
    for (let k = 0; k < this.count; k++) {
      const ph = this.phaseAt(k);
      if (ph === Phase.Sent) {
        if (id === 0) id = this.idAt(k);
        this.move(k, Phase.Queued, 0);
      } else if (ph === Phase.Released) this.move(k, Phase.ReleaseQueued, 0);
    }
    return id;
  }

  /**
   * When the oldest message in flight (PUBLISH sent and not acknowledged, or PUBREL sent and not
   * completed) started waiting in its phase, as a clock reading; the first call that sees it
   * gives `now`. -1 when nothing is in flight.
   */
  inFlightSince(now: number): number {
    let key = 0;
    for (let k = 0; k < this.count && key === 0; k++) {
      const ph = this.phaseAt(k);
      if (ph === Phase.Sent || ph === Phase.Released) key = this.seqs[k] * 4 + ph;
    }
    if (key !== this.headKey) {
      this.headKey = key;
      this.headAt = now;
    }
    return key === 0 ? -1 : this.headAt;
  }

  /** Index of the message with packet id `id`, or -1. */
  slotOf(id: number): number {
    for (let k = 0; k < this.count; k++) if (this.idAt(k) === id) return k;
    return -1;
  }

  /** Removes message k (acknowledged, or lost) and returns its callback. */
  takeAt(k: number): Done | undefined {
    const done = this.dones[k];
    const seq = this.seqs[k];
    if (seq === this.nextSeq - 1) this.fresh = undefined;
    this.storage.dropRecord(this.okey + seq);
    if (this.phaseAt(k) >= Phase.Released) this.storage.dropRecord(this.rkey + seq);
    this.bytes = this.bytes - this.sizes[k];
    const last = this.count - 1;
    for (let j = k; j < last; j++) {
      (this.seqs as number[])[j] = this.seqs[j + 1];
      (this.sizes as number[])[j] = this.sizes[j + 1];
      (this.metas as number[])[j] = this.metas[j + 1];
      (this.dones as (Done | undefined)[])[j] = this.dones[j + 1];
    }
    this.cut();
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
 * `<prefix>i<id>` for the first broker), and only the current broker's ids are consulted. A
 * record's body is its arrival number in decimal, so a reboot restores the arrival order.
 */
export class Received {
  count = 0;
  readonly ids: number[] = [];
  /** The broker whose ids are consulted (the one connected to). */
  current = 0;
  /** The broker (its index in the list) each listed id came from. */
  private readonly brokers: number[] = [];
  /** Arrival number of each listed id. */
  private readonly arrivals: number[] = [];
  private nextArrival = 1;
  private readonly key: string;

  constructor(private readonly storage: Storage, prefix: string) {
    this.key = prefix + "i";
  }

  /** Reads the ids left by an earlier run, oldest arrival first (start-up only). */
  load(): number {
    const keys = numberedKeys(this.storage, this.key);
    this.count = 0;
    for (let i = 0; i < keys.length; i++) {
      const id = port.ints.imod(keys[i], 65536);
      const broker = port.ints.idiv(keys[i], 65536);
      if (id > 0 && broker < 256) {
        const w = this.storage.getRecord(this.key + keys[i]);
        // a record without an arrival number counts as the oldest
        let arrival = w !== undefined ? parseDecimal(port.bytes.textOf(w), 0) : 0;
        if (arrival < 0) arrival = 0;
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

  hasId(id: number): boolean {
    for (let k = 0; k < this.count; k++) if (this.ids[k] === id && this.brokers[k] === this.current) return true;
    return false;
  }

  /** Adds an id; 0, or the storage error (the id is kept in RAM either way). */
  addId(id: number): number {
    const a = this.nextArrival;
    // 10^9 arrivals would take decades of QoS 2 traffic; wrap to 1 rather than grow the record
    this.nextArrival = a >= 999999999 ? 1 : a + 1;
    const k = this.count;
    this.ids[k] = id;
    this.brokers[k] = this.current;
    this.arrivals[k] = a;
    this.count = k + 1;
    return this.storage.putRecord(this.key + (this.current * 65536 + id), port.bytes.wireOf(`${a}`));
  }

  /**
   * Removes an id of the current broker (its PUBREL); false when it was not listed. With id -1,
   * forgets the id that has waited longest for its PUBREL, whatever its broker (the list is full).
   * Keeps the others in arrival order.
   */
  dropId(id: number): boolean {
    for (let k = 0; k < this.count; k++) {
      if (id < 0 || (this.ids[k] === id && this.brokers[k] === this.current)) {
        this.storage.dropRecord(this.key + (this.brokers[k] * 65536 + this.ids[k]));
        this.count = this.count - 1;
        for (let j = k; j < this.count; j++) {
          this.ids[j] = this.ids[j + 1];
          this.brokers[j] = this.brokers[j + 1];
          this.arrivals[j] = this.arrivals[j + 1];
        }
        return true;
      }
    }
    return false;
  }

  /** The current broker's session is gone: no PUBREL will come for any of its ids (other brokers' stay). */
  dropAll(): void {
    let kept = 0;
    for (let k = 0; k < this.count; k++) {
      if (this.brokers[k] === this.current) this.storage.dropRecord(this.key + (this.current * 65536 + this.ids[k]));
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
