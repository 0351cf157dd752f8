/**
 * The postgres source's options, read once for everyone who needs them: the source at start,
 * and the tools (`dts check --live`, `status`, `verify`, `drop`), so that the slot and the
 * publication a tool looks at are the ones the source made — `dts_<pipeline>_<source>` unless
 * the options name others (slot.ts `deriveName`).
 */
import type { Value } from "../../model/value.js";
import { ConnectorError } from "../../runtime/contracts.js";
import { deriveName } from "./slot.js";

export type SnapshotMode = "initial" | "never" | "only";

export interface SourceSettings {
  readonly url: string;
  readonly tables: readonly string[];
  readonly snapshot: SnapshotMode;
  readonly slot: string;
  readonly publication: string;
  readonly chunkSize: number;
  readonly heartbeatSeconds: number;
}

/** What the settings are read from: a source's context, or a tool's. */
export interface SettingsContext {
  readonly pipeline: string;
  readonly name: string;
  readonly options: Readonly<Record<string, Value>>;
}

export function readSourceSettings(context: SettingsContext): SourceSettings {
  const options = context.options;
  const url = options.url;
  if (typeof url !== "string" || url === "") throw new ConnectorError("postgres source: option url is required", false);
  const tables = options.tables;
  const names = Array.isArray(tables) ? tables.filter((table): table is string => typeof table === "string") : [];
  if (!Array.isArray(tables) || names.length === 0 || names.length !== tables.length) {
    throw new ConnectorError("postgres source: option tables must be a non-empty list of names", false);
  }
  const snapshot = options.snapshot ?? "initial";
  if (snapshot !== "initial" && snapshot !== "never" && snapshot !== "only") {
    throw new ConnectorError(`postgres source: snapshot must be "initial", "never" or "only"`, false);
  }
  const derived = deriveName(context.pipeline, context.name);
  const slot = typeof options.slot === "string" && options.slot !== "" ? options.slot : derived;
  const publication = typeof options.publication === "string" && options.publication !== "" ? options.publication : derived;
  const chunkSize = Number(options.chunk_size ?? 10000);
  const heartbeatSeconds = Number(options.heartbeat_seconds ?? 10);
  return { url, tables: names, snapshot, slot, publication, chunkSize, heartbeatSeconds };
}
