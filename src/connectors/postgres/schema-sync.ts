/**
 * Bringing a target table in line with its source table after an ALTER TABLE there
 * (`SinkBatch.schemaChanges`), before the rows that need it.
 *
 * What the sink does, per column of the change:
 *
 *   added      ADD COLUMN with the source's type (or text, for a type the target lacks). Rows
 *              that existed hold the source's constant DEFAULT there, if it had one: the column
 *              is added with it as its DEFAULT, which fills those rows without rewriting them,
 *              and the DEFAULT is then dropped (every later row comes with its value).
 *   retyped    a widening (the table below) keeps the source's values as they were: ALTER
 *              COLUMN TYPE when the new type is wider than the target's, nothing when the target's
 *              holds it already (the same type, a wider one, text). A narrowing or any other
 *              change may have rewritten the source's rows (numeric(12,4) → numeric(10,2) rounds
 *              them), which no change event carries: an error naming both types and the statement
 *              to run, unless the target has the new type already.
 *   dropped    the target keeps the column and its values (a warning); rows written from now
 *              on have NULL there. pgoutput cannot tell a renamed column from a dropped and an
 *              added one, so a rename lands here too: the new column is added, and the rows not
 *              changed since keep their value in the old one only.
 *   renamed    (the table) a warning naming the stale target table: the table's changes go to
 *              the new name from now on.
 *
 * Every change to the target needs `create_tables: true`; without it the sink changes no table
 * and stops with the exact statements to run. The same holds for a row carrying a column the
 * target lacks that no schema change announced (a flow that maps or routes, a column added while
 * the pipeline was stopped).
 */
import type { SchemaChange } from "../../runtime/contracts.js";
import { mysqlToPostgres, quoteIdent, type TargetTable } from "./ddl.js";

/** One thing to do to a target column. */
export type ColumnSync =
  | { readonly kind: "add"; readonly column: string; readonly type: string; readonly existing?: { readonly value: string } | "computed" }
  | { readonly kind: "widen"; readonly column: string; readonly from: string; readonly to: string }
  /** `from`: the target's type; `narrowing`: the source's change narrowed the column. */
  | { readonly kind: "refuse"; readonly column: string; readonly from: string; readonly to: string; readonly narrowing: boolean }
  | { readonly kind: "keep"; readonly column: string };

/**
 * What the change asks of the target table. `targetTypes` spells each of the change's column
 * types as the target would create it (definitionsFromSchema: text for a type it lacks).
 */
export function planSync(target: TargetTable, change: SchemaChange, targetTypes: ReadonlyMap<string, string>): ColumnSync[] {
  const steps: ColumnSync[] = [];
  const changes = new Map(change.columns.map((c) => [c.kind === "renamed" ? c.to : c.column, c]));
  for (const column of change.schema.columns) {
    const want = targetTypes.get(column.name) ?? column.type;
    const have = target.columns.get(column.name);
    const changed = changes.get(column.name);
    if (have === undefined) {
      const existing = changed?.kind === "added" ? changed.existing : undefined;
      steps.push({ kind: "add", column: column.name, type: want, ...(existing !== undefined ? { existing } : {}) });
    } else if (changed?.kind === "retyped" && have.typeName !== want) {
      // A widening kept the source's values as they were; any other change may have rewritten them.
      // A MySQL source's types are compared as the PostgreSQL types they map to.
      const inPostgres = (type: string): string => (change.schema.dialect === "mysql" ? mysqlToPostgres(type) : type);
      const [from, to] = [inPostgres(changed.from), inPostgres(changed.to)];
      const widened = widens(from, to) || from === to;
      if (widened && widens(have.typeName, want)) steps.push({ kind: "widen", column: column.name, from: have.typeName, to: want });
      else if (!widened || !holdsAll(have.typeName, want)) steps.push({ kind: "refuse", column: column.name, from: have.typeName, to: want, narrowing: widens(to, from) });
    }
  }
  for (const c of change.columns) {
    const gone = c.kind === "dropped" ? c.column : c.kind === "renamed" ? c.from : undefined;
    if (gone !== undefined && target.columns.has(gone) && !change.schema.columns.some((s) => s.name === gone)) steps.push({ kind: "keep", column: gone });
  }
  return steps;
}

