/**
 * Bulk rows through the pipeline graph: a source batch's bulk rows reach a sink that loads
 * them only through a flow without steps, and then its events are never made; a flow with
 * steps, a sink that does not load the format, a sink fed by two flows and a rejection all
 * make the events. Real graph, flows, workers and coordinator; only the sinks are fakes.
 */
import { describe, expect, it } from "vitest";
import { CheckpointCoordinator } from "../../src/runtime/checkpoint-coordinator.js";
import { batchSize, type Rejection, type SchemaChange, type SinkBatch, type SourceBatch, type SourceCheckpoint } from "../../src/runtime/contracts.js";
import { checkpointsInSink, PipelineGraph, sinkHeldPositions, sinksOfSources } from "../../src/runtime/graph.js";
import { silentLogger } from "../../src/runtime/log.js";
import { Metrics } from "../../src/runtime/metrics.js";
import { SinkLane } from "../../src/runtime/sink-lane.js";
import { SinkWorker } from "../../src/runtime/sink-worker.js";
import { resolveStartValues } from "../../src/runtime/start-values.js";
import { compileFlow } from "../../src/runtime/steps.js";
import { bulkIds, bulkSourceBatch, HandSink, idsOf, nextTurn, ORDER_COLUMNS, snapshotRows, type HandSinkOptions } from "./runtime-bulk-fixtures.js";
import { fastRetry, MemoryStore, orderEvent, planOf } from "./runtime-fixtures.js";

const LOADS_BULK: HandSinkOptions = { bulkFormats: ["pg-copy-data"], parallelBulkWrites: 2, answer: () => [] };
const EVENTS_ONLY: HandSinkOptions = { answer: () => [] };

/** The graph of a pipeline, with a hand sink per sink of the plan. */
function graphOf(text: string, sinkOptions: Record<string, HandSinkOptions>) {
  const plan = planOf(text);
  const startValues = resolveStartValues(plan, () => undefined);
  const flows = plan.flows.map((flow) => compileFlow(flow, { scope: startValues.scope, baseDir: "/tmp", log: silentLogger }));
  const metrics = new Metrics(
    plan.sources.map((source) => source.name),
    plan.sinks.map((sink) => sink.name),
  );
  const fatal: unknown[] = [];
  const store = new MemoryStore();
  const acknowledged: SourceCheckpoint[] = [];
  const storedBySink = checkpointsInSink(plan);
  const coordinator = new CheckpointCoordinator({
    store,
    sources: new Map(
      plan.sources.map((source) => [
        source.name,
        { sinks: sinksOfSources(plan).get(source.name) ?? [], storedBySink: storedBySink.get(source.name) === true, holder: sinkHeldPositions(plan).get(source.name) ?? null },
      ]),
    ),
    initial: {},
    acknowledge: async (_source, checkpoint) => {
      acknowledged.push(checkpoint);
    },
    onFatal: (error) => fatal.push(error),
    retry: fastRetry,
    log: silentLogger,
  });
  const sinks = new Map<string, HandSink>();
  const workers = new Map<string, SinkWorker>();
  for (const sink of plan.sinks) {
    const writer = new HandSink(sinkOptions[sink.name] ?? EVENTS_ONLY);
    sinks.set(sink.name, writer);
    workers.set(
      sink.name,
      new SinkWorker(sink.name, writer, { retry: fastRetry, log: silentLogger, counters: metrics.sink(sink.name), onFatal: (error) => fatal.push(error) }),
    );
  }
  const lanes = new Map<string, SinkLane>();
  let graph: PipelineGraph | undefined;
  for (const [name, worker] of workers) {
    lanes.set(
      name,
      new SinkLane({
        name,
        worker,
        sinkDurable: (source, sink, checkpoint, seq) => coordinator.sinkDurable(source, sink, checkpoint, seq),
        memoryItems: 1000,
        rejected: (item, rejections, done) => graph!.rejected(name, item, rejections, done),
        onRoom: () => {},
      }),
    );
  }
  graph = new PipelineGraph({
    flows,
    lanes,
    workers,
    deadLetter: plan.pipeline.dead_letter,
    storedBySink,
    checkpointSink: plan.pipeline.checkpoint.kind === "file" ? null : plan.pipeline.checkpoint.sink,
    metrics,
    onFatal: (error) => fatal.push(error),
  }, plan);
  const settle = async (): Promise<void> => {
    await Promise.all([...lanes.values()].map((lane) => lane.idle()));
    await Promise.all([...workers.values()].map((worker) => worker.idle()));
    await coordinator.idle();
  };
  /** Every batch the sink was given. */
  const written = (sink: string): SinkBatch[] => sinks.get(sink)!.writes.map((write) => write.batch);
  return { graph, sinks, metrics, fatal, store, acknowledged, settle, written };
}

