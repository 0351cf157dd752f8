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
 * The one exception to one write at a time: a sink that loads bulk rows (`bulkFormats`) and
 * says it can take several such writes at once (`parallelBulkWrites`) is given up to that many
 * in parallel, for items that are bulk snapshot rows. Their keys
 * are distinct (a snapshot reads each row once), so no order among them can matter; any other
 * item waits until every one of them is durable and then goes alone, so per-key order still
 * holds for the changes that follow a snapshot. Parallel writes complete in any order; the
 * checkpoint coordinator moves positions in order whatever order tickets complete in.
 *
 * The queue needs no bound of its own: the sink's lane (sink-lane.ts) hands it at most its
 * in-memory limit of items, and spools the rest or holds the source back. An item that
 * carries nothing (it only moves the sink's position past a stretch the flows left it nothing
 * of) costs no call to the sink.
 */
import { batchSize, type BulkRows, type Rejection, type SinkBatch, type SinkEvent, type SinkSchemaChange, type SinkWriter, type SourceCheckpoint, type SourceTransaction } from "./contracts.js";
import { RejectedEventError } from "./failures.js";
import type { RunLogger } from "./log.js";
import type { Metrics, SinkCounters } from "./metrics.js";
import { Outage, withRetry, type RetryPolicy } from "./retry.js";

export interface SinkWorkItem {
  /** The events; with `bulk`, possibly a getter that makes them only when read. */
  readonly events: readonly SinkEvent[];
  /** The events' rows in a bulk format, when they are the whole source batch untouched. */
  readonly bulk?: BulkRows;
  /** For a sink that stores checkpoints in its own transactions: the ones this item carries. */
  readonly checkpoints?: Readonly<Record<string, SourceCheckpoint>>;
  /** Part of a source transaction larger than one batch: written alone, never combined. */
  readonly transaction?: SourceTransaction;
  /** Schema changes to apply before the item's events: such an item starts a write of its own. */
  readonly schemaChanges?: readonly SinkSchemaChange[];
  /** Called once, when the write that carried the item resolved; indexes are the item's own. */
  readonly onDurable: (rejections: readonly Rejection[]) => void;
}

export interface SinkWorkerOptions {
  readonly retry: RetryPolicy;
  readonly log: RunLogger;
  readonly counters: SinkCounters;
  /** Where errors are counted by code and each write is told of (the metrics endpoint). */
  readonly metrics?: Pick<Metrics, "countError" | "writes">;
  /** The write failed for good; the runner stops the pipeline. */
  readonly onFatal: (error: unknown) => void;
  readonly maxEventsPerWrite?: number;
  /**
   * Awaited before every attempt of a write: the runner holds writes here while the pipeline's
   * lock is being taken again (run.ts); it rejects when the run is failing.
   */
  readonly beforeWrite?: () => Promise<void>;
}

const DEFAULT_MAX_EVENTS_PER_WRITE = 10_000;

