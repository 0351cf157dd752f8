/**
 * Pulls one source. The next batch is asked for only while every sink the source feeds has
 * room for it (`hasRoom`: in memory, or in its spool while another sink keeps up; see
 * sink-lane.ts); that one rule is the whole of backpressure: sinks that fall behind stop the
 * source being pulled, and a push-based source (a replication socket) pauses itself because
 * nobody reads it.
 *
 * A retriable error from the source (a dropped connection) does not stop the pipeline: the
 * pump saves what is durable, closes the reader, waits (backoff with jitter) and opens a new
 * reader that resumes from the source's last durable checkpoint — the least of its sinks'
 * positions, since the server must not release what a lagging sink has not made durable. The
 * events after it are read again, and each sink skips what it was given already (`rewind`). The reconnections of one
 * outage share its budget (retry.ts), which ends once a batch arrives, or once a reader has
 * run for `STABLE_READER_MS` without failing: a source with nothing to send for a day, which
 * fails once in the morning and once at night, is not in one outage of twelve hours.
 */
import { batchSize, type SourceBatch, type SourceCheckpoint, type SourceReader } from "./contracts.js";
import type { CheckpointCoordinator } from "./checkpoint-coordinator.js";
import type { RunLogger } from "./log.js";
import type { Metrics, SourceCounters } from "./metrics.js";
import { isRetriable, messageOf, Outage, RetriesExhaustedError, retryFields, sleep, withRetry, type RetryPolicy } from "./retry.js";

/** A reader that ran this long before it failed had recovered, even if it sent no batch. */
export const STABLE_READER_MS = 60_000;

export interface SourcePumpOptions {
  readonly name: string;
  /** A new reader resuming from `resume`. */
  readonly createReader: (resume: SourceCheckpoint | null) => SourceReader;
  readonly coordinator: CheckpointCoordinator;
  /** Hands a batch to the graph; false when it stopped the pipeline. */
  readonly dispatch: (batch: SourceBatch) => boolean;
  /** Every sink of the source takes another batch. */
  readonly hasRoom: () => boolean;
  /** The source is read again from its durable checkpoint: sinks skip what they were given. */
  readonly rewind: () => void;
  readonly retry: RetryPolicy;
  readonly log: RunLogger;
  readonly counters: SourceCounters;
  /** Where errors are counted by code (the metrics endpoint). */
  readonly metrics?: Pick<Metrics, "countError">;
  /** Aborted when the pipeline stops pulling (signal, caught up, or a failure). */
  readonly stop: AbortSignal;
  /** A batch arrived, or the source ended: the runner checks whether everything is caught up. */
  readonly onProgress: () => void;
}

const STOPPED = Symbol("stopped");

export class SourcePump {
  /** The reader in use; acknowledgements go to it, and the runner closes it at the end. */
  reader: SourceReader | undefined;
  /** Resolves the pump's wait for a free in-flight slot. */
  private wake: (() => void) | undefined;
  /** Resolves a pending `next()` with STOPPED when the pipeline stops pulling. */
  private stopNext: ((value: typeof STOPPED) => void) | undefined;
  /** The source's iteration ended (it has nothing more to send, ever). */
  ended = false;

  constructor(private readonly options: SourcePumpOptions) {
    options.stop.addEventListener("abort", () => {
      this.wake?.();
      this.stopNext?.(STOPPED);
    });
  }

  /** A sink made something durable or drained its spool: there may be room. */
  retired(): void {
    this.wake?.();
  }

  /** Resolves when the source ended or the pipeline stopped pulling; throws a fatal error. */
  async run(resume: SourceCheckpoint | null): Promise<void> {
    const { name, log, counters, retry, stop } = this.options;
    const outage = new Outage(retry);
    while (!stop.aborted) {
      const reader = this.options.createReader(resume);
      this.reader = reader;
      await withRetry(`starting source ${name}`, () => reader.start(), { policy: retry, log, signal: stop, outage });
      const started = performance.now();
      log.info("source started", { source: name, resume: resume?.position ?? null });
      const iterator = reader.batches()[Symbol.asyncIterator]();
      try {
        for (;;) {
          await this.waitForSlot();
          if (stop.aborted) break;
          const next = await this.next(iterator);
          if (next === STOPPED) break;
          if (next.done === true) {
            this.ended = true;
            counters.caughtUp = true;
            log.info("source ended", { source: name });
            this.options.onProgress();
            return;
          }
          outage.recovered();
          const batch = next.value;
          counters.batches++;
          counters.failing = false;
          const events = batchSize(batch);
          counters.events += events;
          counters.caughtUp = batch.caughtUp === true;
          // Read only when the batch's events exist already: a bulk batch's events are made on demand.
          if (events > 0 && batch.bulk === undefined) counters.lastCommitMs = batch.events[batch.events.length - 1]!.source.ts.toEpochMillis();
          if (!this.options.dispatch(batch)) return;
          this.options.onProgress();
        }
        // Stopped while the source may be waiting for data: whatever it sends now is not
        // delivered (nor checkpointed), so it is read again on the next run.
        void Promise.resolve(iterator.return?.()).catch(() => {});
        return;
      } catch (error) {
        this.options.metrics?.countError(error);
        if (!isRetriable(error) || stop.aborted) throw error;
        counters.failing = true;
        if (performance.now() - started >= STABLE_READER_MS) outage.recovered();
        const step = outage.failed();
        if (step.giveUp) throw new RetriesExhaustedError(`reading source ${name}`, step, retry.retryForMs, error);
        log.warn("source failed; reconnecting from the last durable checkpoint", { source: name, ...retryFields(step, error) });
        // Save what is durable, so that the new reader starts as late as possible.
        await this.options.coordinator.flush();
        await reader.close().catch((closeError: unknown) => log.debug("closing the failed source", { source: name, error: messageOf(closeError) }));
        this.reader = undefined;
        counters.restarts++;
        await sleep(step.delayMs, stop);
        resume = this.options.coordinator.durableCheckpoints()[name] ?? resume;
        this.options.rewind();
      }
    }
  }

  /** The next batch, or STOPPED as soon as the pipeline stops (the pending read is abandoned). */
  private next(iterator: AsyncIterator<SourceBatch>): Promise<IteratorResult<SourceBatch> | typeof STOPPED> {
    if (this.options.stop.aborted) return Promise.resolve(STOPPED);
    // A fresh promise per call and a field for its resolver, rather than Promise.race with one
    // long-lived stop promise, which would collect a reaction per batch for the whole run.
    return new Promise((resolve, reject) => {
      this.stopNext = resolve;
      iterator.next().then(resolve, reject);
    }).finally(() => {
      this.stopNext = undefined;
    }) as Promise<IteratorResult<SourceBatch> | typeof STOPPED>;
  }

  private async waitForSlot(): Promise<void> {
    const { stop } = this.options;
    while (!stop.aborted && !this.options.hasRoom()) {
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }
}
