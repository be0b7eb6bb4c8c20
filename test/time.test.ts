import { crossTarget } from "./harness/matrix";
import { timeCases } from "./fixtures/time";

// The wrapped 31-bit millisecond clock, on every runtime (near the wrap, and across it).
crossTarget("time", timeCases);