/** The statements doing the `add` and `widen` steps, in order. */
export function syncStatements(target: TargetTable, steps: readonly ColumnSync[]): string[] {
  const statements: string[] = [];
  for (const step of steps) {
    const column = quoteIdent(step.column);
    if (step.kind === "add") {
      const value = step.existing !== undefined && step.existing !== "computed" ? step.existing.value : undefined;
      if (value === undefined) {
        statements.push(`ALTER TABLE ${target.sql} ADD COLUMN IF NOT EXISTS ${column} ${step.type}`);
      } else {
        statements.push(`ALTER TABLE ${target.sql} ADD COLUMN IF NOT EXISTS ${column} ${step.type} DEFAULT ${quoteLiteral(value)}`);
        statements.push(`ALTER TABLE ${target.sql} ALTER COLUMN ${column} DROP DEFAULT`);
      }
    } else if (step.kind === "widen") {
      statements.push(`ALTER TABLE ${target.sql} ALTER COLUMN ${column} TYPE ${step.to}`);
    }
  }
  return statements;
}

/** Whether a column of type `have` takes every value of type `want` as it is: a wider type, or text. */
function holdsAll(have: string, want: string): boolean {
  return widens(want, have) || have === "text" || have === "character varying";
}

export function quoteLiteral(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

// ---------------------------------------------------------------- widening

/**
 * Whether every value of type `from` fits type `to` unchanged, so that ALTER COLUMN TYPE `to`
 * loses nothing: integers to wider integers or to a numeric with room for their digits, numeric
 * to more digits on both sides of the point, real to double precision, character varying to a
 * longer one or to text, times to more fractional digits; arrays of these alike. Types as
 * PostgreSQL's format_type prints them.
 */
export function widens(from: string, to: string): boolean {
  if (from === to) return false;
  if (from.endsWith("[]") && to.endsWith("[]")) return widens(from.slice(0, -2), to.slice(0, -2));
  const a = parseType(from);
  const b = parseType(to);
  if (a === undefined || b === undefined) return false;
  switch (a.kind) {
    case "integer":
      if (b.kind === "integer") return b.digits > a.digits;
      return b.kind === "numeric" && (b.precision === undefined || b.precision - b.scale! >= a.digits);
    case "numeric":
      if (b.kind !== "numeric" || a.precision === undefined) return false;
      return b.precision === undefined || (b.scale! >= a.scale! && b.precision - b.scale! >= a.precision - a.scale!);
    case "float":
      return b.kind === "float" && b.bits > a.bits;
    case "varchar":
      if (b.kind === "text") return true;
      return b.kind === "varchar" && (b.length === undefined || (a.length !== undefined && b.length > a.length));
    case "text":
      return b.kind === "varchar" && b.length === undefined;
    case "time":
      return b.kind === "time" && b.base === a.base && b.precision > a.precision;
  }
}

type ParsedType =
  | { readonly kind: "integer"; readonly digits: number }
  | { readonly kind: "numeric"; readonly precision: number | undefined; readonly scale: number | undefined }
  | { readonly kind: "float"; readonly bits: number }
  | { readonly kind: "varchar"; readonly length: number | undefined }
  | { readonly kind: "text" }
  | { readonly kind: "time"; readonly base: string; readonly precision: number };

/** Decimal digits each integer type holds whatever its value (a numeric needs this many before the point). */
const integerDigits: Readonly<Record<string, number>> = { smallint: 5, integer: 10, bigint: 19 };

function parseType(type: string): ParsedType | undefined {
  const digits = integerDigits[type];
  if (digits !== undefined) return { kind: "integer", digits };
  if (type === "real") return { kind: "float", bits: 32 };
  if (type === "double precision") return { kind: "float", bits: 64 };
  if (type === "text") return { kind: "text" };
  if (type === "numeric") return { kind: "numeric", precision: undefined, scale: undefined };
  const numeric = /^numeric\((\d+),(-?\d+)\)$/.exec(type);
  if (numeric !== null) return { kind: "numeric", precision: Number(numeric[1]), scale: Number(numeric[2]) };
  if (type === "character varying") return { kind: "varchar", length: undefined };
  const varchar = /^character varying\((\d+)\)$/.exec(type);
  if (varchar !== null) return { kind: "varchar", length: Number(varchar[1]) };
  // timestamp(3) without time zone; without a precision, 6.
  const time = /^(timestamp|time)(?:\((\d)\))? (with|without) time zone$/.exec(type);
  if (time !== null) return { kind: "time", base: `${time[1]} ${time[3]}`, precision: time[2] === undefined ? 6 : Number(time[2]) };
  return undefined;
}
