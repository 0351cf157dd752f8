/**
 * The pipeline as a graph: sources → flows → sinks, and what happens to one source batch.
 *
 * A source may feed several flows, a flow fans out to several sinks, and a sink may be fed by
 * several flows (and by several sources). For each batch, `dispatch` runs every flow of the
 * source, gathers what each sink receives into one work item per sink — merged back into the
 * source's event order when several flows feed the same sink, so that per-key order holds —
 * and opens a checkpoint ticket that completes when every one of those items is durable.
 *
 * Rejected events never vanish: a step's rejections and a sink's rejections go to the
 * dead-letter sink as part of the same ticket (so the position does not move past them until
 * they are durable there), or, without a dead-letter sink, stop the pipeline before anything
 * of the batch is written (a step's rejection) or before the position moves (a sink's).
 */
import type { ChangeEvent } from "../model/event.js";
import type { Plan } from "../plan/types.js";
import type { CheckpointCoordinator, BatchTicket } from "./checkpoint-coordinator.js";
import {
  batchSize,
  type BulkRows,
  type Rejection,
  type SinkEvent,
  type SinkSchemaChange,
  type SourceBatch,
  type SourceCheckpoint,
  type SourceTransaction,
} from "./contracts.js";
import { RejectedEventError } from "./failures.js";
import type { Metrics } from "./metrics.js";
import type { SinkWorker } from "./sink-worker.js";
import { defaultTarget } from "./start-values.js";
import { emptyFlowOutput, type CompiledFlow } from "./steps.js";

/** Events bound for one sink, each with its place in the source batch. */
interface Part {
  readonly events: readonly SinkEvent[];
  readonly indexes: readonly number[];
  /** Set when the part is the whole batch as it came: its bulk rows may go instead. */
  readonly bulk?: BulkRows;
}

/**
 * The whole batch for a flow without steps. When the batch has bulk rows, its events are made
 * only if something reads them (a sink that does not take the rows, a rejection), so a snapshot
 * chunk a sink loads as it is never becomes events.
 */
function wholeBatch(batch: SourceBatch, sourceName: string): Part {
  if (batch.bulk === undefined) {
    const events = batch.events;
    return { events: events.map((event) => ({ event, target: defaultTarget(event), sourceName })), indexes: events.map((_, i) => i) };
  }
  let events: SinkEvent[] | undefined;
  let indexes: number[] | undefined;
  return {
    bulk: batch.bulk,
    get events() {
      return (events ??= batch.events.map((event) => ({ event, target: defaultTarget(event), sourceName })));
    },
    get indexes() {
      return (indexes ??= Array.from({ length: batch.bulk!.count }, (_, i) => i));
    },
  };
}

/**
 * Which sources keep their checkpoints inside a sink's transactions: when the pipeline's
 * checkpoint store is a sink (`checkpoint: "postgres"`) and that sink is the only one the
 * source's events can reach. With a second sink (or a dead-letter sink) the checkpoint must
 * wait for all of them, so it goes through the store after they are durable.
 */
export function checkpointsInSink(plan: Plan): Map<string, boolean> {
  const holder = plan.pipeline.checkpoint.kind === "file" ? null : plan.pipeline.checkpoint.sink;
  const result = new Map<string, boolean>();
  for (const source of plan.sources) {
    const fed = new Set<string>();
    for (const flow of plan.flows) if (flow.source === source.name) for (const sink of flow.sinks) fed.add(sink);
    if (plan.pipeline.dead_letter !== null) fed.add(plan.pipeline.dead_letter);
    result.set(source.name, holder !== null && fed.size === 1 && fed.has(holder));
  }
  return result;
}

export interface GraphOptions {
  readonly flows: readonly CompiledFlow[];
  readonly workers: ReadonlyMap<string, SinkWorker>;
  readonly coordinator: CheckpointCoordinator;
  readonly deadLetter: string | null;
  readonly storedBySink: ReadonlyMap<string, boolean>;
  /** The sink holding checkpoints, when it is a sink. */
  readonly checkpointSink: string | null;
  readonly metrics: Metrics;
  readonly onFatal: (error: unknown) => void;
}

export class PipelineGraph {
  private readonly flowsBySource = new Map<string, CompiledFlow[]>();
  /** Per source inside a transaction larger than a batch: the sinks that received part of it. */
  private readonly openIn = new Map<string, Set<string>>();

