/**
 * Column types for the mysql sink: a source's declared types read into the neutral model
 * (src/model/column-type.ts), the MySQL column each neutral type makes (`create_tables`, a
 * column a schema change adds), and each target column's encoder of dts values into the text
 * or bytes the server is sent as a statement parameter.
 *
 * The mapping (the connector's page prints MAPPING_DOC, kept beside the code it describes):
 *
 *   boolean                      BOOLEAN (TINYINT(1)), written 1 / 0
 *   smallint, integer, bigint    SMALLINT, INT, BIGINT (MySQL's own widths and UNSIGNED kept)
 *   numeric(p,s)                 DECIMAL(p,s); numeric without a precision (or p > 65, s > 30)
 *                                DECIMAL(65,30): a value with more digits is refused, never rounded
 *   real, double precision       FLOAT, DOUBLE; NaN and ±Infinity are refused (MySQL has none)
 *   varchar(n), char(n)          VARCHAR(n) (a char(n) keeps the padding its source printed)
 *   text and unknown types       LONGTEXT (VARCHAR(768) in a primary key: MySQL indexes at most
 *                                3072 bytes); enums, domains, inet, money ... travel as text
 *   bytea                        LONGBLOB (VARBINARY(3072) in a primary key)
 *   date                         DATE; years outside 1..9999 are refused
 *   time                         TIME(6); timetz and interval as VARCHAR text (MySQL has neither)
 *   timestamp                    DATETIME(6)
 *   timestamptz                  DATETIME(6) holding the UTC time (MySQL's TIMESTAMP ends in 2038)
 *   json, jsonb                  JSON (MariaDB: LONGTEXT checked by JSON_VALID), the document as
 *                                dts prints it (encodeJson: big integers and decimals exact)
 *   uuid                         CHAR(36)
 *   arrays                       JSON lists (nested arrays nested lists)
 *
 * Text columns are utf8mb4 with a binary, no-pad collation, so keys that PostgreSQL tells apart
 * (`a` and `A`, `a` and `a `) stay apart. Values go as parameters of prepared statements, as
 * text the server parses in the column's type under a strict sql_mode, so a value a column
 * cannot hold is an error (refused: the dead-letter sink gets it with the server's reason),
 * never a silent truncation. The few losses strict mode lets through are caught here first: a
 * decimal with more fractional digits than the column's scale (MySQL rounds it with a note)
 * and dates before year 1 or after 9999.
 */
import type { ColumnType } from "../../model/column-type.js";
import { Decimal } from "../../model/decimal.js";
import { encodeJson } from "../../model/json.js";
import { Timestamp } from "../../model/timestamp.js";
import { isRecord, type Value } from "../../model/value.js";

/** A value a column cannot take, found before the statement is sent. */
export class EncodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EncodeError";
  }
}

export const MAPPING_DOC = `| Source type (PostgreSQL) | MySQL / MariaDB column | Notes |
|---|---|---|
| \`boolean\` | \`BOOLEAN\` (\`TINYINT(1)\`) | written 1 / 0 |
| \`smallint\`, \`integer\`, \`bigint\` | \`SMALLINT\`, \`INT\`, \`BIGINT\` | a MySQL source's widths and \`UNSIGNED\` kept |
| \`numeric(p,s)\` | \`DECIMAL(p,s)\` | \`numeric\` without precision, or beyond 65 digits or scale 30: \`DECIMAL(65,30)\`; a value with more digits is refused, never rounded; \`NaN\`, \`Infinity\` refused |
| \`real\`, \`double precision\` | \`FLOAT\`, \`DOUBLE\` | \`NaN\`, \`±Infinity\` refused |
| \`varchar(n)\`, \`char(n)\` | \`VARCHAR(n)\` | a \`char(n)\` value keeps the padding its source printed |
| \`text\`, enums, domains, \`inet\`, \`money\`, other types | \`LONGTEXT\` | the text the source printed; \`VARCHAR(768)\` in a primary key (MySQL indexes 3072 bytes) |
| \`bytea\` | \`LONGBLOB\` | \`VARBINARY(3072)\` in a primary key |
| \`date\` | \`DATE\` | years outside 1..9999 (BC, \`infinity\`) refused |
| \`time\` | \`TIME(6)\` | |
| \`timetz\`, \`interval\` | \`VARCHAR(64)\` | as the source printed them (ISO 8601 for intervals) |
| \`timestamp\` | \`DATETIME(6)\` | |
| \`timestamptz\` | \`DATETIME(6)\` | the UTC time (TIMESTAMP ends in 2038) |
| \`json\`, \`jsonb\` | \`JSON\` | MariaDB: \`LONGTEXT\` checked by \`JSON_VALID\`; big integers and decimals exact |
| \`uuid\` | \`CHAR(36)\` | |
| arrays | \`JSON\` | lists, nested arrays as nested lists |

Text columns are \`utf8mb4\` with a binary no-pad collation (\`utf8mb4_nopad_bin\` on MariaDB,
\`utf8mb4_0900_bin\` on MySQL 8), so keys that differ in case or trailing spaces stay apart.`;

