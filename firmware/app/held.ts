import type { Client } from "../session/client";
import { dropHeld, listHeld, retryHeld, type HeldMessage } from "../session/held";
import type { SensorNode } from "./node";

/**
 * The console's view of the messages the broker refused (session/held.ts): one lazy module
 * (app/lazy.ts), loaded only for `held` and for `status` while something is held, so that the
 * other commands do not load the session's held module with it.
 */

/** `status`'s line while messages are held: how many, and the first one's topic. */
export function heldLine(c: Client): string {
  const h = listHeld(c);
  return `held: ${h.length} refused by the broker, the first to ${h.length > 0 ? h[0].topic : "?"} (QoS ${h.length > 0 ? h[0].qos : 0}); held lists them`;
}

/** `held`, `held retry N`, `held drop N`. */
export function heldCommand(node: SensorNode, args: string[], say: (this: void, line: string) => void): void {
  const c = node.client as Client;
  const list = node.client !== undefined ? listHeld(c) : [];
  let m = undefined as HeldMessage | undefined;
  for (const x of list) if (args.length === 3 && `${x.n}` === args[2]) m = x;
  if (args.length === 1) {
    if (list.length === 0) say("held: none");
    for (const x of list) say(`held ${x.n}: ${x.topic} QoS ${x.qos}${x.retain ? " retained" : ""}, ${x.size} bytes`);
  } else if (args.length !== 3 || (args[1] !== "retry" && args[1] !== "drop")) {
    say("held: usage: held, held retry N, held drop N");
  } else if (m === undefined) {
    say(`held: nothing in slot ${args[2]}; held lists them`);
  } else {
    const what = `${m.topic} QoS ${m.qos}`;
    const log = node.board.log;
    const e = args[1] === "drop" ? dropHeld(c, m.n) : retryHeld(c, m.n, (err) => {
      log(err === undefined ? `held: acknowledged: ${what}` : `held: not delivered: ${what}: ${err.code}: ${err.message}`);
    });
    if (e !== undefined) say(`held: ${e.code}: ${e.message}`);
    else say(args[1] === "drop" ? `held: deleted ${what}` : `held: ${what} is back in the outbox (outbox ${c.outbox.count})`);
  }
}
