/** The datagen connector: a seeded synthetic workload, as a source. */
import { declareConnector } from "../capabilities.js";
import { sourceSpec } from "./spec.js";

export const connector = declareConnector({
  name: "datagen",
  source: {
    spec: sourceSpec,
    createSource: async () => (await import("./source.js")).createSource,
  },
});
