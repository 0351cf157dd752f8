/**
 * Retries and fatal errors: a retriable ConnectorError is retried with backoff (and the run
 * goes on as if nothing happened), a fatal one stops the run with the last durable position
 * of each source, and a source that drops is reopened from its last durable checkpoint.
 */
import { describe, expect, it } from "vitest";
import { ConnectorError, type SourceBatch } from "../../src/runtime/contracts.js";
import { PipelineFailure, runPipeline } from "../../src/runtime/run.js";
import { backoffDelay, Outage, withRetry, RetriesExhaustedError } from "../../src/runtime/retry.js";
import { silentLogger } from "../../src/runtime/log.js";
import { batchesOf, fastRetry, MemoryStore, planOf, recordingSinks, resetSeq, scriptedSources } from "./runtime-fixtures.js";

const plan = planOf(`
  source s = jsonl { path: "in.jsonl" }
  sink out = discard {}
  flow s -> out
`);

describe("retry", () => {
  it("backs off exponentially with jitter, capped", () => {
    const policy = { retryForMs: Infinity, initialDelayMs: 100, maxDelayMs: 1000 };
    expect(backoffDelay(policy, 1, () => 0.999)).toBeLessThanOrEqual(100);
    expect(backoffDelay(policy, 3, () => 0.999)).toBeGreaterThan(390);
    expect(backoffDelay(policy, 3, () => 0.999)).toBeLessThanOrEqual(400);
    expect(backoffDelay(policy, 20, () => 0.999)).toBeLessThanOrEqual(1000);
    expect(backoffDelay(policy, 20, () => 0)).toBe(0);
  });

  it("counts an outage in time from its first failure, cuts the last delay to the budget, and starts again after a success", () => {
    let now = 1000;
    const outage = new Outage({ retryForMs: 60_000, initialDelayMs: 1000, maxDelayMs: 30_000 }, () => now, () => 1);
    expect(outage.failed()).toEqual({ attempts: 1, downMs: 0, leftMs: 60_000, delayMs: 1000, giveUp: false });
    now += 1000;
    expect(outage.failed()).toEqual({ attempts: 2, downMs: 1000, leftMs: 59_000, delayMs: 2000, giveUp: false });
    now += 50_000;
    // The bound would be 4 s; 8 s are left; then 30 s would be, but only 2 s are left.
    expect(outage.failed()).toMatchObject({ attempts: 3, downMs: 51_000, delayMs: 4000, giveUp: false });
    now += 7000;
    expect(outage.failed()).toMatchObject({ attempts: 4, downMs: 58_000, leftMs: 2000, delayMs: 2000, giveUp: false });
    now += 2000;
    expect(outage.failed()).toMatchObject({ attempts: 5, downMs: 60_000, leftMs: 0, giveUp: true });
    outage.recovered();
    now += 3_600_000;
    expect(outage.failed()).toEqual({ attempts: 1, downMs: 0, leftMs: 60_000, delayMs: 1000, giveUp: false });
  });

  it("retries forever with retry_for \"forever\", and not at all with 0", () => {
    let now = 0;
    const forever = new Outage({ retryForMs: Infinity, initialDelayMs: 1000, maxDelayMs: 30_000 }, () => now, () => 1);
    for (let i = 0; i < 100; i++) {
      now += 30_000;
      expect(forever.failed()).toMatchObject({ leftMs: Infinity, giveUp: false });
    }
    expect(forever.failed().delayMs).toBe(30_000);
    expect(new Outage({ retryForMs: 0, initialDelayMs: 1, maxDelayMs: 1 }).failed().giveUp).toBe(true);
  });

  it("retries only retriable errors, for a bounded time, logging how long it has been down and how long is left", async () => {
    let calls = 0;
    const warnings: Record<string, unknown>[] = [];
    const log = { ...silentLogger, warn: (_message: string, fields?: Record<string, unknown>) => void warnings.push(fields ?? {}) };
    const started = performance.now();
    const error = await withRetry("x", async () => {
      calls++;
      throw new ConnectorError("down", true);
    }, { policy: fastRetry, log }).catch((e: unknown) => e);
    expect(performance.now() - started).toBeGreaterThanOrEqual(fastRetry.retryForMs - 1);
    expect(error).toBeInstanceOf(RetriesExhaustedError);
    expect((error as Error).message).toMatch(/^x failed for \d+ms \(\d+ attempts\), longer than its retry_for of 100ms; last error: down$/);
    expect(calls).toBeGreaterThan(3);
    expect(warnings).toHaveLength(calls - 1);
    expect(warnings[0]).toEqual({ attempt: 1, down_for: "0ms", left: "100ms", delay_ms: expect.any(Number), error: "down" });
    expect(warnings.at(-1)).toMatchObject({ attempt: calls - 1, down_for: expect.stringMatching(/^\d+ms$/), left: expect.stringMatching(/^\d+ms$/) });

    calls = 0;
    await expect(
      withRetry("x", async () => {
        calls++;
        throw new ConnectorError("bad password", false);
      }, { policy: fastRetry, log: silentLogger }),
    ).rejects.toThrow("bad password");
    expect(calls).toBe(1);
  });

  it("waits at least a server's Retry-After, but never past the budget", async () => {
    const delays: number[] = [];
    const log = { ...silentLogger, warn: (_message: string, fields?: Record<string, unknown>) => void delays.push(fields!.delay_ms as number) };
    let calls = 0;
    const started = performance.now();
    await withRetry("x", async () => {
      if (++calls === 1) throw new ConnectorError("429", true, { retryAfterMs: 60 });
      return 1;
    }, { policy: { retryForMs: 10_000, initialDelayMs: 1, maxDelayMs: 1 }, log });
    expect(delays).toEqual([60]);
    expect(performance.now() - started).toBeGreaterThanOrEqual(59);

    delays.length = 0;
    const error = await withRetry("x", async () => {
      throw new ConnectorError("429", true, { retryAfterMs: 60_000 });
    }, { policy: { retryForMs: 80, initialDelayMs: 1, maxDelayMs: 1 }, log }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetriesExhaustedError);
    expect(delays[0]).toBeLessThanOrEqual(80);
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
    expect(failure.message).toMatch(/^sink out: writing to sink out failed for \d+ms \(\d+ attempts\), longer than its retry_for of 100ms; last error: server unavailable$/);
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

  it("retries each connector for its own retry_for, else the pipeline's, and keeps the option from the connector", async () => {
    resetSeq();
    const quick = { initialDelayMs: 1, maxDelayMs: 5 };
    const failing = () =>
      recordingSinks({
        out: {
          beforeWrite: () => {
            throw new ConnectorError("server unavailable", true);
          },
        },
      });
    const own = planOf(`
      pipeline p { retry_for: "1h" }
      source s = jsonl { path: "in.jsonl" }
      sink out = discard { retry_for: "150ms" }
      flow s -> out
    `);
    const sinks = failing();
    const started = performance.now();
    const failure = (await runPipeline(own, {
      baseDir: "/tmp",
      connectors: { sources: { jsonl: scriptedSources({ s: batchesOf(2, 2) }).factory }, sinks: { discard: sinks.factory } },
      checkpointStore: new MemoryStore(),
      retry: quick,
    }).catch((error: unknown) => error)) as PipelineFailure;
    expect(failure.message).toMatch(/^sink out: writing to sink out failed for \d+ms \(\d+ attempts\), longer than its retry_for of 150ms; last error: server unavailable$/);
    expect(performance.now() - started).toBeLessThan(10_000);
    expect(sinks.sinks.get("out")!.context.options).not.toHaveProperty("retry_for");

    const inherited = planOf(`
      pipeline p { retry_for: "120ms" }
      source s = jsonl { path: "in.jsonl" }
      sink out = discard {}
      flow s -> out
    `);
    const failure2 = (await runPipeline(inherited, {
      baseDir: "/tmp",
      connectors: { sources: { jsonl: scriptedSources({ s: batchesOf(2, 2) }).factory }, sinks: { discard: failing().factory } },
      checkpointStore: new MemoryStore(),
      retry: quick,
    }).catch((error: unknown) => error)) as PipelineFailure;
    expect(failure2.message).toMatch(/longer than its retry_for of 120ms; last error: server unavailable$/);
  });

  it("counts a source's reconnections as one outage, ended by a batch", async () => {
    resetSeq();
    const batches = batchesOf(10, 2);
    let opened = 0;
    // Each reader sends one new batch and drops: ten short outages, which together would
    // outlast retry_for twice over, but each one ends with its batch.
    const flaky = async function* (source: { context: { resume: { position: { token: string } | null } | null } }): AsyncGenerator<SourceBatch> {
      opened++;
      const after = Number(source.context.resume?.position?.token ?? 0);
      const next = batches.find((batch) => Number(batch.checkpoint!.position!.token) > after);
      if (next === undefined) return;
      await new Promise((resolve) => setTimeout(resolve, 20));
      yield next;
      throw new ConnectorError("replication connection lost", true);
    };
    const plan = planOf(`
      source s = jsonl { path: "in.jsonl", retry_for: "150ms" }
      sink out = discard {}
      flow s -> out
    `);
    const summary = await runPipeline(plan, {
      baseDir: "/tmp",
      connectors: { sources: { jsonl: scriptedSources({ s: flaky as never }).factory }, sinks: { discard: recordingSinks().factory } },
      checkpointStore: new MemoryStore(),
      retry: { initialDelayMs: 10, maxDelayMs: 10 },
    });
    expect(summary.sources["s"]!.checkpoint).toEqual(batches.at(-1)!.checkpoint);
    expect(opened).toBe(11);

    // A reader that never sends a batch: its reconnections add up, and the outage ends the run.
    const dead = async function* (): AsyncGenerator<SourceBatch> {
      await new Promise((resolve) => setTimeout(resolve, 20));
      throw new ConnectorError("replication connection lost", true);
    };
    const failure = (await runPipeline(plan, {
      baseDir: "/tmp",
      connectors: { sources: { jsonl: scriptedSources({ s: dead }).factory }, sinks: { discard: recordingSinks().factory } },
      checkpointStore: new MemoryStore(),
      retry: { initialDelayMs: 10, maxDelayMs: 10 },
    }).catch((error: unknown) => error)) as PipelineFailure;
    expect(failure.kind).toBe("connector");
    expect(failure.message).toMatch(/^source s: reading source s failed for \d+ms \(\d+ attempts\), longer than its retry_for of 150ms; last error: replication connection lost$/);
  });

  it("refuses to start when a retry_for read from the environment is not a duration", async () => {
    const plan = planOf(`
      source s = jsonl { path: "in.jsonl" }
      sink out = discard { retry_for: env("OUT_RETRY_FOR") }
      flow s -> out
    `);
    const failure = (await runPipeline(plan, {
      baseDir: "/tmp",
      env: (name) => (name === "OUT_RETRY_FOR" ? "ten minutes" : undefined),
      connectors: { sources: { jsonl: scriptedSources({ s: [] }).factory }, sinks: { discard: recordingSinks().factory } },
      checkpointStore: new MemoryStore(),
    }).catch((error: unknown) => error)) as PipelineFailure;
    expect(failure).toBeInstanceOf(PipelineFailure);
    expect(failure.kind).toBe("start");
    expect(failure.message).toBe(
      'pipeline test: sink out: option retry_for must be a duration such as "30s", "10m" or "1h", or "forever"; found "ten minutes": ' +
        'it is not a duration such as "30s", "10m", "1h" or "1h30m", or "forever"',
    );
  });
});
