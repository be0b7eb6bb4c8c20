import type { Bytes, Out } from "../../../firmware/port/bytes";
import { port } from "../../../firmware/port/port";
import { PacketType, Status } from "../../../firmware/codec/constants";
import { Decoder } from "../../../firmware/codec/decoder";
import { encodeConnect, encodeFilters, encodePublish, encodeShort, writeRemainingLength, type ConnectOptions,
  type Payload } from "../../../firmware/codec/encode";
import { codecErrorName } from "../../../firmware/codec/errors";
import { checkFilterShape, checkTopicShape, topicMatches } from "../../../firmware/codec/topic";
import { checkUtf8 } from "../../../firmware/codec/utf8";
import { argBytes, argInt, argSize, argText, outBytes, outWire, register } from "../probe";

// The codec on every runtime. Encoders print the packet as hex or "!error-name"; the decoder
// prints one description per event (see describe()).

/**
 * An encoder's result: "!error-name", or the packet as hex (checked against the length returned,
 * and the writer left empty for the next packet).
 */
function out(o: Out, n: number): string {
  if (n < 0) return o.size === 0 ? "!" + codecErrorName(n) : "!wrote-on-error";
  if (o.size !== n) return "!size-" + o.size + "-not-" + n;
  const hex = outWire(o.toWire());
  return o.size === 0 ? hex : "!not-emptied";
}
const isNone = (tok: string) => tok === "-";
const flag = (tok: string) => argInt(tok) !== 0;
/** A payload argument: "h:" is a byte buffer, "t:" is text. */
const argPayload = (tok: string): Payload => (tok.charCodeAt(0) === 104 ? argBytes(tok) : argText(tok));

// codec.connect clientId clean keepalive user|- pass|- willTopic|- willPayload willQos willRetain cap
register("codec.connect", (a) => {
  const o: ConnectOptions = { clientId: argText(a[0]), clean: flag(a[1]), keepalive: argInt(a[2]) };
  if (!isNone(a[3])) o.username = argText(a[3]);
  if (!isNone(a[4])) o.password = argText(a[4]);
  if (!isNone(a[5])) o.will = { topic: argText(a[5]), payload: argPayload(a[6]), qos: argInt(a[7]), retain: flag(a[8]) };
  const cap = argInt(a[9]);
  const w = port.bytes.out(cap + 4);
  return out(w, encodeConnect(w, cap, o));
});

// codec.publish topic payload qos retain dup id cap
register("codec.publish", (a) => {
  const cap = argInt(a[6]);
  const w = port.bytes.out(cap + 1);
  return out(w, encodePublish(w, cap, argText(a[0]), argPayload(a[1]), argInt(a[2]), flag(a[3]), flag(a[4]), argInt(a[5])));
});

// codec.publishHeader topic payloadLength qos retain dup id cap: the header alone, for a payload sent from where it lies
register("codec.publishHeader", (a) => {
  const cap = argInt(a[6]);
  const w = port.bytes.out(cap + 1);
  return out(w, encodePublish(w, cap, argText(a[0]), undefined, argInt(a[2]), flag(a[3]), flag(a[4]), argInt(a[5]), argInt(a[1])));
});

// codec.ack type id cap (PUBACK..PUBCOMP; PINGREQ, DISCONNECT with id 0)
register("codec.ack", (a) => {
  const cap = argInt(a[2]);
  const w = port.bytes.out(cap + 1);
  return out(w, encodeShort(w, cap, argInt(a[0]), argInt(a[1])));
});

// codec.subscribe id cap filter qos filter qos …
register("codec.subscribe", (a) => {
  const filters: string[] = [];
  const qos: number[] = [];
  let count = 0;
  for (let k = 2; k + 1 < a.length; k += 2) {
    filters[count] = argText(a[k]);
    qos[count] = argInt(a[k + 1]);
    count = count + 1;
  }
  const cap = argInt(a[1]);
  const w = port.bytes.out(cap + 1);
  return out(w, encodeFilters(w, cap, argInt(a[0]), filters, qos, count));
});

