/**
 * What a source table's schema change (`SinkBatch.schemaChanges`) asks of its DuckDB table,
 * decided without touching the database: the sink runs the plan.
 *
 * The table is brought in line with the change's `schema`, the source table's columns after it:
 * a column the table lacks is added, typed from its declared type (source-types.ts); a column the
 * change added or retyped is widened when the table's type does not hold the new type; a new
 * type the column cannot widen to (integer to text, timestamp to timestamptz, a JSON column to
 * text) is a conflict, which stops the sink rather than reject every later row. A source type
 * narrower than the column's (bigint to integer) needs nothing: the column still holds it.
 *
 * Nothing is dropped or renamed in DuckDB: a dropped column keeps its values (upserts then leave
 * it as it is and new rows NULL), a renamed one is kept under its old name beside the new one,
 * and each is a warning saying so. pgoutput cannot tell a rename from a drop and an add, so the
 * warning of a change with both says what a rename then looks like.
 */
import type { SchemaChange } from "../../runtime/contracts.js";
import { fold } from "./names.js";
import { fitSourceType, sourceColumnType } from "./source-types.js";
import { sqlType, type ColumnType } from "./types.js";

export interface PlannedAddition {
  readonly name: string;
  readonly type: ColumnType;
}

export interface PlannedWidening {
  /** The table's column, as the catalog spells it. */
  readonly column: string;
  readonly from: ColumnType;
  readonly to: ColumnType;
  /** A SQL condition on the column matching stored values the new type would not hold; null when none can. */
  readonly offenders: ((column: string) => string) | null;
  readonly sourceType: string;
}

export interface Conflict {
  readonly column: string;
  readonly columnType: ColumnType;
  /** The source column's type before the change, when the change says. */
  readonly sourceFrom?: string;
  readonly sourceType: string;
  readonly reason: string;
  /** The DuckDB type to change the column to, when there is one. */
  readonly fix?: ColumnType;
}

export interface SchemaChangePlan {
  readonly additions: readonly PlannedAddition[];
  readonly widenings: readonly PlannedWidening[];
  readonly conflicts: readonly Conflict[];
  readonly warnings: readonly string[];
  /** Columns whose type waits for their first value: the declared type has no mapping. */
  readonly deferred: readonly string[];
}

/**
 * The plan for `table` (its columns as the catalog has them; `tableName` as messages print it).
 * Columns named in `reserved` (append mode's metadata) are the sink's and left alone.
 */
export function planSchemaChange(
  tableName: string,
  columns: readonly { readonly name: string; readonly type: ColumnType }[],
  change: SchemaChange,
  reserved: ReadonlySet<string> = new Set(),
): SchemaChangePlan {
  const byName = new Map(columns.map((column) => [fold(column.name), column]));
  const touched = new Map<string, string | undefined>();
  for (const item of change.columns) {
    switch (item.kind) {
      case "added":
        touched.set(fold(item.column), undefined);
        break;
      case "retyped":
        touched.set(fold(item.column), item.from);
        break;
      case "renamed":
        touched.set(fold(item.to), undefined);
        break;
      case "dropped":
        break;
      default: {
        const unreachable: never = item;
        return unreachable;
      }
    }
  }
  const additions: PlannedAddition[] = [];
  const widenings: PlannedWidening[] = [];
  const conflicts: Conflict[] = [];
  const deferred: string[] = [];
  for (const declared of change.schema.columns) {
    const folded = fold(declared.name);
    if (reserved.has(folded)) continue;
    const source = sourceColumnType(change.schema.dialect, declared.type);
    const column = byName.get(folded);
    if (column === undefined) {
      if (source === undefined) deferred.push(declared.name);
      else additions.push({ name: declared.name, type: source.create });
      continue;
    }
    if (!touched.has(folded) || source === undefined) continue;
    const fit = fitSourceType(column.type, source);
    const sourceFrom = touched.get(folded);
    switch (fit.kind) {
      case "holds":
        break;
      case "widen":
        widenings.push({ column: column.name, from: column.type, to: fit.to, offenders: fit.offenders, sourceType: declared.type });
        break;
      case "cannot":
        conflicts.push({
          column: column.name,
          columnType: column.type,
          ...(sourceFrom !== undefined ? { sourceFrom } : {}),
          sourceType: declared.type,
          reason: fit.reason,
          fix: source.create,
        });
        break;
      default: {
        const unreachable: never = fit;
        return unreachable;
      }
    }
  }
  return { additions, widenings, conflicts, warnings: warningsOf(tableName, change, byName), deferred };
}

function warningsOf(tableName: string, change: SchemaChange, byName: ReadonlyMap<string, { readonly name: string }>): string[] {
  const warnings: string[] = [];
  const dropped = change.columns.filter((item) => item.kind === "dropped");
  const added = change.columns.filter((item) => item.kind === "added");
  for (const item of change.columns) {
    if (item.kind === "dropped") {
      const kept = byName.get(fold(item.column));
      if (kept === undefined) continue;
      let warning =
        `source table ${change.table}: column "${item.column}" (${item.type}) was dropped; DuckDB table ${tableName} keeps its column ` +
        `"${kept.name}" with the values written so far (updates from now on leave it as it is, new rows leave it NULL)`;
      if (added.length > 0 && dropped.length > 0) {
        warning += `; if it was renamed to ${added.map((other) => `"${other.column}"`).join(" or ")} (a rename arrives as a drop and an add), the values so far stay in "${kept.name}"`;
      }
      warnings.push(warning);
    } else if (item.kind === "renamed") {
      const kept = byName.get(fold(item.from));
      if (kept === undefined) continue;
      warnings.push(
        `source table ${change.table}: column "${item.from}" was renamed to "${item.to}"; DuckDB table ${tableName} keeps column "${kept.name}" ` +
          `with the values written so far, and column "${item.to}" holds the values from now on`,
      );
    }
  }
  return warnings;
}

/** A conflict as a sentence: the table, the column, both types and what to run. */
export function describeConflict(tableName: string, conflict: Conflict): string {
  const sourceTypes = conflict.sourceFrom !== undefined ? `from ${conflict.sourceFrom} to ${conflict.sourceType}` : `to ${conflict.sourceType}`;
  let text = `column "${conflict.column}" of DuckDB table ${tableName} is ${sqlType(conflict.columnType)}, and its source column changed type ${sourceTypes}: ${conflict.reason}`;
  if (conflict.fix !== undefined) {
    text += `; change the column (DuckDB converts its values, or says which one it cannot): ALTER TABLE ${tableName} ALTER COLUMN "${conflict.column.replaceAll('"', '""')}" TYPE ${sqlType(conflict.fix)}`;
  }
  return text;
}
