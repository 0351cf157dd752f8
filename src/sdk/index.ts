/** The subscription SDK: change events from Kafka topics for applications (subscribe.ts). */
export { subscribe, type ChangeMessage, type SubscribeOptions, type Subscription } from "./subscribe.js";
