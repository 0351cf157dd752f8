/**
 * Source column types as the duckdb sink sees them: the DuckDB column a declared source type
 * makes, and whether an existing column holds it.
 *
 * The sink mostly types columns by their values (types.ts). A declared type is used where values
 * cannot tell: a json/jsonb column whose first value is a scalar (a JSON string is a string, like
 * text), and a column a schema change adds before any row has a value for it. So that both ways
 * agree, a declared type makes the column its values would: every integer type BIGINT, a
 * `numeric(p,s)` DECIMAL(38,s), text VARCHAR, json JSON.
 *
 * Whether a column holds a type, and how it may widen to, is decided with the same rules as for
 * values: each type comes with sample values spanning its range (an `integer`'s least and
 * greatest, a `numeric(12,2)`'s largest magnitude with all its digits), and a column holds the
 * type when it holds every sample, or widens (types.ts `widening`) until it does. One rule the
 * samples cannot express is added: a JSON column holds JSON values only, not text, since a text
 * value would read back as a JSON string.
 *
 * A type not listed here (an enum, a domain, a composite, unconstrained `numeric`, a type of a
 * dialect without a source yet) has no declared mapping: its column is typed by its first value.
 */
import { Decimal } from "../../model/decimal.js";
import { Timestamp } from "../../model/timestamp.js";
import type { Value } from "../../model/value.js";
import type { TableSchema } from "../../runtime/contracts.js";
import { MAX_DECIMAL_PRECISION, misfit, sqlType, widening, type ColumnType, type Widening } from "./types.js";

export interface SourceColumnType {
  /** The DuckDB type a new column of this source type gets. */
  readonly create: ColumnType;
  /** Values spanning the type: a column holds the type when it holds each of them. */
  readonly samples: readonly Value[];
  /** What its values are, when a JSON column must not hold them (text) or only a JSON column may (json). */
  readonly values?: "text" | "json";
}

const BIGINT: ColumnType = { kind: "integer", sql: "BIGINT" };
const HUGEINT: ColumnType = { kind: "integer", sql: "HUGEINT" };

const signed = (bits: bigint): SourceColumnType => ({ create: BIGINT, samples: [-(2n ** (bits - 1n)), 2n ** (bits - 1n) - 1n] });
const unsigned = (bits: bigint): SourceColumnType => ({ create: bits < 64n ? BIGINT : HUGEINT, samples: [0, 2n ** bits - 1n] });
const TEXT: SourceColumnType = { create: { kind: "varchar" }, samples: ["text"], values: "text" };
const JSON_VALUES: SourceColumnType = { create: { kind: "json" }, samples: [{}, [], "text", 1, new Decimal("1.5"), true], values: "json" };
/** An array of a PostgreSQL type: a list, kept as JSON like every list. */
const LIST: SourceColumnType = { create: { kind: "json" }, samples: [[]] };
const FLOAT: SourceColumnType = { create: { kind: "double" }, samples: [0.5] };
const BOOLEAN: SourceColumnType = { create: { kind: "boolean" }, samples: [true] };
const BYTES: SourceColumnType = { create: { kind: "blob" }, samples: [Buffer.alloc(0)] };
const timestamp = (withZone: boolean): SourceColumnType => ({ create: { kind: "timestamp", withZone }, samples: [new Timestamp(0n, withZone)] });

/** `numeric(p,s)`: DECIMAL(38,s) like its values, sampled by its largest magnitude; none beyond DuckDB's 38 digits. */
function decimal(precision: number, scale: number): SourceColumnType | undefined {
  if (precision > MAX_DECIMAL_PRECISION || scale < 0 || scale > precision) return undefined;
  const integerPart = "9".repeat(precision - scale) || "0";
  const largest = scale === 0 ? integerPart : `${integerPart}.${"9".repeat(scale)}`;
  return { create: { kind: "decimal", precision: MAX_DECIMAL_PRECISION, scale }, samples: [new Decimal(largest), new Decimal(`-${largest}`)] };
}

