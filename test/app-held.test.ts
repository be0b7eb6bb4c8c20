import { describe, expect, it } from "vitest";
import { runLine } from "../firmware/app/commands";
import { SensorNode } from "../firmware/app/node";
import { memoryStorage } from "../firmware/targets/node/storage";
import { settingsWith } from "./harness/app";
import { FakeBroker, ScriptedBoard } from "./harness/scripted";

// The console's `held` command and the `status` line for messages the broker refused, on the
// sensor node over a scripted broker that closes the connection on every QoS 2 PUBLISH (as
// NATS Server 2.9 does), on the virtual clock.

describe("held messages at the console", () => {
  it("status shows them; held lists them, held retry N sends one again, held drop N deletes one; wrong uses are told the usage", () => {
    const b = new ScriptedBoard();
    let refuse = true;
    const broker = new FakeBroker(b, (l) => refuse && l.startsWith("publish q2"));
    const logs: string[] = [];
    const st = settingsWith(memoryStorage(), false, { brokers: "a:1883", "client.id": "held-1", qos: "1", interval: "3600" });
    const node = new SensorNode({ platform: b.platform, protocolVersion: 4, tls: false, version: "0.1.0-test", reboot: () => {}, log: (l) => logs.push(l), sensors: [] }, st);
    expect(node.launch()).toBeNull();
    const run = (line: string) => {
      const out: string[] = [];
      runLine({ node, settings: st }, line, (l) => out.push(l), false);
      return out;
    };
    broker.run(0);
    expect(node.connected).toBe(true);
    expect(run("help")).toContain("held [retry|drop N]  messages the broker refused (it closed the connection on them): lists them, sends N again, or deletes it");
    expect(run("held")).toEqual(["held: none"]);

    expect(run("pub nats/q2 2 refused")).toEqual(["pub: queued (outbox 1)"]);
    broker.run(20000);
    expect(logs.filter((l) => l.startsWith("pub: "))).toEqual([expect.stringMatching(
      /^pub: not delivered: nats\/q2 2 refused: publish-refused: the broker closed the connection 3 times in a row right after the QoS 2 PUBLISH to nats\/q2, .*held retry 1/)]);
    const status = run("status");
    expect(status[0]).toMatch(/, outbox 0$/);
    expect(status).toContain("held: 1 refused by the broker, the first to nats/q2 (QoS 2); held lists them");
    expect(run("held")).toEqual(["held 1: nats/q2 QoS 2, 20 bytes"]);

    // the broker's limit is lifted: sent again, acknowledged
    refuse = false;
    expect(run("held retry 1")).toEqual([expect.stringMatching(/^held: nats\/q2 QoS 2 is back in the outbox \(outbox [01]\)$/)]);
    broker.run(20000);
    expect(logs).toContain("held: acknowledged: nats/q2 QoS 2");
    expect(run("held")).toEqual(["held: none"]);
    expect(run("status").some((l) => l.startsWith("held:"))).toBe(false);

    // held again, then deleted
    refuse = true;
    run("pub nats/other 2 again");
    broker.run(30000);
    expect(run("held")).toEqual(["held 1: nats/other QoS 2, 21 bytes"]);
    expect(run("held drop 2")).toEqual(["held: nothing in slot 2; held lists them"]);
    expect(run("held drop 1")).toEqual(["held: deleted nats/other QoS 2"]);
    expect(run("held drop 1")).toEqual(["held: nothing in slot 1; held lists them"]);
    expect(run("held retry x")).toEqual(["held: nothing in slot x; held lists them"]);
    const usage = ["held: usage: held, held retry N, held drop N"];
    expect(run("held forget 1")).toEqual(usage);
    expect(run("held retry")).toEqual(usage);
    expect(b.records().filter((k) => k.startsWith("mqh"))).toEqual([]);
  });
});
