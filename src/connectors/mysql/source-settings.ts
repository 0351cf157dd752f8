/**
 * The mysql source's options, read once for the source and for the tools (`dts check --live`,
 * `status`, `verify`, `drop`), so that they agree on the replica id the source connects with.
 */
import { createHash } from "node:crypto";
import type { Value } from "../../model/value.js";
import { ConnectorError } from "../../runtime/contracts.js";

export type SnapshotMode = "initial" | "never" | "only";

export interface SourceSettings {
  readonly url: string;
  readonly tables: readonly string[];
  readonly snapshot: SnapshotMode;
  readonly serverId: number;
  readonly chunkSize: number;
}

export interface SettingsContext {
  readonly pipeline: string;
  readonly name: string;
  readonly options: Readonly<Record<string, Value>>;
}

/**
 * A replica id from the pipeline's and source's names: stable across runs, and spread over
 * 1000..2^31 so that it is unlikely to meet a real replica's small id (1, 2, …).
 */
export function deriveServerId(pipeline: string, source: string): number {
  const digest = createHash("sha256").update(`${pipeline}\0${source}`).digest();
  return 1000 + (digest.readUInt32BE(0) % (2 ** 31 - 1000));
}

export function readSourceSettings(context: SettingsContext): SourceSettings {
  const options = context.options;
  const url = options.url;
  if (typeof url !== "string" || url === "") throw new ConnectorError("mysql source: option url is required", false);
  const tables = options.tables;
  const names = Array.isArray(tables) ? tables.filter((table): table is string => typeof table === "string") : [];
  if (!Array.isArray(tables) || names.length === 0 || names.length !== tables.length) {
    throw new ConnectorError("mysql source: option tables must be a non-empty list of names", false);
  }
  for (const name of names) {
    if (!name.includes(".")) throw new ConnectorError(`mysql source: table ${JSON.stringify(name)} must be named as database.table (a glob such as "shop.*" is fine)`, false);
  }
  const snapshot = options.snapshot ?? "initial";
  if (snapshot !== "initial" && snapshot !== "never" && snapshot !== "only") {
    throw new ConnectorError(`mysql source: snapshot must be "initial", "never" or "only"`, false);
  }
  const serverId = options.server_id === null || options.server_id === undefined ? deriveServerId(context.pipeline, context.name) : Number(options.server_id);
  const chunkSize = Number(options.chunk_size ?? 10000);
  return { url, tables: names, snapshot, serverId, chunkSize };
}
