/**
 * The mysql connector: MySQL and MariaDB. As a source: a consistent snapshot and the binlog
 * (source.ts), with the checks `dts check --live` and the start share (preflight.ts), the binlog
 * position and what the server retains (status.ts), `dts verify` (verify.ts) and `dts drop`
 * (drop.ts: a binlog reader keeps nothing on the server). As a sink: upserts in one target
 * transaction per source transaction (sink.ts), checkpoints in the target
 * (checkpoint-store.ts), `dts verify` (sink-verify.ts) and `dts drop` (sink-drop.ts).
 */
import { declareConnector } from "../capabilities.js";
import { sinkSpec, sourceSpec } from "./spec.js";

export const connector = declareConnector({
  name: "mysql",
  source: {
    spec: sourceSpec,
    createSource: async () => (await import("./source.js")).createSource,
    preflight: async () => (await import("./preflight.js")).preflight,
    describe: async () => (await import("./preflight.js")).describe,
    status: async () => (await import("./status.js")).status,
    verify: async () => (await import("./verify.js")).verifySource,
    drop: async () => (await import("./drop.js")).drop,
  },
  sink: {
    spec: sinkSpec,
    createSink: async () => (await import("./sink.js")).createSink,
    verify: async () => (await import("./sink-verify.js")).verifySink,
    checkpointStore: async () => (await import("./checkpoint-store.js")).openCheckpointStore,
    drop: async () => (await import("./sink-drop.js")).drop,
  },
});
