/**
 * The checkpoint coordinator decides when a source's position may move.
 *
 * Every batch a source sends is given a ticket, in order, saying how many sink writes must
 * resolve before its events are durable everywhere they went. A source's tickets complete
 * in any order (sinks run independently), but the position moves strictly in order: only
 * when a ticket and every earlier ticket of that source are complete does the newest
 * checkpoint among them become eligible. Tickets without a checkpoint (a batch that ends
 * inside a transaction) complete like the others but never move the position, so a position
 * only ever lands on a transaction end.
 *
 * An eligible checkpoint is then made durable in one of two ways:
 *   - through the checkpoint store (the default file, or a database's table): saves are
 *     serialized and coalesced, so a slow store costs latency, never memory; and spaced at
 *     least `saveIntervalMs` apart while the pipeline runs (each save of the file costs two
 *     fsyncs, which a busy stream would otherwise pay for every batch, competing with the
 *     databases for the disk). A crash then replays at most that much more; the final save,
 *     once the runner drains (`idle`), is made at once;
 *   - inside the sink's own write (`storedBySink`): the runner put the checkpoint into the
 *     `SinkBatch` of the only sink the source feeds, which stores it in the same transaction
 *     as the events, so the checkpoint is durable as soon as that write resolved.
 * Only after that is the source told (`acknowledge`), e.g. to move a PostgreSQL slot: a slot
 * that moved ahead of the stored checkpoint would lose the changes in between after a crash.
 *
 * A ticket also counts towards its source's in-flight limit until it is retired in order,
 * which is what bounds memory and how far a source runs ahead of its slowest sink.
 */
import type { CheckpointStore, Logger, SourceCheckpoint } from "./contracts.js";
import { withRetry, type RetryPolicy } from "./retry.js";

export interface BatchTicket {
  readonly source: string;
  readonly checkpoint: SourceCheckpoint | undefined;
  /** Sink writes still to resolve; the runner adds one when it sends a rejection on to the dead-letter sink. */
  pending: number;
}

interface SourceState {
  readonly name: string;
  /** Tickets not yet retired, oldest first; `head` avoids shifting the array on every retire. */
  readonly tickets: BatchTicket[];
  head: number;
  readonly storedBySink: boolean;
  /** Last checkpoint known durable (in the store or in the sink), or the one resumed from. */
  durable: SourceCheckpoint | undefined;
  /** Newest checkpoint whose events are durable, waiting for the store. */
  unsaved: SourceCheckpoint | undefined;
  /** Newest durable checkpoint the source has not been told of yet. */
  unacknowledged: SourceCheckpoint | undefined;
  acknowledging: boolean;
}

export interface CoordinatorOptions {
  readonly store: CheckpointStore;
  /** Sources and whether each one's checkpoints travel inside its only sink's writes. */
  readonly sources: ReadonlyMap<string, { readonly storedBySink: boolean }>;
  readonly initial: Readonly<Record<string, SourceCheckpoint>>;
  readonly acknowledge: (source: string, checkpoint: SourceCheckpoint) => Promise<void>;
  /** A save or an acknowledgement failed for good: the runner stops the pipeline. */
  readonly onFatal: (error: unknown) => void;
  /** A source retired tickets: its in-flight count went down. */
  readonly onRetired?: (source: string) => void;
  /** For saves through the store (its sink's `retry_for`, or the pipeline's). */
  readonly retry: RetryPolicy;
  /** For acknowledgements to a source (its `retry_for`); `retry` when absent. */
  readonly sourceRetry?: (source: string) => RetryPolicy;
  readonly log: Logger;
  /** The least time between two saves through the store while running; 0 when absent. */
  readonly saveIntervalMs?: number;
}

export class CheckpointCoordinator {
  private readonly states = new Map<string, SourceState>();
  private saving = false;
  private failed = false;
  /** The runner is draining: the next save goes at once. */
  private draining = false;
  /** Callers of `flush` waiting: saves go at once meanwhile. */
  private flushing = 0;
  /** When the last save through the store began (performance.now()). */
  private lastSave = -Infinity;
  /** Ends the wait before a save early. */
  private wakeSave: (() => void) | undefined;
  private waiters: { condition: () => boolean; resolve: () => void }[] = [];

  constructor(private readonly options: CoordinatorOptions) {
    for (const [name, { storedBySink }] of options.sources) {
      this.states.set(name, {
        name,
        tickets: [],
        head: 0,
        storedBySink,
        durable: options.initial[name],
        unsaved: undefined,
        unacknowledged: undefined,
        acknowledging: false,
      });
    }
  }

  /** A ticket for the source's next batch, which `pending` sink writes must make durable. */
  open(source: string, checkpoint: SourceCheckpoint | undefined, pending: number): BatchTicket {
    const state = this.state(source);
    const ticket: BatchTicket = { source, checkpoint, pending };
    state.tickets.push(ticket);
    if (pending === 0) this.retire(state);
    return ticket;
  }

  /** One sink write carrying part of the ticket's batch resolved. */
  sinkDone(ticket: BatchTicket): void {
    if (ticket.pending <= 0) throw new Error(`checkpoint coordinator: ticket of ${ticket.source} completed twice`);
    ticket.pending--;
    if (ticket.pending === 0) this.retire(this.state(ticket.source));
  }

  /** Batches of the source not yet retired (sent, and not durable in order). */
  inFlight(source: string): number {
    const state = this.state(source);
    return state.tickets.length - state.head;
  }

  /** The last durable checkpoint of every source that has one. */
  durableCheckpoints(): Record<string, SourceCheckpoint> {
    const result: Record<string, SourceCheckpoint> = {};
    for (const [name, state] of this.states) if (state.durable !== undefined) result[name] = state.durable;
    return result;
  }

