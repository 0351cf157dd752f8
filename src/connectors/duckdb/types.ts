/**
 * Column types of the duckdb sink: which DuckDB type a value creates, whether a column can hold
 * a value exactly, how a column may widen, and how a value is appended.
 *
 * The rule is exactness. A value goes into a column only when reading the column back gives the
 * same value; otherwise the event is rejected with the reason, never rounded, truncated or
 * turned into text behind the user's back. Types are inferred from the first non-null value:
 *
 *   boolean               BOOLEAN
 *   integer               BIGINT; HUGEINT beyond 64 bits; VARCHAR (exact text) beyond 128 bits
 *   float                 DOUBLE
 *   decimal               DECIMAL(38, scale of the value) — 38 is DuckDB's largest precision, and
 *                         every precision above 18 costs the same 16 bytes, so the column takes
 *                         the next rows' larger values too; VARCHAR (exact text) when no DECIMAL
 *                         holds the value
 *   string                VARCHAR
 *   timestamp             TIMESTAMPTZ for an instant, TIMESTAMP for a wall-clock time (microseconds)
 *   bytes                 BLOB
 *   list, record          JSON, as the lossless text of `encodeJson`
 *   null                  VARCHAR, retyped by the first non-null value while the column holds no other
 *
 * A JSON column holds every JSON value: objects and arrays, and the scalars too — a string is
 * stored as the JSON string `"abc"`, a number as `42`. Since a JSON string and a text value are
 * the same model value, only the source's declared type (json, jsonb) can make a column JSON
 * when its first value is a scalar; source-types.ts maps declared types.
 *
 * Because one value cannot tell the type of a column, a column widens when a later value needs
 * it and every value already stored still fits: BIGINT → HUGEINT, an integer column → DECIMAL
 * when a fraction arrives, DECIMAL(p,s) → a larger scale, BIGINT → DOUBLE when a float with a
 * fraction arrives and every stored integer is within ±2^53 (so none is rounded). A widening
 * comes with a SQL condition matching the stored rows that would not fit; the sink runs it first.
 */
import {
  DuckDBBlobValue,
  DuckDBDecimalValue,
  DuckDBTimestampTZValue,
  DuckDBTimestampValue,
  listValue,
  type DuckDBValue,
} from "@duckdb/node-api";
import { Decimal, DecimalMath } from "../../model/decimal.js";
import { encodeJson } from "../../model/json.js";
import { Timestamp } from "../../model/timestamp.js";
import { typeOf, type Value } from "../../model/value.js";

/** DuckDB's largest DECIMAL precision. */
export const MAX_DECIMAL_PRECISION = 38;

const integerRanges = {
  TINYINT: [-(2n ** 7n), 2n ** 7n - 1n],
  SMALLINT: [-(2n ** 15n), 2n ** 15n - 1n],
  INTEGER: [-(2n ** 31n), 2n ** 31n - 1n],
  BIGINT: [-(2n ** 63n), 2n ** 63n - 1n],
  HUGEINT: [-(2n ** 127n), 2n ** 127n - 1n],
  UTINYINT: [0n, 2n ** 8n - 1n],
  USMALLINT: [0n, 2n ** 16n - 1n],
  UINTEGER: [0n, 2n ** 32n - 1n],
  UBIGINT: [0n, 2n ** 64n - 1n],
  UHUGEINT: [0n, 2n ** 128n - 1n],
} as const satisfies Record<string, readonly [bigint, bigint]>;

export type IntegerSql = keyof typeof integerRanges;

export type ColumnType =
  | { readonly kind: "boolean" }
  | { readonly kind: "integer"; readonly sql: IntegerSql }
  | { readonly kind: "double" }
  | { readonly kind: "float" }
  | { readonly kind: "decimal"; readonly precision: number; readonly scale: number }
  | { readonly kind: "varchar" }
  | { readonly kind: "json" }
  | { readonly kind: "timestamp"; readonly withZone: boolean }
  | { readonly kind: "blob" }
  /** VARCHAR[]: `append` mode's `_absent`, the names of the columns a change left out. */
  | { readonly kind: "text_list" }
  /** A type this sink does not write (DATE, LIST, STRUCT, ...): only nulls go in. */
  | { readonly kind: "unsupported"; readonly sql: string };

