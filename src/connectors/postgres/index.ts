/**
 * The postgres connector: logical replication as a source, upserts as a sink, and every tool
 * capability — the checks `dts check --live` and the start share (preflight.ts), table schemas
 * (describe), the slot's position and retained WAL (status.ts), `dts verify` on both sides
 * (verify.ts), the slot and publication for `dts drop` (drop.ts), and checkpoints kept in the
 * target database (checkpoint-store.ts).
 */
import { declareConnector } from "../capabilities.js";
import { sinkSpec, sourceSpec } from "./spec.js";

export const connector = declareConnector({
  name: "postgres",
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
    verify: async () => (await import("./verify.js")).verifySink,
    checkpointStore: async () => (await import("./checkpoint-store.js")).openCheckpointStore,
  },
});
