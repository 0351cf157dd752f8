/**
 * Fakes for the runtime's tests: sources that send given batches, sinks that record, fail or
 * dawdle on demand, a checkpoint store in memory, and plans compiled from .dts text.
 */
import { compileText } from "../../src/compile.js";
import type { ChangeEvent, Op } from "../../src/model/event.js";
import { seqPosition } from "../../src/model/position.js";
import { Timestamp } from "../../src/model/timestamp.js";
import type { Row } from "../../src/model/value.js";
import type { Plan } from "../../src/plan/types.js";
import type {
  CheckpointStore,
  Rejection,
  SinkBatch,
  SinkContext,
  SinkFactory,
  SinkWriter,
  SourceBatch,
  SourceCheckpoint,
  SourceContext,
  SourceFactory,
  SourceReader,
} from "../../src/runtime/contracts.js";

export function planOf(text: string, path = "/tmp/test.dts"): Plan {
  const result = compileText(text, path);
  if (result.plan === undefined) throw new Error(`the test pipeline does not compile:\n${result.rendered}`);
  return result.plan;
}

let nextSeq = 1;

/** A change event of `shop.orders` (or `table`) at position `seq`. */
export function orderEvent(seq: number, options: { op?: Op; txid?: string; table?: string; row?: Row; before?: Row } = {}): ChangeEvent {
  const op = options.op ?? "insert";
  const row: Row = options.row ?? { id: seq, amount: seq * 10, status: "paid" };
  const before = options.before ?? (op === "update" ? { ...row, status: "pending" } : op === "delete" ? row : null);
  return {
    op,
    before,
    after: op === "delete" ? null : row,
    key: { id: row["id"]! },
    source: {
      connector: "test",
      db: "shop",
      schema: "shop",
      table: options.table ?? "orders",
      position: seqPosition(seq),
      ts: Timestamp.fromEpochMicros(1_700_000_000_000_000n + BigInt(seq)),
      txid: options.txid ?? String(seq),
    },
  };
}

/** `count` batches of `size` events each, every one ending a transaction (with a checkpoint). */
export function batchesOf(count: number, size: number): SourceBatch[] {
  const batches: SourceBatch[] = [];
  for (let b = 0; b < count; b++) {
    const events = Array.from({ length: size }, (_, i) => orderEvent(nextSeq + i, { txid: `tx${b}` }));
    nextSeq += size;
    const last = events[events.length - 1]!;
    batches.push({ events, checkpoint: { position: last.source.position }, ...(b === count - 1 ? { caughtUp: true } : {}) });
  }
  return batches;
}

export function resetSeq(): void {
  nextSeq = 1;
}

/** A source sending `batches` (then ending), recording what it is asked and told. */
export class ScriptedSource implements SourceReader {
  pulled = 0;
  readonly acknowledged: SourceCheckpoint[] = [];
  closed = false;

  constructor(
    readonly context: SourceContext,
    private readonly script: readonly SourceBatch[] | ((source: ScriptedSource) => AsyncIterable<SourceBatch>),
  ) {}

  async start(): Promise<void> {}

  async *batches(): AsyncGenerator<SourceBatch> {
    if (typeof this.script === "function") {
      for await (const batch of this.script(this)) {
        this.pulled++;
        yield batch;
      }
      return;
    }
    // Skip what the checkpoint covers, as a real source would.
    const after = this.context.resume?.position?.token;
    let skipping = after !== undefined;
    for (const batch of this.script) {
      if (skipping) {
        if (batch.checkpoint?.position?.token === after) skipping = false;
        continue;
      }
      if (this.context.signal.aborted) return;
      this.pulled++;
      yield batch;
    }
  }