// codec.unsubscribe id cap filter filter …
register("codec.unsubscribe", (a) => {
  const filters: string[] = [];
  for (let k = 2; k < a.length; k++) filters[k - 2] = argText(a[k]);
  const cap = argInt(a[1]);
  const w = port.bytes.out(cap + 1);
  return out(w, encodeFilters(w, cap, argInt(a[0]), filters, undefined, a.length - 2));
});

// codec.empty type cap (PINGREQ, DISCONNECT)
register("codec.empty", (a) => {
  const cap = argInt(a[1]);
  const w = port.bytes.out(cap + 1);
  return out(w, encodeShort(w, cap, argInt(a[0]), 0));
});

// codec.rl n: the remaining-length bytes for n
register("codec.rl", (a) => {
  const w = port.bytes.out(4);
  writeRemainingLength(w, argInt(a[0]));
  return outWire(w.toWire());
});

/** One decoder event, described the same way on every runtime (the harness builds the same text). */
export function describeEvent(d: Decoder): string {
  if (d.status === Status.Error) return "error " + codecErrorName(d.error);
  if (d.status === Status.Oversize) {
    return "oversize q=" + d.publishQos() + " id=" + d.packetId + " t=" + (d.topicEnd > d.topicStart ? outBytes(d.data, d.topicStart, d.topicEnd) : "?") +
      " len=" + d.payloadLength;
  }
  const t = d.type;
  if (t === PacketType.Connack) return "connack sp=" + d.data[d.bodyStart] + " rc=" + d.data[d.bodyStart + 1];
  if (t === PacketType.Publish) {
    return "publish q=" + d.publishQos() + " d=" + (d.headerFlags >= 8 ? 1 : 0) + " r=" + (d.headerFlags % 2) + " id=" + d.packetId +
      " t=" + outBytes(d.data, d.topicStart, d.topicEnd) + " p=" + outBytes(d.data, d.payloadStart, d.bodyStart + d.remaining);
  }
  if (t === PacketType.Suback) {
    let codes = "";
    // (the return codes follow the packet id)
    for (let k = 0; k < d.remaining - 2; k++) codes = codes + (k > 0 ? "," : "") + d.data[d.bodyStart + 2 + k];
    return "suback id=" + d.packetId + " c=" + codes;
  }
  if (t === PacketType.Pingresp) return "pingresp";
  const names = ["", "", "", "", "puback", "pubrec", "pubrel", "pubcomp", "", "", "", "unsuback"];
  return names[t] + " id=" + d.packetId;
}

/** Feeds buf[0..n) to a decoder in chunks of `split` bytes (0: one chunk); describes every event. */
export function decodeStream(d: Decoder, buf: Bytes, n: number, split: number): string {
  let s = "";
  let start = 0;
  while (start < n || (n === 0 && start === 0)) {
    const end = split > 0 && start + split < n ? start + split : n;
    const chunk = port.bytes.bytesOf(port.bytes.wireFrom(buf, start, end));
    const size = end - start;
    let at = 0;
    while (at < size) {
      at = d.feedChunk(chunk, at);
      if (d.status !== Status.NeedMore) s = s + (s === "" ? "" : ";") + describeEvent(d);
      if (d.status === Status.Error) return s;
    }
    start = end;
    if (n === 0) break;
  }
  return s === "" ? "nothing" : s;
}

// codec.decode stream split cap
register("codec.decode", (a) => {
  const buf = argBytes(a[0]);
  return decodeStream(new Decoder(argInt(a[2])), buf, argSize(a[0]), argInt(a[1]));
});

// codec.decodeHeader bytes cap: the remaining length the decoder read, and its status
register("codec.decodeHeader", (a) => {
  const d = new Decoder(argInt(a[1]));
  const buf = argBytes(a[0]);
  const s = decodeStream(d, buf, argSize(a[0]), 0);
  return "remaining=" + d.remaining + " " + s;
});

