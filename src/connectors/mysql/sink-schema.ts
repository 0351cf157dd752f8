/**
 * Bringing a MySQL target table in line with its source table after an ALTER TABLE there
 * (`SinkBatch.schemaChanges`), before the rows that need it — the postgres sink's rules
 * (postgres/schema-sync.ts), with types compared in the neutral model (fitsIn):
 *
 *   added      ADD COLUMN with the mapped type (sink-types.ts). A constant DEFAULT of the
 *              source fills the rows that existed: the column is added with it as its DEFAULT,
 *              which is then dropped (every later row comes with its value).
 *   retyped    a widening of the source whose new type the target's column does not hold:
 *              MODIFY COLUMN to the mapped new type. Nothing when the target's column holds it
 *              already. A narrowing or another change may have rewritten the source's rows,
 *              which no change event carries: refused, naming both types and what to run.
 *   dropped    the target keeps the column and its values (a warning).
 */
import type { ColumnType } from "../../model/column-type.js";
import { describeColumnType, fitsIn } from "../../model/column-type.js";
import type { SchemaChange } from "../../runtime/contracts.js";
import { quoteIdentifier as quote } from "./connection.js";
import { definitions, type TargetTable } from "./sink-tables.js";
import { columnTypeOf } from "./sink-types.js";

export type ColumnSync =
  | { readonly kind: "add"; readonly column: string; readonly sql: string; readonly existing?: { readonly value: string } | "computed" }
  | { readonly kind: "widen"; readonly column: string; readonly from: string; readonly to: string }
  | { readonly kind: "refuse"; readonly column: string; readonly to: string; readonly reason: string }
  | { readonly kind: "keep"; readonly column: string };

export function planChange(target: TargetTable, change: SchemaChange, collation: string): ColumnSync[] {
  const steps: ColumnSync[] = [];
  const changes = new Map(change.columns.map((c) => [c.kind === "renamed" ? c.to : c.column, c]));
  const dialect = change.schema.dialect;
  for (const column of change.schema.columns) {
    const want: ColumnType = columnTypeOf(dialect, column.type);
    const [definition] = definitions([{ name: column.name, type: want }], change.schema.primaryKey, collation);
    const have = target.columns.get(column.name);
    const changed = changes.get(column.name);
    if (have === undefined) {
      const existing = changed?.kind === "added" ? changed.existing : undefined;
      steps.push({ kind: "add", column: column.name, sql: definition!.sql, ...(existing !== undefined ? { existing } : {}) });
      continue;
    }
    if (changed?.kind !== "retyped") continue;
    const haveType = have.json ? ({ kind: "json" } as const) : columnTypeOf("mysql", have.columnType);
    // The target's column holds every value of the new type already (the same type, a wider one, text).
    if (holds(haveType, want)) continue;
    const from = columnTypeOf(dialect, changed.from);
    const widened = fitsIn(from, want);
    if (widened && fitsIn(haveType, columnTypeOf("mysql", definition!.sql.replace(/ CHARACTER SET .*$/, "")))) {
      steps.push({ kind: "widen", column: column.name, from: have.columnType, to: definition!.sql });
    } else {
      const why = fitsIn(want, from)
        ? "a narrowing: the source's ALTER rewrote its rows (numeric and time values may be rounded), and no change event carries them"
        : "a change of type the sink does not follow: the source's ALTER may have rewritten its rows, and no change event carries them";
      steps.push({
        kind: "refuse",
        column: column.name,
        to: definition!.sql,
        reason: `column ${column.name} went from ${changed.from} to ${changed.to} in source table ${change.table} (${describeColumnType(from)} to ${describeColumnType(want)}), ${why}; target table ${target.display} has ${have.columnType}`,
      });
    }
  }
  for (const c of change.columns) {
    const gone = c.kind === "dropped" ? c.column : c.kind === "renamed" ? c.from : undefined;
    if (gone !== undefined && target.columns.has(gone) && !change.schema.columns.some((s) => s.name === gone)) steps.push({ kind: "keep", column: gone });
  }
  return steps;
}

/** Whether a column of type `have` takes every value of `want` unchanged: a wider type, or unbounded text for a type kept as text. */
function holds(have: ColumnType, want: ColumnType): boolean {
  if (fitsIn(want, have)) return true;
  return have.kind === "text" && have.length === undefined && (want.kind === "other" || want.kind === "interval" || want.kind === "uuid" || want.kind === "text");
}

export function syncStatements(target: TargetTable, steps: readonly ColumnSync[]): string[] {
  const statements: string[] = [];
  for (const step of steps) {
    const column = quote(step.column);
    if (step.kind === "add") {
      const value = step.existing !== undefined && step.existing !== "computed" ? step.existing.value : undefined;
      if (value === undefined) statements.push(`ALTER TABLE ${target.sql} ADD COLUMN IF NOT EXISTS ${column} ${step.sql}`);
      else {
        statements.push(`ALTER TABLE ${target.sql} ADD COLUMN IF NOT EXISTS ${column} ${step.sql} DEFAULT ${quoteLiteral(value)}`);
        statements.push(`ALTER TABLE ${target.sql} ALTER COLUMN ${column} DROP DEFAULT`);
      }
    } else if (step.kind === "widen") {
      statements.push(`ALTER TABLE ${target.sql} MODIFY COLUMN ${column} ${step.to}`);
    }
  }
  return statements;
}

/** `added c INT, n INT -> BIGINT`: what a change asks of the target, for a message. */
export function describeSteps(steps: readonly ColumnSync[]): string {
  return steps.flatMap((step) => (step.kind === "add" ? [`added ${step.column} ${step.sql}`] : step.kind === "widen" ? [`${step.column} ${step.from} -> ${step.to}`] : [])).join(", ");
}

function quoteLiteral(text: string): string {
  return `'${text.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`;
}