// ---------------------------------------------------------------- declared types → model

/** A declared type, as its dialect prints it, in the neutral model; `other` when there is no kind for it. */
export function columnTypeOf(dialect: "postgres" | "mysql", text: string): ColumnType {
  return dialect === "postgres" ? postgresType(text.trim()) : mysqlType(text.trim().toLowerCase());
}

function postgresType(type: string): ColumnType {
  if (type.endsWith("[]")) return { kind: "array", element: postgresType(type.slice(0, -2)) };
  let m = /^numeric\((\d+),(-?\d+)\)$/.exec(type);
  if (m !== null) return { kind: "decimal", precision: Number(m[1]), scale: Number(m[2]) };
  m = /^(character varying|character|varchar|char|bpchar)(?:\((\d+)\))?$/.exec(type);
  if (m !== null) {
    const fixed = m[1] === "character" || m[1] === "char" || m[1] === "bpchar";
    const length = m[2] !== undefined ? Number(m[2]) : fixed ? 1 : undefined;
    return { kind: "text", ...(length !== undefined ? { length } : {}), ...(fixed ? { fixed } : {}) };
  }
  m = /^(time|timestamp)(?:\((\d)\))? with(out)? time zone$/.exec(type) ?? /^(time|timestamp)(?:\((\d)\))?$/.exec(type);
  if (m !== null) {
    const zone = type.includes(" with time zone");
    return { kind: m[1] as "time" | "timestamp", zone, ...(m[2] !== undefined ? { precision: Number(m[2]) } : {}) };
  }
  if (/^interval\b/.test(type)) return { kind: "interval" };
  m = /^bit( varying)?(?:\((\d+)\))?$/.exec(type);
  if (m !== null) return { kind: "bit", length: Number(m[2] ?? 1), ...(m[1] !== undefined ? { varying: true } : {}) };
  switch (type) {
    case "smallint":
      return { kind: "integer", bits: 16, signed: true };
    case "integer":
      return { kind: "integer", bits: 32, signed: true };
    case "bigint":
      return { kind: "integer", bits: 64, signed: true };
    case "oid":
      return { kind: "integer", bits: 32, signed: false };
    case "numeric":
      return { kind: "decimal" };
    case "real":
      return { kind: "float", bits: 32 };
    case "double precision":
      return { kind: "float", bits: 64 };
    case "boolean":
      return { kind: "boolean" };
    case "text":
    case "name":
    case '"char"':
      return { kind: "text" };
    case "bytea":
      return { kind: "binary" };
    case "date":
      return { kind: "date" };
    case "json":
      return { kind: "json" };
    case "jsonb":
      return { kind: "json", binary: true };
    case "uuid":
      return { kind: "uuid" };
    default:
      return { kind: "other", name: type };
  }
}

