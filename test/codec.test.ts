import { crossTarget } from "./harness/matrix";
import { codecCases } from "./fixtures/codec";

// The codec's fixture table on every runtime of the matrix.
crossTarget("codec", codecCases);
