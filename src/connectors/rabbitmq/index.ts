/** The rabbitmq connector: an exchange, as a sink. Specified; not built yet. */
import { declareConnector } from "../capabilities.js";
import { sinkSpec } from "./spec.js";

export const connector = declareConnector({ name: "rabbitmq", sink: { spec: sinkSpec } });
