/** The duckdb connector: an embedded analytics file, as a sink that `dts verify` can read. */
import { declareConnector } from "../capabilities.js";
import { sinkSpec } from "./spec.js";

export const connector = declareConnector({
  name: "duckdb",
  sink: {
    spec: sinkSpec,
    createSink: async () => (await import("./sink.js")).createSink,
    verify: async () => (await import("./verify.js")).verifySink,
  },
});
