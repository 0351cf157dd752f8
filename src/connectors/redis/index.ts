/** The redis connector: keys kept in step, as a sink. Specified; not built yet. */
import { declareConnector } from "../capabilities.js";
import { sinkSpec } from "./spec.js";

export const connector = declareConnector({ name: "redis", sink: { spec: sinkSpec } });
