import type { Payload } from "../codec/encode";
import type { Props5 } from "../codec/mqtt5";
import type { Wire } from "../port/bytes";
import type { MessageProps } from "./session5";
import type { PetrelError } from "../port/log";
import { Client, State, type ClientEvents, type MessageHandler } from "./client";
import { fail } from "./errors";
import { dropHeld, listHeld, retryHeld, type HeldMessage } from "./held";
import type { ClientOptions } from "./options";
import type { Platform } from "../port/platform";

export interface PublishOptions {
  qos?: number;
  retain?: boolean;
  /** At MQTT 5.0: the PUBLISH's properties (response topic, correlation data, user properties, ...); ignored at 3.1.1. */
  properties?: Props5;
}

export interface SubscribeOptions {
  qos?: number;
  /** Gets only the messages matching this subscription's filters. */
  handler?: MessageHandler;
  /** At MQTT 5.0 (each ignored at 3.1.1): No Local, the broker sends none of this client's own messages back. */
  nl?: boolean;
  /** Retain As Published: the retain flag as the publisher set it. */
  rap?: boolean;
  /** Retain Handling: 0 retained messages on each subscribe, 1 only on a new one, 2 none. */
  rh?: number;
  /** The SUBSCRIBE's properties: a Subscription Identifier (1 to 16,777,215), given back with each message it matches (properties.subscriptionIds). */
  properties?: { subscriptionIdentifier?: number };
}

/** How end() closes: reasonCode 0 (normal: no will) or 4 (the broker publishes the will). */
export interface EndOptions {
  reasonCode?: number;
}

/** A received message's details; one object per client, reused: valid during the listener call. */
export interface MessageInfo {
  topic: string;
  payload: Wire;
  qos: number;
  retain: boolean;
  dup: boolean;
  /** At MQTT 5.0: what the PUBLISH carried beside them (undefined when nothing). */
  properties: MessageProps | undefined;
}

export type Callback = (this: void, err: PetrelError | undefined) => void;
/**
 * What `subscribe` takes, as MQTT.js does: a filter, a list of filters (each a name, or
 * `{ topic, qos }`), or an object of filter → QoS (or `{ qos }`). A filter without its own QoS
 * takes the options' (default 0).
 */
export type SubscribeFilters = string | (string | { topic: string; qos?: number })[] | { [filter: string]: number | { qos?: number } };

export type SubscribeCallback = (this: void, err: PetrelError | undefined, granted: number[] | undefined) => void;
type Listener = (this: void, a: unknown, b: unknown, c: unknown) => void;

/**
 * The MQTT.js-shaped client: connect(options) then events `connect`, `message`, `offline`,
 * `reconnect`, `error`, `close`, `end`, and publish / subscribe / unsubscribe / end with
 * callbacks. A thin layer over the lean event core (Client): use the core directly where every
 * byte of RAM counts.
 */
export class MqttClient {
  readonly core: Client;
  connected = false;
  reconnecting = false;
  private readonly listeners: { [event: string]: Listener[] } = {};
  /** The reused details object passed to `message` listeners. */
  readonly info: MessageInfo;

  constructor(core: Client) {
    this.core = core;
    this.info = { topic: "", payload: "" as unknown as Wire, qos: 0, retain: false, dup: false, properties: undefined };
  }

  on(event: "connect", fn: (this: void, connack: { sessionPresent: boolean }) => void): this;
  on(event: "message", fn: (this: void, topic: string, payload: Wire, packet: MessageInfo) => void): this;
  on(event: "offline" | "reconnect" | "end", fn: (this: void) => void): this;
  on(event: "close", fn: (this: void, reason: string) => void): this;
  on(event: "error", fn: (this: void, err: PetrelError) => void): this;
  on(event: string, fn: (this: void, a: never, b: never, c: never) => void): this {
    let list = this.listeners[event];
    if (list === undefined) {
      list = [];
      this.listeners[event] = list;
    }
    list[list.length] = fn as Listener;
    return this;
  }

