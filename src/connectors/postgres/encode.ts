/**
 * Values → PostgreSQL's text input format, per target column.
 *
 * The sink sends every value as text and lets the server's own input functions parse it (in
 * a cast to the column's type, or in COPY), because text is the one format every type has and
 * it keeps exact values exact: a `Decimal` prints every digit, a `bigint` is never a double, a
 * `Timestamp` keeps its microseconds. What differs per column is only how a JavaScript value
 * is spelled: a `Buffer` is `\x…` hex for bytea, a list is an array literal for an array
 * column but JSON for a json column, a timestamp before year 1 needs PostgreSQL's `BC`.
 *
 * A value the column can never hold whatever its text (a record into an integer column) is
 * refused here with an `EncodeError`, before anything is sent; a value whose text the server
 * refuses ('abc' into integer) is found by the server and reported by the sink.
 */
import { DtsError } from "../../diagnostics/errors.js";
import { encodeJson } from "../../model/json.js";
import { Decimal } from "../../model/decimal.js";
import { Timestamp } from "../../model/timestamp.js";
import { typeOf, type Row, type Value } from "../../model/value.js";

/** How a column's values are spelled; derived from the catalog (see ddl.ts). */
export type ColumnKind =
  | "boolean"
  | "number"
  | "text"
  | "bytea"
  | "json"
  | "date"
  | "time"
  | "timestamp"
  | "timestamptz"
  | "array"
  | "other";

export interface ColumnEncoding {
  readonly kind: ColumnKind;
  /** For arrays: the elements' encoding and delimiter (`,` for all built-in types but box). */
  readonly element?: ColumnEncoding;
  readonly delimiter?: string;
  /** The type as people read it, for messages: `integer`, `character varying(3)`. */
  readonly typeName: string;
}

export class EncodeError extends DtsError {
  constructor(message: string, code: "DTS7203" | "DTS7204" = "DTS7203") {
    super(code, message);
    this.name = "EncodeError";
  }
}

export type Encoder = (value: Value) => string | null;

/**
 * Column kinds whose text never holds a backslash, tab or line break, so COPY needs no escaping
 * for them: their encoders print numbers and times themselves, and refuse a string that holds
 * one of those characters (no such string is a valid number or time anyway).
 */
export const COPY_SAFE_KINDS: ReadonlySet<ColumnKind> = new Set(["boolean", "number", "date", "time", "timestamp", "timestamptz"]);

const copySpecial = /[\\\n\r\t]/;

/** The text a column of this encoding takes for `value` (null for SQL NULL); throws EncodeError. */
export function encoderFor(encoding: ColumnEncoding): Encoder {
  const encode = baseEncoder(encoding);
  if (!COPY_SAFE_KINDS.has(encoding.kind)) return encode;
  return (value) => {
    if (typeof value === "string" && copySpecial.test(value)) {
      throw new EncodeError(`${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value)} is not a valid ${encoding.typeName}`);
    }
    return encode(value);
  };
}

function baseEncoder(encoding: ColumnEncoding): Encoder {
  switch (encoding.kind) {
    case "array": {
      const element = baseEncoder(encoding.element ?? { kind: "other", typeName: "unknown" });
      const delimiter = encoding.delimiter ?? ",";
      return (value) => {
        if (value === null) return null;
        if (Array.isArray(value)) return arrayLiteral(value, element, delimiter);
        if (typeof value === "string") return value;
        throw new EncodeError(`a ${typeOf(value)} cannot go into a column of type ${encoding.typeName}`);
      };
    }
    case "json":
      // The value is the document (the PostgreSQL source parses json columns, decode.ts), so a
      // string is a JSON string, not JSON text. JSON_NULL is the JSON text null, null SQL NULL.
      return (value) => (value === null ? null : encodeJson(value));
    case "bytea":
      return (value) => {
        if (value === null) return null;
        if (value instanceof Uint8Array) return `\\x${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("hex")}`;
        if (typeof value === "string") return value;
        throw new EncodeError(`a ${typeOf(value)} cannot go into a column of type ${encoding.typeName}`);
      };
    case "date":
      return (value) => {
        if (!(value instanceof Timestamp)) return scalarText(value, encoding);
        const parts = dateTimeParts(value);
        return parts.bc ? `${parts.date} BC` : parts.date;
      };
    case "time":
      return (value) => (value instanceof Timestamp ? dateTimeParts(value).time : scalarText(value, encoding));
    default:
      return (value) => scalarText(value, encoding);
  }
}

