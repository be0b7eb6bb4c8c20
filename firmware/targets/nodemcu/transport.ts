import type { Bytes, Wire } from "../../port/bytes";
import type { Transport, TransportEvents } from "../../port/transport";

/**
 * Runs `fn` soon, from NodeMCU's event loop: the adapters never call the session back from
 * inside one of its own calls (transport and resolver contracts). `node.task.post`, which the
 * firmware of every NodeMCU profile has (ESP8266 since 2.0, ESP32).
 */
export function later(fn: (this: void) => void): void {
  (_G["node"] as NodeModule & { task: { post(fn: (this: void) => void): void } }).task.post(fn);
}

/**
 * The Transport contract over NodeMCU's `net` (and `tls` on ESP8266 builds that have it).
 *
 * Sends: NodeMCU loses or garbles a send made before the previous one's "sent" event, so writes
 * go to a queue and exactly one `sk:send` is outstanding at a time; the next leaves from the
 * "sent" handler. Each send carries what is queued, concatenated, up to one TCP segment
 * (a larger write leaves in segment-sized pieces, in order): a burst of small packets costs one
 * round of "sent" per segment, not one per packet. `write` returns false once more than
 * QUEUE_BOUND bytes wait; `onWritable` follows from a "sent" event when the queue is below it.
 *
 * Close reasons: NodeMCU hands "reconnection"/"disconnection" an lwIP error number whose values
 * differ between the ESP8266 (lwIP 1.4) and ESP32 (lwIP 2) builds, so only the numbers both agree
 * on are named (-3 timeout, -4 unreachable); otherwise the phase decides: before "connection" a
 * failure is "refused", after it "reset", and a peer's orderly close is "closed".
 */

/** Largest piece handed to one `sk:send`: one TCP segment, below ESP8266's 2,920-byte send buffer. */
export const SEGMENT = 1460;
/** Bytes waiting in the queue above which `write` returns false. */
export const QUEUE_BOUND = 4096;
/** How long a closing connection may take to flush its queue (the DISCONNECT) before it is cut. */
const CLOSE_FLUSH_MS = 2000;

interface Conn {
  sk: NetSocket | undefined;
  /** Undefined once onClose is on its way: nothing else reaches the session after that. */
  ev: TransportEvents | undefined;
  queue: string[];
  head: number;
  tail: number;
  queued: number;
  sending: boolean;
  open: boolean;
  closing: boolean;
  /** The socket is closed (by us or the peer): no more sends. */
  dead: boolean;
  wantWritable: boolean;
  /** A TLS connection. */
  secure: boolean;
  /** Cuts a closing connection whose queue does not drain. */
  flushTimer: TmrObject | undefined;
}

function errorReason(c: Conn, err: number | undefined): string {
  if (err === -3) return "timeout";
  if (err === -4) return "unreachable";
  // A TLS socket reports "connection" after its handshake: a failure before it is as likely the
  // handshake (certificate, protocol) as the port.
  if (!c.open && c.secure) return "tls";
  return c.open ? "reset" : "refused";
}

function finish(c: Conn, reason: string): void {
  const ev = c.ev;
  if (ev === undefined) return;
  c.ev = undefined;
  later(() => ev.onClose(reason));
}

function closeSocket(c: Conn): void {
  c.dead = true;
  const sk = c.sk;
  c.sk = undefined;
  if (sk !== undefined) pcall(() => sk.close());
  const t = c.flushTimer;
  c.flushTimer = undefined;
  if (t !== undefined) t.unregister();
}

/** Hands the next piece of the queue to the socket, unless a send is outstanding. */
function pump(c: Conn): void {
  if (c.sending || c.dead || c.sk === undefined) return;
  if (c.head === c.tail) {
    if (c.closing) {
      closeSocket(c);
      finish(c, "");
    }
    return;
  }
  const parts: string[] = [];
  let n = 0;
  let size = 0;
  while (c.head < c.tail) {
    const s = c.queue[c.head];
    if (size + s.length > SEGMENT) {
      if (n === 0) {
        // A write longer than a segment: its first segment now, the rest stays at the head.
        parts[0] = string.sub(s, 1, SEGMENT);
        c.queue[c.head] = string.sub(s, SEGMENT + 1);
        n = 1;
        size = SEGMENT;
      }
      break;
    }
    parts[n] = s;
    n = n + 1;
    size = size + s.length;
    c.queue[c.head] = undefined as unknown as string;
    c.head = c.head + 1;
  }
  if (c.head === c.tail) {
    c.head = 0;
    c.tail = 0;
  }
  c.queued = c.queued - size;
  c.sending = true;
  const sk = c.sk;
  const piece = n === 1 ? parts[0] : table.concat(parts);
  const [ok] = pcall(() => sk.send(piece));
  if (!ok) {
    // The firmware refused the send (the link is gone): report it as a reset, later.
    closeSocket(c);
    finish(c, c.closing ? "" : "reset");
  }
}

