/**
 * The broker's side of MQTT 3.1.1, for host tools only (scripted brokers for byte-exact and
 * fault tests): decodes what clients send and encodes what brokers send. It never ships to a
 * board, so it uses Node Buffers and allocates freely. Strict: malformed input is an error with
 * the reason, never an exception.
 */

export type Payload = Buffer;
export interface Will { topic: string; payload: Buffer; qos: number; retain: boolean }
export type ClientPacket =
  | { cmd: "connect"; protocolName: string; protocolLevel: number; clientId: string; clean: boolean; keepalive: number;
      username?: string; password?: Buffer; will?: Will }
  | { cmd: "publish"; topic: string; payload: Buffer; qos: number; retain: boolean; dup: boolean; messageId?: number }
  | { cmd: "puback" | "pubrec" | "pubrel" | "pubcomp"; messageId: number }
  | { cmd: "subscribe"; messageId: number; subscriptions: Array<{ topic: string; qos: number }> }
  | { cmd: "unsubscribe"; messageId: number; unsubscriptions: string[] }
  | { cmd: "pingreq" | "disconnect" };
export type ServerPacket =
  | { cmd: "connack"; sessionPresent: boolean; returnCode: number }
  | { cmd: "publish"; topic: string; payload: Buffer | string; qos: number; retain: boolean; dup: boolean; messageId?: number }
  | { cmd: "puback" | "pubrec" | "pubrel" | "pubcomp" | "unsuback"; messageId: number }
  | { cmd: "suback"; messageId: number; granted: number[] }
  | { cmd: "pingresp" };

const TYPES: Record<string, number> = { connack: 2, publish: 3, puback: 4, pubrec: 5, pubrel: 6, pubcomp: 7, suback: 9, unsuback: 11, pingresp: 13 };

/** The remaining-length bytes for n (§2.2.3). */
export function remainingLength(n: number): number[] {
  const out: number[] = [];
  do {
    let d = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) d += 128;
    out.push(d);
  } while (n > 0);
  return out;
}

const str = (s: string) => {
  const b = Buffer.from(s, "utf8");
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 255]), b]);
};
const u16 = (n: number) => Buffer.from([n >> 8, n & 255]);

/** Encodes a packet a broker sends. */
export function encodeServerPacket(p: ServerPacket): Buffer {
  let first = TYPES[p.cmd] << 4;
  let body: Buffer;
  switch (p.cmd) {
    case "connack": body = Buffer.from([p.sessionPresent ? 1 : 0, p.returnCode]); break;
    case "publish":
      first |= (p.dup ? 8 : 0) | (p.qos << 1) | (p.retain ? 1 : 0);
      body = Buffer.concat([str(p.topic), p.qos > 0 ? u16(p.messageId ?? 0) : Buffer.alloc(0),
        typeof p.payload === "string" ? Buffer.from(p.payload, "utf8") : p.payload]);
      break;
    case "pubrel": first |= 2; body = u16(p.messageId); break;
    case "puback": case "pubrec": case "pubcomp": case "unsuback": body = u16(p.messageId); break;
    case "suback": body = Buffer.concat([u16(p.messageId), Buffer.from(p.granted)]); break;
    case "pingresp": body = Buffer.alloc(0); break;
  }
  return Buffer.concat([Buffer.from([first, ...remainingLength(body.length)]), body]);
}

export type Parsed = { packet: ClientPacket; length: number } | { error: string } | null;

/** A UTF-8 string field at `at`, checked as MQTT requires (§1.5.3). */
function readString(b: Buffer, at: number, end: number): { value: string; next: number } | { error: string } {
  if (at + 2 > end) return { error: "truncated string length" };
  const n = b.readUInt16BE(at);
  if (at + 2 + n > end) return { error: "truncated string" };
  const raw = b.subarray(at + 2, at + 2 + n);
  const value = raw.toString("utf8");
  if (!Buffer.from(value, "utf8").equals(raw)) return { error: "invalid UTF-8" };
  if (value.includes("\u0000")) return { error: "U+0000 in a string" };
  return { value, next: at + 2 + n };
}

function readBinary(b: Buffer, at: number, end: number): { value: Buffer; next: number } | { error: string } {
  if (at + 2 > end) return { error: "truncated binary length" };
  const n = b.readUInt16BE(at);
  if (at + 2 + n > end) return { error: "truncated binary" };
  return { value: Buffer.from(b.subarray(at + 2, at + 2 + n)), next: at + 2 + n };
}

/**
 * Parses the first packet in `b`: the packet and its length, `null` when more bytes are
 * needed, or an error naming what is malformed.
 */
