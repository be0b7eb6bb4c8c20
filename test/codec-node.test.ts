import mqttPacket from "mqtt-packet";
import { describe, expect, it } from "vitest";
import { CodecError, PacketType, Status } from "../firmware/codec/constants";
import { Decoder } from "../firmware/codec/decoder";
import { LAST_CODEC_ERROR, codecErrorMessage, codecErrorName } from "../firmware/codec/errors";
import { encodePublish, encodeShort } from "../firmware/codec/encode";
import type { Bytes } from "../firmware/port/bytes";
import { installPort, port } from "../firmware/port/port";
import { nodePort } from "../firmware/targets/node/port";
import { encodeServerPacket, parseClientPacket } from "../host-sim/mqtt/broker-codec";
import { checkedBytes, checkedPort, OutOfBounds } from "./harness/checked-port";
import { petrelEncode, rng, seedFor } from "./harness/petrel-node";
import { describe as describePacket, payloadBytes, type Packet } from "./fixtures/packets";
import { decodeStream } from "./probe/suites/codec";

// Node-only codec proofs: agreement with mqtt-packet (the reference JavaScript codec) and with
// the host broker codec, and fuzzing through a port that throws on any out-of-bounds access.

type R = ReturnType<typeof rng>;
const WORDS = ["a", "b", "sensors", "°C", "€", "𝄞", "x1", "0", "kitchen", "$SYS", " ", "é"];
const topic = (r: R) => Array.from({ length: 1 + r.int(4) }, () => r.pick(WORDS)).join("/");
const filter = (r: R) => {
  const levels = Array.from({ length: 1 + r.int(4) }, () => (r.int(4) === 0 ? "+" : r.pick(WORDS)));
  if (r.int(3) === 0) levels.push("#");
  return levels.join("/");
};
const payload = (r: R): string | number[] =>
  r.bool() ? Array.from({ length: r.int(r.int(10) === 0 ? 2000 : 40) }, () => r.int(256)) : Array.from({ length: r.int(30) }, () => r.pick(WORDS)).join("");
const id = (r: R) => 1 + r.int(65535);

