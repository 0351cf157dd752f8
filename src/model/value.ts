/**
 * The runtime value: what a column, a field of the change event, or an expression holds.
 *
 * Plain JavaScript values where they are exact, wrappers where they are not: an integer is a
 * `number` while it is safe (|v| ≤ 2^53−1) and a `bigint` beyond, so the common case costs
 * nothing and a 64-bit key never becomes a lossy double; a float is a `number`; `numeric`
 * is an exact `Decimal` with its scale; a timestamp is a microsecond `Timestamp`; binary is a
 * `Buffer`; lists are arrays and records plain objects. One consequence is unavoidable: a
 * float holding an integral value within the safe range (`3.0`) is the same JS number as the
 * integer `3`, so it is an "integer" to `typeOf` and to arithmetic.
 *
 * JSON null is a value, SQL NULL its absence. A json/jsonb column holding the JSON document
 * `null` holds `JSON_NULL` (the one instance of `JsonNull`), never `null`: `null` is SQL NULL,
 * the column holds nothing. The marker exists only where a whole column value (or an array
 * element of a json[] column) is the JSON null document; a null *inside* a JSON object or array
 * is plain `null`, because there JSON's null is the only null there is (and JSON text prints
 * both as `null`). So a source reading a JSON column gives `JSON_NULL` for `'null'` and `null`
 * for SQL NULL (`jsonDocument`, src/model/json.ts), and a sink writing one gives the JSON text
 * `null` for `JSON_NULL` and SQL NULL for `null` (see SinkWriter in src/runtime/contracts.ts).
 * Outputs that are JSON text themselves (jsonl, Debezium, `json()`) print both as `null`.
 * Expressions see it as a value of type "json-null": `is null` is false (as PostgreSQL's
 * `'null'::jsonb IS NULL`), `==` tells it from null, `??` and `coalesce` keep it, a member or
 * an index of it is null (as `'null'::jsonb -> 'a'`), and an operator that needs a number or a
 * string refuses it, as it refuses a record.
 *
 * Records are plain objects read with own-property checks only (`getField`), so a column named
 * `constructor` or `__proto__` is an ordinary column and never reaches Object.prototype.
 *
 * `compareValues` is a total order over all values (used for sorting, `<`, and keys): numbers
 * of every kind compare exactly with each other — a bigint, a double and a decimal are
 * compared as the exact rationals they are, never through a rounded double.
 */
import { Decimal } from "./decimal.js";
import { Timestamp } from "./timestamp.js";
import type { JsonValue } from "./json-value.js";

/** JSON's null as a whole column value: a value, unlike SQL NULL. Use the one instance, `JSON_NULL`. */
export class JsonNull {
  static readonly instance: JsonNull = Object.freeze(new JsonNull());
  private constructor() {}
  toString(): string {
    return "null";
  }
  toJSON(): null {
    return null;
  }
}

/** The JSON document `null` held by a json column (see the file comment). */
export const JSON_NULL: JsonNull = JsonNull.instance;

export function isJsonNull(value: Value | undefined): value is JsonNull {
  return value instanceof JsonNull;
}

export type Value =
  | null
  | JsonNull
  | boolean
  | number
  | bigint
  | string
  | Decimal
  | Timestamp
  | Buffer
  | Value[]
  | { [field: string]: Value };

export type Row = { [column: string]: Value };

export type ValueType =
  | "null"
  | "json-null"
  | "boolean"
  | "integer"
  | "float"
  | "decimal"
  | "string"
  | "timestamp"
  | "bytes"
  | "list"
  | "record";

/** A number (integer or float), a bigint or a decimal. */
export type NumericValue = number | bigint | Decimal;

/** A bigint as a number when it is safe, so each integer has one representation. */
export function normalizeInteger(value: bigint): number | bigint {
  return value >= -9007199254740991n && value <= 9007199254740991n ? Number(value) : value;
}

export function isRecord(value: Value | undefined): value is Row {
  return (
    typeof value === "object" &&
    value !== null &&
    !Array.isArray(value) &&
    !(value instanceof Uint8Array) &&
    !(value instanceof Decimal) &&
    !(value instanceof Timestamp) &&
    !(value instanceof JsonNull)
  );
}

