/** The discard connector: a sink that keeps nothing (benchmarks, dry runs). */
import { declareConnector } from "../capabilities.js";
import { sinkSpec } from "./spec.js";

export const connector = declareConnector({
  name: "discard",
  sink: {
    spec: sinkSpec,
    createSink: async () => (await import("./sink.js")).createSink,
  },
});
