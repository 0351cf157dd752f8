/**
 * Absent columns: an update that lacks some of the source table's columns (PostgreSQL leaves a
 * TOASTed value the UPDATE did not touch out of the change, unless the table is REPLICA IDENTITY
 * FULL) says nothing about them — they are unchanged, never NULL. Such a row may update the row
 * the target has, and nothing else: inserted as a new row, it would put NULL (or a default)
 * where the source has a value. Two things would insert it: `ON CONFLICT`'s insert branch when
 * the target lacks the row, and an update that changed the key, which moves the row.
 *
 * So before a write applies anything, every such update is followed back along the write to
 * where its row comes from, per key and in event order: an earlier insert or whole update of the
 * key in the same write (its values are at hand), or the row the target has at that key before
 * the write (to be read), or — across a key change — the image of the old key, the same way.
 * The rows the target has are then read in one statement per table and kind, inside the write's
 * transaction, and each update is:
 *
 *   kept         the target has the row at its own key: it updates only the columns it has;
 *   completed    its row moved here, or began in this write: the values it lacks are taken
 *                from the row it replaces, and it becomes a whole row that may be inserted;
 *   rejected     the row is nowhere to take the values from (the target lacks it): writing it
 *                would lose them, so the event is rejected, naming REPLICA IDENTITY FULL.
 *
 * A key change onto a key the target already has (a batch replayed after a crash, whose first
 * run moved the row already) keeps that row: it is the same row, further along.
 */
import type { TargetTable } from "./ddl.js";
import { columnSetOf, keyOfAction, keyTextsOf, textsOf, type AbsentColumns, type Action } from "./actions.js";

/** A row the target has before the write, needed by some update: its values, or only whether it is there. */
export interface RowRequest {
  readonly keyTexts: readonly (string | null)[];
  readonly values: boolean;
}

/** Rows read from the target: a column → text map for a row found (empty when only existence was asked), undefined when absent. */
export type FoundRows = (table: TargetTable, key: string) => ReadonlyMap<string, string | null> | undefined;

export interface AbsentRejection {
  readonly index: number;
  readonly action: Action;
  /** The source's columns the update lacks. */
  readonly absent: readonly string[];
  /** The keys whose rows the target lacked, newest first (the update's own key, then the key it moved from). */
  readonly looked: readonly (readonly (string | null)[])[];
}

export interface AbsentPlan {
  /** Per table, the rows to read, by encoded key. */
  readonly reads: ReadonlyMap<TargetTable, ReadonlyMap<string, RowRequest>>;
  /** Each event's actions with every update that is not whole kept, completed or (with its event) removed and rejected. */
  resolve(found: FoundRows): { readonly byEvent: Action[][]; readonly rejected: readonly AbsentRejection[] };
}

/** Where a row's values come from before its images in the write: the target's row at `key` as the write found it. */
interface Base {
  readonly table: TargetTable;
  readonly key: string;
  readonly keyTexts: readonly (string | null)[];
  /** When the target lacks `key`: the image of the row that moved there (a key change). */
  readonly otherwise: Image | null;
}

/** A key's row at one point of the write: its base, and the images laid over it so far (`below`, then `layer`). */
class Image {
  private memo: Map<string, string | null> | undefined;

  constructor(
    readonly base: Base | null,
    readonly below: Image | null,
    readonly layer: Action | null,
  ) {}

  /** The columns the images of this chain set, later ones winning; iterative, as chains can be long. */
  overlay(): Map<string, string | null> {
    const pending: Image[] = [];
    let at: Image | null = this;
    while (at !== null && at.memo === undefined) {
      pending.push(at);
      at = at.below;
    }
    let values = at?.memo ?? new Map<string, string | null>();
    for (let i = pending.length - 1; i >= 0; i--) {
      const image = pending[i]!;
      const next = new Map(values);
      const layer = image.layer;
      if (layer !== null) {
        const texts = textsOf(layer);
        layer.columns!.names.forEach((name, c) => next.set(name, texts[c]!));
      }
      image.memo = next;
      values = next;
    }
    return values;
  }
}

interface Partial {
  readonly event: number;
  readonly action: Action;
  readonly image: Image;
}

/**
 * Follows every update that is not whole back to where its row comes from; undefined when the
 * write has none (nothing to read, nothing to change).
 */
