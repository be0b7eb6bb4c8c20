// What each MQTT 5.0 reason code means and its fix, as the error messages say it. Behind the
// `texts` feature: a board whose profile leaves it out carries none of these, and its errors
// point to docs/reason-codes.md, which lists the same texts.

/** The text of reason code `code` (MQTT 5.0 §2.4): what the broker meant, and the fix. */
export function reasonText(code: number): string {
  switch (code) {
    case 0x81: return "the broker found a packet from this client malformed; fix: check the client's version and report it";
    case 0x82: return "the broker says this client broke the protocol; fix: check the client's version and report it";
    case 0x83: return "the broker refused it for a reason of its own; fix: see its reason string and its log";
    case 0x84: return "the broker does not take this protocol version; fix: set protocolVersion 4 (MQTT 3.1.1)";
    case 0x85: return "the broker rejected the client id; fix: use 1-23 letters and digits, or an id its policy allows, unique per board";
    case 0x86: return "the broker refused the user name or password; fix: check the username and password settings";
    case 0x87: return "the broker says this client is not authorized for it; fix: check the credentials and the broker's ACL for this client";
    case 0x88: return "the broker's MQTT service is unavailable; fix: wait (the client retries with backoff) or check the broker";
    case 0x89: return "the broker is busy; fix: wait (the client retries with backoff)";
    case 0x8a: return "the broker has banned this client; fix: ask its administrator";
    case 0x8b: return "the broker is shutting down; the client reconnects (to the next broker of its list, if any)";
    case 0x8c: return "the broker does not take this authentication method; fix: check the authentication settings";
    case 0x8d: return "the broker heard nothing within 1.5 keepalives; fix: check the link, or lower keepalive";
    case 0x8e: return "another connection with this client id took the session; fix: give each board its own client id";
    case 0x8f: return "the broker does not take this topic filter; fix: check the filter against the broker's rules";
    case 0x90: return "the broker does not take this topic name; fix: check the topic against the broker's rules";
    case 0x91: return "the broker says the packet id is in use; the session goes on";
    case 0x93: return "the broker says this client sent more QoS 1/2 messages than its Receive Maximum; fix: report it (the client keeps to it)";
    case 0x94: return "the broker refused a topic alias; fix: report it";
    case 0x95: return "the broker says a packet was larger than its Maximum Packet Size; fix: send smaller messages";
    case 0x96: return "the broker says this client publishes too fast; fix: publish less often";
    case 0x97: return "the broker says this client is over its quota; fix: publish less, or raise the quota";
    case 0x98: return "the broker's administrator closed the connection; the client reconnects";
    case 0x99: return "the broker says the payload does not match its format indicator; fix: send UTF-8 when it says so";
    case 0x9a: return "the broker does not take retained messages; fix: publish without retain";
    case 0x9b: return "the broker does not take this QoS; fix: publish at the QoS it takes";
    case 0x9c: return "the broker asks the client to use another server (the client dials the one it names once, then its list); fix: add that server to the broker list";
    case 0x9d: return "the broker has moved (the client dials the address it names once, then its list); fix: point the broker list at its new address";
    case 0x9e: return "the broker does not take shared subscriptions; fix: subscribe without $share/";
    case 0x9f: return "the broker says this client connects too often; fix: raise reconnectMinMs";
    case 0xa0: return "the broker's limit on connection time was reached; the client reconnects";
    case 0xa1: return "the broker does not take subscription identifiers; fix: subscribe without one";
    case 0xa2: return "the broker does not take wildcard filters; fix: subscribe to whole topics";
    default: return "the broker refused it without saying why; fix: see its reason string and its log";
  }
}
