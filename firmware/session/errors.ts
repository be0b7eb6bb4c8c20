import { codecError } from "../codec/errors";
import { FEATURE_TEXTS } from "../features";
import type { PetrelError } from "../port/log";

/**
 * The session's errors: a stable code a program can test and a message that says what happened
 * and what to do. Allocated only when an error happens.
 */
export function fail(code: string, message: string): PetrelError {
  return { code: code, message: message };
}

/** A codec error code as an error value: its name as the code, its explanation as the message. */
export function codecFail(n: number): PetrelError {
  const t = codecError(n);
  const colon = t.indexOf(":");
  return fail(t.substring(0, colon), t.substring(colon + 2));
}

/**
 * The error for a refused CONNACK (return code 1..5, §3.2.2.3; anything else is a malformed
 * packet). A board whose profile leaves the `texts` feature out keeps the code and the return
 * code; docs/reason-codes.md has the texts.
 */
export function connackError(rc: number): PetrelError {
  const code = rc === 1 ? "connack-protocol" : rc === 2 ? "connack-identifier-rejected" : rc === 3 ? "connack-server-unavailable" :
    rc === 4 ? "bad-credentials" : rc === 5 ? "not-authorized" : "connack-refused";
  if (FEATURE_TEXTS) {
    switch (rc) {
      case 1: return fail(code, "the broker refused MQTT 3.1.1 (return code 1, unacceptable protocol version); fix: use a broker that speaks MQTT 3.1.1 (mosquitto 1.3 or later) or enable v3.1.1 on its listener");
      case 2: return fail(code, "the broker rejected the client id (return code 2); fix: use 1-23 letters and digits, or an id the broker's policy allows, and make it unique per board");
      case 3: return fail(code, "the broker is up but its MQTT service is unavailable (return code 3); fix: wait (the client retries with backoff) or check the broker's log");
      case 4: return fail(code, "the broker refused the user name or password (return code 4); fix: check the username and password settings, and that the broker's password file has this user");
      case 5: return fail(code, "the broker says this client is not authorized to connect (return code 5); fix: check the username and password (mosquitto 2 answers a wrong password or a missing user name with this code), then the broker's listener settings (anonymous access, required certificates)");
      default: break;
    }
  }
  return fail(code, `the broker refused the connection with ${rc >= 1 && rc <= 5 ? "" : "unknown "}return code ${rc}${rc >= 1 && rc <= 5 ? "; see docs/reason-codes.md for what it means and the fix" : ""}`);
}

/** Why a connection ended, by the code the transport or the session gave it, with a fix hint. */
export function explainClose(reason: string): string {
  switch (reason) {
    case "": return "closed by this client";
    case "refused": return "the broker's address refused the connection; fix: check the host and port, and that the broker is running";
    case "reset": return "the connection was reset; the client reconnects (if it keeps happening: check the broker's log, its max_connections and the Wi-Fi signal)";
    case "timeout": return "the network timed out; fix: check Wi-Fi signal and that the broker's address is reachable";
    case "not-found": return "the broker's host name did not resolve; fix: check the host name and the DNS settings";
    case "no-network": return "there is no network; the client retries when the network returns";
    case "unreachable": return "the broker's network is unreachable; fix: check the gateway and the broker's address";
    case "tls": return "the TLS handshake failed; fix: check that the port is the broker's TLS listener and the TLS settings";
    case "tls-expired": return "the broker's certificate has expired (or the board's clock is wrong); fix: renew the certificate, or set the clock";
    case "tls-name-mismatch": return "the broker's certificate does not name the host that was dialled; fix: use the name in the certificate, or reissue it";
    case "tls-untrusted": return "the broker's certificate is not signed by the configured CA; fix: give the CA certificate that signed the broker's";
    case "tls-client-cert-required": return "the broker requires a client certificate; fix: configure the board's client certificate and key";
    case "connect-timeout": return "the broker did not answer CONNECT in time; fix: check that the port is an MQTT listener (not TLS, not HTTP) and the broker's load";
    case "ping-timeout": return "no PINGRESP in time: the link is dead (half-open TCP); the client reconnects";
    case "malformed-packet": return "the broker sent a malformed packet; the client reconnects (if it repeats: check the broker version)";
    case "protocol-error": return "the broker broke the MQTT protocol; the client reconnects";
    case "primary-retry": return "left a fallback broker to try the first broker again";
    case "ack-timeout": return "a message went unacknowledged for two keepalives; the client reconnects and sends it again";
    default: return "the connection closed (" + reason + ")";
  }
}
