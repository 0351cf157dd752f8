/**
 * Retries and fatal errors: a retriable ConnectorError is retried with backoff (and the run
 * goes on as if nothing happened), a fatal one stops the run with the last durable position
 * of each source, and a source that drops is reopened from its last durable checkpoint.
 */
import { describe, expect, it } from "vitest";
import { ConnectorError, type SourceBatch } from "../../src/runtime/contracts.js";
import { PipelineFailure, runPipeline } from "../../src/runtime/run.js";
import { backoffDelay, withRetry, RetriesExhaustedError } from "../../src/runtime/retry.js";
import { silentLogger } from "../../src/runtime/log.js";
import { batchesOf, fastRetry, MemoryStore, planOf, recordingSinks, resetSeq, scriptedSources } from "./runtime-fixtures.js";

const plan = planOf(`
  source s = jsonl { path: "in.jsonl" }
  sink out = discard {}
  flow s -> out
`);

describe("retry", () => {
  it("backs off exponentially with jitter, capped", () => {
    const policy = { attempts: 10, initialDelayMs: 100, maxDelayMs: 1000 };
    expect(backoffDelay(policy, 1, () => 0.999)).toBeLessThanOrEqual(100);
    expect(backoffDelay(policy, 3, () => 0.999)).toBeGreaterThan(390);
    expect(backoffDelay(policy, 3, () => 0.999)).toBeLessThanOrEqual(400);
    expect(backoffDelay(policy, 20, () => 0.999)).toBeLessThanOrEqual(1000);
    expect(backoffDelay(policy, 20, () => 0)).toBe(0);
  });

  it("retries only retriable errors, a bounded number of times", async () => {
    let calls = 0;
    await expect(
      withRetry("x", async () => {
        calls++;
        throw new ConnectorError("down", true);
      }, { policy: fastRetry, log: silentLogger }),
    ).rejects.toBeInstanceOf(RetriesExhaustedError);
    expect(calls).toBe(fastRetry.attempts);

    calls = 0;
    await expect(
      withRetry("x", async () => {
        calls++;
        throw new ConnectorError("bad password", false);
      }, { policy: fastRetry, log: silentLogger }),
    ).rejects.toThrow("bad password");
    expect(calls).toBe(1);
  });

  it("a sink that fails twice retriably, then succeeds: nothing lost, nothing stopped", async () => {
    resetSeq();
    const { factory: sinkFactory, sinks } = recordingSinks({
      out: {
        beforeWrite: (call) => {
          if (call === 2 || call === 3) throw new ConnectorError("connection reset", true);
        },
      },
    });
    const batches = batchesOf(5, 4);
    const summary = await runPipeline(plan, {
      baseDir: "/tmp",
      connectors: { sources: { jsonl: scriptedSources({ s: batches }).factory }, sinks: { discard: sinkFactory } },
      checkpointStore: new MemoryStore(),
      retry: fastRetry,
      inFlightBatches: 1,
    });
    const sink = sinks.get("out")!;
    expect(sink.calls).toBe(7);
    expect(sink.events.map((e) => Number(e.event.source.position.token))).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(summary.sinks["out"]!.retries).toBe(2);
    expect(summary.sources["s"]!.checkpoint).toEqual(batches.at(-1)!.checkpoint);
  });

  it("a fatal sink error stops the run with the last durable position", async () => {
    resetSeq();
    const { factory: sinkFactory } = recordingSinks({
      out: {
        beforeWrite: (call) => {
          if (call === 3) throw new ConnectorError("table orders does not exist", false);
        },
      },
    });
    const batches = batchesOf(6, 4);
    const store = new MemoryStore();
    const failure = await runPipeline(plan, {
      baseDir: "/tmp",
      connectors: { sources: { jsonl: scriptedSources({ s: batches }).factory }, sinks: { discard: sinkFactory } },
      checkpointStore: store,
      retry: fastRetry,
      inFlightBatches: 1,
    }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(PipelineFailure);
    const pipelineFailure = failure as PipelineFailure;
    expect(pipelineFailure.kind).toBe("connector");
    expect(pipelineFailure.message).toBe("sink out: table orders does not exist");
    // Two writes succeeded: the position is the end of the second batch, in the store too.
    expect(pipelineFailure.summary!.sources["s"]!.checkpoint).toEqual(batches[1]!.checkpoint);
    expect(store.current["s"]).toEqual(batches[1]!.checkpoint);
    expect(pipelineFailure.summary!.stoppedBy).toBe("failed");
  });

  it("retries used up become a fatal error naming the last cause", async () => {
    resetSeq();
    const { factory: sinkFactory } = recordingSinks({
      out: {
        beforeWrite: () => {
          throw new ConnectorError("server unavailable", true);
        },
      },
    });
    const failure = (await runPipeline(plan, {
      baseDir: "/tmp",
      connectors: { sources: { jsonl: scriptedSources({ s: batchesOf(2, 2) }).factory }, sinks: { discard: sinkFactory } },
      checkpointStore: new MemoryStore(),
      retry: fastRetry,
    }).catch((error: unknown) => error)) as PipelineFailure;
    expect(failure.kind).toBe("connector");
    expect(failure.message).toContain("failed 5 times; last error: server unavailable");
    expect(failure.summary!.sources["s"]!.checkpoint).toBeNull();
  });

  it("a source that drops is reopened from its last durable checkpoint", async () => {
    resetSeq();
    const batches = batchesOf(6, 3);
    let opened = 0;
    const script = async function* (source: { context: { resume: { position: { token: string } | null } | null } }): AsyncGenerator<SourceBatch> {
      opened++;
      const after = Number(source.context.resume?.position?.token ?? 0);
      for (const batch of batches) {
        if (Number(batch.checkpoint!.position!.token) <= after) continue;
        // The first reader fails after its third batch.
        if (opened === 1 && Number(batch.checkpoint!.position!.token) > 9) throw new ConnectorError("replication connection lost", true);
        yield batch;
      }
    };
    const { factory: sourceFactory, sources } = scriptedSources({ s: script as never });
    const { factory: sinkFactory, sinks } = recordingSinks();
    const summary = await runPipeline(plan, {
      baseDir: "/tmp",
      connectors: { sources: { jsonl: sourceFactory }, sinks: { discard: sinkFactory } },
      checkpointStore: new MemoryStore(),
      retry: fastRetry,
    });
    const readers = sources.get("s")!;
    expect(readers).toHaveLength(2);
    expect(readers[0]!.closed).toBe(true);
    expect(readers[1]!.context.resume).toEqual(batches[2]!.checkpoint);
    const seqs = sinks.get("out")!.events.map((e) => Number(e.event.source.position.token));
    expect(seqs).toEqual(Array.from({ length: 18 }, (_, i) => i + 1));
    expect(summary.sources["s"]!.checkpoint).toEqual(batches.at(-1)!.checkpoint);
  });

  it("a fatal source error stops the run, and the sinks are closed", async () => {
    resetSeq();
    const batches = batchesOf(2, 2);
    const script = async function* (): AsyncGenerator<SourceBatch> {
      yield batches[0]!;
      throw new ConnectorError("slot dts_shop does not exist", false);
    };
    const { factory: sinkFactory, sinks } = recordingSinks();
    const failure = (await runPipeline(plan, {
      baseDir: "/tmp",
      connectors: { sources: { jsonl: scriptedSources({ s: script }).factory }, sinks: { discard: sinkFactory } },
      checkpointStore: new MemoryStore(),
      retry: fastRetry,
    }).catch((error: unknown) => error)) as PipelineFailure;
    expect(failure.message).toBe("source s: slot dts_shop does not exist");
    expect(sinks.get("out")!.closed).toBe(true);
  });
});
