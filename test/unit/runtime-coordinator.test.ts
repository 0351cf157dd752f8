/**
 * The checkpoint coordinator: each sink has its own position; the source's moves to the least
 * of them, only at transaction ends, and the source hears of it only after the store has it.
 */
import { describe, expect, it } from "vitest";
import { position, seqPosition } from "../../src/model/position.js";
import { CheckpointCoordinator } from "../../src/runtime/checkpoint-coordinator.js";
import type { SourceCheckpoint } from "../../src/runtime/contracts.js";
import { silentLogger } from "../../src/runtime/log.js";
import { runPipeline } from "../../src/runtime/run.js";
import {
  batchesOf,
  deferred,
  fastRetry,
  MemoryStore,
  orderEvent,
  planOf,
  recordingSinks,
  resetSeq,
  scriptedSources,
} from "./runtime-fixtures.js";

const cp = (seq: number): SourceCheckpoint => ({ position: seqPosition(seq) });

function coordinator(
  store: MemoryStore,
  options: {
    storedBySink?: boolean;
    sinks?: string[];
    holder?: string;
    initial?: Record<string, SourceCheckpoint>;
    initialSinks?: Map<string, Map<string, SourceCheckpoint>>;
    acknowledge?: (c: SourceCheckpoint) => Promise<void>;
    saveIntervalMs?: number;
  } = {},
) {
  const acknowledged: SourceCheckpoint[] = [];
  const fatal: unknown[] = [];
  const instance = new CheckpointCoordinator({
    store,
    sources: new Map([["s", { sinks: options.sinks ?? ["a"], storedBySink: options.storedBySink ?? false, holder: options.holder ?? null }]]),
    initial: options.initial ?? {},
    ...(options.initialSinks !== undefined ? { initialSinks: options.initialSinks } : {}),
    acknowledge: async (_source, checkpoint) => {
      await options.acknowledge?.(checkpoint);
      acknowledged.push(checkpoint);
    },
    onFatal: (error) => fatal.push(error),
    retry: fastRetry,
    log: silentLogger,
    ...(options.saveIntervalMs !== undefined ? { saveIntervalMs: options.saveIntervalMs } : {}),
  });
  return { instance, acknowledged, fatal };
}

