/** The mysql connector: MySQL and MariaDB, as a source (binlog) and a sink. Specified; not built yet. */
import { declareConnector } from "../capabilities.js";
import { sinkSpec, sourceSpec } from "./spec.js";

export const connector = declareConnector({ name: "mysql", source: { spec: sourceSpec }, sink: { spec: sinkSpec } });
