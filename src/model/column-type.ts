/**
 * Column types, in one model every engine maps into and out of.
 *
 * A source describes its tables in these types (PostgreSQL's `numeric(12,2)` and MySQL's
 * `DECIMAL(12,2)` are both `{ kind: "decimal", precision: 12, scale: 2 }`), and a sink that
 * creates or alters tables maps them to its own: each engine then needs one mapping in and one
 * out, not one per pair of engines. The model says what a column can hold, not how an engine
 * spells it: the width and sign of an integer, the precision and scale of a decimal, the length
 * of a text or binary, the precision and zone of a time, the members of an enum. A type the
 * model has no kind for (PostgreSQL's `inet`, MySQL's `GEOMETRY`) is `other`, carried by its
 * engine's name; a sink of another engine stores its values as text.
 *
 * The engine's own spelling travels beside the model (`ColumnSchema.native`): a sink of the
 * same engine copies the declaration as it was (a domain, `character varying(3)`, `TINYINT(1)`)
 * rather than a mapping of a mapping.
 */

export type ColumnType =
  | { readonly kind: "boolean" }
  /** `bits`: 8, 16, 24 (MySQL MEDIUMINT), 32 or 64. */
  | { readonly kind: "integer"; readonly bits: 8 | 16 | 24 | 32 | 64; readonly signed: boolean }
  /** Exact decimal; without `precision`, unbounded (PostgreSQL `numeric`). */
  | { readonly kind: "decimal"; readonly precision?: number; readonly scale?: number }
  | { readonly kind: "float"; readonly bits: 32 | 64 }
  /** Character data; `length` in characters (none: unbounded); `fixed`: blank-padded (`char(n)`). */
  | { readonly kind: "text"; readonly length?: number; readonly fixed?: boolean }
  /** Bytes; `length` in bytes (none: unbounded); `fixed`: `BINARY(n)`. */
  | { readonly kind: "binary"; readonly length?: number; readonly fixed?: boolean }
  | { readonly kind: "date" }
  /** Time of day; `precision`: fractional digits of a second (0–6); `zone`: with a UTC offset. */
  | { readonly kind: "time"; readonly precision?: number; readonly zone: boolean }
  /**
   * A point in time. `zone: true` is an instant (PostgreSQL `timestamptz`, MySQL `TIMESTAMP`,
   * stored as UTC); `zone: false` a wall-clock time without a zone (`timestamp`, `DATETIME`).
   */
  | { readonly kind: "timestamp"; readonly precision?: number; readonly zone: boolean }
  | { readonly kind: "interval" }
  /** A JSON document; `binary`: stored parsed (jsonb), where the engine tells. */
  | { readonly kind: "json"; readonly binary?: boolean }
  | { readonly kind: "uuid" }
  /** One of `values` (PostgreSQL enum types, MySQL ENUM). */
  | { readonly kind: "enum"; readonly values: readonly string[] }
  /** Any subset of `values` (MySQL SET). */
  | { readonly kind: "set"; readonly values: readonly string[] }
  /** A bit string of `length` bits (PostgreSQL `bit(n)`, MySQL `BIT(n)`); `varying`: up to `length`. */
  | { readonly kind: "bit"; readonly length: number; readonly varying?: boolean }
  /** A calendar year (MySQL YEAR). */
  | { readonly kind: "year" }
  /** A list of `element` (PostgreSQL arrays). */
  | { readonly kind: "array"; readonly element: ColumnType }
  /** A type the model has no kind for, by its engine's name: its values travel as text. */
  | { readonly kind: "other"; readonly name: string };

export type ColumnKind = ColumnType["kind"];

/** One column of a described table. */
export interface ColumnSchema {
  readonly name: string;
  readonly type: ColumnType;
  /** The type as its engine declares it (`numeric(10,2)`, `character varying(3)`, `tinyint(1) unsigned`). */
  readonly native: string;
  readonly nullable: boolean;
  /** The column is computed by its engine (a generated column): a copy receives its values. */
  readonly generated?: boolean;
}

/**
 * A short engine-neutral spelling, for messages and docs: `integer(32)`, `integer(64, unsigned)`,
 * `decimal(12,2)`, `text(255)`, `timestamp(6, zone)`, `array(integer(32))`.
 */
