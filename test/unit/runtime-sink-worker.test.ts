/**
 * The sink worker with bulk rows: which batches a sink is given its bulk rows in, how many
 * bulk writes run at once (and that anything else runs alone), how queued items are combined
 * and their rejections split back, and what a failure or a stop does to writes in flight.
 * Writes are resolved by hand, so every interleaving here is chosen, not timed.
 */
import { describe, expect, it } from "vitest";
import { seqPosition } from "../../src/model/position.js";
import type { BulkRows, Rejection, SinkEvent, SourceCheckpoint } from "../../src/runtime/contracts.js";
import { RejectedEventError } from "../../src/runtime/failures.js";
import { silentLogger } from "../../src/runtime/log.js";
import type { SinkCounters } from "../../src/runtime/metrics.js";
import { SinkWorker, type SinkWorkItem } from "../../src/runtime/sink-worker.js";
import { defaultTarget } from "../../src/runtime/start-values.js";
import {
  bulkIds,
  copyText,
  HandSink,
  idsOf,
  nextTurn,
  ORDER_COLUMNS,
  ORDER_TYPES,
  snapshotRows,
  watch,
  type BulkShape,
  type HandSinkOptions,
  type Reads,
} from "./runtime-bulk-fixtures.js";
import { fastRetry, orderEvent } from "./runtime-fixtures.js";

const PG_COPY: BulkRows["format"][] = ["pg-copy-data"];

interface TestItem {
  readonly item: SinkWorkItem;
  readonly events: readonly SinkEvent[];
  /** Reads of the item's events getter. */
  readonly reads: Reads;
  /** Each call of the item's onDurable. */
  readonly durable: (readonly Rejection[])[];
}

/** A work item of snapshot rows with these ids, carrying them in bulk; its events getter counts its reads. */
function bulkItem(ids: readonly number[], options: BulkShape & { checkpoints?: Record<string, SourceCheckpoint> } = {}): TestItem {
  const events: SinkEvent[] = snapshotRows(ids).map((event) => ({ event, target: defaultTarget(event) }));
  const reads: Reads = { count: 0 };
  const durable: (readonly Rejection[])[] = [];
  const item: SinkWorkItem = {
    bulk: copyText(
      events.map((e) => e.event),
      options,
    ),
    get events() {
      reads.count++;
      return events;
    },
    ...(options.checkpoints !== undefined ? { checkpoints: options.checkpoints } : {}),
    onDurable: (rejections) => durable.push(rejections),
  };
  return { item, events, reads, durable };
}

/** A work item of change events with these ids, without bulk rows. */
function eventItem(ids: readonly number[]): TestItem {
  const events: SinkEvent[] = ids.map((id) => {
    const event = orderEvent(id);
    return { event, target: defaultTarget(event) };
  });
  const durable: (readonly Rejection[])[] = [];
  return { item: { events, onDurable: (rejections) => durable.push(rejections) }, events, reads: { count: 0 }, durable };
}

function workerOf(sinkOptions: HandSinkOptions, maxEventsPerWrite?: number) {
  const sink = new HandSink(sinkOptions);
  const counters: SinkCounters = { events: 0, writes: 0, rejected: 0, retries: 0, failing: false };
  const fatal: unknown[] = [];
  const worker = new SinkWorker("out", sink, {
    retry: fastRetry,
    log: silentLogger,
    counters,
    onFatal: (error) => fatal.push(error),
    ...(maxEventsPerWrite !== undefined ? { maxEventsPerWrite } : {}),
  });
  const enqueue = (...items: TestItem[]): void => {
    for (const { item } of items) worker.enqueue(item);
  };
  return { sink, worker, counters, fatal, enqueue };
}

/** Takes the first write slot(s) with one-row bulk items, so what is enqueued next waits behind them. */
async function occupy(setup: ReturnType<typeof workerOf>, slots: number, firstId = 1000): Promise<TestItem[]> {
  const blockers: TestItem[] = [];
  for (let slot = 0; slot < slots; slot++) {
    const blocker = bulkItem([firstId + slot]);
    setup.enqueue(blocker);
    // One turn each, or the worker would take the next blocker into the same write.
    await nextTurn();
    blockers.push(blocker);
  }
  expect(setup.sink.pending).toHaveLength(slots);
  return blockers;
}

