/**
 * The pipeline's lock file (run-lock.ts), on the real file system: one holder per pipeline and
 * checkpoint file, pipelines sharing a checkpoint file side by side, a lock left by a process
 * that is gone taken over, one held elsewhere or unreadable refused with what to do; and the
 * runner taking it before any sink starts, releasing it at the end, and taking it again when
 * the store loses it — writing nothing meanwhile — unless another run has taken it.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConnectorError, type CheckpointStore, type Logger } from "../../src/runtime/contracts.js";
import { FileCheckpointStore } from "../../src/runtime/file-checkpoint-store.js";
import { lockFile, lockFilePath, PipelineLockedError } from "../../src/runtime/run-lock.js";
import { PipelineFailure, runPipeline } from "../../src/runtime/run.js";
import { batchesOf, deferred, fastRetry, MemoryStore, planOf, recordingSinks, resetSeq, scriptedSources } from "./runtime-fixtures.js";

function folder(): string {
  return mkdtempSync(join(tmpdir(), "dts-lock-"));
}

function recordingLog(): Logger & { warnings: { message: string; fields?: Record<string, unknown> }[] } {
  const warnings: { message: string; fields?: Record<string, unknown> }[] = [];
  const ignore = (): void => {};
  return { debug: ignore, info: ignore, error: ignore, warn: (message, fields) => warnings.push({ message, ...(fields ? { fields } : {}) }), warnings };
}

/** The pid of a process that has just exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", "0"], { stdio: "ignore" });
  await new Promise((resolve) => child.on("exit", resolve));
  return child.pid!;
}

function writeLock(path: string, holder: { pid: number; hostname: string; started?: string }): string {
  const text = `${JSON.stringify({ started: "2024-05-01T10:00:00.000Z", ...holder })}\n`;
  writeFileSync(path, text);
  return text;
}

describe("pipeline lock file", () => {
  it("is a file beside the checkpoint file naming this process, removed on release", async () => {
    const dir = folder();
    const path = lockFilePath(join(dir, ".dts-state"), "quickstart");
    expect(path).toBe(join(dir, ".dts-state.quickstart.lock"));
    const release = await lockFile(path, "quickstart", recordingLog());
    const holder = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
    expect(holder).toEqual({ pid: process.pid, hostname: hostname(), started: expect.any(String) });
    expect(Date.now() - Date.parse(holder.started as string)).toBeLessThan(60_000);
    await release();
    expect(readdirSync(dir)).toEqual([]);
    await release(); // twice is harmless
  });

  it("refuses a second lock of the pipeline, naming the pipeline, the file, the holder and the fix", async () => {
    const dir = folder();
    const path = lockFilePath(join(dir, ".dts-state"), "orders");
    const release = await lockFile(path, "orders", recordingLog());
    const error = await lockFile(path, "orders", recordingLog()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PipelineLockedError);
    expect((error as PipelineLockedError).pipeline).toBe("orders");
    expect((error as Error).message).toBe(
      `pipeline "orders" is already running: dts-run pid ${process.pid} on host ${hostname()} holds its lock ${path} ` +
        `(since ${JSON.parse(readFileSync(path, "utf8")).started}); stop the other dts-run (pid ${process.pid}) or, if it is gone, delete ${path}`,
    );
    // The refused attempt left the holder's lock alone; once released, the next one gets it.
    expect(JSON.parse(readFileSync(path, "utf8")).pid).toBe(process.pid);
    await release();
    const again = await lockFile(path, "orders", recordingLog());
    expect(existsSync(path)).toBe(true);
    await again();
  });

  it("lets different pipelines sharing one checkpoint file hold their locks at once", async () => {
    const dir = folder();
    const state = join(dir, ".dts-state");
    const releases = await Promise.all(["quickstart", "cache_update", "payments"].map((name) => lockFile(lockFilePath(state, name), name, recordingLog())));
    expect(readdirSync(dir).sort()).toEqual([".dts-state.cache_update.lock", ".dts-state.payments.lock", ".dts-state.quickstart.lock"]);
    for (const release of releases) await release();
    expect(readdirSync(dir)).toEqual([]);
  });

  it("takes over a lock left by a process that no longer exists, and says so", async () => {
    const dir = folder();
    const path = lockFilePath(join(dir, ".dts-state"), "quickstart");
    const pid = await deadPid();
    writeLock(path, { pid, hostname: hostname() });
    const log = recordingLog();
    const release = await lockFile(path, "quickstart", log);
    expect(JSON.parse(readFileSync(path, "utf8")).pid).toBe(process.pid);
    expect(log.warnings).toEqual([
      {
        message: "took over the pipeline's lock: the run that held it no longer exists",
        fields: { pipeline: "quickstart", lock: path, pid, since: "2024-05-01T10:00:00.000Z" },
      },
    ]);
    await release();
    expect(existsSync(path)).toBe(false);
  });

  it("takes over a lock naming this process's pid that this process does not hold (a restarted container)", async () => {
    const dir = folder();
    const path = lockFilePath(join(dir, ".dts-state"), "quickstart");
    writeLock(path, { pid: process.pid, hostname: hostname() });
    const release = await lockFile(path, "quickstart", recordingLog());
    expect(JSON.parse(readFileSync(path, "utf8")).started).not.toBe("2024-05-01T10:00:00.000Z");
    await release();
  });

  it("never takes over a lock held on another host, whose process it cannot check", async () => {
    const dir = folder();
    const path = lockFilePath(join(dir, ".dts-state"), "quickstart");
    const text = writeLock(path, { pid: await deadPid(), hostname: `not-${hostname()}` });
    await expect(lockFile(path, "quickstart", recordingLog())).rejects.toThrow(
      new RegExp(`on host not-${hostname()} holds its lock .*or, if it is gone, delete ${path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`),
    );
    expect(readFileSync(path, "utf8")).toBe(text);
  });

  it("refuses an unreadable lock, saying to delete it if nothing runs", async () => {
    const dir = folder();
    const path = lockFilePath(join(dir, ".dts-state"), "quickstart");
    for (const content of ["", "{not json", JSON.stringify({ pid: -1, hostname: hostname(), started: "x" })]) {
      writeFileSync(path, content);
      await expect(lockFile(path, "quickstart", recordingLog())).rejects.toThrow(
        `pipeline "quickstart" is already running: its lock ${path} exists but does not say which process holds it; if no other dts-run of it is running, delete ${path}`,
      );
      expect(readFileSync(path, "utf8")).toBe(content);
    }
  });

  it("leaves a lock that is no longer its own when released (deleted by hand and taken by another run)", async () => {
    const dir = folder();
    const path = lockFilePath(join(dir, ".dts-state"), "quickstart");
    const release = await lockFile(path, "quickstart", recordingLog());
    const other = writeLock(path, { pid: 1, hostname: hostname() });
    await release();
    expect(readFileSync(path, "utf8")).toBe(other);
  });

  it("is what the file checkpoint store locks with", async () => {
    const dir = folder();
    const state = join(dir, "state.json");
    const release = await new FileCheckpointStore(state, "quickstart").lock({ log: recordingLog() });
    expect(existsSync(join(dir, "state.json.quickstart.lock"))).toBe(true);
    await expect(new FileCheckpointStore(state, "quickstart").lock({ log: recordingLog() })).rejects.toBeInstanceOf(PipelineLockedError);
    await release();
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe("the runner and the pipeline lock", () => {
  const PIPELINE = `
    pipeline locked
    source s = jsonl { path: "in.jsonl" }
    sink out = discard {}
    flow s -> out
  `;

  it("refuses to start while another run holds the lock, before any sink starts; runs once it is released", async () => {
    resetSeq();
    const dir = folder();
    const plan = planOf(PIPELINE, join(dir, "p.dts"));
    const lockPath = join(dir, ".dts-state.locked.lock");
    const held = await lockFile(lockPath, "locked", recordingLog());
    // Whether the lock file was there when each sink started.
    const started: boolean[] = [];
    const run = () => {
      const { factory } = recordingSinks();
      const startingFactory: typeof factory = (context) => {
        const sink = factory(context);
        sink.start = async () => void started.push(existsSync(lockPath));
        return sink;
      };
      return runPipeline(plan, {
        baseDir: dir,
        connectors: { sources: { jsonl: scriptedSources({ s: batchesOf(3, 5) }).factory }, sinks: { discard: startingFactory } },
      });
    };

    const refused = await run().catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(PipelineFailure);
    expect((refused as PipelineFailure).kind).toBe("start");
    expect((refused as PipelineFailure).summary, "no position to report: the other run moves it").toBeUndefined();
    expect((refused as Error).message).toMatch(new RegExp(`^pipeline "locked" is already running: dts-run pid ${process.pid} on host .* holds its lock `));
    expect(started).toEqual([]);
    expect(existsSync(lockPath)).toBe(true);

    await held();
    const summary = await run();
    expect(summary.sources.s!.events).toBe(15);
    expect(started).toEqual([true]);
    expect(readdirSync(dir)).toEqual([".dts-state"]);
  });

  /** A store whose lock the test takes away (`lose`), and whose next `lock` answers as the test says. */
  function losableStore(retake: (attempt: number) => Promise<void>) {
    const calls: { retaking: boolean }[] = [];
    let onLost: ((error: Error) => void) | undefined;
    let releases = 0;
    const memory = new MemoryStore();
    const store: CheckpointStore = Object.assign(memory, {
      async lock(options: { onLost: (error: Error) => void; retaking?: boolean }) {
        calls.push({ retaking: options.retaking === true });
        if (calls.length > 1) await retake(calls.length - 1);
        onLost = options.onLost;
        return async () => void releases++;
      },
    });
    return { store, memory, calls, lose: () => onLost?.(new Error("the session holding it ended")), releases: () => releases };
  }

  it("takes the lock again when the store loses it, writing nothing until it holds it, and goes on", async () => {
    resetSeq();
    const retaken = deferred();
    const asked = deferred();
    const { store, memory, calls, lose, releases } = losableStore(async () => {
      asked.resolve();
      await retaken.promise;
    });
    const plan = planOf(PIPELINE);
    const batches = batchesOf(20, 5);
    const { factory, sinks } = recordingSinks({ out: { beforeWrite: (call) => void (call === 2 && lose()) } });
    const running = runPipeline(plan, {
      baseDir: "/tmp",
      connectors: { sources: { jsonl: scriptedSources({ s: batches }).factory }, sinks: { discard: factory } },
      checkpointStore: store,
      checkpointSaveIntervalMs: 0,
      retry: fastRetry,
      inFlightBatches: 1,
    });
    await asked.promise;
    // The write that was on its way when the lock went lands; nothing after it while the lock is away.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const sink = sinks.get("out")!;
    const writes = sink.calls;
    const saves = memory.saves.length;
    expect(writes).toBe(2);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(sink.calls).toBe(writes);
    expect(memory.saves.length).toBe(saves);
    retaken.resolve();
    const summary = await running;
    expect(summary.stoppedBy).toBe("end");
    expect(sink.events.map((e) => Number(e.event.source.position.token))).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(memory.current["s"]).toEqual(batches.at(-1)!.checkpoint);
    expect(calls).toEqual([{ retaking: false }, { retaking: true }]);
    expect(releases(), "the lock taken again is released at the end").toBe(1);
  });

  it("stops the run, writing nothing more, when another run took the lock meanwhile", async () => {
    resetSeq();
    const { store, memory, lose, releases } = losableStore(async () => {
      throw new PipelineLockedError("locked", 'pipeline "locked" is already running: dts-run pid 4242 on host web1 holds its lock');
    });
    const { factory, sinks } = recordingSinks({ out: { beforeWrite: (call) => void (call === 2 && lose()) } });
    const error = await runPipeline(planOf(PIPELINE), {
      baseDir: "/tmp",
      connectors: { sources: { jsonl: scriptedSources({ s: batchesOf(20, 5) }).factory }, sinks: { discard: factory } },
      checkpointStore: store,
      checkpointSaveIntervalMs: 0,
      retry: fastRetry,
      inFlightBatches: 1,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PipelineFailure);
    expect((error as PipelineFailure).kind).toBe("connector");
    expect((error as Error).message).toBe(
      "checkpoint store: lost the pipeline's lock, and another run took it meanwhile; stopping this run, which wrote nothing since. " +
        'pipeline "locked" is already running: dts-run pid 4242 on host web1 holds its lock',
    );
    expect(sinks.get("out")!.calls).toBe(2);
    expect(memory.saves.length).toBeLessThanOrEqual(2);
    expect(releases()).toBe(0);
  });

  it("stops the run when the lock cannot be taken again within the store's retry_for", async () => {
    resetSeq();
    const { store, lose } = losableStore(async () => {
      throw new ConnectorError("connection refused", true);
    });
    const { factory } = recordingSinks({ out: { beforeWrite: (call) => void (call === 2 && lose()) } });
    const error = await runPipeline(planOf(PIPELINE), {
      baseDir: "/tmp",
      connectors: { sources: { jsonl: scriptedSources({ s: batchesOf(20, 5) }).factory }, sinks: { discard: factory } },
      checkpointStore: store,
      retry: fastRetry,
      inFlightBatches: 1,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PipelineFailure);
    expect((error as PipelineFailure).kind).toBe("connector");
    expect((error as Error).message).toMatch(
      /^checkpoint store: taking the pipeline's lock again failed for \d+ms \(\d+ attempts\), longer than its retry_for of 100ms; last error: connection refused$/,
    );
  });
});
