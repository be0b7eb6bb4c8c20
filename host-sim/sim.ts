/**
 * `make sim`: simulated sensor nodes running the Node build of the app (firmware/app/main.ts,
 * the start-up every board runs), against a local mosquitto of their own (or BROKER=host:port,
 * which becomes the boards' default `brokers`). They publish simulated readings (temperature,
 * Wi-Fi RSSI, free heap) to <prefix>/<id>/telemetry, keep their retained status and take commands
 * on <prefix>/<id>/cmd. Each board's serial console is also a pseudo-terminal (SIM_STORE/tty, or
 * ttyK with DEVICES): `make console PORT=<that path>` or any serial program talks to it as to a
 * USB board. A board's flash (settings and outbox) is a directory under SIM_STORE (default
 * dist/sim-board): what is saved survives a restart. A reboot typed at a console powers that board
 * on again; a deep sleep, after the sleep.
 *
 *   make sim                       one board, its console on this terminal, until Ctrl-C (or Ctrl-D;
 *                                  a second Ctrl-C while it stops forces it)
 *   DEVICES=5 make sim             five boards (ids petrel-sim1 … petrel-sim5), a live one-line
 *                                  summary here, each console on its own pseudo-terminal
 *   DEVICES=10000 make sim         a fleet (up to 50,000): the first SIM_PTYS boards (default
 *                                  100, at most 500: a socat each) have a console pseudo-terminal,
 *                                  the others none; against the local broker they connect from
 *                                  50 source addresses (127.0.0.2-51)
 *   SIM_COUNT=3 make sim           ends once every board had three readings acknowledged
 *   SIM_INTERVAL=1 make sim        the boards' default interval, seconds (default 5)
 *   BROKER=test.example:1883 make sim
 *
 * Ctrl-C, Ctrl-D, SIGINT, SIGTERM and SIGHUP (a closed terminal) stop the boards (DISCONNECT),
 * then close the broker this process started, its temporary directory and the pseudo-terminals;
 * a second one while that runs, or 3 s without it finishing, kills them instead. A board whose
 * flash has a saved `brokers` (or `interval`) other than the simulator's default keeps using it,
 * as a board would: that is reported at start with how to go back.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { readingsSent } from "../firmware/app/commands";
import type { App } from "../firmware/app/main";
import type { Serial } from "../firmware/console/line";
import { startBroker, type Broker } from "./mosquitto";
import { nodeApp } from "./node/app";
import { openPty, type Pty } from "./node/pty";
import { terminalSerial } from "./node/serial";

const VERSION = "0.1.0-sim";

/** Connections after a node's first (each reboot starts a new count). */
function reconnectsOf(node: App["node"]): number {
  return node.connects > 0 ? node.connects - 1 : 0;
}

function say(line: string): void {
  process.stdout.write(`\r${line}\r\n`);
}

/** Most boards one process runs (a descriptor each, and one at the local broker). */
const MAX_DEVICES = 50000;
/** Most pseudo-terminals (a socat process each). */
const MAX_PTYS = 500;

interface Board {
  k: number;
  id: string;
  flash: string;
  /** Its console's pseudo-terminal; none past SIM_PTYS. */
  pty: Pty | undefined;
  app: App | undefined;
  /** Readings queued, sent and acknowledged by earlier boots of this board (the app counts from its own start). */
  queuedBefore: number;
  sentBefore: number;
  ackedBefore: number;
  reconnectsBefore: number;
}

/** A board's serial line: its pseudo-terminal, and this terminal too when `terminal`. */
function boardSerial(pty: Pty | undefined, setSink: (fn: ((s: string) => void) | undefined) => void, terminal: Serial | undefined): Serial {
  return {
    take: (chars) => {
      setSink(chars);
      terminal?.take(chars);
    },
    release: () => {
      pty?.write("(the simulator has no REPL of its own: press Enter to take the console back)\r\n");
      setSink(undefined);
      terminal?.release();
    },
    write: (s) => {
      pty?.write(s);
      terminal?.write(s);
    },
  };
}