  removeListener(event: string, fn: unknown): this {
    const list = this.listeners[event];
    if (list === undefined) return this;
    const keep: Listener[] = [];
    for (let i = 0; i < list.length; i++) if (list[i] !== fn) keep[keep.length] = list[i];
    this.listeners[event] = keep;
    return this;
  }

  /** Calls the listeners of `event`; false when there are none. */
  emit(event: string, a: unknown, b: unknown, c: unknown): boolean {
    const list = this.listeners[event];
    if (list === undefined || list.length === 0) return false;
    for (let i = 0; i < list.length; i++) list[i](a, b, c);
    return true;
  }

  /** Reports an error to the callback, else to `error` listeners (never silently). */
  private fail(e: PetrelError, cb: Callback | SubscribeCallback | undefined): this {
    if (cb !== undefined) cb(e, undefined);
    else this.emit("error", e, undefined, undefined);
    return this;
  }

  publish(topic: string, message: Payload, opts?: PublishOptions | Callback, cb?: Callback): this {
    let o: PublishOptions | undefined = undefined;
    let done = cb;
    if (typeof opts === "function") done = opts;
    else o = opts;
    const qos = o !== undefined && o.qos !== undefined ? o.qos : 0;
    const e = this.core.publish(topic, message, qos, o !== undefined && o.retain === true, done, o !== undefined ? o.properties : undefined);
    return e !== undefined ? this.fail(e, done) : this;
  }

  subscribe(filter: SubscribeFilters, opts?: SubscribeOptions | SubscribeCallback, cb?: SubscribeCallback): this {
    let o: SubscribeOptions | undefined = undefined;
    let done = cb;
    if (typeof opts === "function") done = opts;
    else o = opts;
    const q = o !== undefined && o.qos !== undefined ? o.qos : 0;
    // the 5.0 options and identifier, carried above the QoS (Requests.encodeRequest5)
    let extra = 0;
    if (o !== undefined) {
      const sid = o.properties !== undefined ? o.properties.subscriptionIdentifier : undefined;
      if (sid !== undefined && !(typeof sid === "number" && sid >= 1 && sid <= 16777215 && sid % 1 === 0)) {
        return this.fail(fail("bad-option", "subscriptionIdentifier must be a whole number from 1 to 16777215; fix: use one in that range"), done);
      }
      const rh = o.rh !== undefined ? o.rh : 0;
      if (!(rh === 0 || rh === 1 || rh === 2)) return this.fail(fail("bad-option", "rh (Retain Handling) must be 0, 1 or 2; fix: use one of them"), done);
      extra = (o.nl === true ? 4 : 0) + (o.rap === true ? 8 : 0) + 16 * rh + (sid !== undefined ? 64 * sid : 0);
    }
    const filters: string[] = [];
    const qos: number[] = [];
    if (typeof filter === "string") {
      filters[0] = filter;
      qos[0] = q;
    } else if ((filter as unknown[])[0] !== undefined) {
      // ["a", "b"] or [{ topic: "a", qos: 1 }, …]
      const list = filter as (string | { topic: string; qos?: number })[];
      for (let i = 0; i < list.length; i++) {
        const f = list[i];
        if (typeof f === "string") {
          filters[i] = f;
          qos[i] = q;
        } else {
          filters[i] = f.topic;
          qos[i] = f.qos !== undefined ? f.qos : q;
        }
      }
    } else {
      // { "a/#": 2, "b/+": { qos: 1 } }: in the order of the filters' names (one order on every
      // runtime; `granted` follows it)
      const map = filter as { [f: string]: number | { qos?: number } };
      for (const k in map) {
        let i = filters.length;
        while (i > 0 && filters[i - 1] > k) {
          filters[i] = filters[i - 1];
          i--;
        }
        filters[i] = k;
      }
      for (let i = 0; i < filters.length; i++) {
        const v = map[filters[i]];
        qos[i] = typeof v === "number" ? v : v.qos !== undefined ? v.qos : q;
      }
    }
    if (extra > 0) for (let i = 0; i < qos.length; i++) qos[i] = qos[i] + extra;
    const e = this.core.subscribe(filters, qos, filters.length, o !== undefined ? o.handler : undefined, done);
    return e !== undefined ? this.fail(e, done) : this;
  }

