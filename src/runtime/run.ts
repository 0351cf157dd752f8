/**
 * Runs a compiled plan: the one entry point of the runtime.
 *
 * Order of a run: values fixed at start are resolved and every flow compiled (so a missing
 * variable or schema fails before anything connects); every connector implementation is
 * loaded (so a connector that is not built yet fails before anything connects either); sinks
 * are made, the pipeline's lock is taken in the checkpoint store (run-lock.ts: a second run of
 * the pipeline stops here), sinks start, then the checkpoint store is read (it may live in a
 * sink), then sources start, each resuming from its checkpoint. It runs until
 *   (a) every source's iterator ended,
 *   (b) `untilCaughtUp` and every source's latest batch said `caughtUp` (or it ended), or
 *   (c) `signal` aborts;
 * then it stops pulling, lets every batch already read become durable in every sink, saves
 * the last checkpoint, closes sources, then sinks, and releases the lock. A fatal error
 * anywhere stops pulling at once, waits for the writes already running, closes everything and
 * throws a `PipelineFailure` carrying the summary with each source's last durable position.
 *
 * Each connector is retried for its own `retry_for` (retry.ts), else the pipeline's; the
 * checkpoint store and the lock for the `retry_for` of the sink that holds them. A lock whose
 * session ends mid-run (the database restarted) is taken again: writes wait meanwhile
 * (write-gate.ts), and the run stops only if another run has taken it in between, or if it
 * cannot be taken again within that `retry_for`.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { loadSink, loadSource } from "../connectors/registry.js";
import { withoutOption } from "../connectors/options.js";
import { parseDuration } from "../model/duration.js";
import type { Value } from "../model/value.js";
import { CheckpointCoordinator } from "./checkpoint-coordinator.js";
import type { ChangeEvent } from "../model/event.js";
import { ConnectorError, type CheckpointStore, type Logger, type SinkEvent, type SinkFactory, type SinkWriter, type SourceCheckpoint, type SourceFactory, type TableSchema } from "./contracts.js";
import { PipelineFailure, RejectedEventError, type RunSummary } from "./failures.js";
import { FileCheckpointStore } from "./file-checkpoint-store.js";
import { checkpointsInSink, PipelineGraph, sinkHeldPositions, sinksOfSources } from "./graph.js";
import { asRunLogger, silentLogger, type RunLogger } from "./log.js";
import { Metrics } from "./metrics.js";
import { DEFAULT_RETRY_POLICY, messageOf, withRetry, type RetryPolicy } from "./retry.js";
import { PipelineLockedError } from "./run-lock.js";
import { SinkLane, type LaneSpool } from "./sink-lane.js";
import { SinkLagReporter } from "./sink-lag.js";
import { SinkSpool, spoolRoot } from "./sink-spool.js";
import { parseSize } from "../model/size.js";
import { DEFAULT_SPOOL_MAX, type Plan } from "../plan/types.js";
import { splitCheckpoints } from "./sink-positions.js";
import { SinkWorker } from "./sink-worker.js";
import { SourcePump } from "./source-pump.js";
import { resolveStartValues, StartValueError, type ResolvedOptions } from "./start-values.js";
import { compileFlow, type CompiledFlow } from "./steps.js";
import { WriteGate } from "./write-gate.js";

export { PipelineFailure, type FailureKind, type RunSummary, type SinkSummary, type SourceSummary } from "./failures.js";

/** Batches a source may have read but not yet made durable everywhere. */
export const DEFAULT_IN_FLIGHT_BATCHES = 4;

/**
 * Checkpoints are saved at most once a second while a pipeline runs (and at once when it
 * stops): a save of the checkpoint file costs two fsyncs, and a position a second older only
 * means a second more to replay after a crash, which the sinks apply idempotently.
 */
export const CHECKPOINT_SAVE_INTERVAL_MS = 1000;

