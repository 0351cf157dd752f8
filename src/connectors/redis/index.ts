/**
 * The redis connector: keys kept in step with a database's rows, as a sink (sink.ts), which can
 * also keep the pipeline's checkpoints and lock on its server (checkpoint-store.ts).
 */
import { declareConnector } from "../capabilities.js";
import { sinkSpec } from "./spec.js";

export const connector = declareConnector({
  name: "redis",
  sink: {
    spec: sinkSpec,
    createSink: async () => (await import("./sink.js")).createSink,
    checkpointStore: async () => (await import("./checkpoint-store.js")).openCheckpointStore,
  },
});