function scalarText(value: Value, encoding: ColumnEncoding): string | null {
  switch (typeof value) {
    case "string":
      return value;
    case "number":
      return Number.isInteger(value) && !Object.is(value, -0) ? String(value) : numberText(value);
    case "bigint":
      return value.toString();
    case "boolean":
      return value ? "true" : "false";
    default:
      if (value === null) return null;
      if (value instanceof Decimal) return decimalText(value);
      if (value instanceof Timestamp) return timestampText(value);
      if (value instanceof Uint8Array) {
        throw new EncodeError(`bytes cannot go into a column of type ${encoding.typeName} (only bytea)`);
      }
      // Lists and records have a text only as JSON; a text column takes it, others refuse it.
      if (encoding.kind === "text" || encoding.kind === "other") return encodeJson(value);
      throw new EncodeError(`a ${typeOf(value)} cannot go into a column of type ${encoding.typeName}`);
  }
}

/** Shortest text that reads back as the same double; NaN and the infinities as PostgreSQL spells them. */
export function numberText(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "Infinity";
  if (value === -Infinity) return "-Infinity";
  if (Object.is(value, -0)) return "-0";
  return String(value);
}

/**
 * A decimal in plain notation with exactly its scale's digits, as `Decimal.toString` prints it,
 * but read straight off decimal.js's coefficient words (`d`: base 1e7, `e`: the exponent of the
 * leading digit), because `toFixed` costs microseconds a value and a snapshot has millions.
 */
export function decimalText(decimal: Decimal): string {
  const { value, scale } = decimal;
  const words = value.d;
  if (words === undefined || words === null || words.length === 0) return decimal.toString();
  let digits = String(words[0]);
  for (let i = 1; i < words.length; i++) {
    const word = String(words[i]);
    digits += "0000000".slice(word.length) + word;
  }
  let end = digits.length;
  while (end > 1 && digits.charCodeAt(end - 1) === 48) end--;
  if (end !== digits.length) digits = digits.slice(0, end);
  if (digits === "0") return scale > 0 ? `0.${"0".repeat(scale)}` : "0";
  const e = value.e;
  let whole: string;
  let fraction: string;
  if (e < 0) {
    whole = "0";
    fraction = "0".repeat(-e - 1) + digits;
  } else if (digits.length <= e + 1) {
    whole = digits + "0".repeat(e + 1 - digits.length);
    fraction = "";
  } else {
    whole = digits.slice(0, e + 1);
    fraction = digits.slice(e + 1);
  }
  if (fraction.length > scale) return decimal.toString();
  const text = scale > 0 ? `${whole}.${fraction}${"0".repeat(scale - fraction.length)}` : whole;
  return value.s < 0 ? `-${text}` : text;
}

/** A timestamp as PostgreSQL reads it: `2024-03-01 10:00:00.123456`, `+00` on an instant, ` BC` before year 1. */
export function timestampText(value: Timestamp): string {
  const parts = dateTimeParts(value);
  return `${parts.date} ${parts.time}${value.withZone ? "+00" : ""}${parts.bc ? " BC" : ""}`;
}

interface DateTimeParts {
  /** `YYYY-MM-DD`, the year as PostgreSQL counts it (1 BC is 0001 with `bc`). */
  readonly date: string;
  /** `HH:MM:SS.ffffff` */
  readonly time: string;
  readonly bc: boolean;
}

const MICROS_PER_DAY = 86_400_000_000;
/** Microsecond counts whose days fall in years 1686..2255: exact as doubles, the fast path. */
const FAST_LIMIT = 9_000_000_000_000_000n;
const dateCache = new Map<number, string>();

function dateTimeParts(value: Timestamp): DateTimeParts {
  const micros = value.epochMicros;
  if (micros > -FAST_LIMIT && micros < FAST_LIMIT) {
    const n = Number(micros);
    const day = Math.floor(n / MICROS_PER_DAY);
    let date = dateCache.get(day);
    if (date === undefined) {
      if (dateCache.size > 4096) dateCache.clear();
      date = new Date(day * 86_400_000).toISOString().slice(0, 10);
      dateCache.set(day, date);
    }
    return { date, time: timeText(n - day * MICROS_PER_DAY), bc: false };
  }
  // Far dates: through the model's exact ISO text. ISO counts years astronomically (0 is 1 BC).
  const iso = value.toISOString();
  const dash = iso.indexOf("-", 1);
  const year = Number(iso.slice(0, dash));
  const bc = year <= 0;
  const shown = String(bc ? 1 - year : year).padStart(4, "0");
  return { date: `${shown}${iso.slice(dash, dash + 6)}`, time: iso.slice(dash + 7, dash + 22), bc };
}