describe("sink worker: parallel bulk writes", () => {
  it("runs up to parallelBulkWrites bulk writes at once; the next starts when one resolves, in any order", async () => {
    // Two rows per write at most: each item is a write of its own.
    const { sink, worker, counters, enqueue } = workerOf({ bulkFormats: PG_COPY, parallelBulkWrites: 2 }, 2);
    const a = bulkItem([1, 2]);
    const b = bulkItem([3, 4]);
    const c = bulkItem([5, 6]);
    enqueue(a, b, c);
    const idle = watch(worker.idle());
    await nextTurn();
    expect(sink.writes.map((write) => idsOf(write.batch))).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect(sink.running).toBe(2);
    expect(worker.queued).toBe(1);

    // The second resolves first: its item is durable, and the third write takes its slot.
    sink.writes[1]!.resolve();
    await nextTurn();
    expect(b.durable).toEqual([[]]);
    expect(a.durable).toEqual([]);
    expect(sink.writes).toHaveLength(3);
    expect(idsOf(sink.writes[2]!.batch)).toEqual([5, 6]);
    expect(sink.running).toBe(2);
    expect(idle.done).toBe(false);

    sink.writes[2]!.resolve();
    await nextTurn();
    expect(c.durable).toEqual([[]]);
    expect(idle.done).toBe(false);

    sink.writes[0]!.resolve();
    await worker.idle();
    expect([a.durable, b.durable, c.durable]).toEqual([[[]], [[]], [[]]]);
    expect(sink.maxRunning).toBe(2);
    expect(counters).toMatchObject({ writes: 3, events: 6, rejected: 0 });
    // Nothing read the events: the counts came from the bulk rows.
    expect([a.reads.count, b.reads.count, c.reads.count]).toEqual([0, 0, 0]);
  });

  it("a write that is not bulk waits for every running bulk write and runs alone; a bulk item behind it waits for it", async () => {
    const { sink, worker, enqueue } = workerOf({ bulkFormats: PG_COPY, parallelBulkWrites: 2 }, 2);
    const bulk1 = bulkItem([1, 2]);
    const bulk2 = bulkItem([3, 4]);
    const changes = eventItem([5, 6]);
    const bulk3 = bulkItem([7, 8]);
    enqueue(bulk1, bulk2, changes, bulk3);
    await nextTurn();
    expect(sink.writes).toHaveLength(2);

    sink.writes[0]!.resolve();
    await nextTurn();
    // One bulk write is still running: the change events wait, and so does the bulk item behind them.
    expect(sink.writes).toHaveLength(2);
    expect(worker.queued).toBe(2);

    sink.writes[1]!.resolve();
    await nextTurn();
    expect(sink.writes).toHaveLength(3);
    const alone = sink.writes[2]!;
    expect(idsOf(alone.batch)).toEqual([5, 6]);
    expect(alone.batch.bulk).toBeUndefined();
    expect(alone.runningAtStart).toBe(1);

    await nextTurn();
    // Nothing joins it while it runs.
    expect(sink.writes).toHaveLength(3);
    expect(sink.running).toBe(1);

    alone.resolve();
    await nextTurn();
    expect(changes.durable).toEqual([[]]);
    expect(sink.writes).toHaveLength(4);
    expect(idsOf(sink.writes[3]!.batch)).toEqual([7, 8]);
    expect(sink.writes[3]!.batch.bulk).toBeDefined();
    expect(sink.writes[3]!.runningAtStart).toBe(1);

    sink.writes[3]!.resolve();
    await worker.idle();
    expect([bulk1.durable, bulk2.durable, changes.durable, bulk3.durable]).toEqual([[[]], [[]], [[]], [[]]]);
  });

  it("a parallel bulk write takes no item that is not bulk, even with room to spare", async () => {
    const setup = workerOf({ bulkFormats: PG_COPY, parallelBulkWrites: 2 });
    const { sink, worker, enqueue } = setup;
    await occupy(setup, 2);
    const rows = bulkItem([1, 2]);
    const changes = eventItem([3, 4]);
    enqueue(rows, changes);
    sink.writes[0]!.resolve();
    await nextTurn();
    expect(sink.writes).toHaveLength(3);
    expect(sink.writes[2]!.batch.bulk).toBe(rows.item.bulk);
    expect(worker.queued).toBe(1);

    sink.writes[1]!.resolve();
    sink.writes[2]!.resolve();
    await nextTurn();
    expect(sink.writes).toHaveLength(4);
    expect(idsOf(sink.writes[3]!.batch)).toEqual([3, 4]);
    expect(sink.writes[3]!.runningAtStart).toBe(1);
    sink.writes[3]!.resolve();
    await worker.idle();
    expect([rows.durable, changes.durable]).toEqual([[[]], [[]]]);
  });

  it("bulk items carrying checkpoints go in parallel too, each with its own (the sink stores them in order)", async () => {
    const { sink, worker, enqueue } = workerOf({ bulkFormats: PG_COPY, parallelBulkWrites: 3 }, 2);
    const first = bulkItem([1, 2], { checkpoints: { s: { position: seqPosition(2) } } });
    const second = bulkItem([3, 4], { checkpoints: { s: { position: seqPosition(4) } } });
    const third = bulkItem([5, 6], { checkpoints: { s: { position: seqPosition(6) } } });
    enqueue(first, second, third);
    await nextTurn();
    expect(sink.writes).toHaveLength(3);
    expect(sink.writes.map((write) => write.batch.checkpoints)).toEqual([2, 4, 6].map((seq) => ({ s: { position: seqPosition(seq) } })));
    expect(sink.writes.map((write) => write.batch.bulk)).toEqual([first.item.bulk, second.item.bulk, third.item.bulk]);
    for (const write of [...sink.writes].reverse()) write.resolve();
    await worker.idle();
    expect(sink.maxRunning).toBe(3);
    expect([first.reads.count, second.reads.count, third.reads.count]).toEqual([0, 0, 0]);
    expect([first.durable, second.durable, third.durable]).toEqual([[[]], [[]], [[]]]);
  });

  for (const parallelBulkWrites of [undefined, 1]) {
    it(`with parallelBulkWrites ${String(parallelBulkWrites)}, bulk items are written one at a time`, async () => {
      const { sink, worker, enqueue } = workerOf(
        { bulkFormats: PG_COPY, ...(parallelBulkWrites !== undefined ? { parallelBulkWrites } : {}) },
        2,
      );
      const items = [bulkItem([1, 2]), bulkItem([3, 4]), bulkItem([5, 6])];
      enqueue(...items);
      for (let n = 1; n <= 3; n++) {
        await nextTurn();
        expect(sink.writes).toHaveLength(n);
        expect(sink.running).toBe(1);
        // Still given as bulk rows: only the parallelism is off.
        expect(sink.writes[n - 1]!.batch.bulk).toBe(items[n - 1]!.item.bulk);
        sink.writes[n - 1]!.resolve();
      }
      await worker.idle();
      expect(sink.maxRunning).toBe(1);
      expect(items.map((item) => item.durable)).toEqual([[[]], [[]], [[]]]);
    });
  }

  it("a sink that takes parallel writes but not the format is given bulk items one at a time", async () => {
    const { sink, worker, enqueue } = workerOf({ parallelBulkWrites: 4 }, 2);
    const items = [bulkItem([1, 2]), bulkItem([3, 4])];
    enqueue(...items);
    await nextTurn();
    expect(sink.writes).toHaveLength(1);
    sink.writes[0]!.resolve();
    await nextTurn();
    expect(sink.writes).toHaveLength(2);
    sink.writes[1]!.resolve();
    await worker.idle();
    expect(sink.maxRunning).toBe(1);
    expect(sink.writes.every((write) => write.batch.bulk === undefined)).toBe(true);
  });
});

