import { port } from "../../../firmware/port/port";
import { argInt, outInt, register } from "../probe";

// IntOps on every runtime: each op takes integer arguments and prints an integer.
register("ints.idiv", (a) => outInt(port.ints.idiv(argInt(a[0]), argInt(a[1]))));
register("ints.imod", (a) => outInt(port.ints.imod(argInt(a[0]), argInt(a[1]))));

/** Which platform and integer implementation this runtime uses (differs per runtime). */
register("port.info", () => port.target + " " + port.ints.impl);