export function isNumeric(value: Value): value is NumericValue {
  return typeof value === "number" || typeof value === "bigint" || value instanceof Decimal;
}

export function isIntegerValue(value: Value): value is number | bigint {
  return typeof value === "bigint" || (typeof value === "number" && Number.isSafeInteger(value));
}

/** The name of a value's runtime type, as error messages print it. */
export function typeOf(value: Value): ValueType {
  switch (typeof value) {
    case "boolean":
      return "boolean";
    case "number":
      return Number.isSafeInteger(value) ? "integer" : "float";
    case "bigint":
      return "integer";
    case "string":
      return "string";
    default:
      if (value === null) return "null";
      if (value instanceof JsonNull) return "json-null";
      if (value instanceof Decimal) return "decimal";
      if (value instanceof Timestamp) return "timestamp";
      if (value instanceof Uint8Array) return "bytes";
      if (Array.isArray(value)) return "list";
      return "record";
  }
}

/** A record's own field, or null when it has none (a missing column reads as null). */
export function getField(record: Row, name: string): Value {
  return Object.hasOwn(record, name) ? (record[name] as Value) : null;
}

/** Sets a field as an own data property, even one named `__proto__`. */
export function setField(record: Row, name: string, value: Value): void {
  if (name === "__proto__") {
    Object.defineProperty(record, name, { value, enumerable: true, writable: true, configurable: true });
  } else {
    record[name] = value;
  }
}

/**
 * Strings in Unicode code point order (which is also UTF-8 byte order and PostgreSQL's "C"
 * collation); JavaScript's `<` compares UTF-16 code units, which puts U+FF61 after U+1F600.
 */
export function compareStrings(a: string, b: string): -1 | 0 | 1 {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (D800–DFFF) encode code points above FFFF, so they must sort after E000–FFFF.
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x < y ? -1 : 1;
  }
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
}

/**
 * Exact order of two numeric values of any kinds. NaN equals NaN and sorts above every other
 * number (as in PostgreSQL); -0 equals 0.
 */
export function compareNumeric(a: NumericValue, b: NumericValue): -1 | 0 | 1 {
  if (typeof a === "number" && typeof b === "number") {
    if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) ? (Number.isNaN(b) ? 0 : 1) : -1;
    return a < b ? -1 : a > b ? 1 : 0;
  }
  if (typeof a === "bigint" && typeof b === "bigint") return a < b ? -1 : a > b ? 1 : 0;
  if (a instanceof Decimal && b instanceof Decimal) return a.compare(b);
  if (typeof a === "number" && !Number.isFinite(a)) return Number.isNaN(a) || a > 0 ? 1 : -1;
  if (typeof b === "number" && !Number.isFinite(b)) return Number.isNaN(b) || b > 0 ? -1 : 1;
  const x = toRational(a);
  const y = toRational(b);
  const left = x.numerator * y.denominator;
  const right = y.numerator * x.denominator;
  return left < right ? -1 : left > right ? 1 : 0;
}

/** A finite numeric value as numerator / denominator (denominator > 0), exactly. */
function toRational(value: NumericValue): { numerator: bigint; denominator: bigint } {
  if (typeof value === "bigint") return { numerator: value, denominator: 1n };
  if (value instanceof Decimal) return { numerator: value.unscaled(), denominator: 10n ** BigInt(value.scale) };
  if (Number.isInteger(value)) return { numerator: BigInt(value), denominator: 1n };
  // A double is mantissa × 2^exponent; read both from its bits so the fraction is exact.
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, value);
  const bits = view.getBigUint64(0);
  const negative = bits >> 63n === 1n;
  const biasedExponent = Number((bits >> 52n) & 0x7ffn);
  let mantissa = bits & 0xfffffffffffffn;
  let exponent: number;
  if (biasedExponent === 0) {
    exponent = -1074;
  } else {
    mantissa |= 1n << 52n;
    exponent = biasedExponent - 1075;
  }
  const numerator = negative ? -mantissa : mantissa;
  // Non-integers only reach here, so the exponent is negative.
  return { numerator, denominator: 1n << BigInt(-exponent) };
}