const BIGINT: ColumnType = { kind: "integer", sql: "BIGINT" };
const HUGEINT: ColumnType = { kind: "integer", sql: "HUGEINT" };
const VARCHAR: ColumnType = { kind: "varchar" };
const DOUBLE: ColumnType = { kind: "double" };
export const JSON_TYPE: ColumnType = { kind: "json" };
export const TEXT_LIST: ColumnType = { kind: "text_list" };

/** The type in DuckDB's SQL, as written in CREATE TABLE and ALTER TABLE. */
export function sqlType(type: ColumnType): string {
  switch (type.kind) {
    case "boolean":
      return "BOOLEAN";
    case "integer":
      return type.sql;
    case "double":
      return "DOUBLE";
    case "float":
      return "FLOAT";
    case "decimal":
      return `DECIMAL(${type.precision},${type.scale})`;
    case "varchar":
      return "VARCHAR";
    case "json":
      return "JSON";
    case "timestamp":
      return type.withZone ? "TIMESTAMPTZ" : "TIMESTAMP";
    case "blob":
      return "BLOB";
    case "text_list":
      return "VARCHAR[]";
    case "unsupported":
      return type.sql;
    default: {
      const unreachable: never = type;
      return unreachable;
    }
  }
}

/** A column type as `duckdb_columns().data_type` prints it. */
export function parseColumnType(dataType: string): ColumnType {
  const text = dataType.trim().toUpperCase();
  if (Object.hasOwn(integerRanges, text)) return { kind: "integer", sql: text as IntegerSql };
  const decimal = /^(?:DECIMAL|NUMERIC)\((\d+),\s*(\d+)\)$/.exec(text);
  if (decimal !== null) return { kind: "decimal", precision: Number(decimal[1]), scale: Number(decimal[2]) };
  switch (text) {
    case "BOOLEAN":
      return { kind: "boolean" };
    case "DOUBLE":
      return DOUBLE;
    case "FLOAT":
      return { kind: "float" };
    case "VARCHAR":
      return VARCHAR;
    case "JSON":
      return { kind: "json" };
    case "TIMESTAMP":
      return { kind: "timestamp", withZone: false };
    case "TIMESTAMP WITH TIME ZONE":
    case "TIMESTAMPTZ":
      return { kind: "timestamp", withZone: true };
    case "BLOB":
      return { kind: "blob" };
    case "VARCHAR[]":
      return TEXT_LIST;
    default:
      return { kind: "unsupported", sql: dataType };
  }
}

// ---------------------------------------------------------------- exact numbers

/** A number's digits: before the point, and after it with trailing zeros dropped. */
interface Digits {
  readonly integerDigits: number;
  readonly minimalScale: number;
  /** The scale the value was written with (a decimal's own scale), at least `minimalScale`. */
  readonly scale: number;
}

function integerDigits(value: bigint): number {
  return value === 0n ? 0 : (value < 0n ? -value : value).toString().length;
}

/** The exact decimal a number stands for: an integer, a decimal, or a float's shortest text. */
function asDecimal(value: number | bigint | Decimal): Decimal {
  return value instanceof Decimal ? value : new Decimal(value);
}

function digitsOf(value: number | bigint | Decimal): Digits {
  if (typeof value === "bigint" || (typeof value === "number" && Number.isSafeInteger(value))) {
    return { integerDigits: integerDigits(BigInt(value)), minimalScale: 0, scale: 0 };
  }
  const decimal = asDecimal(value);
  const exact = decimal.value;
  return {
    integerDigits: exact.isZero() ? 0 : Math.max(0, exact.e + 1),
    minimalScale: exact.decimalPlaces(),
    scale: decimal.scale,
  };
}

