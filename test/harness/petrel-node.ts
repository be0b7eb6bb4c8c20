/**
 * In-process access to the codec on Node for Node-only tests (cross-checks, fuzzing, GC
 * counts): installs the Node port and encodes test-side packet objects with the firmware encoders.
 */
import "../../firmware/targets/node/index";
import type { Bytes } from "../../firmware/port/bytes";
import { port } from "../../firmware/port/port";
import { encodeConnect, encodeFilters, encodePublish, encodeShort, type ConnectOptions, type Payload } from "../../firmware/codec/encode";
import { codecErrorName } from "../../firmware/codec/errors";
import { TYPE, type Packet } from "../fixtures/packets";
import { seeded } from "../../host-sim/seeded";

const CAP = 70000;
const out = port.bytes.out(CAP);
const asPayload = (p: string | number[]): Payload => (typeof p === "string" ? p : (Buffer.from(p) as unknown as Bytes));

/** Encodes a client packet with Petrel; a Buffer, or the error name. */
export function petrelEncode(p: Packet): Buffer | string {
  const b = out;
  let end: number;
  switch (p.cmd) {
    case "connect": {
      const o: ConnectOptions = { clientId: p.clientId, clean: p.clean, keepalive: p.keepalive };
      if (p.username !== undefined) o.username = p.username;
      if (p.password !== undefined) o.password = p.password;
      if (p.will) o.will = { topic: p.will.topic, payload: asPayload(p.will.payload), qos: p.will.qos, retain: p.will.retain };
      end = encodeConnect(b, CAP, o);
      break;
    }
    case "publish":
      end = encodePublish(b, CAP, p.topic, asPayload(p.payload), p.qos, p.retain, p.dup, p.messageId ?? 0);
      break;
    case "puback": case "pubrec": case "pubrel": case "pubcomp":
      end = encodeShort(b, CAP, TYPE[p.cmd], p.messageId);
      break;
    case "subscribe":
      end = encodeFilters(b, CAP, p.messageId, p.subscriptions.map((s) => s.topic), p.subscriptions.map((s) => s.qos), p.subscriptions.length);
      break;
    case "unsubscribe":
      end = encodeFilters(b, CAP, p.messageId, p.unsubscriptions, undefined, p.unsubscriptions.length);
      break;
    case "pingreq": case "disconnect":
      end = encodeShort(b, CAP, TYPE[p.cmd], 0);
      break;
    default:
      throw new Error(`not a client packet: ${p.cmd}`);
  }
  return end < 0 ? codecErrorName(end) : (b.toWire() as unknown as Buffer);
}

/** A small seeded generator for reproducible random tests (mulberry32). */
export function rng(seed: number) {
  const next = seeded(seed);
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)],
    bool: () => next() < 0.5,
  };
}

/** The seed for a randomized test: PETREL_SEED to reproduce one, else fresh; always printed. */
export function seedFor(name: string): number {
  const s = process.env.PETREL_SEED ? Number(process.env.PETREL_SEED) : Math.floor(Math.random() * 2 ** 31);
  console.log(`[seed] ${name}: ${s} (rerun with PETREL_SEED=${s})`);
  return s;
}
