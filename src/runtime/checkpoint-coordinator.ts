/**
 * The checkpoint coordinator decides when a source's position may move, per sink and for the
 * source as a whole.
 *
 * Each sink progresses on its own: its lane (sink-lane.ts) tells the coordinator, in order,
 * how far it has made each source's changes durable (`sinkDurable`: the newest checkpoint its
 * writes reached, and the run-local number of the batch it came with). The source's own
 * position — where it resumes after a crash and what it acknowledges, e.g. a PostgreSQL
 * slot's confirmed LSN — is the least of its sinks' positions: nothing a lagging sink has not
 * made durable is released by the server. Positions are ordered by `comparePositions`, ties by
 * batch number (a snapshot's checkpoints share one position and differ in progress); a sink
 * that has not moved yet in this run holds the source where it resumed. Between sinks that
 * moved in this run, positions of a kind without a total order (a Kafka source's name one
 * partition each) are ordered by batch number, which follows the source's own order.
 *
 * A position is then made durable in one of two ways:
 *   - through the checkpoint store (the default file, or a database's table): the source's
 *     position and every sink's (`SOURCE/SINK`, sink-positions.ts) go in one save. Saves are
 *     serialized and coalesced, so a slow store costs latency, never memory; and spaced at
 *     least `saveIntervalMs` apart while the pipeline runs (each save of the file costs two
 *     fsyncs). A crash then replays at most that much more; the final save, once the runner
 *     drains (`idle`), is made at once;
 *   - inside a sink's own write: a sink holding the checkpoints (`checkpoint: "postgres"`)
 *     stores its own position in the same transaction as its events, so it is durable when
 *     the write resolved; when it is the source's only sink, that is the source's position.
 * Only after that is the source told (`acknowledge`): a slot that moved ahead of the stored
 * checkpoint would lose the changes in between after a crash.
 */
import { comparePositions, type Position } from "../model/position.js";
import type { CheckpointStore, Logger, SourceCheckpoint } from "./contracts.js";
import { withRetry, type RetryPolicy } from "./retry.js";
import { sinkKey } from "./sink-positions.js";

/** How far one sink has made one source's changes durable. */
interface SinkTrack {
  readonly sink: string;
  checkpoint: SourceCheckpoint | undefined;
  /** The run-local number of the batch that brought it there; 0 when it has not moved this run. */
  seq: number;
  /** Stored inside the sink's own writes: never saved through the store. */
  readonly inSink: boolean;
  /** Newest position not saved yet. */
  unsaved: SourceCheckpoint | undefined;
  /** Last position known saved (or stored in the sink, or resumed from). */
  saved: SourceCheckpoint | undefined;
}

interface SourceState {
  readonly name: string;
  readonly tracks: SinkTrack[];
  /** The source's position is stored by its only sink, in its own writes. */
  readonly storedBySink: boolean;
  /** The newest least position taken (saved or waiting for the store). */
  latest: SourceCheckpoint | undefined;
  /** The run-local batch number `latest` came with (0: the one resumed from). */
  latestSeq: number;
  /** Last checkpoint known durable (in the store or in the sink), or the one resumed from. */
  durable: SourceCheckpoint | undefined;
  /** Newest least position whose events are durable, waiting for the store. */
  unsaved: SourceCheckpoint | undefined;
  /** Newest durable checkpoint the source has not been told of yet. */
  unacknowledged: SourceCheckpoint | undefined;
  acknowledging: boolean;
}

export interface CoordinatedSource {
  /** The sinks the source's events can reach (its flows' and the dead-letter sink). */
  readonly sinks: readonly string[];
  /** The source's position travels inside its only sink's writes. */
  readonly storedBySink: boolean;
  /** The sink that stores its own position inside its writes (`checkpoint: "postgres"`), if any. */
  readonly holder: string | null;
}

