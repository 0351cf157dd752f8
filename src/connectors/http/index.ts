/** The http connector: changes POSTed to an endpoint. Specified; not built yet. */
import { declareConnector } from "../capabilities.js";
import { sinkSpec } from "./spec.js";

export const connector = declareConnector({ name: "http", sink: { spec: sinkSpec } });