export interface RunOptions {
  /** The pipeline file's folder: file checkpoints, validate schemas and relative paths resolve against it. */
  readonly baseDir: string;
  /** Stop once every source has nothing more to send and everything read is durable. */
  readonly untilCaughtUp?: boolean;
  /** Aborting it drains, checkpoints and stops the run (SIGINT/SIGTERM in the CLI). */
  readonly signal?: AbortSignal;
  /** Where the run logs; silent when absent. A `RunLogger` (log.ts) or any `Logger`. */
  readonly log?: Logger;
  /** Implementations by connector name, used instead of the registry's (tests, embedding). */
  readonly connectors?: {
    readonly sources?: Readonly<Record<string, SourceFactory>>;
    readonly sinks?: Readonly<Record<string, SinkFactory>>;
  };
  /** Per source; default 4. */
  readonly inFlightBatches?: number;
  /**
   * Retry delays (tests use tiny ones); with `retryForMs`, a budget used instead of every
   * connector's and the pipeline's `retry_for`.
   */
  readonly retry?: Partial<RetryPolicy>;
  /** Environment for env(); default process.env. */
  readonly env?: (name: string) => string | undefined;
  /** Counters to fill, e.g. shared with a progress display; created when absent. */
  readonly metrics?: Metrics;
  /** Used instead of the store the plan names (tests). */
  readonly checkpointStore?: CheckpointStore;
  /** The least time between two checkpoint saves while running (`CHECKPOINT_SAVE_INTERVAL_MS`). */
  readonly checkpointSaveIntervalMs?: number;
  /** Called once the run holds the pipeline's lock: from here on it is the pipeline's one run. */
  readonly onLocked?: () => void;
  /** Where sinks spool, one folder per sink, instead of beside the checkpoint state. */
  readonly spoolDir?: string;
}

export async function runPipeline(plan: Plan, options: RunOptions): Promise<RunSummary> {
  return new PipelineRun(plan, options).run();
}

class PipelineRun {
  private readonly log: RunLogger;
  private readonly metrics: Metrics;
  /** The pipeline's retry policy: its `retry_for`, with the delays of `RunOptions.retry`. */
  private retry: RetryPolicy;
  /** Each connector's, by `source NAME` / `sink NAME`; the pipeline's when absent. */
  private readonly retries = new Map<string, RetryPolicy>();
  /** Aborted to stop pulling: outside signal, caught up, or failure. */
  private readonly stop = new AbortController();
  /** Aborted on a failure only: what must go on while a stopping run drains (taking its lock again). */
  private readonly failing = new AbortController();
  /** Shut while the pipeline's lock is being taken again: no write may go out meanwhile. */
  private readonly gate = new WriteGate();
  /** Taking the lock again after its session ended, while that is going on. */
  private retaking: Promise<void> | undefined;
  /** Closing: a lock lost now is not taken again. */
  private closing = false;
  private failure: { error: unknown; where: string } | undefined;
  private failed!: () => void;
  private readonly failedPromise = new Promise<void>((resolve) => (this.failed = resolve));
  private stoppedBy: RunSummary["stoppedBy"] = "end";
  private readonly writers = new Map<string, SinkWriter>();
  private readonly workers = new Map<string, SinkWorker>();
  private readonly lanes = new Map<string, SinkLane>();
  private spools = new Map<string, LaneSpool>();
  /** A spool folder made for this run alone (a test's store), removed at the end. */
  private ownSpoolRoot: string | undefined;
  /** The folder of this run's spools, where `status.json` goes. */
  private spoolFolder: string | undefined;
  private lagReporter: SinkLagReporter | undefined;
  private readonly pumps = new Map<string, SourcePump>();
  private readonly sourceConnectors = new Map<string, string>();
  private coordinator: CheckpointCoordinator | undefined;
  /** The checkpoints the run resumed from. */
  private initial: Readonly<Record<string, SourceCheckpoint>> = {};
  /** Releases the pipeline's lock, once it is taken. */
  private releaseLock: (() => Promise<void>) | undefined;

  constructor(
    private readonly plan: Plan,
    private readonly options: RunOptions,
  ) {
    this.log = options.log === undefined ? silentLogger : asRunLogger(options.log);
    this.retry = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.metrics = options.metrics ?? new Metrics(plan.sources.map((s) => s.name), plan.sinks.map((s) => s.name));
  }