const typeRank: Record<ValueType, number> = {
  null: 0,
  "json-null": 1,
  boolean: 2,
  integer: 3,
  float: 3,
  decimal: 3,
  string: 4,
  timestamp: 5,
  bytes: 6,
  list: 7,
  record: 8,
};

/**
 * A total order over values: null < JSON null < booleans < numbers < strings < timestamps < bytes < lists
 * < records. Within a kind: numbers exactly across integer, float and decimal; strings by code
 * point; timestamps by instant; bytes and lists lexicographically; records by their sorted
 * field names, then by the values in that order. `compareValues(a, b) === 0` exactly when
 * `valuesEqual(a, b)`.
 */
export function compareValues(a: Value, b: Value): -1 | 0 | 1 {
  const ta = typeOf(a);
  const tb = typeOf(b);
  const rank = typeRank[ta] - typeRank[tb];
  if (rank !== 0) return rank < 0 ? -1 : 1;
  switch (ta) {
    case "null":
    case "json-null":
      return 0;
    case "boolean":
      return a === b ? 0 : a === false ? -1 : 1;
    case "integer":
    case "float":
    case "decimal":
      return compareNumeric(a as NumericValue, b as NumericValue);
    case "string":
      return compareStrings(a as string, b as string);
    case "timestamp":
      return (a as Timestamp).compare(b as Timestamp);
    case "bytes": {
      const c = Buffer.compare(a as Uint8Array, b as Uint8Array);
      return c < 0 ? -1 : c > 0 ? 1 : 0;
    }
    case "list":
      return compareLists(a as Value[], b as Value[]);
    case "record":
      return compareRecords(a as Row, b as Row);
    default: {
      const unreachable: never = ta;
      return unreachable;
    }
  }
}

function compareLists(a: readonly Value[], b: readonly Value[]): -1 | 0 | 1 {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const c = compareValues(a[i]!, b[i]!);
    if (c !== 0) return c;
  }
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
}

function compareRecords(a: Row, b: Row): -1 | 0 | 1 {
  const ka = Object.keys(a).sort(compareStrings);
  const kb = Object.keys(b).sort(compareStrings);
  const n = Math.min(ka.length, kb.length);
  for (let i = 0; i < n; i++) {
    const c = compareStrings(ka[i]!, kb[i]!);
    if (c !== 0) return c;
  }
  if (ka.length !== kb.length) return ka.length < kb.length ? -1 : 1;
  for (const k of ka) {
    const c = compareValues(a[k]!, b[k]!);
    if (c !== 0) return c;
  }
  return 0;
}

/**
 * Deep equality, as the language's `==`: JSON null equal only to itself, numbers by value across kinds (`1 == 1.0`, `12.30 ==
 * 12.3`), NaN equal to NaN, timestamps by instant and kind, bytes by content, lists item by
 * item, records by the same field names (in any order) with equal values.
 */
export function valuesEqual(a: Value, b: Value): boolean {
  if (a === b) return true;
  if (a === null || b === null || a instanceof JsonNull || b instanceof JsonNull) return false;
  if (isNumeric(a)) return isNumeric(b) && compareNumeric(a, b) === 0;
  if (typeof a !== "object" || typeof b !== "object") return false;
  if (a instanceof Timestamp) return b instanceof Timestamp && a.equals(b);
  if (a instanceof Uint8Array) return b instanceof Uint8Array && Buffer.compare(a, b) === 0;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!valuesEqual(a[i]!, b[i]!)) return false;
    return true;
  }
  if (!isRecord(a) || !isRecord(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) {
    if (!Object.hasOwn(b, k) || !valuesEqual(a[k]!, b[k]!)) return false;
  }
  return true;
}

/** A constant from a plan or a spec as a value: JSON is a subset of values, numbers included. */
export function jsonToValue(json: JsonValue): Value {
  if (json === null || typeof json !== "object") return json;
  if (Array.isArray(json)) return json.map(jsonToValue);
  const out: Row = {};
  for (const [name, value] of Object.entries(json)) setField(out, name, jsonToValue(value));
  return out;
}