export function describeColumnType(type: ColumnType): string {
  switch (type.kind) {
    case "boolean":
    case "date":
    case "interval":
    case "uuid":
    case "year":
      return type.kind;
    case "integer":
      return `integer(${type.bits}${type.signed ? "" : ", unsigned"})`;
    case "decimal":
      return type.precision === undefined ? "decimal" : `decimal(${type.precision},${type.scale ?? 0})`;
    case "float":
      return `float(${type.bits})`;
    case "text":
    case "binary":
      return `${type.kind}${type.fixed === true ? "-fixed" : ""}${type.length === undefined ? "" : `(${type.length})`}`;
    case "time":
    case "timestamp":
      return `${type.kind}(${[type.precision === undefined ? [] : [String(type.precision)], type.zone ? ["zone"] : []].flat().join(", ")})`;
    case "json":
      return type.binary === true ? "json(binary)" : "json";
    case "enum":
    case "set":
      return `${type.kind}(${type.values.map((value) => JSON.stringify(value)).join(", ")})`;
    case "bit":
      return `bit${type.varying === true ? "-varying" : ""}(${type.length})`;
    case "array":
      return `array(${describeColumnType(type.element)})`;
    case "other":
      return `other(${type.name})`;
    default: {
      const unreachable: never = type;
      return unreachable;
    }
  }
}

/** The range of an integer type, inclusive. */
export function integerRange(type: Extract<ColumnType, { kind: "integer" }>): { readonly min: bigint; readonly max: bigint } {
  const bits = BigInt(type.bits);
  return type.signed ? { min: -(1n << (bits - 1n)), max: (1n << (bits - 1n)) - 1n } : { min: 0n, max: (1n << bits) - 1n };
}

/**
 * Whether every value of `from` is a value of `to`, exactly: what a sink asks before it widens
 * a column to follow a source's ALTER, or maps a type into one of another engine. An unsigned
 * 64-bit integer fits a `decimal(20,0)`, not a signed 64-bit integer; a `decimal(12,2)` fits a
 * `decimal(14,2)` and a `decimal(13,3)`, not a `decimal(12,3)`.
 */
export function fitsIn(from: ColumnType, to: ColumnType): boolean {
  if (from.kind === "other" || to.kind === "other") return from.kind === "other" && to.kind === "other" && from.name === to.name;
  switch (from.kind) {
    case "integer": {
      const range = integerRange(from);
      if (to.kind === "integer") {
        const target = integerRange(to);
        return range.min >= target.min && range.max <= target.max;
      }
      if (to.kind === "decimal") return to.precision === undefined || to.precision - (to.scale ?? 0) >= digitsOf(range);
      return to.kind === "float" && range.max <= (to.bits === 64 ? 2n ** 53n : 2n ** 24n) && -range.min <= (to.bits === 64 ? 2n ** 53n : 2n ** 24n);
    }
    case "decimal":
      if (to.kind !== "decimal") return false;
      if (to.precision === undefined) return true;
      if (from.precision === undefined) return false;
      return (to.scale ?? 0) >= (from.scale ?? 0) && to.precision - (to.scale ?? 0) >= from.precision - (from.scale ?? 0);
    case "float":
      return to.kind === "float" && to.bits >= from.bits;
    case "text":
      if (to.kind !== "text") return false;
      if (to.fixed === true && from.fixed !== true) return false;
      return to.length === undefined || (from.length !== undefined && from.length <= to.length);
    case "binary":
      if (to.kind !== "binary") return false;
      if (to.fixed === true && from.fixed !== true) return false;
      return to.length === undefined || (from.length !== undefined && from.length <= to.length);
    case "time":
    case "timestamp":
      return to.kind === from.kind && to.zone === from.zone && (to.precision ?? 6) >= (from.precision ?? 6);
    case "enum":
    case "set":
      return to.kind === from.kind && from.values.every((value) => to.values.includes(value));
    case "bit":
      return to.kind === "bit" && (to.varying === true ? to.length >= from.length : to.length === from.length && from.varying !== true);
    case "array":
      return to.kind === "array" && fitsIn(from.element, to.element);
    case "json":
      return to.kind === "json";
    case "boolean":
    case "date":
    case "interval":
    case "uuid":
    case "year":
      return to.kind === from.kind;
    default: {
      const unreachable: never = from;
      return unreachable;
    }
  }
}

function digitsOf(range: { readonly min: bigint; readonly max: bigint }): number {
  const widest = range.max > -range.min ? range.max : -range.min;
  return widest.toString().length;
}
