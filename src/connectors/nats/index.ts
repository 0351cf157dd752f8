/** The nats connector: JetStream subjects, as a sink, deduplicated by Nats-Msg-Id (sink.ts). */
import { declareConnector } from "../capabilities.js";
import { sinkSpec } from "./spec.js";

export const connector = declareConnector({
  name: "nats",
  sink: {
    spec: sinkSpec,
    createSink: async () => (await import("./sink.js")).createSink,
  },
});