  async run(): Promise<RunSummary> {
    const { options, log } = this;
    const outside = options.signal;
    const onAbort = (): void => {
      if (this.stoppedBy === "end") this.stoppedBy = "signal";
      log.debug("stopping: draining what was read, then saving the checkpoint");
      this.stop.abort();
    };
    if (outside?.aborted) onAbort();
    outside?.addEventListener("abort", onAbort, { once: true });
    try {
      await this.start();
      if (this.failure === undefined) await this.flow();
    } catch (error) {
      // Connector and step errors are caught where they happen; this is anything else.
      this.fail(error, "pipeline");
    } finally {
      outside?.removeEventListener("abort", onAbort);
      await this.closeAll();
    }
    const summary = this.summary();
    if (this.failure !== undefined) {
      const { error, where } = this.failure;
      // A rejection's message already says where (the step or the sink) and which event; a
      // lock's names the pipeline, and the position is the other run's to move, not this one's.
      const message = error instanceof RejectedEventError || error instanceof PipelineLockedError ? error.message : `${where}: ${messageOf(error)}`;
      throw new PipelineFailure(message, error instanceof PipelineLockedError ? undefined : summary, { cause: error });
    }
    log.debug("pipeline stopped", { stopped_by: summary.stoppedBy, seconds: summary.seconds });
    return summary;
  }

  // ------------------------------------------------------------------ start

