/**
 * What events ask of the target's tables, before anything is sent: each event becomes one or two
 * actions on one table — an upsert of its row, a delete of its key, or for an update that changed
 * the key both — with the row's values encoded for the target's columns (encode.ts); then the
 * actions of a write collapse per key, so that each key appears once per statement, which
 * `ON CONFLICT DO UPDATE` requires.
 *
 * An upsert is `whole` when it may insert its row: it has every column the source table has
 * (an insert, a snapshot read, an update with its whole row). An update without some of them —
 * PostgreSQL leaves an unchanged TOASTed value out, and absent is not null — is not whole until
 * absent.ts has completed it from the row it replaces; one still not whole updates only the
 * columns it has, of a row the target was found to have.
 */
import type { SinkEvent } from "../../runtime/contracts.js";
import type { Row } from "../../model/value.js";
import type { TargetTable } from "./ddl.js";
import { COPY_SAFE_KINDS, EncodeError, type Encoder } from "./encode.js";

/**
 * A list of columns that rows of one table arrive with, shared by every such row (most tables
 * have one): the encoders, where the key columns are, which texts COPY may need to escape.
 */
export interface ColumnSet {
  readonly table: TargetTable;
  readonly names: readonly string[];
  readonly encoders: readonly Encoder[];
  /** Where each primary-key column is in `names`, in key order. */
  readonly keyIndexes: readonly number[];
  /** Whether a column's text can hold a character COPY must escape (numbers and times cannot). */
  readonly escaped: readonly boolean[];
}

/** One thing to do to one row of one table, on behalf of the event at `index`. */
export interface Action {
  readonly index: number;
  readonly table: TargetTable;
  readonly kind: "upsert" | "delete";
  /** An insert or snapshot read: a row the target is not expected to have yet. */
  readonly fresh: boolean;
  /**
   * Upserts: the row has every column of the source table the target has, so it may be inserted
   * where the target lacks its key. Not whole: an update without some of them (absent, so
   * unchanged), which only updates the columns it has, of a row the target has (absent.ts).
   */
  readonly whole: boolean;
  /** Upserts: the row image and the set of its columns. */
  readonly row: Row | null;
  readonly columns: ColumnSet | null;
  /**
   * Upserts: the encoded values, when planning needed them (an update's key, a merge). A fresh
   * row is encoded only as it is written (`textsOf`), so that on the snapshot's hot path the
   * encoding of a chunk overlaps the server's work on the chunk before it.
   */
  readonly texts: readonly (string | null)[] | null;
  /** Deletes: the encoded primary-key values, in `table.primaryKey` order. */
  readonly keyTexts: readonly (string | null)[];
  /** The row's identity in its table (the encoded key), once computed. */
  key: string | undefined;
}

export interface TablePlan {
  readonly table: TargetTable;
  readonly deletes: Action[];
  /** Whole rows, by column set: inserted or updated. */
  readonly upserts: Map<ColumnSet, Action[]>;
  /** Rows that are not whole, by column set: only updated (absent.ts found the target has them). */
  readonly updates: Map<ColumnSet, Action[]>;
  readonly fresh: boolean;
}

/**
 * Per table (in order of first appearance): each key's final action. A range of inserts and
 * snapshot reads only needs no collapsing (a key cannot be inserted twice without a delete in
 * between), which spares a map lookup per row on the snapshot's hot path; should a key repeat
 * anyway (two sources routed into one table), the server refuses the statement and careful
 * mode applies the rows one by one, in order.
 */
export function collapse(actions: readonly Action[]): TablePlan[] {
  if (actions.every((action) => action.fresh)) return groupFresh(actions);
  const finals = new Map<TargetTable, Map<string, Action>>();
  const fresh = new Map<TargetTable, boolean>();
  for (const action of actions) {
    let byKey = finals.get(action.table);
    if (byKey === undefined) {
      byKey = new Map();
      finals.set(action.table, byKey);
      fresh.set(action.table, true);
    }
    if (!action.fresh) fresh.set(action.table, false);
    const key = keyOfAction(action);
    const previous = byKey.get(key);
    let final = action;
    if (previous !== undefined) {
      byKey.delete(key); // re-inserted below, so that the map's order is last-touched order
      if (action.kind === "upsert" && previous.kind === "upsert") final = merge(previous, action);
    }
    byKey.set(key, final);
  }
  const plans: TablePlan[] = [];
  for (const [table, byKey] of finals) {
    const plan: TablePlan = { table, deletes: [], upserts: new Map(), updates: new Map(), fresh: fresh.get(table)! };
    for (const action of byKey.values()) {
      if (action.kind === "delete") plan.deletes.push(action);
      else addTo(action.whole ? plan.upserts : plan.updates, action);
    }
    plans.push(plan);
  }
  return plans;
}

