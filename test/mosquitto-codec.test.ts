import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PacketType } from "../firmware/codec/constants";
import { encodeConnect, encodeFilters, encodePublish, encodeShort, type ConnectOptions } from "../firmware/codec/encode";
import { startBroker, type Broker } from "../host-sim/mosquitto";
import { RawClient } from "./harness/raw-client";

// The codec against a real mosquitto (own config, ephemeral loopback port, torn down after):
// every packet a client sends is accepted, every packet mosquitto sends is decoded.

const hex = (s: string) => Buffer.from(s, "utf8").toString("hex");
let broker: Broker;
let secured: Broker;

beforeAll(async () => {
  broker = await startBroker();
  secured = await startBroker({ users: { sensor: "right-password" } });
});
afterAll(async () => {
  await broker?.close();
  await secured?.close();
});

async function connected(id: string, opts: Partial<ConnectOptions> = {}, port = broker.port, capacity = 70000): Promise<RawClient> {
  const c = await RawClient.connect(port, capacity);
  c.send((b) => encodeConnect(b, 70000, { clientId: id, clean: true, keepalive: 30, ...opts }));
  expect(await c.next()).toBe("connack sp=0 rc=0");
  return c;
}

describe("codec against mosquitto 2", () => {
  it("CONNECT, SUBSCRIBE, PUBLISH QoS 0/1/2 both ways, PINGREQ, DISCONNECT", async () => {
    const sub = await connected("petrel-sub");
    const topic = "petrel/codec/°C";
    sub.send((b) => encodeFilters(b, 70000, 1, ["petrel/codec/+"], [2], 1));
    expect(await sub.next()).toBe("suback id=1 c=2");
    const pub = await connected("petrel-pub");

    // QoS 0
    pub.send((b) => encodePublish(b, 70000, topic, "zero", 0, false, false, 0));
    expect(await sub.next()).toBe(`publish q=0 d=0 r=0 id=0 t=${hex(topic)} p=${hex("zero")}`);

    // QoS 1: PUBACK to the publisher; the subscriber acknowledges its copy.
    pub.send((b) => encodePublish(b, 70000, topic, "one", 1, false, false, 11));
    expect(await pub.next()).toBe("puback id=11");
    const got1 = await sub.next();
    expect(got1).toMatch(new RegExp(`^publish q=1 d=0 r=0 id=\\d+ t=${hex(topic)} p=${hex("one")}$`));
    sub.send((b) => encodeShort(b, 70000, PacketType.Puback, Number(/id=(\d+)/.exec(got1)![1])));

    // QoS 2: PUBREC, PUBREL, PUBCOMP on both legs.
    pub.send((b) => encodePublish(b, 70000, topic, "two", 2, false, false, 12));
    expect(await pub.next()).toBe("pubrec id=12");
    pub.send((b) => encodeShort(b, 70000, PacketType.Pubrel, 12));
    expect(await pub.next()).toBe("pubcomp id=12");
    const got2 = await sub.next();
    expect(got2).toMatch(new RegExp(`^publish q=2 d=0 r=0 id=\\d+ t=${hex(topic)} p=${hex("two")}$`));
    const id2 = Number(/id=(\d+)/.exec(got2)![1]);
    sub.send((b) => encodeShort(b, 70000, PacketType.Pubrec, id2));
    expect(await sub.next()).toBe(`pubrel id=${id2}`);
    sub.send((b) => encodeShort(b, 70000, PacketType.Pubcomp, id2));

    pub.send((b) => encodeShort(b, 70000, PacketType.Pingreq, 0));
    expect(await pub.next()).toBe("pingresp");
    pub.send((b) => encodeShort(b, 70000, PacketType.Disconnect, 0));
    expect(await pub.next()).toBe("closed");
    sub.end();
  });

  it("retained messages reach a later subscriber with the retain flag; an empty one clears it", async () => {
    const pub = await connected("petrel-retain-pub");
    pub.send((b) => encodePublish(b, 70000, "petrel/retained", "on", 1, true, false, 1));
    expect(await pub.next()).toBe("puback id=1");
    const sub = await connected("petrel-retain-sub");
    sub.send((b) => encodeFilters(b, 70000, 1, ["petrel/retained"], [0], 1));
    expect(await sub.next()).toBe("suback id=1 c=0");
    expect(await sub.next()).toBe(`publish q=0 d=0 r=1 id=0 t=${hex("petrel/retained")} p=${hex("on")}`);
    pub.send((b) => encodePublish(b, 70000, "petrel/retained", "", 1, true, false, 2));
    expect(await pub.next()).toBe("puback id=2");
    expect(await sub.next()).toBe(`publish q=0 d=0 r=0 id=0 t=${hex("petrel/retained")} p=`);
    const late = await connected("petrel-retain-late");
    late.send((b) => encodeFilters(b, 70000, 1, ["petrel/retained"], [0], 1));
    expect(await late.next()).toBe("suback id=1 c=0");
    // Retained messages follow SUBACK at once; a ping answered first proves none was left.
    late.send((b) => encodeShort(b, 70000, PacketType.Pingreq, 0));
    expect(await late.next()).toBe("pingresp");
    for (const c of [pub, sub, late]) c.end();
  });

  it("a PUBLISH larger than the receive buffer is skipped and acknowledged; the connection goes on", async () => {
    const sub = await connected("petrel-small", {}, broker.port, 1024);
    sub.send((b) => encodeFilters(b, 70000, 1, ["petrel/big"], [1], 1));
    expect(await sub.next()).toBe("suback id=1 c=1");
    const pub = await connected("petrel-big-pub");
    pub.send((b) => encodePublish(b, 70000, "petrel/big", "x".repeat(5000), 1, false, false, 3));
    expect(await pub.next()).toBe("puback id=3");
    const over = await sub.next();
    expect(over).toMatch(new RegExp(`^oversize q=1 id=\\d+ t=${hex("petrel/big")} len=5000$`));
    sub.send((b) => encodeShort(b, 70000, PacketType.Puback, Number(/id=(\d+)/.exec(over)![1])));
    sub.send((b) => encodeShort(b, 70000, PacketType.Pingreq, 0));
    expect(await sub.next()).toBe("pingresp");
    pub.send((b) => encodePublish(b, 70000, "petrel/big", "small", 1, false, false, 4));
    expect(await pub.next()).toBe("puback id=4");
    expect(await sub.next()).toMatch(new RegExp(`^publish q=1 d=0 r=0 id=\\d+ t=${hex("petrel/big")} p=${hex("small")}$`));
    for (const c of [pub, sub]) c.end();
  });

  it("a wrong password gets CONNACK 5 (not authorized) from a broker with a password file; the right one connects", async () => {
    const bad = await RawClient.connect(secured.port);
    bad.send((b) => encodeConnect(b, 70000, { clientId: "petrel-bad", clean: true, keepalive: 30, username: "sensor", password: "wrong" }));
    expect(await bad.next()).toBe("connack sp=0 rc=5");
    const good = await connected("petrel-good", { username: "sensor", password: "right-password" }, secured.port);
    expect(good.closed).toBe(false);
    good.end();
    bad.end();
  });
});