/** MySQL's COLUMN_TYPE (`int(11) unsigned`, `decimal(10,2)`, `varchar(20)`, `enum('a','b')`), lower case. */
function mysqlType(type: string): ColumnType {
  const unsigned = /\bunsigned\b/.test(type);
  const base = type.replace(/\s+(unsigned|signed|zerofill)\b/g, "").trim();
  const m = /^(\w+)(?:\((.*)\))?$/s.exec(base);
  if (m === null) return { kind: "other", name: type };
  const name = m[1]!;
  const args = m[2];
  const n = args !== undefined && /^\d+$/.test(args) ? Number(args) : undefined;
  const integer = (bits: 8 | 16 | 24 | 32 | 64): ColumnType => ({ kind: "integer", bits, signed: !unsigned });
  switch (name) {
    case "tinyint":
      return n === 1 && !unsigned ? { kind: "boolean" } : integer(8);
    case "bool":
    case "boolean":
      return { kind: "boolean" };
    case "smallint":
      return integer(16);
    case "mediumint":
      return integer(24);
    case "int":
    case "integer":
      return integer(32);
    case "bigint":
      return integer(64);
    case "decimal":
    case "numeric": {
      const [p, s] = (args ?? "10,0").split(",").map(Number);
      return { kind: "decimal", precision: p!, scale: s ?? 0 };
    }
    case "float":
      return { kind: "float", bits: 32 };
    case "double":
    case "real":
      return { kind: "float", bits: 64 };
    case "char":
      return { kind: "text", length: n ?? 1, fixed: true };
    case "varchar":
      return { kind: "text", ...(n !== undefined ? { length: n } : {}) };
    case "tinytext":
      return { kind: "text", length: 255 };
    case "text":
      return { kind: "text", length: 65535 };
    case "mediumtext":
    case "longtext":
      return { kind: "text" };
    case "binary":
      return { kind: "binary", length: n ?? 1, fixed: true };
    case "varbinary":
      return { kind: "binary", ...(n !== undefined ? { length: n } : {}) };
    case "tinyblob":
      return { kind: "binary", length: 255 };
    case "blob":
      return { kind: "binary", length: 65535 };
    case "mediumblob":
    case "longblob":
      return { kind: "binary" };
    case "date":
      return { kind: "date" };
    case "time":
      return { kind: "time", zone: false, precision: n ?? 0 };
    case "datetime":
      return { kind: "timestamp", zone: false, precision: n ?? 0 };
    case "timestamp":
      return { kind: "timestamp", zone: true, precision: n ?? 0 };
    case "year":
      return { kind: "year" };
    case "json":
      return { kind: "json" };
    case "bit":
      return { kind: "bit", length: n ?? 1 };
    case "enum":
    case "set":
      return { kind: name, values: quotedList(args ?? "") };
    default:
      return { kind: "other", name: type };
  }
}

/** `'a','b''c'` → ["a", "b'c"]. */
function quotedList(text: string): string[] {
  const values: string[] = [];
  const pattern = /'((?:[^']|'')*)'/g;
  for (let m = pattern.exec(text); m !== null; m = pattern.exec(text)) values.push(m[1]!.replaceAll("''", "'").replaceAll("\\\\", "\\"));
  return values;
}

// ---------------------------------------------------------------- model → MySQL

/** The longest VARCHAR a utf8mb4 primary-key column may be (3072 bytes / 4). */
export const KEY_TEXT_LENGTH = 768;

/** The MySQL column type a neutral type makes; `inKey`: the column is part of the primary key (indexable). */
export function mysqlDeclaration(type: ColumnType, inKey: boolean): string {
  switch (type.kind) {
    case "boolean":
      return "BOOLEAN";
    case "integer": {
      const name = { 8: "TINYINT", 16: "SMALLINT", 24: "MEDIUMINT", 32: "INT", 64: "BIGINT" }[type.bits];
      return type.signed ? name : `${name} UNSIGNED`;
    }
    case "decimal": {
      const { precision, scale = 0 } = type;
      if (precision === undefined || precision > 65 || scale > 30 || scale < 0) return "DECIMAL(65,30)";
      return `DECIMAL(${precision},${scale})`;
    }
    case "float":
      return type.bits === 32 ? "FLOAT" : "DOUBLE";
    case "text":
      if (type.length !== undefined && type.length <= (inKey ? KEY_TEXT_LENGTH : 16383)) return `VARCHAR(${type.length})`;
      return inKey ? `VARCHAR(${KEY_TEXT_LENGTH})` : "LONGTEXT";
    case "binary":
      if (type.fixed === true && type.length !== undefined && type.length <= 255) return `BINARY(${type.length})`;
      if (type.length !== undefined && type.length <= (inKey ? 3072 : 65535)) return `VARBINARY(${type.length})`;
      return inKey ? "VARBINARY(3072)" : "LONGBLOB";
    case "date":
      return "DATE";
    case "time":
      return type.zone ? "VARCHAR(64)" : `TIME(${type.precision ?? 6})`;
    case "timestamp":
      return `DATETIME(${type.precision ?? 6})`;
    case "interval":
      return "VARCHAR(64)";
    case "json":
    case "array":
      return "JSON";
    case "uuid":
      return "CHAR(36)";
    case "enum":
    case "set":
      return `${type.kind.toUpperCase()}(${type.values.map((v) => `'${v.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`).join(",")})`;
    case "bit":
      return type.length <= 64 && type.varying !== true ? `BIT(${type.length})` : "LONGTEXT";
    case "year":
      return "YEAR";
    case "other":
      return inKey ? `VARCHAR(${KEY_TEXT_LENGTH})` : "LONGTEXT";
  }
}