describe("sink worker: which sinks get bulk rows", () => {
  it("a sink that loads the format gets the bulk rows; the item's events are never read", async () => {
    const { sink, worker, counters, fatal, enqueue } = workerOf({ bulkFormats: PG_COPY, answer: () => [] });
    const rows = bulkItem([1, 2, 3]);
    enqueue(rows);
    await worker.idle();
    expect(sink.writes).toHaveLength(1);
    const batch = sink.writes[0]!.batch;
    expect(batch.bulk).toBe(rows.item.bulk);
    expect(rows.reads.count).toBe(0);
    expect(counters).toMatchObject({ writes: 1, events: 3, rejected: 0 });
    expect(rows.durable).toEqual([[]]);
    expect(fatal).toEqual([]);
    // The batch still has its events, made when the sink asks for them.
    expect(batch.events).toBe(rows.events);
    expect(rows.reads.count).toBe(1);
  });

  it("a sink without bulkFormats gets the events and no bulk rows", async () => {
    const { sink, worker, counters, enqueue } = workerOf({ answer: () => [] });
    const rows = bulkItem([1, 2, 3]);
    enqueue(rows);
    await worker.idle();
    const batch = sink.writes[0]!.batch;
    expect(batch.bulk).toBeUndefined();
    expect(batch.events).toBe(rows.events);
    expect(counters).toMatchObject({ writes: 1, events: 3 });
  });

  it("a sink that loads another format gets the events and no bulk rows", async () => {
    const { sink, worker, enqueue } = workerOf({ bulkFormats: PG_COPY, parallelBulkWrites: 2, answer: () => [] });
    // A format no sink of the project loads yet; the cast stands in for a future one.
    const rows = bulkItem([1, 2, 3], { format: "pg-binary" as BulkRows["format"] });
    enqueue(rows);
    await worker.idle();
    const batch = sink.writes[0]!.batch;
    expect(batch.bulk).toBeUndefined();
    expect(batch.events).toBe(rows.events);
  });
});

