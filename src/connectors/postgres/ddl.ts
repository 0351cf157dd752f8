/**
 * The target side's tables: what the catalog says about them, and creating the missing ones.
 *
 * The sink writes every value as text and casts it in SQL, so for each column it needs two
 * spellings of its type: the one people read (`character varying(3)`, for messages) and one to
 * cast to. The cast uses the type's internal, schema-qualified name (`"pg_catalog"."varchar"`)
 * on purpose: the SQL spellings carry default modifiers (`::bit` is `bit(1)`, `::char` is
 * `char(1)`) and an explicit cast to a modifier truncates silently, whereas a cast to the bare
 * type followed by the assignment to the column checks the modifier and fails loudly — so
 * 'abcd' into varchar(3) is a rejected event, not a silently shortened value.
 *
 * A created table copies the source table's column types and primary key when the source
 * can describe it (`TableSchema`); otherwise the types are inferred from the values of the
 * events at hand (see `inferType`). A source type the target does not know (an enum, an
 * extension's type) becomes text.
 */
import type { Client } from "pg";
import type { TableSchema } from "../../runtime/contracts.js";
import { Decimal } from "../../model/decimal.js";
import { Timestamp } from "../../model/timestamp.js";
import { isRecord, JsonNull, type Value } from "../../model/value.js";
import { encoderFor, type ColumnEncoding, type ColumnKind, type Encoder } from "./encode.js";

export interface TargetColumn {
  readonly name: string;
  /** `character varying(3)`: for messages. */
  readonly typeName: string;
  /** `"pg_catalog"."varchar"`: to cast a text parameter to. */
  readonly castType: string;
  /** `"pg_catalog"."_varchar"`: the array of it, to read a whole column of a batch as one parameter; null for array columns. */
  readonly arrayType: string | null;
  readonly encoding: ColumnEncoding;
  /** The value's text for this column (null for NULL); throws EncodeError. */
  readonly encode: Encoder;
  readonly notNull: boolean;
}

