/**
 * PostgreSQL text output → dts values, by type.
 *
 * Both halves of the source read text: pgoutput sends every column as its type's output
 * function printed it, and the snapshot asks node-postgres for the raw text too, so one set of
 * parsers serves both and a value reads the same whether it was copied or streamed. The text is
 * only unambiguous under fixed session settings, which every connection of this source sets at
 * start-up (`SESSION_OPTIONS` in connection.ts): DateStyle ISO, TimeZone UTC, IntervalStyle
 * iso_8601, bytea_output hex, shortest-exact floats, UTF-8.
 *
 *   smallint integer oid          number
 *   bigint                        number while safe, bigint beyond (9223372036854775807n)
 *   numeric                       Decimal with the printed scale (numeric(10,2) 12.30 → scale 2);
 *                                 'NaN', 'Infinity', '-Infinity' → the float NaN / ±Infinity
 *   real double                   number (shortest text that reads back as the same value;
 *                                 NaN and ±Infinity included)
 *   boolean                       boolean
 *   bytea                         Buffer
 *   timestamp                     Timestamp (withZone false), microseconds, BC and year > 9999 included
 *   timestamptz                   Timestamp (withZone true)
 *   date                          Timestamp (withZone false) at midnight
 *   ±infinity (dates, timestamps) the strings "infinity" / "-infinity" (a Timestamp cannot hold them)
 *   json jsonb                    the parsed value (decodeJsonDocument: big integers and decimals
 *                                 stay exact); a JSON `null` document reads as JSON_NULL, a value
 *                                 apart from SQL NULL (src/model/value.ts)
 *   arrays                        lists of the element's values (NULL elements null, nested
 *                                 arrays nested lists; explicit lower bounds `[0:1]=` dropped)
 *   domains                       as their base type
 *   enums, and every other type   the string PostgreSQL printed (text, varchar, char with its
 *   (time, timetz, interval, uuid, padding, uuid, inet, cidr, macaddr, money, xml, ranges,
 *   inet, cidr, ...)              composites, geometric types, ...)
 */
import { DtsError } from "../../diagnostics/errors.js";
import { decodeJsonDocument } from "../../model/json.js";
import { Decimal } from "../../model/decimal.js";
import { daysFromCivil, Timestamp } from "../../model/timestamp.js";
import { setField, type Row, type Value } from "../../model/value.js";

/** A column's text → its value; called only for non-NULL text. */
export type ValueParser = (text: string) => Value;

/** The static types `dts check --live` reasons about. */
export type StaticType = "integer" | "decimal" | "float" | "string" | "boolean" | "timestamp" | "bytes" | "list" | "record" | "any";

/** Built-in type OIDs (pg_type.dat); stable across PostgreSQL versions. */
export const Oid = {
  bool: 16,
  bytea: 17,
  char: 18,
  name: 19,
  int8: 20,
  int2: 21,
  int4: 23,
  text: 25,
  oid: 26,
  xid: 28,
  cid: 29,
  json: 114,
  xml: 142,
  float4: 700,
  float8: 701,
  money: 790,
  macaddr: 829,
  inet: 869,
  cidr: 650,
  macaddr8: 774,
  bpchar: 1042,
  varchar: 1043,
  date: 1082,
  time: 1083,
  timestamp: 1114,
  timestamptz: 1184,
  interval: 1186,
  timetz: 1266,
  numeric: 1700,
  uuid: 2950,
  jsonb: 3802,
} as const;

const parseString: ValueParser = (text) => text;

const parseSmallInteger: ValueParser = (text) => Number(text);

export const parseBigInteger: ValueParser = (text) => {
  // Up to 15 digits (plus a sign) is always within 2^53; only longer text needs a BigInt.
  if (text.length <= 15) return Number(text);
  const value = BigInt(text);
  return value >= -9007199254740991n && value <= 9007199254740991n ? Number(value) : value;
};

const parseNumeric: ValueParser = (text) => {
  switch (text) {
    case "NaN":
      return NaN;
    case "Infinity":
      return Infinity;
    case "-Infinity":
      return -Infinity;
    default:
      return new Decimal(text);
  }
};

// Number() reads "NaN", "Infinity" and "-Infinity" as PostgreSQL prints them.
const parseFloat: ValueParser = (text) => Number(text);

const parseBoolean: ValueParser = (text) => text === "t";

