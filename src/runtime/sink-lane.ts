/**
 * What stands between the graph and one sink's writer loop (sink-worker.ts): the sink's own
 * progress through each source's stream, so that sinks of one source move on their own.
 *
 * Every batch of a source that reaches a checkpoint gives each of the source's sinks an item,
 * empty when the flows left it nothing, so that each sink's position moves through the whole
 * stream. The lane counts those items in order per source (writes of bulk rows may complete
 * out of order) and tells the coordinator how far the sink is (`sinkDurable`): the source
 * itself moves only to the least of its sinks' positions.
 *
 * A sink resumed ahead of its source (it kept up while another lagged) skips what it already
 * has: events its own position covers (`coveredBy`) are taken out of its items, and so is the
 * checkpoint of a batch before its own position, which would move it back. The same happens
 * when a source reconnects mid-run from its (least) position: each lane skips up to the newest
 * checkpoint it was already given (`rewind`).
 *
 * The lane holds at most `memoryItems` items in memory (queued or being written). Past that a
 * lane whose source has another sink that keeps up writes its items to its spool
 * (sink-spool.ts), in order, and reads them back as the sink catches up; otherwise (one sink, or
 * every sink behind) it has no room, and the source waits: plain backpressure.
 */
import type { ChangeEvent } from "../model/event.js";
import { comparePositions, coveredBy, type Position } from "../model/position.js";
import type { BulkRows, Rejection, SinkEvent, SinkSchemaChange, SourceCheckpoint, SourceTransaction } from "./contracts.js";
import type { SinkWorker } from "./sink-worker.js";

/** One source batch's part for one sink. */
export interface LaneItem {
  readonly source: string;
  /** The batch's run-local number in its source's stream, from 1. */
  readonly seq: number;
  /** The position this sink reaches once the item is durable; none inside a transaction. */
  readonly checkpoint?: SourceCheckpoint;
  readonly events: readonly SinkEvent[];
  readonly bulk?: BulkRows;
  /** Checkpoints the sink stores in the same transaction (it holds the pipeline's checkpoints). */
  readonly checkpoints?: Readonly<Record<string, SourceCheckpoint>>;
  readonly transaction?: SourceTransaction;
  readonly schemaChanges?: readonly SinkSchemaChange[];
  /** The event at an index as it entered the flow, for the dead-letter sink; the sink's own event when absent. */
  readonly original?: (index: number) => ChangeEvent;
  /** When the graph handed it over (Date.now()), for the lag in seconds. */
  readonly at: number;
}

interface Ticket {
  readonly seq: number;
  readonly checkpoint: SourceCheckpoint | undefined;
  readonly events: number;
  readonly at: number;
  pending: number;
}

/** What a lane reports of itself (`dts status`, the logs, the summary). */
export interface LaneLag {
  /** Events handed to the lane and not yet durable in the sink. */
  readonly events: number;
  /** Bytes of the spooled backlog not yet read back. */
  readonly bytes: number;
  /** How long the oldest change not yet durable has waited, in seconds (0 when none waits). */
  readonly seconds: number;
  /** The spool's size on disk. */
  readonly spoolBytes: number;
}

export interface LaneOptions {
  readonly name: string;
  readonly worker: SinkWorker;
  readonly sinkDurable: (source: string, sink: string, checkpoint: SourceCheckpoint | undefined, seq: number) => void;
  /** Items the lane may hold in memory before it spools or has no room. */
  readonly memoryItems: number;
  /**
   * The sink refused events of an item: the graph sends them to the dead-letter sink (calling
   * `done` once they are durable there) or stops the pipeline.
   */
  readonly rejected: (item: LaneItem, rejections: readonly Rejection[], done: () => void) => void;
  /** Room may have come free (an item became durable, the spool drained). */
  readonly onRoom: () => void;
}

export class SinkLane {
  /** Items given to the worker and not yet durable, per source, oldest first. */
  private readonly tickets = new Map<string, Ticket[]>();
  private inMemory = 0;
  /** Per source: events covered by this position are the sink's already. */
  private readonly skipUntil = new Map<string, Position>();
  /** Per source: the newest checkpoint handed to the lane. */
  private readonly lastOffered = new Map<string, SourceCheckpoint>();
  private offeredEvents = 0;
  private durableEvents = 0;
  private idleWaiters: (() => void)[] = [];
  private stopped = false;

  constructor(private readonly options: LaneOptions) {}

  get name(): string {
    return this.options.name;
  }

  /** The sink's own position is ahead of where its source resumes: it skips what that covers. */
  skipTo(source: string, position: Position): void {
    const current = this.skipUntil.get(source);
    if (current === undefined || (current.kind === position.kind && comparePositions(position, current) > 0)) this.skipUntil.set(source, position);
  }

  /** The source reconnects from its least position: the lane skips what it was given already. */
  rewind(source: string): void {
    const last = this.lastOffered.get(source)?.position;
    if (last !== undefined && last !== null) this.skipTo(source, last);
  }

  /** Whether the lane takes another item now in memory. */
  hasMemoryRoom(): boolean {
    return this.inMemory < this.options.memoryItems;
  }