describe("checkpoint coordinator", () => {
  it("moves the source to the least of its sinks' positions, and saves each sink's own", async () => {
    const store = new MemoryStore();
    const { instance, acknowledged } = coordinator(store, { sinks: ["a", "b"] });
    instance.sinkDurable("s", "a", cp(10), 1);
    instance.sinkDurable("s", "a", cp(20), 2);
    await instance.idle();
    // b has not moved: the source stays where it resumed, a's own position is saved.
    expect(acknowledged).toEqual([]);
    expect(store.current).toEqual({ "s/a": cp(20) });
    instance.sinkDurable("s", "b", cp(10), 1);
    await instance.idle();
    expect(store.current).toEqual({ s: cp(10), "s/a": cp(20), "s/b": cp(10) });
    expect(acknowledged).toEqual([cp(10)]);
    instance.sinkDurable("s", "b", cp(30), 3);
    await instance.idle();
    expect(store.current["s"]).toEqual(cp(20));
    expect(acknowledged.at(-1)).toEqual(cp(20));
    expect(instance.sinkCheckpoints().get("b")!.get("s")).toEqual(cp(30));
  });

  it("orders positions without a total order (one Kafka partition each) by the source's batches", async () => {
    const store = new MemoryStore();
    const { instance, acknowledged } = coordinator(store, { sinks: ["a", "b"] });
    const kafka = (token: string): SourceCheckpoint => ({ position: position("kafka", token) });
    // Partition 1's batch, then partition 0's: as text the second sorts first, yet it is later.
    instance.sinkDurable("s", "a", kafka("t/1/5"), 1);
    instance.sinkDurable("s", "b", kafka("t/1/5"), 1);
    await instance.idle();
    instance.sinkDurable("s", "a", kafka("t/0/9"), 2);
    await instance.idle();
    expect(acknowledged).toEqual([kafka("t/1/5")]);
    instance.sinkDurable("s", "b", kafka("t/0/9"), 2);
    await instance.idle();
    expect(acknowledged).toEqual([kafka("t/1/5"), kafka("t/0/9")]);
  });

  it("a sink resumed ahead holds nothing back once the others pass it", async () => {
    const store = new MemoryStore();
    const { instance, acknowledged } = coordinator(store, {
      sinks: ["a", "b"],
      initial: { s: cp(10) },
      initialSinks: new Map([["s", new Map([["a", cp(50)]])]]),
    });
    // a skips what it has: its items move no position until past 50.
    instance.sinkDurable("s", "a", undefined, 1);
    instance.sinkDurable("s", "b", cp(20), 1);
    await instance.idle();
    expect(acknowledged).toEqual([cp(20)]);
    instance.sinkDurable("s", "b", cp(60), 4);
    instance.sinkDurable("s", "a", undefined, 4);
    await instance.idle();
    // b is past a's 50, a is at 50: the source moves to 50, never past what a has.
    expect(acknowledged.at(-1)).toEqual(cp(50));
  });

  it("spaces saves by the save interval while running, and saves at once when flushed or drained", async () => {
    const store = new MemoryStore();
    const { instance, acknowledged } = coordinator(store, { saveIntervalMs: 60_000 });
    instance.sinkDurable("s", "a", cp(10), 1);
    await new Promise((resolve) => setTimeout(resolve, 5));
    // The first save goes at once; the next ones wait for the interval, and coalesce meanwhile.
    expect(store.saves).toEqual([{ s: cp(10) }]);
    instance.sinkDurable("s", "a", cp(20), 2);
    instance.sinkDurable("s", "a", cp(30), 3);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(store.saves).toEqual([{ s: cp(10) }]);
    expect(acknowledged).toEqual([cp(10)]);
    // A source about to be reopened asks for what is eligible now.
    await instance.flush();
    expect(store.saves).toEqual([{ s: cp(10) }, { s: cp(30) }]);
    expect(instance.durableCheckpoints()).toEqual({ s: cp(30) });
    // Draining (the runner stopping) saves the last one at once too.
    instance.sinkDurable("s", "a", cp(40), 4);
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(store.saves).toHaveLength(2);
    const started = performance.now();
    await instance.idle();
    expect(performance.now() - started).toBeLessThan(1000);
    expect(store.saves).toEqual([{ s: cp(10) }, { s: cp(30) }, { s: cp(40) }]);
    expect(acknowledged.at(-1)).toEqual(cp(40));
  });

  it("never moves to a batch without a checkpoint (one ending inside a transaction)", async () => {
    const store = new MemoryStore();
    const { instance } = coordinator(store);
    instance.sinkDurable("s", "a", cp(10), 1);
    await instance.idle();
    instance.sinkDurable("s", "a", undefined, 2);
    instance.sinkDurable("s", "a", undefined, 3);
    await instance.idle();
    expect(store.saves).toEqual([{ s: cp(10) }]);
    expect(instance.durableCheckpoints()).toEqual({ s: cp(10) });
    instance.sinkDurable("s", "a", cp(30), 4);
    await instance.idle();
    expect(store.saves.at(-1)).toEqual({ s: cp(30) });
  });

  it("acknowledges the source only after the store's save resolved", async () => {
    const saving = deferred();
    const store = new MemoryStore({}, () => saving.promise);
    const { instance, acknowledged } = coordinator(store);
    instance.sinkDurable("s", "a", cp(10), 1);
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(acknowledged).toEqual([]);
    expect(instance.durableCheckpoints()).toEqual({});
    saving.resolve();
    await instance.idle();
    expect(acknowledged).toEqual([cp(10)]);
  });

  it("coalesces saves while one is running: a slow store costs latency, not a queue", async () => {
    const gates: ReturnType<typeof deferred<void>>[] = [];
    const store = new MemoryStore({}, () => {
      const gate = deferred();
      gates.push(gate);
      return gate.promise;
    });
    const { instance } = coordinator(store);
    for (let i = 1; i <= 5; i++) instance.sinkDurable("s", "a", cp(i * 10), i);
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(gates.length).toBe(1);
    gates[0]!.resolve();
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(gates.length).toBe(2);
    gates[1]!.resolve();
    await instance.idle();
    expect(store.saves).toEqual([{ s: cp(10) }, { s: cp(50) }]);
  });

  it("with checkpoints stored by the sink, does not save through the store", async () => {
    const store = new MemoryStore();
    const { instance, acknowledged } = coordinator(store, { storedBySink: true, holder: "a" });
    instance.sinkDurable("s", "a", cp(10), 1);
    await instance.idle();
    expect(store.saves).toEqual([]);
    expect(acknowledged).toEqual([cp(10)]);
  });

  it("a sink storing its own position in its writes is not saved through the store", async () => {
    const store = new MemoryStore();
    const { instance, acknowledged } = coordinator(store, { sinks: ["db", "b"], holder: "db" });
    instance.sinkDurable("s", "db", cp(10), 1);
    instance.sinkDurable("s", "b", cp(10), 1);
    await instance.idle();
    expect(store.current).toEqual({ s: cp(10), "s/b": cp(10) });
    expect(acknowledged).toEqual([cp(10)]);
  });

  it("a store that keeps failing is fatal", async () => {
    const store = new MemoryStore({}, () => {
      throw new Error("disk on fire");
    });
    const { instance, fatal } = coordinator(store);
    instance.sinkDurable("s", "a", cp(10), 1);
    await instance.idle();
    expect(fatal).toHaveLength(1);
    expect(instance.durableCheckpoints()).toEqual({});
  });
});