  constructor(private readonly options: GraphOptions) {
    for (const flow of options.flows) {
      const list = this.flowsBySource.get(flow.source) ?? [];
      list.push(flow);
      this.flowsBySource.set(flow.source, list);
    }
  }

  /**
   * Runs the source's flows over the batch and hands the results to the sinks. Returns false
   * when the batch stopped the pipeline (a rejection with no dead-letter sink).
   */
  dispatch(source: string, batch: SourceBatch): boolean {
    const { deadLetter, metrics } = this.options;
    const parts = new Map<string, Part[]>();
    const add = (sink: string, part: Part): void => {
      const list = parts.get(sink);
      if (list === undefined) parts.set(sink, [part]);
      else list.push(part);
    };
    let whole: Part | undefined;
    // What a sink's rejection needs later: the batch's events. Once a flow has made them, they
    // alone are kept, not the batch, whose bulk rows (a snapshot chunk's bytes, maybe 100 MB
    // for one row) would otherwise stay until every sink is done with it.
    let eventsOf = (): readonly ChangeEvent[] => batch.events;
    for (const flow of this.flowsBySource.get(source) ?? []) {
      if (flow.passesAll) {
        whole ??= wholeBatch(batch, source);
        for (const sink of flow.sinks) add(sink, whole);
        continue;
      }
      const events = batch.events;
      eventsOf = () => events;
      const out = emptyFlowOutput();
      flow.run(events, out);
      if (out.rejected.length > 0) {
        metrics.stepRejected += out.rejected.length;
        if (deadLetter === null) {
          const first = out.rejected[0]!;
          this.options.onFatal(new RejectedEventError(first.event, first.rejection!.reason, first.rejection!.where));
          return false;
        }
        metrics.deadLettered += out.rejected.length;
        add(deadLetter, { events: out.rejected, indexes: out.rejectedIndex });
      }
      if (out.kept.length > 0) {
        const part = { events: out.kept, indexes: out.keptIndex };
        for (const sink of flow.sinks) add(sink, part);
      }
    }

    const schemaChanges = this.schemaChanges(source, batch, parts);

    const checkpoint = batch.checkpoint;
    const inSink = checkpoint !== undefined && this.options.storedBySink.get(source) === true;
    const holder = this.options.checkpointSink;
    if (inSink && holder !== null && !parts.has(holder)) {
      // Nothing for the sink in this batch, but the position still moves, and it must move in
      // the sink's own order (after the writes already queued there), so it goes as an empty write.
      parts.set(holder, [{ events: [], indexes: [] }]);
    }

    const transactionOf = this.transactions(source, batch, parts);

    const ticket = this.options.coordinator.open(source, checkpoint, parts.size);
    for (const [sink, list] of parts) {
      const part = list.length === 1 ? list[0]! : mergeParts(list);
      const checkpoints: Record<string, SourceCheckpoint> | undefined =
        inSink && sink === holder ? { [source]: checkpoint! } : undefined;
      const transaction = transactionOf(sink);
      const changes = schemaChanges?.get(sink);
      const extra = {
        ...(checkpoints !== undefined ? { checkpoints } : {}),
        ...(transaction !== undefined ? { transaction } : {}),
        ...(changes !== undefined ? { schemaChanges: changes } : {}),
      };
      const onDurable = (rejections: readonly Rejection[]): void => this.written(sink, ticket, eventsOf, part, rejections);
      this.worker(sink).enqueue(
        part.bulk === undefined
          ? { events: part.events, ...extra, onDurable }
          : {
              bulk: part.bulk,
              get events() {
                return part.events;
              },
              ...extra,
              onDurable,
            },
      );
    }
    return true;
  }

  /**
   * The batch's schema changes, per sink that must see them: the sinks of flows that keep the
   * source's columns (SinkBatch.schemaChanges). Each such sink gets a write even when the flows
   * left it no event, since the change comes before the events of later batches.
   */
  private schemaChanges(source: string, batch: SourceBatch, parts: Map<string, Part[]>): Map<string, SinkSchemaChange[]> | undefined {
    const changes = batch.schemaChanges;
    if (changes === undefined || changes.length === 0) return undefined;
    const bySink = new Map<string, SinkSchemaChange[]>();
    for (const flow of this.flowsBySource.get(source) ?? []) {
      if (!flow.keepsColumns) continue;
      for (const sink of flow.sinks) {
        if (bySink.has(sink)) continue;
        bySink.set(sink, changes.map((change) => ({ change, target: change.table })));
        if (!parts.has(sink)) parts.set(sink, [{ events: [], indexes: [] }]);
      }
    }
    return bySink;
  }

