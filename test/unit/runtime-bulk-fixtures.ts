/**
 * Fakes for the bulk-rows tests: snapshot rows of `shop.orders` both as events and as COPY
 * text, batches whose events getter counts its reads (the runtime must not read it when a
 * sink loads the rows as they are), and a sink whose writes the test resolves by hand, which
 * records how many writes were running when each one started.
 */
import type { ChangeEvent } from "../../src/model/event.js";
import type { BulkRows, Rejection, SinkBatch, SinkWriter, SourceBatch } from "../../src/runtime/contracts.js";
import { defaultTarget } from "../../src/runtime/start-values.js";
import { deferred, orderEvent } from "./runtime-fixtures.js";

/** One array for every chunk of the table, as a snapshot source shares them. */
export const ORDER_COLUMNS: readonly string[] = ["id", "amount", "status"];
export const ORDER_TYPES: readonly string[] = ["integer", "numeric(12,2)", "text"];

export interface BulkShape {
  readonly table?: string;
  readonly columns?: readonly string[];
  readonly types?: readonly string[];
  readonly format?: BulkRows["format"];
}

/** Snapshot (`read`) events of `shop.orders` with these ids. */
export function snapshotRows(ids: readonly number[]): ChangeEvent[] {
  return ids.map((id) => orderEvent(id, { op: "read" }));
}

/**
 * The events' rows in COPY text, cut into two buffers in the middle of a line: the bytes may
 * be split anywhere, and a sink must only ever see them in order. (Unframed: the runtime never
 * looks inside bulk rows, so these tests read them as plain lines.)
 */
export function copyText(events: readonly ChangeEvent[], shape: BulkShape = {}): BulkRows {
  const text = events.map((event) => `${String(event.after!["id"])}\t${String(event.after!["amount"])}\t${String(event.after!["status"])}\n`).join("");
  const bytes = Buffer.from(text, "utf8");
  const cut = Math.floor(bytes.length / 2) + 1;
  return {
    format: shape.format ?? "pg-copy-data",
    table: shape.table ?? defaultTarget(events[0]!),
    columns: shape.columns ?? ORDER_COLUMNS,
    types: shape.types ?? ORDER_TYPES,
    data: [bytes.subarray(0, cut), bytes.subarray(cut)],
    count: events.length,
  };
}

/** The ids the COPY text holds, in order (the first field of each line). */
export function bulkIds(bulk: BulkRows): number[] {
  return Buffer.concat(bulk.data)
    .toString("utf8")
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => Number(line.split("\t")[0]));
}

/** How often an events getter was read. */
export interface Reads {
  count: number;
}

/** A source batch of snapshot rows that carries them in bulk as well; its events getter counts its reads. */
export function bulkSourceBatch(ids: readonly number[], shape: BulkShape = {}): { batch: SourceBatch; events: ChangeEvent[]; reads: Reads } {
  const events = snapshotRows(ids);
  const reads: Reads = { count: 0 };
  const batch: SourceBatch = {
    get events() {
      reads.count++;
      return events;
    },
    bulk: copyText(events, shape),
    checkpoint: { position: events.at(-1)!.source.position },
  };
  return { batch, events, reads };
}

export interface HandWrite {
  readonly batch: SinkBatch;
  /** Writes running when this one started, itself included. */
  readonly runningAtStart: number;
  /** The write's promise settled (the sink's view: it is no longer running). */
  settled: boolean;
  resolve(rejections?: readonly Rejection[]): void;
  reject(error: unknown): void;
}

export interface HandSinkOptions {
  readonly bulkFormats?: readonly BulkRows["format"][];
  readonly parallelBulkWrites?: number;
  /** Resolve each write at once with this answer instead of waiting for the test. */
  readonly answer?: (batch: SinkBatch) => readonly Rejection[];
}

/** A sink whose writes resolve when the test says so. */
export class HandSink implements SinkWriter {
  readonly writes: HandWrite[] = [];
  running = 0;
  maxRunning = 0;
  readonly bulkFormats?: readonly BulkRows["format"][];
  readonly parallelBulkWrites?: number;

  constructor(private readonly options: HandSinkOptions = {}) {
    if (options.bulkFormats !== undefined) this.bulkFormats = options.bulkFormats;
    if (options.parallelBulkWrites !== undefined) this.parallelBulkWrites = options.parallelBulkWrites;
  }

  async start(): Promise<void> {}

  async close(): Promise<void> {}

  write(batch: SinkBatch): Promise<readonly Rejection[]> {
    const done = deferred<readonly Rejection[]>();
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    const write: HandWrite = {
      batch,
      runningAtStart: this.running,
      settled: false,
      resolve: (rejections = []) => done.resolve(rejections),
      reject: (error) => done.reject(error),
    };
    this.writes.push(write);
    if (this.options.answer !== undefined) done.resolve(this.options.answer(batch));
    return done.promise.finally(() => {
      this.running--;
      write.settled = true;
    });
  }

  /** Writes started and not settled. */
  get pending(): HandWrite[] {
    return this.writes.filter((write) => !write.settled);
  }
}

/** The ids a write carried: from its bulk rows when it has them (so its events are not made), else from its events. */
export function idsOf(batch: SinkBatch): number[] {
  if (batch.bulk !== undefined) return bulkIds(batch.bulk);
  return batch.events.map((sinkEvent) => Number(sinkEvent.event.key["id"]));
}

/** Lets every promise callback queued so far run (the worker's loop needs no timers). */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Whether a promise has resolved yet, readable at any time. */
export function watch(promise: Promise<unknown>): { readonly done: boolean } {
  const state = { done: false };
  void promise.then(() => {
    state.done = true;
  });
  return state;
}