// codec.roundtrip topic payload qos retain dup id: encode a PUBLISH, decode it in 3-byte pieces
register("codec.roundtrip", (a) => {
  const w = port.bytes.out(70000);
  const end = encodePublish(w, 70000, argText(a[0]), argPayload(a[1]), argInt(a[2]), flag(a[3]), flag(a[4]), argInt(a[5]));
  if (end < 0) return "!" + codecErrorName(end);
  return decodeStream(new Decoder(70000), port.bytes.bytesOf(w.toWire()), end, 3);
});

// codec.roundtripAck type id
register("codec.roundtripAck", (a) => {
  const w = port.bytes.out(8);
  const end = encodeShort(w, 8, argInt(a[0]), argInt(a[1]));
  if (end < 0) return "!" + codecErrorName(end);
  return decodeStream(new Decoder(16), port.bytes.bytesOf(w.toWire()), end, 1);
});

register("topic.match", (a) => (topicMatches(argText(a[0]), argText(a[1])) ? "1" : "0"));
register("topic.name", (a) => codecErrorName(checkTopicShape(argText(a[0]))));
register("topic.filter", (a) => codecErrorName(checkFilterShape(argText(a[0]))));
register("utf8.check", (a) => codecErrorName(checkUtf8(argBytes(a[0]), 0, argSize(a[0]))));

// ---- the fuzzer: the same pseudo-random streams on every runtime, so the digests must agree ----

/** Park–Miller minimal standard generator by Schrage's method: no product exceeds 2^31. */
class Rng {
  private x: number;
  constructor(seed: number) {
    this.x = seed % 2147483646 + 1;
  }
  next(): number {
    const hi = port.ints.idiv(this.x, 44488);
    const lo = this.x % 44488;
    let t = 48271 * lo - 3399 * hi;
    if (t <= 0) t = t + 2147483647;
    this.x = t;
    return t;
  }
  below(n: number): number {
    return this.next() % n;
  }
}

/** Seed streams: valid packets of every type a client receives, and a few a broker would send. */
function seeds(): Bytes[] {
  const list: Bytes[] = [];
  const add = (hex: string) => {
    const b = argBytes("h:" + hex);
    list[list.length] = b;
  };
  add("20020000"); // CONNACK
  add("20020105"); // CONNACK session present, code 5
  add("30050001616869"); // PUBLISH QoS 0 "a" "hi"
  add("320900036162630007ff00"); // PUBLISH QoS 1 "abc" id 7
  add("34070001780005c2b0"); // PUBLISH QoS 2 "x" id 5 "°"
  add("3d0700026364000141"); // PUBLISH dup QoS 2 retain "cd" id 1 "A"
  add("3b0500017a0102"); // PUBLISH dup QoS 1 retain "z" id 258
  add("3214000462696721000a303132333435363738396162"); // PUBLISH QoS 1, oversize for a 16-byte buffer
  add("40020001"); // PUBACK
  add("50020002"); // PUBREC
  add("62020003"); // PUBREL
  add("70020004"); // PUBCOMP
  add("9005000a000180"); // SUBACK
  add("b0020009"); // UNSUBACK
  add("d000"); // PINGRESP
  return list;
}

const INTERESTING = [0, 1, 2, 3, 0x7f, 0x80, 0xff, 0xc0, 0xc2, 0xed, 0xf4, 0xf5, 43, 35, 0x20, 0x62, 0x3f, 0x30, 0x90];