/** The DECIMAL(38, s) a value creates: its own scale where that fits, or undefined when none holds it. */
function decimalTypeFor(digits: Digits): ColumnType | undefined {
  const scale = Math.min(digits.scale, MAX_DECIMAL_PRECISION - digits.integerDigits);
  if (scale < digits.minimalScale) return undefined;
  return { kind: "decimal", precision: MAX_DECIMAL_PRECISION, scale };
}

function inIntegerRange(sql: IntegerSql, value: bigint): boolean {
  const [min, max] = integerRanges[sql];
  return value >= min && value <= max;
}

/** The unscaled integer of an exact number at `scale` digits after the point (the number fits). */
function unscaledAt(value: number | bigint | Decimal, scale: number): bigint {
  if (typeof value === "bigint" || (typeof value === "number" && Number.isSafeInteger(value))) {
    return BigInt(value) * 10n ** BigInt(scale);
  }
  return BigInt(asDecimal(value).value.toFixed(scale).replace(".", ""));
}

/** A number no DuckDB numeric type holds exactly; such values are kept as exact text. */
export function isWideNumber(value: Value): boolean {
  if (typeof value === "bigint") return !inIntegerRange("HUGEINT", value);
  if (value instanceof Decimal) return decimalTypeFor(digitsOf(value)) === undefined;
  return false;
}

/** Whether a double holds an integer exactly (so that a DOUBLE column reads it back the same). */
function doubleHoldsInteger(value: bigint): boolean {
  const double = Number(value);
  return Number.isFinite(double) && BigInt(double) === value;
}

// ---------------------------------------------------------------- inference and checks

/** The type of a new column from its first non-null value, and a warning when it is a fallback. */
export function inferType(value: Value): { type: ColumnType; warning?: string } {
  switch (typeOf(value)) {
    case "null":
      return { type: VARCHAR };
    case "boolean":
      return { type: { kind: "boolean" } };
    case "integer": {
      const integer = BigInt(value as number | bigint);
      if (inIntegerRange("BIGINT", integer)) return { type: BIGINT };
      if (inIntegerRange("HUGEINT", integer)) return { type: HUGEINT };
      return { type: VARCHAR, warning: "an integer beyond 128 bits: the column is VARCHAR holding exact text" };
    }
    case "float":
      return { type: DOUBLE };
    case "decimal": {
      const type = decimalTypeFor(digitsOf(value as Decimal));
      if (type !== undefined) return { type };
      return {
        type: VARCHAR,
        warning: `a decimal wider than DuckDB's DECIMAL(${MAX_DECIMAL_PRECISION}): the column is VARCHAR holding exact text, not a lossy DOUBLE`,
      };
    }
    case "string":
      return { type: VARCHAR };
    case "timestamp":
      return { type: { kind: "timestamp", withZone: (value as Timestamp).withZone } };
    case "bytes":
      return { type: { kind: "blob" } };
    case "json-null":
    case "list":
    case "record":
      return { type: { kind: "json" } };
  }
}

// A lone surrogate cannot be encoded in UTF-8; DuckDB would store U+FFFD in its place.
const loneSurrogate = /[\uD800-\uDFFF]/u;

/**
 * Why the column cannot hold the value exactly, or undefined when it can. Null always fits
 * here (a key column's nulls are the sink's business).
 */
