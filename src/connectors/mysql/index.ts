/** The mysql connector: MySQL and MariaDB, as a source (binlog) and a sink (upserts, checkpoints in the target, verify). */
import { declareConnector } from "../capabilities.js";
import { sinkSpec, sourceSpec } from "./spec.js";

export const connector = declareConnector({
  name: "mysql",
  source: { spec: sourceSpec },
  sink: {
    spec: sinkSpec,
    createSink: async () => (await import("./sink.js")).createSink,
    verify: async () => (await import("./sink-verify.js")).verifySink,
    checkpointStore: async () => (await import("./checkpoint-store.js")).openCheckpointStore,
    drop: async () => (await import("./sink-drop.js")).drop,
  },
});