describe("sink worker: combining bulk items", () => {
  for (const parallelBulkWrites of [1, 2]) {
    it(`bulk items of one table queued behind ${parallelBulkWrites} running write(s) become one bulk write (parallelBulkWrites ${parallelBulkWrites})`, async () => {
      const setup = workerOf({ bulkFormats: PG_COPY, parallelBulkWrites });
      const { sink, worker, counters, enqueue } = setup;
      const blockers = await occupy(setup, parallelBulkWrites);
      const first = bulkItem([1, 2]);
      const second = bulkItem([3, 4, 5]);
      enqueue(first, second);
      await nextTurn();
      expect(sink.writes).toHaveLength(parallelBulkWrites);

      sink.writes[0]!.resolve();
      await nextTurn();
      expect(sink.writes).toHaveLength(parallelBulkWrites + 1);
      const combined = sink.writes.at(-1)!.batch;
      const bulk = combined.bulk!;
      expect(bulk.count).toBe(5);
      expect(bulk.format).toBe("pg-copy-data");
      expect(bulk.table).toBe("shop.orders");
      expect(bulk.columns).toBe(ORDER_COLUMNS);
      expect(bulk.types).toBe(ORDER_TYPES);
      // The very buffers, in order: nothing copied, nothing reordered.
      expect(bulk.data).toHaveLength(4);
      bulk.data.forEach((buffer, i) => expect(buffer).toBe([...first.item.bulk!.data, ...second.item.bulk!.data][i]));
      expect(bulkIds(bulk)).toEqual([1, 2, 3, 4, 5]);
      expect(combined.checkpoints).toBeUndefined();
      expect([first.reads.count, second.reads.count]).toEqual([0, 0]);

      for (const write of sink.pending) write.resolve();
      await worker.idle();
      expect([first.durable, second.durable]).toEqual([[[]], [[]]]);
      expect(blockers.map((blocker) => blocker.durable)).toEqual(blockers.map(() => [[]]));
      expect(counters).toMatchObject({ writes: parallelBulkWrites + 1, events: parallelBulkWrites + 5 });
      expect([first.reads.count, second.reads.count]).toEqual([0, 0]);
      // Asked for, the combined batch's events are both items' events, in order.
      expect(combined.events).toEqual([...first.events, ...second.events]);
    });
  }

  const differences: [string, BulkShape][] = [
    ["an equal but other columns array", { columns: [...ORDER_COLUMNS] }],
    ["an equal but other types array", { types: [...ORDER_TYPES] }],
    ["another table", { table: "shop.customers" }],
  ];
  for (const [what, shape] of differences) {
    it(`bulk items with ${what} are not combined: each keeps its bulk rows`, async () => {
      const setup = workerOf({ bulkFormats: PG_COPY, parallelBulkWrites: 2 });
      const { sink, worker, enqueue } = setup;
      await occupy(setup, 2);
      const first = bulkItem([1, 2]);
      const second = bulkItem([3, 4], shape);
      enqueue(first, second);
      sink.writes[0]!.resolve();
      await nextTurn();
      sink.writes[1]!.resolve();
      await nextTurn();
      const [a, b] = sink.writes.slice(-2).map((write) => write.batch);
      expect(a!.bulk).toBe(first.item.bulk);
      expect(b!.bulk).toBe(second.item.bulk);
      for (const write of sink.pending) write.resolve();
      await worker.idle();
      expect([first.durable, second.durable]).toEqual([[[]], [[]]]);
      expect([first.reads.count, second.reads.count]).toEqual([0, 0]);
    });
  }

  it("change events and bulk rows queued together go in separate writes, the bulk rows as bulk", async () => {
    const setup = workerOf({ bulkFormats: PG_COPY, parallelBulkWrites: 2 });
    const { sink, worker, enqueue } = setup;
    await occupy(setup, 1);
    const changes = eventItem([1, 2]);
    const rows = bulkItem([3, 4]);
    enqueue(changes, rows);
    sink.writes[0]!.resolve();
    await nextTurn();
    expect(sink.writes).toHaveLength(2);
    expect(sink.writes[1]!.batch.bulk).toBeUndefined();
    expect(sink.writes[1]!.batch.events).toEqual(changes.events);
    sink.writes[1]!.resolve();
    await nextTurn();
    expect(sink.writes).toHaveLength(3);
    expect(sink.writes[2]!.batch.bulk).toBe(rows.item.bulk);
    sink.writes[2]!.resolve();
    await worker.idle();
    expect(rows.reads.count).toBe(0);
  });

  it("maxEventsPerWrite counts bulk items by their rows, without reading their events", async () => {
    const setup = workerOf({ bulkFormats: PG_COPY, parallelBulkWrites: 1 }, 4);
    const { sink, worker, counters, enqueue } = setup;
    await occupy(setup, 1);
    const items = [bulkItem([1, 2]), bulkItem([3, 4]), bulkItem([5, 6])];
    enqueue(...items);
    sink.writes[0]!.resolve();
    await nextTurn();
    expect(bulkIds(sink.writes[1]!.batch.bulk!)).toEqual([1, 2, 3, 4]);
    sink.writes[1]!.resolve();
    await nextTurn();
    expect(bulkIds(sink.writes[2]!.batch.bulk!)).toEqual([5, 6]);
    sink.writes[2]!.resolve();
    await worker.idle();
    expect(items.map((item) => item.reads.count)).toEqual([0, 0, 0]);
    expect(counters).toMatchObject({ writes: 3, events: 7 });
  });

  it("rejections of a combined bulk write go back to each item with its own indexes", async () => {
    const setup = workerOf({ bulkFormats: PG_COPY, parallelBulkWrites: 2 });
    const { sink, worker, counters, fatal, enqueue } = setup;
    await occupy(setup, 2);
    const first = bulkItem([1, 2, 3]);
    const second = bulkItem([4, 5, 6]);
    const third = bulkItem([7]);
    enqueue(first, second, third);
    sink.writes[1]!.resolve();
    await nextTurn();
    const combined = sink.writes[2]!;
    expect(combined.batch.bulk!.count).toBe(7);
    // Out of order, as a sink may find them.
    combined.resolve([
      { index: 4, reason: "r4" },
      { index: 1, reason: "r1" },
      { index: 5, reason: "r5" },
    ]);
    sink.writes[0]!.resolve();
    await worker.idle();
    expect(first.durable).toEqual([[{ index: 1, reason: "r1" }]]);
    expect(second.durable).toEqual([
      [
        { index: 1, reason: "r4" },
        { index: 2, reason: "r5" },
      ],
    ]);
    expect(third.durable).toEqual([[]]);
    expect(counters).toMatchObject({ writes: 3, events: 2 + 7 - 3, rejected: 3 });
    expect(fatal).toEqual([]);
    expect([first.reads.count, second.reads.count, third.reads.count]).toEqual([0, 0, 0]);
  });

  it("a rejection in a bulk write that carries checkpoints stops the worker, naming the event", async () => {
    const { sink, worker, fatal, enqueue } = workerOf({ bulkFormats: PG_COPY, parallelBulkWrites: 2 });
    const rows = bulkItem([1, 2, 3], { checkpoints: { s: { position: seqPosition(3) } } });
    enqueue(rows);
    await nextTurn();
    sink.writes[0]!.resolve([{ index: 1, reason: "value too long" }]);
    await worker.idle();
    expect(fatal).toHaveLength(1);
    expect(fatal[0]).toBeInstanceOf(RejectedEventError);
    expect((fatal[0] as RejectedEventError).message).toContain("value too long");
    expect(rows.durable).toEqual([]);
  });
});