  unsubscribe(filter: string | string[], cb?: Callback): this {
    const filters = typeof filter === "string" ? [filter] : filter;
    const e = this.core.unsubscribe(filters, filters.length, cb);
    return e !== undefined ? this.fail(e, cb) : this;
  }

  /**
   * DISCONNECT and close; unacknowledged messages stay in the outbox for the next start. With
   * `{ reasonCode: 4 }` the broker publishes the will (MQTT 5.0 DISCONNECT 0x04; at 3.1.1 the
   * connection closes without DISCONNECT, to the same end).
   */
  end(opts?: EndOptions | ((this: void) => void), done?: (this: void) => void): this {
    let cb = done;
    let o: EndOptions | undefined = undefined;
    if (typeof opts === "function") cb = opts;
    else o = opts;
    const code = o !== undefined && o.reasonCode !== undefined ? o.reasonCode : 0;
    if (code !== 0 && code !== 4) {
      this.emit("error", fail("bad-option", "end's reasonCode must be 0 (normal) or 4 (publish the will); fix: use one of them"), undefined, undefined);
      return this;
    }
    if (cb !== undefined) {
      if (this.core.state === State.Stopped) cb();
      else {
        // Once: a later end() (after reconnect) must not call this callback again.
        const once = (): void => {
          this.removeListener("end", once);
          cb();
        };
        this.on("end", once);
      }
    }
    this.core.end(code === 4);
    return this;
  }

  /**
   * The messages the broker refused (`publish-refused`: it closed the connection right after
   * each of them, refusedAfter times in a row), held out of the outbox in storage, oldest first.
   */
  held(): HeldMessage[] {
    return listHeld(this.core);
  }

  /** Sends held message n (1-based, as held() lists them) again: back into the outbox, at its end. */
  retryHeld(n: number, cb?: Callback): this {
    const e = retryHeld(this.core, n, cb);
    return e !== undefined ? this.fail(e, cb) : this;
  }

  /** Deletes held message n (1-based, as held() lists them). */
  dropHeld(n: number, cb?: Callback): this {
    const e = dropHeld(this.core, n);
    if (e !== undefined) return this.fail(e, cb);
    if (cb !== undefined) cb(undefined);
    return this;
  }

  /** Connects again after end(). */
  reconnect(): this {
    this.core.start();
    return this;
  }
}

/**
 * Creates the client on a platform and starts connecting. Returns an error value (nothing
 * started) when an option is wrong.
 */
export function connect(platform: Platform, options: ClientOptions): MqttClient | PetrelError {
  // The core reports nothing before start(), which runs after `me` is set.
  let me = undefined as unknown as MqttClient;
  const ev: ClientEvents = {
    onConnect: (sp) => {
      me.connected = true;
      me.reconnecting = false;
      me.emit("connect", { sessionPresent: sp }, undefined, undefined);
    },
    onMessage: (topic, payload, qos, retain, dup, props) => {
      const info = me.info;
      info.properties = props;
      info.topic = topic;
      info.payload = payload;
      info.qos = qos;
      info.retain = retain;
      info.dup = dup;
      me.emit("message", topic, payload, info);
    },
    onReconnect: () => {
      me.reconnecting = true;
      me.emit("reconnect", undefined, undefined, undefined);
    },
    onOffline: () => {
      me.connected = false;
      me.emit("offline", undefined, undefined, undefined);
    },
    onClose: (reason) => {
      me.emit("close", reason, undefined, undefined);
    },
    onError: (e) => {
      me.emit("error", e, undefined, undefined);
    },
    onEnd: () => {
      me.connected = false;
      me.reconnecting = false;
      me.emit("end", undefined, undefined, undefined);
    },
  };
  const core = Client.create(platform, options, ev);
  if ("code" in core) return core;
  me = new MqttClient(core);
  core.start();
  return me;
}
