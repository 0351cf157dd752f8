/** The nats connector: JetStream subjects, as a sink. Specified; not built yet. */
import { declareConnector } from "../capabilities.js";
import { sinkSpec } from "./spec.js";

export const connector = declareConnector({ name: "nats", sink: { spec: sinkSpec } });
