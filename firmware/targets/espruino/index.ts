import { installPort, port } from "../../port/port";
import { Decoder, MAX_REMAINING_LENGTH, MAX_STRING, checkFilterShape, checkTopicShape,
  checkUtf8, codecError, codecErrorMessage, codecErrorName, encodeConnect, encodeFilters, encodePublish, encodeShort,
  payloadSize, remainingLengthSize, topicMatches, writeRemainingLength } from "../../codec/index";
import { Client, MqttClient, connackError, connect, dropHeld, explainClose, listHeld, retryHeld } from "../../session/index";
import { IDLE, Scheduler } from "../../sched/scheduler";
import { espruinoPort } from "./port";
import { espruinoPlatform, espruinoStorage } from "./platform";
import { elapsed } from "../../sched/time";

declare const global: { [name: string]: unknown };

// Entry module of the Espruino build: installs the platform before anything else runs.
installPort(espruinoPort);

/**
 * The public API as one plain object. Not ES-module exports: the bundler's export helpers use
 * `Object.prototype.hasOwnProperty` and per-iteration `let` closures, which Espruino lacks.
 * The bundle's footer copies it to `exports` when loaded as a module (`require("petrel")`).
 * A test checks it carries every run-time export of the Node build (the const enums CodecError,
 * PacketType and Status exist only at compile time: their numbers are in codec/constants.ts).
 */
global["Petrel"] = {
  port, Decoder, encodeConnect, encodeFilters, encodePublish, encodeShort,
  payloadSize, remainingLengthSize, writeRemainingLength, codecError, codecErrorMessage, codecErrorName,
  checkFilterShape, checkTopicShape, topicMatches, checkUtf8, MAX_REMAINING_LENGTH, MAX_STRING,
  Client, MqttClient, connect, connackError, explainClose, listHeld, retryHeld, dropHeld, Scheduler, IDLE, espruinoPlatform,
  espruinoStorage, elapsed,
};