export function misfit(type: ColumnType, value: Value): string | undefined {
  if (value === null) return undefined;
  const kind = typeOf(value);
  switch (type.kind) {
    case "boolean":
      return kind === "boolean" ? undefined : "";
    case "integer": {
      if (kind !== "integer") return "";
      return inIntegerRange(type.sql, BigInt(value as number | bigint)) ? undefined : "out of range";
    }
    case "double":
      if (kind === "float") return undefined;
      if (kind === "integer") return doubleHoldsInteger(BigInt(value as number | bigint)) ? undefined : "a DOUBLE would round it";
      if (kind === "decimal") return doubleReadsBack(value as Decimal) ? undefined : "a DOUBLE would round it";
      return "";
    case "float": {
      if (kind === "float") {
        const number = value as number;
        return !Number.isFinite(number) || Math.fround(number) === number ? undefined : "a FLOAT would round it";
      }
      if (kind === "integer") {
        const integer = BigInt(value as number | bigint);
        return doubleHoldsInteger(integer) && Math.fround(Number(integer)) === Number(integer) ? undefined : "a FLOAT would round it";
      }
      return "";
    }
    case "decimal": {
      if (kind !== "integer" && kind !== "decimal" && kind !== "float") return "";
      if (kind === "float" && !Number.isFinite(value as number)) return "";
      const digits = digitsOf(value as number | bigint | Decimal);
      if (digits.minimalScale > type.scale) return `it has more than ${type.scale} digits after the point`;
      if (digits.integerDigits > type.precision - type.scale) return `it has more than ${type.precision - type.scale} digits before the point`;
      return undefined;
    }
    case "varchar":
      if (kind === "string") return loneSurrogate.test(value as string) ? "it holds a lone surrogate, which UTF-8 cannot encode" : undefined;
      // The exact-text fallback for numbers no DuckDB numeric type holds.
      return isWideNumber(value) ? undefined : "";
    case "json":
      switch (kind) {
        case "json-null":
        case "list":
        case "record":
        case "string":
        case "boolean":
        case "integer":
        case "decimal":
          return undefined;
        case "float":
          return Number.isFinite(value as number) ? undefined : "JSON has no NaN or Infinity";
        default:
          return "";
      }
    case "timestamp": {
      if (kind !== "timestamp") return "";
      const timestamp = value as Timestamp;
      if (timestamp.withZone !== type.withZone) {
        return timestamp.withZone ? "it is an instant (with a zone), the column a wall-clock time" : "it is a wall-clock time (without a zone), the column an instant";
      }
      return timestamp.epochMicros >= DuckDBTimestampValue.Min.micros && timestamp.epochMicros <= DuckDBTimestampValue.Max.micros
        ? undefined
        : "out of DuckDB's timestamp range";
    }
    case "blob":
      return kind === "bytes" ? undefined : "";
    case "text_list":
      return Array.isArray(value) && value.every((item) => typeof item === "string") ? undefined : "";
    case "unsupported":
      return `this sink does not write ${type.sql} columns`;
    default: {
      const unreachable: never = type;
      return unreachable;
    }
  }
}

/** Whether the double nearest a decimal prints as that decimal (so the column reads it back the same). */
function doubleReadsBack(value: Decimal): boolean {
  const double = value.toNumber();
  return Number.isFinite(double) && new DecimalMath(String(double)).equals(value.value);
}

/** A widening: the column's new type, and a SQL condition on `column` matching stored rows it would not hold. */
export interface Widening {
  readonly to: ColumnType;
  /** null when every stored value fits the new type. */
  readonly offenders: ((column: string) => string) | null;
}

/**
 * The type a column may widen to so that it also holds `value`, or undefined when there is none
 * (see the top of this file). The caller checks the stored rows with `offenders` and the rows of
 * the batch with `misfit`. A VARCHAR column that holds only nulls takes the value's type.
 */
export function widening(type: ColumnType, value: Value): Widening | undefined {
  const kind = typeOf(value);
  const tryCast = (to: ColumnType) => (column: string) => `${column} IS NOT NULL AND TRY_CAST(${column} AS ${sqlType(to)}) IS NULL`;
  if (type.kind === "varchar") {
    return { to: inferType(value).type, offenders: (column) => `${column} IS NOT NULL` };
  }
  if (type.kind === "integer" && (type.sql === "BIGINT" || type.sql === "HUGEINT")) {
    if (kind === "integer" && type.sql === "BIGINT" && inIntegerRange("HUGEINT", BigInt(value as number | bigint))) {
      return { to: HUGEINT, offenders: null };
    }
    if (kind === "float" && type.sql === "BIGINT" && Number.isFinite(value as number)) {
      return { to: DOUBLE, offenders: (column) => `${column} > 9007199254740992 OR ${column} < -9007199254740992` };
    }
    if (kind === "decimal") {
      const to = decimalTypeFor(digitsOf(value as Decimal));
      return to === undefined ? undefined : { to, offenders: tryCast(to) };
    }
    return undefined;
  }
  if (type.kind === "decimal" && (kind === "decimal" || kind === "float" || kind === "integer")) {
    if (kind === "float" && !Number.isFinite(value as number)) return undefined;
    const digits = digitsOf(value as number | bigint | Decimal);
    if (digits.minimalScale <= type.scale) return undefined;
    // Keep the room the column had before the point where DuckDB's 38 digits allow it.
    const scale = Math.max(digits.minimalScale, Math.min(digits.scale, MAX_DECIMAL_PRECISION - digits.integerDigits));
    const room = Math.max(type.precision - type.scale, digits.integerDigits);
    const to: ColumnType = { kind: "decimal", precision: Math.min(MAX_DECIMAL_PRECISION, room + scale), scale };
    if (to.precision - to.scale < digits.integerDigits) return undefined;
    return { to, offenders: to.precision - to.scale >= type.precision - type.scale ? null : tryCast(to) };
  }
  return undefined;
}

