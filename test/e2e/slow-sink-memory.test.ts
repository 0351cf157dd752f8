/**
 * Memory stays bounded behind a slow sink: 200 000 datagen events (a few hundred MB if they
 * were all held at once) into a sink that dawdles on every write. The heap, sampled during the
 * run, stays within a fixed margin over the baseline, and the source is never more than the
 * in-flight limit of batches ahead of what the sink has made durable.
 */
import { runInNewContext } from "node:vm";
import { setFlagsFromString } from "node:v8";
import { describe, expect, it } from "vitest";
import { createSource as datagenSource } from "../../src/connectors/datagen/source.js";
import { compileText } from "../../src/compile.js";
import type { SinkBatch, SinkFactory, SourceBatch, SourceFactory } from "../../src/runtime/contracts.js";
import { DEFAULT_IN_FLIGHT_BATCHES, runPipeline } from "../../src/runtime/run.js";

const EVENTS = 200_000;
const HEAP_MARGIN_MB = 64;

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

describe("a slow sink", () => {
  it(`keeps the heap within ${HEAP_MARGIN_MB} MB of its baseline and the source at most ${DEFAULT_IN_FLIGHT_BATCHES} batches ahead`, async () => {
    const compiled = compileText(
      `source shop = datagen { rows: ${EVENTS}, seed: 8 }
       sink slow = discard {}
       flow shop | map { ...row, doubled: row.id * 2 } -> slow`,
      "/tmp/slow.dts",
    );
    const plan = compiled.plan!;

    // The sink: 2 ms per write plus 1 ms per 200 events (about 2.5 s in all: the bottleneck),
    // keeping nothing but a count.
    let durableEvents = 0;
    const slowSink: SinkFactory = () => ({
      start: async () => {},
      write: async (batch: SinkBatch) => {
        await new Promise((resolve) => setTimeout(resolve, 2 + batch.events.length / 200));
        durableEvents += batch.events.length;
        return [];
      },
      close: async () => {},
    });

    // The real datagen source, watched: at each pull, how many batches are ahead of the sink.
    const batchEnds: number[] = [];
    let maxAhead = 0;
    const watchedSource: SourceFactory = (context) => {
      const reader = datagenSource(context);
      return {
        start: () => reader.start(),
        acknowledge: (checkpoint) => reader.acknowledge(checkpoint),
        close: () => reader.close(),
        batches: async function* (): AsyncGenerator<SourceBatch> {
          for await (const batch of reader.batches()) {
            const pulled = (batchEnds.at(-1) ?? 0) + batch.events.length;
            batchEnds.push(pulled);
            const durableBatches = batchEnds.filter((end) => end <= durableEvents).length;
            maxAhead = Math.max(maxAhead, batchEnds.length - durableBatches);
            yield batch;
          }
        },
      };
    };

    gc();
    const baseline = process.memoryUsage().heapUsed;
    let peak = baseline;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().heapUsed);
    }, 10);
    const started = performance.now();
    const summary = await runPipeline(plan, {
      baseDir: "/tmp",
      connectors: { sources: { datagen: watchedSource }, sinks: { discard: slowSink } },
      checkpointStore: { load: async () => ({}), save: async () => {} },
    }).finally(() => clearInterval(sampler));
    const seconds = (performance.now() - started) / 1000;

    const growthMb = (peak - baseline) / 2 ** 20;
    console.log(`slow sink: ${EVENTS} events in ${seconds.toFixed(2)} s; heap peak +${growthMb.toFixed(1)} MB over baseline; source at most ${maxAhead} batches ahead`);
    expect(summary.sinks["slow"]!.events).toBe(EVENTS);
    expect(durableEvents).toBe(EVENTS);
    expect(maxAhead).toBeLessThanOrEqual(DEFAULT_IN_FLIGHT_BATCHES);
    expect(growthMb).toBeLessThan(HEAP_MARGIN_MB);
  });
});
