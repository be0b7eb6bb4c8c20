import { expect, it } from "vitest";
import { reasonError } from "../firmware/session/session5";
import { connackError } from "../firmware/session/errors";
import { PacketType } from "../firmware/codec/constants";
import { installPort } from "../firmware/port/port";
import { nodePort } from "../firmware/targets/node/port";
// @ts-expect-error: a plain .mjs module of the tools, without type declarations
import { explain, reasonTexts } from "../tools/console.mjs";

// docs/reason-codes.md is what a board without the `texts` feature points to, and what the serial
// console (tools/console.mjs) prints under such a board's line: it must say what the firmware with
// the texts says, code for code.

installPort(nodePort);
const texts: Map<string, string> = reasonTexts();

it("every MQTT 5.0 reason code of the page has the firmware's error code and text, and the page has every one", () => {
  const codes = [...texts.keys()].filter((k) => k.startsWith("0x"));
  expect(codes.length).toBe(33);
  for (const k of codes) {
    const e = reasonError(parseInt(k, 16), PacketType.Connack, "");
    expect(`${e.code}: ${e.message}`).toBe(`${texts.get(k)} (reason code ${k} in CONNACK)`);
  }
  for (let code = 0x80; code <= 0xa2; code++) {
    const e = reasonError(code, PacketType.Disconnect, "");
    if (e.code !== "unspecified-error") expect(texts.has(`0x${code.toString(16)}`), `0x${code.toString(16)} (${e.code}) is not on the page`).toBe(true);
  }
});

it("every MQTT 3.1.1 CONNACK return code of the page has the firmware's error code and text", () => {
  for (let rc = 1; rc <= 5; rc++) {
    const e = connackError(rc);
    const page = texts.get(`rc${rc}`);
    expect(page).toBeDefined();
    // the firmware's sentence names the return code; the page's row is that code's
    expect(`${e.code}: ${e.message.replace(`return code ${rc}, `, "").replace(` (return code ${rc})`, "")}`).toBe(page);
  }
});

it("the console explains a board's short line from the page, and leaves other lines alone", () => {
  expect(explain("warn mqtt: not-authorized: see docs/reason-codes.md for what it means and the fix (reason code 0x87 in CONNACK: \"no\")", texts))
    .toBe(`  (docs/reason-codes.md, 0x87) ${texts.get("0x87")}`);
  expect(explain("error bad-credentials: the broker refused the connection with return code 4; see docs/reason-codes.md for what it means and the fix", texts))
    .toBe(`  (docs/reason-codes.md, return code 4) ${texts.get("rc4")}`);
  expect(explain("the broker refused the connection with unknown return code 9", texts)).toBeUndefined();
  expect(explain("reason code 0x87 in CONNACK, with its text on the chip", texts)).toBeUndefined();
});