// ---------------------------------------------------------------- writing

/**
 * A value the column holds (`misfit` said so) as the column's vector takes it: the sink fills
 * DuckDB data chunks column by column, which costs no call into the native library per value.
 */
export function toDuckDBValue(type: ColumnType, value: Value): DuckDBValue {
  if (value === null) return null;
  switch (type.kind) {
    case "boolean":
      return value as boolean;
    case "integer":
      return integerVectorTakesNumber[type.sql] ? Number(value) : BigInt(value as number | bigint);
    case "double":
    case "float":
      return value instanceof Decimal ? value.toNumber() : Number(value);
    case "decimal":
      return new DuckDBDecimalValue(unscaledAt(value as number | bigint | Decimal, type.scale), type.precision, type.scale);
    case "varchar":
      return typeof value === "string" ? value : String(value);
    case "json":
      return encodeJson(value);
    case "timestamp": {
      const micros = (value as Timestamp).epochMicros;
      return type.withZone ? new DuckDBTimestampTZValue(micros) : new DuckDBTimestampValue(micros);
    }
    case "blob":
      return new DuckDBBlobValue(value as Uint8Array);
    case "text_list":
      return listValue(value as string[]);
    case "unsupported":
      throw new TypeError(`cannot write a value to a ${type.sql} column`);
    default: {
      const unreachable: never = type;
      return unreachable;
    }
  }
}

/** Integer vectors of up to 32 bits take JavaScript numbers; wider ones take bigints. */
const integerVectorTakesNumber: Readonly<Record<IntegerSql, boolean>> = {
  TINYINT: true,
  SMALLINT: true,
  INTEGER: true,
  BIGINT: false,
  HUGEINT: false,
  UTINYINT: true,
  USMALLINT: true,
  UINTEGER: true,
  UBIGINT: false,
  UHUGEINT: false,
};

/**
 * Text identifying a key value as the column stores it, so that two spellings of one stored
 * value (`1.0` and `1.00` in a DECIMAL column) are one key when a batch is folded per key.
 */
export function keyText(type: ColumnType, value: Value): string {
  if (value === null) return "n";
  switch (type.kind) {
    case "integer":
      return `i${BigInt(value as number | bigint)}`;
    case "decimal":
      return `d${unscaledAt(value as number | bigint | Decimal, type.scale)}`;
    case "double":
    case "float":
      return `f${value instanceof Decimal ? value.toNumber() : Number(value)}`;
    case "timestamp":
      return `t${(value as Timestamp).epochMicros}`;
    case "blob":
      return `b${Buffer.from(value as Uint8Array).toString("hex")}`;
    case "json":
      return `j${encodeJson(value)}`;
    default:
      return `s${typeof value === "string" ? value : encodeJson(value)}`;
  }
}

/** A short, exact description of a value for a rejection reason: `string "abc"`, `decimal 12.345`. */
export function describeValue(value: Value): string {
  const text = encodeJson(value);
  return `${typeOf(value)} ${text.length > 60 ? `${text.slice(0, 57)}...` : text}`;
}
