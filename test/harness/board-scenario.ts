import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { startFaultProxy, type FaultProxy } from "../../host-sim/fault-proxy";
import { startBroker, type Broker } from "../../host-sim/mosquitto";
import { seeded } from "../../host-sim/seeded";
import { mosquittoSub } from "./mosquitto-sub";

/**
 * The board memory scenario (issue 18, item 1), the same on every runtime: a packed board is
 * driven through its serial console and over MQTT, a real mosquitto and mosquitto_sub /
 * mosquitto_pub (not Petrel code) check what it does, and its memory in use is sampled after every
 * step. The board's broker setting points at a loopback fault proxy in front of mosquitto, so the
 * soak can drop its connection (`reset()`) as often as it likes.
 *
 * Every wait is a bound, never a check on time. What a board does wrong is recorded against its
 * step; a board that fails (out of memory, an assertion, an uncaught error, an exit) ends the run,
 * with the figures so far.
 */
export interface BoardUnderTest {
  readonly board: string;     // profile name, e.g. "esp8266-espruino"
  readonly runtime: string;   // e.g. "espruino-esp8266"
  readonly unit: string;      // "slots" or "bytes"
  boot(): Promise<void>;      // power on with the flash as it is; resolves at the console prompt (bounded)
  type(line: string, until?: RegExp, ms?: number): Promise<string[]>; // types a line; the lines printed until `until` matches (or the next prompt), bounded
  lines(): string[];          // everything printed since boot
  kill(): Promise<void>;      // power cut (the flash stays)
  memory(): Promise<number>;  // in use now after a collection, from status's memory line
  trouble(): string | undefined; // OUT OF MEMORY, an ASSERT, an uncaught error, an exit: why the board failed
  dispose(): Promise<void>;
}

export interface ScenarioOptions {
  /** The profile's largest inbound packet (maxInboundPacket): one command arrives exactly that big. */
  maxInboundPacket: number;
  /**
   * The profile's features (boards/<name>.json): without qos2 the QoS 2 step checks that the
   * console refuses qos 2 and says why.
   */
  features: string[];
  /** Connections dropped (fault proxy reset) in the soak. */
  reconnects: number;
  /** `publish` commands sent on the command topic in the soak (each a reading and a reply). */
  publishes: number;
  /**
   * How far (in the board's unit) memory after the soak may be above where it was before it.
   * Less is not a failure (something held before was let go); the note says so.
   */
  tolerance: number;
  /** Memory samples taken during the soak, after reconnects spread evenly (default 5). */
  soakSamples?: number;
  /** Seeds the payload of the largest message (and anything else random). */
  seed: number;
  /** Progress lines (the step names as they start). */
  log?: (line: string) => void;
}

export interface StepResult {
  name: string;
  /** In use after the step (the board's unit); null when it could not be measured. */
  memory: number | null;
  ok: boolean;
  /** What was checked, or why it failed. */
  note: string;
}

export interface ScenarioResult {
  board: string;
  runtime: string;
  unit: string;
  steps: StepResult[];
  /** The largest sample of the run (soak samples included); null when nothing was measured. */
  peak: number | null;
  /** The step in which the peak was sampled. */
  peakStep: string;
  /** In use just before the soak: what it must come back to within the tolerance. */
  baseline: number | null;
  /** Why the board failed (its trouble, or the first step that failed), when one did. */
  failure?: string;
  /** The soak's counts as run. */
  reconnects: number;
  publishes: number;
  tolerance: number;
}

/** The steps in order (a step not reached is reported as not run). */
export const STEPS = [
  "boot",
  "set broker, save",
  "power cycle",
  "connect",
  "publish QoS 1",
  "publish QoS 2",
  "command",
  "largest inbound",
  "broker restart",
  "outbox over a reboot",
  "status",
  "diag",
  "soak",
] as const;

/** Steps without which the later ones cannot mean anything: a failure here ends the run. */
const VITAL = new Set<string>(["boot", "set broker, save", "power cycle", "connect"]);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * How many times its stated bound a wait may take: the bounds are what a step takes on an idle
 * machine, and these runs share two cores with emulators beside them (a CI machine may be slower).
 */
export const PATIENCE = 3;

/** Polls `cond` every `every` ms until it holds; throws naming `what` after PATIENCE × `ms`. */
async function until(what: string, cond: () => boolean | Promise<boolean>, ms: number, every = 20): Promise<void> {
  for (let waited = 0; !(await cond()); waited += every) {
    if (waited >= ms * PATIENCE) throw new Error(`gave up after ${ms * PATIENCE} ms waiting for ${what}`);
    await sleep(every);
  }
}

