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
  /** When the last event read was committed on the source (epoch ms): the base of the lag. */
  lastCommitMs?: number | undefined;
  /** When the source was last told a checkpoint was durable (epoch ms). */
  acknowledgedMs?: number | undefined;
  /** Failing and being retried right now (between a failure and the next batch). */
  failing: boolean;
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
  /** Failing and being retried right now (between a failure and the next successful write). */
  failing: boolean;
}

/** Told of each write as it ends, for figures kept per write (histograms); once per batch. */
export interface WriteObserver {
  written(sink: string, events: number, seconds: number): void;
}

export class Metrics {
  readonly sources = new Map<string, SourceCounters>();
  readonly sinks = new Map<string, SinkCounters>();
  /** Events a step rejected (expression error or failed validation). */
  stepRejected = 0;
  /** Events written to the dead-letter sink, for whatever reason. */
  deadLettered = 0;
  readonly startedAt = performance.now();
  /** Retriable failures and fatal errors, by error code (or class name where there is none). */
  readonly errors = new Map<string, number>();
  writes: WriteObserver | undefined;

  constructor(sourceNames: readonly string[], sinkNames: readonly string[]) {
    for (const name of sourceNames) {
      this.sources.set(name, { events: 0, batches: 0, restarts: 0, caughtUp: false, failing: false });
    }
    for (const name of sinkNames) this.sinks.set(name, { events: 0, writes: 0, rejected: 0, retries: 0, failing: false });
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

  /** Counts an error under its code: `code` when it has one (DTSnnnn, a driver's), else its class. */
  countError(error: unknown): void {
    const code = (error as { code?: unknown } | null)?.code;
    const key = typeof code === "string" && code !== "" ? code : error instanceof Error ? error.name : "unknown";
    this.errors.set(key, (this.errors.get(key) ?? 0) + 1);
  }

  /** Seconds since the run started. */
  elapsedSeconds(): number {
    return (performance.now() - this.startedAt) / 1000;
  }
}
