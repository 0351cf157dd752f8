/**
 * One sink's writer loop: a queue of work items (each one source batch's events for this sink)
 * written one `write` at a time, in order — the contract every sink relies on to keep per-key
 * order without locks of its own.
 *
 * When items pile up behind a slow write, the next write takes all of them at once (up to
 * `maxEventsPerWrite`): a sink that pays a fixed cost per write (an fsync, a transaction, a
 * round trip) then pays it once per backlog instead of once per batch, which is how a slow
 * sink catches up instead of falling further behind. Rejections the sink returns are split
 * back to the items they belong to.
 *
 * The queue needs no bound of its own: every item belongs to a batch that holds one of its
 * source's in-flight slots, so the total is bounded by sources × in-flight limit.
 */
import type { Rejection, SinkBatch, SinkEvent, SinkWriter, SourceCheckpoint } from "./contracts.js";
import { RejectedEventError } from "./failures.js";
import type { RunLogger } from "./log.js";
import type { SinkCounters } from "./metrics.js";
import { withRetry, type RetryPolicy } from "./retry.js";

export interface SinkWorkItem {
  readonly events: readonly SinkEvent[];
  /** For a sink that stores checkpoints in its own transactions: the ones this item carries. */
  readonly checkpoints?: Readonly<Record<string, SourceCheckpoint>>;
  /** Called once, when the write that carried the item resolved; indexes are the item's own. */
  readonly onDurable: (rejections: readonly Rejection[]) => void;
}

export interface SinkWorkerOptions {
  readonly retry: RetryPolicy;
  readonly log: RunLogger;
  readonly counters: SinkCounters;
  /** The write failed for good; the runner stops the pipeline. */
  readonly onFatal: (error: unknown) => void;
  readonly maxEventsPerWrite?: number;
}

const DEFAULT_MAX_EVENTS_PER_WRITE = 10_000;

export class SinkWorker {
  private queue: SinkWorkItem[] = [];
  private writing = false;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    readonly name: string,
    private readonly writer: SinkWriter,
    private readonly options: SinkWorkerOptions,
  ) {}

  enqueue(item: SinkWorkItem): void {
    if (this.stopped) return;
    this.queue.push(item);
    if (!this.writing) void this.loop();
  }

  /** Items waiting, the one being written not included. */
  get queued(): number {
    return this.queue.length;
  }

  /** Resolves when the queue is empty and no write is running. */
  idle(): Promise<void> {
    if (!this.writing && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** After a fatal error: queued items are dropped (they were never durable, nothing moves past them). */
  stop(): void {
    this.stopped = true;
    this.queue = [];
    if (!this.writing) this.notifyIdle();
  }

  private async loop(): Promise<void> {
    this.writing = true;
    try {
      while (this.queue.length > 0 && !this.stopped) {
        const items = this.take();
        const batch = combine(items);
        const rejections = await withRetry(`writing to sink ${this.name}`, () => this.writer.write(batch), {
          policy: this.options.retry,
          log: this.options.log,
          onRetry: () => this.options.counters.retries++,
        });
        if (this.stopped) break;
        if (rejections.length > 0 && batch.checkpoints !== undefined) {
          // The contract: a sink that rejects any event of a batch does not store the batch's
          // checkpoints. Nothing of this write may count as durable then, or the source would
          // be acknowledged past a position that was never stored. The runner only hands a
          // sink checkpoints when there is no dead-letter sink, so this stops the pipeline.
          const first = rejections[0]!;
          throw new RejectedEventError(batch.events[first.index]!.event, first.reason, `sink ${this.name}`);
        }
        const counters = this.options.counters;
        counters.writes++;
        counters.events += batch.events.length - rejections.length;
        counters.rejected += rejections.length;
        distribute(items, rejections);
      }
    } catch (error) {
      this.stopped = true;
      this.queue = [];
      this.options.onFatal(error);
    } finally {
      this.writing = false;
      if (this.queue.length === 0 || this.stopped) this.notifyIdle();
    }
  }

  /** The items of the next write: the oldest, and as many more as fit. */
  private take(): SinkWorkItem[] {
    const limit = this.options.maxEventsPerWrite ?? DEFAULT_MAX_EVENTS_PER_WRITE;
    let count = this.queue[0]!.events.length;
    let n = 1;
    while (n < this.queue.length && count + this.queue[n]!.events.length <= limit) {
      count += this.queue[n]!.events.length;
      n++;
    }
    return this.queue.splice(0, n);
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

function combine(items: readonly SinkWorkItem[]): SinkBatch {
  if (items.length === 1) {
    const only = items[0]!;
    return only.checkpoints === undefined ? { events: only.events } : { events: only.events, checkpoints: only.checkpoints };
  }
  const events: SinkEvent[] = [];
  let checkpoints: Record<string, SourceCheckpoint> | undefined;
  for (const item of items) {
    for (const event of item.events) events.push(event);
    // Items of one source come in order, so the last checkpoint of a source is its newest.
    if (item.checkpoints !== undefined) checkpoints = { ...checkpoints, ...item.checkpoints };
  }
  return checkpoints === undefined ? { events } : { events, checkpoints };
}

function distribute(items: readonly SinkWorkItem[], rejections: readonly Rejection[]): void {
  if (items.length === 1) {
    items[0]!.onDurable(rejections);
    return;
  }
  const sorted = rejections.length > 1 ? [...rejections].sort((a, b) => a.index - b.index) : rejections;
  let offset = 0;
  let next = 0;
  for (const item of items) {
    const end = offset + item.events.length;
    const own: Rejection[] = [];
    while (next < sorted.length && sorted[next]!.index < end) {
      const rejection = sorted[next++]!;
      own.push({ index: rejection.index - offset, reason: rejection.reason });
    }
    item.onDurable(own);
    offset = end;
  }
}
