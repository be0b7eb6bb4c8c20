import mqttPacket from "mqtt-packet";
import { arg, crossTarget, type Case } from "./harness/matrix";

// MQTT 5.0's codec on every runtime of the matrix: broker packets built by mqtt-packet (an
// independent encoder) decoded at 5.0, whole and split into pieces, and fixed client packets
// compared byte for byte with mqtt-packet's encoding of the same. The expected descriptions are
// built here from mqtt-packet's bytes and fields, never from Petrel.

const V5 = { protocolVersion: 5 } as const;
const gen = (p: object) => mqttPacket.generate(p as mqttPacket.Packet, V5);
const hex = (b: Buffer | number[]) => Buffer.from(b).toString("hex");

/** A variable byte integer at b[at]: [value, bytes]. */
function varint(b: Buffer, at: number): [number, number] {
  let v = 0;
  let mult = 1;
  for (let k = 0; k < 4; k++) {
    v += (b[at + k] & 127) * mult;
    if (b[at + k] < 128) return [v, k + 1];
    mult *= 128;
  }
  throw new Error("bad varint");
}

/** The body offset of a whole packet (after its fixed header). */
const bodyAt = (b: Buffer) => 1 + varint(b, 1)[1];

/** The property block's bytes at b[at] (at the length field) and where the block ends. */
function block(b: Buffer, at: number): [string, number] {
  const [len, n] = varint(b, at);
  return [hex(b.subarray(at + n, at + n + len)), at + n + len];
}

interface Seen { rm?: number; mq?: number; se?: number; rs?: string; si?: number; ci?: boolean; up?: number }
const foundText = (f: Seen) => (f.rm !== undefined ? ` rm=${f.rm}` : "") + (f.mq !== undefined ? ` mq=${f.mq}` : "") +
  (f.se !== undefined ? ` se=${f.se}` : "") + (f.rs !== undefined ? ` rs=${hex(Buffer.from(f.rs))}` : "") + (f.si !== undefined ? ` si=${f.si}` : "") +
  (f.ci ? " ci=auto-1" : "") + (f.up ? ` up=${f.up}` : "");
const users = (u?: Record<string, string | string[]>) => Object.values(u ?? {}).reduce((n: number, v) => n + (Array.isArray(v) ? v.length : 1), 0);

/** The description the probe gives of broker packet `p` (see test/probe/suites/codec5.ts). */
function described(p: Record<string, unknown>): string {
  const b = gen(p);
  const at = bodyAt(b);
  const props = (p.properties ?? {}) as Record<string, unknown>;
  const f: Seen = { rm: props.receiveMaximum as number | undefined, mq: props.maximumQoS as number | undefined,
    se: props.sessionExpiryInterval as number | undefined, rs: props.reasonString as string | undefined,
    si: Array.isArray(props.subscriptionIdentifier) ? props.subscriptionIdentifier[0] : props.subscriptionIdentifier as number | undefined,
    ci: props.assignedClientIdentifier === "auto-1", up: users(props.userProperties as Record<string, string | string[]> | undefined) };
  switch (p.cmd) {
    case "connack": return `type=2 rc=${p.reasonCode} sp=${p.sessionPresent ? 1 : 0} props=${block(b, at + 2)[0]}${foundText(f)}`;
    case "publish": {
      const tl = b.readUInt16BE(at);
      const q = p.qos as number;
      const [pr, end] = block(b, at + 2 + tl + (q > 0 ? 2 : 0));
      return `type=3 rc=0 q=${q} t=${hex(b.subarray(at + 2, at + 2 + tl))} p=${hex(b.subarray(end))} props=${pr}${foundText(f)}`;
    }
    case "suback": case "unsuback": {
      const [pr, end] = block(b, at + 2);
      return `type=${p.cmd === "suback" ? 9 : 11} rc=0 id=${p.messageId} codes=${hex(b.subarray(end))} props=${pr}${foundText(f)}`;
    }
    case "disconnect": case "auth": {
      const t = p.cmd === "auth" ? 15 : 14;
      const pr = b.length - at >= 2 ? block(b, at + 1)[0] : "";
      return `type=${t} rc=${b.length > at ? b[at] : 0} props=${pr}${foundText(f)}`;
    }
    default: {
      const t = { puback: 4, pubrec: 5, pubrel: 6, pubcomp: 7 }[p.cmd as string]!;
      const pr = b.length - at >= 4 ? block(b, at + 3)[0] : "";
      return `type=${t} rc=${b.length - at >= 3 ? b[at + 2] : 0} id=${p.messageId} props=${pr}${foundText(f)}`;
    }
  }
}