export const parseBytea: ValueParser = (text) => {
  if (text.startsWith("\\x")) return Buffer.from(text.slice(2), "hex");
  return parseByteaEscape(text);
};

/**
 * A value from its text or, for a large one, its text's UTF-8 bytes (pgoutput.ts's
 * TupleValue), which it may overwrite: a bytea's hex is decoded in place, into the first half
 * of the same memory, so that a 50 MB value costs no memory beyond the 100 MB of its message
 * (which the value then keeps alive); anything else is made text.
 */
export function parseValue(parser: ValueParser, text: string | Buffer): Value {
  if (typeof text === "string") return parser(text);
  if (parser === parseBytea && text[0] === 0x5c && text[1] === 0x78) return hexBytes(text, 2, text.length, text, 0);
  return parser(text.toString("utf8"));
}

/**
 * Hex digits are turned into bytes this many at a time: each slice is a short-lived string
 * small enough for V8's young generation, so no string of all of them, nor a pile of large
 * garbage strings, is ever made.
 */
const HEX_SLICE = 1 << 16;

/**
 * The bytes the hex digits in `source[start, end)` spell, written into `into` at `at` (a new
 * buffer by default; `source` itself at `start - 2` or before is safe too, since each slice
 * is read before it is written over).
 */
export function hexBytes(source: Buffer, start: number, end: number, into?: Buffer, at = 0): Buffer {
  const digits = end - start;
  if (digits % 2 !== 0) throw new Error(`an odd number of hex digits (${digits})`);
  const out = into ?? Buffer.allocUnsafe(digits / 2);
  for (let from = start; from < end; from += HEX_SLICE) {
    const stop = Math.min(end, from + HEX_SLICE);
    const written = out.write(source.toString("latin1", from, stop), at + (from - start) / 2, "hex");
    if (written !== (stop - from) / 2) throw new Error(`not a hex digit at offset ${from - start + 2 * written} of ${digits}`);
  }
  return into === undefined ? out : out.subarray(at, at + digits / 2);
}

/** The old `escape` output (bytea_output = escape): octal `\nnn`, `\\`, other bytes as is. */
function parseByteaEscape(text: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5c /* \ */) {
      if (text[i + 1] === "\\") {
        bytes.push(0x5c);
        i++;
      } else {
        bytes.push(parseInt(text.slice(i + 1, i + 4), 8));
        i += 3;
      }
    } else {
      bytes.push(c);
    }
  }
  return Buffer.from(bytes);
}

const MICROS_PER_SECOND = 1_000_000n;
const MICROS_PER_DAY = 86_400n * MICROS_PER_SECOND;