describe("checkpoints in a running pipeline", () => {
  it("fan-out: each saved position is durable in every sink, the slow one included", async () => {
    resetSeq();
    const plan = planOf(`
      source s = jsonl { path: "in.jsonl" }
      sink fast = discard {}
      sink slow = discard {}
      flow s -> fast, slow
    `);
    const { factory: sinkFactory, sinks } = recordingSinks({ slow: { delayMs: 3 } });
    const batches = batchesOf(40, 5);
    // At every save, check what each sink holds: every event up to the saved position.
    const store = new MemoryStore({}, (checkpoints) => {
      if (checkpoints["s"] === undefined) return;
      const saved = Number(checkpoints["s"].position!.token);
      for (const sink of sinks.values()) {
        const written = new Set(sink.events.map((e) => Number(e.event.source.position.token)));
        for (let seq = 1; seq <= saved; seq++) expect(written.has(seq), `${sink.context.name} has ${seq}`).toBe(true);
      }
    });
    const { factory: sourceFactory, sources } = scriptedSources({ s: batches });
    const summary = await runPipeline(plan, {
      baseDir: "/tmp",
      connectors: { sources: { jsonl: sourceFactory }, sinks: { discard: sinkFactory } },
      checkpointStore: store,
      retry: fastRetry,
    });
    expect(store.saves.length).toBeGreaterThan(0);
    expect(summary.sources["s"]!.checkpoint).toEqual(batches.at(-1)!.checkpoint);
    expect(sinks.get("fast")!.events).toHaveLength(200);
    expect(sinks.get("slow")!.events).toHaveLength(200);
    // The source heard of every position only after it was saved.
    const acknowledged = sources.get("s")![0]!.acknowledged.map((c) => Number(c.position!.token));
    expect(acknowledged.at(-1)).toBe(200);
    expect([...acknowledged].sort((a, b) => a - b)).toEqual(acknowledged);
  });

  it("a sink fed by two flows gets the events in the source's order", async () => {
    resetSeq();
    const plan = planOf(`
      source s = jsonl { path: "in.jsonl" }
      sink out = discard {}
      flow s | filter row.id % 2 == 0 -> out
      flow s | filter row.id % 2 == 1 -> out
    `);
    const { factory: sinkFactory, sinks } = recordingSinks();
    const { factory: sourceFactory } = scriptedSources({ s: batchesOf(3, 10) });
    await runPipeline(plan, {
      baseDir: "/tmp",
      connectors: { sources: { jsonl: sourceFactory }, sinks: { discard: sinkFactory } },
      checkpointStore: new MemoryStore(),
    });
    expect(sinks.get("out")!.events.map((e) => e.event.key["id"])).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
  });

  it("a sink holding the checkpoints gets them inside its writes when it is the only sink", async () => {
    resetSeq();
    const plan = planOf(`
      pipeline p { checkpoint: "postgres" }
      source s = jsonl { path: "in.jsonl" }
      sink db = postgres { url: "postgres://x" }
      flow s | filter row.id > 5 -> db
    `);
    const sinkStore = new MemoryStore();
    const { factory: sinkFactory, sinks } = recordingSinks({ db: { checkpoints: sinkStore } });
    const batches = batchesOf(4, 5);
    const { factory: sourceFactory, sources } = scriptedSources({ s: batches });
    await runPipeline(plan, {
      baseDir: "/tmp",
      connectors: { sources: { jsonl: sourceFactory }, sinks: { postgres: sinkFactory } },
    });
    const written = sinks.get("db")!.batches;
    // The first batch was filtered out entirely, yet its checkpoint still went through the sink.
    expect(written.map((b) => b.checkpoints?.["s"]?.position?.token)).toEqual(["5", "10", "15", "20"]);
    expect(written[0]!.events).toEqual([]);
    expect(sinkStore.saves).toEqual([]);
    expect(sources.get("s")![0]!.acknowledged.at(-1)).toEqual(batches.at(-1)!.checkpoint);
  });

  it("with a second sink, the holder keeps its own position in its writes and the rest goes through the store", async () => {
    resetSeq();
    const plan = planOf(`
      pipeline p { checkpoint: "postgres" }
      source s = jsonl { path: "in.jsonl" }
      sink db = postgres { url: "postgres://x" }
      sink copy = discard {}
      flow s -> db, copy
    `);
    const sinkStore = new MemoryStore();
    const { factory: sinkFactory, sinks } = recordingSinks({ db: { checkpoints: sinkStore } });
    await runPipeline(plan, {
      baseDir: "/tmp",
      connectors: { sources: { jsonl: scriptedSources({ s: batchesOf(3, 5) }).factory }, sinks: { postgres: sinkFactory, discard: sinkFactory } },
    });
    expect(sinks.get("db")!.batches.map((b) => b.checkpoints?.["s/db"]?.position?.token)).toEqual(["5", "10", "15"]);
    expect(sinkStore.current["s"]!.position!.token).toBe("15");
    expect(sinkStore.current["s/copy"]!.position!.token).toBe("15");
    expect(sinkStore.current["s/db"]).toBeUndefined();
  });

  it("a batch ending inside a transaction is delivered but does not move the position", async () => {
    resetSeq();
    const plan = planOf(`
      source s = jsonl { path: "in.jsonl" }
      sink out = discard {}
      flow s -> out
    `);
    const events = [1, 2, 3, 4].map((seq) => orderEvent(seq, { txid: "t1" }));
    const { factory: sinkFactory, sinks } = recordingSinks();
    const store = new MemoryStore();
    const summary = await runPipeline(plan, {
      baseDir: "/tmp",
      connectors: {
        sources: { jsonl: scriptedSources({ s: [{ events: events.slice(0, 2) }, { events: events.slice(2), caughtUp: true }] }).factory },
        sinks: { discard: sinkFactory },
      },
      checkpointStore: store,
    });
    expect(sinks.get("out")!.events).toHaveLength(4);
    expect(store.saves).toEqual([]);
    expect(summary.sources["s"]!.checkpoint).toBeNull();
  });
});