function clientPacket(r: R): Packet {
  switch (r.int(9)) {
    case 0: {
      const p: Packet = { cmd: "connect", clientId: r.bool() ? "" : topic(r).replace(/\//g, ""), clean: true, keepalive: r.int(65536) };
      if (p.clientId !== "") p.clean = r.bool();
      if (r.bool()) p.will = { topic: topic(r), payload: payload(r), qos: r.int(3), retain: r.bool() };
      if (r.bool()) {
        p.username = r.pick(WORDS);
        if (r.bool()) p.password = r.pick(WORDS) + "pw";
      }
      return p;
    }
    case 1: case 2: {
      const qos = r.int(3);
      const p: Packet = { cmd: "publish", topic: topic(r), payload: payload(r), qos, retain: r.bool(), dup: qos > 0 && r.bool() };
      if (qos > 0) p.messageId = id(r);
      return p;
    }
    case 3: return { cmd: r.pick(["puback", "pubrec", "pubrel", "pubcomp"] as const), messageId: id(r) };
    case 4: case 5: return { cmd: "subscribe", messageId: id(r), subscriptions: Array.from({ length: 1 + r.int(4) }, () => ({ topic: filter(r), qos: r.int(3) })) };
    case 6: return { cmd: "unsubscribe", messageId: id(r), unsubscriptions: Array.from({ length: 1 + r.int(4) }, () => filter(r)) };
    case 7: return { cmd: "pingreq" };
    default: return { cmd: "disconnect" };
  }
}

function serverPacket(r: R): Packet {
  switch (r.int(7)) {
    case 0: return { cmd: "connack", sessionPresent: r.bool(), returnCode: r.int(6) };
    case 1: case 2: {
      const qos = r.int(3);
      const p: Packet = { cmd: "publish", topic: topic(r), payload: payload(r), qos, retain: r.bool(), dup: qos > 0 && r.bool() };
      if (qos > 0) p.messageId = id(r);
      return p;
    }
    case 3: return { cmd: r.pick(["puback", "pubrec", "pubrel", "pubcomp", "unsuback"] as const), messageId: id(r) };
    case 4: return { cmd: "suback", messageId: id(r), granted: Array.from({ length: 1 + r.int(5) }, () => r.pick([0, 1, 2, 128])) };
    default: return { cmd: "pingresp" };
  }
}

/** The same packet in mqtt-packet's terms. */
function forMqttPacket(p: Packet): Record<string, unknown> {
  const q: Record<string, unknown> = { ...p };
  if (p.cmd === "connect") {
    q.protocolId = "MQTT";
    q.protocolVersion = 4;
    if (p.will) q.will = { ...p.will, payload: payloadBytes(p.will.payload) };
  }
  if (p.cmd === "publish") q.payload = payloadBytes(p.payload);
  return q;
}

function mqttParse(b: Buffer): Array<Record<string, unknown>> {
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const out: Array<Record<string, unknown>> = [];
  parser.on("packet", (x) => out.push(x as unknown as Record<string, unknown>));
  parser.on("error", (e: Error) => out.push({ error: e.message }));
  parser.parse(b);
  return out;
}

/** The fields both sides must agree on after parsing. */
function essentials(p: Record<string, unknown>): Record<string, unknown> {
  const pick = (...ks: string[]) => Object.fromEntries(ks.filter((k) => p[k] !== undefined).map((k) => [k, p[k]]));
  const bytes = (v: unknown) => (v === undefined ? undefined : Buffer.from(v as Uint8Array | string).toString("hex"));
  switch (p.cmd) {
    case "connect": {
      const w = p.will as Record<string, unknown> | undefined;
      return { ...pick("cmd", "clientId", "clean", "keepalive", "username"), password: bytes(p.password),
        will: w ? { topic: w.topic, payload: bytes(w.payload), qos: w.qos, retain: w.retain } : undefined };
    }
    case "publish": return { ...pick("cmd", "topic", "qos", "retain", "dup"), messageId: (p.qos as number) > 0 ? p.messageId : undefined, payload: bytes(p.payload) };
    case "subscribe": return { cmd: p.cmd, messageId: p.messageId, subscriptions: (p.subscriptions as Array<{ topic: string; qos: number }>).map((s) => ({ topic: s.topic, qos: s.qos })) };
    default: return pick("cmd", "messageId", "unsubscriptions");
  }
}

const CASES = 4000;

describe("codec against mqtt-packet", () => {
  it(`${CASES} random client packets: Petrel's bytes equal mqtt-packet's, and parse back identically`, () => {
    const r = rng(seedFor("mqtt-packet client"));
    for (let k = 0; k < CASES; k++) {
      const p = clientPacket(r);
      const ours = petrelEncode(p);
      if (typeof ours === "string") throw new Error(`Petrel refused ${JSON.stringify(p)}: ${ours}`);
      const theirs = mqttPacket.generate(forMqttPacket(p) as never);
      expect(ours.toString("hex"), JSON.stringify(p)).toBe(theirs.toString("hex"));
      const parsed = mqttParse(ours);
      expect(parsed.length).toBe(1);
      expect(essentials(parsed[0])).toEqual(essentials(forMqttPacket(p)));
    }
  });

  it(`${CASES} random broker packets from mqtt-packet decode identically in Petrel, split at random points`, () => {
    const r = rng(seedFor("mqtt-packet server"));
    for (let k = 0; k < CASES; k++) {
      const packets = Array.from({ length: 1 + r.int(3) }, () => serverPacket(r));
      const stream = Buffer.concat(packets.map((p) => mqttPacket.generate(forMqttPacket(p) as never)));
      const got = decodeStream(new Decoder(65536), stream as unknown as Bytes, stream.length, r.int(4) === 0 ? 0 : 1 + r.int(stream.length));
      expect(got).toBe(packets.map(describePacket).join(";"));
    }
  });
});

describe("codec against the host broker codec", () => {
  it(`${CASES} random client packets parse in the broker codec with the same fields`, () => {
    const r = rng(seedFor("broker codec client"));
    for (let k = 0; k < CASES; k++) {
      const p = clientPacket(r);
      const ours = petrelEncode(p) as Buffer;
      const parsed = parseClientPacket(ours);
      if (parsed === null || "error" in parsed) throw new Error(`broker codec refused ${JSON.stringify(p)}: ${JSON.stringify(parsed)}`);
      expect(parsed.length).toBe(ours.length);
      expect(essentials(parsed.packet as never)).toEqual(essentials(forMqttPacket(p)));
    }
  });
  it(`${CASES} random broker packets: the broker codec writes what mqtt-packet writes`, () => {
    const r = rng(seedFor("broker codec server"));
    for (let k = 0; k < CASES; k++) {
      const p = serverPacket(r);
      const b = encodeServerPacket(p.cmd === "publish" ? { ...p, payload: payloadBytes(p.payload) } : (p as never));
      expect(b.toString("hex")).toBe(mqttPacket.generate(forMqttPacket(p) as never).toString("hex"));
    }
  });
});

/** Every error the decoder can report. */
const DECODE_ERRORS = [CodecError.BadRemainingLength, CodecError.ReservedType, CodecError.InvalidFlags, CodecError.InvalidQos,
  CodecError.Truncated, CodecError.PacketTooLarge, CodecError.InvalidUtf8, CodecError.NullCharacter, CodecError.WildcardInTopic,
  CodecError.EmptyTopic, CodecError.ZeroPacketId, CodecError.BadLength, CodecError.UnexpectedType, CodecError.BadReturnCode,
  CodecError.BadConnackFlags].map(codecErrorName);
const INTERESTING = [0, 1, 2, 3, 0x7f, 0x80, 0xff, 0xc0, 0xc2, 0xed, 0xf4, 0xf5, 43, 35, 0x30, 0x32, 0x62, 0x90, 0x20, 0x10];
const FUZZ = 30000;

describe("decoder fuzz", () => {
  it(`${FUZZ} random and mutated streams, split anywhere: no throw, no out-of-bounds access, every decode error named`, () => {
    const r = rng(seedFor("decoder fuzz"));
    installPort(checkedPort);
    const seen = new Map<string, number>();
    const count = (k: string) => seen.set(k, (seen.get(k) ?? 0) + 1);
    try {
      const decoders = [4, 16, 64, 1024].map((cap) => new Decoder(cap));
      for (let it = 0; it < FUZZ; it++) {
        let bytes: number[];
        if (r.int(8) === 0) {
          bytes = Array.from({ length: 1 + r.int(40) }, () => r.int(256));
        } else {
          bytes = [];
          for (let p = 1 + r.int(3); p > 0; p--) {
            const pk = r.int(12) === 0 ? clientPacket(r) : serverPacket(r);
            const b = pk.cmd === "connect" || pk.cmd === "subscribe" || pk.cmd === "unsubscribe" || pk.cmd === "pingreq" || pk.cmd === "disconnect"
              ? (petrelEncode(pk) as Buffer) : encodeServerPacket(pk.cmd === "publish" ? { ...pk, payload: payloadBytes(pk.payload) } : (pk as never));
            bytes.push(...b);
          }
          for (let m = 1 + r.int(4); m > 0; m--) {
            const at = r.int(bytes.length);
            switch (r.int(7)) {
              case 0: bytes[at] = r.int(256); break;
              case 5: bytes[at] = 0; if (at + 1 < bytes.length) bytes[at + 1] = 0; break; // zero a 16-bit field
              case 1: bytes[at] = r.pick(INTERESTING); break;
              case 2: bytes.length = at + 1; break;
              case 3: bytes.splice(at, 0, r.pick(INTERESTING)); break;
              case 4: bytes.splice(at, 1); break;
              default: bytes[at] = 0x80 + r.int(128);
            }
          }
        }
        const d = r.pick(decoders);
        d.reset();
        const stream = Buffer.from(bytes);
        let start = 0;
        while (start < stream.length) {
          const end = start + 1 + r.int(stream.length - start);
          const chunk = checkedBytes(stream.subarray(start, end));
          let at = 0;
          let steps = 0;
          while (at < end - start) {
            const next = d.feedChunk(chunk, at);
            expect(next).toBeGreaterThanOrEqual(at);
            expect(next).toBeLessThanOrEqual(end - start);
            at = next;
            if (d.status === Status.Error) count(codecErrorName(d.error));
            else if (d.status === Status.Packet) {
              count("packet");
              expect(d.bodyStart + d.remaining).toBeLessThanOrEqual((d.data as unknown as Uint8Array).length);
              if (d.type === PacketType.Publish) {
                expect(d.bodyStart <= d.topicStart && d.topicStart < d.topicEnd && d.topicEnd <= d.payloadStart && d.payloadStart + d.payloadLength === d.bodyStart + d.remaining).toBe(true);
                d.topicText();
              }
            } else if (d.status === Status.Oversize) {
              count("oversize");
              expect(d.remaining).toBeGreaterThan(d.capacity);
              expect(d.payloadLength).toBeGreaterThanOrEqual(0);
            }
            if (++steps > 10000) throw new Error("decoder made no progress");
          }
          start = end;
        }
      }
    } catch (e) {
      if (e instanceof OutOfBounds) throw new Error(`out-of-bounds access: ${e.message}`);
      throw e;
    } finally {
      installPort(nodePort);
    }
    console.log(`[fuzz] decoder: ${[...seen].map(([k, v]) => `${k}=${v}`).join(" ")}`);
    for (const e of DECODE_ERRORS) expect(seen.get(e) ?? 0, `decode error ${e} never occurred`).toBeGreaterThan(0);
    expect(seen.get("packet") ?? 0).toBeGreaterThan(1000);
    expect(seen.get("oversize") ?? 0).toBeGreaterThan(0);
  });
});

/** Every error an encoder can report. */
const ENCODE_ERRORS = ["buffer-too-short", "invalid-qos", "wildcard-in-topic", "empty-topic", "invalid-packet-id", "invalid-flags",
  "null-character", "invalid-utf8", "string-too-long", "invalid-filter", "empty-client-id", "password-without-username",
  "invalid-keepalive", "no-filters", "packet-too-large", "unexpected-type"];

describe("encoder fuzz", () => {
  it(`${FUZZ / 3} random, often invalid, client packets: a named refusal or bytes the broker codec reads back`, async () => {
    const r = rng(seedFor("encoder fuzz"));
    const seen = new Map<string, number>();
    const bad = ["", "a/+", "#", "a\u0000", "\ud800x", "a/b+", "a/#/b", "t".repeat(65536)];
    const small = port.bytes.out(16);
    for (let k = 0; k < FUZZ / 3; k++) {
      const p = clientPacket(r) as Record<string, unknown>;
      // Break it, maybe.
      switch (r.int(10)) {
        case 0: if (p.cmd === "publish" || p.cmd === "connect") { if (p.cmd === "publish") p.topic = r.pick(bad); else p.clientId = r.pick(bad); } break;
        case 1: if (p.cmd === "publish") p.qos = r.pick([3, -1, 1.5]); else if (p.will) (p.will as Record<string, unknown>).qos = 3; break;
        case 2: if (p.messageId !== undefined) p.messageId = r.pick([0, 65536, -1]); if (p.cmd === "publish") { p.qos = 0; p.dup = true; } break;
        case 3: if (p.cmd === "subscribe") p.subscriptions = r.bool() ? [] : [{ topic: r.pick(bad), qos: 0 }]; else if (p.cmd === "unsubscribe") p.unsubscriptions = r.bool() ? [] : [r.pick(bad)]; break;
        case 4: if (p.cmd === "connect") { p.clientId = ""; p.clean = false; } break;
        case 5: if (p.cmd === "connect") { delete p.username; p.password = "pw"; } break;
        case 6: if (p.cmd === "connect") p.keepalive = r.pick([65536, -1, 1.5]); break;
        default: break;
      }
      const out = petrelEncode(p as Packet);
      if (typeof out === "string") {
        seen.set(out, (seen.get(out) ?? 0) + 1);
        expect(ENCODE_ERRORS, `unexpected refusal ${out}`).toContain(out);
        continue;
      }
      seen.set("ok", (seen.get("ok") ?? 0) + 1);
      const parsed = parseClientPacket(out);
      if (parsed === null || "error" in parsed) throw new Error(`Petrel wrote a packet the broker codec refuses: ${JSON.stringify(p)} ${JSON.stringify(parsed)}`);
      expect(essentials(parsed.packet as never)).toEqual(essentials(forMqttPacket(p as Packet)));
      // The same packet into a buffer that is too small is refused, never overrun.
      if (p.cmd === "publish" && out.length > 16) {
        const e = encodePublish(small, 16, p.topic as string, "x".repeat(20), 0, false, false, 0);
        seen.set(codecErrorName(e), (seen.get(codecErrorName(e)) ?? 0) + 1);
      }
    }
    seen.set(codecErrorName(encodePublish(small, 16, "t", undefined, 0, false, false, 0, 268435453)), 1);
    seen.set(codecErrorName(encodeShort(small, 16, PacketType.Connect, 1)), 1);
    seen.set(codecErrorName(encodeShort(small, 16, PacketType.Publish, 0)), 1);
    console.log(`[fuzz] encoder: ${[...seen].map(([k, v]) => `${k}=${v}`).join(" ")}`);
    for (const e of ENCODE_ERRORS) expect(seen.get(e) ?? 0, `encode error ${e} never occurred`).toBeGreaterThan(0);
    expect(port.target).toBe("node");
  });
});

describe("codec error tables", () => {
  it("every CodecError code has its own name and a message, and the switches end where the enum does", () => {
    const names = new Set<string>();
    for (let c = 1; c <= LAST_CODEC_ERROR; c++) {
      const name = codecErrorName(c);
      expect(name, `code ${c}`).toMatch(/^[a-z0-9]+(-[a-z0-9]+)*$/);
      expect(names.has(name), `duplicate name ${name}`).toBe(false);
      names.add(name);
      expect(codecErrorName(-c)).toBe(name);
      expect(codecErrorMessage(c).length, `message for ${name}`).toBeGreaterThan(15);
      expect(codecErrorMessage(c)).not.toBe("unknown codec error");
    }
    expect(codecErrorName(LAST_CODEC_ERROR + 1)).toBe("unknown");
    expect(codecErrorMessage(LAST_CODEC_ERROR + 1)).toBe("unknown codec error");
  });
});
