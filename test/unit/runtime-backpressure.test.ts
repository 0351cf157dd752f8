/**
 * Backpressure: without a spool (`spool_max: "0"`) a slow sink slows the source. The source is
 * never pulled more than the in-flight limit ahead of what is durable, and a slow sink's
 * backlog is written in one go. With a spool, a slow sink no longer holds a fast one back.
 */
import { describe, expect, it } from "vitest";
import type { SourceBatch } from "../../src/runtime/contracts.js";
import { runPipeline } from "../../src/runtime/run.js";
import { batchesOf, MemoryStore, planOf, recordingSinks, resetSeq, scriptedSources, type RecordingSink } from "./runtime-fixtures.js";

describe("backpressure", () => {
  for (const limit of [1, 4]) {
    it(`the source runs at most ${limit} batch(es) ahead of a slow sink`, async () => {
      resetSeq();
      const plan = planOf(`
        pipeline test { spool_max: "0" }
        source s = jsonl { path: "in.jsonl" }
        sink fast = discard {}
        sink slow = discard {}
        flow s -> fast, slow
      `);
      const batches = batchesOf(30, 10);
      const { factory: sinkFactory, sinks } = recordingSinks({ slow: { delayMs: 4 } });
      let maxAhead = 0;
      const script = async function* (): AsyncGenerator<SourceBatch> {
        for (let i = 0; i < batches.length; i++) {
          // When batch i is asked for: batches read (this one included) minus those the slow
          // sink has made durable.
          const durable = (sinks.get("slow") as RecordingSink).events.length / 10;
          maxAhead = Math.max(maxAhead, i + 1 - durable);
          yield batches[i]!;
        }
      };
      await runPipeline(plan, {
        baseDir: "/tmp",
        connectors: { sources: { jsonl: scriptedSources({ s: script }).factory }, sinks: { discard: sinkFactory } },
        checkpointStore: new MemoryStore(),
        inFlightBatches: limit,
      });
      // Never more than the limit ahead, and the limit is used (the slow sink is the bottleneck).
      expect(maxAhead).toBe(limit);
      expect(sinks.get("slow")!.events).toHaveLength(300);
    });
  }

  it("a slow sink takes its backlog in one write", async () => {
    resetSeq();
    const plan = planOf(`
      source s = jsonl { path: "in.jsonl" }
      sink slow = discard {}
      flow s -> slow
    `);
    const { factory: sinkFactory, sinks } = recordingSinks({ slow: { delayMs: 10 } });
    await runPipeline(plan, {
      baseDir: "/tmp",
      connectors: { sources: { jsonl: scriptedSources({ s: batchesOf(20, 5) }).factory }, sinks: { discard: sinkFactory } },
      checkpointStore: new MemoryStore(),
      inFlightBatches: 4,
    });
    const sink = sinks.get("slow")!;
    expect(sink.events).toHaveLength(100);
    // One write per batch would be 20; coalescing the queued batches needs far fewer.
    expect(sink.calls).toBeLessThan(12);
    // Still in order.
    expect(sink.events.map((e) => e.event.key["id"])).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
  });

  it("with a spool, a slow sink does not hold a fast one back, and gets everything in order", async () => {
    resetSeq();
    const plan = planOf(`
      source s = jsonl { path: "in.jsonl" }
      sink fast = discard {}
      sink slow = discard {}
      flow s -> fast, slow
    `);
    const batches = batchesOf(60, 10);
    const { factory: sinkFactory, sinks } = recordingSinks({ slow: { delayMs: 15 } });
    let maxAhead = 0;
    const script = async function* (): AsyncGenerator<SourceBatch> {
      for (let i = 0; i < batches.length; i++) {
        const durable = (sinks.get("slow") as RecordingSink).events.length / 10;
        maxAhead = Math.max(maxAhead, i + 1 - durable);
        yield batches[i]!;
      }
    };
    await runPipeline(plan, {
      baseDir: "/tmp",
      connectors: { sources: { jsonl: scriptedSources({ s: script }).factory }, sinks: { discard: sinkFactory } },
      checkpointStore: new MemoryStore(),
      inFlightBatches: 2,
    });
    // The source ran well ahead of the slow sink: its backlog went to the spool.
    expect(maxAhead).toBeGreaterThan(10);
    const ids = Array.from({ length: 600 }, (_, i) => i + 1);
    expect(sinks.get("slow")!.events.map((e) => e.event.key["id"])).toEqual(ids);
    expect(sinks.get("fast")!.events.map((e) => e.event.key["id"])).toEqual(ids);
  });
});
