/**
 * Checkpoints of writes that run at once, stored in order. With `checkpoint: "postgres"` a
 * write stores its source's position in its own transaction; when snapshot chunks are written
 * on several connections, a later chunk may commit before an earlier one, and its position
 * must not be stored then, or a crash in between would resume after rows that were never
 * committed. So every such write commits under one lock (only the position and COMMIT, not the
 * rows, are serialized), and stores the newest checkpoint of the run of writes, in the order
 * they were started, that are committed once it is: its own only when every earlier one has
 * committed, and the later ones' that committed before it without storing theirs. After the
 * last of them, what is stored is the newest checkpoint, as with one connection.
 */
import type { SourceCheckpoint } from "../../runtime/contracts.js";

type Checkpoints = Readonly<Record<string, SourceCheckpoint>>;

export class OrderedCheckpoints {
  private next = 0;
  /** A write keeps its place when it is tried again (the runner retries with the same batch). */
  private readonly places = new WeakMap<object, number>();
  private readonly pending = new Map<number, { readonly checkpoints: Checkpoints; committed: boolean }>();
  /** Every write before this place has committed. */
  private committedBefore = 0;
  /** A write rejected events: no later position may be stored in this run. */
  private poisoned = false;
  private lock: Promise<void> = Promise.resolve();

  /** The write's place in the order writes were started; call when it starts. */
  place(write: object, checkpoints: Checkpoints): number {
    let place = this.places.get(write);
    if (place === undefined) {
      place = this.next++;
      this.places.set(write, place);
      this.pending.set(place, { checkpoints, committed: false });
    }
    return place;
  }

  /**
   * Runs `commit` (store the checkpoints given, if any, then COMMIT) alone among these writes.
   * `storeOwn` is false when the write rejected events: its position must not be stored.
   */
  async commit(place: number, storeOwn: boolean, commit: (checkpoints: Checkpoints | undefined) => Promise<void>): Promise<void> {
    const previous = this.lock;
    let release!: () => void;
    this.lock = new Promise((resolve) => (release = resolve));
    await previous;
    try {
      if (!storeOwn) this.poisoned = true;
      await commit(this.poisoned ? undefined : this.storable(place));
      this.pending.get(place)!.committed = true;
      while (this.pending.get(this.committedBefore)?.committed === true) this.pending.delete(this.committedBefore++);
    } finally {
      release();
    }
  }

  /** The newest checkpoints of the writes committed in order, counting `place` as committed; undefined when none is new. */
  private storable(place: number): Checkpoints | undefined {
    let merged: Record<string, SourceCheckpoint> | undefined;
    for (let at = this.committedBefore; ; at++) {
      const write = this.pending.get(at);
      if (write === undefined || (at !== place && !write.committed)) break;
      merged = { ...merged, ...write.checkpoints };
    }
    return merged;
  }
}