  /** The sink keeps up with its sources: it takes items in memory and has no spooled backlog. */
  keepsUp(): boolean {
    return this.hasMemoryRoom();
  }

  /** Whether the lane takes another item: in memory, or (`spoolAllowed`) in its spool. */
  hasRoom(_spoolAllowed: boolean): boolean {
    return this.hasMemoryRoom();
  }

  offer(item: LaneItem, _spoolAllowed: boolean): void {
    const kept = this.skip(item);
    if (kept.checkpoint !== undefined) this.lastOffered.set(kept.source, kept.checkpoint);
    this.offeredEvents += countOf(kept);
    this.toWorker(kept);
  }

  /** Resolves when everything handed to the lane is durable (or the run failed: see `stop`). */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** After a fatal error: nothing more becomes durable, and nobody waits for it. */
  stop(): void {
    this.stopped = true;
    this.settle();
  }

  private isIdle(): boolean {
    return this.stopped || this.inMemory === 0;
  }

  private settle(): void {
    if (!this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  lag(): LaneLag {
    let oldest = Infinity;
    for (const list of this.tickets.values()) for (const ticket of list) if (ticket.pending > 0 || ticket.events > 0) oldest = Math.min(oldest, ticket.at);
    return {
      events: this.offeredEvents - this.durableEvents,
      bytes: 0,
      seconds: oldest === Infinity || this.offeredEvents === this.durableEvents ? 0 : Math.max(0, (Date.now() - oldest) / 1000),
      spoolBytes: 0,
    };
  }

  /** The item without what the sink's own position covers. */
  private skip(item: LaneItem): LaneItem {
    const until = this.skipUntil.get(item.source);
    if (until === undefined) return item;
    const checkpoint = item.checkpoint?.position;
    if (checkpoint !== undefined && checkpoint !== null && checkpoint.kind === until.kind && comparePositions(checkpoint, until) >= 0) {
      // From here on the stream is new to the sink.
      this.skipUntil.delete(item.source);
    }
    const covered = (event: SinkEvent): boolean => coveredBy(event.event.source.position, until);
    const events = item.events.filter((event) => !covered(event));
    const movesBack = checkpoint !== undefined && checkpoint !== null && checkpoint.kind === until.kind && comparePositions(checkpoint, until) < 0;
    if (events.length === item.events.length && !movesBack) return item;
    // Indexes now count the kept events only: a rejection names the sink's own event.
    const { bulk: _bulk, checkpoint: _checkpoint, checkpoints: _checkpoints, transaction, original: _original, ...rest } = item;
    return {
      ...rest,
      events,
      ...(movesBack ? {} : { ...(item.checkpoint !== undefined ? { checkpoint: item.checkpoint } : {}), ...(item.checkpoints !== undefined ? { checkpoints: item.checkpoints } : {}) }),
      // A transaction the sink has already is skipped whole, so none of its parts opens one.
      ...(transaction !== undefined && events.length > 0 ? { transaction } : {}),
    };
  }

  private toWorker(item: LaneItem): void {
    const ticket: Ticket = { seq: item.seq, checkpoint: item.checkpoint, events: countOf(item), at: item.at, pending: 1 };
    const list = this.tickets.get(item.source) ?? [];
    list.push(ticket);
    this.tickets.set(item.source, list);
    this.inMemory++;
    const onDurable = (rejections: readonly Rejection[]): void => {
      if (rejections.length === 0) return this.done(item.source, ticket);
      ticket.pending++;
      this.options.rejected(item, rejections, () => this.done(item.source, ticket));
      this.done(item.source, ticket);
    };
    const extra = {
      ...(item.checkpoints !== undefined ? { checkpoints: item.checkpoints } : {}),
      ...(item.transaction !== undefined ? { transaction: item.transaction } : {}),
      ...(item.schemaChanges !== undefined ? { schemaChanges: item.schemaChanges } : {}),
    };
    this.options.worker.enqueue(
      item.bulk === undefined
        ? { events: item.events, ...extra, onDurable }
        : {
            bulk: item.bulk,
            get events() {
              return item.events;
            },
            ...extra,
            onDurable,
          },
    );
  }

  /** One write of the ticket's resolved; the tickets done at the head of its source's list retire. */
  private done(source: string, ticket: Ticket): void {
    ticket.pending--;
    if (ticket.pending > 0) return;
    const list = this.tickets.get(source)!;
    let retired = 0;
    let checkpoint: SourceCheckpoint | undefined;
    let seq = 0;
    while (retired < list.length && list[retired]!.pending === 0) {
      const head = list[retired++]!;
      if (head.checkpoint !== undefined) checkpoint = head.checkpoint;
      seq = head.seq;
      this.durableEvents += head.events;
    }
    if (retired === 0) return;
    list.splice(0, retired);
    this.inMemory -= retired;
    this.options.sinkDurable(source, this.options.name, checkpoint, seq);
    this.options.onRoom();
    this.settle();
  }
}

function countOf(item: LaneItem): number {
  return item.bulk !== undefined ? item.bulk.count : item.events.length;
}