interface Message { topic: string; qos: number; payload: string }

/** mosquitto_sub on `filter` at QoS 2 (so each message arrives at the QoS it was published with). */
class Observer {
  readonly messages: Message[] = [];
  private child: ChildProcess | undefined;

  async start(port: number, filter: string): Promise<void> {
    this.stop();
    this.child = await mosquittoSub(port, filter, 2, "%t %q %x", (p) => {
      const [topic, qos, hex] = p.split(" ");
      this.messages.push({ topic, qos: Number(qos), payload: Buffer.from(hex ?? "", "hex").toString("latin1") });
    });
  }

  stop(): void {
    this.child?.kill("SIGKILL");
    this.child = undefined;
  }

  /** Messages from index `from` on that `pred` accepts. */
  since(from: number, pred: (m: Message) => boolean): Message[] {
    return this.messages.slice(from).filter(pred);
  }

  /** Waits for `n` messages from `from` on that `pred` accepts (bounded); returns them. */
  async wait(what: string, from: number, pred: (m: Message) => boolean, n = 1, ms = 10_000): Promise<Message[]> {
    await until(`${what} (${this.since(from, pred).length} of ${n} arrived)`, () => this.since(from, pred).length >= n, ms);
    return this.since(from, pred);
  }
}

/** One message with mosquitto_pub (bounded). */
function mosquittoPub(port: number, topic: string, payload: string, qos: number): void {
  const r = spawnSync("mosquitto_pub", ["-h", "127.0.0.1", "-p", String(port), "-t", topic, "-m", payload, "-q", String(qos)], { timeout: 5000, encoding: "latin1" });
  if (r.status !== 0) throw new Error(`mosquitto_pub to ${topic} failed: ${r.stderr}`);
}

/** mosquitto_pub -l: one message per line written, over one connection (the soak's commands). */
class Commander {
  private child: ChildProcess;
  constructor(port: number, topic: string) {
    this.child = spawn("mosquitto_pub", ["-h", "127.0.0.1", "-p", String(port), "-t", topic, "-q", "1", "-l"], { stdio: ["pipe", "ignore", "ignore"] });
    this.child.stdin?.on("error", () => undefined);
  }
  send(line: string): void {
    this.child.stdin?.write(line + "\n");
  }
  stop(): void {
    this.child.kill("SIGKILL");
  }
}

/**
 * The size of a QoS 1 PUBLISH packet with these topic and payload lengths (MQTT 3.1.1; at 5.0
 * one byte more: an empty property block, as mosquitto forwards a message without properties).
 */
export function publishPacketSize(topicLength: number, payloadLength: number, v5 = false): number {
  const rl = 2 + topicLength + 2 + (v5 ? 1 : 0) + payloadLength;
  return 1 + (rl < 128 ? 1 : rl < 16384 ? 2 : rl < 2097152 ? 3 : 4) + rl;
}

/** The payload length that makes a QoS 1 PUBLISH to a topic of `topicLength` exactly `size` bytes. */
export function payloadForPacket(size: number, topicLength: number, v5 = false): number {
  for (let lengthBytes = 1; lengthBytes <= 4; lengthBytes++) {
    const payload = size - 1 - lengthBytes - 2 - topicLength - 2 - (v5 ? 1 : 0);
    if (payload >= 0 && publishPacketSize(topicLength, payload, v5) === size) return payload;
  }
  throw new Error(`no QoS 1 PUBLISH of ${size} bytes to a topic of ${topicLength} characters`);
}

