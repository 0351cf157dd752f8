/**
 * What a mysql source leaves on its server, for `dts drop`: nothing. A binlog reader is a
 * replica connection that holds no slot — the server keeps its binlogs by its own expiry
 * (`binlog_expire_logs_seconds`), whether a pipeline reads them or not — so there is nothing to
 * remove; the pipeline's checkpoints are where its checkpoint store keeps them, and `dts drop`
 * removes those itself.
 */
import type { Drop } from "../capabilities.js";

export const drop: Drop = async () => [];
