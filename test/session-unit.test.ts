import { describe, expect, it } from "vitest";
import { Client, LINK_POLL_MS, State } from "../firmware/session/client";
import { dropHeld, listHeld, retryHeld } from "../firmware/session/held";
import { FakeBroker, ScriptedBoard, STABLE_MS } from "./harness/scripted";
import { LOG_DEBUG, LOG_INFO, LOG_WARN } from "../firmware/port/log";

// The session, packet by packet, on a scripted transport and a virtual clock that starts 4 s
// before its 31-bit wrap, so every timer below crosses the wrap.

const ok = (e: unknown) => expect(e).toBeUndefined();

describe("connect", () => {
  it("sends CONNECT with the defaults and reports CONNACK", () => {
    const b = new ScriptedBoard();
    const c = b.client({ keepalive: 30, username: "u", password: "p", will: { topic: "w", payload: "gone", qos: 1, retain: true } });
    c.start();
    expect(b.connect()).toEqual(["open a:1883", "connect petrel-c0ffee clean=0 ka=30 user=u will=w"]);
    expect(b.takeEvents()).toEqual(["connect sp=0"]);
    expect(c.state).toBe(State.Connected);
    expect(c.stats.connects).toBe(1);
  });

  it("refuses bad options with a clear error and the fix", () => {
    const b = new ScriptedBoard();
    const cases: Array<[object, string, RegExp]> = [
      [{ password: "p" }, "bad-option", /username/],
      [{ clientId: "", clean: false }, "bad-option", /clean/],
      [{ keepalive: 70000 }, "bad-option", /keepalive must be a whole number from 0 to 65535/],
      [{ keepalive: 1.5 }, "bad-option", /keepalive/],
      [{ brokers: [] }, "bad-option", /no broker/],
      [{ brokers: [{ host: "", port: 1 }] }, "bad-option", /no host/],
      [{ brokers: [{ host: "h" }] }, "bad-option", /no port/],
      [{ brokers: [{ host: "h", port: 70000 }] }, "bad-option", /port/],
      [{ reconnectMinMs: 5000, reconnectMaxMs: 1000 }, "bad-option", /reconnectMaxMs/],
      [{ storePrefix: "much-too-long" }, "bad-option", /storePrefix/],
      [{ will: { topic: "w", payload: "", qos: 3 } }, "bad-option", /will qos/],
      [{ will: { topic: "w/#", payload: "" } }, "bad-option", /CONNECT cannot be built.*\+ or #/],
    ];
    for (const [o, code, re] of cases) {
      expect(() => b.client(o)).toThrow(re);
      expect(() => b.client(o)).toThrow(code);
    }
  });

  it("an empty client id is fine with clean session", () => {
    const b = new ScriptedBoard();
    b.client({ clientId: "", clean: true }).start();
    expect(b.connect()).toEqual(["open a:1883", "connect  clean=1 ka=0"]);
  });

  it("Wi-Fi: no dialling while the link is down; a dial the moment it returns, from the first broker", () => {
    const b = new ScriptedBoard();
    b.withLink(false);
    const c = b.client({ brokers: [{ host: "a", port: 1883 }, { host: "b", port: 1883 }] });
    c.start();
    b.run(600000); // ten minutes without a network: not one attempt, no backoff spent
    expect(b.take()).toEqual([]);
    expect(c.stats.attempts).toBe(0);
    expect(c.lastReason).toBe("no-network");
    expect(c.state).toBe(State.LinkWait);
    b.setLink(true);
    expect(b.connect()).toEqual(["open a:1883", "connect petrel-c0ffee clean=0 ka=0"]);
    expect(c.stats.attempts).toBe(1);
  });

  it("Wi-Fi: losing the link drops the connection at once (no ping timeout) and waits for it; its return dials at once, but not during an ordinary backoff", () => {
    const b = new ScriptedBoard();
    b.withLink(true);
    const c = b.client({ keepalive: 60 });
    c.start();
    b.connect();
    b.setLink(false);
    b.run();
    expect(b.take()).toEqual(["close"]);
    expect(b.takeEvents()).toEqual(["connect sp=0", "offline no-network", "close no-network"]);
    b.run(3600000);
    expect(b.take()).toEqual([]); // an hour without the link: still no dialling
    expect(c.stats.attempts).toBe(1);
    b.setLink(true);
    b.run();
    expect(b.take()).toEqual(["open a:1883"]);
    // refused while the link is up: backoff as usual, and a flapping link does not cut it short
    // (no hammering a refusing broker)
    b.drop("refused");
    b.run(100);
    b.setLink(false);
    b.setLink(true);
    b.run(100);
    expect(b.take()).toEqual([]);
    b.run(1800); // the round's backoff (2 s, jittered) runs out
    expect(b.take()).toEqual(["open a:1883"]);
    expect(c.stats.attempts).toBe(3);
  });

  it("Wi-Fi: a lost link-up event costs at most one poll period (LINK_POLL_MS), not the session", () => {
    const b = new ScriptedBoard();
    b.withLink(false);
    const c = b.client();
    c.start();
    b.run(60000);
    expect(c.stats.attempts).toBe(0);
    b.setLinkSilently(true); // up, but its event never reaches the client
    b.run(LINK_POLL_MS);
    expect(b.take()).toEqual(["open a:1883"]);
    expect(c.stats.attempts).toBe(1);
  });

  it("end() then start() from inside onClose: the new attempt stands (one attempt, no second dial)", () => {
    const b = new ScriptedBoard();
    let c: ReturnType<typeof b.client> | undefined = undefined;
    let restarted = false;
    c = b.client({}, {
      onClose: () => {
        if (restarted || c === undefined) return;
        restarted = true;
        c.end();
        c.start();
      },
    });
    c.start();
    b.connect();
    b.drop("reset");
    b.run();
    expect(b.take()).toEqual(["open a:1883"]);
    expect([State.Resolving, State.Opening]).toContain(c.state);
    expect(c.stats.attempts).toBe(2);
    b.run(5000); // under connectTimeoutMs: only a second dial could write anything
    expect(b.take()).toEqual([]);
  });

  it("Wi-Fi: end() while waiting for the link ends; start() without a link dials as before", () => {
    const b = new ScriptedBoard();
    b.withLink(false);
    const c = b.client();
    c.start();
    b.run(1000);
    c.end();
    b.run();
    expect(c.state).toBe(State.Stopped);
    b.setLink(true);
    b.run(10000);
    expect(b.take()).toEqual([]);
    expect(b.takeEvents()).toEqual(["end"]);
  });

  it("explains each CONNACK refusal and retries with backoff", () => {
    const b = new ScriptedBoard();
    const c = b.client();
    c.start();
    b.run();
    b.accept();
    b.send({ cmd: "connack", sessionPresent: false, returnCode: 4 });
    expect(c.lastError?.code).toBe("bad-credentials");
    expect(c.lastError?.message).toMatch(/fix: check the username and password/);
    b.run();
    expect(b.takeEvents()).toEqual(["error bad-credentials", "close bad-credentials"]);
    expect(c.state).toBe(State.Backoff);
    for (const rc of [1, 2, 3, 5, 9]) {
      b.run(8000);
      b.accept();
      b.send({ cmd: "connack", sessionPresent: false, returnCode: rc });
      b.run();
    }
    expect(b.takeEvents().filter((e) => e.startsWith("error"))).toEqual(["error connack-protocol",
      "error connack-identifier-rejected", "error connack-server-unavailable", "error not-authorized", "error malformed-packet"]);
  });

  it("gives up an attempt without CONNACK after connectTimeoutMs", () => {
    const b = new ScriptedBoard();
    const c = b.client({ connectTimeoutMs: 5000 });
    c.start();
    b.run();
    b.accept();
    b.take();
    b.run(4999);
    expect(b.take()).toEqual([]);
    b.run(1);
    expect(b.take()).toEqual(["close"]);
    expect(b.takeEvents()).toEqual(["error connect-timeout", "close connect-timeout"]);
    expect(c.lastReason).toBe("connect-timeout");
  });

  it("a host name that does not resolve is reported and retried", () => {
    const b = new ScriptedBoard();
    b.unknownHosts.add("a");
    const c = b.client();
    c.start();
    b.run();
    expect(b.takeEvents()).toEqual(["error not-found", "close not-found"]);
    expect(c.lastError?.message).toMatch(/did not resolve/);
    expect(b.take()).toEqual([]);
  });

  it("a transport that never reports its close does not hang the client", () => {
    const b = new ScriptedBoard();
    b.reportsClose = false;
    const c = b.client({ connectTimeoutMs: 2000 });
    c.start();
    b.run();
    b.accept();
    b.run(2000); // connect timeout → close asked, never reported
    expect(c.state).toBe(State.Closing);
    b.run(2000);
    expect(c.state).toBe(State.Backoff);
  });
});

describe("failed attempts in the log: a warning when the failure changes, an info line while it repeats", () => {
  /** A board whose log lines are kept as "warn mqtt: …" / "info mqtt: …" (debug left out). */
  function logged(): { b: ScriptedBoard; lines: string[] } {
    const b = new ScriptedBoard();
    const lines: string[] = [];
    b.platform.log = { writeLog: (level, line) => {
      if (level < LOG_DEBUG) lines.push(`${level === LOG_WARN ? "warn" : level === LOG_INFO ? "info" : `level${level}`} ${line}`);
    } };
    return { b, lines };
  }
  /** The next attempt dials (the backoff, 8 s at most here, runs out), then fails with the transport's `reason`. */
  function failWith(b: ScriptedBoard, reason: string): void {
    b.run(8000);
    expect(b.take()).toEqual(["open a:1883"]);
    b.drop(reason);
  }
  /** A started client whose first attempt (it dials at once) the transport refused. */
  function refusedAtStart(): { b: ScriptedBoard; lines: string[]; c: ReturnType<ScriptedBoard["client"]> } {
    const { b, lines } = logged();
    const c = b.client();
    c.start();
    b.run();
    expect(b.take()).toEqual(["open a:1883"]);
    b.drop("refused");
    return { b, lines, c };
  }
  /** The next attempt dials and the broker refuses it with CONNACK `rc`. */
  function refusedWith(b: ScriptedBoard, rc: number): void {
    b.run(8000);
    b.accept();
    b.send({ cmd: "connack", sessionPresent: false, returnCode: rc });
    b.run();
    b.take();
  }
  const count = (lines: string[], re: RegExp) => lines.filter((l) => re.test(l)).length;

  it("three refused attempts: one warning, then two info lines that say it is the same failure again; onError hears all three", () => {
    const { b, lines, c } = refusedAtStart();
    failWith(b, "refused");
    failWith(b, "refused");
    expect(c.stats.attempts).toBe(3);
    expect(lines).toEqual([
      "warn mqtt: refused: the broker's address refused the connection; fix: check the host and port, and that the broker is running",
      "info mqtt: refused again (attempt 2)",
      "info mqtt: refused again (attempt 3)",
    ]);
    expect(b.takeEvents().filter((e) => e.startsWith("error"))).toEqual(["error refused", "error refused", "error refused"]);
    expect(c.lastError?.code).toBe("refused");
  });

  it("a failure with another reason warns again, and its own repeats are info lines", () => {
    const { b, lines, c } = refusedAtStart();
    failWith(b, "refused");
    failWith(b, "unreachable");
    failWith(b, "unreachable");
    failWith(b, "refused");
    expect(lines.map((l) => l.replace(/: the .*$/, ""))).toEqual([
      "warn mqtt: refused",
      "info mqtt: refused again (attempt 2)",
      "warn mqtt: unreachable",
      "info mqtt: unreachable again (attempt 4)",
      "warn mqtt: refused",
    ]);
    expect(c.lastError?.code).toBe("refused");
  });

  it("a CONNACK refusal that repeats is one warning, then info lines; a connection resets it, so the next failure warns", () => {
    const { b, lines } = logged();
    const c = b.client();
    c.start();
    b.run(); // the first attempt dials at once; refusedWith's wait only lets it be
    refusedWith(b, 5);
    refusedWith(b, 5);
    refusedWith(b, 5);
    expect(count(lines, /^warn mqtt: not-authorized: /)).toBe(1);
    expect(count(lines, /^info mqtt: not-authorized again \(attempt \d\)$/)).toBe(2);
    // the broker takes it: connected, then the connection breaks
    b.run(8000);
    b.accept();
    b.send({ cmd: "connack", sessionPresent: false, returnCode: 0 });
    expect(c.state).toBe(State.Connected);
    b.drop("reset");
    // the same refusal as before the connection: a warning again, then info
    refusedWith(b, 5);
    refusedWith(b, 5);
    expect(count(lines, /^warn mqtt: not-authorized: /)).toBe(2);
    expect(count(lines, /^info mqtt: not-authorized again/)).toBe(3);
    expect(lines.filter((l) => !l.includes("not-authorized"))).toEqual([
      "info mqtt: connected to a:1883 (session new, outbox 0)",
      "info mqtt: connection ended: the connection was reset; the client reconnects (if it keeps happening: check the broker's log, its max_connections and the Wi-Fi signal)",
    ]);
    expect(b.takeEvents().filter((e) => e.startsWith("error"))).toHaveLength(5);
  });

  it("a connection that is accepted and breaks at once, then refused attempts: the first refusal after it warns", () => {
    const { b, lines, c } = refusedAtStart();
    failWith(b, "refused");
    b.run(8000);
    b.accept();
    b.send({ cmd: "connack", sessionPresent: false, returnCode: 0 });
    b.take();
    b.drop("refused"); // (a transport's code for a connection that was up: the same code as the attempts')
    failWith(b, "refused");
    failWith(b, "refused");
    expect(lines.filter((l) => l.includes("refused")).map((l) => l.replace(/: the .*$/, ""))).toEqual([
      "warn mqtt: refused",
      "info mqtt: refused again (attempt 2)",
      "info mqtt: connection ended",
      "warn mqtt: refused",
      "info mqtt: refused again (attempt 5)",
    ]);
    expect(c.stats.attempts).toBe(5);
  });

  it("end() and start() again: the first failure of the new start warns", () => {
    const { b, lines, c } = refusedAtStart();
    failWith(b, "refused");
    c.end();
    b.run();
    c.start();
    b.run();
    expect(b.take()).toEqual(["open a:1883"]);
    b.drop("refused");
    expect(lines.map((l) => l.replace(/: the .*$/, ""))).toEqual(["warn mqtt: refused", "info mqtt: refused again (attempt 2)", "warn mqtt: refused"]);
  });
});




describe("subscribe and unsubscribe", () => {
  it("reports SUBACK codes per filter; a refused filter is forgotten", () => {
    const b = new ScriptedBoard();
    const c = b.client();
    c.start();
    b.connect();
    const got: unknown[] = [];
    ok(c.subscribe(["ok", "denied"], [2, 1], 2, undefined, (e, g) => got.push(e ?? g)));
    expect(b.take()).toEqual(["subscribe id=1 ok:2,denied:1"]);
    b.send({ cmd: "suback", messageId: 1, granted: [1, 0x80] });
    expect(got).toEqual([[1, 128]]);
    expect(c.subs.count).toBe(1);
    // without a callback the refusal becomes an error event
    ok(c.subscribe(["no"], [0], 1, undefined, undefined));
    b.send({ cmd: "suback", messageId: 2, granted: [0x80] });
    expect(c.lastError?.code).toBe("subscribe-refused");
    expect(c.lastError?.message).toMatch(/no \(SUBACK 0x80\)/);
    ok(c.unsubscribe(["ok"], 1, (e) => got.push(e ?? "unsubscribed")));
    expect(b.take()).toEqual(["subscribe id=2 no:0", "unsubscribe id=3 ok"]);
    b.send({ cmd: "unsuback", messageId: 3 });
    expect(got).toEqual([[1, 128], "unsubscribed"]);
    b.send({ cmd: "unsuback", messageId: 3 }); // unknown id: ignored
    expect(c.stats.ignored).toBe(1);
  });

  it("refuses invalid or too many requests", () => {
    const b = new ScriptedBoard();
    const c = b.client({ maxRequests: 1, maxPacket: 64 });
    expect(c.subscribe(["a/#/b"], [0], 1, undefined, undefined)?.code).toBe("invalid-filter");
    expect(c.subscribe([], [], 0, undefined, undefined)?.code).toBe("no-filters");
    expect(c.subscribe(["x".repeat(80)], [0], 1, undefined, undefined)?.code).toBe("message-too-large");
    ok(c.subscribe(["a"], [0], 1, undefined, undefined));
    expect(c.unsubscribe(["a"], 1, undefined)?.code).toBe("too-many-requests");
  });

  it("restores many filters in as few SUBSCRIBE packets as fit", () => {
    const b = new ScriptedBoard();
    const c = b.client({ maxPacket: 64 });
    c.start();
    b.connect();
    for (let i = 0; i < 6; i++) {
      ok(c.subscribe([`filter/number/${i}`], [1], 1, undefined, undefined));
      b.send({ cmd: "suback", messageId: i + 1, granted: [1] });
    }
    b.take();
    b.run(STABLE_MS); // a working connection: it outlived stableMs
    b.drop("reset");
    b.run(1000);
    const lines = b.connect(false).filter((l) => l.startsWith("subscribe"));
    expect(lines).toEqual(["subscribe id=7 filter/number/0:1,filter/number/1:1,filter/number/2:1",
      "subscribe id=8 filter/number/3:1,filter/number/4:1,filter/number/5:1"]);
  });
});

describe("protocol violations", () => {
  const connected = () => {
    const b = new ScriptedBoard();
    const c = b.client();
    c.start();
    b.connect();
    b.take();
    b.takeEvents();
    return { b, c };
  };

  it("ignores acknowledgements for unknown ids", () => {
    const { b, c } = connected();
    b.send({ cmd: "puback", messageId: 40 }, { cmd: "pubcomp", messageId: 41 }, { cmd: "suback", messageId: 42, granted: [0] });
    b.send({ cmd: "pubrec", messageId: 43 }); // unknown PUBREC: PUBREL lets the broker free it
    expect(c.stats.ignored).toBe(4);
    expect(b.take()).toEqual(["pubrel 43"]);
    expect(c.state).toBe(State.Connected);
  });

  const closes = (name: string, act: (b: ScriptedBoard, c: ReturnType<ScriptedBoard["client"]>) => void, code: string, re: RegExp) =>
    it(name, () => {
      const { b, c } = connected();
      act(b, c);
      expect(c.lastError?.code).toBe(code);
      expect(c.lastError?.message).toMatch(re);
      expect(b.take()).toContain("close");
      b.run();
      expect(c.state).toBe(State.Backoff);
      expect(c.lastReason).toBe(code);
    });

  closes("PUBREC for a QoS 1 message", (b, c) => {
    ok(c.publish("t", "1", 1, false, undefined));
    b.send({ cmd: "pubrec", messageId: 1 });
  }, "protocol-error", /PUBREC for QoS 1/);
  closes("PUBACK for a QoS 2 message", (b, c) => {
    ok(c.publish("t", "2", 2, false, undefined));
    b.send({ cmd: "puback", messageId: 1 });
  }, "protocol-error", /PUBACK for QoS 2/);
  closes("a second CONNACK", (b) => b.send({ cmd: "connack", sessionPresent: false, returnCode: 0 }), "protocol-error", /second CONNACK/);
  closes("a malformed packet", (b) => b.raw(Buffer.from([0x40, 0x03, 0, 1, 0])), "malformed-packet", /bad-length/);
  closes("SUBACK with the wrong number of codes", (b, c) => {
    ok(c.subscribe(["a", "b"], [0, 0], 2, undefined, undefined));
    b.send({ cmd: "suback", messageId: 1, granted: [0] });
  }, "protocol-error", /1 return codes for 2 filters/);
  closes("UNSUBACK for a SUBSCRIBE", (b, c) => {
    ok(c.subscribe(["a"], [0], 1, undefined, undefined));
    b.send({ cmd: "unsuback", messageId: 1 });
  }, "protocol-error", /UNSUBACK answers/);

  it("a packet before CONNACK", () => {
    const b = new ScriptedBoard();
    const c = b.client();
    c.start();
    b.run();
    b.accept();
    b.send({ cmd: "pingresp" });
    expect(c.lastError?.code).toBe("protocol-error");
    expect(c.lastError?.message).toMatch(/before CONNACK/);
  });
});

describe("keepalive", () => {
  it("PINGREQ after keepalive seconds without sending; no PINGRESP → dead link → reconnect", () => {
    const b = new ScriptedBoard();
    const c = b.client({ keepalive: 10, pingTimeoutMs: 3000 });
    c.start();
    b.connect();
    b.run(9999);
    expect(b.take()).toEqual([]);
    b.run(1);
    expect(b.take()).toEqual(["pingreq"]);
    b.send({ cmd: "pingresp" });
    b.run(9999);
    expect(b.take()).toEqual([]);
    b.run(1);
    expect(b.take()).toEqual(["pingreq"]);
    b.run(2999);
    expect(c.state).toBe(State.Connected);
    b.run(1);
    expect(b.take()).toEqual(["close"]);
    b.run();
    expect(c.lastReason).toBe("ping-timeout");
    expect(b.takeEvents()).toEqual(["connect sp=0", "offline ping-timeout", "close ping-timeout"]);
    expect(c.stats.pings).toBe(2);
  });

  it("sending resets the keepalive clock; a silent broker is pinged after keepalive seconds anyway", () => {
    const b = new ScriptedBoard();
    const c = b.client({ keepalive: 10 });
    c.start();
    b.connect();
    b.run(6000);
    ok(c.publish("t", "x", 0, false, undefined));
    b.send({ cmd: "publish", topic: "in", payload: "", qos: 0, retain: false, dup: false }); // received at 6 s
    b.take();
    b.run(9999); // 15.999 s: sent at 6, received at 6
    expect(b.take()).toEqual([]);
    b.run(1);
    expect(b.take()).toEqual(["pingreq"]);
    expect(c.stats.pings).toBe(1);
    // broker keeps talking, client silent: ping on the send side
    b.send({ cmd: "pingresp" });
    for (let i = 0; i < 3; i++) {
      b.run(4000);
      b.send({ cmd: "publish", topic: "in", payload: "", qos: 0, retain: false, dup: false });
    }
    expect(b.take()).toEqual(["pingreq"]);
  });

  it("a prompt PINGRESP: the next PINGREQ a keepalive after the last packet sent, not after the ping timeout", () => {
    const b = new ScriptedBoard();
    const c = b.client({ keepalive: 5, pingTimeoutMs: 5000 });
    c.start();
    b.connect();
    let pings = 0;
    // 60 s of virtual time, every PINGREQ answered 100 ms later
    for (let ms = 0; ms < 60000; ms += 100) {
      b.run(100);
      const sent = b.take();
      if (sent.includes("pingreq")) {
        pings++;
        b.run(100);
        ms += 100;
        b.send({ cmd: "pingresp" });
      }
    }
    expect(pings).toBe(12);
    expect(c.stats.pings).toBe(12);
    expect(c.state).toBe(State.Connected);
  });

  it("several bad options: the first is the one reported", () => {
    const b = new ScriptedBoard();
    const c = Client.create(b.platform, { brokers: [{ host: "a", port: 1883 }], keepalive: -1, maxPacket: 1, maxInflight: 0 }, {});
    expect("code" in c && c.message).toMatch(/^keepalive must be a whole number/);
  });

  it("a ping timeout longer than the keepalive is refused: the broker would close the link first (MQTT-3.1.2-24)", () => {
    const b = new ScriptedBoard();
    const c = Client.create(b.platform, { brokers: [{ host: "a", port: 1883 }], keepalive: 5, pingTimeoutMs: 60000 }, {});
    expect("code" in c && c.code).toBe("bad-option");
    expect("code" in c && c.message).toMatch(/pingTimeoutMs \(60000\) is longer than the keepalive \(5 s\).*fix: set pingTimeoutMs to at most keepalive x 1000/);
  });

  it("keepalive 0 never pings", () => {
    const b = new ScriptedBoard();
    const c = b.client({ keepalive: 0 });
    c.start();
    b.connect();
    b.run(1000000);
    expect(b.take()).toEqual([]);
    expect(c.stats.pings).toBe(0);
  });
});

describe("reconnect, backoff and failover", () => {
  /** Times between dial attempts while every attempt is refused. */
  function dialGaps(b: ScriptedBoard, attempts: number): Array<[string, number]> {
    const out: Array<[string, number]> = [];
    let last = -1;
    for (let t = 0; t < 200000 && out.length < attempts; t += 10) {
      const line = b.take().find((l) => l.startsWith("open"));
      if (line !== undefined) {
        out.push([line.slice(5), last < 0 ? 0 : t - last]);
        last = t;
        b.drop("refused");
      }
      b.run(10);
    }
    return out;
  }

  it("doubles the delay per failed round over the brokers, capped, with jitter down to half", () => {
    const b = new ScriptedBoard();
    const c = b.client({ brokers: [{ host: "a", port: 1 }, { host: "b", port: 2 }], reconnectMinMs: 1000, reconnectMaxMs: 8000 });
    c.start();
    expect(dialGaps(b, 9)).toEqual([["a:1", 0], ["b:2", 1000], ["a:1", 2000], ["b:2", 1000], ["a:1", 4000], ["b:2", 1000],
      ["a:1", 8000], ["b:2", 1000], ["a:1", 8000]]);
    expect(c.stats.attempts).toBe(9);

    const low = new ScriptedBoard();
    low.jitter = () => 0;
    low.client({ reconnectMinMs: 1000, reconnectMaxMs: 8000 }).start();
    expect(dialGaps(low, 6).map((g) => g[1])).toEqual([0, 1000, 2000, 4000, 4000, 4000]);
  });

  it("after a working connection breaks, starts again from the first broker", () => {
    const b = new ScriptedBoard();
    const c = b.client({ brokers: [{ host: "a", port: 1 }, { host: "b", port: 2 }], primaryRetry: 0 });
    c.start();
    b.run();
    b.drop("refused");
    b.run(1000);
    expect(b.connect()).toContain("open b:2");
    expect(c.broker).toBe(1);
    b.run(STABLE_MS); // a working connection: it outlived stableMs
    b.drop("reset");
    b.run(1000);
    expect(b.take()).toEqual(["open a:1"]);
  });

  it("returns to the first broker after primaryRetry seconds on a fallback, with DISCONNECT", () => {
    const b = new ScriptedBoard();
    const c = b.client({ brokers: [{ host: "a", port: 1 }, { host: "b", port: 2 }], primaryRetry: 60, keepalive: 0 });
    c.start();
    b.run();
    b.drop("refused");
    b.run(1000);
    b.connect();
    b.run(59999);
    expect(b.take()).toEqual([]);
    b.run(1);
    expect(b.take()).toEqual(["disconnect", "close"]);
    b.run();
    expect(b.take()).toEqual(["open a:1"]);
    expect(c.lastReason).toBe("primary-retry");
    // the first is still down: back to the second, and the next try comes after twice as long
    b.drop("refused");
    b.run(1000);
    expect(b.connect()).toEqual(["open b:2", "connect petrel-c0ffee clean=0 ka=0"]);
    b.run(119999);
    expect(b.take()).toEqual([]);
    b.run(1);
    expect(b.take()).toEqual(["disconnect", "close"]);
    // this time the first answers: the period starts over from primaryRetry
    b.run();
    expect(b.connect()).toEqual(["open a:1", "connect petrel-c0ffee clean=0 ka=0"]);
    expect(c.broker).toBe(0);
    b.run(STABLE_MS); // a working connection: it outlived stableMs
    b.drop("reset");
    b.run(1000);
    b.drop("refused");
    b.run(1000);
    b.connect();
    expect(c.broker).toBe(1);
    b.run(59999);
    expect(b.take()).toEqual([]);
    b.run(1);
    expect(b.take()).toEqual(["disconnect", "close"]);
  });

  it("the primary retry period stops growing at 16 times primaryRetry", () => {
    const b = new ScriptedBoard();
    const c = b.client({ brokers: [{ host: "a", port: 1 }, { host: "b", port: 2 }], primaryRetry: 10 });
    c.start();
    b.run();
    b.drop("refused");
    b.run(1000);
    b.connect();
    const periods: number[] = [];
    for (let round = 0; round < 7; round++) {
      let waited = 0;
      while (!b.take().includes("disconnect") && waited < 1000000) {
        b.run(1000);
        waited += 1000;
      }
      periods.push(waited);
      b.run();
      b.drop("refused"); // the first is still down
      b.run(1000);
      b.connect();
    }
    expect(periods).toEqual([10000, 20000, 40000, 80000, 160000, 160000, 160000]);
  });
});

describe("a message the broker refuses by closing the connection (NATS Server 2.9 on QoS 2)", () => {
  const isQos2 = (l: string) => l.startsWith("publish q2");

  it("the backoff grows across short-lived connections; after 3 the message is held, its callback hears publish-refused, the rest flows", () => {
    const b = new ScriptedBoard();
    const c = b.client({ reconnectMinMs: 1000, reconnectMaxMs: 60000 });
    const nats = new FakeBroker(b, isQos2);
    const heard: string[] = [];
    c.start();
    nats.run(0);
    ok(c.publish("nats/q2", "refused", 2, false, (e) => heard.push(e === undefined ? "q2 ok" : `${e.code}: ${e.message}`)));
    ok(c.publish("nats/q1", "behind", 1, false, (e) => heard.push(e === undefined ? "q1 ok" : e.code)));
    nats.run(30000);
    // three short-lived connections, each a failed attempt: 2, 4, 8 s (jitter at its largest),
    // not 1 s after every CONNACK; then the message is held and the one behind it goes
    expect(nats.closes).toBe(3);
    expect(nats.gaps()).toEqual([2000, 4000, 8000]);
    expect(heard).toEqual([
      "publish-refused: the broker closed the connection 3 times in a row right after the QoS 2 PUBLISH to nats/q2, acknowledging nothing " +
      "(NATS refuses QoS 2; an ACL may forbid a topic); held 1: out of the outbox, the rest goes on; " +
      "fix: let the broker take it, then held retry 1 (API: retryHeld), or held drop 1 (dropHeld)",
      "q1 ok"]);
    expect(c.outbox.count).toBe(0);
    expect(b.records()).toEqual(["mqh1"]);
    expect(listHeld(c).map((m) => [m.n, m.topic, m.qos, m.retain, String(m.payload), m.size])).toEqual([[1, "nats/q2", 2, false, "refused", 20]]);
    // after the first death the suspect went alone: the QoS 1 message waited behind it
    const pubs = b.wire.filter((l) => l.startsWith("publish"));
    expect(pubs).toEqual(["publish q2 d0 r0 id=1 nats/q2 refused", "publish q1 d0 r0 id=2 nats/q1 behind",
      "publish q2 d1 r0 id=1 nats/q2 refused", "publish q2 d1 r0 id=1 nats/q2 refused", "publish q1 d1 r0 id=2 nats/q1 behind"]);
    expect(c.lastError?.code).toBe("publish-refused");
    // the connection that delivered it is a working one: a later drop starts the backoff over
    nats.run(STABLE_MS);
    const at = nats.now();
    b.drop("reset");
    nats.run(1000);
    expect(nats.dials.slice(4).map((d) => d - at)).toEqual([1000]);
  });

  it("without a callback the refusal goes to onError; a connection that worked (an acknowledgement, or stableMs) is no evidence", () => {
    const b = new ScriptedBoard();
    const c = b.client();
    let refuse = false;
    const broker = new FakeBroker(b, (l) => refuse && isQos2(l));
    c.start();
    broker.run(0);
    // a QoS 1 message acknowledged, then the close: a working connection; reconnect after 1 s
    ok(c.publish("t", "one", 1, false, undefined));
    ok(c.publish("t", "two", 2, false, undefined));
    refuse = true;
    broker.run(0);
    expect(broker.closes).toBe(1);
    broker.run(1000);
    expect(broker.gaps()).toEqual([1000]);
    // short-lived, twice: evidence against it, and a growing backoff (2 s, then 4 s); then the
    // broker takes it, and closes a later connection that worked: the count starts over and so
    // does the backoff
    broker.run(3000);
    expect(broker.gaps()).toEqual([1000, 2000]);
    refuse = false;
    broker.run(4000 + STABLE_MS);
    expect(broker.gaps()).toEqual([1000, 2000, 4000]);
    expect(c.outbox.count).toBe(0); // (the broker took it this time)
    expect(b.takeEvents().filter((e) => e.startsWith("error"))).toEqual([]);
    ok(c.publish("t", "three", 2, false, undefined));
    refuse = true;
    const at = broker.now();
    broker.run(1000);
    expect(broker.dials.slice(4).map((d) => d - at)).toEqual([1000]);
    broker.run(7000);
    expect(broker.gaps().slice(4)).toEqual([2000, 4000]);
    expect(b.takeEvents().filter((e) => e.startsWith("error"))).toEqual(["error publish-refused"]);
    expect(c.lastError?.message).toMatch(/3 times in a row right after the QoS 2 PUBLISH to t,.*held 1: out of the outbox/);
    expect(listHeld(c).map((m) => String(m.payload))).toEqual(["three"]);
  });

  it("a close this client chose (a ping timeout) is no evidence against the message, though it counts for the backoff", () => {
    const b = new ScriptedBoard();
    const c = b.client({ keepalive: 1, pingTimeoutMs: 500, stableMs: 10000 });
    // a broker that answers neither the PUBLISH nor PINGREQ: each time the client gives up after 1.5 s
    const silent = new FakeBroker(b, () => false, (l) => l === "pingreq" || l.startsWith("publish"));
    c.start();
    silent.run(0);
    ok(c.publish("t", "slow", 1, false, undefined));
    silent.run(20000);
    expect(c.lastReason).toBe("ping-timeout");
    expect(silent.gaps()).toEqual([3500, 5500, 9500]);
    expect(c.outbox.count).toBe(1);
    expect(listHeld(c)).toEqual([]);
  });

  it("held messages survive a reboot (not in the outbox); retryHeld sends one again at the end of the outbox, dropHeld deletes one", () => {
    const b = new ScriptedBoard();
    const c = b.client({ refusedAfter: 1 });
    const nats = new FakeBroker(b, isQos2);
    c.start();
    nats.run(0);
    ok(c.publish("a", "first", 2, true, undefined));
    nats.run(0);
    ok(c.publish("b", "second", 2, false, undefined));
    nats.run(10000);
    expect(b.records()).toEqual(["mqh1", "mqh2"]);
    expect(b.takeEvents().filter((e) => e.startsWith("error"))).toEqual(["error publish-refused", "error publish-refused"]);
    // a reboot: the next client on the same flash finds them held, not in its outbox
    const b2 = new ScriptedBoard();
    for (const k of b.storage.keys()) b2.storage.putRecord(k, b.storage.getRecord(k)!);
    const c2 = b2.client();
    expect(c2.outbox.count).toBe(0);
    expect(listHeld(c2).map((m) => `${m.topic} q${m.qos}${m.retain ? " retained" : ""} ${String(m.payload)}`)).toEqual(["a q2 retained first", "b q2 second"]);
    expect(retryHeld(c2, 3, undefined)).toEqual({ code: "not-held", message: "no message is held in slot 3; fix: take a number that held (API: listHeld) lists" });
    expect(dropHeld(c2, 0)?.code).toBe("not-held");
    // the broker takes QoS 2 now: the first is sent again, with a fresh packet id, and completes
    const heard: string[] = [];
    ok(retryHeld(c2, 1, (e) => heard.push(e === undefined ? "ok" : e.code)));
    expect(c2.outbox.count).toBe(1);
    expect(listHeld(c2).map((m) => `${m.n} ${m.topic}`)).toEqual(["2 b"]); // (a slot keeps its number)
    const ok2 = new FakeBroker(b2, () => false);
    c2.start();
    ok2.run(0);
    expect(b2.wire.filter((l) => l.startsWith("publish"))).toEqual(["publish q2 d0 r1 id=1 a first"]);
    expect(heard).toEqual(["ok"]);
    ok(dropHeld(c2, 2));
    expect(listHeld(c2)).toEqual([]);
    expect(b2.records()).toEqual([]);
    expect(dropHeld(c2, 2)?.code).toBe("not-held");
  });

  it("with heldMessages held already, a refused message stays in the outbox and onError says so; a retry the outbox cannot take stays held", () => {
    const b = new ScriptedBoard();
    const c = b.client({ refusedAfter: 1, heldMessages: 1, outboxMessages: 2 });
    const nats = new FakeBroker(b, isQos2);
    c.start();
    nats.run(0);
    ok(c.publish("a", "kept", 2, false, undefined));
    nats.run(3000);
    expect(b.takeEvents().filter((e) => e.startsWith("error"))).toEqual(["error publish-refused"]);
    const heard: string[] = [];
    ok(c.publish("b", "stays", 2, false, (e) => heard.push(e === undefined ? "ok" : e.code)));
    nats.run(10000);
    // told again at every refusedAfter-th short-lived connection (here each), as the backoff grows
    expect(b.takeEvents().filter((e) => e.startsWith("error"))).toEqual(["error publish-refused", "error publish-refused"]);
    expect(c.lastError?.message).toMatch(/to b, .*it stays in the outbox, and the rest waits: no held slot free \(heldMessages\) or storage failed; fix: held retry N or held drop N \(API: retryHeld, dropHeld\)$/);
    expect(heard).toEqual([]); // it may yet be delivered: its callback waits
    expect(c.outbox.count).toBe(1);
    expect(b.records()).toEqual(["mqh1", "mqo2"]);
    // the outbox is full: the retry is refused and the message stays held
    ok(c.publish("c", "fills the outbox", 1, false, undefined));
    expect(retryHeld(c, 1, undefined)?.code).toBe("outbox-full");
    expect(listHeld(c).map((m) => m.topic)).toEqual(["a"]);
  });

  it("refusedAfter 0: never held (the old behaviour), though the backoff still grows", () => {
    const b = new ScriptedBoard();
    const c = b.client({ refusedAfter: 0 });
    const nats = new FakeBroker(b, isQos2);
    c.start();
    nats.run(0);
    ok(c.publish("t", "x", 2, false, undefined));
    nats.run(60000);
    expect(nats.gaps()).toEqual([2000, 4000, 8000, 8000, 8000, 8000, 8000, 8000]);
    expect(c.outbox.count).toBe(1);
    expect(listHeld(c)).toEqual([]);
  });

  it("stableMs 0: every CONNACK starts the backoff over, as before", () => {
    const b = new ScriptedBoard();
    const c = b.client({ stableMs: 0 });
    const nats = new FakeBroker(b, isQos2);
    c.start();
    nats.run(0);
    ok(c.publish("t", "x", 2, false, undefined));
    nats.run(5500);
    expect(nats.gaps()).toEqual([1000, 1000, 1000, 1000, 1000]);
    expect(c.outbox.count).toBe(1);
  });

  it("the options are checked", () => {
    const b = new ScriptedBoard();
    expect(() => b.client({ stableMs: -1 })).toThrow(/stableMs must be a whole number from 0 to 3600000/);
    expect(() => b.client({ refusedAfter: 16 })).toThrow(/refusedAfter must be a whole number from 0 to 15/);
    expect(() => b.client({ heldMessages: 65 })).toThrow(/heldMessages must be a whole number from 0 to 64/);
  });
});

describe("end", () => {
  it("sends DISCONNECT, closes, and keeps unacknowledged messages for the next start", () => {
    const b = new ScriptedBoard();
    const c = b.client();
    c.start();
    b.connect();
    ok(c.publish("t", "kept", 1, false, undefined));
    b.take();
    c.end();
    expect(b.take()).toEqual(["disconnect", "close"]);
    b.run();
    expect(c.state).toBe(State.Stopped);
    expect(b.takeEvents()).toEqual(["connect sp=0", "offline ", "close ", "end"]);
    expect(b.records()).toEqual(["mqo1"]);
    c.start();
    expect(b.connect(true)).toEqual(["open a:1883", "connect petrel-c0ffee clean=0 ka=0", "publish q1 d1 r0 id=1 t kept"]);
  });

  it("while dialling, while waiting and before start", () => {
    const b = new ScriptedBoard();
    const c = b.client();
    c.end(); // not started: nothing
    expect(b.takeEvents()).toEqual([]);
    c.start();
    b.run();
    b.accept();
    c.end();
    b.run();
    expect(c.state).toBe(State.Stopped);
    c.start();
    b.run();
    b.drop("refused");
    expect(c.state).toBe(State.Backoff);
    c.end();
    expect(c.state).toBe(State.Stopped);
    b.run(100000);
    expect(b.take().filter((l) => l.startsWith("open"))).toEqual(["open a:1883", "open a:1883"]);
  });
});
