import { port } from "../../../firmware/port/port";
import { find } from "../../../firmware/port/text";
import { argBytes, argInt, argSize, argText, outBytes, outInt, outWire, register } from "../probe";

// The byte-string contract on every runtime. Text arrives as the runtime's own string type.

/** UTF-8 length of a text. */
register("bytes.textLength", (a) => outInt(port.bytes.textLength(argText(a[0]))));

/** A packet writer: `pad` bytes 0xaa, the text, then bytes [from, to) of a hex argument; its size and the Wire. */
register("bytes.out", (a) => {
  const s = argText(a[0]);
  const pad = argInt(a[1]);
  const b = argBytes(a[2]);
  const from = argInt(a[3]);
  const to = argInt(a[4]);
  const o = port.bytes.out(pad + port.bytes.textLength(s) + argSize(a[2]) + 1);
  o.byte(1);
  o.discard(); // a cleared writer starts over
  for (let k = 0; k < pad; k++) o.byte(170);
  o.putText(s);
  o.copy(b, from, to);
  const size = o.size;
  const w = o.toWire();
  return outInt(size) + " " + outWire(w) + " " + outInt(o.size);
});

/** Bytes → text → Wire → bytes: the text survives unchanged (nothing is encoded twice). */
register("bytes.roundTrip", (a) => {
  const src = argBytes(a[0]);
  const s = port.bytes.textFrom(src, 0, argSize(a[0]));
  const w = port.bytes.wireOf(s);
  const back = port.bytes.textOf(w);
  return outInt(port.bytes.wireLength(w)) + " " + outWire(w) + " " + (s === argText(a[0]) && back === s ? "same" : "different");
});

/** Bytes: their length, the byte at an index, and a range [from, to) as a Wire. */
register("bytes.read", (a) => {
  const b = argBytes(a[0]);
  const at = argInt(a[1]);
  const from = argInt(a[2]);
  const to = argInt(a[3]);
  return outInt(b.length) + " " + outInt(b[at]) + " " + outWire(port.bytes.wireFrom(b, from, to));
});

/** A range [from, to) of UTF-8 bytes read as text, then back to a Wire. */
register("bytes.text", (a) => {
  const b = argBytes(a[0]);
  return outWire(port.bytes.wireOf(port.bytes.textFrom(b, argInt(a[1]), argInt(a[2]))));
});

/** A gatherer fed the hex argument in pieces of `piece` bytes: what it gathered. */
register("bytes.gather", (a) => {
  const b = argBytes(a[0]);
  const piece = argInt(a[1]);
  const g = port.bytes.gather(b.length + 1);
  g.copy(b, 0, 1);
  g.discard();
  for (let k = 0; k < b.length; k = k + piece) g.copy(b, k, k + piece < b.length ? k + piece : b.length);
  return outInt(g.size) + " " + outBytes(g.gathered(), 0, g.size);
});

/** A stored PUBLISH with its DUP flag set (the Wire given is left as it was). */
register("bytes.dup", (a) => {
  const w = port.bytes.wireFrom(argBytes(a[0]), 0, argSize(a[0]));
  const d = port.bytes.dup(w);
  return outWire(d) + " " + outWire(w);
});

/** find(text, needle, from): where the whole needle first occurs at or after `from`, or -1. */
register("text.find", (a) => outInt(find(argText(a[0]), argText(a[1]), argInt(a[2]))));