  private async start(): Promise<void> {
    const { plan, options, log } = this;
    let startValues;
    let flows: CompiledFlow[];
    try {
      startValues = resolveStartValues(plan, options.env);
      if (options.retry?.retryForMs === undefined && plan.pipeline.retry_for !== undefined) {
        this.retry = { ...this.retry, retryForMs: durationOf(plan.pipeline.retry_for, 'the pipeline setting "retry_for"') };
      }
      for (const [name, resolved] of startValues.sources) this.retries.set(`source ${name}`, this.connectorRetry(resolved, `source ${name}`));
      for (const [name, resolved] of startValues.sinks) this.retries.set(`sink ${name}`, this.connectorRetry(resolved, `sink ${name}`));
      flows = plan.flows.map((flow) => compileFlow(flow, { scope: startValues!.scope, baseDir: options.baseDir, log }));
    } catch (error) {
      this.fail(error, `pipeline ${plan.pipeline.name}`);
      return;
    }

    // Every implementation is loaded before anything connects, so that a connector that is
    // not built yet is reported at once rather than after the others have started.
    const sinkFactories = new Map<string, SinkFactory>();
    const sourceFactories = new Map<string, SourceFactory>();
    for (const sink of plan.sinks) {
      const factory = await this.load(`sink ${sink.name}`, () => options.connectors?.sinks?.[sink.connector] ?? loadSink(sink.connector));
      if (factory === undefined) return;
      sinkFactories.set(sink.name, factory);
    }
    for (const source of plan.sources) {
      const factory = await this.load(`source ${source.name}`, () => options.connectors?.sources?.[source.connector] ?? loadSource(source.connector));
      if (factory === undefined) return;
      sourceFactories.set(source.name, factory);
    }

    // Sinks are made (which connects nothing) before the lock is taken, because the lock is
    // the checkpoint store's and the store may be a sink's; they start only once it is held,
    // because starting one may change its output (the jsonl sink cuts a torn last line).
    const created = new Map<string, SinkWriter>();
    const replayFree = sinksWithoutReplay(plan);
    for (const sink of plan.sinks) {
      const resolved = startValues.sinks.get(sink.name)!;
      try {
        created.set(
          sink.name,
          sinkFactories.get(sink.name)!({
            pipeline: plan.pipeline.name,
            name: sink.name,
            options: connectorOptions(resolved),
            eventOptions: resolved.eventOptions,
            log: log.child({ sink: sink.name, connector: sink.connector }),
            baseDir: options.baseDir,
            // Sources start after sinks, so the reader is looked up when a sink first asks.
            describeSource: (event) => this.describeSource(event),
            mayReplay: !replayFree.has(sink.name),
          }),
        );
      } catch (error) {
        this.fail(error, `sink ${sink.name}`);
        return;
      }
    }

    let store: CheckpointStore;
    try {
      store = this.checkpointStore(created);
      await this.lock(store);
    } catch (error) {
      this.fail(error, "checkpoint store");
      return;
    }

    for (const sink of plan.sinks) {
      const writer = created.get(sink.name)!;
      // Closed at the end from here on, also when its start fails.
      this.writers.set(sink.name, writer);
      const sinkLog = log.child({ sink: sink.name, connector: sink.connector });
      try {
        await withRetry(`starting sink ${sink.name}`, () => writer.start(), { policy: this.retryOf(`sink ${sink.name}`), log: sinkLog, signal: this.stop.signal });
      } catch (error) {
        this.fail(error, `sink ${sink.name}`);
        return;
      }
      log.info("sink started", { sink: sink.name, connector: sink.connector });
    }

    let stored: Readonly<Record<string, SourceCheckpoint>>;
    try {
      stored = await withRetry("reading the checkpoints", () => store.load(), { policy: this.storeRetry(), log });
    } catch (error) {
      this.fail(error, "checkpoint store");
      return;
    }
    // A store written before per-sink positions holds only the sources': every sink is there.
    const { sources: initial, sinks: initialSinks } = splitCheckpoints(stored);

    const storedBySink = checkpointsInSink(plan);
    const checkpointSink = plan.pipeline.checkpoint.kind === "file" ? null : plan.pipeline.checkpoint.sink;
    const sinksOf = sinksOfSources(plan);
    const heldBy = sinkHeldPositions(plan);
    const gate = this.gate;
    const coordinator = new CheckpointCoordinator({
      store: {
        load: () => store.load(),
        save: async (checkpoints) => {
          await gate.wait();
          await store.save(checkpoints);
        },
      },
      sources: new Map(
        plan.sources.map((s) => [s.name, { sinks: sinksOf.get(s.name) ?? [], storedBySink: storedBySink.get(s.name) === true, holder: heldBy.get(s.name) ?? null }]),
      ),
      initial,
      initialSinks,
      acknowledge: async (source, checkpoint) => {
        await this.pumps.get(source)?.reader?.acknowledge(checkpoint);
        this.metrics.source(source).acknowledgedMs = Date.now();
      },
      onFatal: (error) => this.fail(error, "checkpoint store"),
      retry: this.storeRetry(),
      sourceRetry: (source) => this.retryOf(`source ${source}`),
      log,
      saveIntervalMs: options.checkpointSaveIntervalMs ?? CHECKPOINT_SAVE_INTERVAL_MS,
    });
    this.coordinator = coordinator;

    const inFlightLimit = Math.max(1, options.inFlightBatches ?? DEFAULT_IN_FLIGHT_BATCHES);
    let graph: PipelineGraph | undefined;
    const onRoom = (): void => {
      for (const pump of this.pumps.values()) pump.retired();
    };
    let spools: Map<string, LaneSpool>;
    try {
      spools = await this.openSpools(sinksOf, () => this.lanes, log);
    } catch (error) {
      this.fail(error, "spool");
      return;
    }
    for (const sink of plan.sinks) {
      const worker = new SinkWorker(sink.name, this.writers.get(sink.name)!, {
        retry: this.retryOf(`sink ${sink.name}`),
        log: log.child({ sink: sink.name, connector: sink.connector }),
        counters: this.metrics.sink(sink.name),
        metrics: this.metrics,
        onFatal: (error) => this.fail(error, `sink ${sink.name}`),
        beforeWrite: () => gate.wait(),
      });
      this.workers.set(sink.name, worker);
      const lane = new SinkLane({
        name: sink.name,
        worker,
        sinkDurable: (source, name, checkpoint, seq) => coordinator.sinkDurable(source, name, checkpoint, seq),
        memoryItems: inFlightLimit,
        rejected: (item, rejections, done) => graph!.rejected(sink.name, item, rejections, done),
        onRoom,
        ...(spools.has(sink.name) ? { spool: spools.get(sink.name)! } : {}),
        log: log.child({ sink: sink.name, connector: sink.connector }),
        onFatal: (error) => this.fail(error, `sink ${sink.name}`),
      });
      this.lanes.set(sink.name, lane);
    }
    // A sink whose own position is ahead of its source's skips what it already has.
    for (const [source, own] of initialSinks) {
      for (const [sink, checkpoint] of own) {
        if (checkpoint.position !== null && sinksOf.get(source)?.includes(sink) === true) this.lanes.get(sink)?.skipTo(source, checkpoint.position);
      }
    }
    graph = new PipelineGraph(
      {
        flows,
        lanes: this.lanes,
        workers: this.workers,
        deadLetter: plan.pipeline.dead_letter,
        storedBySink,
        checkpointSink,
        metrics: this.metrics,
        onFatal: (error) => this.fail(error, "pipeline"),
      },
      plan,
    );
    const dispatchGraph = graph;
    this.lagReporter = new SinkLagReporter({
      pipeline: plan.pipeline.name,
      lanes: this.lanes,
      positions: () => coordinator.sinkPositions(),
      log,
      ...(this.spoolFolder !== undefined ? { folder: this.spoolFolder } : {}),
    });

    for (const source of plan.sources) {
      const resolved = startValues.sources.get(source.name)!;
      const sourceLog = log.child({ source: source.name, connector: source.connector });
      const factory = sourceFactories.get(source.name)!;
      this.sourceConnectors.set(source.name, source.connector);
      this.pumps.set(
        source.name,
        new SourcePump({
          name: source.name,
          createReader: (resume) =>
            factory({
              pipeline: plan.pipeline.name,
              name: source.name,
              options: connectorOptions(resolved),
              resume,
              log: sourceLog,
              signal: this.stop.signal,
              baseDir: options.baseDir,
              snapshotProgress: (progress) => {
                this.metrics.source(source.name).snapshot = progress ?? undefined;
              },
            }),
          coordinator,
          dispatch: (batch) => dispatchGraph.dispatch(source.name, batch),
          hasRoom: () => dispatchGraph.hasRoom(source.name),
          rewind: () => dispatchGraph.rewind(source.name),
          retry: this.retryOf(`source ${source.name}`),
          log: sourceLog,
          counters: this.metrics.source(source.name),
          metrics: this.metrics,
          stop: this.stop.signal,
          onProgress: () => this.checkCaughtUp(),
        }),
      );
    }
    this.initial = initial;
  }

