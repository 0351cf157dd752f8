/**
 * The pipeline as a graph: sources → flows → sinks, and what happens to one source batch.
 *
 * A source may feed several flows, a flow fans out to several sinks, and a sink may be fed by
 * several flows (and by several sources). For each batch, `dispatch` runs every flow of the
 * source, gathers what each sink receives into one work item per sink — merged back into the
 * source's event order when several flows feed the same sink, so that per-key order holds —
 * and hands it to the sink's lane (sink-lane.ts), which keeps the sink's own position in the
 * source's stream: sinks of one source move on their own, and the source at their least.
 *
 * Rejected events never vanish: a step's rejections go to the dead-letter sink as its part of
 * the batch, and a sink's rejections are durable in the dead-letter sink before the sink's item
 * counts as durable (so its position does not move past them), or, without a dead-letter sink,
 * stop the pipeline before anything of the batch is written (a step's rejection) or before the
 * position moves (a sink's).
 */
import type { ChangeEvent } from "../model/event.js";
import type { Plan } from "../plan/types.js";
import {
  batchSize,
  type BulkRows,
  type Rejection,
  type SinkEvent,
  type SinkSchemaChange,
  type SourceBatch,
  type SourceTransaction,
} from "./contracts.js";
import { RejectedEventError } from "./failures.js";
import type { Metrics } from "./metrics.js";
import type { LaneItem, SinkLane } from "./sink-lane.js";
import { sinkKey } from "./sink-positions.js";
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
  readonly lanes: ReadonlyMap<string, SinkLane>;
  readonly workers: ReadonlyMap<string, SinkWorker>;
  readonly deadLetter: string | null;
  readonly storedBySink: ReadonlyMap<string, boolean>;
  /** The sink holding checkpoints, when it is a sink. */
  readonly checkpointSink: string | null;
  readonly metrics: Metrics;
  readonly onFatal: (error: unknown) => void;
}

/**
 * The sinks each source's events can reach: its flows' sinks, in order, then the dead-letter
 * sink. Each of them has its own position in the source's stream.
 */
export function sinksOfSources(plan: Plan): Map<string, string[]> {
  const result = new Map<string, string[]>();
  for (const source of plan.sources) {
    const fed: string[] = [];
    for (const flow of plan.flows) if (flow.source === source.name) for (const sink of flow.sinks) if (!fed.includes(sink)) fed.push(sink);
    if (plan.pipeline.dead_letter !== null && !fed.includes(plan.pipeline.dead_letter)) fed.push(plan.pipeline.dead_letter);
    result.set(source.name, fed);
  }
  return result;
}

/**
 * The sink that stores its own position in each source's stream inside its own writes: the
 * sink holding the pipeline's checkpoints (`checkpoint: "postgres"`), for the sources that
 * reach it. With other sinks beside it, only when there is no dead-letter sink: a write that
 * carries checkpoints cannot hand rejections on (SinkBatch.checkpoints), so its position then
 * goes through the store like the others'.
 */
export function sinkHeldPositions(plan: Plan): Map<string, string | null> {
  const holder = plan.pipeline.checkpoint.kind === "file" ? null : plan.pipeline.checkpoint.sink;
  const inSink = checkpointsInSink(plan);
  const result = new Map<string, string | null>();
  for (const [source, sinks] of sinksOfSources(plan)) {
    const held = holder !== null && sinks.includes(holder) && (inSink.get(source) === true || plan.pipeline.dead_letter === null);
    result.set(source, held ? holder : null);
  }
  return result;
}

export class PipelineGraph {
  private readonly flowsBySource = new Map<string, CompiledFlow[]>();
  /** Per source inside a transaction larger than a batch: the sinks that received part of it. */
  private readonly openIn = new Map<string, Set<string>>();
  /** Per source: the number of its last batch. */
  private readonly seqs = new Map<string, number>();
  private readonly sinksOf = new Map<string, string[]>();
  private readonly holderOf: ReadonlyMap<string, string | null>;

  constructor(
    private readonly options: GraphOptions,
    plan: Plan,
  ) {
    for (const flow of options.flows) {
      const list = this.flowsBySource.get(flow.source) ?? [];
      list.push(flow);
      this.flowsBySource.set(flow.source, list);
    }
    for (const [source, sinks] of sinksOfSources(plan)) this.sinksOf.set(source, sinks);
    this.holderOf = sinkHeldPositions(plan);
  }

