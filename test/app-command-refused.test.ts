import { afterEach, describe, expect, it } from "vitest";
import { setLoader } from "../firmware/app/lazy";
import { runCommand, SensorNode } from "../firmware/app/node";
import { port } from "../firmware/port/port";
import { memoryStorage } from "../firmware/targets/node/storage";
import { settingsWith } from "./harness/app";
import { ScriptedBoard } from "./harness/scripted";

// A command whose lazy module cannot be loaded, or that throws, is answered with the reason, at the
// console and on the command topic alike (app/node.ts runCommand). A string thrown is a loader's
// own refusal (the Espruino one refuses when too few variable slots are free: see
// test/espruino-low-memory.test.ts for it on the 1,600-slot interpreter).

describe("a command that cannot run", () => {
  const loader = port.loader;
  afterEach(() => setLoader(loader as (this: void, name: string) => unknown));

  const node = () => {
    const b = new ScriptedBoard();
    const st = settingsWith(memoryStorage(), false, { brokers: "a:1883", "client.id": "refused-1", interval: "3600" });
    return { node: new SensorNode({ platform: b.platform, protocolVersion: 4, tls: false, version: "0.1.0-test", reboot: () => {}, log: () => {}, sensors: [] }, st), st };
  };

  it("a loader's refusal (a string) is the answer as it is; any other failure is named as one; the next command runs", () => {
    const { node: n, st } = node();
    const out: string[] = [];
    const say = (l: string) => out.push(l);
    setLoader(() => {
      throw "not enough memory for this command: 87 variable slots free, it needs about 300; nothing was run. Fix: free some";
    });
    runCommand({ node: n, settings: st }, "set interval 30", say, false);
    setLoader(() => {
      throw new Error("boom");
    });
    runCommand({ node: n, settings: st }, "status", say, true);
    setLoader(loader as (this: void, name: string) => unknown);
    runCommand({ node: n, settings: st }, "set interval 30", say, false);
    expect(out).toEqual([
      "error: not enough memory for this command: 87 variable slots free, it needs about 300; nothing was run. Fix: free some",
      "error: the command failed: Error: boom",
      "interval = 30 (not saved yet)",
    ]);
    expect(st.get("interval")).toBe("30");
  });
});
