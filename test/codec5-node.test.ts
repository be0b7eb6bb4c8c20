import mqttPacket from "mqtt-packet";
import { describe, expect, it } from "vitest";
import { PacketType, Status } from "../firmware/codec/constants";
import { Decoder } from "../firmware/codec/decoder";
import { propsEndOf, propsOf, reasonOf } from "../firmware/codec/mqtt5";
import { encodeAck5, encodeConnect5, encodeFilters5, encodePublish5, encodeReason5, type Connect5Options } from "../firmware/codec/mqtt5";
import { codecErrorName } from "../firmware/codec/errors";
import { afterValue, findProp, Prop, textAt, u16At, u32At, varintAt, type Props5 } from "../firmware/codec/mqtt5";
import type { Bytes } from "../firmware/port/bytes";
import { installPort, port } from "../firmware/port/port";
import { nodePort } from "../firmware/targets/node/port";
import { checkedPort } from "./harness/checked-port";
import { rng, seedFor } from "./harness/petrel-node";

// MQTT 5.0 codec on Node: agreement with mqtt-packet's 5.0 (an independent encoder and parser)
// both ways, the property and reason-code checks, and a fuzz through a port that throws on any
// out-of-bounds read.

installPort(nodePort);
const V5 = { protocolVersion: 5 } as const;
const CAP = 70000;
const out = port.bytes.out(CAP);
const gen = (p: object) => mqttPacket.generate(p as mqttPacket.Packet, V5);

/** Parses what Petrel wrote with mqtt-packet at 5.0 (one packet). */
function parse(n: number): Record<string, unknown> {
  if (n < 0) throw new Error(`Petrel refused: ${codecErrorName(n)}`);
  const bytes = out.toWire() as unknown as Buffer;
  expect(bytes.length).toBe(n);
  const parser = mqttPacket.parser(V5);
  const got: Record<string, unknown>[] = [];
  parser.on("packet", (p) => got.push(p as unknown as Record<string, unknown>));
  parser.on("error", (e) => { throw e; });
  parser.parse(bytes);
  expect(got.length).toBe(1);
  return got[0];
}

/** A decoded packet's properties as [id, value] in order (values: numbers, texts, or [name, value]). */
function propsList(d: Decoder): Array<[number, unknown]> {
  const data = d.data;
  const end = propsEndOf(d);
  const list: Array<[number, unknown]> = [];
  let at = propsOf(d);
  for (let guard = 0; at < end && guard < 100; guard++) {
    const id = data[at];
    const v = findProp(data, at, end, id);
    let value: unknown;
    if (id === Prop.UserProperty) value = [textAt(data, v), textAt(data, v + 2 + u16At(data, v))];
    else if (id === Prop.SubscriptionId) value = varintAt(data, v, end);
    else if ([Prop.ContentType, Prop.ResponseTopic, Prop.AssignedClientId, Prop.AuthMethod, Prop.ResponseInfo, Prop.ServerReference, Prop.ReasonString].includes(id)) value = textAt(data, v);
    else if (id === Prop.CorrelationData || id === Prop.AuthData) value = Buffer.from(port.bytes.wireFrom(data, v + 2, v + 2 + u16At(data, v)) as unknown as Buffer).toString("hex");
    else if ([Prop.ServerKeepAlive, Prop.ReceiveMaximum, Prop.TopicAliasMaximum, Prop.TopicAlias].includes(id)) value = u16At(data, v);
    else if ([Prop.MessageExpiry, Prop.SessionExpiry, Prop.WillDelay, Prop.MaximumPacketSize].includes(id)) value = u32At(data, v);
    else value = data[v];
    list.push([id, value]);
    at = afterValue(data, v, end, id);
  }
  return list;
}

/** Feeds bytes to a 5.0 decoder in chunks of `split` bytes; the decoder after one packet (or an error). */
function decode(bytes: Buffer, split = bytes.length, cap = 4096): Decoder {
  const d = new Decoder(cap);
  let at = 0;
  let fed = 0;
  for (let guard = 0; guard < 100000 && fed < bytes.length; guard++) {
    const chunk = bytes.subarray(fed, Math.min(bytes.length, fed + split));
    at = 0;
    while (at < chunk.length) {
      at = d.feedChunk(chunk as unknown as Bytes, at, true);
      if (d.status !== Status.NeedMore) return d;
    }
    fed = fed + chunk.length;
  }
  return d;
}