export function parseClientPacket(b: Buffer): Parsed {
  if (b.length < 2) return null;
  let rem = 0;
  let mult = 1;
  let i = 1;
  for (;;) {
    if (i >= b.length) return null;
    const d = b[i++];
    rem += (d & 127) * mult;
    if (d < 128) break;
    if (i === 5) return { error: "remaining length over 4 bytes" };
    mult *= 128;
  }
  if (b.length < i + rem) return null;
  const type = b[0] >> 4;
  const flags = b[0] & 15;
  const start = i;
  const end = i + rem;
  const done = (packet: ClientPacket): Parsed => ({ packet, length: end });
  switch (type) {
    case 1: {
      if (flags !== 0) return { error: "CONNECT flags must be 0" };
      const name = readString(b, start, end);
      if ("error" in name) return name;
      if (name.next + 4 > end) return { error: "truncated CONNECT" };
      const level = b[name.next];
      const cf = b[name.next + 1];
      // a level this 3.1.1 broker does not speak (5.0's CONNECT has properties): what a 3.1.1
      // broker reads of it before it answers CONNACK 1 (§3.1.2.2)
      if (level !== 4) return done({ cmd: "connect", protocolName: name.value, protocolLevel: level, clientId: "", clean: (cf & 2) !== 0, keepalive: b.readUInt16BE(name.next + 2) });
      if (cf & 1) return { error: "CONNECT reserved flag set" };
      const keepalive = b.readUInt16BE(name.next + 2);
      const id = readString(b, name.next + 4, end);
      if ("error" in id) return id;
      let at = id.next;
      let will: Will | undefined;
      if (cf & 4) {
        const wt = readString(b, at, end);
        if ("error" in wt) return wt;
        const wp = readBinary(b, wt.next, end);
        if ("error" in wp) return wp;
        will = { topic: wt.value, payload: wp.value, qos: (cf >> 3) & 3, retain: (cf & 32) !== 0 };
        at = wp.next;
      } else if (cf & (8 | 16 | 32)) {
        return { error: "will QoS/retain set without a will" };
      }
      let username: string | undefined;
      let password: Buffer | undefined;
      if (cf & 128) {
        const u = readString(b, at, end);
        if ("error" in u) return u;
        username = u.value;
        at = u.next;
      }
      if (cf & 64) {
        const p = readBinary(b, at, end);
        if ("error" in p) return p;
        password = p.value;
        at = p.next;
      }
      if (at !== end) return { error: "CONNECT has trailing bytes" };
      const pkt: ClientPacket = { cmd: "connect", protocolName: name.value, protocolLevel: level, clientId: id.value,
        clean: (cf & 2) !== 0, keepalive };
      if (will) pkt.will = will;
      if (username !== undefined) pkt.username = username;
      if (password !== undefined) pkt.password = password;
      return done(pkt);
    }
    case 3: {
      const qos = (flags >> 1) & 3;
      if (qos === 3) return { error: "PUBLISH QoS 3" };
      const t = readString(b, start, end);
      if ("error" in t) return t;
      if (t.value.length === 0) return { error: "empty topic" };
      if (/[+#]/.test(t.value)) return { error: "wildcard in topic name" };
      let at = t.next;
      let messageId: number | undefined;
      if (qos > 0) {
        if (at + 2 > end) return { error: "truncated packet id" };
        messageId = b.readUInt16BE(at);
        if (messageId === 0) return { error: "packet id 0" };
        at += 2;
      }
      const pkt: ClientPacket = { cmd: "publish", topic: t.value, payload: Buffer.from(b.subarray(at, end)), qos,
        retain: (flags & 1) === 1, dup: (flags & 8) === 8 };
      if (messageId !== undefined) pkt.messageId = messageId;
      return done(pkt);
    }
    case 4: case 5: case 6: case 7: {
      const cmd = (["puback", "pubrec", "pubrel", "pubcomp"] as const)[type - 4];
      if (flags !== (type === 6 ? 2 : 0)) return { error: `${cmd.toUpperCase()} flags wrong` };
      if (rem !== 2) return { error: `${cmd.toUpperCase()} length must be 2` };
      const messageId = b.readUInt16BE(start);
      if (messageId === 0) return { error: "packet id 0" };
      return done({ cmd, messageId });
    }
    case 8: case 10: {
      if (flags !== 2) return { error: `${type === 8 ? "SUBSCRIBE" : "UNSUBSCRIBE"} flags must be 0010` };
      if (rem < 2) return { error: "truncated packet id" };
      const messageId = b.readUInt16BE(start);
      if (messageId === 0) return { error: "packet id 0" };
      let at = start + 2;
      const subs: Array<{ topic: string; qos: number }> = [];
      const unsubs: string[] = [];
      while (at < end) {
        const f = readString(b, at, end);
        if ("error" in f) return f;
        at = f.next;
        if (type === 8) {
          if (at >= end) return { error: "missing requested QoS" };
          const q = b[at++];
          if (q > 2) return { error: "requested QoS above 2" };
          subs.push({ topic: f.value, qos: q });
        } else {
          unsubs.push(f.value);
        }
      }
      if (subs.length + unsubs.length === 0) return { error: "no topic filters" };
      return done(type === 8 ? { cmd: "subscribe", messageId, subscriptions: subs } : { cmd: "unsubscribe", messageId, unsubscriptions: unsubs });
    }
    case 12: case 14:
      if (flags !== 0 || rem !== 0) return { error: "PINGREQ/DISCONNECT must be 2 bytes" };
      return done({ cmd: type === 12 ? "pingreq" : "disconnect" });
    default:
      return { error: `packet type ${type} is not sent by clients` };
  }
}

/** Splits a byte stream into client packets as bytes arrive. */
export class ClientStream {
  private buf: Buffer = Buffer.alloc(0);
  push(chunk: Buffer): Array<ClientPacket | { error: string }> {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: Array<ClientPacket | { error: string }> = [];
    for (;;) {
      const r = parseClientPacket(this.buf);
      if (r === null) return out;
      if ("error" in r) {
        out.push(r);
        this.buf = Buffer.alloc(0);
        return out;
      }
      out.push(r.packet);
      this.buf = this.buf.subarray(r.length);
    }
  }
}