const BROKER: Record<string, unknown>[] = [
  { cmd: "connack", sessionPresent: true, reasonCode: 0, properties: { receiveMaximum: 10, maximumQoS: 1, sessionExpiryInterval: 120,
    assignedClientIdentifier: "auto-1", topicAliasMaximum: 5, serverKeepAlive: 30, userProperties: { a: "1", b: ["2", "3"] } } },
  { cmd: "connack", sessionPresent: false, reasonCode: 0x87, properties: { reasonString: "not authorized" } },
  { cmd: "connack", sessionPresent: false, reasonCode: 0 },
  { cmd: "publish", topic: "s/°C", payload: Buffer.from("21.5"), qos: 1, messageId: 7, dup: false, retain: false,
    properties: { subscriptionIdentifier: [300, 2], payloadFormatIndicator: true, responseTopic: "r", correlationData: Buffer.from([0, 1]), userProperties: { k: "v" } } },
  { cmd: "publish", topic: "", payload: Buffer.from("x"), qos: 0, dup: false, retain: false, properties: { topicAlias: 2 } },
  { cmd: "publish", topic: "a", payload: Buffer.alloc(0), qos: 2, messageId: 65535, dup: false, retain: true },
  { cmd: "puback", messageId: 4 },
  { cmd: "pubrec", messageId: 4, reasonCode: 0x97, properties: { reasonString: "quota" } },
  { cmd: "pubcomp", messageId: 9, reasonCode: 0x92 },
  { cmd: "suback", messageId: 6, granted: [0, 1, 0x80, 0xa2], properties: { reasonString: "partly" } },
  { cmd: "unsuback", messageId: 6, granted: [0, 0x11] },
  { cmd: "disconnect", reasonCode: 0x9c, properties: { serverReference: "b:1883", reasonString: "moved" } },
  { cmd: "disconnect", reasonCode: 0x8b },
  { cmd: "auth", reasonCode: 0x18, properties: { authenticationMethod: "m", authenticationData: Buffer.from([1]) } },
];

const decodeCases: Case[] = BROKER.flatMap((p, i) => [0, 1, 3].map((split) => ({
  name: `decode ${i} ${p.cmd} split ${split}`, op: "codec5.decode", args: [arg.hex(gen(p)), arg.int(split), arg.int(1024)], expect: described(p),
})));

// one stream of several packets, split in threes: each described in turn
const stream = Buffer.concat([BROKER[0], BROKER[3], BROKER[7], BROKER[11]].map(gen));
decodeCases.push({ name: "a stream of four packets in 3-byte pieces", op: "codec5.decode", args: [arg.hex(stream), arg.int(3), arg.int(1024)],
  expect: [BROKER[0], BROKER[3], BROKER[7], BROKER[11]].map(described).join(";") });

const bad: Array<[string, number[], string]> = [
  ["duplicate property", [0x20, 9, 0, 0, 6, 0x21, 0, 5, 0x21, 0, 6], "error duplicate-property"],
  ["property not allowed in CONNACK", [0x20, 6, 0, 0, 3, 0x23, 0, 1], "error property-not-allowed"],
  ["receive maximum 0", [0x20, 6, 0, 0, 3, 0x21, 0, 0], "error bad-property-value"],
  ["maximum QoS 2", [0x20, 5, 0, 0, 2, 0x24, 2], "error bad-property-value"],
  ["unknown property", [0x20, 5, 0, 0, 2, 0x7f, 1], "error unknown-property"],
  ["a string past its block", [0x20, 7, 0, 0, 4, 0x1f, 0, 9, 0x61], "error truncated"],
  ["a CONNACK reason code 3.1.1 has but 5.0 does not", [0x20, 3, 0, 5, 0], "error bad-reason-code"],
  ["a property length past the packet", [0x20, 4, 0, 0, 5, 0x21], "error bad-property-length"],
  ["a property length not in its shortest form", [0x30, 5, 0, 0, 0x80, 0, 0x78], "error bad-property-length"],
  ["an empty topic without a topic alias", [0x30, 4, 0, 0, 0, 0x78], "error empty-topic"],
  ["subscription identifier 0", [0x30, 7, 0, 1, 0x61, 2, 0x0b, 0, 0x78], "error bad-property-value"],
  ["the client's DISCONNECT reason from a broker", [0xe0, 1, 4], "error bad-reason-code"],
  ["session expiry in a broker's DISCONNECT is allowed, auth method is not", [0xe0, 7, 0x8b, 5, 0x15, 0, 2, 0x61, 0x62], "error property-not-allowed"],
  ["a SUBACK code 5.0 does not define", [0x90, 4, 0, 1, 0, 3], "error bad-reason-code"],
  ["a SUBACK with no code", [0x90, 3, 0, 1, 0], "error bad-length"],
  ["CONNECT from a broker", [0x10, 0], "error unexpected-type"],
];
const badCases: Case[] = bad.map(([name, bytes, expect]) => ({ name, op: "codec5.decode", args: [arg.hex(bytes), arg.int(0), arg.int(1024)], expect }));

