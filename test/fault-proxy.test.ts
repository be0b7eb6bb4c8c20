import * as net from "node:net";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Out } from "../firmware/port/bytes";
import { port } from "../firmware/port/port";
import { PacketType } from "../firmware/codec/constants";
import { encodeConnect, encodeFilters, encodePublish, encodeShort } from "../firmware/codec/encode";
import { startFaultProxy, type FaultProxy } from "../host-sim/fault-proxy";
import { freePort, startBroker, type Broker } from "../host-sim/mosquitto";
import { RawClient } from "./harness/raw-client";

// The fault proxy between raw MQTT clients and a real mosquitto (own config, ephemeral loopback
// ports, torn down after). Waits are bounds, never assertions: "timeout" from `next` means
// nothing arrived within the bound. No test asserts on elapsed time.

const hex = (s: string) => Buffer.from(s, "utf8").toString("hex");
const CAP = 70000;
let broker: Broker;
let proxy: FaultProxy;

beforeAll(async () => {
  broker = await startBroker();
});
afterAll(async () => {
  await broker?.close();
});
beforeEach(async () => {
  proxy = await startFaultProxy({ target: { host: broker.host, port: broker.port } });
});
afterEach(async () => {
  await proxy.close();
});

/** Counts the bytes each encoder writes, to compare with the proxy's counters. */
let sentBytes = 0;
const counted = (encode: (b: Out) => number) => (b: Out): number => {
  const n = encode(b);
  if (n > 0) sentBytes += n;
  return n;
};

async function connected(id: string, port = proxy.port): Promise<RawClient> {
  const c = await RawClient.connect(port);
  c.send(counted((b) => encodeConnect(b, CAP, { clientId: id, clean: true, keepalive: 30 })));
  expect(await c.next()).toBe("connack sp=0 rc=0");
  return c;
}

async function subscribed(id: string, filter: string, qos: number, port = proxy.port): Promise<RawClient> {
  const c = await connected(id, port);
  c.send(counted((b) => encodeFilters(b, CAP, 1, [filter], [qos], 1)));
  expect(await c.next()).toBe(`suback id=1 c=${qos}`);
  return c;
}

/** A QoS 1 PUBLISH from `pub` reaches `sub`: PUBACK to the publisher, the copy acknowledged. */
async function qos1RoundTrip(pub: RawClient, sub: RawClient, topic: string, payload: string, id: number): Promise<void> {
  pub.send(counted((b) => encodePublish(b, CAP, topic, payload, 1, false, false, id)));
  expect(await pub.next()).toBe(`puback id=${id}`);
  const got = await sub.next();
  expect(got).toMatch(new RegExp(`^publish q=1 d=0 r=0 id=\\d+ t=${hex(topic)} p=${hex(payload)}$`));
  sub.send(counted((b) => encodeShort(b, CAP, PacketType.Puback, Number(/id=(\d+)/.exec(got)![1]))));
}

/** Resolves once `cond` holds, polling; false if it still does not after `ms` (a bound). */
async function until(cond: () => boolean, ms = 3000): Promise<boolean> {
  for (let waited = 0; !cond(); waited += 10) {
    if (waited >= ms) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

/** Connects a raw socket, or reports why it could not (bounded). */
function rawConnect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: "127.0.0.1", port }, () => resolve(s));
    s.once("error", reject);
  });
}

/** The first error code a socket reports, or "closed" / "timeout" (bounded). */
function socketOutcome(s: net.Socket, ms = 3000): Promise<string> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve("timeout"), ms);
    s.once("error", (e: NodeJS.ErrnoException) => {
      clearTimeout(t);
      resolve(e.code ?? e.message);
    });
    s.once("close", () => {
      clearTimeout(t);
      resolve("closed");
    });
  });
}