  /**
   * Whether the source may send another batch: every sink it feeds takes it, in memory, or in
   * its spool while another sink of the source keeps up (sink-lane.ts).
   */
  hasRoom(source: string): boolean {
    const spoolAllowed = this.spoolAllowed(source);
    return (this.sinksOf.get(source) ?? []).every((sink) => this.lane(sink).hasRoom(spoolAllowed));
  }

  /** The source reconnects from its least position: each sink skips what it was given already. */
  rewind(source: string): void {
    for (const sink of this.sinksOf.get(source) ?? []) this.lane(sink).rewind(source);
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
    if (checkpoint !== undefined) {
      // Every sink's position moves through the whole stream, also past batches the flows left
      // it nothing of; an empty item costs no write (sink-worker.ts).
      for (const sink of this.sinksOf.get(source) ?? []) if (!parts.has(sink)) parts.set(sink, [{ events: [], indexes: [] }]);
    }

    const transactionOf = this.transactions(source, batch, parts);
    const seq = (this.seqs.get(source) ?? 0) + 1;
    this.seqs.set(source, seq);
    const holder = this.holderOf.get(source) ?? null;
    // The source's own key when the holder is its only sink (as before per-sink positions).
    const heldKey = this.options.storedBySink.get(source) === true ? source : sinkKey(source, holder ?? "");
    const spoolAllowed = this.spoolAllowed(source);
    const at = Date.now();
    for (const [sink, list] of parts) {
      const part = list.length === 1 ? list[0]! : mergeParts(list);
      const transaction = transactionOf(sink);
      const changes = schemaChanges?.get(sink);
      const fields = {
        source,
        seq,
        ...(checkpoint !== undefined ? { checkpoint } : {}),
        ...(checkpoint !== undefined && sink === holder ? { checkpoints: { [heldKey]: checkpoint } } : {}),
        ...(transaction !== undefined ? { transaction } : {}),
        ...(changes !== undefined ? { schemaChanges: changes } : {}),
        original: (index: number) => eventsOf()[part.indexes[index]!]!,
        at,
      };
      // Events are made only when read for bulk rows; otherwise a plain field (a getter here
      // kept every batch's scope alive long enough to triple the heap behind a slow sink).
      const bulk = part.bulk;
      const item: LaneItem =
        bulk === undefined
          ? { ...fields, events: part.events }
          : {
              ...fields,
              bulk,
              get events() {
                return part.events;
              },
            };
      this.lane(sink).offer(item, spoolAllowed);
    }
    return true;
  }

  /** A sink of the source may spool: the source has another (not the dead-letter sink) that keeps up. */
  private spoolAllowed(source: string): boolean {
    const flowLanes = (this.sinksOf.get(source) ?? []).filter((sink) => sink !== this.options.deadLetter).map((sink) => this.lane(sink));
    return flowLanes.length > 1 && flowLanes.some((lane) => lane.keepsUp());
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

  /**
   * A sink refused events of an item: they go to the dead-letter sink as they entered the flow,
   * like a step's rejection, and the item is durable once they are; without a dead-letter sink
   * (or refused by it) the pipeline stops before the position moves past them.
   */
  rejected(sink: string, item: LaneItem, rejections: readonly Rejection[], done: () => void): void {
    const { deadLetter, metrics } = this.options;
    const originalOf = (index: number): ChangeEvent => item.original?.(index) ?? item.events[index]!.event;
    const first = rejections[0]!;
    if (deadLetter === null || sink === deadLetter) {
      const where = sink === deadLetter ? `the dead-letter sink ${sink}` : `sink ${sink}`;
      this.options.onFatal(new RejectedEventError(originalOf(first.index), first.reason, where));
      return;
    }
    const rejected: SinkEvent[] = rejections.map((rejection) => {
      const event = originalOf(rejection.index);
      return { event, target: defaultTarget(event), sourceName: item.events[rejection.index]?.sourceName, rejection: { reason: rejection.reason, where: `sink ${sink}` } };
    });
    metrics.deadLettered += rejected.length;
    const worker = this.options.workers.get(deadLetter);
    if (worker === undefined) throw new Error(`no worker for sink ${deadLetter}`);
    worker.enqueue({
      events: rejected,
      onDurable: (refused) => {
        if (refused.length === 0) {
          done();
          return;
        }
        const event = rejected[refused[0]!.index]!.event;
        this.options.onFatal(new RejectedEventError(event, refused[0]!.reason, `the dead-letter sink ${deadLetter}`));
      },
    });
  }

  private lane(sink: string): SinkLane {
    const lane = this.options.lanes.get(sink);
    if (lane === undefined) throw new Error(`no lane for sink ${sink}`);
    return lane;
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
