import type { Wire } from "../port/bytes";
import type { PetrelError } from "../port/log";
import { port } from "../port/port";
import type { Client } from "./client";
import type { Done } from "./outbox";

/**
 * Messages the broker refused, held out of the outbox. A broker that will not take a message
 * may say so only by closing the connection (NATS Server on every QoS 2 PUBLISH; some cloud
 * brokers on a topic the client may not use), and the outbox would send it again after every
 * CONNACK, forever, with everything behind it waiting. So after `refusedAfter` short-lived
 * connections in a row (options.ts: stableMs) that ended with the same message the oldest
 * unacknowledged PUBLISH, the client moves it to the record `<prefix>h<n>` (n: the first free
 * slot of 1..heldMessages; the PUBLISH as stored, in the same storage as the outbox, so it
 * survives a reboot where the outbox does), reports `publish-refused`, and the rest flows.
 *
 * This module lists them and sends one again or deletes it, by slot (a slot's number stays
 * while others come and go). Nothing of it is resident on a board: the console's `held`
 * command (a lazy module) and the MQTT.js-shaped client use it, and it imports no other
 * session module, so loading it for a command loads nothing else.
 */

/** A held message, as read back from storage. */
export interface HeldMessage {
  /** Its slot: what retryHeld and dropHeld take. */
  n: number;
  topic: string;
  qos: number;
  retain: boolean;
  /** The stored PUBLISH packet's size in bytes. */
  size: number;
  payload: Wire;
}

/** The slots searched (heldMessages' largest value). */
const SLOTS = 64;

/** Held message n read back, or undefined when slot n is empty (or not a PUBLISH). */
function heldAt(c: Client, n: number): HeldMessage | undefined {
  const w = c.p.storage.getRecord(c.settings.storePrefix + "h" + n);
  if (w === undefined) return undefined;
  const b = port.bytes.bytesOf(w);
  const len = port.bytes.wireLength(w);
  let p = 1;
  while (p < len && p < 4 && b[p] >= 128) p = p + 1;
  // past the remaining length: topic length, topic, packet id (a held message has QoS 1 or 2)
  const pay = p + 3 < len ? p + 5 + b[p + 1] * 256 + b[p + 2] : len + 1;
  if (pay > len || len < 1 || port.ints.idiv(b[0], 16) !== 3) return undefined;
  return { n: n, topic: port.bytes.textFrom(b, p + 3, pay - 2), qos: port.ints.idiv(b[0] % 8, 2), retain: b[0] % 2 === 1, size: len,
    payload: port.bytes.wireFrom(b, pay, len) };
}

/** The held messages, by slot. */
export function listHeld(c: Client): HeldMessage[] {
  const out: HeldMessage[] = [];
  const count = c.p.storage.listRecords(c.settings.storePrefix + "h").length;
  for (let n = 1; n <= SLOTS && out.length < count; n++) {
    const m = heldAt(c, n);
    if (m !== undefined) out[out.length] = m;
  }
  return out;
}

function notHeld(n: number): PetrelError {
  return { code: "not-held", message: `no message is held in slot ${n}; fix: take a number that held (API: listHeld) lists` };
}

/**
 * Puts held message n back into the outbox, at its end, as a new publish (a fresh packet id;
 * `done` runs when the broker acknowledges it); its slot is freed once the outbox has it.
 * Returns undefined, or why nothing changed (publish()'s errors, or `not-held`).
 */
export function retryHeld(c: Client, n: number, done: Done | undefined): PetrelError | undefined {
  const m = heldAt(c, n);
  if (m === undefined) return notHeld(n);
  const e = c.publish(m.topic, port.bytes.bytesOf(m.payload), m.qos, m.retain, done);
  if (e === undefined) c.p.storage.dropRecord(c.settings.storePrefix + "h" + n);
  return e;
}

/** Deletes held message n. Returns undefined, or `not-held`. */
export function dropHeld(c: Client, n: number): PetrelError | undefined {
  const key = c.settings.storePrefix + "h" + n;
  if (c.p.storage.getRecord(key) === undefined) return notHeld(n);
  c.p.storage.dropRecord(key);
  return undefined;
}