function timeText(micros: number): string {
  const seconds = Math.floor(micros / 1_000_000);
  const fraction = micros - seconds * 1_000_000;
  const h = Math.floor(seconds / 3600);
  const m = Math.floor(seconds / 60) % 60;
  const s = seconds % 60;
  return `${h < 10 ? "0" : ""}${h}:${m < 10 ? "0" : ""}${m}:${s < 10 ? "0" : ""}${s}.${String(fraction).padStart(6, "0")}`;
}

/** A PostgreSQL array literal; every element quoted so that no text needs thinking about. */
export function arrayLiteral(items: readonly Value[], element: Encoder, delimiter = ","): string {
  let out = "{";
  for (let i = 0; i < items.length; i++) {
    if (i > 0) out += delimiter;
    const item = items[i]!;
    if (Array.isArray(item)) {
      out += arrayLiteral(item, element, delimiter);
      continue;
    }
    const text = element(item);
    out += text === null ? "NULL" : quoteArrayElement(text);
  }
  return out + "}";
}

const needsEscape = /[\\"]/;

export function quoteArrayElement(text: string): string {
  return needsEscape.test(text) ? `"${text.replace(/[\\"]/g, "\\$&")}"` : `"${text}"`;
}

/** An array literal of texts (the UNNEST parameters): `{"a","b",NULL}`. */
export function textArrayLiteral(texts: readonly (string | null)[]): string {
  let out = "{";
  for (let i = 0; i < texts.length; i++) {
    if (i > 0) out += ",";
    const text = texts[i]!;
    out += text === null ? "NULL" : quoteArrayElement(text);
  }
  return out + "}";
}

const copySpecials = /[\\\n\r\t]/g;
const copyEscapes: Record<string, string> = { "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/** One field of COPY's text format: `\N` for NULL, backslash, tab and line breaks escaped. */
export function copyField(text: string | null): string {
  if (text === null) return "\\N";
  return copySpecial.test(text) ? text.replace(copySpecials, (c) => copyEscapes[c]!) : text;
}

/** Bytes this many or more go into COPY as slices of hex, never as one string (see copyHexSlices). */
export const LARGE_BYTES = 1 << 20;

/** Bytes turned into hex at a time: 64 kB strings, which V8's young generation clears cheaply. */
const HEX_SLICE_BYTES = 1 << 15;

const NO_BYTES = Buffer.alloc(0);

/**
 * The columns of `row` holding large bytes for a bytea column, each as the slices of its COPY
 * text (`\\x` and hex digits, which COPY never escapes): a 50 MB value is then sent as 64 kB
 * strings one after the other, instead of a 100 MB string that COPY escaping and the socket
 * would each copy again. Undefined when there is none (the usual case, and cheap to find).
 */
export function largeCopyValues(names: readonly string[], encoders: readonly Encoder[], row: Row): Map<number, Iterable<string>> | undefined {
  let found: Map<number, Iterable<string>> | undefined;
  for (let i = 0; i < names.length; i++) {
    const value = row[names[i]!];
    if (!(value instanceof Uint8Array) || value.byteLength < LARGE_BYTES) continue;
    if (!spellsBytesAsHex(encoders[i]!)) continue;
    (found ??= new Map()).set(i, hexSlices(value));
  }
  return found;
}

/** A bytea column's encoder spells no bytes as `\x`; any other refuses bytes, and says so when the row is encoded. */
function spellsBytesAsHex(encoder: Encoder): boolean {
  try {
    return encoder(NO_BYTES) === "\\x";
  } catch {
    return false;
  }
}

function* hexSlices(value: Uint8Array): Generator<string> {
  yield "\\\\x";
  const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  for (let at = 0; at < bytes.length; at += HEX_SLICE_BYTES) yield bytes.toString("hex", at, Math.min(bytes.length, at + HEX_SLICE_BYTES));
}
