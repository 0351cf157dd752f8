/**
 * A write's changes to an upsert-mode table, folded per key in batch order, so that each key has
 * one final change — and absent columns (a change that left a column out: PostgreSQL's unchanged
 * TOASTed values) are never taken for NULL.
 *
 * A row travels as cells by column index, where a cell is a value or ABSENT (the change did not
 * say; a cell past the end of the array, a column added after the row was admitted, is absent
 * too). The final change of a key is one of:
 *
 * - `delete`: the key ends deleted;
 * - `row`: the row is written with its present cells — in a new row the absent ones are NULL (an
 *   insert says the whole row), in a stored one they keep their values; `whole` when the key was
 *   deleted earlier in the batch, so the stored row is gone and every absent cell is NULL;
 * - `patch`: an update that left columns out, of a row the batch has not written: the stored row
 *   must exist, and keeps its values in the absent columns — without it the event is rejected
 *   (the sink says why: the source's REPLICA IDENTITY), never written with NULLs;
 * - `move`: an update that changed the key (from `from`) and left columns out: the new row takes
 *   the absent cells from the stored row of `from` (the one the batch moved, as it was before the
 *   batch), and `from` ends deleted.
 *
 * Changes merge in order: an update over an insert of the same batch is a row with the update's
 * present cells over the insert's; over a patch or a move, a larger patch or move; a change that
 * leaves no cell absent is a row and needs nothing stored. The events behind a patch or a move are
 * kept, since they are all rejected if it cannot be completed.
 */
import type { Value } from "../../model/value.js";

export const ABSENT: unique symbol = Symbol("absent");
export type Cell = Value | typeof ABSENT;

export type KeyChange =
  | { readonly kind: "delete"; readonly cells: readonly Cell[]; readonly events: readonly number[] }
  | { readonly kind: "row"; readonly cells: readonly Cell[]; readonly events: readonly number[]; readonly whole: boolean }
  | { readonly kind: "patch"; readonly cells: readonly Cell[]; readonly events: readonly number[] }
  | {
      readonly kind: "move";
      readonly cells: readonly Cell[];
      readonly events: readonly number[];
      /** The old key, and its values by column index. */
      readonly from: string;
      readonly fromCells: readonly Cell[];
      /** The new key was deleted earlier in the batch: a stored row with it is not this row. */
      readonly whole: boolean;
    };

/** Whether the cell holds a value (possibly null), not ABSENT or nothing. */
export function isPresent(cell: Cell | undefined): cell is Value {
  return cell !== undefined && cell !== ABSENT;
}

/** Whether every one of `columns` cells is present. */
export function isComplete(cells: readonly Cell[], columns: number): boolean {
  if (cells.length < columns) return false;
  for (let i = 0; i < columns; i++) if (!isPresent(cells[i])) return false;
  return true;
}

/** `later`'s present cells over `earlier`'s. */
function merge(earlier: readonly Cell[], later: readonly Cell[]): Cell[] {
  const cells = earlier.slice();
  for (let i = 0; i < later.length; i++) if (isPresent(later[i])) cells[i] = later[i]!;
  return cells;
}

export class KeyChanges {
  readonly byKey = new Map<string, KeyChange>();

  /** An insert or a snapshot row: the whole row. */
  insert(key: string, cells: readonly Cell[], index: number): void {
    const deleted = this.byKey.get(key)?.kind === "delete";
    this.byKey.set(key, { kind: "row", cells, events: [index], whole: deleted });
  }

  delete(key: string, cells: readonly Cell[], index: number): void {
    this.byKey.set(key, { kind: "delete", cells, events: [index] });
  }

  /**
   * An update that kept its key, with `columns` the table's column count. False when it cannot
   * be applied: it leaves columns out and the batch deleted the row before it.
   */
  update(key: string, cells: readonly Cell[], columns: number, index: number): boolean {
    const earlier = this.byKey.get(key);
    if (earlier === undefined) {
      this.byKey.set(key, isComplete(cells, columns) ? { kind: "row", cells, events: [index], whole: false } : { kind: "patch", cells, events: [index] });
      return true;
    }
    if (earlier.kind === "delete") {
      if (!isComplete(cells, columns)) return false;
      this.byKey.set(key, { kind: "row", cells, events: [index], whole: true });
      return true;
    }
    const merged = merge(earlier.cells, cells);
    const events = [...earlier.events, index];
    if (earlier.kind === "row") this.byKey.set(key, { kind: "row", cells: merged, events, whole: earlier.whole });
    else if (isComplete(merged, columns)) this.byKey.set(key, { kind: "row", cells: merged, events, whole: earlier.kind === "move" && earlier.whole });
    else if (earlier.kind === "patch") this.byKey.set(key, { kind: "patch", cells: merged, events });
    else this.byKey.set(key, { ...earlier, cells: merged, events });
    return true;
  }

  /**
   * An update that moved the row from key `from` (its values by column index in `fromCells`) to
   * `key`. False when it cannot be applied: it leaves columns out and the batch deleted the row
   * with the old key before it.
   */
  move(from: string, fromCells: readonly Cell[], key: string, cells: readonly Cell[], columns: number, index: number): boolean {
    const earlier = this.byKey.get(from);
    const whole = this.byKey.get(key)?.kind === "delete";
    let moved: KeyChange;
    if (earlier === undefined) {
      moved = isComplete(cells, columns) ? { kind: "row", cells, events: [index], whole } : { kind: "move", cells, events: [index], from, fromCells, whole };
    } else if (earlier.kind === "delete") {
      if (!isComplete(cells, columns)) return false;
      moved = { kind: "row", cells, events: [index], whole };
    } else {
      const merged = merge(earlier.cells, cells);
      const events = [...earlier.events, index];
      if (earlier.kind === "row" || isComplete(merged, columns)) moved = { kind: "row", cells: merged, events, whole };
      else if (earlier.kind === "patch") moved = { kind: "move", cells: merged, events, from, fromCells, whole };
      else moved = { kind: "move", cells: merged, events, from: earlier.from, fromCells: earlier.fromCells, whole };
    }
    this.byKey.set(from, { kind: "delete", cells: fromCells, events: [index] });
    this.byKey.set(key, moved);
    return true;
  }

  /** Every cell of every change, for checks of the values a batch holds per column. */
  *allCells(): Iterable<readonly Cell[]> {
    for (const change of this.byKey.values()) yield change.cells;
  }
}