/**
 * A neutral type for values seen in events, when the source cannot describe its table: integers
 * BIGINT (DECIMAL(65,0) beyond 64 bits), with fractions DOUBLE, decimals DECIMAL(65,30),
 * timestamps DATETIME(6), bytes, records and lists JSON, anything else or all null text. The
 * strings "infinity" and "-infinity" (PostgreSQL's infinite dates) do not make a column text.
 */
export function inferColumnType(values: Iterable<Value>): ColumnType {
  let kind: "integer" | "float" | "decimal" | "boolean" | "timestamp" | "binary" | "json" | "text" | undefined;
  let zone = false;
  let big = false;
  for (const value of values) {
    if (value === null || value === "infinity" || value === "-infinity") continue;
    let next: NonNullable<typeof kind>;
    if (typeof value === "boolean") next = "boolean";
    else if (typeof value === "number") next = Number.isSafeInteger(value) ? "integer" : "float";
    else if (typeof value === "bigint") {
      next = "integer";
      if (value < -(2n ** 63n) || value >= 2n ** 63n) big = true;
    } else if (typeof value === "string") next = "text";
    else if (value instanceof Decimal) next = "decimal";
    else if (value instanceof Timestamp) {
      next = "timestamp";
      zone ||= value.withZone;
    } else if (value instanceof Uint8Array) next = "binary";
    else next = "json";
    if (kind === undefined || kind === next) kind = next;
    else if ((kind === "integer" || kind === "float" || kind === "decimal") && (next === "integer" || next === "float" || next === "decimal")) {
      kind = kind === "decimal" || next === "decimal" ? "decimal" : "float";
    } else kind = kind === "json" || next === "json" ? "json" : "text";
  }
  switch (kind) {
    case "integer":
      return big ? { kind: "decimal", precision: 65, scale: 0 } : { kind: "integer", bits: 64, signed: true };
    case "float":
      return { kind: "float", bits: 64 };
    case "decimal":
      return { kind: "decimal" };
    case "boolean":
      return { kind: "boolean" };
    case "timestamp":
      return { kind: "timestamp", zone, precision: 6 };
    case "binary":
      return { kind: "binary" };
    case "json":
      return { kind: "json" };
    default:
      return { kind: "text" };
  }
}

// ---------------------------------------------------------------- values → parameters

/** What a target column is, as the sink reads it from information_schema. */
export interface ColumnShape {
  readonly name: string;
  /** information_schema DATA_TYPE, lower case: `int`, `decimal`, `varchar`, `longtext`. */
  readonly dataType: string;
  /** information_schema COLUMN_TYPE: `int(11) unsigned`, `decimal(10,2)`. */
  readonly columnType: string;
  /** A JSON column (MySQL's JSON, or MariaDB's LONGTEXT checked by JSON_VALID). */
  readonly json: boolean;
}

export type Parameter = string | Buffer | null;
export type Encoder = (value: Value) => Parameter;

/** The encoder of a column: a value into the parameter the server parses as the column's type. */
export function encoderFor(column: ColumnShape): Encoder {
  if (column.json) return (value) => (value === null ? null : encodeJson(value));
  const type = columnTypeOf("mysql", column.columnType);
  switch (type.kind) {
    case "boolean":
    case "integer":
    case "year":
      return (value) => integerText(value, column);
    case "decimal":
      return (value) => decimalText(value, column, type.scale ?? 0);
    case "float":
      return (value) => floatText(value, column);
    case "date":
      return (value) => dateText(value, column, true);
    case "timestamp":
      return (value) => dateText(value, column, false);
    case "binary":
      return (value) => (value === null ? null : value instanceof Uint8Array ? Buffer.from(value.buffer, value.byteOffset, value.byteLength) : Buffer.from(textOf(value), "utf8"));
    case "bit":
      return (value) => bitValue(value, column, type.length);
    default:
      return (value) => (value === null ? null : textOf(value));
  }
}

