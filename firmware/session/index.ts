export { Client, type ClientEvents, type ClientStats, type MessageHandler } from "./client";
export { connackError, explainClose } from "./errors";
export { dropHeld, listHeld, retryHeld, type HeldMessage } from "./held";
export { MqttClient, connect, type MessageInfo, type PublishOptions, type SubscribeOptions } from "./mqtt";
export type { BrokerAddress, ClientOptions, WillMessage } from "./options";
export type { Platform } from "../port/platform";
