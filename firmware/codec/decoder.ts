import type { Bytes, Gather } from "../port/bytes";
import { FEATURE_MQTT5 } from "../features";
import { port } from "../port/port";
import { CodecError, PacketType, Status } from "./constants";
import { finish5, header5 } from "./mqtt5";
import { checkUtf8 } from "./utf8";

/** Reading phases. */
const enum Phase {
  Header = 0,
  Length = 1,
  Body = 2,
  /** An oversize PUBLISH: skipping its payload. */
  OversizeSkip = 3,
  /** After an error: nothing more is read until reset(). */
  Dead = 4,
  /**
   * An oversize PUBLISH: reading its variable header byte by byte, in steps OversizeHeader + 0..6
   * (topic length 0-1, topic 2, topic read 3, packet id 4-5, header read 6).
   */
  OversizeHeader = 5,
}

const PLUS = 43;
const HASH = 35;

/**
 * The streaming decoder for what a client receives (§2-§3): CONNACK, PUBLISH, PUBACK, PUBREC,
 * PUBREL, PUBCOMP, SUBACK, UNSUBACK, PINGRESP. Input arrives in chunks split anywhere, with any
 * number of packets per chunk:
 *
 *     let at = 0;
 *     while (at < size) {
 *       at = d.feedChunk(chunk, at);
 *       if (d.status === Status.Packet) handle(d);   // fields below, valid until the next push
 *       else if (d.status === Status.Oversize) ack and report d.packetId, d.publishQos(), d.payloadLength
 *       else if (d.status === Status.Error) close the connection: d.error says why
 *     }
 *
 * A packet wholly inside one chunk is read in place; one that arrives in pieces is gathered
 * (port/bytes.ts: into one receive buffer of `capacity` bytes, allocated up front, on Node and
 * Espruino; joined once on Lua). Fields are plain numbers on this object, reused for every packet,
 * and no more than 16 of them: a Lua table with 17 to 32 fields takes twice the heap (320 bytes
 * more on a 32-bit build). What follows from them is read from them: the body ends at
 * bodyStart + remaining; a PUBLISH's DUP, QoS and RETAIN are its `headerFlags` (8, publishQos() and 1); a
 * CONNACK's acknowledge flags (session present) and return code are data[bodyStart] and
 * data[bodyStart + 1].
 * A PUBLISH larger than the buffer is not an error: its payload is skipped as it arrives and
 * `Status.Oversize` reports it, so the session can acknowledge it and say so. Malformed input
 * never throws: `Status.Error` and a CodecError.
 */
export class Decoder {
  readonly rx: Gather;
  readonly capacity: number;

  status: number = Status.NeedMore;
  error = 0;

  /** Fixed header of the current packet. */
  type = 0;
  headerFlags = 0;
  remaining = 0;

  /** The packet body is data[bodyStart..bodyStart + remaining): the gathered bytes or the chunk itself. */
  data: Bytes;
  bodyStart = 0;

  /** PUBLISH fields (packetId also for PUBACK..PUBCOMP, SUBACK, UNSUBACK). */
  packetId = 0;
  /** The topic is data[topicStart..topicEnd); empty for an oversize PUBLISH whose topic was longer than the buffer. */
  topicStart = 0;
  topicEnd = 0;
  /** The payload is data[payloadStart..bodyStart + remaining). */
  payloadStart = 0;
  /** Payload length of the PUBLISH (for an oversize one, the length that was skipped). */
  payloadLength = 0;