const err = (d: Decoder) => (d.status === Status.Error ? codecErrorName(d.error) : "ok");

describe("MQTT 5.0 encoders, read back by mqtt-packet", () => {
  it("CONNECT with properties, a will with its own, user properties, and a password without a user name", () => {
    const c: Connect5Options = {
      clientId: "b1", clean: false, keepalive: 30, password: "pw",
      props: { sessionExpiry: 3600, receiveMaximum: 8, maximumPacketSize: 2048, topicAliasMaximum: 4, requestProblemInfo: 1, userProperties: ["fw", "1.0", "fw", "1.1"] },
      will: { topic: "n/status", payload: "offline", qos: 1, retain: true },
      willProps: { willDelay: 30, messageExpiry: 600, payloadFormat: 1, contentType: "text/plain", responseTopic: "r/t", correlationData: "\x01\x02" },
    };
    const p = parse(encodeConnect5(out, CAP, c));
    expect(p).toMatchObject({ cmd: "connect", protocolVersion: 5, clientId: "b1", clean: false, keepalive: 30, password: Buffer.from("pw") });
    expect(p.properties).toEqual({ sessionExpiryInterval: 3600, receiveMaximum: 8, maximumPacketSize: 2048, topicAliasMaximum: 4, requestProblemInformation: true, userProperties: { fw: ["1.0", "1.1"] } });
    expect(p.will).toMatchObject({ topic: "n/status", payload: Buffer.from("offline"), qos: 1, retain: true });
    expect((p.will as { properties: object }).properties).toEqual({ willDelayInterval: 30, messageExpiryInterval: 600, payloadFormatIndicator: true,
      contentType: "text/plain", responseTopic: "r/t", correlationData: Buffer.from([1, 2]) });
  });

  it("CONNECT: session expiry 0xFFFFFFFF written from -1; an empty client id with Clean Start 0 is the broker's to judge at 5.0", () => {
    const p = parse(encodeConnect5(out, CAP, { clientId: "", clean: false, keepalive: 0, props: { sessionExpiry: -1 } }));
    expect(p.properties).toEqual({ sessionExpiryInterval: 0xffffffff });
  });

  it("PUBLISH with properties; a topic alias with an empty topic; the header alone for a payload sent from where it lies", () => {
    let p = parse(encodePublish5(out, CAP, "s/t", "22.5", 1, false, true, 7,
      { payloadFormat: 1, messageExpiry: 60, topicAlias: 3, responseTopic: "s/r", correlationData: "c1", contentType: "json", userProperties: ["k", "v"] }));
    expect(p).toMatchObject({ cmd: "publish", topic: "s/t", qos: 1, dup: true, messageId: 7, payload: Buffer.from("22.5") });
    expect(p.properties).toEqual({ payloadFormatIndicator: true, messageExpiryInterval: 60, topicAlias: 3, responseTopic: "s/r",
      correlationData: Buffer.from("c1"), contentType: "json", userProperties: { k: "v" } });
    p = parse(encodePublish5(out, CAP, "", "x", 0, false, false, 0, { topicAlias: 3 }));
    expect(p).toMatchObject({ topic: "", payload: Buffer.from("x"), properties: { topicAlias: 3 } });
    const n = encodePublish5(out, CAP, "s/t", undefined, 0, false, false, 0, undefined, 100);
    out.discard();
    expect(n).toBe(1 + 1 + 2 + 3 + 1); // type, remaining length, topic length, topic, property length
  });

  it("acknowledgements: the id alone for success, the reason code when it is not 0, the properties when given", () => {
    expect(parse(encodeAck5(out, CAP, PacketType.Puback, 5, 0, undefined))).toMatchObject({ cmd: "puback", messageId: 5, length: 2 });
    expect(parse(encodeAck5(out, CAP, PacketType.Pubrec, 5, 0x10, undefined))).toMatchObject({ cmd: "pubrec", messageId: 5, reasonCode: 0x10, length: 3 });
    expect(parse(encodeAck5(out, CAP, PacketType.Pubrel, 5, 0x92, { reasonString: "gone" })))
      .toMatchObject({ cmd: "pubrel", messageId: 5, reasonCode: 0x92, properties: { reasonString: "gone" } });
    expect(parse(encodeAck5(out, CAP, PacketType.Pubcomp, 5, 0, { userProperties: ["a", "b"] })))
      .toMatchObject({ cmd: "pubcomp", messageId: 5, properties: { userProperties: { a: "b" } } });
  });

  it("SUBSCRIBE with options and a subscription identifier; UNSUBSCRIBE", () => {
    const opts = [1 + 4 + 8 + 2 * 16, 2];
    const p = parse(encodeFilters5(out, CAP, 9, ["a/#", "b/+"], opts, 2, { subscriptionId: 300, userProperties: ["u", "1"] }));
    expect(p).toMatchObject({ cmd: "subscribe", messageId: 9, properties: { subscriptionIdentifier: 300, userProperties: { u: "1" } } });
    expect(p.subscriptions).toEqual([{ topic: "a/#", qos: 1, nl: true, rap: true, rh: 2 }, { topic: "b/+", qos: 2, nl: false, rap: false, rh: 0 }]);
    expect(parse(encodeFilters5(out, CAP, 10, ["a/#"], undefined, 1, undefined))).toMatchObject({ cmd: "unsubscribe", messageId: 10, unsubscriptions: ["a/#"] });
  });

  it("DISCONNECT and AUTH: nothing for a plain DISCONNECT, reason and properties otherwise", () => {
    expect(parse(encodeReason5(out, CAP, PacketType.Disconnect, 0, undefined))).toMatchObject({ cmd: "disconnect", length: 0 });
    expect(parse(encodeReason5(out, CAP, PacketType.Disconnect, 0x04, { sessionExpiry: 0, reasonString: "bye" })))
      .toMatchObject({ cmd: "disconnect", reasonCode: 4, properties: { sessionExpiryInterval: 0, reasonString: "bye" } });
    expect(parse(encodeReason5(out, CAP, PacketType.Auth, 0x18, { authMethod: "SCRAM", authData: "\x00\x01" })))
      .toMatchObject({ cmd: "auth", reasonCode: 0x18, properties: { authenticationMethod: "SCRAM", authenticationData: Buffer.from([0, 1]) } });
  });

  it("refuses what 5.0 does not allow, naming it, and writes nothing", () => {
    const cases: Array<[number, string]> = [
      [encodeConnect5(out, CAP, { clientId: "a", clean: true, keepalive: 0, props: { topicAlias: 1 } }), "property-not-allowed"],
      [encodeConnect5(out, CAP, { clientId: "a", clean: true, keepalive: 0, props: { receiveMaximum: 0 } }), "bad-property-value"],
      [encodeConnect5(out, CAP, { clientId: "a", clean: true, keepalive: 0, props: { maximumPacketSize: 0 } }), "bad-property-value"],
      [encodeConnect5(out, CAP, { clientId: "a", clean: true, keepalive: 0, props: { userProperties: ["odd"] } }), "bad-property-value"],
      [encodeConnect5(out, CAP, { clientId: "a", clean: true, keepalive: 0, willProps: { willDelay: 5 } }), "property-not-allowed"],
      [encodePublish5(out, CAP, "t", "x", 0, false, false, 0, { subscriptionId: 1 }), "property-not-allowed"],
      [encodePublish5(out, CAP, "t", "x", 0, false, false, 0, { topicAlias: 0 }), "bad-property-value"],
      [encodePublish5(out, CAP, "t", "x", 0, false, false, 0, { payloadFormat: 2 }), "bad-property-value"],
      [encodePublish5(out, CAP, "", "x", 0, false, false, 0, undefined), "empty-topic"],
      [encodePublish5(out, CAP, "t", "x", 0, false, false, 0, { contentType: "a\u0000b" }), "null-character"],
      [encodeFilters5(out, CAP, 1, ["a"], [3 * 16], 1, undefined), "invalid-qos"],
      [encodeFilters5(out, CAP, 1, ["a"], undefined, 1, { subscriptionId: 4 }), "property-not-allowed"],
      [encodeAck5(out, CAP, PacketType.Puback, 1, 0, { sessionExpiry: 1 }), "property-not-allowed"],
      [encodeReason5(out, CAP, PacketType.Disconnect, 0, { authMethod: "x" }), "property-not-allowed"],
      [encodePublish5(out, 20, "t", "x".repeat(20), 0, false, false, 0, { messageExpiry: 5 }), "buffer-too-short"],
    ];
    for (const [n, name] of cases) expect(codecErrorName(n)).toBe(name);
    expect(out.size).toBe(0);
  });
});