describe("sink worker: failures, stop and idle", () => {
  it("a fatal error in one of two parallel writes: onFatal once, the queue dropped, idle() after the other write", async () => {
    const { sink, worker, counters, fatal, enqueue } = workerOf({ bulkFormats: PG_COPY, parallelBulkWrites: 2 }, 2);
    const items = [bulkItem([1, 2]), bulkItem([3, 4]), bulkItem([5, 6]), bulkItem([7, 8])];
    enqueue(...items);
    await nextTurn();
    expect(sink.writes).toHaveLength(2);

    sink.writes[0]!.reject(new Error("disk full"));
    await nextTurn();
    expect(fatal).toHaveLength(1);
    expect((fatal[0] as Error).message).toBe("disk full");
    expect(worker.queued).toBe(0);
    // The other write is still running: not idle yet, and nothing new starts.
    const idle = watch(worker.idle());
    await nextTurn();
    expect(idle.done).toBe(false);
    expect(sink.writes).toHaveLength(2);

    sink.writes[1]!.resolve();
    await nextTurn();
    expect(idle.done).toBe(true);
    await worker.idle();
    expect(sink.writes).toHaveLength(2);
    expect(fatal).toHaveLength(1);
    // After a failure nothing more counts as durable, the write that finished included
    // (as with one write at a time); the dropped items are never written.
    expect(items.map((item) => item.durable)).toEqual([[], [], [], []]);
    expect(counters.writes).toBe(0);

    // A stopped worker takes nothing more.
    const late = bulkItem([9]);
    enqueue(late);
    await nextTurn();
    expect(sink.writes).toHaveLength(2);
    expect(worker.queued).toBe(0);
  });

  it("two parallel writes failing call onFatal once", async () => {
    const { sink, worker, fatal, enqueue } = workerOf({ bulkFormats: PG_COPY, parallelBulkWrites: 2 }, 2);
    enqueue(bulkItem([1, 2]), bulkItem([3, 4]));
    await nextTurn();
    sink.writes[1]!.reject(new Error("first"));
    sink.writes[0]!.reject(new Error("second"));
    await worker.idle();
    expect(fatal.map((error) => (error as Error).message)).toEqual(["first"]);
  });

  it("stop() drops the queue; idle() waits for the parallel writes already running", async () => {
    const { sink, worker, enqueue } = workerOf({ bulkFormats: PG_COPY, parallelBulkWrites: 2 }, 2);
    const items = [bulkItem([1, 2]), bulkItem([3, 4]), bulkItem([5, 6])];
    enqueue(...items);
    await nextTurn();
    worker.stop();
    expect(worker.queued).toBe(0);
    const idle = watch(worker.idle());
    sink.writes[0]!.resolve();
    await nextTurn();
    expect(idle.done).toBe(false);
    sink.writes[1]!.resolve();
    await nextTurn();
    expect(idle.done).toBe(true);
    expect(sink.writes).toHaveLength(2);
  });

  it("idle() resolves at once on a new worker, and otherwise only after the last parallel write", async () => {
    const { sink, worker, enqueue } = workerOf({ bulkFormats: PG_COPY, parallelBulkWrites: 2 }, 2);
    await worker.idle();
    enqueue(bulkItem([1, 2]), bulkItem([3, 4]));
    const idle = watch(worker.idle());
    await nextTurn();
    sink.writes[1]!.resolve();
    await nextTurn();
    expect(idle.done).toBe(false);
    // An item arriving while a write still runs takes the free slot.
    enqueue(bulkItem([5, 6]));
    await nextTurn();
    expect(sink.writes).toHaveLength(3);
    sink.writes[0]!.resolve();
    sink.writes[2]!.resolve();
    await nextTurn();
    expect(idle.done).toBe(true);
  });
});