/** Reads until `n` bytes have arrived (bounded). */
function readBytes(s: net.Socket, n: number, ms = 3000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let got = 0;
    const t = setTimeout(() => done(new Error(`only ${got} of ${n} bytes within the bound`)), ms);
    const onData = (b: Buffer): void => {
      parts.push(b);
      got += b.length;
      if (got >= n) done(null);
    };
    const done = (err: Error | null): void => {
      clearTimeout(t);
      s.off("data", onData);
      if (err) reject(err);
      else resolve(Buffer.concat(parts));
    };
    s.on("data", onData);
  });
}

describe("fault proxy in front of mosquitto 2", () => {
  it("pass mode: CONNECT and a QoS 1 round trip go through; counters show it", async () => {
    sentBytes = 0;
    const sub = await subscribed("fp-pass-sub", "petrel/fp/pass", 1);
    const pub = await connected("fp-pass-pub");
    await qos1RoundTrip(pub, sub, "petrel/fp/pass", "through", 7);
    pub.send(counted((b) => encodeShort(b, CAP, PacketType.Pingreq, 0)));
    expect(await pub.next()).toBe("pingresp");

    expect(proxy.host).toBe("127.0.0.1");
    expect(proxy.port).not.toBe(broker.port);
    expect(proxy.connections).toBe(2);
    expect(proxy.open()).toBe(2);
    expect(await until(() => proxy.bytes.toBroker === sentBytes)).toBe(true); // the last PUBACK has no answer
    expect(proxy.bytes.toClient).toBeGreaterThan(0);
    expect(proxy.dropped).toEqual({ toBroker: 0, toClient: 0 });

    pub.send((b) => encodeShort(b, CAP, PacketType.Disconnect, 0));
    expect(await pub.next()).toBe("closed");
    sub.end();
  });

  it("split(1): every byte is its own write both ways, and the exchange still works", async () => {
    proxy.split(1);
    sentBytes = 0;
    const sub = await subscribed("fp-split-sub", "petrel/fp/split/+", 1);
    const pub = await connected("fp-split-pub");
    await qos1RoundTrip(pub, sub, "petrel/fp/split/°C", "x".repeat(300), 300);
    pub.send(counted((b) => encodeShort(b, CAP, PacketType.Pingreq, 0)));
    expect(await pub.next()).toBe("pingresp");
    // The subscriber's last PUBACK gets no answer: wait (bounded) until it is through too.
    expect(await until(() => proxy.bytes.toBroker === sentBytes)).toBe(true);
    expect(sentBytes).toBeGreaterThan(300);
    expect(proxy.writes.toBroker).toBe(proxy.bytes.toBroker);
    expect(proxy.bytes.toClient).toBeGreaterThan(300);
    expect(proxy.writes.toClient).toBe(proxy.bytes.toClient);

    // split(0) turns it off: the next packet goes in fewer writes than bytes.
    proxy.split(0);
    const before = { ...proxy.writes };
    const beforeBytes = { ...proxy.bytes };
    await qos1RoundTrip(pub, sub, "petrel/fp/split/big", "y".repeat(200), 301);
    expect(proxy.writes.toBroker - before.toBroker).toBeLessThan(proxy.bytes.toBroker - beforeBytes.toBroker);
    pub.end();
    sub.end();
  });

  it("split(5) keeps order across pieces", async () => {
    proxy.split(5);
    const sub = await subscribed("fp-split5-sub", "petrel/fp/split5", 1);
    const pub = await connected("fp-split5-pub");
    for (let i = 1; i <= 4; i++) await qos1RoundTrip(pub, sub, "petrel/fp/split5", `piece-${i}-${"z".repeat(i * 7)}`, i);
    expect(proxy.writes.toBroker).toBeGreaterThanOrEqual(Math.ceil(proxy.bytes.toBroker / 5));
    pub.end();
    sub.end();
  });

  it("reset(): the client sees ECONNRESET; the proxy forgets the connection", async () => {
    const s = await rawConnect(proxy.port);
    const tx = port.bytes.out(256);
    encodeConnect(tx, 256, { clientId: "fp-reset", clean: true, keepalive: 30 });
    s.write(tx.toWire() as unknown as Buffer);
    expect((await readBytes(s, 4)).toString("hex")).toBe("20020000"); // CONNACK, accepted
    const other = await connected("fp-reset-raw");
    expect(proxy.open()).toBe(2);

    const outcome = socketOutcome(s);
    proxy.reset();
    expect(await outcome).toBe("ECONNRESET");
    expect(await other.next()).toBe("closed");
    expect(proxy.open()).toBe(0);
    s.destroy();

    // New connections go through as before.
    const again = await connected("fp-reset-again");
    expect(proxy.open()).toBe(1);
    again.end();
  });

  it("blackhole(true): nothing arrives either way while on, the link stays open", async () => {
    const sub = await subscribed("fp-hole-sub", "petrel/fp/hole", 0);
    const direct = await connected("fp-hole-direct", broker.port);

    proxy.blackhole(true);
    sub.send((b) => encodeShort(b, CAP, PacketType.Pingreq, 0));
    expect(await sub.next(500)).toBe("timeout");
    expect(proxy.dropped.toBroker).toBe(2);

    // The broker's copy of a publish is dropped on its way to the client.
    direct.send((b) => encodePublish(b, CAP, "petrel/fp/hole", "lost", 1, false, false, 1));
    expect(await direct.next()).toBe("puback id=1");
    expect(await sub.next(500)).toBe("timeout");
    expect(proxy.dropped.toClient).toBeGreaterThan(0);
    expect(sub.closed).toBe(false);
    expect(proxy.open()).toBe(1);

    // A connection made while on is accepted and black-holed too.
    const late = await RawClient.connect(proxy.port);
    late.send((b) => encodeConnect(b, CAP, { clientId: "fp-hole-late", clean: true, keepalive: 30 }));
    expect(await late.next(500)).toBe("timeout");
    expect(late.closed).toBe(false);
    expect(proxy.connections).toBe(2);

    // Off again: whole packets were dropped here, so this stream is still in step.
    proxy.blackhole(false);
    sub.send((b) => encodeShort(b, CAP, PacketType.Pingreq, 0));
    expect(await sub.next()).toBe("pingresp");
    for (const c of [sub, direct, late]) c.end();
  });

  it("blackhole(true, \"toBroker\"): the client's bytes are dropped while the broker's still arrive", async () => {
    const sub = await subscribed("fp-uplink-sub", "petrel/fp/uplink", 1);
    const direct = await connected("fp-uplink-direct", broker.port);
    proxy.blackhole(true, "toBroker");
    direct.send((b) => encodePublish(b, CAP, "petrel/fp/uplink", "down", 1, false, false, 1));
    expect(await direct.next()).toBe("puback id=1");
    const got = await sub.next();
    expect(got).toMatch(new RegExp(`^publish q=1 d=0 r=0 id=\\d+ t=${hex("petrel/fp/uplink")} p=${hex("down")}$`));
    // its acknowledgement is lost on the way up
    sub.send((b) => encodeShort(b, CAP, PacketType.Puback, Number(/id=(\d+)/.exec(got)![1])));
    sub.send((b) => encodeShort(b, CAP, PacketType.Pingreq, 0));
    expect(await sub.next(500)).toBe("timeout");
    expect(proxy.dropped.toBroker).toBeGreaterThan(0);
    expect(proxy.dropped.toClient).toBe(0);
    proxy.blackhole(false);
    sub.send((b) => encodeShort(b, CAP, PacketType.Pingreq, 0));
    expect(await sub.next()).toBe("pingresp");
    sub.end();
    direct.end();
  });

  it("blackhole holds a close from the broker until it is turned off", async () => {
    const c = await connected("fp-hole-close");
    proxy.blackhole(true);
    // The same client id connecting directly takes the session over: mosquitto closes the first.
    const thief = await connected("fp-hole-close", broker.port);
    expect(await c.next(500)).toBe("timeout");
    expect(c.closed).toBe(false);
    proxy.blackhole(false);
    expect(await c.next()).toBe("closed");
    // The proxy's own sockets close a moment after the client's (the FIN goes both ways).
    expect(await until(() => proxy.open() === 0)).toBe(true);
    thief.end();
  });

  it("delay(ms): everything still arrives, in order and intact", async () => {
    proxy.delay(40);
    const sub = await subscribed("fp-delay-sub", "petrel/fp/delay", 1);
    const pub = await connected("fp-delay-pub");
    for (let i = 1; i <= 5; i++) pub.send((b) => encodePublish(b, CAP, "petrel/fp/delay", `m${i}`, 1, false, false, i));
    for (let i = 1; i <= 5; i++) expect(await pub.next()).toBe(`puback id=${i}`);
    for (let i = 1; i <= 5; i++) {
      const got = await sub.next();
      expect(got).toMatch(new RegExp(`^publish q=1 d=0 r=0 id=\\d+ t=${hex("petrel/fp/delay")} p=${hex(`m${i}`)}$`));
      sub.send((b) => encodeShort(b, CAP, PacketType.Puback, Number(/id=(\d+)/.exec(got)![1])));
    }
    proxy.delay(0);
    pub.send((b) => encodeShort(b, CAP, PacketType.Pingreq, 0));
    expect(await pub.next()).toBe("pingresp");
    pub.end();
    sub.end();
  });

  it("jitter(ms): chunks held a random time each, still in order and intact", async () => {
    const seq = [0.9, 0.1, 0.5, 0.0, 0.7];
    let k = 0;
    const jittery = await startFaultProxy({ target: { host: broker.host, port: broker.port }, random: () => seq[k++ % seq.length] });
    jittery.jitter(80);
    const sub = await subscribed("fp-jitter-sub", "petrel/fp/jitter", 1, jittery.port);
    const pub = await connected("fp-jitter-pub", jittery.port);
    for (let i = 1; i <= 5; i++) pub.send((b) => encodePublish(b, CAP, "petrel/fp/jitter", `m${i}`, 1, false, false, i));
    for (let i = 1; i <= 5; i++) expect(await pub.next()).toBe(`puback id=${i}`);
    for (let i = 1; i <= 5; i++) {
      const got = await sub.next();
      expect(got).toMatch(new RegExp(`^publish q=1 d=0 r=0 id=\\d+ t=${hex("petrel/fp/jitter")} p=${hex(`m${i}`)}$`));
      sub.send((b) => encodeShort(b, CAP, PacketType.Puback, Number(/id=(\d+)/.exec(got)![1])));
    }
    // the random source was asked once per chunk (both ways: CONNECTs, SUBSCRIBE, publishes, acks)
    expect(k).toBeGreaterThanOrEqual(8);
    pub.end();
    sub.end();
    await jittery.close();
  });

  it("bandwidth(bps): a message larger than a second's share is held until its time, then arrives whole", async () => {
    const sub = await subscribed("fp-bw-sub", "petrel/fp/bw", 0);
    const pub = await connected("fp-bw-pub");
    proxy.bandwidth(1000);
    const big = "x".repeat(2500);
    pub.send((b) => encodePublish(b, CAP, "petrel/fp/bw", big, 0, false, false, 0));
    // 2.5 s of the link's time: not there after 0.5 s (a bound, not a timing measurement)
    expect(await sub.next(500)).toBe("timeout");
    expect(await sub.next(6000)).toBe(`publish q=0 d=0 r=0 id=0 t=${hex("petrel/fp/bw")} p=${hex(big)}`);
    proxy.bandwidth(0);
    pub.send((b) => encodeShort(b, CAP, PacketType.Pingreq, 0));
    expect(await pub.next()).toBe("pingresp");
    expect(() => proxy.bandwidth(-1)).toThrow(RangeError);
    pub.end();
    sub.end();
  });

  it("hold(true) keeps every byte and the close; hold(false) releases them in order, nothing dropped", async () => {
    const held = await connected("fp-hold-held");
    const observer = await subscribed("fp-hold-obs", "petrel/fp/hold", 1, broker.port);
    const pub = await connected("fp-hold-pub");
    proxy.hold(true);
    for (let i = 1; i <= 3; i++) pub.send((b) => encodePublish(b, CAP, "petrel/fp/hold", `h${i}`, 1, false, false, i));
    expect(await pub.next(500)).toBe("timeout");
    expect(await observer.next(100)).toBe("timeout");
    // a close from the broker is held too: the same id connecting directly takes the session over
    const thief = await connected("fp-hold-held", broker.port);
    expect(await held.next(300)).toBe("timeout");
    expect(held.closed).toBe(false);
    proxy.hold(false);
    for (let i = 1; i <= 3; i++) expect(await pub.next()).toBe(`puback id=${i}`);
    for (let i = 1; i <= 3; i++) {
      const got = await observer.next();
      expect(got).toMatch(new RegExp(`^publish q=1 d=0 r=0 id=\\d+ t=${hex("petrel/fp/hold")} p=${hex(`h${i}`)}$`));
      observer.send((b) => encodeShort(b, CAP, PacketType.Puback, Number(/id=(\d+)/.exec(got)![1])));
    }
    expect(await held.next()).toBe("closed");
    expect(proxy.dropped.toBroker + proxy.dropped.toClient).toBe(0);
    for (const c of [pub, thief, observer]) c.end();
  });

  it("refuse(true): a new connection is closed at once, no CONNACK; current ones go on", async () => {
    const kept = await connected("fp-refuse-kept");
    await proxy.refuse(true);
    let outcome: string;
    try {
      const c = await RawClient.connect(proxy.port);
      c.send((b) => encodeConnect(b, CAP, { clientId: "fp-refused", clean: true, keepalive: 30 }));
      outcome = await c.next();
      c.end();
    } catch (e) {
      outcome = (e as NodeJS.ErrnoException).code ?? String(e);
    }
    expect(["closed", "ECONNRESET"]).toContain(outcome);
    expect(proxy.refused).toBe(1);
    expect(proxy.connections).toBe(1);
    kept.send((b) => encodeShort(b, CAP, PacketType.Pingreq, 0));
    expect(await kept.next()).toBe("pingresp");

    await proxy.refuse(false);
    const ok = await connected("fp-refuse-ok");
    for (const c of [kept, ok]) c.end();
  });

  it("refuse(true, \"unlisten\"): connects fail with ECONNREFUSED; off listens again on the same port", async () => {
    const port = proxy.port;
    const kept = await connected("fp-unlisten-kept");
    await proxy.refuse(true, "unlisten");
    await expect(RawClient.connect(port)).rejects.toMatchObject({ code: "ECONNREFUSED" });
    kept.send((b) => encodeShort(b, CAP, PacketType.Pingreq, 0));
    expect(await kept.next()).toBe("pingresp");
    await proxy.refuse(false);
    expect(proxy.port).toBe(port);
    const ok = await connected("fp-unlisten-ok");
    for (const c of [kept, ok]) c.end();
  });

  it("a dead target: the client is reset, the proxy keeps nothing open", async () => {
    const dead = await startFaultProxy({ target: { host: "127.0.0.1", port: await freePort() } });
    try {
      const c = await RawClient.connect(dead.port);
      expect(await c.next()).toBe("closed");
      expect(dead.connections).toBe(1);
      expect(dead.open()).toBe(0);
    } finally {
      await dead.close();
    }
  });

  it("close(): clients see the close, nothing stays open, a second close is harmless", async () => {
    const a = await connected("fp-close-a");
    proxy.delay(1000); // a timer pending at close must not keep anything alive
    a.send((b) => encodeShort(b, CAP, PacketType.Pingreq, 0));
    const port = proxy.port;
    await proxy.close();
    expect(await a.next()).toBe("closed");
    expect(proxy.open()).toBe(0);
    await proxy.close();
    await expect(RawClient.connect(port)).rejects.toMatchObject({ code: "ECONNREFUSED" });
  });
});