  /**
   * A spool for every sink that can fall behind another sink of one of its sources (sink-spool.ts),
   * in a folder beside the checkpoint state that the pipeline's lock makes this run's own;
   * none when `spool_max` is "0". What a killed run left there is said and removed: the spool is
   * a cache, and each sink reads again from its own position.
   */
  private async openSpools(sinksOf: ReadonlyMap<string, readonly string[]>, lanes: () => ReadonlyMap<string, SinkLane>, log: RunLogger): Promise<Map<string, LaneSpool>> {
    const { plan } = this;
    const setting = plan.pipeline.spool ?? { max: DEFAULT_SPOOL_MAX, on_full: "wait" as const };
    const size = parseSize(setting.max);
    if (!size.ok) throw new StartValueError(`the pipeline setting "spool_max": ${size.problem}`);
    const spools = new Map<string, LaneSpool>();
    if (size.bytes === 0) return spools;
    const spooling = new Set<string>();
    for (const sinks of sinksOf.values()) {
      const flowSinks = sinks.filter((sink) => sink !== plan.pipeline.dead_letter);
      if (flowSinks.length > 1) for (const sink of sinks) spooling.add(sink);
    }
    if (spooling.size === 0) return spools;
    const root = await this.spoolRoot();
    this.spoolFolder = root;
    for (const sink of spooling) {
      const dir = join(root, sink);
      const { spool, leftover } = await SinkSpool.open({
        dir,
        segmentBytes: Math.min(16 * 1024 * 1024, Math.max(64 * 1024, Math.floor(size.bytes / 8))),
        onFlushed: () => lanes().get(sink)?.spooled(),
      });
      if (leftover !== undefined && leftover.records > 0) {
        log.info("discarding the spool a previous run left; the sink reads again from its own position", { sink, spool: dir, records: leftover.records, bytes: leftover.bytes, torn_bytes: leftover.tornBytes });
      }
      spools.set(sink, { spool, dir, maxBytes: size.bytes, onFull: setting.on_full });
    }
    this.spools = spools;
    return spools;
  }