// codec.fuzz seed iterations cap: status and error counts over mutated, randomly split streams
register("codec.fuzz", (a) => {
  const rng = new Rng(argInt(a[0]));
  const iterations = argInt(a[1]);
  const cap = argInt(a[2]);
  const base = seeds();
  const work: number[] = [];
  const counts: number[] = [];
  for (let k = 0; k < 40; k++) counts[k] = 0;
  const d = new Decoder(cap);
  for (let it = 0; it < iterations; it++) {
    // Concatenate 1..3 seed packets, then mutate 1..4 bytes.
    let n = 0;
    const parts = 1 + rng.below(3);
    for (let p = 0; p < parts; p++) {
      const b = base[rng.below(base.length)];
      for (let k = 0; k < b.length; k++) work[n + k] = b[k];
      n = n + b.length;
    }
    const muts = 1 + rng.below(4);
    for (let m = 0; m < muts; m++) {
      const at = rng.below(n);
      const kind = rng.below(4);
      if (kind === 0) work[at] = rng.below(256);
      else if (kind === 1) work[at] = INTERESTING[rng.below(INTERESTING.length)];
      else if (kind === 2) n = at + 1; // truncate
      else work[at] = 0x80 + rng.below(128); // continuation-looking byte
    }
    d.reset();
    let start = 0;
    const w = port.bytes.out(n);
    while (start < n) {
      const end = start + 1 + rng.below(n - start);
      for (let k = start; k < end; k++) w.byte(work[k]);
      const chunk = port.bytes.bytesOf(w.toWire());
      let at = 0;
      while (at < end - start) {
        at = d.feedChunk(chunk, at);
        if (d.status === Status.Error) counts[20 + d.error] = counts[20 + d.error] + 1;
        else if (d.status !== Status.NeedMore) counts[d.status] = counts[d.status] + 1;
      }
      start = end;
    }
  }
  let s = "packets=" + counts[1] + " oversize=" + counts[2];
  for (let k = 21; k < 40; k++) if (counts[k] > 0) s = s + " " + codecErrorName(k - 20) + "=" + counts[k];
  return s;
});


// ---- steady state: the hot path a connected client runs, for allocation counting ----

export interface Steady {
  tx: Out;
  cap: number;
  topic: string;
  payload: Payload;
  dec: Decoder;
  whole: Bytes;
  first: Bytes;
  second: Bytes;
  firstSize: number;
  ack: Bytes;
  packets: number;
}

/** Everything the loop needs, made once (the chunks stand for what a socket would deliver). */
export function steadySetup(payload: Payload): Steady {
  const cap = 256;
  const tx = port.bytes.out(cap);
  const topic = "sensors/kitchen/temperature";
  const end = encodePublish(tx, cap, topic, payload, 1, false, false, 7);
  const packet = port.bytes.bytesOf(tx.toWire());
  const chunk = (a: number, b: number): Bytes => port.bytes.bytesOf(port.bytes.wireFrom(packet, a, b));
  const whole = chunk(0, end);
  const firstSize = port.ints.idiv(end, 2);
  const first = chunk(0, firstSize);
  const second = chunk(firstSize, end);
  encodeShort(tx, cap, PacketType.Puback, 7);
  const ack = port.bytes.bytesOf(tx.toWire());
  return { tx, cap, topic, payload, dec: new Decoder(cap), whole, first, second, firstSize, ack, packets: 0 };
}

/**
 * `iterations` rounds of: encode a QoS 1 PUBLISH and its PUBACK (into the writer, cleared: the
 * copy a socket would take is the one allocation a send needs); decode a PUBLISH whole, one split
 * in two, and a PUBACK.
 */
export function steadyRun(st: Steady, iterations: number): number {
  const d = st.dec;
  for (let k = 0; k < iterations; k++) {
    const id = 1 + k % 65535;
    encodePublish(st.tx, st.cap, st.topic, st.payload, 1, false, false, id);
    st.tx.discard();
    encodeShort(st.tx, st.cap, PacketType.Puback, id);
    st.tx.discard();
    d.feedChunk(st.whole, 0);
    if (d.status === Status.Packet) st.packets = st.packets + 1;
    d.feedChunk(st.first, 0);
    d.feedChunk(st.second, 0);
    if (d.status === Status.Packet) st.packets = st.packets + 1;
    d.feedChunk(st.ack, 0);
    if (d.status === Status.Packet) st.packets = st.packets + 1;
  }
  return st.packets;
}
