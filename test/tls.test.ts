import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import "./harness/petrel-node";
import type { Bytes } from "../firmware/port/bytes";
import { port as petrelPort } from "../firmware/port/port";
import { Status } from "../firmware/codec/constants";
import { Decoder } from "../firmware/codec/decoder";
import { encodeConnect } from "../firmware/codec/encode";
import { startBroker, type Broker } from "../host-sim/mosquitto";
import { nodeTransport, type TlsSettings } from "../firmware/targets/node/transport";
import { makeCerts, type Certs } from "../host-sim/tls-certs";
import { describeEvent } from "./probe/suites/codec";

// TLS through the Node transport to a real mosquitto (loopback only, certificates made for the
// run): what is accepted reaches CONNACK, what is refused closes with a code a user can act on.

let dir: string;
let certs: Certs;
const brokers: Broker[] = [];

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-tls-"));
  certs = await makeCerts(dir);
});
afterAll(async () => {
  for (const b of brokers) await b.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** A TLS broker serving `served` (a `Certs` entry), closed after the file. */
async function tlsBroker(served: keyof Certs, clientCa = false): Promise<Broker> {
  const c = certs[served];
  const b = await startBroker({
    tls: clientCa
      ? { certfile: c.certfile, keyfile: c.keyfile, cafile: certs.ca.certfile, requireCertificate: true, useIdentityAsUsername: true }
      : { certfile: c.certfile, keyfile: c.keyfile },
  });
  brokers.push(b);
  return b;
}

/**
 * Opens the transport, sends CONNECT once open, and returns what happened in order: "open",
 * each received packet's description, "close <reason>". Ends at CONNACK (closing the transport
 * itself), at the transport's close, or with "timeout" after `ms` (a bound, not an assertion).
 */
function connectOverTls(port: number, settings: TlsSettings, host = "127.0.0.1", ms = 5000): Promise<string[]> {
  const t = nodeTransport(settings);
  const dec = new Decoder(1024);
  const log: string[] = [];
  return new Promise((resolve) => {
    let done = false;
    const end = (last?: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (last !== undefined) log.push(last);
      t.hangUp();
      resolve(log);
    };
    const timer = setTimeout(() => end("timeout"), ms);
    t.openStream(host, port, true, {
      onOpen: () => {
        log.push("open");
        const o = petrelPort.bytes.out(256);
        encodeConnect(o, 256, { clientId: "petrel-tls", clean: true, keepalive: 30 });
        t.sendWire(o.toWire());
      },
      onData: (chunk: Bytes) => {
        let at = 0;
        const size = (chunk as unknown as Buffer).length;
        while (at < size && !done) {
          at = dec.feedChunk(chunk, at);
          if (dec.status === Status.NeedMore) continue;
          const e = describeEvent(dec);
          if (e.startsWith("connack") || dec.status === Status.Error) end(e);
          else log.push(e);
        }
      },
      onWritable: () => {},
      onClose: (reason: string) => end(`close ${reason}`),
    });
  });
}

describe("TLS to mosquitto through the Node transport", () => {
  it("a chain to the trusted CA and a matching name reach CONNACK (by name, and by address with a server name)", async () => {
    const b = await tlsBroker("server");
    expect(await connectOverTls(b.port, { ca: certs.ca.cert }, "localhost")).toEqual(["open", "connack sp=0 rc=0"]);
    expect(await connectOverTls(b.port, { ca: certs.ca.cert, servername: "localhost" })).toEqual(["open", "connack sp=0 rc=0"]);
  });

  it("a server signed by a CA the client does not trust is refused: tls-untrusted", async () => {
    const b = await tlsBroker("server");
    expect(await connectOverTls(b.port, { ca: certs.wrongCa.cert, servername: "localhost" })).toEqual(["close tls-untrusted"]);
  });

  it("an expired server certificate is refused: tls-expired", async () => {
    const b = await tlsBroker("expired");
    expect(await connectOverTls(b.port, { ca: certs.ca.cert, servername: "localhost" })).toEqual(["close tls-expired"]);
  });

  it("a certificate for another name is refused: tls-name-mismatch", async () => {
    const b = await tlsBroker("otherName");
    expect(await connectOverTls(b.port, { ca: certs.ca.cert, servername: "localhost" })).toEqual(["close tls-name-mismatch"]);
    expect(await connectOverTls(b.port, { ca: certs.ca.cert }, "localhost")).toEqual(["close tls-name-mismatch"]);
  });

  it("a broker requiring a client certificate refuses a client without one and accepts one with it", async () => {
    const b = await tlsBroker("server", true);
    const without = await connectOverTls(b.port, { ca: certs.ca.cert, servername: "localhost" });
    // TLS 1.3 may finish the client's side of the handshake before the broker checks: "open" can
    // come first, but the broker's refusal always ends it before CONNACK.
    expect(without.filter((e) => e !== "open")).toEqual(["close tls-client-cert-required"]);
    const withCert = await connectOverTls(b.port, { ca: certs.ca.cert, cert: certs.client.cert, key: certs.client.key, servername: "localhost" });
    expect(withCert).toEqual(["open", "connack sp=0 rc=0"]);
    // use_identity_as_username: the certificate's CN is the session's user name.
    expect(b.log()).toContain("u'petrel-client'");
  });
});
