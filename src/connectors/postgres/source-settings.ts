/**
 * The postgres source's options, read once for everyone who needs them: the source at start,
 * and the tools (`dts check --live`, `status`, `verify`, `drop`), so that the slot and the
 * publication a tool looks at are the ones the source made — `dts_<pipeline>_<source>` unless
 * the options name others (slot.ts `deriveName`).
 */
import type { Value } from "../../model/value.js";
import type { OptionsOf } from "../spec.js";
import { ConnectorError } from "../../runtime/contracts.js";
import { optionsOf } from "../options.js";
import { deriveName } from "./slot.js";
import { sourceSpec } from "./spec.js";

export type SnapshotMode = OptionsOf<typeof sourceSpec>["snapshot"];

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
  // Checked against the spec and defaulted once, when the options were resolved (connectors/options.ts).
  const options = optionsOf(sourceSpec, context.options, `source ${context.name}`);
  // The spec says "a list of strings"; an empty one captures nothing, which is never meant.
  if (options.tables.length === 0) throw new ConnectorError(`source ${context.name}: option tables must name at least one table`, false);
  const derived = deriveName(context.pipeline, context.name);
  return {
    url: options.url,
    tables: options.tables,
    snapshot: options.snapshot,
    slot: options.slot !== undefined && options.slot !== "" ? options.slot : derived,
    publication: options.publication !== undefined && options.publication !== "" ? options.publication : derived,
    chunkSize: options.chunk_size,
    heartbeatSeconds: options.heartbeat_seconds,
  };
}