  /** `<checkpoint file>.spool/<pipeline>`, `.dts-spool/<pipeline>` beside a sink-held store, or a folder of this run's own. */
  private async spoolRoot(): Promise<string> {
    const { plan, options } = this;
    if (options.spoolDir !== undefined) return options.spoolDir;
    if (options.checkpointStore !== undefined) {
      this.ownSpoolRoot = await mkdtemp(join(tmpdir(), "dts-spool-"));
      return this.ownSpoolRoot;
    }
    return spoolRoot(plan, options.baseDir);
  }

  private async load<T>(where: string, load: () => T | Promise<T>): Promise<T | undefined> {
    try {
      return await load();
    } catch (error) {
      this.fail(error, where);
      return undefined;
    }
  }

  /**
   * The schema of the table an event came from, asked of the sources of the event's
   * connector that can describe tables (for a sink's create_tables). Events do not name the
   * pipeline source that read them, so with two sources of one connector the first that
   * knows the table answers.
   */
  /**
   * The schema of the table an event was read from, asked of the source that read it: the
   * flow's own source, named by the SinkEvent. A bare ChangeEvent names only its connector, and
   * two sources of one connector may each have a table of that name, so it is answered only
   * when one source could have read it: an undefined answer (types inferred from the values)
   * is better than another table's columns.
   */
  private async describeSource(given: SinkEvent | ChangeEvent): Promise<TableSchema | undefined> {
    const named = "target" in given ? given.sourceName : undefined;
    const event = "target" in given ? given.event : given;
    let source = named;
    if (source === undefined) {
      const candidates = [...this.pumps.keys()].filter((name) => this.sourceConnectors.get(name) === event.source.connector);
      if (candidates.length !== 1) return undefined;
      source = candidates[0]!;
    }
    return this.pumps.get(source)?.reader?.describe?.({ schema: event.source.schema || event.source.db, table: event.source.table });
  }

  private checkpointStore(sinks: ReadonlyMap<string, SinkWriter>): CheckpointStore {
    const { plan, options } = this;
    if (options.checkpointStore !== undefined) return options.checkpointStore;
    const setting = plan.pipeline.checkpoint;
    if (setting.kind === "file") return new FileCheckpointStore(resolve(options.baseDir, setting.path), plan.pipeline.name);
    const store = sinks.get(setting.sink)?.checkpoints;
    if (store === undefined) {
      throw new StartValueError(`checkpoint "${setting.kind}": sink ${setting.sink} cannot keep checkpoints`);
    }
    return store;
  }

  /** A connector's retry policy: its own `retry_for` when it has one, else the pipeline's. */
  private connectorRetry(resolved: ResolvedOptions, where: string): RetryPolicy {
    const value = resolved.options["retry_for"];
    if (value === undefined || value === null || this.options.retry?.retryForMs !== undefined) return this.retry;
    if (typeof value !== "string") throw new StartValueError(`${where}: option retry_for must be a duration such as "30s", "10m" or "1h", or "forever"`);
    return { ...this.retry, retryForMs: durationOf(value, `${where}: option retry_for`) };
  }

  private retryOf(connector: string): RetryPolicy {
    return this.retries.get(connector) ?? this.retry;
  }

  /** The checkpoint store's and the lock's: those of the sink holding them, else the pipeline's. */
  private storeRetry(): RetryPolicy {
    const setting = this.plan.pipeline.checkpoint;
    return setting.kind === "file" ? this.retry : this.retryOf(`sink ${setting.sink}`);
  }

  private async lock(store: CheckpointStore): Promise<void> {
    await this.takeLock(store);
    this.options.onLocked?.();
  }