  /**
   * Resolves when nothing is left to do: every ticket retired, every checkpoint saved and
   * acknowledged (or the coordinator failed, which the runner hears of through `onFatal`).
   */
  idle(): Promise<void> {
    this.draining = true;
    this.wakeSave?.();
    return this.when(() => this.isIdle());
  }

  /**
   * Saves every checkpoint eligible now without waiting for the save interval, e.g. before a
   * failed source is reopened from its durable checkpoint; resolves when they are saved.
   */
  async flush(): Promise<void> {
    this.flushing++;
    this.wakeSave?.();
    try {
      await this.when(() => this.failed || (!this.saving && [...this.states.values()].every((state) => state.unsaved === undefined)));
    } finally {
      this.flushing--;
    }
  }

  /**
   * Resolves when no save and no acknowledgement is running. After a failure some tickets
   * never complete; this is what the runner waits for before reporting the durable positions.
   */
  settled(): Promise<void> {
    return this.when(() => !this.saving && [...this.states.values()].every((state) => !state.acknowledging));
  }

  private when(condition: () => boolean): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ condition, resolve }));
  }

  private isIdle(): boolean {
    if (this.failed) return !this.saving && [...this.states.values()].every((state) => !state.acknowledging);
    if (this.saving) return false;
    for (const state of this.states.values()) {
      if (state.tickets.length > state.head || state.unsaved !== undefined || state.unacknowledged !== undefined || state.acknowledging) {
        return false;
      }
    }
    return true;
  }

  private notify(): void {
    if (this.waiters.length === 0) return;
    const waiting = this.waiters;
    this.waiters = [];
    for (const waiter of waiting) {
      if (waiter.condition()) waiter.resolve();
      else this.waiters.push(waiter);
    }
  }

  private state(source: string): SourceState {
    const state = this.states.get(source);
    if (state === undefined) throw new Error(`checkpoint coordinator: unknown source ${source}`);
    return state;
  }

  /** Retires the completed tickets at the head of the source's queue, in order. */
  private retire(state: SourceState): void {
    let newest: SourceCheckpoint | undefined;
    let retired = 0;
    while (state.head < state.tickets.length && state.tickets[state.head]!.pending === 0) {
      const ticket = state.tickets[state.head++]!;
      retired++;
      if (ticket.checkpoint !== undefined) newest = ticket.checkpoint;
    }
    if (retired === 0) return;
    if (state.head > 64 && state.head * 2 > state.tickets.length) {
      state.tickets.splice(0, state.head);
      state.head = 0;
    }
    if (newest !== undefined) {
      if (state.storedBySink) {
        // Stored in the same transaction as the sink's events: durable already.
        state.durable = newest;
        this.acknowledgeLater(state, newest);
      } else {
        state.unsaved = newest;
        void this.saveLoop();
      }
    }
    this.options.onRetired?.(state.name);
    this.notify();
  }

  /** One save at a time; checkpoints that became eligible meanwhile go into the next one. */
  private async saveLoop(): Promise<void> {
    if (this.saving || this.failed) return;
    this.saving = true;
    try {
      for (;;) {
        // Only a real wait yields: a save due now collects what is eligible now.
        if (this.saveDelay() > 0) await this.spaceSaves();
        const batch: Record<string, SourceCheckpoint> = {};
        const saved: [SourceState, SourceCheckpoint][] = [];
        for (const [name, state] of this.states) {
          if (state.unsaved === undefined) continue;
          batch[name] = state.unsaved;
          saved.push([state, state.unsaved]);
          state.unsaved = undefined;
        }
        if (saved.length === 0) break;
        this.lastSave = performance.now();
        await withRetry("saving the checkpoint", () => this.options.store.save(batch), {
          policy: this.options.retry,
          log: this.options.log,
        });
        for (const [state, checkpoint] of saved) {
          state.durable = checkpoint;
          this.acknowledgeLater(state, checkpoint);
        }
        this.options.log.debug("checkpoint saved", { checkpoints: batch });
      }
    } catch (error) {
      this.fail(error);
    } finally {
      this.saving = false;
      this.notify();
    }
  }

  /** Waits until `saveIntervalMs` after the last save began, unless draining or failed. */
  private saveDelay(): number {
    if (this.draining || this.flushing > 0 || this.failed) return 0;
    return this.lastSave + (this.options.saveIntervalMs ?? 0) - performance.now();
  }

  private async spaceSaves(): Promise<void> {
    const wait = this.saveDelay();
    if (wait <= 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, wait);
      this.wakeSave = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wakeSave = undefined;
  }

  private acknowledgeLater(state: SourceState, checkpoint: SourceCheckpoint): void {
    state.unacknowledged = checkpoint;
    void this.acknowledgeLoop(state);
  }

  /** One acknowledgement at a time per source, always of the newest durable checkpoint. */
  private async acknowledgeLoop(state: SourceState): Promise<void> {
    if (state.acknowledging || this.failed) return;
    state.acknowledging = true;
    const source = state.name;
    try {
      while (state.unacknowledged !== undefined && !this.failed) {
        const checkpoint = state.unacknowledged;
        state.unacknowledged = undefined;
        await withRetry(`acknowledging ${source}'s checkpoint`, () => this.options.acknowledge(source, checkpoint), {
          policy: this.options.sourceRetry?.(source) ?? this.options.retry,
          log: this.options.log,
        });
      }
    } catch (error) {
      this.fail(error);
    } finally {
      state.acknowledging = false;
      this.notify();
    }
  }

  private fail(error: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.wakeSave?.();
    this.options.onFatal(error);
    this.notify();
  }
}