export class SinkWorker {
  private queue: SinkWorkItem[] = [];
  private looping = false;
  /** Writes started and not resolved. */
  private running = 0;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];
  /** Wakes the loop when an item arrives or a write resolves. */
  private wakeLoop: (() => void) | undefined;
  private readonly bulkFormats: ReadonlySet<string>;
  private readonly parallel: number;
  /** The sink's outage, shared by the writes running at once; a successful write ends it. */
  private readonly outage: Outage;

  constructor(
    readonly name: string,
    private readonly writer: SinkWriter,
    private readonly options: SinkWorkerOptions,
  ) {
    this.bulkFormats = new Set(writer.bulkFormats ?? []);
    this.parallel = Math.max(1, Math.floor(writer.parallelBulkWrites ?? 1));
    this.outage = new Outage(options.retry);
  }

  enqueue(item: SinkWorkItem): void {
    if (this.stopped) return;
    this.queue.push(item);
    if (!this.looping) void this.loop();
    else this.wake();
  }

  /** Items waiting, the ones being written not included. */
  get queued(): number {
    return this.queue.length;
  }

  /** Resolves when the queue is empty and no write is running. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** After a fatal error: queued items are dropped (they were never durable, nothing moves past them). */
  stop(): void {
    this.stopped = true;
    this.queue = [];
    this.wake();
    this.settle();
  }

  private async loop(): Promise<void> {
    this.looping = true;
    try {
      while (!this.stopped) {
        const head = this.queue[0];
        if (head === undefined) {
          if (this.running === 0) break;
          await this.changed();
        } else if (this.parallel > 1 && this.parallelizable(head)) {
          if (this.running >= this.parallel) {
            await this.changed();
            continue;
          }
          const items = this.take(true);
          this.running++;
          void this.write(items).finally(() => {
            this.running--;
            this.wake();
            this.settle();
          });
        } else if (this.running > 0) {
          await this.changed();
        } else {
          this.running++;
          try {
            await this.write(this.take(false));
          } finally {
            this.running--;
          }
        }
      }
    } finally {
      this.looping = false;
      this.settle();
    }
  }

  /** One write of `items`; a failure stops the worker and the pipeline. */
  private async write(items: readonly SinkWorkItem[]): Promise<void> {
    const batch = this.combine(items);
    if (isEmpty(batch)) {
      // Items that only move a position through a stretch the flows left this sink nothing
      // of (sink-lane.ts): durable as they are, in their turn.
      if (!this.stopped) distribute(items, []);
      return;
    }
    try {
      const beforeWrite = this.options.beforeWrite;
      const attempt = async (): Promise<readonly Rejection[]> => {
        if (beforeWrite !== undefined) await beforeWrite();
        return this.writer.write(batch);
      };
      const started = performance.now();
      const rejections = await withRetry(`writing to sink ${this.name}`, attempt, {
        policy: this.options.retry,
        log: this.options.log,
        onRetry: (error) => {
          this.options.counters.retries++;
          this.options.counters.failing = true;
          this.options.metrics?.countError(error);
        },
        outage: this.outage,
      });
      this.outage.recovered();
      this.options.counters.failing = false;
      if (this.stopped) return;
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
      counters.events += items.reduce((sum, item) => sum + countOf(item), 0) - rejections.length;
      counters.rejected += rejections.length;
      this.options.metrics?.writes?.written(this.name, batchSize(batch), (performance.now() - started) / 1000);
      distribute(items, rejections);
    } catch (error) {
      if (this.stopped) return;
      this.options.metrics?.countError(error);
      this.stopped = true;
      this.queue = [];
      this.wake();
      this.options.onFatal(error);
    }
  }

  /** A bulk item this sink loads, not part of a larger source transaction: it may go in parallel. */
  private parallelizable(item: SinkWorkItem): boolean {
    return item.transaction === undefined && item.schemaChanges === undefined && this.accepted(item) !== undefined;
  }

  private accepted(item: SinkWorkItem): BulkRows | undefined {
    return item.bulk !== undefined && this.bulkFormats.has(item.bulk.format) ? item.bulk : undefined;
  }

  /**
   * The items of the next write: the oldest, and as many more of its kind as fit. Bulk rows a
   * sink loads are only combined with more of the same table and columns, and events with
   * events, so that a mixed queue does not lose the bulk path to a combined batch of events.
   */
  private take(parallel: boolean): SinkWorkItem[] {
    const limit = this.options.maxEventsPerWrite ?? DEFAULT_MAX_EVENTS_PER_WRITE;
    const first = this.queue[0]!;
    // A part of a large source transaction goes alone: the sink keeps its transaction open
    // across such writes, which another batch's events must not join.
    if (first.transaction !== undefined) return this.queue.splice(0, 1);
    const head = this.accepted(first);
    let count = countOf(first);
    let n = 1;
    while (n < this.queue.length) {
      const next = this.queue[n]!;
      if (next.transaction !== undefined || next.schemaChanges !== undefined) break;
      if (parallel && !this.parallelizable(next)) break;
      if (!sameBulk(head, this.accepted(next))) break;
      if (count + countOf(next) > limit) break;
      count += countOf(next);
      n++;
    }
    return this.queue.splice(0, n);
  }

  /**
   * One batch of the items. Bulk rows go along when every item has them, in a format the sink
   * takes, of one table with the same columns; the events are then made only if the sink reads them.
   */
  private combine(items: readonly SinkWorkItem[]): SinkBatch {
    let checkpoints: Record<string, SourceCheckpoint> | undefined;
    // Items of one source come in order, so the last checkpoint of a source is its newest.
    for (const item of items) if (item.checkpoints !== undefined) checkpoints = { ...checkpoints, ...item.checkpoints };
    const events = (): readonly SinkEvent[] => (items.length === 1 ? items[0]!.events : items.flatMap((item) => item.events));
    const bulk = combinedBulk(items.map((item) => this.accepted(item)));
    // Only a lone item carries a transaction, and only the first schema changes (see take).
    const transaction = items.length === 1 ? items[0]!.transaction : undefined;
    const schemaChanges = items[0]!.schemaChanges;
    const extra = {
      ...(checkpoints !== undefined ? { checkpoints } : {}),
      ...(transaction !== undefined ? { transaction } : {}),
      ...(schemaChanges !== undefined ? { schemaChanges } : {}),
    };
    if (bulk === undefined) return { events: events(), ...extra };
    let made: readonly SinkEvent[] | undefined;
    return {
      bulk,
      get events() {
        return (made ??= events());
      },
      ...extra,
    };
  }

  private changed(): Promise<void> {
    return new Promise((resolve) => (this.wakeLoop = resolve));
  }

  private wake(): void {
    const wake = this.wakeLoop;
    this.wakeLoop = undefined;
    wake?.();
  }

  private isIdle(): boolean {
    return !this.looping && this.running === 0 && (this.queue.length === 0 || this.stopped);
  }

  private settle(): void {
    if (!this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

/** A write that would carry nothing: no event, checkpoint, transaction end or schema change. */
function isEmpty(batch: SinkBatch): boolean {
  return batch.bulk === undefined && batch.checkpoints === undefined && batch.transaction === undefined && batch.schemaChanges === undefined && batch.events.length === 0;
}

function countOf(item: SinkWorkItem): number {
  return item.bulk !== undefined ? item.bulk.count : item.events.length;
}

/** Both absent, or bulk rows that can be loaded as one. */
function sameBulk(a: BulkRows | undefined, b: BulkRows | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.format === b.format && a.table === b.table && a.columns === b.columns && a.types === b.types;
}

/** The items' bulk rows as one, when they can be: same format, table, columns and types. */
function combinedBulk(bulks: readonly (BulkRows | undefined)[]): BulkRows | undefined {
  const first = bulks[0];
  if (first === undefined) return undefined;
  if (bulks.length === 1) return first;
  let count = 0;
  const data: Buffer[] = [];
  for (const bulk of bulks) {
    if (bulk === undefined || bulk.format !== first.format || bulk.table !== first.table || bulk.columns !== first.columns || bulk.types !== first.types) return undefined;
    count += bulk.count;
    for (const buffer of bulk.data) data.push(buffer);
  }
  return { format: first.format, table: first.table, columns: first.columns, types: first.types, data, count };
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
    const end = offset + countOf(item);
    const own: Rejection[] = [];
    while (next < sorted.length && sorted[next]!.index < end) {
      const rejection = sorted[next++]!;
      own.push({ index: rejection.index - offset, reason: rejection.reason });
    }
    item.onDurable(own);
    offset = end;
  }
}
