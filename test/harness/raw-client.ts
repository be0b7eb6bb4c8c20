/**
 * A bare MQTT connection for tests: a loopback socket, Petrel's encoders and decoder, nothing
 * else (no session logic). Each received packet becomes the probe's one-line description.
 */
import * as net from "node:net";
import "./petrel-node";
import type { Bytes, Out } from "../../firmware/port/bytes";
import { port } from "../../firmware/port/port";
import { Status } from "../../firmware/codec/constants";
import { Decoder } from "../../firmware/codec/decoder";
import { codecErrorName } from "../../firmware/codec/errors";
import { describeEvent } from "../probe/suites/codec";

export class RawClient {
  readonly tx = port.bytes.out(70000);
  private readonly events: string[] = [];
  private waiter: ((e: string) => void) | null = null;
  closed = false;

  private constructor(private readonly sock: net.Socket, readonly dec: Decoder) {
    sock.on("data", (chunk: Buffer) => {
      let at = 0;
      while (at < chunk.length) {
        at = dec.feedChunk(chunk as unknown as Bytes, at);
        if (dec.status !== Status.NeedMore) this.emit(describeEvent(dec));
        if (dec.status === Status.Error) return;
      }
    });
    sock.on("close", () => {
      this.closed = true;
      this.emit("closed");
    });
    sock.on("error", () => {});
  }

  static connect(port: number, capacity = 70000): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: "127.0.0.1", port }, () => resolve(new RawClient(s, new Decoder(capacity))));
      s.once("error", reject);
    });
  }

  private emit(e: string): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w(e);
    } else {
      this.events.push(e);
    }
  }

  /** Sends a packet an encoder writes (`end` is the encoder's return). */
  send(encode: (o: Out) => number): void {
    const end = encode(this.tx);
    if (end < 0) throw new Error(`encoder refused: ${codecErrorName(end)}`);
    this.sock.write(this.tx.toWire() as unknown as Buffer);
  }

  /** The next received packet's description; "timeout" after `ms` (a bound, not an assertion). */
  next(ms = 3000): Promise<string> {
    const e = this.events.shift();
    if (e !== undefined) return Promise.resolve(e);
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.waiter = null;
        resolve("timeout");
      }, ms);
      this.waiter = (ev) => {
        clearTimeout(t);
        resolve(ev);
      };
    });
  }

  end(): void {
    this.sock.destroy();
  }
}
