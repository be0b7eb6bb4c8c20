/** The codec's public surface, re-exported by every target's entry module. */
export { CodecError, MAX_REMAINING_LENGTH, MAX_STRING, PacketType, Status } from "./constants";
export { Decoder } from "./decoder";
export { encodeConnect, encodeFilters, encodePublish, encodeShort, payloadSize, remainingLengthSize, writeRemainingLength,
  type ConnectOptions, type Payload, type WillOptions } from "./encode";
export { codecError, codecErrorMessage, codecErrorName } from "./errors";
export { checkFilterShape, checkTopicShape, topicMatches } from "./topic";
export { checkUtf8 } from "./utf8";
