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
import { ConnectorError } from "./contracts.js";
import type { RunLogger } from "./log.js";
import type { SinkSpool } from "./sink-spool.js";
import type { SinkWorker } from "./sink-worker.js";
import { decodeItem, encodeItem } from "./spooled-item.js";

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
  /** Where the lane spools when it falls behind; without one it only holds its source back. */
  readonly spool?: LaneSpool;
  readonly log?: RunLogger;
  /** The spool failed, or is full and `on_spool_full` says stop: the runner stops the pipeline. */
  readonly onFatal?: (error: unknown) => void;
}

export interface LaneSpool {
  readonly spool: SinkSpool;
  /** Where it is, for the messages. */
  readonly dir: string;
  /** The cap in bytes (`spool_max`). */
  readonly maxBytes: number;
  /** At the cap: hold the source back (`wait`), or stop the pipeline (`stop`). Never drop. */
  readonly onFull: "wait" | "stop";
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
  /** Items go to the spool (it holds a backlog, or the lane fell behind while another sink kept up). */
  private spooling = false;
  private draining = false;
  /** The cap was reached and said; said again only after the spool got below it. */
  private fullSaid = false;
  private spooledItems = 0;

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

  /** Its items go to the spool (it has a backlog there). */
  isSpooling(): boolean {
    return this.spooling;
  }

  /** The sink keeps up with its sources: it takes items in memory and has no spooled backlog. */
  keepsUp(): boolean {
    return !this.spooling && this.hasMemoryRoom();
  }

  /** Whether the lane takes another item: in memory, or (`spoolAllowed`) in its spool. */
  hasRoom(spoolAllowed: boolean): boolean {
    if (this.spooling) return this.spoolHasRoom();
    if (this.hasMemoryRoom()) return true;
    return spoolAllowed && this.options.spool !== undefined && this.spoolHasRoom();
  }

  offer(item: LaneItem, spoolAllowed: boolean): void {
    const kept = this.skip(item);
    if (kept.checkpoint !== undefined) this.lastOffered.set(kept.source, kept.checkpoint);
    this.offeredEvents += countOf(kept);
    const spool = this.options.spool;
    if (spool !== undefined && !this.stopped && (this.spooling || (spoolAllowed && !this.hasMemoryRoom()))) {
      if (!this.spooling) {
        this.spooling = true;
        this.options.log?.warn("sink is behind; spooling its changes while the other sinks go on", { sink: this.name, spool: spool.dir });
      }
      try {
        spool.spool.append(encodeItem(kept));
        this.spooledItems++;
      } catch (error) {
        this.options.onFatal?.(error);
      }
      return;
    }
    this.toWorker(kept);
  }

  /** Below the cap; at it, says so loudly once, and stops the run when `on_spool_full` says so. */
  private spoolHasRoom(): boolean {
    const lane = this.options.spool;
    if (lane === undefined) return false;
    const bytes = lane.spool.bytes;
    if (bytes < lane.maxBytes) {
      this.fullSaid = false;
      return true;
    }
    if (!this.fullSaid) {
      this.fullSaid = true;
      const fields = { sink: this.name, spool: lane.dir, bytes, spool_max: lane.maxBytes, backlog_events: this.offeredEvents - this.durableEvents };
      if (lane.onFull === "stop") {
        this.options.log?.error("sink's spool is full; stopping the pipeline as on_spool_full says (nothing is dropped: the next run reads again from the sink's position)", fields);
        this.options.onFatal?.(
          new ConnectorError(
            `sink ${this.name} fell ${this.offeredEvents - this.durableEvents} changes behind and its spool reached spool_max (${lane.maxBytes} bytes, in ${lane.dir}); ` +
              `on_spool_full is "stop". Bring the sink back, or raise spool_max, or set on_spool_full: "wait" to hold the other sinks back instead`,
            false,
          ),
        );
      } else {
        this.options.log?.error("sink's spool is full; holding the source (and so every sink of it) back until the sink catches up", fields);
      }
    }
    return false;
  }

  /** Reads spooled items back into memory while there is room; leaves spooling once it is empty. */
  private async drain(): Promise<void> {
    const lane = this.options.spool;
    if (lane === undefined || this.draining || !this.spooling) return;
    this.draining = true;
    try {
      while (this.spooling && !this.stopped && this.hasMemoryRoom()) {
        const payload = await lane.spool.next();
        if (payload === undefined) {
          if (!lane.spool.empty) break;
          await lane.spool.reset();
          if (lane.spool.empty && this.spooling) {
            this.spooling = false;
            this.options.log?.info("sink caught up; its spool is drained", { sink: this.name, items: this.spooledItems });
            this.spooledItems = 0;
          }
          break;
        }
        this.toWorker(decodeItem(payload));
      }
    } catch (error) {
      this.options.onFatal?.(error);
    } finally {
      this.draining = false;
    }
    this.options.onRoom();
    this.settle();
  }

  /** Records were fsync'd: the lane may read them back if it has room. */
  spooled(): void {
    if (this.hasMemoryRoom()) void this.drain();
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
    return this.stopped || (this.inMemory === 0 && !this.spooling);
  }

  private settle(): void {
    if (!this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  lag(): LaneLag {
    // In-memory items are older than spooled ones: the oldest of them has waited longest.
    let oldest = Infinity;
    for (const list of this.tickets.values()) if (list.length > 0) oldest = Math.min(oldest, list[0]!.at);
    const spool = this.options.spool?.spool;
    const behind = this.offeredEvents - this.durableEvents;
    return {
      events: behind,
      bytes: spool?.backlogBytes ?? 0,
      seconds: oldest === Infinity || (behind === 0 && !this.spooling) ? 0 : Math.max(0, (Date.now() - oldest) / 1000),
      spoolBytes: spool?.bytes ?? 0,
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
    if (this.spooling) void this.drain();
    this.options.onRoom();
    this.settle();
  }
}

function countOf(item: LaneItem): number {
  return item.bulk !== undefined ? item.bulk.count : item.events.length;
}