function groupFresh(actions: readonly Action[]): TablePlan[] {
  const plans = new Map<TargetTable, TablePlan>();
  for (const action of actions) {
    let plan = plans.get(action.table);
    if (plan === undefined) {
      plan = { table: action.table, deletes: [], upserts: new Map(), updates: new Map(), fresh: true };
      plans.set(action.table, plan);
    }
    addTo(plan.upserts, action);
  }
  return [...plans.values()];
}

function addTo(groups: Map<ColumnSet, Action[]>, action: Action): void {
  const group = groups.get(action.columns!);
  if (group === undefined) groups.set(action.columns!, [action]);
  else group.push(action);
}

/**
 * A later row image over an earlier one of the same key: columns it lacks keep the earlier
 * values. Whether the result may be inserted is the later one's to say: absent.ts made it whole
 * when an earlier image in the write completes it.
 */
export function merge(earlier: Action, later: Action): Action {
  const before = earlier.columns!;
  const after = later.columns!;
  if (before === after || before.names.every((c) => after.names.includes(c))) return later;
  const texts = new Map<string, string | null>();
  const earlierTexts = textsOf(earlier);
  const laterTexts = textsOf(later);
  before.names.forEach((c, i) => texts.set(c, earlierTexts[i]!));
  after.names.forEach((c, i) => texts.set(c, laterTexts[i]!));
  const names = [...texts.keys()];
  return { ...later, row: null, columns: columnSetOf(later.table, names), texts: names.map((c) => texts.get(c)!) };
}

/** The column sets met so far, per table; the last one used is tried first. */
export class ColumnSets {
  private readonly last = new Map<TargetTable, ColumnSet>();
  private readonly lastNamed = new Map<TargetTable, { names: readonly string[]; set: ColumnSet }>();

  /** The set of these columns (a source's raw column list, one array for all its batches). */
  ofNames(table: TargetTable, names: readonly string[]): ColumnSet {
    const last = this.lastNamed.get(table);
    if (last !== undefined && last.names === names) return last.set;
    const set = columnSetOf(table, names);
    this.lastNamed.set(table, { names, set });
    return set;
  }

  /** The set of `row`'s columns, found without allocating when it is the usual one. */
  of(table: TargetTable, row: Row): ColumnSet {
    const last = this.last.get(table);
    if (last !== undefined) {
      const names = last.names;
      let i = 0;
      let same = true;
      for (const name in row) {
        if (names[i] !== name) {
          same = false;
          break;
        }
        i++;
      }
      if (same && i === names.length) return last;
    }
    const set = columnSetOf(table, Object.keys(row));
    this.last.set(table, set);
    return set;
  }
}

const columnSetCache = new WeakMap<TargetTable, Map<string, ColumnSet>>();

export function columnSetOf(table: TargetTable, names: readonly string[]): ColumnSet {
  let sets = columnSetCache.get(table);
  if (sets === undefined) {
    sets = new Map();
    columnSetCache.set(table, sets);
  }
  const id = names.join("\u0000");
  let set = sets.get(id);
  if (set === undefined) {
    const columns = names.map((name) => {
      const column = table.columns.get(name);
      if (column === undefined) throw new UnknownColumnError(table, name);
      return column;
    });
    const keyIndexes = table.primaryKey.map((name) => names.indexOf(name));
    const missing = table.primaryKey.find((_, k) => keyIndexes[k] === -1);
    if (missing !== undefined) throw new EncodeError(`the row has no value for the primary-key column ${missing}`);
    set = {
      table,
      names,
      encoders: columns.map((c) => c.encode),
      keyIndexes,
      escaped: columns.map((c) => !COPY_SAFE_KINDS.has(c.encoding.kind)),
    };
    sets.set(id, set);
  }
  return set;
}

