/** The jsonl connector: JSON lines files, as a source and a sink. */
import { declareConnector } from "../capabilities.js";
import { sinkSpec, sourceSpec } from "./spec.js";

export const connector = declareConnector({
  name: "jsonl",
  source: {
    spec: sourceSpec,
    createSource: async () => (await import("./source.js")).createSource,
  },
  sink: {
    spec: sinkSpec,
    createSink: async () => (await import("./sink.js")).createSink,
  },
});
