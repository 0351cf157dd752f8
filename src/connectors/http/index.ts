/** The http connector: changes POSTed to an endpoint, retried by status, keyed for idempotency (sink.ts). */
import { declareConnector } from "../capabilities.js";
import { sinkSpec } from "./spec.js";

export const connector = declareConnector({
  name: "http",
  sink: {
    spec: sinkSpec,
    createSink: async () => (await import("./sink.js")).createSink,
  },
});
