import { crossTarget } from "./harness/matrix";
import { intCases } from "./fixtures/ints";
import { bytesCases } from "./fixtures/bytes";

// The integer helper and the byte-string contract, on every runtime of the matrix.
crossTarget("ints", intCases);
crossTarget("bytes", bytesCases);
