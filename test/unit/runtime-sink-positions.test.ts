/**
 * Per-sink positions in a running pipeline: each sink's position is saved on its own, the
 * source resumes from the least of them, and a sink ahead of it skips what it already has; a
 * store written before per-sink positions reads as every sink at its source's position.
 */
import { describe, expect, it } from "vitest";
import { coveredBy, pgLsnPosition, seqPosition } from "../../src/model/position.js";
import { runPipeline } from "../../src/runtime/run.js";
import { splitCheckpoints } from "../../src/runtime/sink-positions.js";
import { batchesOf, MemoryStore, planOf, recordingSinks, resetSeq, scriptedSources } from "./runtime-fixtures.js";

const FAN_OUT = `
  source s = jsonl { path: "in.jsonl" }
  sink a = discard {}
  sink b = discard {}
  flow s -> a, b
`;

const ids = (events: readonly { event: { key: Record<string, unknown> } }[]): number[] => events.map((e) => Number(e.event.key["id"]));

describe("per-sink positions", () => {
  it("a pg-lsn event is covered by a checkpoint after it; other kinds at or after it", () => {
    expect(coveredBy(pgLsnPosition("0/10"), pgLsnPosition("0/20"))).toBe(true);
    // The next transaction's commit record may start exactly where the last one ended.
    expect(coveredBy(pgLsnPosition("0/20"), pgLsnPosition("0/20"))).toBe(false);
    expect(coveredBy(seqPosition(20), seqPosition(20))).toBe(true);
    expect(coveredBy(seqPosition(21), seqPosition(20))).toBe(false);
  });

  it("splits a store's entries into sources and sinks", () => {
    const split = splitCheckpoints({ s: { position: seqPosition(5) }, "s/a": { position: seqPosition(9) } });
    expect(split.sources).toEqual({ s: { position: seqPosition(5) } });
    expect(split.sinks.get("s")!.get("a")).toEqual({ position: seqPosition(9) });
  });

  it("saves each sink's position and the source's at the least of them", async () => {
    resetSeq();
    const { factory: sinkFactory } = recordingSinks();
    const store = new MemoryStore();
    const summary = await runPipeline(planOf(FAN_OUT), {
      baseDir: "/tmp",
      connectors: { sources: { jsonl: scriptedSources({ s: batchesOf(4, 5) }).factory }, sinks: { discard: sinkFactory } },
      checkpointStore: store,
    });
    expect(store.current).toEqual({ s: { position: seqPosition(20) }, "s/a": { position: seqPosition(20) }, "s/b": { position: seqPosition(20) } });
    expect(summary.sinks["a"]!.positions).toEqual({ s: { position: seqPosition(20) } });
  });

  it("after a restart the source resumes from the least position and a sink ahead skips what it has", async () => {
    resetSeq();
    const batches = batchesOf(6, 5);
    const { factory: sinkFactory, sinks } = recordingSinks();
    // b had made 1..10 durable, a 1..25: the source restarts after 10.
    const store = new MemoryStore({ s: { position: seqPosition(10) }, "s/a": { position: seqPosition(25) }, "s/b": { position: seqPosition(10) } });
    const { factory: sourceFactory, sources } = scriptedSources({ s: batches });
    await runPipeline(planOf(FAN_OUT), {
      baseDir: "/tmp",
      connectors: { sources: { jsonl: sourceFactory }, sinks: { discard: sinkFactory } },
      checkpointStore: store,
    });
    expect(sources.get("s")![0]!.context.resume).toEqual({ position: seqPosition(10) });
    expect(ids(sinks.get("b")!.events)).toEqual(Array.from({ length: 20 }, (_, i) => 11 + i));
    expect(ids(sinks.get("a")!.events)).toEqual([26, 27, 28, 29, 30]);
    expect(store.current["s/a"]).toEqual({ position: seqPosition(30) });
    expect(store.current["s"]).toEqual({ position: seqPosition(30) });
    // The source was never told a position past what b had.
    const acknowledged = sources.get("s")![0]!.acknowledged.map((c) => Number(c.position!.token));
    expect(acknowledged[0]).toBeGreaterThan(10);
  });

  it("a checkpoint written before per-sink positions puts every sink at the source's position", async () => {
    resetSeq();
    const batches = batchesOf(4, 5);
    const { factory: sinkFactory, sinks } = recordingSinks();
    const store = new MemoryStore({ s: { position: seqPosition(10) } });
    await runPipeline(planOf(FAN_OUT), {
      baseDir: "/tmp",
      connectors: { sources: { jsonl: scriptedSources({ s: batches }).factory }, sinks: { discard: sinkFactory } },
      checkpointStore: store,
    });
    expect(ids(sinks.get("a")!.events)).toEqual(Array.from({ length: 10 }, (_, i) => 11 + i));
    expect(ids(sinks.get("b")!.events)).toEqual(Array.from({ length: 10 }, (_, i) => 11 + i));
  });

  it("spool_max and on_spool_full are checked and land in the plan only when written", () => {
    expect(planOf(FAN_OUT).pipeline.spool).toBeUndefined();
    expect(planOf(`pipeline t { spool_max: "2GB" } ${FAN_OUT}`).pipeline.spool).toEqual({ max: "2GB", on_full: "wait" });
    expect(planOf(`pipeline t { on_spool_full: "stop" } ${FAN_OUT}`).pipeline.spool).toEqual({ max: "1GB", on_full: "stop" });
    expect(() => planOf(`pipeline t { spool_max: "lots" } ${FAN_OUT}`)).toThrow(/spool_max/);
    expect(() => planOf(`pipeline t { on_spool_full: "drop" } ${FAN_OUT}`)).toThrow(/on_spool_full/);
  });
});
