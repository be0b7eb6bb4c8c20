import type { Out } from "../../../firmware/port/bytes";
import { port } from "../../../firmware/port/port";
import { PacketType, Status } from "../../../firmware/codec/constants";
import { Decoder } from "../../../firmware/codec/decoder";
import { codecErrorName } from "../../../firmware/codec/errors";
import { afterValue, encodeAck5, encodeConnect5, encodeFilters5, encodePublish5, encodeReason5, findProp, Prop, propsEndOf, propsOf, reasonOf, textAt,
  u16At, u32At, varintAt } from "../../../firmware/codec/mqtt5";
import { argBytes, argInt, argSize, outBytes, outWire, register } from "../probe";

// MQTT 5.0's codec on every runtime (codec/mqtt5.ts): the decoder at 5.0 describes each event
// with its reason code and its property block as hex (the test cuts the same bytes out of
// mqtt-packet's encoding), and a few properties read in place; the encoders write fixed packets
// the test builds with mqtt-packet.

/** The properties found in place: receive maximum, maximum QoS, a reason string, the first subscription id, user properties counted. */
function found(d: Decoder): string {
  const data = d.data;
  const from = propsOf(d);
  const end = propsEndOf(d);
  let s = "";
  let at = findProp(data, from, end, Prop.ReceiveMaximum);
  if (at >= 0) s = s + " rm=" + u16At(data, at);
  at = findProp(data, from, end, Prop.MaximumQos);
  if (at >= 0) s = s + " mq=" + data[at];
  at = findProp(data, from, end, Prop.SessionExpiry);
  if (at >= 0) s = s + " se=" + u32At(data, at);
  at = findProp(data, from, end, Prop.ReasonString);
  if (at >= 0) s = s + " rs=" + outBytes(data, at + 2, at + 2 + u16At(data, at));
  at = findProp(data, from, end, Prop.SubscriptionId);
  if (at >= 0) s = s + " si=" + varintAt(data, at, end);
  at = findProp(data, from, end, Prop.AssignedClientId);
  if (at >= 0 && textAt(data, at) === "auto-1") s = s + " ci=auto-1";
  let users = 0;
  at = findProp(data, from, end, Prop.UserProperty);
  for (let guard = 0; at >= 0 && guard < 100; guard++) {
    users = users + 1;
    at = findProp(data, afterValue(data, at, end, Prop.UserProperty), end, Prop.UserProperty);
  }
  return users > 0 ? s + " up=" + users : s;
}

/** One 5.0 decoder event. */
function describe5(d: Decoder): string {
  if (d.status === Status.Error) return "error " + codecErrorName(d.error);
  if (d.status === Status.Oversize) return "oversize id=" + d.packetId + " len=" + d.payloadLength;
  const t = d.type;
  let s = "type=" + t + " rc=" + reasonOf(d);
  if (t === PacketType.Connack) s = s + " sp=" + d.data[d.bodyStart];
  if (t === PacketType.Publish) {
    s = s + " q=" + d.publishQos() + " t=" + outBytes(d.data, d.topicStart, d.topicEnd) + " p=" +
      outBytes(d.data, d.payloadStart, d.bodyStart + d.remaining);
  }
  if (t !== PacketType.Connack && t !== PacketType.Publish && t !== PacketType.Disconnect && t !== PacketType.Auth && t !== PacketType.Pingresp) {
    s = s + " id=" + d.packetId;
  }
  if (t === PacketType.Suback || t === PacketType.Unsuback) s = s + " codes=" + outBytes(d.data, propsEndOf(d), d.bodyStart + d.remaining);
  return s + " props=" + outBytes(d.data, propsOf(d), propsEndOf(d)) + found(d);
}

// codec5.decode stream split cap: every event of the stream fed at 5.0 in chunks of `split` (0: one)
register("codec5.decode", (a) => {
  const buf = argBytes(a[0]);
  const n = argSize(a[0]);
  const split = argInt(a[1]);
  const d = new Decoder(argInt(a[2]));
  let s = "";
  let start = 0;
  while (start < n) {
    const end = split > 0 && start + split < n ? start + split : n;
    const chunk = port.bytes.bytesOf(port.bytes.wireFrom(buf, start, end));
    let at = 0;
    while (at < end - start) {
      at = d.feedChunk(chunk, at, true);
      if (d.status !== Status.NeedMore) s = s + (s === "" ? "" : ";") + describe5(d);
      if (d.status === Status.Error) return s;
    }
    start = end;
  }
  return s === "" ? "nothing" : s;
});

function out5(o: Out, n: number): string {
  if (n < 0) return o.size === 0 ? "!" + codecErrorName(n) : "!wrote-on-error";
  if (o.size !== n) return "!size-" + o.size + "-not-" + n;
  return outWire(o.toWire());
}

// codec5.encode k: fixed packet k (the test builds the same with mqtt-packet)
register("codec5.encode", (a) => {
  const o = port.bytes.out(512);
  const k = argInt(a[0]);
  if (k === 0) {
    return out5(o, encodeConnect5(o, 512, {
      clientId: "b1", clean: false, keepalive: 30, username: "u", password: "p",
      props: { sessionExpiry: 3600, receiveMaximum: 8, maximumPacketSize: 2048, topicAliasMaximum: 4, userProperties: ["fw", "1.0"] },
      will: { topic: "n/s", payload: "off", qos: 1, retain: true }, willProps: { willDelay: 30, contentType: "t" },
    }));
  }
  if (k === 1) {
    return out5(o, encodePublish5(o, 512, "s/t", "22.5", 1, false, true, 7,
      { payloadFormat: 1, messageExpiry: 60, topicAlias: 3, responseTopic: "s/r", correlationData: "c1", userProperties: ["k", "v"] }));
  }
  if (k === 2) return out5(o, encodePublish5(o, 512, "", "x", 0, false, false, 0, { topicAlias: 3 }));
  if (k === 3) return out5(o, encodeAck5(o, 512, PacketType.Pubrec, 5, 0x10, undefined));
  if (k === 4) return out5(o, encodeAck5(o, 512, PacketType.Pubrel, 5, 0x92, { reasonString: "gone" }));
  if (k === 5) return out5(o, encodeAck5(o, 512, PacketType.Puback, 5, 0, undefined));
  if (k === 6) return out5(o, encodeFilters5(o, 512, 9, ["a/#", "b/+"], [1 + 4 + 8 + 32, 2], 2, { subscriptionId: 300 }));
  if (k === 7) return out5(o, encodeFilters5(o, 512, 10, ["a/#"], undefined, 1, undefined));
  if (k === 8) return out5(o, encodeReason5(o, 512, PacketType.Disconnect, 0, undefined));
  if (k === 9) return out5(o, encodeReason5(o, 512, PacketType.Disconnect, 4, { sessionExpiry: 0, reasonString: "bye" }));
  if (k === 10) return out5(o, encodeReason5(o, 512, PacketType.Auth, 0x18, { authMethod: "SCRAM", authData: "d" }));
  // refusals
  if (k === 11) return out5(o, encodeConnect5(o, 512, { clientId: "a", clean: true, keepalive: 0, props: { topicAlias: 1 } }));
  if (k === 12) return out5(o, encodePublish5(o, 512, "t", "x", 0, false, false, 0, { receiveMaximum: 0 }));
  if (k === 13) return out5(o, encodeConnect5(o, 512, { clientId: "a", clean: true, keepalive: 0, props: { sessionExpiry: -1 } }));
  return "!no-such-case";
});