async function main(): Promise<void> {
  const count = Number(process.env.SIM_COUNT ?? "0");
  const devices = Number(process.env.DEVICES ?? "1");
  if (!Number.isInteger(devices) || devices < 1 || devices > MAX_DEVICES) {
    say(`sim: DEVICES=${process.env.DEVICES} is not a number of boards from 1 to ${MAX_DEVICES}`);
    process.exit(2);
  }
  const ptys = Number(process.env.SIM_PTYS ?? String(Math.min(devices, 100)));
  if (!Number.isInteger(ptys) || ptys < 0 || ptys > MAX_PTYS) {
    say(`sim: SIM_PTYS=${process.env.SIM_PTYS} is not a number of console pseudo-terminals from 0 to ${MAX_PTYS}`);
    process.exit(2);
  }
  const store = path.resolve(process.env.SIM_STORE ?? "dist/sim-board");
  let broker: Broker | undefined;
  let brokerAt: string;
  // until the boards run, a signal removes what was made so far (the broker, consoles) and ends
  const early: Pty[] = [];
  let stop: (code: number, why: string) => void = (code, why) => {
    say(why);
    for (const p of early) p.close();
    if (broker !== undefined) {
      void broker.kill();
      fs.rmSync(broker.dir, { recursive: true, force: true });
    }
    process.exit(code);
  };
  process.on("SIGINT", () => stop(0, "sim: stopping"));
  process.on("SIGTERM", () => stop(0, "sim: stopping (SIGTERM)"));
  process.on("SIGHUP", () => stop(0, "sim: stopping (the terminal hung up)"));
  // a closed terminal: reads fail (EIO) or end; stop as for a hang-up
  if (process.stdin.isTTY) {
    process.stdin.on("error", () => stop(0, "sim: stopping (the terminal is gone)"));
    process.stdin.on("end", () => stop(0, "sim: stopping (the terminal is gone)"));
  }
  process.stdout.on("error", () => {});
  if (process.env.BROKER) {
    brokerAt = process.env.BROKER;
    say(`sim: using the broker at ${brokerAt}`);
  } else {
    broker = await startBroker({ extra: ["autosave_on_changes true"] });
    brokerAt = `${broker.host}:${broker.port}`;
    say(`sim: started mosquitto on ${brokerAt} (its log: ${path.join(broker.dir, "mosquitto.log")})`);
  }
  fs.mkdirSync(store, { recursive: true });
  const one = devices === 1;
  const defaults = { brokers: brokerAt, interval: process.env.SIM_INTERVAL ?? "5" };
  // a fleet connects from 50 loopback addresses: one source address has about 28,000 ports for
  // one broker (and many boards reach a broker from many). The transport uses the address only
  // for a broker on this machine (a loopback destination).
  const spread = !one;
  if (!one && ptys < devices) say(`sim: boards ${ptys + 1}-${devices} have no console pseudo-terminal (SIM_PTYS=${ptys}, at most ${MAX_PTYS}); their console output is dropped`);
  const boards: Board[] = [];
  let finishing = false;

  const boot = (b: Board, serial: Serial) => {
    b.app = nodeApp({
      flash: b.flash, chipId: one ? process.env.SIM_ID ?? "sim1" : `sim${b.k}`, serial, version: VERSION, defaults,
      hosts: { localhost: "127.0.0.1" }, localAddress: spread ? `127.0.0.${2 + (b.k % 50)}` : undefined,
      reboot: () => {
        const app = b.app as App;
        b.queuedBefore += app.node.queued;
        b.sentBefore += readingsSent(app.node);
        b.ackedBefore += app.node.acked;
        b.reconnectsBefore += reconnectsOf(app.node);
        say(`sim: ${b.id} reboots`);
        app.node.halt();
        app.node.end(() => {
          if (!finishing) boot(b, serial);
        });
      },
      sleep: (ms) => {
        const app = b.app as App;
        b.queuedBefore += app.node.queued;
        b.sentBefore += readingsSent(app.node);
        b.ackedBefore += app.node.acked;
        b.reconnectsBefore += reconnectsOf(app.node);
        say(`sim: ${b.id} is in deep sleep for ${ms / 1000} s`);
        app.node.halt();
        setTimeout(() => {
          if (!finishing) boot(b, serial);
        }, ms);
      },
    });
    b.id = b.app.node.clientId;
  };

  for (let k = 1; k <= devices; k++) {
    const flash = one ? store : path.join(store, `dev${k}`);
    fs.mkdirSync(flash, { recursive: true });
    let sink: ((s: string) => void) | undefined;
    const pty = k > ptys ? undefined : await openPty(path.join(store, one ? "tty" : `tty${k}`), (s) => {
      if (sink !== undefined) sink(s);
      else if (/[\r\n]/.test(s)) (boards[k - 1].app as App).console.start(); // Enter takes the console back
    });
    if (pty !== undefined) early.push(pty);
    const b: Board = { k, id: "", flash, pty, app: undefined, queuedBefore: 0, sentBefore: 0, ackedBefore: 0, reconnectsBefore: 0 };
    boards.push(b);
    const terminal = one ? terminalSerial(process.stdin, process.stdout, () => (b.app as App).console.start(), true) : undefined;
    boot(b, boardSerial(pty, (fn) => (sink = fn), terminal));
  }
  const host = brokerAt.replace(/:\d+$/, "");
  const port = brokerAt.replace(/^.*:/, "");
  say(`sim: watch it with: mosquitto_sub -h ${host} -p ${port} -t '${one ? (boards[0].app as App).node.topics.status.replace(/status$/, "#") : "petrel/#"}' -v`);
  const withPty = boards.filter((b) => b.pty !== undefined);
  if (one && withPty.length === 1) say(`sim: ${withPty[0].id}'s console is also on ${(withPty[0].pty as Pty).path}: make console PORT=${(withPty[0].pty as Pty).path}`);
  else if (withPty.length > 0) {
    // a fleet's consoles in one line: board K's is ttyK
    const first = withPty[0], last = withPty[withPty.length - 1];
    const span = withPty.length === 1 ? first.id : `${first.id} … ${last.id}`;
    const ttys = withPty.length === 1 ? (first.pty as Pty).path : `${(first.pty as Pty).path} … ${path.basename((last.pty as Pty).path)}`;
    say(`sim: the consoles of ${span} are on ${ttys} (board K's is ttyK): make console PORT=${(first.pty as Pty).path}`);
  }
  // a saved setting wins over the simulator's default, as on a board: say so, and how to go back
  for (const key of ["brokers", "interval"]) {
    const differ = boards.filter((b) => b.app !== undefined && b.app.settings.get(key) !== defaults[key as keyof typeof defaults]);
    if (differ.length === 0) continue;
    const saved = (differ[0].app as App).settings.get(key);
    const what = key === "brokers" ? `the broker${broker !== undefined ? " this simulator started" : " given by BROKER="} (${brokerAt})` : `the default interval (${defaults.interval} s)`;
    say(one
      ? `sim: note: the board's flash has ${key} = ${saved} saved, so it uses that, not ${what}; to go back type: unset ${key}, then save, then reboot (or factory-reset)`
      : `sim: note: ${differ.length} board(s) have ${key} saved in their flash (${(differ[0].app as App).node.clientId}: ${saved}) and use it, not ${what}; to go back: unset ${key}, save, reboot at their consoles, or remove ${store}`);
  }

  // readings the client took, those that went out on the network (QoS 1/2: the first PUBLISH
  // written, acknowledged or not), and those the broker acknowledged (QoS 1/2) or that went out (QoS 0)
  const queuedOf = (b: Board) => b.queuedBefore + (b.app?.node.queued ?? 0);
  const sentOf = (b: Board) => b.sentBefore + (b.app !== undefined ? readingsSent(b.app.node) : 0);
  const ackedOf = (b: Board) => b.ackedBefore + (b.app?.node.acked ?? 0);
  let lastSent = 0;
  let lastAcked = 0;
  /** connected, readings sent and acknowledged per second over the last `seconds`, reconnects, outbox messages queued. */
  const summary = (seconds: number) => {
    const sent = boards.reduce((n, b) => n + sentOf(b), 0);
    const total = boards.reduce((n, b) => n + ackedOf(b), 0);
    const connected = boards.filter((b) => b.app?.node.connected === true).length;
    const reconnects = boards.reduce((n, b) => n + b.reconnectsBefore + (b.app !== undefined ? reconnectsOf(b.app.node) : 0), 0);
    const queue = boards.reduce((n, b) => n + (b.app?.node.client?.outbox.count ?? 0), 0);
    const line = `sim: ${connected}/${boards.length} connected, ${((sent - lastSent) / seconds).toFixed(1)} readings/s sent, ` +
      `${((total - lastAcked) / seconds).toFixed(1)} acknowledged, ${reconnects} reconnects, outboxes ${queue}`;
    lastSent = sent;
    lastAcked = total;
    return line;
  };
  const startedAt = Date.now();
  /** Ends at once: the boards' consoles, the broker (killed) and its directory, then the process. */
  const force = (code: number) => {
    for (const b of boards) b.pty?.close();
    if (broker !== undefined) {
      void broker.kill();
      fs.rmSync(broker.dir, { recursive: true, force: true });
    }
    process.exit(code);
  };
  const finish = (code: number, why: string) => {
    if (finishing) {
      say("sim: stopping at once");
      force(code);
      return;
    }
    finishing = true;
    if (process.stdin.isTTY) process.stdin.setRawMode(false);
    if (!one) {
      lastSent = 0;
      lastAcked = 0;
      say(`${summary(Math.max(1, (Date.now() - startedAt) / 1000))} (over the whole run)`);
    }
    say(why);
    let open = boards.length;
    // a line per board for a few; a fleet's totals in one
    const each = boards.length <= 20;
    if (!each) {
      const dropped = boards.reduce((n, b) => n + (b.app?.node.dropped ?? 0), 0);
      const queued = boards.reduce((n, b) => n + (b.app?.node.client?.outbox.count ?? 0), 0);
      say(`sim: ending ${boards.length} boards: readings: ${boards.reduce((n, b) => n + queuedOf(b), 0)} queued, ` +
        `${boards.reduce((n, b) => n + sentOf(b), 0)} sent, ${boards.reduce((n, b) => n + ackedOf(b), 0)} acknowledged, ${dropped} dropped, ${queued} in the outboxes`);
    }
    for (const b of boards) {
      const c = b.app?.node.client;
      if (each) say(`sim: ${one ? "" : `${b.id} `}ending: readings: ${queuedOf(b)} queued, ${sentOf(b)} sent, ${ackedOf(b)} acknowledged, ${b.app?.node.dropped ?? 0} dropped, ${c?.outbox.count ?? 0} in the outbox`);
      b.pty?.close();
      const done = () => {
        if (--open === 0) void (broker?.close() ?? Promise.resolve()).then(() => process.exit(code));
      };
      if (b.app !== undefined) b.app.node.end(done);
      else done();
    }
    // boards that cannot say goodbye (no broker, a stuck socket) do not hold it up for long
    setTimeout(() => force(code), 3000).unref();
  };

  // DEVICES: a live one-line summary (redrawn in place on a terminal, a line every 5 s otherwise)
  if (!one) {
    const every = process.stdout.isTTY ? 1 : 5;
    setInterval(() => {
      const line = summary(every);
      if (finishing) return;
      if (process.stdout.isTTY) process.stdout.write(`\r${line}   `);
      else say(line);
    }, every * 1000).unref();
    if (process.stdin.isTTY) {
      process.stdin.setRawMode(true);
      process.stdin.on("data", (d: Buffer) => {
        if (d.includes(3) || d.includes(4)) finish(0, "sim: stopping");
      });
      say("sim: Ctrl-C ends it; each board's console is on its pseudo-terminal above");
    }
  } else {
    say("sim: Ctrl-C (or Ctrl-D) ends it; type help for the console's commands");
  }

  if (count > 0) {
    const poll = setInterval(() => {
      if (boards.every((b) => ackedOf(b) >= count && b.app?.node.client?.outbox.count === 0)) {
        clearInterval(poll);
        finish(0, `sim: ${count} readings acknowledged${one ? "" : ` by each of ${boards.length} boards`}`);
      }
    }, 50);
  }
  stop = finish;
}

main().catch((e) => {
  say(`sim: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
