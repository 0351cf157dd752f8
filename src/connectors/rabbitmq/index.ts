/** The rabbitmq connector: an exchange, as a sink, with publisher confirms (sink.ts). */
import { declareConnector } from "../capabilities.js";
import { sinkSpec } from "./spec.js";

export const connector = declareConnector({
  name: "rabbitmq",
  sink: {
    spec: sinkSpec,
    createSink: async () => (await import("./sink.js")).createSink,
  },
});
