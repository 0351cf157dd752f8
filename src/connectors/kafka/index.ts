/** The kafka connector: topics as a source and a sink, in the Debezium envelope. */
import { declareConnector } from "../capabilities.js";
import { sinkSpec, sourceSpec } from "./spec.js";

export const connector = declareConnector({
  name: "kafka",
  source: {
    spec: sourceSpec,
    createSource: async () => (await import("./source.js")).createSource,
  },
  sink: {
    spec: sinkSpec,
    createSink: async () => (await import("./sink.js")).createSink,
  },
});
