import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { Wire } from "../firmware/port/bytes";
import { STORAGE_FULL } from "../firmware/port/storage";
import { freePort } from "../host-sim/mosquitto";
import { tableResolver } from "../firmware/targets/node/resolver";
import { fileStorage } from "../firmware/targets/node/storage";
import { nodeTransport } from "../firmware/targets/node/transport";

// The Node platform's contracts, on loopback only.

function recorder() {
  const log: string[] = [];
  let inside = false;
  let reentered = false;
  const note = (e: string) => {
    if (inside) reentered = true;
    log.push(e);
  };
  const events = {
    onOpen: () => note("open"),
    onData: (c: unknown) => note(`data ${(c as Buffer).toString()}`),
    onWritable: () => note("writable"),
    onClose: (r: string) => note(`close ${r}`),
  };
  const call = <T>(f: () => T): T => {
    inside = true;
    try {
      return f();
    } finally {
      inside = false;
    }
  };
  const until = async (pred: () => boolean) => {
    for (let i = 0; i < 200 && !pred(); i++) await new Promise((r) => setTimeout(r, 10));
  };
  return { log, events, call, until, reentered: () => reentered };
}

describe("Node transport", () => {
  const servers: net.Server[] = [];
  afterAll(() => servers.forEach((s) => s.close()));

  it("opens, writes, receives, and reports the peer's close; never calls back from inside a call", async () => {
    const server = net.createServer((s) => {
      s.on("data", (d) => {
        s.write(`echo ${d.toString()}`);
        s.end();
      });
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const port = (server.address() as net.AddressInfo).port;
    const t = nodeTransport();
    const r = recorder();
    r.call(() => t.openStream("127.0.0.1", port, false, r.events));
    await r.until(() => r.log.includes("open"));
    r.call(() => t.sendWire(Buffer.from("hi") as unknown as Wire));
    await r.until(() => r.log.some((e) => e.startsWith("close")));
    expect(r.log).toEqual(["open", "data echo hi", "close closed"]);
    expect(r.reentered()).toBe(false);
  });

  it("a refused connection is reported through onClose, not thrown", async () => {
    const port = await freePort();
    const t = nodeTransport();
    const r = recorder();
    expect(() => r.call(() => t.openStream("127.0.0.1", port, false, r.events))).not.toThrow();
    await r.until(() => r.log.length > 0);
    expect(r.log).toEqual(["close refused"]);
    expect(r.reentered()).toBe(false);
  });

  it("close() we asked for reports an empty reason once, and is idempotent", async () => {
    const server = net.createServer(() => {});
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const t = nodeTransport();
    const r = recorder();
    t.openStream("127.0.0.1", (server.address() as net.AddressInfo).port, false, r.events);
    await r.until(() => r.log.includes("open"));
    r.call(() => {
      t.hangUp();
      t.hangUp();
    });
    await r.until(() => r.log.length > 1);
    await new Promise((res) => setTimeout(res, 20));
    expect(r.log).toEqual(["open", "close "]);
    expect(t.sendWire(Buffer.from("late") as unknown as Wire)).toBe(false);
  });
});

describe("Node storage", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-storage-"));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const bytes = (s: string) => Buffer.from(s) as unknown as Wire;
  const text = (w: Wire | undefined) => (w === undefined ? undefined : (w as unknown as Buffer).toString());

  it("writes, reads back, lists by prefix, replaces and removes records", () => {
    const st = fileStorage(path.join(dir, "a"));
    expect(st.putRecord("o.1", bytes("first"))).toBe(0);
    expect(st.putRecord("o.2", bytes("second!"))).toBe(0);
    expect(st.putRecord("cfg", bytes("x"))).toBe(0);
    expect(text(st.getRecord("o.2"))).toBe("second!");
    expect(st.listRecords("o.")).toEqual(["o.1", "o.2"]);
    expect(st.putRecord("o.1", bytes("1st"))).toBe(0);
    expect(text(st.getRecord("o.1"))).toBe("1st");
    st.dropRecord("o.1");
    expect(st.getRecord("o.1")).toBeUndefined();
    expect(st.putRecord("m", bytes(""))).toBe(0);
    expect(text(st.getRecord("m"))).toBe("");
  });

  it("a write past capacity is refused with STORAGE_FULL and leaves the old record", () => {
    const st = fileStorage(path.join(dir, "b"), 10);
    expect(st.putRecord("k", bytes("12345678"))).toBe(0);
    expect(st.putRecord("j", bytes("123"))).toBe(STORAGE_FULL);
    expect(st.putRecord("k", bytes("1234567890"))).toBe(0);
    expect(st.putRecord("k", bytes("12345678901"))).toBe(STORAGE_FULL);
    expect(text(st.getRecord("k"))).toBe("1234567890");
  });
});

describe("table resolver", () => {
  it("answers from its table, localhost and literal addresses, later; unknown names are not-found", async () => {
    const r = tableResolver({ "broker.local": "127.0.0.1" });
    const ask = (h: string) => new Promise<string>((res) => {
      let inside = true;
      r.lookUp(h, (a, e) => res(`${inside ? "sync!" : ""}${a}|${e}`));
      inside = false;
    });
    expect(await ask("broker.local")).toBe("127.0.0.1|");
    expect(await ask("localhost")).toBe("127.0.0.1|");
    expect(await ask("::1")).toBe("::1|");
    expect(await ask("nowhere.invalid")).toBe("|not-found");
  });
});