/** The source's own positions saved, without its sinks' (`s/SINK`). */
function sourceSaves(store: MemoryStore): SourceCheckpoint[] {
  return store.saves.flatMap((save) => (save["s"] === undefined ? [] : [save["s"]]));
}

const ONE_SINK = `
  source s = jsonl { path: "in.jsonl" }
  sink out = discard {}
`;

describe("bulk rows through the graph", () => {
  it("a flow without steps hands the bulk rows to a sink that loads them; the batch's events are never read", async () => {
    const { graph, metrics, fatal, store, settle, written } = graphOf(`${ONE_SINK} flow s -> out`, { out: LOADS_BULK });
    const { batch, events, reads } = bulkSourceBatch([1, 2, 3]);
    expect(graph.dispatch("s", batch)).toBe(true);
    await settle();
    expect(reads.count).toBe(0);
    const [given] = written("out");
    expect(written("out")).toHaveLength(1);
    expect(given!.bulk).toBe(batch.bulk);
    expect(given!.checkpoints).toBeUndefined();
    expect(metrics.sink("out")).toMatchObject({ writes: 1, events: 3, rejected: 0 });
    // Durable, so the position moved.
    expect(store.saves).toEqual([{ s: batch.checkpoint }]);
    expect(fatal).toEqual([]);
    // The sink may still ask for the events: the source's, with their default target.
    expect(given!.events.map((e) => [e.event, e.target])).toEqual(events.map((event) => [event, "shop.orders"]));
    expect(reads.count).toBe(1);
  });

  it("a flow with a step makes the events; the sink gets only the kept ones, without bulk rows", async () => {
    const { graph, metrics, store, settle, written } = graphOf(`${ONE_SINK} flow s | filter row.id > 1 -> out`, { out: LOADS_BULK });
    const { batch, reads } = bulkSourceBatch([1, 2, 3]);
    graph.dispatch("s", batch);
    await settle();
    expect(reads.count).toBeGreaterThan(0);
    expect(written("out")).toHaveLength(1);
    const given = written("out")[0]!;
    expect(given.bulk).toBeUndefined();
    expect(idsOf(given)).toEqual([2, 3]);
    expect(metrics.sink("out").events).toBe(2);
    expect(store.saves).toEqual([{ s: batch.checkpoint }]);
  });

  it("one source, two sinks: the one that loads the rows gets them, the other the events, made once", async () => {
    const { graph, metrics, store, settle, written } = graphOf(
      `source s = jsonl { path: "in.jsonl" }
       sink bulk = discard {}
       sink plain = discard {}
       flow s -> bulk, plain`,
      { bulk: LOADS_BULK, plain: EVENTS_ONLY },
    );
    const { batch, events, reads } = bulkSourceBatch([1, 2, 3]);
    graph.dispatch("s", batch);
    await settle();
    expect(written("bulk")[0]!.bulk).toBe(batch.bulk);
    const plain = written("plain")[0]!;
    expect(plain.bulk).toBeUndefined();
    expect(plain.events.map((e) => e.event)).toEqual(events);
    expect(reads.count).toBe(1);
    expect(metrics.sink("bulk").events).toBe(3);
    expect(metrics.sink("plain").events).toBe(3);
    // One save, once both sinks made the batch durable.
    expect(sourceSaves(store)).toEqual([batch.checkpoint]);
  });

  it("the position waits for both sinks whatever order they finish in", async () => {
    const { graph, sinks, store, settle } = graphOf(
      `source s = jsonl { path: "in.jsonl" }
       sink bulk = discard {}
       sink plain = discard {}
       flow s -> bulk, plain`,
      { bulk: { bulkFormats: ["pg-copy-data"], parallelBulkWrites: 2 }, plain: {} },
    );
    const { batch } = bulkSourceBatch([1, 2]);
    graph.dispatch("s", batch);
    await nextTurn();
    sinks.get("plain")!.writes[0]!.resolve();
    await nextTurn();
    expect(sourceSaves(store)).toEqual([]);
    sinks.get("bulk")!.writes[0]!.resolve();
    await settle();
    expect(sourceSaves(store)).toEqual([batch.checkpoint]);
  });

  it("a sink fed by a step-free flow and a flow with steps gets their events merged, without bulk rows", async () => {
    const { graph, settle, written } = graphOf(
      `${ONE_SINK}
       flow s -> out
       flow s | filter row.id > 2 -> out`,
      { out: LOADS_BULK },
    );
    const { batch } = bulkSourceBatch([1, 2, 3]);
    graph.dispatch("s", batch);
    await settle();
    expect(written("out")).toHaveLength(1);
    const given = written("out")[0]!;
    expect(given.bulk).toBeUndefined();
    // In the source's order; event 3 came through both flows.
    expect(idsOf(given)).toEqual([1, 2, 3, 3]);
  });

  it("consecutive bulk batches of a table reach a slow sink as one bulk write", async () => {
    const { graph, sinks, settle, written } = graphOf(`${ONE_SINK} flow s -> out`, { out: { bulkFormats: ["pg-copy-data"] } });
    const sink = sinks.get("out")!;
    const first = bulkSourceBatch([1, 2]);
    const second = bulkSourceBatch([3, 4]);
    const third = bulkSourceBatch([5]);
    graph.dispatch("s", first.batch);
    graph.dispatch("s", second.batch);
    graph.dispatch("s", third.batch);
    await nextTurn();
    sink.writes[0]!.resolve();
    await nextTurn();
    expect(written("out")).toHaveLength(2);
    const combined = written("out")[1]!;
    expect(combined.bulk!.columns).toBe(ORDER_COLUMNS);
    expect(bulkIds(combined.bulk!)).toEqual([3, 4, 5]);
    sink.writes[1]!.resolve();
    await settle();
    expect([first.reads.count, second.reads.count, third.reads.count]).toEqual([0, 0, 0]);
  });

  it("a row a bulk-loading sink rejects goes to the dead-letter sink as the source's event", async () => {
    const { graph, metrics, store, settle, written, fatal } = graphOf(
      `pipeline p { dead_letter: rejected }
       ${ONE_SINK}
       sink rejected = discard {}
       flow s -> out`,
      { out: { ...LOADS_BULK, answer: (): readonly Rejection[] => [{ index: 1, reason: "value too long" }] } },
    );
    const { batch, events } = bulkSourceBatch([1, 2, 3]);
    graph.dispatch("s", batch);
    await settle();
    expect(written("out")[0]!.bulk).toBe(batch.bulk);
    const dead = written("rejected");
    expect(dead).toHaveLength(1);
    expect(dead[0]!.events).toHaveLength(1);
    expect(dead[0]!.events[0]!.event).toBe(events[1]);
    expect(dead[0]!.events[0]!.rejection).toEqual({ reason: "value too long", where: "sink out" });
    expect(metrics.deadLettered).toBe(1);
    expect(metrics.sink("out")).toMatchObject({ events: 2, rejected: 1 });
    expect(sourceSaves(store)).toEqual([batch.checkpoint]);
    expect(fatal).toEqual([]);
  });

  it("the sink holding the checkpoints gets the bulk rows and the checkpoint in one write", async () => {
    const { graph, settle, written, acknowledged, store } = graphOf(
      `pipeline p { checkpoint: "postgres" }
       source s = jsonl { path: "in.jsonl" }
       sink db = postgres { url: "postgres://x" }
       flow s -> db`,
      { db: LOADS_BULK },
    );
    const { batch, reads } = bulkSourceBatch([1, 2, 3]);
    graph.dispatch("s", batch);
    await settle();
    const given = written("db")[0]!;
    expect(given.bulk).toBe(batch.bulk);
    expect(given.checkpoints).toEqual({ s: batch.checkpoint });
    expect(reads.count).toBe(0);
    expect(store.saves).toEqual([]);
    expect(acknowledged).toEqual([batch.checkpoint]);
  });
});

