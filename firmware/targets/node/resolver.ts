/**
 * The Resolver contract from a table: tests and the simulator never send DNS queries off the
 * machine. `localhost` is 127.0.0.1 unless the table says otherwise; a literal address is itself.
 */
import * as net from "node:net";
import type { Resolver } from "../../port/transport";

export function tableResolver(table: Record<string, string> = {}): Resolver {
  return {
    lookUp(host, done) {
      const address = net.isIP(host) !== 0 ? host : table[host] ?? (host === "localhost" ? "127.0.0.1" : "");
      setImmediate(() => done(address, address === "" ? "not-found" : ""));
    },
  };
}