export interface CoordinatorOptions {
  readonly store: CheckpointStore;
  readonly sources: ReadonlyMap<string, CoordinatedSource>;
  /** Where each source resumes. */
  readonly initial: Readonly<Record<string, SourceCheckpoint>>;
  /** Where each sink resumes, by source then sink; a sink not named is at its source's position. */
  readonly initialSinks?: ReadonlyMap<string, ReadonlyMap<string, SourceCheckpoint>>;
  readonly acknowledge: (source: string, checkpoint: SourceCheckpoint) => Promise<void>;
  /** A save or an acknowledgement failed for good: the runner stops the pipeline. */
  readonly onFatal: (error: unknown) => void;
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
    for (const [name, source] of options.sources) {
      const initial = options.initial[name];
      const own = options.initialSinks?.get(name);
      this.states.set(name, {
        name,
        tracks: source.sinks.map((sink) => {
          const checkpoint = own?.get(sink) ?? initial;
          return { sink, checkpoint, seq: 0, inSink: sink === source.holder, unsaved: undefined, saved: checkpoint };
        }),
        storedBySink: source.storedBySink,
        latest: initial,
        latestSeq: 0,
        durable: initial,
        unsaved: undefined,
        unacknowledged: undefined,
        acknowledging: false,
      });
    }
  }

  /**
   * The sink made the source's changes durable up to the batch numbered `seq` (in order);
   * `checkpoint` is the newest position they reached, undefined when none of them moves it
   * (a batch inside a transaction, or one the sink had already).
   */
  sinkDurable(source: string, sink: string, checkpoint: SourceCheckpoint | undefined, seq: number): void {
    const state = this.state(source);
    const track = state.tracks.find((candidate) => candidate.sink === sink);
    if (track === undefined) throw new Error(`checkpoint coordinator: source ${source} does not feed sink ${sink}`);
    if (seq <= track.seq) return;
    track.seq = seq;
    if (checkpoint !== undefined && checkpoint !== track.checkpoint) {
      track.checkpoint = checkpoint;
      if (track.inSink) track.saved = checkpoint;
      else if (state.tracks.length > 1) {
        track.unsaved = checkpoint;
        void this.saveLoop();
      }
    }
    this.advance(state);
    this.notify();
  }

  /** The last durable checkpoint of every source that has one. */
  durableCheckpoints(): Record<string, SourceCheckpoint> {
    const result: Record<string, SourceCheckpoint> = {};
    for (const [name, state] of this.states) if (state.durable !== undefined) result[name] = state.durable;
    return result;
  }

  /**
   * Each sink's last stored position, by sink then source: where it resumes. A sink alone on
   * its source is at the source's position.
   */
  sinkCheckpoints(): Map<string, Map<string, SourceCheckpoint | null>> {
    const result = new Map<string, Map<string, SourceCheckpoint | null>>();
    for (const [name, state] of this.states) {
      for (const track of state.tracks) {
        const list = result.get(track.sink) ?? new Map<string, SourceCheckpoint | null>();
        list.set(name, (state.tracks.length === 1 ? state.durable : track.saved) ?? null);
        result.set(track.sink, list);
      }
    }
    return result;
  }

  /** Each sink's position as durable in the sink now (ahead of what is saved), by sink then source. */
  sinkPositions(): Map<string, Map<string, SourceCheckpoint | null>> {
    const result = new Map<string, Map<string, SourceCheckpoint | null>>();
    for (const [name, state] of this.states) {
      for (const track of state.tracks) {
        const list = result.get(track.sink) ?? new Map<string, SourceCheckpoint | null>();
        list.set(name, track.checkpoint ?? null);
        result.set(track.sink, list);
      }
    }
    return result;
  }

  /**
   * Resolves when nothing is left to do: every checkpoint saved and acknowledged (or the
   * coordinator failed, which the runner hears of through `onFatal`).
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
      await this.when(() => this.failed || (!this.saving && !this.anyUnsaved()));
    } finally {
      this.flushing--;
    }
  }

  /**
   * Resolves when no save and no acknowledgement is running. After a failure some writes
   * never complete; this is what the runner waits for before reporting the durable positions.
   */
  settled(): Promise<void> {
    return this.when(() => !this.saving && [...this.states.values()].every((state) => !state.acknowledging));
  }

  private when(condition: () => boolean): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ condition, resolve }));
  }

  private anyUnsaved(): boolean {
    for (const state of this.states.values()) {
      if (state.unsaved !== undefined) return true;
      for (const track of state.tracks) if (track.unsaved !== undefined) return true;
    }
    return false;
  }

  private isIdle(): boolean {
    if (this.failed) return !this.saving && [...this.states.values()].every((state) => !state.acknowledging);
    if (this.saving || this.anyUnsaved()) return false;
    for (const state of this.states.values()) if (state.unacknowledged !== undefined || state.acknowledging) return false;
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

  /** Moves the source's own position to the least of its sinks', when that moved. */
  private advance(state: SourceState): void {
    let least: SinkTrack | undefined;
    for (const track of state.tracks) {
      if (least === undefined || before(track, least)) least = track;
    }
    // A sink that has not moved in this run holds the source where it resumed.
    if (least === undefined || least.seq === 0 || least.checkpoint === undefined || least.checkpoint === state.latest) return;
    const latest = state.latest;
    if (latest !== undefined && latest.position !== null && least.checkpoint.position !== null && ordered(least.checkpoint.position, latest.position)) {
      if (comparePositions(least.checkpoint.position, latest.position) < 0) return;
    } else if (least.seq <= state.latestSeq) {
      // Positions without a total order (a Kafka source's name one partition each): the batch
      // numbers, which follow the source's own order within a run, decide.
      return;
    }
    state.latest = least.checkpoint;
    state.latestSeq = least.seq;
    if (state.storedBySink) {
      // Stored in the same transaction as the sink's events: durable already.
      state.durable = least.checkpoint;
      this.acknowledgeLater(state, least.checkpoint);
    } else {
      state.unsaved = least.checkpoint;
      void this.saveLoop();
    }
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
        const saved: (() => void)[] = [];
        for (const [name, state] of this.states) {
          const checkpoint = state.unsaved;
          if (checkpoint !== undefined) {
            batch[name] = checkpoint;
            state.unsaved = undefined;
            saved.push(() => {
              state.durable = checkpoint;
              this.acknowledgeLater(state, checkpoint);
            });
          }
          for (const track of state.tracks) {
            const own = track.unsaved;
            if (own === undefined) continue;
            batch[sinkKey(name, track.sink)] = own;
            track.unsaved = undefined;
            saved.push(() => (track.saved = own));
          }
        }
        if (saved.length === 0) break;
        this.lastSave = performance.now();
        await withRetry("saving the checkpoint", () => this.options.store.save(batch), {
          policy: this.options.retry,
          log: this.options.log,
        });
        for (const done of saved) done();
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

/** Whether two positions have an order of their own (model/position.ts); else batch numbers decide. */
function ordered(x: Position, y: Position): boolean {
  return x.kind === y.kind && TOTALLY_ORDERED.has(x.kind);
}

const TOTALLY_ORDERED = new Set(["pg-lsn", "mysql-binlog", "seq"]);

/** Whether `a` is behind `b`: an earlier position, or the same one reached by an earlier batch. */
function before(a: SinkTrack, b: SinkTrack): boolean {
  const x = a.checkpoint?.position;
  const y = b.checkpoint?.position;
  if (x === undefined || x === null) {
    if (y !== undefined && y !== null) return true;
    return a.seq < b.seq;
  }
  if (y === undefined || y === null) return false;
  if (!ordered(x, y)) return a.seq < b.seq;
  const order = comparePositions(x, y);
  return order < 0 || (order === 0 && a.seq < b.seq);
}