describe("batchSize", () => {
  it("counts a bulk batch by its rows without making its events, and any other by its events", () => {
    const { batch, reads } = bulkSourceBatch([1, 2, 3, 4]);
    expect(batchSize(batch)).toBe(4);
    expect(reads.count).toBe(0);
    const plain: SourceBatch = { events: snapshotRows([1, 2]) };
    expect(batchSize(plain)).toBe(2);
    expect(batchSize({ events: [] })).toBe(0);
  });
});

describe("graph: source transactions larger than a batch", () => {
  const TWO_SINKS = `
pipeline t
source s = datagen { rows: 10 }
sink all = discard {}
sink big = discard {}
flow s -> all
flow s | filter row.id > 5 -> big
`;
  const changes = (ids: readonly number[]) => ids.map((id) => orderEvent(id));
  const at = (seq: number): SourceCheckpoint => ({ position: { kind: "seq", token: String(seq) } });

  it("marks the parts of a transaction, and gives every sink that had a part the write that ends it", async () => {
    const { graph, settle, written, store } = graphOf(TWO_SINKS, { all: EVENTS_ONLY, big: EVENTS_ONLY });
    graph.dispatch("s", { events: changes([1, 2]), checkpoint: at(2) });
    // One transaction in three batches: only the last carries a checkpoint.
    graph.dispatch("s", { events: changes([3, 4]) });
    graph.dispatch("s", { events: changes([5, 6]) });
    graph.dispatch("s", { events: changes([4]), checkpoint: at(7) });
    graph.dispatch("s", { events: changes([8]), checkpoint: at(8) });
    await settle();
    const flags = (sink: string) => written(sink).map((batch) => [idsOf(batch), batch.transaction ?? null]);
    const part = (continues: boolean, open: boolean) => ({ source: "s", continues, open });
    expect(flags("all")).toEqual([
      [[1, 2], null],
      [[3, 4], part(false, true)],
      [[5, 6], part(true, true)],
      [[4], part(true, false)],
      [[8], null],
    ]);
    // The filter left `big` nothing of the first part and of the last: it joins the
    // transaction at its second part, and still gets an (empty) write that ends it.
    expect(flags("big")).toEqual([
      [[6], part(false, true)],
      [[], part(true, false)],
      [[8], null],
    ]);
    expect(store.saves.at(-1)).toEqual({ s: at(8) });
  });

  it("never combines a part of a transaction with other batches, even behind a slow write", async () => {
    const { graph, sinks, written } = graphOf(`${ONE_SINK} flow s -> out`, { out: {} });
    graph.dispatch("s", { events: changes([1]), checkpoint: at(1) });
    await nextTurn();
    graph.dispatch("s", { events: changes([2]), checkpoint: at(2) });
    graph.dispatch("s", { events: changes([3]) });
    graph.dispatch("s", { events: changes([4]), checkpoint: at(4) });
    graph.dispatch("s", { events: changes([5]), checkpoint: at(5) });
    for (let i = 0; i < 5; i++) {
      sinks.get("out")!.pending[0]?.resolve();
      await nextTurn();
    }
    expect(written("out").map(idsOf)).toEqual([[1], [2], [3], [4], [5]]);
  });
});

