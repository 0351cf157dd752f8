/**
 * Per-sink positions in a checkpoint store. A source feeding several sinks has, besides its
 * own checkpoint (where it resumes: the least of its sinks' positions, the one the source
 * acknowledges), one checkpoint per sink: how far that sink has made the source's changes
 * durable. A sink that is ahead of its source after a restart skips what it already has
 * (model/position.ts `coveredBy`), so a region that kept up while another lagged does not
 * apply the laggard's backlog a second time.
 *
 * Stores keep a flat map of checkpoints by name (a JSON object, rows of dts.checkpoints), so a
 * sink's entry is named `SOURCE/SINK`: names of the language never hold a slash, and a store
 * written before per-sink positions existed has only the source entries, which read as every
 * sink at its source's position. A source feeding one sink has no per-sink entry: its own
 * checkpoint is that sink's position, and its stored form is the same as before.
 */
import type { SourceCheckpoint } from "./contracts.js";

const SEPARATOR = "/";

/** The store entry of `sink`'s position in `source`'s stream. */
export function sinkKey(source: string, sink: string): string {
  return `${source}${SEPARATOR}${sink}`;
}

export interface SplitCheckpoints {
  /** Where each source resumes (acknowledged position). */
  readonly sources: Readonly<Record<string, SourceCheckpoint>>;
  /** By source, then sink: positions stored for the sink itself. */
  readonly sinks: ReadonlyMap<string, ReadonlyMap<string, SourceCheckpoint>>;
}

/** A store's entries, sources apart from their sinks' positions. */
export function splitCheckpoints(stored: Readonly<Record<string, SourceCheckpoint>>): SplitCheckpoints {
  const sources: Record<string, SourceCheckpoint> = {};
  const sinks = new Map<string, Map<string, SourceCheckpoint>>();
  for (const [key, checkpoint] of Object.entries(stored)) {
    const at = key.indexOf(SEPARATOR);
    if (at < 0) {
      sources[key] = checkpoint;
      continue;
    }
    const source = key.slice(0, at);
    const list = sinks.get(source) ?? new Map<string, SourceCheckpoint>();
    list.set(key.slice(at + 1), checkpoint);
    sinks.set(source, list);
  }
  return { sources, sinks };
}