describe("MQTT 5.0 decoder, fed by mqtt-packet", () => {
  it("CONNACK: reason code, session present, and every property the broker may send, found where they lie", () => {
    const b = gen({ cmd: "connack", sessionPresent: true, reasonCode: 0, properties: {
      sessionExpiryInterval: 120, receiveMaximum: 10, maximumQoS: 1, retainAvailable: false, maximumPacketSize: 1000,
      assignedClientIdentifier: "auto-1", topicAliasMaximum: 5, reasonString: "welcome", userProperties: { a: "1", b: ["2", "3"] },
      wildcardSubscriptionAvailable: false, subscriptionIdentifiersAvailable: true, sharedSubscriptionAvailable: false,
      serverKeepAlive: 30, responseInformation: "resp/", serverReference: "other:1883", authenticationMethod: "m", authenticationData: Buffer.from([9]) } });
    for (const split of [b.length, 1, 3]) {
      const d = decode(b, split);
      expect(err(d)).toBe("ok");
      expect([d.type, d.data[d.bodyStart], reasonOf(d)]).toEqual([PacketType.Connack, 1, 0]);
      const props = new Map(propsList(d).filter(([id]) => id !== Prop.UserProperty));
      expect(Object.fromEntries(props)).toEqual({
        [Prop.SessionExpiry]: 120, [Prop.ReceiveMaximum]: 10, [Prop.MaximumQos]: 1, [Prop.RetainAvailable]: 0, [Prop.MaximumPacketSize]: 1000,
        [Prop.AssignedClientId]: "auto-1", [Prop.TopicAliasMaximum]: 5, [Prop.ReasonString]: "welcome", [Prop.WildcardAvailable]: 0,
        [Prop.SubscriptionIdAvailable]: 1, [Prop.SharedAvailable]: 0, [Prop.ServerKeepAlive]: 30, [Prop.ResponseInfo]: "resp/",
        [Prop.ServerReference]: "other:1883", [Prop.AuthMethod]: "m", [Prop.AuthData]: "09" });
      expect(propsList(d).filter(([id]) => id === Prop.UserProperty).map(([, v]) => v)).toEqual([["a", "1"], ["b", "2"], ["b", "3"]]);
    }
    const refused = decode(gen({ cmd: "connack", sessionPresent: false, reasonCode: 0x87, properties: { reasonString: "not authorized" } }));
    expect([err(refused), reasonOf(refused)]).toEqual(["ok", 0x87]);
  });

  it("PUBLISH: payload after the properties; repeated subscription identifiers; an empty topic with a topic alias", () => {
    const b = gen({ cmd: "publish", topic: "", payload: Buffer.from("hi"), qos: 2, messageId: 3, dup: false, retain: true,
      properties: { topicAlias: 2, subscriptionIdentifier: [1, 300], payloadFormatIndicator: true, correlationData: Buffer.from("c"), messageExpiryInterval: 9 } });
    const d = decode(b, 2);
    expect(err(d)).toBe("ok");
    expect([d.packetId, d.publishQos(), d.headerFlags % 2, d.topicEnd - d.topicStart]).toEqual([3, 2, 1, 0]);
    expect(Buffer.from(port.bytes.wireFrom(d.data, d.payloadStart, d.payloadStart + d.payloadLength) as unknown as Buffer).toString()).toBe("hi");
    // in the order mqtt-packet writes them
    expect(propsList(d)).toEqual([[Prop.TopicAlias, 2], [Prop.SubscriptionId, 1], [Prop.SubscriptionId, 300], [Prop.PayloadFormat, 1],
      [Prop.CorrelationData, "63"], [Prop.MessageExpiry, 9]]);
    const plain = decode(gen({ cmd: "publish", topic: "a/b", payload: Buffer.from("x"), qos: 0, dup: false, retain: false }));
    expect([err(plain), plain.topicText(), plain.payloadLength, propsOf(plain) === propsEndOf(plain)]).toEqual(["ok", "a/b", 1, true]);
  });

  it("acknowledgements with and without reason codes; SUBACK and UNSUBACK codes after their properties; DISCONNECT and AUTH", () => {
    const short = decode(gen({ cmd: "puback", messageId: 4 }));
    expect([err(short), short.packetId, reasonOf(short)]).toEqual(["ok", 4, 0]);
    const rec = decode(gen({ cmd: "pubrec", messageId: 4, reasonCode: 0x97, properties: { reasonString: "quota" } }));
    expect([err(rec), reasonOf(rec), propsList(rec)]).toEqual(["ok", 0x97, [[Prop.ReasonString, "quota"]]]);
    const sub = decode(gen({ cmd: "suback", messageId: 6, granted: [0, 1, 0x80, 0xa2], properties: { reasonString: "partly" } }));
    const at = propsEndOf(sub);
    expect([err(sub), Array.from({ length: sub.bodyStart + sub.remaining - at }, (_, k) => sub.data[at + k])]).toEqual(["ok", [0, 1, 0x80, 0xa2]]);
    const unsub = decode(gen({ cmd: "unsuback", messageId: 6, granted: [0, 0x11] }));
    expect([err(unsub), unsub.data[propsEndOf(unsub)], unsub.data[propsEndOf(unsub) + 1]]).toEqual(["ok", 0, 0x11]);
    const dis = decode(gen({ cmd: "disconnect", reasonCode: 0x9c, properties: { serverReference: "b:1883", reasonString: "moved" } }));
    expect([err(dis), dis.type, reasonOf(dis), propsList(dis)]).toEqual(["ok", PacketType.Disconnect, 0x9c, [[Prop.ServerReference, "b:1883"], [Prop.ReasonString, "moved"]]]);
    const empty = decode(Buffer.from([0xe0, 0]));
    expect([err(empty), reasonOf(empty)]).toEqual(["ok", 0]);
    const auth = decode(gen({ cmd: "auth", reasonCode: 0x18, properties: { authenticationMethod: "m", authenticationData: Buffer.from([1]) } }));
    expect([err(auth), auth.type, reasonOf(auth), propsList(auth)]).toEqual(["ok", PacketType.Auth, 0x18, [[Prop.AuthMethod, "m"], [Prop.AuthData, "01"]]]);
  });

  it("at 3.1.1 the same decoder still refuses AUTH and a broker's DISCONNECT", () => {
    const d = new Decoder(100);
    d.feedChunk(Buffer.from([0xf0, 0]) as unknown as Bytes, 0);
    expect(codecErrorName(d.error)).toBe("reserved-type");
    const e = new Decoder(100);
    e.feedChunk(Buffer.from([0xe0, 0]) as unknown as Bytes, 0);
    expect(codecErrorName(e.error)).toBe("unexpected-type");
  });

  it("malformed properties and reason codes are named errors (duplicate, wrong packet, bad value, unknown, overrun, non-minimal)", () => {
    const connack = (props: number[], reason = 0) => Buffer.from([0x20, 3 + props.length, 0, reason, props.length, ...props]);
    const cases: Array<[Buffer, string]> = [
      [connack([0x21, 0, 5, 0x21, 0, 6]), "duplicate-property"],
      [connack([0x23, 0, 1]), "property-not-allowed"],
      [connack([0x21, 0, 0]), "bad-property-value"],
      [connack([0x24, 2]), "bad-property-value"],
      [connack([0x25, 7]), "bad-property-value"],
      [connack([0x27, 0, 0, 0, 0]), "bad-property-value"],
      [connack([0x7f, 1]), "unknown-property"],
      [connack([0x1f, 0, 9, 0x61]), "truncated"],
      [connack([0x1f, 0, 1, 0xff]), "invalid-utf8"],
      [connack([]), "ok"],
      [connack([], 0x05), "bad-reason-code"],
      [Buffer.from([0x20, 4, 0, 0, 5, 0x21]), "bad-property-length"],
      [Buffer.from([0x20, 2, 0, 0]), "bad-length"],
      [Buffer.from([0x40, 3, 0, 1, 0x05]), "bad-reason-code"],
      [Buffer.from([0x40, 6, 0, 1, 0, 2, 0x11, 0]), "property-not-allowed"],
      [Buffer.from([0x40, 6, 0, 1, 0, 2, 0x1f, 0]), "truncated"],
      [Buffer.from([0x40, 9, 0, 1, 0, 5, 0x11, 0, 0, 0, 0]), "property-not-allowed"],
      [Buffer.from([0x30, 5, 0, 0, 0x80, 0x00, 0x78]), "bad-property-length"],
      [Buffer.from([0x30, 4, 0, 0, 0, 0x78]), "empty-topic"],
      [Buffer.from([0x30, 8, 0, 1, 0x61, 3, 0x0b, 0, 0, 0x78].slice(0, 10)), "bad-property-value"],
      [Buffer.from([0x30, 9, 0, 1, 0x61, 4, 0x23, 0, 1, 0x23, 0]), "duplicate-property"],
      [Buffer.from([0x30, 6, 0, 1, 0x61, 2, 0x23, 0]), "truncated"],
      [Buffer.from([0x90, 4, 0, 1, 0, 3]), "bad-reason-code"],
      [Buffer.from([0x90, 3, 0, 1, 0]), "bad-length"],
      [Buffer.from([0xb0, 4, 0, 1, 0, 1]), "bad-reason-code"],
      [Buffer.from([0xe0, 1, 0x04]), "bad-reason-code"],
      [Buffer.from([0xe0, 6, 0x8b, 4, 0x11, 0, 0, 0]), "truncated"],
      [Buffer.from([0xe0, 7, 0x8b, 5, 0x15, 0, 2, 0x61, 0x62]), "property-not-allowed"],
      [Buffer.from([0xf0, 1, 0x01]), "bad-reason-code"],
      [Buffer.from([0x10, 0]), "unexpected-type"],
      [Buffer.from([0x00, 0]), "reserved-type"],
    ];
    for (const [b, name] of cases) expect([b.toString("hex"), err(decode(b))]).toEqual([b.toString("hex"), name]);
  });
});

