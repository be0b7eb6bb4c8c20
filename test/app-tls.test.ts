import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, expect, it } from "vitest";
import { startBroker, type Broker } from "../host-sim/mosquitto";
import { makeCerts } from "../host-sim/tls-certs";
import { AppBoard } from "./harness/app-board";

// TLS for the sensor node, set up at its serial console as a user would: the CA, the board's
// certificate and its key pasted as PEM (`pem ca|cert|key`), kept on flash, used after a reboot
// against a mosquitto TLS listener that requires a client certificate. Before the CA is there,
// diag names TLS as the broken link. The key is echoed as "*" and printed nowhere.

const dirs: string[] = [];
const boards: AppBoard[] = [];
let broker: Broker | undefined;
afterAll(async () => {
  for (const b of boards) b.kill();
  await broker?.close();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

it("pem ca, cert and key pasted at the console: after a reboot the board connects over TLS with its certificate", async () => {
  const certDir = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-app-tls-"));
  const flash = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-app-tls-flash-"));
  dirs.push(certDir, flash);
  const certs = await makeCerts(certDir);
  broker = await startBroker({ tls: { certfile: certs.server.certfile, keyfile: certs.server.keyfile, cafile: certs.ca.certfile, requireCertificate: true } });
  const b = new AppBoard("node", { flash, chipId: "tls1", defaults: { brokers: `tls:localhost:${broker.port}`, "client.id": "app-tls" } });
  boards.push(b);

  // no CA yet: the broker's certificate is not trusted, and diag says so
  await b.waitFor("mqtt: tls-untrusted");
  const before = await b.reply("diag");
  expect(before).toContain("diag: first broken link: tls");
  expect(before.find((l) => l.startsWith("diag: tls"))).toMatch(/FAILED: the broker's certificate is not signed by the configured CA/);

  expect(await b.reply("pem")).toEqual(["pem: ca (none), cert (none), key (none)"]);
  expect(await b.reply("pem ca extra words")).toEqual(["error: pem takes ca, cert or key, then nothing (paste it next) or clear; e.g. pem ca"]);
  for (const [name, pem] of [["ca", certs.ca.cert], ["cert", certs.client.cert], ["key", certs.client.key]] as const) {
    const from = b.out.length;
    b.type(`pem ${name}`);
    for (const l of pem.trim().split("\n")) b.type(l);
    await b.waitFor(new RegExp(`^pem ${name}: saved \\(\\d+ bytes\\); reboot to use it$`), 10000, from);
  }
  expect(await b.reply("pem")).toEqual(["pem: ca (set), cert (set), key (set, hidden)"]);
  const keyBody = certs.client.key.trim().split("\n")[1];
  expect(b.out).not.toContain(keyBody);

  b.type("reboot");
  expect(await b.ended()).toBe(4);
  const first = b.out;
  b.powerOn();
  await b.waitFor("node: connected as app-tls");
  const diag = await b.reply("diag");
  expect(diag).toContain("diag: tls  ok");
  expect(diag[diag.length - 1]).toBe("diag: every link works");
  expect(first + b.out).not.toContain(keyBody);
}, 60000);