export function planAbsent(byEvent: readonly Action[][], absent: AbsentColumns): AbsentPlan | undefined {
  if (!byEvent.some((actions) => actions.some((action) => action.kind === "upsert" && !action.whole))) return undefined;
  const states = new Map<TargetTable, Map<string, Image | "gone">>();
  const partials: Partial[] = [];
  byEvent.forEach((actions, event) => {
    if (actions.length === 0) return;
    const upsert = actions.find((action) => action.kind === "upsert");
    const removed = actions.find((action) => action.kind === "delete");
    const table = (upsert ?? removed)!.table;
    let byKey = states.get(table);
    if (byKey === undefined) {
      byKey = new Map();
      states.set(table, byKey);
    }
    if (upsert === undefined) {
      byKey.set(removed!.key!, "gone");
      return;
    }
    const key = keyOfAction(upsert);
    let image: Image;
    if (upsert.whole) {
      image = new Image(null, null, upsert);
      if (removed !== undefined) byKey.set(removed.key!, "gone");
    } else if (removed !== undefined) {
      // The row moves from the old key: it is what the old key's row was at this point.
      const old = byKey.get(removed.key!) ?? new Image({ table, key: removed.key!, keyTexts: removed.keyTexts, otherwise: null }, null, null);
      byKey.set(removed.key!, "gone");
      const from = old === "gone" ? new Image(null, null, null) : old;
      image =
        from.base !== null && byKey.get(key) === undefined
          ? new Image({ table, key, keyTexts: keyTextsOf(upsert), otherwise: from }, null, upsert)
          : new Image(from.base, from, upsert);
      partials.push({ event, action: upsert, image });
    } else {
      const previous = byKey.get(key);
      image =
        previous === undefined
          ? new Image({ table, key, keyTexts: keyTextsOf(upsert), otherwise: null }, null, upsert)
          : previous === "gone"
            ? new Image(null, null, upsert)
            : new Image(previous.base, previous, upsert);
      partials.push({ event, action: upsert, image });
    }
    byKey.set(key, image);
  });

  const reads = new Map<TargetTable, Map<string, RowRequest>>();
  const request = (base: Base, values: boolean): void => {
    let byKey = reads.get(base.table);
    if (byKey === undefined) {
      byKey = new Map();
      reads.set(base.table, byKey);
    }
    const known = byKey.get(base.key);
    if (known === undefined || (values && !known.values)) byKey.set(base.key, { keyTexts: base.keyTexts, values });
  };
  const requestValues = (image: Image): void => {
    for (let base = image.base; base !== null; base = base.otherwise?.base ?? null) request(base, true);
  };
  for (const { action, image } of partials) {
    const base = image.base;
    if (base === null) continue;
    if (base.key === keyOfAction(action)) {
      request(base, false);
      if (base.otherwise !== null) requestValues(base.otherwise);
    } else {
      requestValues(image);
    }
  }

  return {
    reads,
    resolve(found) {
      const rejected: AbsentRejection[] = [];
      const replaced = new Map<Action, Action>();
      const rejectedEvents = new Set<number>();
      for (const { event, action, image } of partials) {
        const key = keyOfAction(action);
        const base = image.base;
        let values: Map<string, string | null> | undefined;
        if (base !== null && base.key === key) {
          if (found(base.table, key) !== undefined) continue; // kept: the target has the row
          const from = base.otherwise === null ? undefined : valuesOf(base.otherwise, found);
          values = from === undefined ? undefined : over(from, image.overlay());
        } else {
          values = valuesOf(image, found);
        }
        const table = action.table;
        const names = values === undefined ? [] : [...table.columns.keys()].filter((name) => values.has(name));
        const columns = values === undefined ? action.columns! : columnSetOf(table, names);
        const missing = absent(columns);
        if (values === undefined || missing.length > 0) {
          rejectedEvents.add(event);
          rejected.push({ index: action.index, action, absent: values === undefined ? absent(action.columns!) : missing, looked: lookedFor(image) });
          continue;
        }
        replaced.set(action, { ...action, whole: true, row: null, columns, texts: names.map((name) => values.get(name)!) });
      }
      const result = byEvent.flatMap((actions, event) => (rejectedEvents.has(event) ? [] : [actions.map((action) => replaced.get(action) ?? action)]));
      return { byEvent: result, rejected };
    },
  };
}

/** The row an image stands for: its base's values (found in the target, or moved from another key) under its images; undefined when the base is nowhere. */
function valuesOf(image: Image, found: FoundRows): Map<string, string | null> | undefined {
  const base = image.base;
  let start: ReadonlyMap<string, string | null>;
  if (base === null) {
    start = new Map();
  } else {
    const row = found(base.table, base.key);
    if (row !== undefined) start = row;
    else if (base.otherwise !== null) {
      const moved = valuesOf(base.otherwise, found);
      if (moved === undefined) return undefined;
      start = moved;
    } else return undefined;
  }
  return over(start, image.overlay());
}

function over(under: ReadonlyMap<string, string | null>, top: ReadonlyMap<string, string | null>): Map<string, string | null> {
  const values = new Map(under);
  for (const [name, text] of top) values.set(name, text);
  return values;
}

/** The keys whose rows the target was asked for along the image's chain, its own first. */
function lookedFor(image: Image): (readonly (string | null)[])[] {
  const keys: (readonly (string | null)[])[] = [];
  for (let base = image.base; base !== null; base = base.otherwise?.base ?? null) {
    if (!keys.some((k) => k.join("\u0000") === base!.keyTexts.join("\u0000"))) keys.push(base.keyTexts);
  }
  return keys;
}