  private async takeLock(store: CheckpointStore): Promise<void> {
    if (store.lock === undefined) return;
    this.releaseLock = await withRetry("taking the pipeline's lock", () => store.lock!({ log: this.log, onLost: (error) => this.lockLost(store, error) }), {
      policy: this.storeRetry(),
      log: this.log,
      signal: this.stop.signal,
    });
    this.log.debug("pipeline lock taken");
  }

  /**
   * The lock's session ended (the server restarted, the connection dropped): nothing is
   * written until the lock is taken again, which another run may have done in between.
   */
  private lockLost(store: CheckpointStore, error: Error): void {
    this.gate.shut();
    if (this.failure !== undefined || this.closing) {
      // Stopping anyway: nothing more goes out, and the next run resumes from the last checkpoint.
      this.gate.fail(error);
      this.log.warn("lost the pipeline's lock while stopping; nothing more is written", { error: messageOf(error) });
      return;
    }
    this.releaseLock = undefined;
    this.log.warn("lost the pipeline's lock; holding every write until it is taken again", { error: messageOf(error) });
    this.retaking = this.retakeLock(store);
  }

  private async retakeLock(store: CheckpointStore): Promise<void> {
    const take = () => store.lock!({ log: this.log, onLost: (error) => this.lockLost(store, error), retaking: true });
    try {
      const release = await withRetry("taking the pipeline's lock again", take, { policy: this.storeRetry(), log: this.log, signal: this.failing.signal });
      if (this.failure !== undefined) {
        await release();
        return;
      }
      this.releaseLock = release;
      this.gate.open();
      this.log.info("took the pipeline's lock again; writes go on");
    } catch (error) {
      if (error instanceof PipelineLockedError) {
        // Another run started while the lock was free: it reads from the same checkpoints, and
        // this run must not write beside it. Its holder is named, in case it is not wanted.
        this.fail(
          new ConnectorError(`lost the pipeline's lock, and another run took it meanwhile; stopping this run, which wrote nothing since. ${error.message}`, false, { cause: error, code: "DTS7109" }),
          "checkpoint store",
        );
      } else this.fail(error, "checkpoint store");
    } finally {
      this.retaking = undefined;
    }
  }

  // ------------------------------------------------------------------ running

  private async flow(): Promise<void> {
    this.lagReporter?.start();
    const pumps = [...this.pumps].map(async ([name, pump]) => {
      try {
        await pump.run(this.initial[name] ?? null);
      } catch (error) {
        this.fail(error, `source ${name}`);
      }
    });
    await Promise.race([Promise.all(pumps), this.failedPromise]);
    if (this.failure !== undefined) return;
    // Every source ended or the run is stopping: let what was read become durable.
    await Promise.race([this.drain(), this.failedPromise]);
  }

  private async drain(): Promise<void> {
    await Promise.all([...this.lanes.values()].map((lane) => lane.idle()));
    await Promise.all([...this.workers.values()].map((worker) => worker.idle()));
    await this.coordinator?.idle();
  }

  private checkCaughtUp(): void {
    if (!this.options.untilCaughtUp || this.stop.signal.aborted) return;
    for (const counters of this.metrics.sources.values()) if (!counters.caughtUp) return;
    this.stoppedBy = "caught-up";
    this.log.info("every source is caught up; stopping once everything read is durable");
    this.stop.abort();
  }

  private fail(error: unknown, where: string): void {
    if (this.failure !== undefined) {
      this.log.debug("a further error after the first", { where, error: messageOf(error) });
      return;
    }
    this.failure = { error, where };
    this.stoppedBy = "failed";
    // The caller reports the failure (it is what `run` throws); this record is for debugging.
    this.log.debug("stopping on an error", { where, error: messageOf(error) });
    if (this.log.level === "debug" && error instanceof Error) this.log.debug("stack", { stack: error.stack });
    this.stop.abort();
    this.failing.abort();
    this.gate.fail(new Error(`the run is stopping: ${where}: ${messageOf(error)}`));
    for (const worker of this.workers.values()) worker.stop();
    for (const lane of this.lanes.values()) lane.stop();
    this.failed();
  }