describe("MQTT 5.0 codec, random packets", () => {
  const WORDS = ["a", "b", "sensors", "°C", "€", "𝄞", "x1", "0", "$SYS", " ", "é"];
  type R = ReturnType<typeof rng>;
  const text = (r: R) => Array.from({ length: 1 + r.int(3) }, () => r.pick(WORDS)).join("/");
  const users = (r: R): Record<string, string | string[]> | undefined => (r.bool() ? undefined : { [r.pick(WORDS)]: r.pick(WORDS), k: [text(r), text(r)] });

  function brokerPacket(r: R): Record<string, unknown> {
    switch (r.int(6)) {
      case 0: return { cmd: "connack", sessionPresent: r.bool(), reasonCode: r.pick([0, 0x80, 0x85, 0x87, 0x9c]), properties: {
        receiveMaximum: 1 + r.int(65535), topicAliasMaximum: r.int(10), maximumQoS: r.int(2), serverKeepAlive: r.int(1000),
        reasonString: r.bool() ? text(r) : undefined, userProperties: users(r), assignedClientIdentifier: r.bool() ? text(r) : undefined } };
      case 1: return { cmd: "publish", topic: text(r), payload: Buffer.from(text(r).repeat(r.int(50))), qos: r.int(3), messageId: 1 + r.int(65535),
        dup: false, retain: r.bool(), properties: { messageExpiryInterval: r.bool() ? r.int(100000) : undefined, topicAlias: r.bool() ? 1 + r.int(9) : undefined,
          subscriptionIdentifier: r.bool() ? [1 + r.int(300), 1 + r.int(268435455)] : undefined, responseTopic: r.bool() ? text(r) : undefined, userProperties: users(r) } };
      case 2: return { cmd: r.pick(["puback", "pubrec"]), messageId: 1 + r.int(65535), reasonCode: r.pick([0, 0x10, 0x80, 0x97]),
        properties: r.bool() ? { reasonString: text(r), userProperties: users(r) } : undefined };
      case 3: return { cmd: "suback", messageId: 1 + r.int(65535), granted: Array.from({ length: 1 + r.int(5) }, () => r.pick([0, 1, 2, 0x80, 0x97])),
        properties: r.bool() ? { reasonString: text(r) } : undefined };
      case 4: return { cmd: "disconnect", reasonCode: r.pick([0, 0x8b, 0x8e, 0x9c]), properties: r.bool() ? { serverReference: text(r), userProperties: users(r) } : undefined };
      default: return { cmd: "pubrel", messageId: 1 + r.int(65535), reasonCode: r.pick([0, 0x92]) };
    }
  }

  it("5,000 broker packets from mqtt-packet, split anywhere: every one decodes, with the same fields and properties", () => {
    const r = rng(seedFor("codec5 broker packets"));
    for (let i = 0; i < 5000; i++) {
      const p = brokerPacket(r);
      const b = gen(p);
      const d = decode(b, 1 + r.int(b.length + 1));
      expect([JSON.stringify(p), err(d)]).toEqual([JSON.stringify(p), "ok"]);
      const parser = mqttPacket.parser(V5);
      let back: Record<string, unknown> | undefined;
      parser.on("packet", (x) => { back = x as unknown as Record<string, unknown>; });
      parser.parse(b);
      if (p.cmd === "publish") {
        expect([d.topicText(), d.packetId !== 0 ? d.packetId : undefined, d.payloadLength]).toEqual([back!.topic, back!.messageId, (back!.payload as Buffer).length]);
      } else if (p.cmd !== "suback" && p.cmd !== "connack") {
        expect(reasonOf(d)).toBe(back!.reasonCode ?? 0);
      }
      const ups = propsList(d).filter(([id]) => id === Prop.UserProperty).length;
      const want = Object.values(((back!.properties ?? {}) as { userProperties?: Record<string, string | string[]> }).userProperties ?? {})
        .reduce((n: number, v) => n + (Array.isArray(v) ? v.length : 1), 0);
      expect(ups).toBe(want);
    }
  });

  it("3,000 client packets from Petrel, read back by mqtt-packet with the same fields", () => {
    const r = rng(seedFor("codec5 client packets"));
    for (let i = 0; i < 3000; i++) {
      const props: Props5 = { userProperties: r.bool() ? [text(r), text(r)] : undefined };
      const topic = text(r);
      const qos = r.int(3);
      if (r.bool()) props.messageExpiry = r.int(2147483647);
      if (r.bool()) props.responseTopic = text(r);
      const p = parse(encodePublish5(out, CAP, topic, text(r), qos, r.bool(), false, qos > 0 ? 1 + r.int(65535) : 0, props));
      expect(p.topic).toBe(topic);
      expect((p.properties as { messageExpiryInterval?: number } | undefined)?.messageExpiryInterval).toBe(props.messageExpiry);
    }
  });

  it("20,000 mutated 5.0 packets through a bounds-checking port: no throw, no out-of-bounds read, every error named", () => {
    const r = rng(seedFor("codec5 fuzz"));
    installPort(checkedPort);
    const names = new Set<string>();
    try {
      for (let i = 0; i < 20000; i++) {
        const b = Array.from(gen(brokerPacket(r)));
        for (let m = 1 + r.int(3); m > 0; m--) b[r.int(b.length)] = r.pick([0, 1, 0x7f, 0x80, 0xff, 0x26, 0x0b, 0x23, r.int(256)]);
        const d = new Decoder(r.pick([16, 256, 4096]));
        const chunk = port.bytes.wireFrom(Uint8Array.from(b) as unknown as Bytes, 0, b.length) as unknown as Bytes;
        let at = 0;
        for (let guard = 0; guard < 1000 && at < b.length && d.status !== Status.Error; guard++) {
          at = d.feedChunk(chunk, at, true);
          if (d.status === Status.Packet && d.type !== PacketType.Pingresp) { propsOf(d); propsEndOf(d); reasonOf(d); }
        }
        names.add(d.status === Status.Error ? codecErrorName(d.error) : "ok");
      }
    } finally {
      installPort(nodePort);
    }
    expect([...names].filter((n) => n === "unknown")).toEqual([]);
    expect(names.has("ok")).toBe(true);
    expect(names.has("duplicate-property") || names.has("unknown-property")).toBe(true);
  });
});