export interface NodemcuTlsOptions {
  /** PEM of the CA the broker's chain must verify against (tls.cert.verify); none: no check. */
  ca?: string;
}

export function nodemcuTransport(tlsOptions?: NodemcuTlsOptions): Transport {
  let cur: Conn | undefined = undefined;
  let verifySet = false;

  const close = (): void => {
    const c = cur;
    if (c === undefined) return;
    cur = undefined;
    c.closing = true;
    if (c.dead || !c.open) {
      closeSocket(c);
      finish(c, "");
      return;
    }
    // Queued writes (a DISCONNECT) leave first, and onClose follows once they have: a program
    // may restart the board from its end() callback. A link that never says "sent" is cut off.
    pump(c);
    if (!c.dead) {
      const tm = _G["tmr"] as TmrModule;
      const t = tm.create();
      c.flushTimer = t;
      t.alarm(CLOSE_FLUSH_MS, tm.ALARM_SINGLE, () => {
        closeSocket(c);
        finish(c, "");
      });
    }
  };

  const open = (host: string, port: number, secure: boolean, events: TransportEvents): void => {
    if (cur !== undefined) close();
    const c: Conn = { sk: undefined, ev: events, queue: [], head: 0, tail: 0, queued: 0, sending: false,
      open: false, closing: false, dead: false, wantWritable: false, flushTimer: undefined, secure };
    cur = c;
    const lib = _G[secure ? "tls" : "net"] as NetModule | undefined;
    if (lib === undefined) {
      c.dead = true;
      finish(c, secure ? "tls" : "io");
      return;
    }
    const ca = tlsOptions !== undefined ? tlsOptions.ca : undefined;
    if (secure && ca !== undefined && !verifySet) {
      // A CA that cannot be installed is a refusal, never a silent unverified connection.
      const cert = (lib as unknown as { cert?: { verify?: (this: void, pem: string) => unknown } }).cert;
      const verify = cert !== undefined ? cert.verify : undefined;
      let ok = false;
      let accepted: unknown = undefined;
      if (verify !== undefined) {
        const [called, result] = pcall(() => verify(ca));
        ok = called;
        accepted = result;
      }
      if (!ok || accepted === false || accepted === undefined) {
        c.dead = true;
        finish(c, "tls");
        return;
      }
      verifySet = true;
    }
    const [ok] = pcall(() => {
      const sk = lib.createConnection();
      c.sk = sk;
      sk.on("connection", () => {
        if (c.ev === undefined || c.closing) return;
        c.open = true;
        c.ev.onOpen();
      });
      sk.on("receive", (_s, data) => {
        if (c.ev !== undefined && !c.closing) c.ev.onData(data as unknown as Bytes);
      });
      sk.on("sent", () => {
        c.sending = false;
        pump(c);
        if (c.wantWritable && c.queued < QUEUE_BOUND && c.ev !== undefined && !c.closing) {
          c.wantWritable = false;
          c.ev.onWritable();
        }
      });
      sk.on("disconnection", (_s, err) => {
        const reason = c.open && (err === undefined || err === 0) ? "closed" : errorReason(c, err);
        closeSocket(c);
        finish(c, c.closing ? "" : reason);
      });
      sk.on("reconnection", (_s, err) => {
        const reason = errorReason(c, err);
        closeSocket(c);
        finish(c, c.closing ? "" : reason);
      });
      sk.connect(port, host);
    });
    if (!ok) {
      closeSocket(c);
      finish(c, "io");
    }
  };

  const write = (data: Wire): boolean => {
    const c = cur;
    if (c === undefined || !c.open || c.dead) return false;
    const s = data as unknown as string;
    if (s.length === 0) return true;
    c.queue[c.tail] = s;
    c.tail = c.tail + 1;
    c.queued = c.queued + s.length;
    pump(c);
    if (c.queued > QUEUE_BOUND) {
      c.wantWritable = true;
      return false;
    }
    return true;
  };

  return { openStream: open, sendWire: write, hangUp: close };
}
