import type { SnapshotProgress } from "./contracts.js";

/**
 * Counters of a running pipeline: plain numbers bumped once per batch (never per event), read
 * by the progress display and returned in the run's summary. Rates are computed by the reader
 * from two readings, so counting costs nothing but an addition.
 */

export interface SourceCounters {
  /** Change events received from the source. */
  events: number;
  batches: number;
  /** Times the source was reconnected after a retriable error. */
  restarts: number;
  caughtUp: boolean;
  /** Where the source's snapshot stands, while it copies tables. */
  snapshot?: SnapshotProgress | undefined;
}

export interface SinkCounters {
  /** Events the sink made durable (rejected ones not included). */
  events: number;
  /** Calls to `write` that succeeded (one may carry several source batches). */
  writes: number;
  /** Events the sink itself refused (`write` returned them as rejections). */
  rejected: number;
  /** Write attempts that failed with a retriable error and were tried again. */
  retries: number;
}

export class Metrics {
  readonly sources = new Map<string, SourceCounters>();
  readonly sinks = new Map<string, SinkCounters>();
  /** Events a step rejected (expression error or failed validation). */
  stepRejected = 0;
  /** Events written to the dead-letter sink, for whatever reason. */
  deadLettered = 0;
  readonly startedAt = performance.now();

  constructor(sourceNames: readonly string[], sinkNames: readonly string[]) {
    for (const name of sourceNames) {
      this.sources.set(name, { events: 0, batches: 0, restarts: 0, caughtUp: false });
    }
    for (const name of sinkNames) this.sinks.set(name, { events: 0, writes: 0, rejected: 0, retries: 0 });
  }

  source(name: string): SourceCounters {
    const counters = this.sources.get(name);
    if (counters === undefined) throw new Error(`no counters for source ${name}`);
    return counters;
  }

  sink(name: string): SinkCounters {
    const counters = this.sinks.get(name);
    if (counters === undefined) throw new Error(`no counters for sink ${name}`);
    return counters;
  }

  /** Seconds since the run started. */
  elapsedSeconds(): number {
    return (performance.now() - this.startedAt) / 1000;
  }
}