/** Any value as text: what a text column of another type's values holds. */
export function textOf(value: Value): string {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "bigint" || typeof value === "boolean") return String(value);
  if (value instanceof Decimal || value instanceof Timestamp) return value.toString();
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("hex");
  return encodeJson(value as Value);
}

function describe(value: Value): string {
  const text = value instanceof Uint8Array ? `${value.length} bytes` : typeof value === "string" ? JSON.stringify(value) : textOf(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function refuse(column: ColumnShape, value: Value, why: string): never {
  throw new EncodeError(`column ${column.name} (${column.columnType}) cannot hold ${describe(value)}: ${why}`);
}

function integerText(value: Value, column: ColumnShape): Parameter {
  if (value === null) return null;
  if (typeof value === "boolean") return value ? "1" : "0";
  if (typeof value === "bigint" || (typeof value === "number" && Number.isInteger(value))) return BigInt(value).toString();
  if (value instanceof Decimal && value.isInteger()) return value.toBigInt().toString();
  if (typeof value === "string" && /^-?\d+$/.test(value)) return value;
  return refuse(column, value, "not an integer");
}

function decimalText(value: Value, column: ColumnShape, scale: number): Parameter {
  if (value === null) return null;
  if (typeof value === "bigint" || (typeof value === "number" && Number.isInteger(value))) return BigInt(value).toString();
  let decimal: Decimal;
  if (value instanceof Decimal) decimal = value;
  else if (typeof value === "number") {
    if (!Number.isFinite(value)) return refuse(column, value, "MySQL's DECIMAL has no NaN or infinity");
    decimal = new Decimal(value);
  } else if (typeof value === "string" && /^-?\d+(\.\d+)?$/.test(value)) decimal = new Decimal(value);
  else return refuse(column, value, "not a number");
  // MySQL rounds extra fractional digits with only a note: refused here instead.
  if (decimal.scale > scale && !decimal.round(scale, "down").equals(decimal)) {
    return refuse(column, value, `it has more than ${scale} digits after the point, and MySQL would round it`);
  }
  return decimal.toString();
}

function floatText(value: Value, column: ColumnShape): Parameter {
  if (value === null) return null;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) return refuse(column, value, "MySQL's FLOAT and DOUBLE have no NaN or infinity");
    return Object.is(value, -0) ? "-0" : String(value);
  }
  if (typeof value === "bigint" || value instanceof Decimal) return value.toString();
  return refuse(column, value, "not a number");
}

/** A Timestamp as MySQL's `YYYY-MM-DD HH:MM:SS.ffffff` (an instant as its UTC time); other values as they are (the server judges them). */
function dateText(value: Value, column: ColumnShape, dateOnly: boolean): Parameter {
  if (value === null) return null;
  if (value instanceof Timestamp) {
    const iso = value.toISOString();
    if (!/^\d{4}-/.test(iso) || iso.startsWith("0000")) return refuse(column, value, "MySQL dates hold the years 1 to 9999 only");
    if (dateOnly) {
      if (!iso.includes("T00:00:00.000000")) return refuse(column, value, "a DATE holds no time of day");
      return iso.slice(0, 10);
    }
    return `${iso.slice(0, 10)} ${iso.slice(11, 26)}`;
  }
  if (typeof value === "string") return value;
  return refuse(column, value, "not a date or time");
}

function bitValue(value: Value, column: ColumnShape, length: number): Parameter {
  if (value === null) return null;
  let bits: bigint;
  if (typeof value === "string" && /^[01]+$/.test(value)) bits = BigInt(`0b${value}`);
  else if (typeof value === "bigint" || (typeof value === "number" && Number.isInteger(value) && value >= 0)) bits = BigInt(value);
  else if (value instanceof Uint8Array) return Buffer.from(value);
  else return refuse(column, value, "not a bit string");
  const bytes = Math.max(1, Math.ceil(length / 8));
  const out = Buffer.alloc(bytes);
  for (let i = bytes - 1; i >= 0; i--) {
    out[i] = Number(bits & 0xffn);
    bits >>= 8n;
  }
  return out;
}

/** Whether a value is a record or list (kept as JSON when a column must hold it as text). */
export function isDocument(value: Value): boolean {
  return Array.isArray(value) || isRecord(value);
}