/** Runs the scenario on a board (not yet booted, its flash as packed); the board is left off. */
export async function runBoardScenario(b: BoardUnderTest, opts: ScenarioOptions): Promise<ScenarioResult> {
  const log = opts.log ?? (() => undefined);
  const random = seeded(opts.seed);
  const steps: StepResult[] = [];
  const result: ScenarioResult = { board: b.board, runtime: b.runtime, unit: b.unit, steps, peak: null, peakStep: "", baseline: null,
    reconnects: opts.reconnects, publishes: opts.publishes, tolerance: opts.tolerance };
  let broker: Broker = await startBroker();
  const proxy: FaultProxy = await startFaultProxy({ target: { host: broker.host, port: broker.port }, random });
  const observer = new Observer();
  let commander: Commander | undefined;
  let on = false;
  let id = "";
  let topics = { telemetry: "", cmd: "", reply: "", outbox: "" };

  const status = async (): Promise<string[]> => b.type("status", /^memory: /);
  const connectedNow = async (): Promise<boolean> => (await status()).some((l) => /^node \S+: connected,/.test(l));
  /** The broker's count of connections accepted from this node's client id (its own log). */
  const brokerConnects = (): number => (id === "" ? 0 : broker.log().split(`New client connected from `).filter((s) => s.includes(` as ${id} `)).length);
  let current = "";
  /** Keeps a sample toward the peak, naming the step it was taken in. */
  const keep = (m: number) => {
    if (result.peak === null || m > result.peak) {
      result.peak = m;
      result.peakStep = current;
    }
  };
  const sample = async (): Promise<number | null> => {
    if (!on) return null;
    try {
      const m = await b.memory();
      keep(m);
      return m;
    } catch {
      return null;
    }
  };
  const observe = async () => observer.start(broker.port, "petrel/#");

  /** Runs one step: its note, or why it failed; then a sample. False when the run must end. */
  const step = async (name: (typeof STEPS)[number], fn: () => Promise<string>): Promise<boolean> => {
    log(`${b.board}: ${name}`);
    current = name;
    const seen = b.lines().length;
    let ok = true;
    let note: string;
    try {
      note = await fn();
    } catch (e) {
      ok = false;
      note = e instanceof Error ? e.message : String(e);
      // what the node logged meanwhile often says why (a step that booted the board starts the count again)
      const printed = b.lines();
      const logged = printed.slice(printed.length >= seen ? seen : 0).filter((l) => /^\[\s*\d+\.\d+\] (error|warn)/.test(l) && !/ task \S+ ran \d+ ms$/.test(l));
      if (logged.length > 0) note += `; the node logged: ${logged.slice(-3).join(" | ")}`;
    }
    const memory = await sample();
    // the sample may be what finds the board dead (a console that no longer answers)
    const trouble = b.trouble();
    if (trouble !== undefined && ok) {
      ok = false;
      note = `${note}; then ${trouble}`;
    }
    steps.push({ name, memory, ok, note });
    if (!ok && result.failure === undefined) result.failure = `${name}: ${trouble ?? note}`;
    return trouble === undefined && (ok || !VITAL.has(name));
  };

  const boot = async () => {
    on = true;
    await b.boot();
  };
  const powerCut = async () => {
    await b.kill();
    on = false;
  };
  /** The node's id and topics, from status. */
  const learnId = async () => {
    const l = (await status()).find((x) => x.startsWith("node "));
    const m = l !== undefined ? /^node (\S+):/.exec(l) : null;
    if (m === null) throw new Error(`status named no node: ${l ?? "(no status line)"}`);
    id = m[1];
    const p = `petrel/${id}/`;
    topics = { telemetry: p + "telemetry", cmd: p + "cmd", reply: p + "reply", outbox: p + "outbox" };
  };
  const waitConnected = async (what: string, ms = 20_000) => {
    await until(what, connectedNow, ms, 250);
  };
  /** A command on the command topic; its reply (bounded). */
  const command = async (line: string, expect: RegExp, ms = 10_000): Promise<string> => {
    const from = observer.messages.length;
    mosquittoPub(broker.port, topics.cmd, line, 1);
    const [reply] = await observer.wait(`the reply to "${line.slice(0, 40)}"`, from, (m) => m.topic === topics.reply, 1, ms);
    if (!expect.test(reply.payload)) throw new Error(`the reply to "${line.slice(0, 40)}" was ${JSON.stringify(reply.payload.slice(0, 200))}`);
    return reply.payload;
  };
  const answer = async (line: string, expect: RegExp): Promise<string> => {
    const got = await b.type(line);
    const hit = got.find((l) => expect.test(l));
    if (hit === undefined) throw new Error(`"${line}" answered ${JSON.stringify(got.join(" | "))}`);
    return hit;
  };
  const readingAt = async (qos: number): Promise<string> => {
    await answer(`set qos ${qos}`, /^qos = /);
    const from = observer.messages.length;
    await answer("publish", /publishing a reading/);
    const [m] = await observer.wait(`a reading on ${topics.telemetry}`, from, (x) => x.topic === topics.telemetry, 1);
    if (m.qos !== qos) throw new Error(`the reading arrived at QoS ${m.qos}, published at ${qos}`);
    return `arrived at QoS ${m.qos}: ${m.payload}`;
  };

  try {
    await observe();
    const go =
      (await step("boot", async () => {
        await boot();
        return "at the console prompt";
      })) &&
      (await step("set broker, save", async () => {
        await answer(`set brokers 127.0.0.1:${proxy.port}`, /^brokers = /);
        // no periodic readings: each one in the run is asked for, so the counts repeat
        await answer("set interval 3600", /^interval = /);
        const saved = await answer("save", /^saved|^error/);
        if (!saved.startsWith("saved")) throw new Error(saved);
        return `brokers = 127.0.0.1:${proxy.port} (the fault proxy before mosquitto), interval 3600; ${saved}`;
      })) &&
      (await step("power cycle", async () => {
        await powerCut();
        await boot();
        const got = await answer("get brokers", /^brokers = /);
        if (!got.includes(`127.0.0.1:${proxy.port}`)) throw new Error(`after the power cut: ${got}`);
        return `settings kept: ${got.split("  ")[0]}`;
      })) &&
      (await step("connect", async () => {
        await learnId();
        await waitConnected(`${b.board} to connect`);
        await until("mosquitto to log the connection", () => brokerConnects() > 0, 5000);
        return `connected as ${id}`;
      }));
    if (go) {
      await step("publish QoS 1", () => readingAt(1));
      await step("publish QoS 2", async () => {
        if (opts.features.includes("qos2")) return readingAt(2);
        const refused = await answer("set qos 2", /^error: qos|^qos = /);
        if (!/leaves qos2 out/.test(refused)) throw new Error(`a board without qos2 took "set qos 2": ${refused}`);
        const feat = await answer("status", /^features: /);
        if (!/left out of this board's build:.*qos2/.test(feat)) throw new Error(`status does not say qos2 is left out: ${feat}`);
        return `left out of this board's build (features): "set qos 2" answered "${refused}"`;
      });
      await step("command", async () => {
        const r = await command("status", new RegExp(`^node ${id}: connected`));
        return `status on ${topics.cmd} answered: ${r.split("\n")[0]}`;
      });
      await step("largest inbound", async () => {
        // (at 5.0 the node's CONNECT says its Maximum Packet Size: the broker drops a larger message)
        const n = payloadForPacket(opts.maxInboundPacket, topics.cmd.length, opts.features.includes("mqtt5"));
        let text = "status ";
        while (text.length < n) text += String.fromCharCode(97 + Math.floor(random() * 26));
        const r = await command(text, /over 200 characters/);
        if (!(await connectedNow())) throw new Error("not connected after the largest message");
        return `a ${opts.maxInboundPacket}-byte PUBLISH (payload ${n}) answered "${r}"; still connected`;
      });
      await step("broker restart", async () => {
        const before = brokerConnects();
        observer.stop();
        broker = await broker.restart();
        await observe();
        await until("the node to connect to the restarted broker", () => brokerConnects() > before, 20_000, 50);
        await waitConnected("the node to be connected again");
        const r = await command("publish", /publishing a reading/);
        return `reconnected on the same port; a command after it answered "${r}"`;
      });
      await step("outbox over a reboot", async () => {
        observer.stop();
        await broker.stop();
        let brokerDown = true;
        try {
          await until("the node to notice the broker is gone", async () => !(await connectedNow()), 20_000, 250);
          const texts = [1, 2, 3].map((k) => `queued-${opts.seed}-${k}`);
          for (const t of texts) await answer(`pub ${topics.outbox} 1 ${t}`, /^pub: queued \(outbox \d+\)/);
          const queued = (await status()).find((l) => l.startsWith("node ")) ?? "";
          await powerCut();
          broker = await broker.restart();
          brokerDown = false;
          await observe();
          const from = observer.messages.length;
          await boot();
          const got = await observer.wait(`the ${texts.length} queued messages`, from, (m) => m.topic === topics.outbox, texts.length, 30_000);
          const missing = texts.filter((t) => !got.some((m) => m.payload === t));
          if (missing.length > 0) throw new Error(`lost over the power cut: ${missing.join(", ")}`);
          await waitConnected("the node to be connected after the reboot");
          return `3 QoS 1 messages queued with the broker down (${queued.replace(/^node \S+: /, "")}), power cut, broker up, boot: all 3 arrived`;
        } finally {
          // whatever failed, the later steps find the broker up and the board on
          if (brokerDown) {
            broker = await broker.restart();
            await observe();
          }
          if (!on && b.trouble() === undefined) await boot();
          // the node is back in its backoff: give it the time to connect again (bounded) before the next step
          if (b.trouble() === undefined) await waitConnected("the node to connect again").catch(() => undefined);
        }
      });
      await step("status", async () => {
        const got = await status();
        if (!got.some((l) => /^node \S+: connected,/.test(l))) throw new Error(`status: ${got.join(" | ")}`);
        return got.filter((l) => l.startsWith("node ")).join("");
      });
      await step("diag", async () => {
        const got = await b.type("diag", /^diag: (every link works|first broken link|no broken link)/);
        const last = got[got.length - 1];
        if (!/every link works/.test(last)) throw new Error(`diag: ${got.join(" | ")}`);
        return last;
      });
      await step("soak", () => soak());
    }
  } finally {
    commander?.stop();
    observer.stop();
    await b.kill();
    await proxy.close();
    await broker.close();
  }
  return result;

  /**
   * Reconnects through the proxy's reset and `publish` commands on the command topic, spread
   * evenly between them, each command's reply waited for. Memory before and after (with the
   * node connected and its outbox empty) must agree within the tolerance.
   */
  async function soak(): Promise<string> {
    commander = new Commander(broker.port, topics.cmd);
    const R = opts.reconnects;
    const P = opts.publishes;
    const during: number[] = [];
    const sampleEvery = Math.max(1, Math.ceil(R / (opts.soakSamples ?? 5)));
    let replyFrom = observer.messages.length;
    const isReply = (m: Message) => m.topic === topics.reply && m.payload.startsWith("publishing a reading");
    const isReading = (m: Message) => m.topic === topics.telemetry;
    let sent = 0;
    let misses = 0;
    /** `n` publish commands, each answered (a reply, then its reading) before the next. */
    const publishes = async (n: number) => {
      for (let k = 0; k < n; k++) {
        sent++;
        (commander as Commander).send("publish");
        try {
          await observer.wait("a reply", replyFrom, isReply, sent, 5000);
          await observer.wait("a reading", replyFrom, isReading, sent, 5000);
          misses = 0;
        } catch (e) {
          // three in a row unanswered: the node is not taking commands; the rest would only wait
          if (++misses >= 3) throw new Error(`the soak's commands go unanswered: ${observer.since(replyFrom, isReply).length} replies to ${sent} publish commands (${(e as Error).message})`);
        }
      }
    };
    const reconnect = async (what: string) => {
      const accepted = brokerConnects();
      proxy.reset();
      await until(what, () => brokerConnects() > accepted, 20_000, 50);
    };
    // a round first, not counted: what a first reconnect and reading allocate for good is not a leak
    await publishes(1);
    await reconnect("the warm-up reconnect");
    await publishes(1);
    await until("the outbox to empty before the soak", async () => (await status()).some((l) => /, outbox 0$/.test(l)), 20_000, 250);
    const before = await b.memory();
    keep(before);
    result.baseline = before;
    replyFrom = observer.messages.length;
    sent = 0;
    for (let r = 0; r < R; r++) {
      await publishes(Math.floor(((r + 1) * P) / R) - Math.floor((r * P) / R));
      log(`${b.board}: soak: ${sent} publishes, reconnect ${r + 1} of ${R}`);
      await reconnect(`reconnect ${r + 1} of ${R}`);
      if ((r + 1) % sampleEvery === 0) {
        const m = await b.memory();
        keep(m);
        during.push(m);
      }
    }
    if (R === 0) await publishes(P);
    const replies = observer.since(replyFrom, isReply).length;
    const readings = observer.since(replyFrom, isReading).length;
    await waitConnected("the node to be connected after the soak");
    await until("the outbox to empty after the soak", async () => (await status()).some((l) => /, outbox 0$/.test(l)), 30_000, 250);
    const after = await b.memory();
    keep(after);
    const note = `${R} reconnects, ${P} publish commands: ${replies} replies, ${readings} readings arrived; memory before ${before}, ` +
      `after ${after} (${after - before >= 0 ? "+" : ""}${after - before}, tolerance ${opts.tolerance} ${b.unit})${during.length > 0 ? `, during ${during.join(" ")}` : ""}`;
    if (replies < P || readings < P) throw new Error(`${note}: short of ${P}`);
    if (after - before > opts.tolerance) throw new Error(`${note}: not back within the tolerance`);
    return note;
  }
}
