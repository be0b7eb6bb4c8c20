import { connackError, explainClose } from "../session/errors";

/**
 * `diag`: walks the chain from the radio to the broker and names the first broken link, with a
 * fix. It reads what the node saw of its client's last attempts (no probe of its own: the board
 * has one connection, and the client is already dialling), so it answers at once and never
 * disturbs the session.
 */
export interface DiagFacts {
  /** The Wi-Fi link: "up" (associated, with an address), "down", or "none" (no link on this board). */
  link: string;
  /** Connected now (CONNACK accepted). */
  connected: boolean;
  /** Why the last attempt that never reached CONNACK ended ("" when none since the last connect). */
  failed: string;
  /** Dial attempts so far. */
  attempts: number;
  /** The brokers setting (host:port list), for the hints. */
  brokers: string;
  /** TLS on for some broker. */
  tls: boolean;
  clientId: string;
  /** The command subscription: "" pending, "granted N" or "refused". */
  subscription: string;
  /** The command topic. */
  cmdTopic: string;
  /** Last PINGREQ round trip, ms; -1 before the first. */
  pingMs: number;
  keepalive: number;
  /** Connections in a row that the broker closed soon after accepting them. */
  shortDrops: number;
  /** A build with MQTT 5.0: the protocol of the last connection ("MQTT 5.0", or 3.1.1 after a fallback). */
  protocol?: string;
  /**
   * At 5.0: the client's last error when the broker gave it as a reason code (its code, the
   * packet, the broker's reason string and the fix), to explain that failure in the broker's words.
   */
  said?: { code: string; message: string };
}

/** This many broker-closed short connections in a row point to a duplicate client id. */
export const FLAP_COUNT = 3;

/** The link a close reason breaks: 0 wifi, 1 dns, 2 tcp, 3 tls, 4 mqtt. */
function stageOf(reason: string): number {
  if (reason === "no-network") return 0;
  if (reason === "not-found") return 1;
  if (reason.substring(0, 3) === "tls") return 3;
  if (reason === "refused" || reason === "timeout" || reason === "unreachable") return 2;
  return 4;
}

/** A CONNACK refusal explained, or the close reason explained. */
function explain(reason: string): string {
  const codes = ["connack-protocol", "connack-identifier-rejected", "connack-server-unavailable", "bad-credentials", "not-authorized"];
  for (let i = 0; i < codes.length; i++) {
    if (codes[i] === reason) return `CONNACK refused: ${connackError(i + 1).message}`;
  }
  return explainClose(reason);
}

const NAMES = ["wifi", "dns", "tcp", "tls", "mqtt"];

/** The diagnosis, one line per link, then the verdict. */
export function diagnose(f: DiagFacts): string[] {
  const out: string[] = [];
  // the first broken link: -1 none yet known
  let broken = -1;
  let fix = "";
  if (f.link === "down") {
    broken = 0;
    fix = "the board is not on Wi-Fi (not associated, or no address); fix: check wifi.ssid and wifi.pass (set, save, reboot), and that the access point is in range";
  } else if (!f.connected && f.failed !== "") {
    broken = stageOf(f.failed);
    const said = f.said;
    fix = said !== undefined && said.code === f.failed ? `the broker refused: ${said.message}` : explain(f.failed);
    if (broken === 1 || broken === 2) fix += ` (brokers = ${f.brokers})`;
  }
  for (let i = 0; i < NAMES.length; i++) {
    let line: string;
    if (broken >= 0 && i > broken) line = "not reached";
    else if (i === broken) line = `FAILED: ${fix}`;
    else if (i === 0) line = f.link === "none" ? "no Wi-Fi on this board (the host's network)" : "ok: associated, with an address";
    else if (i === 3 && !f.tls) line = "off (tls off for every broker)";
    else if (f.connected || broken > i) line = i === 4 ? `ok: connected as ${f.clientId}` : "ok";
    else line = f.attempts > 0 ? "not yet known (connecting)" : "not yet tried";
    out.push(`diag: ${NAMES[i]}  ${line}`);
  }
  if (f.connected) {
    if (f.subscription === "refused") {
      broken = 5;
      fix = `the broker refused the subscription to ${f.cmdTopic}; fix: allow this client (or its user) to read that topic in the broker's ACL`;
      out.push(`diag: subscribe  FAILED: ${fix}`);
    } else {
      out.push(`diag: subscribe  ${f.subscription === "" ? "waiting for SUBACK" : `ok: ${f.cmdTopic} ${f.subscription}`}`);
    }
    if (f.pingMs >= 0) out.push(`diag: ping  ${f.pingMs} ms round trip (last PINGRESP)`);
    else out.push(`diag: ping  none yet (${f.keepalive > 0 ? `the first after ${f.keepalive} s without traffic` : "keepalive 0: no pings"})`);
  }
  if (f.protocol !== undefined) out.push(`diag: protocol  ${f.protocol}`);
  if (f.shortDrops >= FLAP_COUNT) {
    if (broken < 0) broken = 6;
    out.push(`diag: client id  FAILED: the broker closed the last ${f.shortDrops} connections soon after accepting them: ` +
      `another device is probably connecting with the same client id (${f.clientId}); fix: give each board its own client.id (set client.id NAME, save, reboot)`);
  }
  if (broken < 0) out.push(f.connected ? "diag: every link works" : "diag: no broken link found yet; the client is still connecting (run diag again)");
  else if (broken <= 4) out.push(`diag: first broken link: ${NAMES[broken]}`);
  else out.push(`diag: first broken link: ${broken === 5 ? "subscribe" : "client id"}`);
  return out;
}