  private phase: number = Phase.Header;
  /** Bytes read of the current part: remaining-length bytes, then body bytes. */
  private have = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
    this.rx = port.bytes.gather(capacity);
    this.data = this.rx.gathered();
  }

  /** Forget any partial packet and error (a new connection). */
  reset(): void {
    this.phase = Phase.Header;
    this.status = Status.NeedMore;
    this.error = 0;
  }

  /** The QoS of the current PUBLISH (its flags' bits 2-1). */
  publishQos(): number {
    return port.ints.idiv(this.headerFlags, 2) % 4;
  }

  /** The topic of the current PUBLISH as the runtime's text. Allocates the string. */
  topicText(): string {
    return port.bytes.textFrom(this.data, this.topicStart, this.topicEnd);
  }

  /**
   * Consumes chunk bytes from `from`; stops after a packet or an error. Returns the new offset.
   * `v5`: the connection speaks MQTT 5.0 (reason codes and properties: codec/mqtt5.ts).
   */
  feedChunk(chunk: Bytes, from: number, v5?: boolean): number {
    const n = chunk.length;
    if (this.phase === Phase.Dead) return n;
    this.status = Status.NeedMore;
    let i = from;
    for (;;) {
      const phase = this.phase;
      // Steps that need no input come first: a packet can end exactly at a chunk's end.
      if (phase === Phase.OversizeSkip && this.have === this.remaining) {
        this.phase = Phase.Header;
        this.status = Status.Oversize;
        return i;
      }
      if (phase >= Phase.OversizeHeader) {
        i = this.oversizeHeader(chunk, i, n);
        if (this.phase !== Phase.OversizeSkip) return i;
        continue;
      }
      if (i >= n) return i;
      if (phase === Phase.Header) {
        const b = chunk[i];
        i = i + 1;
        this.type = port.ints.idiv(b, 16);
        this.headerFlags = b % 16;
        this.remaining = 0;
        this.have = 0;
        this.phase = Phase.Length;
      } else if (phase === Phase.Length) {
        const b = chunk[i];
        i = i + 1;
        const at = this.have;
        this.remaining = this.remaining + (b % 128) * (at === 0 ? 1 : at === 1 ? 128 : at === 2 ? 16384 : 2097152);
        this.have = at + 1;
        if (b >= 128) {
          // §2.2.3: at most four length bytes.
          if (at === 3) return this.fail(CodecError.BadRemainingLength, i);
        } else {
          const bad = FEATURE_MQTT5 && v5 === true ? header5(this.type, this.headerFlags, this.remaining, this.capacity) : this.checkHeader();
          if (bad !== 0) return this.fail(bad, i);
          if (this.remaining > this.capacity) {
            // A PUBLISH larger than the buffer (checkHeader refused every other type).
            this.phase = Phase.OversizeHeader;
            this.have = 0;
            // topicEnd counts the topic length as it is read (the topic goes to data[0..))
            this.topicStart = 0;
            this.topicEnd = 0;
          } else if (n - i >= this.remaining) {
            // The whole body is in this chunk (or there is none): read it in place.
            this.finish(chunk, i, i + this.remaining, v5);
            return i + this.remaining;
          } else {
            this.phase = Phase.Body;
            this.have = 0;
            this.rx.discard();
          }
        }
      } else if (phase === Phase.Body) {
        const want = this.remaining - this.have;
        const take = n - i < want ? n - i : want;
        this.rx.copy(chunk, i, i + take);
        this.have = this.have + take;
        i = i + take;
        if (this.have === this.remaining) {
          this.finish(this.rx.gathered(), 0, this.remaining, v5);
          return i;
        }
      } else if (phase === Phase.OversizeSkip) {
        const want = this.remaining - this.have;
        const take = n - i < want ? n - i : want;
        this.have = this.have + take;
        i = i + take;
      } else {
        return n;
      }
    }
  }

  private fail(code: number, at: number): number {
    this.status = Status.Error;
    this.error = code;
    this.phase = Phase.Dead;
    return at;
  }

  /** Type, flags and length checks that need no body (§2.2.1, §2.2.2, §3.x.1). 0 or an error. */
  private checkHeader(): number {
    const t = this.type;
    const f = this.headerFlags;
    const r = this.remaining;
    if (t === 0 || t === 15) return CodecError.ReservedType;
    if (t === PacketType.Publish) {
      const qos = this.publishQos();
      // MQTT-3.3.1-4: QoS 3 is malformed.
      if (qos === 3) return CodecError.InvalidQos;
      return r < (qos > 0 ? 4 : 2) ? CodecError.Truncated : 0;
    }
    if (t === PacketType.Connect || t === PacketType.Subscribe || t === PacketType.Unsubscribe ||
      t === PacketType.Pingreq || t === PacketType.Disconnect) {
      return CodecError.UnexpectedType;
    }
    // MQTT-3.6.1-1: PUBREL carries flags 0010; every other packet here carries 0000.
    if (f !== (t === PacketType.Pubrel ? 2 : 0)) return CodecError.InvalidFlags;
    let lengthOk: boolean;
    if (t === PacketType.Connack) lengthOk = r === 2;
    else if (t === PacketType.Pingresp) lengthOk = r === 0;
    else if (t === PacketType.Suback) lengthOk = r >= 3;
    else lengthOk = r === 2; // PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK: exactly a packet id
    if (!lengthOk) return CodecError.BadLength;
    // Only a PUBLISH may be larger than the buffer (it is skipped); any other packet is an error.
    return r > this.capacity ? CodecError.PacketTooLarge : 0;
  }

  /** A complete body is data[start..end): decode its fields; sets status Packet or Error. */
  private finish(data: Bytes, start: number, end: number, v5: boolean | undefined): void {
    this.phase = Phase.Header;
    this.data = data;
    this.bodyStart = start;
    const t = this.type;
    let bad = 0;
    if (FEATURE_MQTT5 && v5 === true) {
      bad = finish5(this, data, start, end);
    } else if (t === PacketType.Publish) {
      bad = this.publishFields(data, start, end);
    } else if (t === PacketType.Connack) {
      const ackFlags = data[start];
      // MQTT-3.2.2-1: bits 7-1 of the acknowledge flags are reserved.
      if (ackFlags > 1) bad = CodecError.BadConnackFlags;
      // §3.2.2.3: return codes 6-255 are reserved.
      if (data[start + 1] > 5) bad = CodecError.BadReturnCode;
    } else if (t !== PacketType.Pingresp) {
      this.packetId = data[start] * 256 + data[start + 1];
      if (this.packetId === 0) bad = CodecError.ZeroPacketId;
      if (t === PacketType.Suback) {
        for (let k = start + 2; k < end; k++) {
          const code = data[k];
          // §3.9.3: 0, 1, 2 (granted QoS) or 0x80 (failure).
          if (code > 2 && code !== 128) bad = CodecError.BadReturnCode;
        }
      }
    }
    if (bad !== 0) {
      this.fail(bad, end);
      return;
    }
    this.status = Status.Packet;
  }

  private publishFields(data: Bytes, start: number, end: number): number {
    const topicLen = data[start] * 256 + data[start + 1];
    const idLen = this.publishQos() > 0 ? 2 : 0;
    if (2 + topicLen + idLen > end - start) return CodecError.Truncated;
    this.topicStart = start + 2;
    this.topicEnd = start + 2 + topicLen;
    const bad = this.checkTopicBytes(data, this.topicStart, this.topicEnd);
    if (bad !== 0) return bad;
    this.packetId = 0;
    if (idLen > 0) {
      this.packetId = data[this.topicEnd] * 256 + data[this.topicEnd + 1];
      if (this.packetId === 0) return CodecError.ZeroPacketId;
    }
    this.payloadStart = this.topicEnd + idLen;
    this.payloadLength = end - this.payloadStart;
    return 0;
  }

  /** A received topic name: not empty, well-formed UTF-8 without U+0000, no wildcards (5.0's decoder too). */
  checkTopicBytes(data: Bytes, start: number, end: number): number {
    if (end === start) return CodecError.EmptyTopic;
    const bad = checkUtf8(data, start, end);
    if (bad !== 0) return bad;
    for (let k = start; k < end; k++) {
      const c = data[k];
      if (c === PLUS || c === HASH) return CodecError.WildcardInTopic;
    }
    return 0;
  }

  /**
   * The variable header of a PUBLISH too large for the buffer, read as it arrives: topic length,
   * topic (kept when it fits), packet id; then the payload is skipped.
   */
  private oversizeHeader(chunk: Bytes, i: number, n: number): number {
    const idLen = this.publishQos() > 0 ? 2 : 0;
    // the topic is kept when it fits in the buffer
    let known = this.topicEnd <= this.capacity;
    while (this.phase >= Phase.OversizeHeader) {
      const step = this.phase - Phase.OversizeHeader;
      if (step === 3) {
        // The topic is read (or skipped when longer than the buffer).
        const len = this.topicEnd;
        if (len === 0) return this.fail(CodecError.EmptyTopic, i);
        this.data = this.rx.gathered();
        this.payloadLength = this.remaining - 2 - len - idLen;
        if (known) {
          const bad = this.checkTopicBytes(this.data, 0, len);
          if (bad !== 0) return this.fail(bad, i);
        } else {
          this.topicEnd = 0;
        }
        this.packetId = 0;
        this.phase = Phase.OversizeHeader + (idLen > 0 ? 4 : 6);
      } else if (step === 6) {
        // The variable header is read: skip the payload.
        this.payloadStart = 0;
        this.phase = Phase.OversizeSkip;
      } else if (i >= n) {
        return i;
      } else if (step === 0 || step === 1) {
        // topic length, two bytes
        const len = this.topicEnd * 256 + chunk[i];
        this.topicEnd = len;
        i = i + 1;
        this.have = this.have + 1;
        if (step === 0) {
          this.phase = Phase.OversizeHeader + 1;
        } else {
          if (2 + len + idLen > this.remaining) return this.fail(CodecError.Truncated, i);
          known = len <= this.capacity;
          this.rx.discard();
          this.phase = Phase.OversizeHeader + (len > 0 ? 2 : 3);
        }
      } else if (step === 2) {
        // topic bytes, kept when they fit in the buffer
        const got = this.have - 2;
        const want = this.topicEnd - got;
        const take = n - i < want ? n - i : want;
        if (known) this.rx.copy(chunk, i, i + take);
        i = i + take;
        this.have = this.have + take;
        if (take === want) this.phase = Phase.OversizeHeader + 3;
      } else {
        // steps 4 and 5: packet id, two bytes
        this.packetId = this.packetId * 256 + chunk[i];
        i = i + 1;
        this.have = this.have + 1;
        this.phase = this.phase + 1;
        if (step === 5 && this.packetId === 0) return this.fail(CodecError.ZeroPacketId, i);
      }
    }
    return i;
  }
}