  // ------------------------------------------------------------------ stopping

  private async closeAll(): Promise<void> {
    // Everything read is durable, or the run failed: a lock lost from here on is not taken
    // again (a write still going out after a failure is then refused at the gate).
    this.closing = true;
    // Writes already running finish (they cannot be called back); queued ones were dropped on failure.
    await Promise.all([...this.workers.values()].map((worker) => worker.idle()));
    if (this.failure !== undefined) await this.coordinator?.settled();
    // A lock being taken again is held by now, or given up.
    await this.retaking;
    for (const [name, pump] of this.pumps) {
      const reader = pump.reader;
      if (reader === undefined) continue;
      await reader.close().catch((error: unknown) => this.log.warn("closing the source failed", { source: name, error: messageOf(error) }));
    }
    for (const [name, writer] of this.writers) {
      await writer.close().catch((error: unknown) => this.log.warn("closing the sink failed", { sink: name, error: messageOf(error) }));
    }
    await this.lagReporter?.stop();
    // A spool is a cache: what it still holds (after a failure) is read again from the source.
    for (const { spool } of this.spools.values()) await spool.close().catch(() => {});
    if (this.ownSpoolRoot !== undefined) await rm(this.ownSpoolRoot, { recursive: true, force: true }).catch(() => {});
    // Last, so that the last checkpoint is saved under the lock.
    await this.releaseLock?.().catch((error: unknown) => this.log.warn("releasing the pipeline's lock failed", { error: messageOf(error) }));
  }

  private summary(): RunSummary {
    const durable = this.coordinator?.durableCheckpoints() ?? {};
    const sources: Record<string, RunSummary["sources"][string]> = {};
    for (const [name, counters] of this.metrics.sources) {
      sources[name] = { events: counters.events, batches: counters.batches, checkpoint: durable[name] ?? this.initial[name] ?? null };
    }
    const sinks: Record<string, RunSummary["sinks"][string]> = {};
    const positions = this.coordinator?.sinkCheckpoints();
    for (const [name, counters] of this.metrics.sinks) {
      const own = positions?.get(name);
      sinks[name] = {
        events: counters.events,
        writes: counters.writes,
        rejected: counters.rejected,
        retries: counters.retries,
        positions: own === undefined ? {} : Object.fromEntries(own),
      };
    }
    return {
      pipeline: this.plan.pipeline.name,
      stoppedBy: this.stoppedBy,
      sources,
      sinks,
      deadLettered: this.metrics.deadLettered,
      seconds: Math.round(this.metrics.elapsedSeconds() * 1000) / 1000,
    };
  }
}

/**
 * The sinks no write of which is ever given twice: every source that feeds one keeps its
 * position in that sink's own transactions (`checkpoint: "postgres"` with it as the only sink
 * the source reaches), so a crash loses the uncommitted write and nothing after the stored
 * position was applied (SinkContext.mayReplay).
 */
export function sinksWithoutReplay(plan: Plan): Set<string> {
  const holder = plan.pipeline.checkpoint.kind === "file" ? null : plan.pipeline.checkpoint.sink;
  if (holder === null) return new Set();
  const heldBy = sinkHeldPositions(plan);
  const feeding = plan.sources.filter((source) => plan.flows.some((flow) => flow.source === source.name && flow.sinks.includes(holder)));
  return feeding.length > 0 && feeding.every((source) => heldBy.get(source.name) === holder) ? new Set([holder]) : new Set();
}

/** A duration of the plan, in ms; a bad one (from env() at start) stops the start. */
function durationOf(text: string, what: string): number {
  const parsed = parseDuration(text);
  if (!parsed.ok) throw new StartValueError(`${what} must be a duration such as "30s", "10m" or "1h", or "forever"; found ${JSON.stringify(text)}: ${parsed.problem}`);
  return parsed.ms;
}

/** The options a connector is given: `retry_for` is the runner's, not the connector's. */
function connectorOptions(resolved: ResolvedOptions): Record<string, Value> {
  return withoutOption(resolved.options, "retry_for");
}