/** PostgreSQL types as `format_type` prints them (what its source's describe and schema changes give). */
function postgresType(type: string): SourceColumnType | undefined {
  if (type.endsWith("[]")) return LIST;
  const numeric = /^numeric\((\d+),(-?\d+)\)$/.exec(type);
  if (numeric !== null) return decimal(Number(numeric[1]), Number(numeric[2]));
  if (/^timestamp(\(\d\))? without time zone$/.test(type)) return timestamp(false);
  if (/^timestamp(\(\d\))? with time zone$/.test(type)) return timestamp(true);
  if (/^(character varying|character|bit varying|bit)(\(\d+\))?$/.test(type) || /^time(\(\d\))? with(out)? time zone$/.test(type)) return TEXT;
  if (/^interval( .*)?(\(\d\))?$/.test(type)) return TEXT;
  switch (type) {
    case "smallint":
      return signed(16n);
    case "integer":
      return signed(32n);
    case "bigint":
      return signed(64n);
    case "real":
    case "double precision":
      return FLOAT;
    case "boolean":
      return BOOLEAN;
    case "text":
    case '"char"':
    case "name":
    case "uuid":
    case "inet":
    case "cidr":
    case "macaddr":
    case "macaddr8":
    case "money":
    case "xml":
      return TEXT;
    case "date":
      // Read as midnight of the day, a wall-clock time (postgres decode.ts).
      return timestamp(false);
    case "bytea":
      return BYTES;
    case "json":
    case "jsonb":
      return JSON_VALUES;
    default:
      return undefined;
  }
}

/**
 * MySQL types as `COLUMN_TYPE` prints them. Only types whose values the model fixes are mapped;
 * dates and times wait for the MySQL source, which will say how it reads them.
 */
function mysqlType(type: string): SourceColumnType | undefined {
  const text = type.toLowerCase().replace(/\s+zerofill$/, "");
  const integer = /^(tinyint|smallint|mediumint|int|integer|bigint)(\(\d+\))?( unsigned)?$/.exec(text);
  if (integer !== null) {
    const bits = { tinyint: 8n, smallint: 16n, mediumint: 24n, int: 32n, integer: 32n, bigint: 64n }[integer[1] as "int"];
    return integer[3] !== undefined ? unsigned(bits) : signed(bits);
  }
  const numeric = /^(?:decimal|numeric)\((\d+),(\d+)\)( unsigned)?$/.exec(text);
  if (numeric !== null) return decimal(Number(numeric[1]), Number(numeric[2]));
  if (/^(float|double|real)(\(\d+(,\d+)?\))?( unsigned)?$/.test(text)) return FLOAT;
  if (/^(var)?char\(\d+\)$/.test(text) || /^(tiny|medium|long)?text$/.test(text) || /^(enum|set)\(/.test(text)) return TEXT;
  if (/^(var)?binary\(\d+\)$/.test(text) || /^(tiny|medium|long)?blob$/.test(text)) return BYTES;
  if (text === "json") return JSON_VALUES;
  return undefined;
}

/** The DuckDB view of a source column type, or undefined when its values must tell. */
export function sourceColumnType(dialect: TableSchema["dialect"], type: string): SourceColumnType | undefined {
  switch (dialect) {
    case "postgres":
      return postgresType(type.trim());
    case "mysql":
      return mysqlType(type.trim());
    default: {
      const unreachable: never = dialect;
      return unreachable;
    }
  }
}

/** What a column needs so that it holds a source type: nothing, a widening, or it cannot. */
export type Fit =
  | { readonly kind: "holds" }
  | { readonly kind: "widen"; readonly to: ColumnType; readonly offenders: ((column: string) => string) | null }
  | { readonly kind: "cannot"; readonly reason: string };

/** Whether a column of type `column` holds every value of `source`, or how it may widen to. */
export function fitSourceType(column: ColumnType, source: SourceColumnType): Fit {
  let to = column;
  const offenders: ((column: string) => string)[] = [];
  // A JSON column holds JSON values only, and JSON values only a JSON column — or a column that
  // never held a value, which any type may take.
  if (column.kind === "json" && source.values === "text") return { kind: "cannot", reason: "a JSON column would hold its text as JSON strings" };
  if (source.values === "json" && column.kind !== "json") {
    if (column.kind !== "varchar") return { kind: "cannot", reason: `${sqlType(column)} does not hold JSON` };
    to = source.create;
    offenders.push((name) => `${name} IS NOT NULL`);
  }
  for (const sample of source.samples) {
    if (misfit(to, sample) === undefined) continue;
    const step: Widening | undefined = widening(to, sample);
    if (step === undefined || misfit(step.to, sample) !== undefined) return { kind: "cannot", reason: `${sqlType(to)} does not hold all its values` };
    to = step.to;
    if (step.offenders !== null) offenders.push(step.offenders);
  }
  if (to === column) return { kind: "holds" };
  for (const sample of source.samples) {
    if (misfit(to, sample) !== undefined) return { kind: "cannot", reason: `${sqlType(to)} does not hold all its values` };
  }
  return {
    kind: "widen",
    to,
    offenders: offenders.length === 0 ? null : (name) => offenders.map((condition) => `(${condition(name)})`).join(" OR "),
  };
}
