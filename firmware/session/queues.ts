import type { Payload } from "../codec/encode";
import type { Wire } from "../port/bytes";
import type { Done } from "./outbox";
import type { MessageProps } from "./session5";

/**
 * A message handler: topic, payload (Buffer on Node, string on Espruino and NodeMCU), QoS, retain,
 * dup; at MQTT 5.0 the PUBLISH's properties (undefined when it has none, and at 3.1.1).
 */
export type MessageHandler = (this: void, topic: string, payload: Wire, qos: number, retain: boolean, dup: boolean, props: MessageProps | undefined) => void;

/**
 * QoS 0 messages published while offline, waiting in RAM for a connection: a ring of `count`
 * from `head`, at most offlineQueue long. Parallel arrays reused in place (nothing allocated per
 * message once the ring has grown). Read by the client; changed only by the functions below.
 */
export interface OfflineQueue {
  topics: string[];
  payloads: Payload[];
  /** 1: retain, else 0 (a number: one slot on Espruino, a boolean three). */
  retain: number[];
  dones: (Done | undefined)[];
  head: number;
  count: number;
}

/** Adds a message at the end of `q` (a ring of `cap`, not full: shiftOffline makes room first). */
export function pushOffline(q: OfflineQueue, cap: number, topic: string, payload: Payload, retain: boolean, done: Done | undefined): void {
  let k = q.head + q.count;
  if (k >= cap) k = k - cap;
  q.topics[k] = topic;
  q.payloads[k] = payload;
  q.retain[k] = retain ? 1 : 0;
  q.dones[k] = done;
  q.count = q.count + 1;
}

/** Removes the oldest message (the one at `head`: read it first) and returns its callback. */
export function shiftOffline(q: OfflineQueue, cap: number): Done | undefined {
  const k = q.head;
  const done = q.dones[k];
  q.topics[k] = "";
  q.payloads[k] = "";
  q.dones[k] = undefined;
  q.head = k + 1 === cap ? 0 : k + 1;
  q.count = q.count - 1;
  return done;
}

/**
 * The filters the client subscribes to, each with its QoS and handler: restored after a session
 * loss, and matched against every incoming PUBLISH. Changed only by the functions below.
 */
export interface Subscriptions {
  filters: string[];
  qos: number[];
  handlers: (MessageHandler | undefined)[];
  count: number;
}

/** Remembers `filter` at `qos` with `handler` (a filter subscribed again takes the new ones). */
export function keepFilter(subs: Subscriptions, filter: string, qos: number, handler: MessageHandler | undefined): void {
  let k = 0;
  while (k < subs.count && subs.filters[k] !== filter) k = k + 1;
  if (k === subs.count) subs.count = k + 1;
  subs.filters[k] = filter;
  subs.qos[k] = qos;
  subs.handlers[k] = handler;
}

/** Forgets `filter` (its handler stops at once); the last filter takes its place. */
export function dropFilter(subs: Subscriptions, filter: string): void {
  for (let k = 0; k < subs.count; k++) {
    if (subs.filters[k] === filter) {
      const last = subs.count - 1;
      subs.filters[k] = subs.filters[last];
      subs.qos[k] = subs.qos[last];
      subs.handlers[k] = subs.handlers[last];
      subs.handlers[last] = undefined;
      subs.count = last;
      return;
    }
  }
}