export interface TargetTable {
  readonly schema: string;
  readonly table: string;
  /** `"public"."orders"` */
  readonly sql: string;
  /** `public.orders` */
  readonly display: string;
  /** Writable columns (generated ones left out), in table order. */
  readonly columns: ReadonlyMap<string, TargetColumn>;
  readonly primaryKey: readonly string[];
  /** A column is GENERATED ALWAYS AS IDENTITY: inserts need OVERRIDING SYSTEM VALUE. */
  readonly identityAlways: boolean;
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** A route target → schema and table: `schema.table`, or `table` in `public`. */
export function parseTarget(target: string): { schema: string; table: string } {
  const dot = target.indexOf(".");
  return dot === -1 ? { schema: "public", table: target } : { schema: target.slice(0, dot), table: target.slice(dot + 1) };
}

const columnsQuery = `
SELECT a.attname AS name,
       format_type(a.atttypid, a.atttypmod) AS type_name,
       quote_ident(tn.nspname) || '.' || quote_ident(t.typname) AS cast_type,
       CASE WHEN t.typcategory <> 'A' AND at.oid IS NOT NULL THEN quote_ident(atn.nspname) || '.' || quote_ident(at.typname) END AS array_type,
       coalesce(bt.typname, t.typname) AS base_name,
       coalesce(bt.typcategory, t.typcategory) AS category,
       et.typname AS element_name,
       et.typdelim AS element_delimiter,
       a.attnotnull AS not_null,
       a.attidentity AS identity
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_namespace tn ON tn.oid = t.typnamespace
LEFT JOIN pg_type at ON at.oid = t.typarray
LEFT JOIN pg_namespace atn ON atn.oid = at.typnamespace
LEFT JOIN pg_type bt ON bt.oid = t.typbasetype AND t.typtype = 'd'
LEFT JOIN pg_type et ON et.oid = coalesce(bt.typelem, t.typelem) AND coalesce(bt.typcategory, t.typcategory) = 'A'
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
ORDER BY a.attnum`;

const primaryKeyQuery = `
SELECT a.attname AS name
FROM pg_index i
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
WHERE i.indrelid = $1 AND i.indisprimary
ORDER BY array_position(i.indkey::int2[], a.attnum)`;

/** The table as the catalog has it, or undefined when there is none. */
export async function loadTable(client: Client, schema: string, table: string): Promise<TargetTable | undefined> {
  const found = await client.query<{ oid: number | null }>(
    `SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`,
    [schema, table],
  );
  const oid = found.rows[0]?.oid;
  if (oid === undefined || oid === null) return undefined;
  const columns = await client.query<{
    name: string;
    type_name: string;
    cast_type: string;
    array_type: string | null;
    base_name: string;
    category: string;
    element_name: string | null;
    element_delimiter: string | null;
    not_null: boolean;
    identity: string;
  }>(columnsQuery, [oid]);
  const keys = await client.query<{ name: string }>(primaryKeyQuery, [oid]);
  const map = new Map<string, TargetColumn>();
  for (const row of columns.rows) {
    const encoding: ColumnEncoding =
      row.category === "A"
        ? {
            kind: "array",
            typeName: row.type_name,
            element: { kind: kindOf(row.element_name ?? "", ""), typeName: row.element_name ?? "unknown" },
            delimiter: row.element_delimiter ?? ",",
          }
        : { kind: kindOf(row.base_name, row.category), typeName: row.type_name };
    map.set(row.name, { name: row.name, typeName: row.type_name, castType: row.cast_type, arrayType: row.array_type, encoding, encode: encoderFor(encoding), notNull: row.not_null });
  }
  return {
    schema,
    table,
    sql: `${quoteIdent(schema)}.${quoteIdent(table)}`,
    display: `${schema}.${table}`,
    columns: map,
    primaryKey: keys.rows.map((r) => r.name),
    identityAlways: columns.rows.some((r) => r.identity === "a"),
  };
}

function kindOf(typeName: string, category: string): ColumnKind {
  switch (typeName) {
    case "bool":
      return "boolean";
    case "int2":
    case "int4":
    case "int8":
    case "numeric":
    case "float4":
    case "float8":
    case "oid":
      return "number";
    case "text":
    case "varchar":
    case "bpchar":
    case "name":
    case "citext":
      return "text";
    case "bytea":
      return "bytea";
    case "json":
    case "jsonb":
      return "json";
    case "date":
      return "date";
    case "time":
    case "timetz":
      return "time";
    case "timestamp":
      return "timestamp";
    case "timestamptz":
      return "timestamptz";
    default:
      return category === "S" ? "text" : "other";
  }
}

// ---------------------------------------------------------------- creating tables

export interface ColumnDefinition {
  readonly name: string;
  readonly type: string;
}

/** `CREATE SCHEMA IF NOT EXISTS` and `CREATE TABLE IF NOT EXISTS`, with the primary key. */
export function createTableStatements(schema: string, table: string, columns: readonly ColumnDefinition[], primaryKey: readonly string[]): string[] {
  const lines = columns.map((c) => `  ${quoteIdent(c.name)} ${c.type}${primaryKey.includes(c.name) ? " NOT NULL" : ""}`);
  if (primaryKey.length > 0) lines.push(`  PRIMARY KEY (${primaryKey.map(quoteIdent).join(", ")})`);
  return [
    `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`,
    `CREATE TABLE IF NOT EXISTS ${quoteIdent(schema)}.${quoteIdent(table)} (\n${lines.join(",\n")}\n)`,
  ];
}

/**
 * Column definitions from the source's description. PostgreSQL types are kept when the target
 * knows them (`to_regtype`), MySQL types are translated; anything else becomes text.
 */
export async function definitionsFromSchema(client: Client, schema: TableSchema): Promise<ColumnDefinition[]> {
  const wanted = schema.columns.map((c) => (schema.dialect === "postgres" ? c.type : mysqlToPostgres(c.type)));
  // One round trip decides every type: known to the target, or text.
  const known = await client.query<{ i: number; ok: boolean }>(
    `SELECT i, to_regtype(t) IS NOT NULL AS ok FROM unnest($1::text[]) WITH ORDINALITY AS u(t, i)`,
    [wanted],
  );
  const ok = new Map(known.rows.map((r) => [Number(r.i) - 1, r.ok]));
  return schema.columns.map((c, i) => {
    const type = wanted[i]!;
    return { name: c.name, type: ok.get(i) === true ? type : type.endsWith("[]") ? "text[]" : "text" };
  });
}

/**
 * MySQL → PostgreSQL column types (docs/guides/mysql-to-postgres.md has the table and the why):
 * every value of the MySQL type fits the PostgreSQL one exactly. Unsigned integers take the next
 * wider type (BIGINT UNSIGNED: numeric(20)); TINYINT(1) stays a number (smallint), since MySQL
 * lets it hold -128..127 and nothing says an application keeps to 0 and 1; CHAR(n) becomes
 * varchar(n), since MySQL drops trailing spaces when it reads a CHAR and a PostgreSQL char(n)
 * would pad them back; BIT(n) is its value as an integer; TIME is an interval (it runs from
 * -838:59:59 to 838:59:59, beyond a time of day); ENUM and SET are text (their labels).
 */
const mysqlTypes: readonly [RegExp, (m: RegExpExecArray) => string][] = [
  [/^(tinyint|smallint)\b.*unsigned/, () => "integer"],
  [/^(tinyint|smallint|year)\b/, () => "smallint"],
  [/^(mediumint|int|integer)\b.*unsigned/, () => "bigint"],
  [/^(mediumint|int|integer)\b/, () => "integer"],
  [/^bigint\b.*unsigned/, () => "numeric(20)"],
  [/^bigint\b/, () => "bigint"],
  [/^(decimal|numeric)\((\d+),(\d+)\)/, (m) => `numeric(${m[2]},${m[3]})`],
  [/^(decimal|numeric)\((\d+)\)/, (m) => `numeric(${m[2]})`],
  [/^(decimal|numeric)\b/, () => "numeric(10)"],
  [/^float\b/, () => "real"],
  [/^(double|real)\b/, () => "double precision"],
  [/^bit\((\d+)\)/, (m) => (Number(m[1]) >= 64 ? "numeric(20)" : "bigint")],
  [/^bit\b/, () => "bigint"],
  [/^(char|varchar)\((\d+)\)/, (m) => `character varying(${m[2]})`],
  [/^(tiny|medium|long)?text\b/, () => "text"],
  [/^(binary|varbinary|(tiny|medium|long)?blob)\b/, () => "bytea"],
  [/^date\b/, () => "date"],
  [/^datetime\((\d)\)/, (m) => `timestamp(${m[1]})`],
  [/^datetime\b/, () => "timestamp(0)"],
  [/^timestamp\((\d)\)/, (m) => `timestamp(${m[1]}) with time zone`],
  [/^timestamp\b/, () => "timestamp(0) with time zone"],
  [/^time\b/, () => "interval"],
  [/^json\b/, () => "jsonb"],
  [/^(enum|set)\b/, () => "text"],
  [/^uuid\b/, () => "uuid"],
];

/** A MySQL column type (`COLUMN_TYPE`: `int(11) unsigned`, `varchar(20)`) in PostgreSQL. */
export function mysqlToPostgres(type: string): string {
  const lower = type.toLowerCase().trim();
  for (const [pattern, make] of mysqlTypes) {
    const m = pattern.exec(lower);
    if (m !== null) return make(m);
  }
  return "text";
}

/**
 * A column type for values seen in events, when the source cannot describe its table. Every
 * value of the batch counts: integers → bigint (numeric beyond 64 bits), with a fraction among
 * them → double precision, with decimals → numeric; timestamps → timestamptz or timestamp;
 * bytes → bytea; records → jsonb; lists of one scalar type → an array of it, other lists →
 * jsonb; anything else mixed → text. The strings "infinity" and "-infinity" are how the
 * PostgreSQL source spells infinite dates, so they do not make a timestamp column text. All
 * null → text.
 */
export function inferType(values: Iterable<Value>): string {
  let type: string | undefined;
  for (const value of values) {
    if (value === null || value === "infinity" || value === "-infinity") continue;
    const next = scalarType(value) ?? "jsonb";
    type = type === undefined ? next : joinTypes(type, next);
  }
  return type ?? "text";
}

const numericRank: Readonly<Record<string, number>> = { bigint: 1, "double precision": 2, numeric: 3 };

function joinTypes(a: string, b: string): string {
  if (a === b) return a;
  const ra = numericRank[a];
  const rb = numericRank[b];
  if (ra !== undefined && rb !== undefined) return ra > rb ? a : b;
  if (a === "jsonb" || b === "jsonb" || a.endsWith("[]") || b.endsWith("[]")) return "jsonb";
  return "text";
}

function scalarType(value: Value): string | undefined {
  switch (typeof value) {
    case "boolean":
      return "boolean";
    case "number":
      return Number.isSafeInteger(value) ? "bigint" : "double precision";
    case "bigint":
      return value >= -(2n ** 63n) && value < 2n ** 63n ? "bigint" : "numeric";
    case "string":
      return "text";
    default:
      if (value === null) return undefined;
      // JSON null is a value only a json column holds.
      if (value instanceof JsonNull) return "jsonb";
      if (value instanceof Decimal) return "numeric";
      if (value instanceof Timestamp) return value.withZone ? "timestamp with time zone" : "timestamp without time zone";
      if (value instanceof Uint8Array) return "bytea";
      if (isRecord(value)) return undefined;
      return listType(value);
  }
}

function listType(items: readonly Value[]): string | undefined {
  let element: string | undefined;
  for (const item of items) {
    if (item === null || item === "infinity" || item === "-infinity") continue;
    // Nested lists become jsonb: a PostgreSQL array must be rectangular, a list need not be.
    if (Array.isArray(item) || isRecord(item)) return undefined;
    const type = scalarType(item)!;
    if (element !== undefined && element !== type) {
      // Numbers of different kinds share the wider type; other mixes keep their kinds in jsonb.
      if (numericRank[element] === undefined || numericRank[type] === undefined) return undefined;
      element = joinTypes(element, type);
    } else {
      element = type;
    }
  }
  return `${element ?? "text"}[]`;
}