// ISO DateStyle output: `2024-03-01 10:00:00.123456+00`, years of 4+ digits, ` BC` at the end;
// a zone offset may carry minutes and seconds (historical zones), though UTC prints `+00`.
const dateTimePattern =
  /^(\d{4,})-(\d\d)-(\d\d)(?: (\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?)?(?:([+-])(\d\d)(?::(\d\d)(?::(\d\d))?)?)?( BC)?$/;

function parseDateTime(text: string, withZone: boolean, fastPath = true): Value {
  const fast = fastPath ? parseCommonDateTime(text, withZone) : undefined;
  if (fast !== undefined) return fast;
  if (text === "infinity" || text === "-infinity") return text;
  const m = dateTimePattern.exec(text);
  if (m === null) throw new SyntaxError(`not a PostgreSQL ${withZone ? "timestamptz" : "timestamp"}: ${JSON.stringify(text)}`);
  let year = Number(m[1]);
  if (m[12] !== undefined) year = 1 - year; // 1 BC is year 0, astronomically
  const days = daysFromCivil(year, Number(m[2]), Number(m[3]));
  let seconds = 0;
  if (m[4] !== undefined) seconds = Number(m[4]) * 3600 + Number(m[5]) * 60 + Number(m[6]);
  if (m[8] !== undefined) {
    const offset = Number(m[9]) * 3600 + Number(m[10] ?? 0) * 60 + Number(m[11] ?? 0);
    seconds -= m[8] === "-" ? -offset : offset;
  }
  const fraction = m[7] === undefined ? 0n : BigInt(m[7].padEnd(6, "0"));
  return new Timestamp(BigInt(days) * MICROS_PER_DAY + BigInt(seconds) * MICROS_PER_SECOND + fraction, withZone);
}

const ZERO = 48;

function digits(text: string, start: number, count: number): number {
  let value = 0;
  for (let i = start; i < start + count; i++) {
    const d = text.charCodeAt(i) - ZERO;
    if (d < 0 || d > 9) return -1;
    value = value * 10 + d;
  }
  return value;
}

/**
 * The shape nearly every value has — `YYYY-MM-DD[ HH:MM:SS[.f{1,6}]][+00]`, a four-digit AD
 * year, UTC — read without a regular expression and in double arithmetic, which is exact
 * below 2^53 µs (the years ~1685 to ~2255 around 1970 are far inside it). Anything else
 * (BC, five-digit years, other offsets, infinity) is undefined and takes the general path.
 */
function parseCommonDateTime(text: string, withZone: boolean): Timestamp | undefined {
  const length = text.length;
  if (length < 10 || text.charCodeAt(4) !== 0x2d || text.charCodeAt(7) !== 0x2d) return undefined;
  const year = digits(text, 0, 4);
  const month = digits(text, 5, 2);
  const day = digits(text, 8, 2);
  if (year < 0 || month < 1 || day < 1) return undefined;
  let seconds = 0;
  let micros = 0;
  let i = 10;
  if (length > 10) {
    if (length < 19 || text.charCodeAt(10) !== 0x20 || text.charCodeAt(13) !== 0x3a || text.charCodeAt(16) !== 0x3a) return undefined;
    const hour = digits(text, 11, 2);
    const minute = digits(text, 14, 2);
    const second = digits(text, 17, 2);
    if (hour < 0 || minute < 0 || second < 0) return undefined;
    seconds = hour * 3600 + minute * 60 + second;
    i = 19;
    if (i < length && text.charCodeAt(i) === 0x2e /* . */) {
      let scale = 100000;
      i++;
      for (; i < length; i++) {
        const d = text.charCodeAt(i) - ZERO;
        if (d < 0 || d > 9) break;
        if (scale < 1) return undefined;
        micros += d * scale;
        scale /= 10;
      }
    }
    if (i < length) {
      // Only a "+00" zone here; anything else is the general path's.
      if (length !== i + 3 || text.charCodeAt(i) !== 0x2b || text.charCodeAt(i + 1) !== ZERO || text.charCodeAt(i + 2) !== ZERO) return undefined;
    }
  }
  const total = daysFromCivil(year, month, day) * 86_400_000_000 + seconds * 1_000_000 + micros;
  if (!Number.isSafeInteger(total)) return undefined;
  return new Timestamp(BigInt(total), withZone);
}

/** A timestamp, timestamptz or date as PostgreSQL prints it (ISO DateStyle, UTC); ±infinity stay strings. */
export function parsePgDateTime(text: string, withZone: boolean): Value {
  return parseDateTime(text, withZone);
}

/** The general (regular-expression) path alone, to test the fast path against. */
export function parsePgDateTimeSlowly(text: string, withZone: boolean): Value {
  return parseDateTime(text, withZone, false);
}

const parseTimestamp: ValueParser = (text) => parseDateTime(text, false);
const parseTimestampTz: ValueParser = (text) => parseDateTime(text, true);
const parseDate: ValueParser = (text) => parseDateTime(text, false);

const parseJson: ValueParser = (text) => decodeJsonDocument(text);

interface ScalarType {
  readonly parse: ValueParser;
  readonly staticType: StaticType;
}

const scalarTypes = new Map<number, ScalarType>([
  [Oid.bool, { parse: parseBoolean, staticType: "boolean" }],
  [Oid.bytea, { parse: parseBytea, staticType: "bytes" }],
  [Oid.int2, { parse: parseSmallInteger, staticType: "integer" }],
  [Oid.int4, { parse: parseSmallInteger, staticType: "integer" }],
  [Oid.oid, { parse: parseSmallInteger, staticType: "integer" }],
  [Oid.xid, { parse: parseSmallInteger, staticType: "integer" }],
  [Oid.cid, { parse: parseSmallInteger, staticType: "integer" }],
  [Oid.int8, { parse: parseBigInteger, staticType: "integer" }],
  [Oid.numeric, { parse: parseNumeric, staticType: "decimal" }],
  [Oid.float4, { parse: parseFloat, staticType: "float" }],
  [Oid.float8, { parse: parseFloat, staticType: "float" }],
  [Oid.date, { parse: parseDate, staticType: "timestamp" }],
  [Oid.timestamp, { parse: parseTimestamp, staticType: "timestamp" }],
  [Oid.timestamptz, { parse: parseTimestampTz, staticType: "timestamp" }],
  [Oid.json, { parse: parseJson, staticType: "any" }],
  [Oid.jsonb, { parse: parseJson, staticType: "any" }],
]);

const stringType: ScalarType = { parse: parseString, staticType: "string" };

/**
 * Parses a PostgreSQL array literal: `{1,2,NULL}`, `{"a b","x\"y",NULL,"NULL"}` (quoted
 * `"NULL"` is the string), `{{1,2},{3,4}}`, `[0:1]={1,2}` (bounds dropped). `delimiter` is the
 * element type's (`,` for all but `box`).
 */
export function parseArray(text: string, delimiter: string, element: ValueParser): Value[] {
  let i = 0;
  if (text.charCodeAt(0) === 0x5b /* [ */) {
    i = text.indexOf("=");
    if (i < 0) throw new SyntaxError(`not a PostgreSQL array: ${JSON.stringify(text.slice(0, 64))}`);
    i++;
  }
  const delimiterCode = delimiter.charCodeAt(0);
  const fail = (): never => {
    throw new SyntaxError(`not a PostgreSQL array: ${JSON.stringify(text.slice(0, 64))}`);
  };
  const skipSpace = (): void => {
    while (i < text.length && (text[i] === " " || text[i] === "\t" || text[i] === "\n" || text[i] === "\r")) i++;
  };

  const parseLevel = (): Value[] => {
    if (text.charCodeAt(i) !== 0x7b /* { */) fail();
    i++;
    const items: Value[] = [];
    skipSpace();
    if (text.charCodeAt(i) === 0x7d /* } */) {
      i++;
      return items;
    }
    for (;;) {
      skipSpace();
      const c = text.charCodeAt(i);
      if (c === 0x7b /* { */) {
        items.push(parseLevel());
      } else if (c === 0x22 /* " */) {
        i++;
        let value = "";
        let start = i;
        for (;;) {
          if (i >= text.length) fail();
          const d = text.charCodeAt(i);
          if (d === 0x22) break;
          if (d === 0x5c /* \ */) {
            value += text.slice(start, i);
            i++;
            start = i;
          }
          i++;
        }
        value += text.slice(start, i);
        i++;
        items.push(element(value));
      } else {
        const start = i;
        let value = "";
        let escaped = false;
        while (i < text.length) {
          const d = text.charCodeAt(i);
          if (d === delimiterCode || d === 0x7d) break;
          if (d === 0x5c) {
            escaped = true;
            i++;
          }
          i++;
        }
        value = text.slice(start, i).trim();
        if (escaped) value = value.replace(/\\(.)/g, "$1");
        items.push(!escaped && value.length === 4 && value.toUpperCase() === "NULL" ? null : element(value));
      }
      skipSpace();
      const next = text.charCodeAt(i);
      i++;
      if (next === 0x7d) return items;
      if (next !== delimiterCode) fail();
    }
  };

  const result = parseLevel();
  skipSpace();
  if (i !== text.length) fail();
  return result;
}

// ---------------------------------------------------------------- the type registry

/** A row of pg_type, as much as decoding needs. */
export interface PgTypeRow {
  readonly oid: number;
  /** `format_type(oid, NULL)`: `integer`, `character varying`, `public.mood`, `integer[]`. */
  readonly name: string;
  /** b base, c composite, d domain, e enum, p pseudo, r range, m multirange. */
  readonly typtype: string;
  /** `A` for arrays. */
  readonly category: string;
  readonly elementOid: number;
  readonly baseOid: number;
  readonly delimiter: string;
}

export interface ColumnType {
  readonly parse: ValueParser;
  readonly staticType: StaticType;
}

/**
 * The types of the captured columns, by OID. Built-in scalars are known up front; arrays,
 * domains, enums and extension types come from pg_type (`load`), because their OIDs differ
 * from database to database. A type never loaded reads as its text.
 */
export class TypeRegistry {
  private readonly rows = new Map<number, PgTypeRow>();
  private readonly resolved = new Map<number, ColumnType>();

  has(oid: number): boolean {
    return scalarTypes.has(oid) || this.rows.has(oid);
  }

  /** The OIDs among `oids` that `load` has not seen yet (built-in scalars never need it). */
  missing(oids: Iterable<number>): number[] {
    const missing = new Set<number>();
    for (const oid of oids) if (!this.has(oid)) missing.add(oid);
    return [...missing];
  }

  /** Fetches pg_type rows for `oids` and, transitively, their element and base types. */
  async load(query: (sql: string, params: unknown[]) => Promise<{ rows: Record<string, unknown>[] }>, oids: Iterable<number>): Promise<void> {
    let pending = this.missing(oids);
    for (let depth = 0; pending.length > 0 && depth < 8; depth++) {
      const result = await query(
        `SELECT oid::int4 AS oid, format_type(oid, NULL) AS name, typtype::text AS typtype, typcategory::text AS category,
                typelem::int4 AS element, typbasetype::int4 AS base, typdelim::text AS delimiter
           FROM pg_catalog.pg_type WHERE oid = ANY($1::oid[])`,
        [pending],
      );
      const next: number[] = [];
      for (const row of result.rows) {
        const typeRow: PgTypeRow = {
          oid: Number(row.oid),
          name: String(row.name),
          typtype: String(row.typtype),
          category: String(row.category),
          elementOid: Number(row.element),
          baseOid: Number(row.base),
          delimiter: String(row.delimiter),
        };
        this.rows.set(typeRow.oid, typeRow);
        for (const related of [typeRow.elementOid, typeRow.baseOid]) if (related !== 0) next.push(related);
      }
      // An OID pg_type does not know (dropped meanwhile) must not be asked for forever.
      for (const oid of pending) if (!this.rows.has(oid)) this.rows.set(oid, unknownType(oid));
      pending = this.missing(next);
    }
    this.resolved.clear();
  }

  /** How to read a column of this type. */
  column(oid: number): ColumnType {
    let type = this.resolved.get(oid);
    if (type === undefined) {
      type = this.resolve(oid, 0);
      this.resolved.set(oid, type);
    }
    return type;
  }

  private resolve(oid: number, depth: number): ColumnType {
    const scalar = scalarTypes.get(oid);
    if (scalar !== undefined) return scalar;
    const row = this.rows.get(oid);
    if (row === undefined || depth > 8) return stringType;
    if (row.category === "A" && row.elementOid !== 0) {
      const element = this.resolve(row.elementOid, depth + 1);
      const delimiter = this.rows.get(row.elementOid)?.delimiter ?? ",";
      const parseElement = element.parse;
      return { parse: (text) => parseArray(text, delimiter, parseElement), staticType: "list" };
    }
    if (row.typtype === "d" && row.baseOid !== 0) return this.resolve(row.baseOid, depth + 1);
    return stringType;
  }
}

function unknownType(oid: number): PgTypeRow {
  return { oid, name: `oid ${oid}`, typtype: "b", category: "U", elementOid: 0, baseOid: 0, delimiter: "," };
}

/** Raised when a column's text does not parse as its type: names the table, column and text. */
export class ValueDecodeError extends DtsError {
  constructor(table: string, column: string, text: string, cause: unknown) {
    super(
      "DTS7107",
      `cannot read column ${column} of ${table} from ${JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}…` : text)}: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
    this.name = "ValueDecodeError";
  }
}

/** How one table's columns are read: names and parsers in column order. */
export interface RowShape {
  /** `schema.table`, for messages. */
  readonly table: string;
  readonly names: readonly string[];
  readonly parsers: readonly ValueParser[];
  /** A column is named `__proto__`: rows must be built with defineProperty. */
  readonly unsafeNames: boolean;
}

export function rowShape(table: string, names: readonly string[], parsers: readonly ValueParser[]): RowShape {
  return { table, names, parsers, unsafeNames: names.includes("__proto__") };
}

/** A row from the columns' text (null for SQL NULL). */
export function decodeRow(shape: RowShape, texts: readonly (string | null)[]): Row {
  const row: Row = {};
  const { names, parsers } = shape;
  let i = 0;
  try {
    for (; i < names.length; i++) {
      const text = texts[i];
      const value = text === null || text === undefined ? null : parsers[i]!(text);
      if (shape.unsafeNames) setField(row, names[i]!, value);
      else row[names[i]!] = value;
    }
  } catch (error) {
    throw new ValueDecodeError(shape.table, names[i]!, String(texts[i]), error);
  }
  return row;
}