  async acknowledge(checkpoint: SourceCheckpoint): Promise<void> {
    this.acknowledged.push(checkpoint);
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

export interface SinkBehaviour {
  /** Milliseconds each write takes. */
  readonly delayMs?: number;
  /** Called before each write (1-based call number): throw to fail it. */
  readonly beforeWrite?: (call: number, batch: SinkBatch) => void | Promise<void>;
  /** Events to refuse, by a predicate on the event. */
  readonly reject?: (event: ChangeEvent) => string | undefined;
  readonly checkpoints?: CheckpointStore;
}

/** A sink recording every batch it made durable. */
export class RecordingSink implements SinkWriter {
  readonly batches: SinkBatch[] = [];
  calls = 0;
  writing = false;
  closed = false;
  readonly checkpoints?: CheckpointStore;

  constructor(
    readonly context: SinkContext,
    private readonly behaviour: SinkBehaviour = {},
  ) {
    if (behaviour.checkpoints !== undefined) this.checkpoints = behaviour.checkpoints;
  }

  get events() {
    return this.batches.flatMap((batch) => batch.events);
  }

  async start(): Promise<void> {}

  async write(batch: SinkBatch): Promise<readonly Rejection[]> {
    if (this.writing) throw new Error("write called while another write is running");
    this.writing = true;
    try {
      this.calls++;
      await this.behaviour.beforeWrite?.(this.calls, batch);
      if (this.behaviour.delayMs !== undefined) await new Promise((resolve) => setTimeout(resolve, this.behaviour.delayMs));
      const rejections: Rejection[] = [];
      const kept = batch.events.filter((sinkEvent, index) => {
        const reason = this.behaviour.reject?.(sinkEvent.event);
        if (reason !== undefined) rejections.push({ index, reason });
        return reason === undefined;
      });
      this.batches.push({ ...batch, events: kept });
      return rejections;
    } finally {
      this.writing = false;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

/** Factories keeping every instance by the sink's or source's name in the pipeline. */
export function recordingSinks(behaviours: Record<string, SinkBehaviour> = {}): { factory: SinkFactory; sinks: Map<string, RecordingSink> } {
  const sinks = new Map<string, RecordingSink>();
  const factory: SinkFactory = (context) => {
    const sink = new RecordingSink(context, behaviours[context.name]);
    sinks.set(context.name, sink);
    return sink;
  };
  return { factory, sinks };
}

export function scriptedSources(
  scripts: Record<string, readonly SourceBatch[] | ((source: ScriptedSource) => AsyncIterable<SourceBatch>)>,
): { factory: SourceFactory; sources: Map<string, ScriptedSource[]> } {
  const sources = new Map<string, ScriptedSource[]>();
  const factory: SourceFactory = (context) => {
    const script = scripts[context.name];
    if (script === undefined) throw new Error(`no script for source ${context.name}`);
    const source = new ScriptedSource(context, script);
    sources.set(context.name, [...(sources.get(context.name) ?? []), source]);
    return source;
  };
  return { factory, sources };
}

/** A checkpoint store in memory that records each save. */
export class MemoryStore implements CheckpointStore {
  readonly saves: Record<string, SourceCheckpoint>[] = [];
  current: Record<string, SourceCheckpoint> = {};

  constructor(
    initial: Record<string, SourceCheckpoint> = {},
    private readonly onSave?: (checkpoints: Readonly<Record<string, SourceCheckpoint>>) => void | Promise<void>,
  ) {
    this.current = { ...initial };
  }

  async load(): Promise<Readonly<Record<string, SourceCheckpoint>>> {
    return { ...this.current };
  }

  async save(checkpoints: Readonly<Record<string, SourceCheckpoint>>): Promise<void> {
    await this.onSave?.(checkpoints);
    this.saves.push({ ...checkpoints });
    this.current = { ...this.current, ...checkpoints };
  }
}

/** Retries a few milliseconds apart, for a tenth of a second: an outage of a test's scale. */
export const fastRetry = { retryForMs: 100, initialDelayMs: 1, maxDelayMs: 5 };

export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: unknown) => void } {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
