/**
 * The mysql connector: MySQL and MariaDB. As a source: a consistent snapshot and the binlog
 * (source.ts), with the checks `dts check --live` and the start share (preflight.ts), the binlog
 * position and what the server retains (status.ts), `dts verify` (verify.ts) and `dts drop`
 * (drop.ts: a binlog reader keeps nothing on the server). As a sink: upserts.
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
  sink: { spec: sinkSpec },
});
