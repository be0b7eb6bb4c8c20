/**
 * The Transport contract (firmware/port/transport.ts) over Node sockets, plain or TLS. Error
 * codes name what went wrong in terms a user can act on.
 */
import * as net from "node:net";
import * as tls from "node:tls";
import type { Wire } from "../../firmware/port/bytes";
import type { Transport, TransportEvents } from "../../firmware/port/transport";

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

/**
 * `localAddress`: the source address of every connection (a fleet on one machine spreads its
 * boards over 127.0.0.x, as many boards reach a broker from many addresses).
 */
export function nodeTransport(tlsSettings: TlsSettings = {}, localAddress?: string): Transport {
  let sock: net.Socket | null = null;
  let events: TransportEvents | null = null;
  let error = "";
  let asked = false;
  /** The socket corked for the current event-loop turn, if any. */
  let corked: net.Socket | null = null;
  const uncork = (s: net.Socket) => {
    if (corked === s) corked = null;
    s.uncork();
  };

  const finish = () => {
    const ev = events;
    events = null;
    sock = null;
    // Always later, from the event loop (the contract): never inside open/write/close.
    if (ev) setImmediate(() => ev.onClose(asked ? "" : error || "closed"));
  };

  return {
    open(host, port, secure, ev, name) {
      events = ev;
      error = "";
      asked = false;
      const s = secure
        ? tls.connect({ host, port, ...({ localAddress } as object), ca: tlsSettings.ca, cert: tlsSettings.cert, key: tlsSettings.key, servername: serverName(tlsSettings.servername ?? name ?? host) })
        : net.connect({ host, port, localAddress });
      sock = s;
      s.setNoDelay(true);
      s.once(secure ? "secureConnect" : "connect", () => {
        if (events === ev) ev.onOpen();
      });
      s.on("data", (c: Buffer) => {
        if (events === ev) ev.onData(c as unknown as never);
      });
      s.on("drain", () => {
        if (events === ev) ev.onWritable();
      });
      s.on("error", (e: NodeJS.ErrnoException) => {
        if (error === "") error = transportErrorCode(e);
      });
      s.on("close", () => {
        if (sock === s) finish();
      });
    },
    write(data: Wire) {
      if (sock === null || sock.destroyed) return false;
      const s = sock;
      // Writes of one event-loop turn leave as one writev: the session writes packet by packet
      // (a burst of PUBLISH, the acks for a chunk of packets), and a system call per packet
      // would cost more than everything else together. Uncorked before any I/O is polled.
      if (corked !== s) {
        corked = s;
        s.cork();
        process.nextTick(uncork, s);
      }
      return s.write(data as unknown as Buffer);
    },
    close() {
      if (sock === null) return;
      asked = true;
      // Queued writes (a DISCONNECT) go out first; a peer that never closes its side is cut off.
      const s = sock;
      s.end();
      const t = setTimeout(() => s.destroy(), 2000);
      t.unref();
      s.once("close", () => clearTimeout(t));
    },
  };
}