/**
 * What the event asks of its target table; throws EncodeError when it cannot be applied. An
 * insert or read is only checked for its columns here (see `Action.texts`); an update is
 * encoded at once, as its key decides whether it moved a row.
 */
export function actionsOf(sinkEvent: SinkEvent, index: number, table: TargetTable, columnSets: ColumnSets, absent: AbsentColumns): Action[] {
  const event = sinkEvent.event;
  if (event.op === "delete") return [deleteAction(index, table, keyOf(table, event.key, event.before))];
  const after = event.after;
  if (after === null) throw new EncodeError(`${event.op} event without an after image`);
  const columns = columnSets.of(table, after);
  if (event.op !== "update") {
    return [{ index, table, kind: "upsert", fresh: true, whole: true, row: after, columns, texts: null, keyTexts: NO_TEXTS, key: undefined }];
  }
  const texts = encodeRow(columns, after);
  const whole = absent(columns).length === 0;
  const upsert: Action = { index, table, kind: "upsert", fresh: false, whole, row: after, columns, texts, keyTexts: NO_TEXTS, key: undefined };
  if (event.before !== null && table.primaryKey.every((name) => Object.hasOwn(event.before!, name))) {
    const oldKey = keyOf(table, null, event.before);
    if (keyString(oldKey) !== keyOfAction(upsert)) return [deleteAction(index, table, oldKey), upsert];
  }
  return [upsert];
}

/** The columns of the source table that the target has and a row of this column set lacks. */
export type AbsentColumns = (columns: ColumnSet) => readonly string[];

/** The row's columns' texts; those in `skip` are left null (their caller sends them otherwise). */
export function encodeRow(columns: ColumnSet, row: Row, skip?: ReadonlyMap<number, unknown>): (string | null)[] {
  const { names, encoders } = columns;
  const texts: (string | null)[] = new Array(names.length);
  for (let i = 0; i < names.length; i++) {
    if (skip?.has(i)) {
      texts[i] = null;
      continue;
    }
    try {
      texts[i] = encoders[i]!(row[names[i]!]!);
    } catch (error) {
      if (error instanceof EncodeError) throw new EncodeError(`column ${names[i]}: ${error.message}`);
      throw error;
    }
  }
  return texts;
}

/** An upsert's encoded values (encoding them now if planning did not). */
export function textsOf(action: Action): readonly (string | null)[] {
  return action.texts ?? encodeRow(action.columns!, action.row!);
}

export const NO_TEXTS: readonly (string | null)[] = [];

export function deleteAction(index: number, table: TargetTable, keyTexts: (string | null)[]): Action {
  return { index, table, kind: "delete", fresh: false, whole: true, row: null, columns: null, texts: null, keyTexts, key: keyString(keyTexts) };
}

/** A row has a column its target table lacks (a column added to the source since, or made by a step). */
export class UnknownColumnError extends EncodeError {
  constructor(
    readonly table: TargetTable,
    readonly column: string,
  ) {
    super(`no column ${column} in ${table.display}`, "DTS7204");
    this.name = "UnknownColumnError";
  }
}

/** The encoded key of any action. */
export function keyTextsOf(action: Action): readonly (string | null)[] {
  if (action.kind === "delete") return action.keyTexts;
  const { keyIndexes, encoders, names } = action.columns!;
  if (action.texts !== null) return keyIndexes.map((at) => action.texts![at]!);
  return keyIndexes.map((at) => encoders[at]!(action.row![names[at]!]!));
}

export function keyOfAction(action: Action): string {
  if (action.key === undefined) action.key = keyString(keyTextsOf(action));
  return action.key;
}

/** The primary key's encoded values, from the event's key or else its before image. */
export function keyOf(table: TargetTable, key: Row | null, before: Row | null): (string | null)[] {
  return table.primaryKey.map((name) => {
    const value = key !== null && Object.hasOwn(key, name) ? key[name]! : before !== null && Object.hasOwn(before, name) ? before[name]! : undefined;
    if (value === undefined || value === null) throw new EncodeError(`the delete has no value for the primary-key column ${name}`);
    return table.columns.get(name)!.encode(value);
  });
}

export function keyString(texts: readonly (string | null)[]): string {
  return texts.length === 1 ? (texts[0] ?? "\u0000") : texts.map((t) => (t === null ? "\u0000" : t)).join("\u0001");
}