// the client packets the probe writes (codec5.encode k), as mqtt-packet writes them
const CLIENT: Array<[string, object | string]> = [
  ["CONNECT with properties and a will with its own", { cmd: "connect", protocolId: "MQTT", protocolVersion: 5, clientId: "b1", clean: false, keepalive: 30,
    username: "u", password: Buffer.from("p"),
    properties: { sessionExpiryInterval: 3600, receiveMaximum: 8, maximumPacketSize: 2048, topicAliasMaximum: 4, userProperties: { fw: "1.0" } },
    will: { topic: "n/s", payload: Buffer.from("off"), qos: 1, retain: true, properties: { willDelayInterval: 30, contentType: "t" } } }],
  ["PUBLISH with properties", { cmd: "publish", topic: "s/t", payload: Buffer.from("22.5"), qos: 1, dup: true, retain: false, messageId: 7,
    properties: { payloadFormatIndicator: true, messageExpiryInterval: 60, topicAlias: 3, responseTopic: "s/r", correlationData: Buffer.from("c1"), userProperties: { k: "v" } } }],
  ["PUBLISH to a topic alias", { cmd: "publish", topic: "", payload: Buffer.from("x"), qos: 0, dup: false, retain: false, properties: { topicAlias: 3 } }],
  ["PUBREC with a reason code", { cmd: "pubrec", messageId: 5, reasonCode: 0x10 }],
  ["PUBREL with a reason string", { cmd: "pubrel", messageId: 5, reasonCode: 0x92, properties: { reasonString: "gone" } }],
  ["PUBACK success: the id alone", "40020005"],
  ["SUBSCRIBE with options and a subscription identifier", { cmd: "subscribe", messageId: 9, properties: { subscriptionIdentifier: 300 },
    subscriptions: [{ topic: "a/#", qos: 1, nl: true, rap: true, rh: 2 }, { topic: "b/+", qos: 2, nl: false, rap: false, rh: 0 }] }],
  ["UNSUBSCRIBE", { cmd: "unsubscribe", messageId: 10, unsubscriptions: ["a/#"] }],
  ["DISCONNECT, plain: nothing after the header", "e000"],
  ["DISCONNECT with will, session expiry and a reason string", { cmd: "disconnect", reasonCode: 4, properties: { sessionExpiryInterval: 0, reasonString: "bye" } }],
  ["AUTH continue", { cmd: "auth", reasonCode: 0x18, properties: { authenticationMethod: "SCRAM", authenticationData: Buffer.from("d") } }],
  ["a topic alias in CONNECT is refused", "!property-not-allowed"],
  ["receive maximum in a PUBLISH is refused", "!property-not-allowed"],
  ["session expiry -1 is written as 0xFFFFFFFF", { cmd: "connect", protocolId: "MQTT", protocolVersion: 5, clientId: "a", clean: true, keepalive: 0,
    properties: { sessionExpiryInterval: 0xffffffff } }],
];
/**
 * What the runtime wrote, read by mqtt-packet and written again by it: two encodings of the same
 * packet then compare equal whatever order their properties are in (the spec sets none) and
 * whether an empty property block is written or left out (§3.4.2.2 lets a short ack leave it).
 */
function viaReference(got: string): string {
  if (got.startsWith("!")) return got;
  const packets: object[] = [];
  const parser = mqttPacket.parser(V5);
  parser.on("packet", (x) => packets.push(x));
  let error = "";
  parser.on("error", (e) => { error = e.message; });
  parser.parse(Buffer.from(got, "hex"));
  if (error !== "" || packets.length !== 1) return `unreadable by mqtt-packet (${error || packets.length + " packets"}): ${got}`;
  // mqtt-packet writes properties in the order of the object's keys: sort them on both sides
  const sorted = (o: Record<string, unknown> | undefined) => (o === undefined ? undefined : Object.fromEntries(Object.entries(o).sort((a, b) => (a[0] < b[0] ? -1 : 1))));
  const q = packets[0] as Record<string, unknown> & { properties?: Record<string, unknown>; will?: { properties?: Record<string, unknown> } };
  if (q.properties !== undefined) q.properties = sorted(q.properties);
  if (q.will?.properties !== undefined) q.will.properties = sorted(q.will.properties);
  return hex(gen(q));
}

// exact bytes where the form is Petrel's promise (the shortest the spec allows); the reference's
// reading where only the meaning is fixed
const encodeCases: Case[] = CLIENT.map(([name, p], k) => (typeof p === "string"
  ? { name, op: "codec5.encode", args: [arg.int(k)], expect: p }
  : { name, op: "codec5.encode", args: [arg.int(k)], expect: viaReference(hex(gen(p))), normalize: viaReference }));

crossTarget("codec5", [...decodeCases, ...badCases, ...encodeCases]);
