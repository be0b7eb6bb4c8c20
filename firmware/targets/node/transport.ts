/**
 * The Transport contract (firmware/port/transport.ts) over Node sockets, plain or TLS. Error
 * codes name what went wrong in terms a user can act on.
 */
import * as net from "node:net";
import * as tls from "node:tls";
import type { Wire } from "../../port/bytes";
import type { Transport, TransportEvents } from "../../port/transport";

export interface TlsSettings {
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Name to verify in the certificate (defaults to the host). */
  servername?: string;
}

/** Node's error codes, as the stable codes the session reports. */
export function transportErrorCode(e: NodeJS.ErrnoException): string {
  switch (e.code) {
    case "ECONNREFUSED": return "refused";
    case "ECONNRESET": case "EPIPE": return "reset";
    case "ETIMEDOUT": return "timeout";
    case "ENOTFOUND": case "EAI_AGAIN": return "not-found";
    case "EHOSTUNREACH": case "ENETUNREACH": return "unreachable";
    case "CERT_HAS_EXPIRED": return "tls-expired";
    case "ERR_TLS_CERT_ALTNAME_INVALID": return "tls-name-mismatch";
    case "UNABLE_TO_VERIFY_LEAF_SIGNATURE": case "SELF_SIGNED_CERT_IN_CHAIN": case "DEPTH_ZERO_SELF_SIGNED_CERT":
    case "UNABLE_TO_GET_ISSUER_CERT_LOCALLY": return "tls-untrusted";
    // The broker's TLS 1.3 alert 116: it requires a client certificate and got none. (TLS 1.2
    // says only "handshake failure" for the same thing, which stays "tls".)
    case "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED": return "tls-client-cert-required";
    default: return e.code?.startsWith("ERR_SSL") || e.code?.startsWith("ERR_TLS") ? "tls" : "io";
  }
}

/**
 * The name TLS verifies the certificate against. Node refuses an IP address as an SNI name (and
 * still checks the certificate's IP entries without one).
 */
const serverName = (n: string): string | undefined => (net.isIP(n) === 0 ? n : undefined);

/** The transport a socket belongs to, and the events of the connection it was opened for. */
interface Owned extends net.Socket {
  owner?: NodeTransport;
  ev?: TransportEvents;
}

// One set of socket listeners for every connection (Node calls them with the socket as `this`):
// a fleet of thousands of boards holds no closures per connection.
function onConnect(this: Owned): void {
  if (this.owner?.events === this.ev) this.ev?.onOpen();
}
function onData(this: Owned, c: Buffer): void {
  if (this.owner?.events === this.ev) this.ev?.onData(c as unknown as never);
}
function onDrain(this: Owned): void {
  if (this.owner?.events === this.ev) this.ev?.onWritable();
}
function onError(this: Owned, e: NodeJS.ErrnoException): void {
  const t = this.owner;
  if (t !== undefined && t.error === "") t.error = transportErrorCode(e);
}
function onClose(this: Owned): void {
  if (this.owner?.sock === this) this.owner.finish();
}
function uncork(t: NodeTransport, s: net.Socket): void {
  if (t.corked === s) t.corked = null;
  s.uncork();
}
function closeEvent(ev: TransportEvents, reason: string): void {
  ev.onClose(reason);
}

/**
 * `localAddress`: the source address of every connection to a loopback address (a fleet on one
 * machine spreads its boards over 127.0.0.x, as many boards reach a broker from many addresses). A class, not an
 * object of closures: one per board, its methods on the prototype.
 */
class NodeTransport implements Transport {
  sock: Owned | null = null;
  events: TransportEvents | null = null;
  error = "";
  asked = false;
  /** The socket corked for the current event-loop turn, if any. */
  corked: net.Socket | null = null;

  constructor(private readonly tlsSettings: TlsSettings, private readonly localAddress: string | undefined) {}

  finish(): void {
    const ev = this.events;
    this.events = null;
    this.sock = null;
    // Always later, from the event loop (the contract): never inside open/write/close.
    if (ev) setImmediate(closeEvent, ev, this.asked ? "" : this.error || "closed");
  }

  openStream(host: string, port: number, secure: boolean, ev: TransportEvents, name?: string): void {
    this.events = ev;
    this.error = "";
    this.asked = false;
    const t = this.tlsSettings;
    // a loopback source address reaches loopback destinations only (a board set to a remote broker)
    const localAddress = host.startsWith("127.") ? this.localAddress : undefined;
    const s: Owned = secure
      ? tls.connect({ host, port, ...({ localAddress } as object), ca: t.ca, cert: t.cert, key: t.key, servername: serverName(t.servername ?? name ?? host) })
      : net.connect({ host, port, localAddress });
    s.owner = this;
    s.ev = ev;
    this.sock = s;
    s.setNoDelay(true);
    s.once(secure ? "secureConnect" : "connect", onConnect);
    s.on("data", onData);
    s.on("drain", onDrain);
    s.on("error", onError);
    s.on("close", onClose);
  }

  sendWire(data: Wire): boolean {
    const s = this.sock;
    if (s === null || s.destroyed) return false;
    // Writes of one event-loop turn leave as one writev: the session writes packet by packet
    // (a burst of PUBLISH, the acks for a chunk of packets), and a system call per packet
    // would cost more than everything else together. Uncorked before any I/O is polled.
    if (this.corked !== s) {
      this.corked = s;
      s.cork();
      process.nextTick(uncork, this, s);
    }
    return s.write(data as unknown as Buffer);
  }

  hangUp(): void {
    const s = this.sock;
    if (s === null) return;
    this.asked = true;
    // Queued writes (a DISCONNECT) go out first; a peer that never closes its side is cut off.
    s.end();
    const timer = setTimeout(() => s.destroy(), 2000);
    timer.unref();
    s.once("close", () => clearTimeout(timer));
  }
}

export function nodeTransport(tlsSettings: TlsSettings = {}, localAddress?: string): Transport {
  return new NodeTransport(tlsSettings, localAddress);
}