describe("graph: schema changes", () => {
  const PIPELINE = `
pipeline t
source s = datagen { rows: 10 }
sink copy = discard {}
sink picked = discard {}
sink shaped = discard {}
flow s | filter row.id > 5 -> copy, picked
flow s | map { id: row.id } -> shaped
`;
  const at = (seq: number): SourceCheckpoint => ({ position: { kind: "seq", token: String(seq) } });
  const change: SchemaChange = {
    table: "shop.orders",
    schema: { dialect: "postgres", columns: [{ name: "id", type: "integer", nullable: false }, { name: "note", type: "text", nullable: true }], primaryKey: ["id"] },
    columns: [{ kind: "added", column: "note", type: "text" }],
  };

  it("reach every sink of a flow that keeps the columns, before its events, even when the filter kept none", async () => {
    const { graph, settle, written } = graphOf(PIPELINE, {});
    graph.dispatch("s", { events: [orderEvent(1)], checkpoint: at(1), schemaChanges: [change] });
    await settle();
    for (const sink of ["copy", "picked"]) {
      expect(written(sink).map((batch) => [idsOf(batch), batch.schemaChanges ?? null])).toEqual([[[], [{ change, target: "shop.orders" }]]]);
    }
    // A map makes its own columns: its sink is not told.
    expect(written("shaped").map((batch) => batch.schemaChanges ?? null)).toEqual([null]);
  });

  it("start a write of their own: never combined after other batches' events", async () => {
    const { graph, sinks, written } = graphOf(`${ONE_SINK} flow s -> out`, { out: {} });
    graph.dispatch("s", { events: [orderEvent(1)], checkpoint: at(1) });
    await nextTurn();
    graph.dispatch("s", { events: [orderEvent(2)], checkpoint: at(2) });
    graph.dispatch("s", { events: [orderEvent(3)], checkpoint: at(3), schemaChanges: [change] });
    graph.dispatch("s", { events: [orderEvent(4)], checkpoint: at(4) });
    for (let i = 0; i < 4; i++) {
      sinks.get("out")!.pending[0]?.resolve();
      await nextTurn();
    }
    expect(written("out").map((batch) => [idsOf(batch), batch.schemaChanges !== undefined])).toEqual([
      [[1], false],
      [[2], false],
      [[3, 4], true],
    ]);
  });
});