  /**
   * Where the batch stands in its source's transactions, per sink (`SinkBatch.transaction`). A
   * batch with events and no checkpoint ends inside a transaction; the next batch with a
   * checkpoint ends it. Every sink that received part of the transaction gets a write of the
   * batch that ends it — an empty one if the flows left it nothing — so that it can commit.
   */
  private transactions(source: string, batch: SourceBatch, parts: Map<string, Part[]>): (sink: string) => SourceTransaction | undefined {
    const started = this.openIn.get(source);
    const open = batch.checkpoint === undefined && (batchSize(batch) > 0 || started !== undefined);
    if (started === undefined && !open) return () => undefined;
    if (started !== undefined && !open) {
      for (const sink of started) if (!parts.has(sink)) parts.set(sink, [{ events: [], indexes: [] }]);
      this.openIn.delete(source);
    }
    const sinks = started ?? new Set<string>();
    const continuing = new Set(sinks);
    if (open) {
      for (const sink of parts.keys()) sinks.add(sink);
      this.openIn.set(source, sinks);
    }
    return (sink) => ({ source, continues: continuing.has(sink), open });
  }

  /** A sink made its part of a batch durable, perhaps refusing some events. */
  private written(sink: string, ticket: BatchTicket, eventsOf: () => readonly ChangeEvent[], part: Part, rejections: readonly Rejection[]): void {
    const { deadLetter, coordinator, metrics } = this.options;
    if (rejections.length === 0) {
      coordinator.sinkDone(ticket);
      return;
    }
    const original = eventsOf();
    const first = rejections[0]!;
    const firstEvent = original[part.indexes[first.index]!]!;
    if (deadLetter === null || sink === deadLetter) {
      const where = sink === deadLetter ? `the dead-letter sink ${sink}` : `sink ${sink}`;
      this.options.onFatal(new RejectedEventError(firstEvent, first.reason, where));
      return;
    }
    // The event goes to the dead-letter sink as it entered the flow, like a step's rejection.
    const rejected: SinkEvent[] = rejections.map((rejection) => {
      const event = original[part.indexes[rejection.index]!]!;
      return { event, target: defaultTarget(event), sourceName: part.events[rejection.index]?.sourceName, rejection: { reason: rejection.reason, where: `sink ${sink}` } };
    });
    metrics.deadLettered += rejected.length;
    ticket.pending++;
    this.worker(deadLetter).enqueue({
      events: rejected,
      onDurable: (refused) => {
        if (refused.length === 0) {
          coordinator.sinkDone(ticket);
          return;
        }
        const event = rejected[refused[0]!.index]!.event;
        this.options.onFatal(new RejectedEventError(event, refused[0]!.reason, `the dead-letter sink ${deadLetter}`));
      },
    });
    coordinator.sinkDone(ticket);
  }

  private worker(sink: string): SinkWorker {
    const worker = this.options.workers.get(sink);
    if (worker === undefined) throw new Error(`no worker for sink ${sink}`);
    return worker;
  }
}

/** Parts (each in batch order) merged into batch order; equal indexes keep the parts' order. */
function mergeParts(parts: readonly Part[]): Part {
  let merged = parts[0]!;
  for (let p = 1; p < parts.length; p++) {
    const next = parts[p]!;
    const events: SinkEvent[] = [];
    const indexes: number[] = [];
    let i = 0;
    let j = 0;
    while (i < merged.indexes.length || j < next.indexes.length) {
      if (j >= next.indexes.length || (i < merged.indexes.length && merged.indexes[i]! <= next.indexes[j]!)) {
        events.push(merged.events[i]!);
        indexes.push(merged.indexes[i++]!);
      } else {
        events.push(next.events[j]!);
        indexes.push(next.indexes[j++]!);
      }
    }
    merged = { events, indexes };
  }
  return merged;
}
