/**
 * `dts verify` on PostgreSQL: a reader of a source's captured tables, or of a sink's copies,
 * computing counts, checksums and bucket sums inside the database (src/connectors/compare.ts
 * drives it; src/model/canonical.ts defines the row texts and hashes).
 *
 * Each column is printed in one of three ways, chosen per column pair:
 *
 * **Native**, when the other side is PostgreSQL too. Columns of one base type (domains resolved
 * to theirs) are compared *exactly*, by the type's own text: 12.30 and 12.3 in a numeric(10,2)
 * and a numeric differ, because a numeric's text carries its scale and an unconstrained numeric
 * keeps whatever scale it was given — a copy that lost it is not an exact copy. Where the two
 * types print one value differently, both are brought to a common form, and the report says so:
 *
 *   numeric(p,s) and numeric(q,t), s ≠ t   by value (trim_scale): each column prints every
 *                                           value at its own scale
 *   integers of two widths                 as numeric (exact)
 *   integers or numeric mixed              by value (trim_scale)
 *   real and double precision              at single precision (a real copied into a double)
 *   numbers and floats mixed               as doubles
 *   date, timestamp, timestamptz mixed     as UTC wall-clock times (the session is UTC)
 *   json and jsonb (and json alone)        as jsonb: dts carries a JSON value, not its spacing
 *                                           or key order, so a json copy never keeps them
 *   char(n) and text, varchar or char(m)   without trailing spaces (the padding)
 *   anything else of two types             as the text of each type's output function
 *
 * **Canonical**, when the other side is another engine: the canonical text of the agreed kind
 * (canonical.ts), printed in SQL here — trim_scale for decimals, to_char(…, 'EEEE') for
 * floats, to_char in UTC for times, encode(…, 'hex') for bytes, the minified jsonb text for
 * json, and for arrays the JSON the sinks store (`encodeJson`): numbers, strings, timestamps
 * as ISO strings, bytes as {"$bytes": base64}. Arrays of floats have no exact JSON text in
 * SQL (JavaScript and PostgreSQL print a double's digits in different layouts): such a column
 * is not compared, and the report names it. Multi-dimensional arrays of numeric, times or bytes
 * print flattened, and so compare as different.
 *
 * **Text**, for a column whose copy is a string column: the output function's text.
 *
 * Every value is printed only when it is not NULL (format('%s', NULL) is '', which would make
 * NULL and the empty string alike). Lengths are `octet_length`, so the database encoding must
 * be UTF-8 for the row texts to match another engine's (PostgreSQL to PostgreSQL, any
 * encoding, as long as both are the same).
 */
import type pg from "pg";
import type {
  Checksum,
  ColumnForm,
  ConnectorContext,
  NativeComparison,
  RowQuery,
  SinkTable,
  VerifyColumn,
  VerifySink,
  VerifySinkReader,
  VerifySource,
  VerifySourceReader,
  VerifyTable,
} from "../capabilities.js";
import type { CanonicalKind } from "../../model/canonical.js";
import { ConnectorError } from "../../runtime/contracts.js";
import { connect, connectorError, serverLabel } from "./client.js";
import { serverAddress } from "./connection.js";
import { Oid, TypeRegistry } from "./decode.js";
import { parseTarget, quoteIdent } from "./ddl.js";
import { readSourceSettings } from "./source-settings.js";
import { resolveTables } from "./tables.js";

/** A PostgreSQL column, with what printing its values needs. */
interface PgColumn extends VerifyColumn {
  /** The base type (a domain's), with its modifiers: `numeric(10,2)`, `integer[]`. */
  readonly base: string;
  readonly baseOid: number;
  /** An array's element type (its OID and pg_type category), or null. */
  readonly elementOid: number | null;
  readonly elementCategory: string | null;
}

function isPgColumn(column: VerifyColumn): column is PgColumn {
  return "baseOid" in column && "base" in column;
}

export const verifySource: VerifySource = async (context) => {
  const settings = readSourceSettings(context);
  const reader = await PostgresReader.open(settings.url, context);
  return Object.assign(reader, {
    async capturedTables(): Promise<readonly string[]> {
      const tables = await reader.run("listing the captured tables", () =>
        resolveTables((sql, params) => reader.client.query(sql, params), settings.tables, serverAddress(settings.url), new TypeRegistry()),
      );
      return tables.map((table) => table.qualifiedName);
    },
  }) satisfies VerifySourceReader;
};

export const verifySink: VerifySink = async (context) => {
  const url = context.options.url;
  if (typeof url !== "string" || url === "") throw new ConnectorError(`postgres sink ${context.name}: option url is required`, false);
  const reader = await PostgresReader.open(url, context);
  return Object.assign(reader, {
    /** The sink writes a target's rows into the table of that name (`schema.table`, or `table` in public). */
    locate(target: string): SinkTable {
      const { schema, table } = parseTarget(target);
      return { table: `${schema}.${table}` };
    },
  }) satisfies VerifySinkReader;
};

class PostgresReader {
  readonly engine = "postgres";
  readonly where: string;

  private constructor(
    readonly client: pg.Client,
    url: string,
  ) {
    this.where = serverLabel(url);
  }

  static async open(url: string, context: ConnectorContext): Promise<PostgresReader> {
    return new PostgresReader(await connect(url, context.tool), url);
  }

  /** A query, its errors naming the server and what was being done. */
  async run<T>(doing: string, body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (error) {
      throw connectorError(error, this.where, doing);
    }
  }

  async table(name: string): Promise<VerifyTable | undefined> {
    const { schema, table } = parseTarget(name);
    const relation = `${quoteIdent(schema)}.${quoteIdent(table)}`;
    return this.run(`describing ${schema}.${table}`, async () => {
      const found = await this.client.query<{ oid: number | null; identity: string }>(
        `SELECT c.oid::int8 AS oid, c.relreplident::text AS identity FROM pg_catalog.pg_class c
          WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'p')`,
        [relation],
      );
      const row = found.rows[0];
      if (row === undefined || row.oid === null) return undefined;
      const columns = await this.client.query<{ name: string; type: string; base: string; base_oid: number; element_oid: number | null; element_category: string | null; category: string }>(
        COLUMNS_QUERY,
        [row.oid],
      );
      const keys = await this.client.query<{ is_primary: boolean; columns: string[] }>(KEYS_QUERY, [row.oid]);
      const described: PgColumn[] = columns.rows.map((column) => ({
        name: column.name,
        type: column.type,
        base: column.base,
        baseOid: column.base_oid,
        elementOid: column.category === "A" ? column.element_oid : null,
        elementCategory: column.category === "A" ? column.element_category : null,
        kind: kindOf(column.base_oid, column.category),
      }));
      const primary = keys.rows.find((key) => key.is_primary)?.columns;
      const identity = keys.rows.find((key) => !key.is_primary)?.columns;
      const key = primary ?? (row.identity === "i" ? identity : undefined) ?? (row.identity === "f" ? described.map((column) => column.name) : []);
      const byName = new Map(described.map((column) => [column.name, column]));
      return { name: `${schema}.${table}`, columns: described, key, column: (columnName: string) => byName.get(columnName) };
    });
  }

  native(column: VerifyColumn, other: VerifyColumn): NativeComparison {
    if (!isPgColumn(column) || !isPgColumn(other)) return { unverifiable: "not two PostgreSQL columns" };
    const rule = nativeRule(column, other);
    return "unverifiable" in rule ? rule : { note: rule.note };
  }

  cannotPrint(column: VerifyColumn, kind: CanonicalKind): string | undefined {
    if (!isPgColumn(column) || kind !== "json" || column.elementOid === null) return undefined;
    if (column.elementOid === Oid.float4 || column.elementOid === Oid.float8) {
      return `${column.type} values have no exact JSON text in SQL (their digits print in another layout than the sink's)`;
    }
    return undefined;
  }

  async summary(query: RowQuery): Promise<Checksum> {
    const { rows } = await this.run(`checksumming ${query.table.name}`, () =>
      this.client.query<{ n: string; sum: string }>(
        `SELECT count(*)::text AS n, (coalesce(sum(h::numeric), 0) + ${TWO_TO_64} * count(*) FILTER (WHERE h < 0))::text AS sum
           FROM (SELECT ${hash64(rowSql(query.columns))} AS h FROM ${relationOf(query.table)}) AS hashed`,
      ),
    );
    return { rows: BigInt(rows[0]!.n), sum: rows[0]!.sum };
  }

  async buckets(query: RowQuery, buckets: number): Promise<ReadonlyMap<number, Checksum>> {
    const { rows } = await this.run(`checksumming ${query.table.name} by key`, () =>
      this.client.query<{ b: number; n: string; sum: string }>(
        `SELECT b, count(*)::text AS n, (sum(h::numeric) + ${TWO_TO_64} * count(*) FILTER (WHERE h < 0))::text AS sum
           FROM (SELECT ${bucketSql(rowSql(query.key), buckets)} AS b, ${hash64(rowSql(query.columns))} AS h FROM ${relationOf(query.table)}) AS hashed
          GROUP BY b`,
      ),
    );
    return new Map(rows.map((row) => [Number(row.b), { rows: BigInt(row.n), sum: row.sum }]));
  }

  async rows(query: RowQuery, buckets: number, chosen: readonly number[]): Promise<ReadonlyMap<string, string>> {
    if (chosen.length === 0) return new Map();
    const key = rowSql(query.key);
    const { rows } = await this.run(`reading rows of ${query.table.name}`, () =>
      this.client.query<{ k: string; h: string }>(
        `SELECT ${key} AS k, md5(${rowSql(query.columns)}) AS h FROM ${relationOf(query.table)} WHERE ${bucketSql(key, buckets)} = ANY($1::int4[])`,
        [chosen],
      ),
    );
    return new Map(rows.map((row) => [row.k, row.h]));
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => {});
  }
}

/**
 * Columns with their domains resolved: a domain's base type takes the domain's modifier when
 * it has one (`CREATE DOMAIN amount AS numeric(10,2)`), else the column's.
 */
const COLUMNS_QUERY = `
WITH RECURSIVE chain (attnum, oid, typmod, depth) AS (
  SELECT a.attnum, a.atttypid, a.atttypmod, 0 FROM pg_catalog.pg_attribute a
   WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
  UNION ALL
  SELECT c.attnum, t.typbasetype, CASE WHEN t.typtypmod <> -1 THEN t.typtypmod ELSE c.typmod END, c.depth + 1
    FROM chain c JOIN pg_catalog.pg_type t ON t.oid = c.oid
   WHERE t.typtype = 'd' AND c.depth < 8
), base AS (
  SELECT DISTINCT ON (attnum) attnum, oid, typmod FROM chain ORDER BY attnum, depth DESC
)
SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
       format_type(b.oid, b.typmod) AS base, b.oid::int4 AS base_oid, t.typcategory::text AS category,
       t.typelem::int4 AS element_oid, e.typcategory::text AS element_category
  FROM base b
  JOIN pg_catalog.pg_attribute a ON a.attrelid = $1 AND a.attnum = b.attnum
  JOIN pg_catalog.pg_type t ON t.oid = b.oid
  LEFT JOIN pg_catalog.pg_type e ON e.oid = t.typelem
 ORDER BY a.attnum`;

const KEYS_QUERY = `
SELECT i.indisprimary AS is_primary,
       ARRAY(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, position)
               JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
              ORDER BY k.position)::text[] AS columns
  FROM pg_catalog.pg_index i
 WHERE i.indrelid = $1 AND (i.indisprimary OR i.indisreplident)`;

function kindOf(baseOid: number, category: string): CanonicalKind | undefined {
  if (category === "A") return "json";
  switch (baseOid) {
    case Oid.int2:
    case Oid.int4:
    case Oid.int8:
    case Oid.oid:
      return "integer";
    case Oid.numeric:
      return "decimal";
    case Oid.float4:
      return "float32";
    case Oid.float8:
      return "float64";
    case Oid.bool:
      return "boolean";
    case Oid.bytea:
      return "bytes";
    case Oid.timestamptz:
      return "instant";
    case Oid.timestamp:
    case Oid.date:
      return "local-time";
    case Oid.json:
    case Oid.jsonb:
      return "json";
    default:
      // The source reads every other type as the text its output function prints.
      return "string";
  }
}

// ---------------------------------------------------------------- SQL

const TWO_TO_64 = "18446744073709551616";
const hash64 = (row: string): string => `('x' || substr(md5(${row}), 1, 16))::bit(64)::int8`;
const bucketSql = (key: string, buckets: number): string => `(('x' || substr(md5(${key}), 1, 8))::bit(32)::int4 & ${buckets - 1})`;

function relationOf(table: VerifyTable): string {
  const { schema, table: name } = parseTarget(table.name);
  return `${quoteIdent(schema)}.${quoteIdent(name)}`;
}

/** The row text (canonical.ts): each value as `<bytes>:<text>`, or `-` for NULL. */
function rowSql(columns: readonly ColumnForm[]): string {
  if (columns.length === 0) return "''";
  return columns
    .map((column) => {
      const value = valueSql(column);
      return `coalesce(octet_length(${value})::text || ':' || ${value}, '-')`;
    })
    .join(" || ");
}

function valueSql({ column, form }: ColumnForm): string {
  if (!isPgColumn(column)) throw new Error(`postgres verify: ${column.name} is not a PostgreSQL column`);
  const c = quoteIdent(column.name);
  let text: string;
  switch (form.kind) {
    case "native": {
      if (!isPgColumn(form.other)) throw new Error(`postgres verify: ${form.other.name} is not a PostgreSQL column`);
      const rule = nativeRule(column, form.other);
      if ("unverifiable" in rule) throw new Error(`postgres verify: ${column.name}: ${rule.unverifiable}`);
      text = rule.render(c, column);
      break;
    }
    case "canonical":
      text = canonicalSql(c, column, form.as);
      break;
    case "text":
      // #>> gives SQL NULL for a JSON null document, which a text column holds as the text null.
      text = column.kind === "json" && column.elementOid === null ? `coalesce(${c}::jsonb #>> '{}', 'null')` : `format('%s', ${c})`;
      break;
  }
  return `(CASE WHEN ${c} IS NULL THEN NULL ELSE ${text} END)`;
}

// ---------------------------------------------------------------- native: PostgreSQL on both sides

interface NativeRule {
  readonly note: string | undefined;
  render(c: string, column: PgColumn): string;
}

const INTEGERS: ReadonlySet<string> = new Set(["smallint", "integer", "bigint", "oid"]);
const FLOATS: ReadonlySet<string> = new Set(["real", "double precision"]);
const TIMES: ReadonlySet<string> = new Set(["date", "timestamp without time zone", "timestamp with time zone"]);
const TEXTS: ReadonlySet<string> = new Set(["text", "character varying", "character", "name"]);
const JSONS: ReadonlySet<string> = new Set(["json", "jsonb"]);

const BY_VALUE = "by value: trailing zeros of the fraction are not compared";
const AS_JSONB = "as jsonb: dts keeps a JSON value, not its spacing or key order";

function nativeRule(a: PgColumn, b: PgColumn): NativeRule | { readonly unverifiable: string } {
  const x = baseName(a.base);
  const y = baseName(b.base);
  const exact: NativeRule = { note: undefined, render: (c) => `${c}::text` };
  const rule = (note: string | undefined, render: (c: string, column: PgColumn) => string): NativeRule => ({ note, render });
  const both = (set: ReadonlySet<string>): boolean => set.has(x) && set.has(y);
  const isNumber = (name: string): boolean => INTEGERS.has(name) || name === "numeric";
  if (x === y) {
    if (x === "numeric") {
      const s = numericScale(a.base);
      const t = numericScale(b.base);
      return s !== undefined && t !== undefined && s !== t ? rule(BY_VALUE, (c) => `trim_scale(${c})::text`) : exact;
    }
    if (x === "character" && a.base !== b.base) return rule("without trailing spaces (the char(n) padding)", (c) => `rtrim(${c}::text, ' ')`);
    if (x === "json") return rule(AS_JSONB, (c) => `${c}::jsonb::text`);
    if (x === "json[]") return rule(AS_JSONB, (c) => jsonbArray(c));
    return exact;
  }
  if (both(INTEGERS)) return rule(undefined, (c) => `${c}::numeric::text`);
  if (isNumber(x) && isNumber(y)) return rule(BY_VALUE, (c) => `trim_scale(${c}::numeric)::text`);
  if ((FLOATS.has(x) || isNumber(x)) && (FLOATS.has(y) || isNumber(y))) {
    return x === "real" || y === "real" ? rule("at single precision", (c) => `${c}::real::text`) : rule("as doubles: digits beyond a double's are not compared", (c) => `${c}::float8::text`);
  }
  if (both(TIMES)) return rule("as UTC wall-clock times: the time zone is not compared", (c) => `${c}::timestamp::text`);
  if (TIMES.has(x.replace(/\[\]$/, "")) && TIMES.has(y.replace(/\[\]$/, "")) && x.endsWith("[]") && y.endsWith("[]")) {
    return rule("as UTC wall-clock times: the time zone is not compared", (c) => `${c}::timestamp[]::text`);
  }
  if (both(JSONS)) return rule(AS_JSONB, (c) => `${c}::jsonb::text`);
  if ((x === "json[]" || x === "jsonb[]") && (y === "json[]" || y === "jsonb[]")) return rule(AS_JSONB, (c) => jsonbArray(c));
  if (both(TEXTS)) {
    return x === "character" || y === "character" ? rule("without trailing spaces (the char(n) padding)", (c) => `rtrim(${c}::text, ' ')`) : exact;
  }
  return rule(`as text: ${a.base} and ${b.base} printed by their output functions`, (c) => `format('%s', ${c})`);
}

function jsonbArray(c: string): string {
  return `coalesce((SELECT array_agg(e::jsonb) FROM unnest(${c}) AS u(e))::text, '{}')`;
}

function baseName(type: string): string {
  return type.replace(/\(.*?\)/g, "").replace(/\s+/g, " ").trim();
}

/** numeric(p,s) → s, numeric(p) → 0, numeric → undefined (any scale). */
function numericScale(type: string): number | undefined {
  const match = /^numeric\((\d+)(?:,(\d+))?\)/.exec(type);
  return match === null ? undefined : Number(match[2] ?? 0);
}

// ---------------------------------------------------------------- canonical: another engine on the other side

const TIME_FORMAT = `'YYYY-MM-DD"T"HH24:MI:SS.US'`;
const INSTANT_FORMAT = `'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'`;

/** Whitespace outside strings removed: the minified text of a JSON document. */
const minify = (json: string): string => `regexp_replace(${json}, '("(?:[^"\\\\]|\\\\.)*")|\\s+', '\\1', 'g')`;

function canonicalSql(c: string, column: PgColumn, kind: CanonicalKind): string {
  switch (kind) {
    case "boolean":
      return `${c}::text`;
    case "integer":
      return `${c}::numeric::text`;
    case "decimal":
      return `trim_scale(${c}::numeric)::text`;
    case "float64":
      return floatSql(`${c}::float8`, "9.9999999999999999EEEE");
    case "float32":
      return floatSql(`${c}::float4::float8`, "9.99999999EEEE");
    case "string":
      return `format('%s', ${c})`;
    case "bytes":
      return `encode(${c}, 'hex')`;
    case "instant":
      return `to_char(${c} AT TIME ZONE 'UTC', ${INSTANT_FORMAT})`;
    case "local-time":
      return column.baseOid === Oid.timestamptz ? `to_char(${c} AT TIME ZONE 'UTC', ${TIME_FORMAT})` : `to_char(${c}::timestamp, ${TIME_FORMAT})`;
    case "json":
      if (column.elementOid !== null) return arrayJson(c, column);
      // A JSON null document is the text null, apart from SQL NULL (src/model/value.ts).
      return minify(`${c}::text`);
  }
}

/** A double in C's %.Ne layout (to_char's EEEE is correctly rounded), NaN and infinities by name. */
function floatSql(x: string, pattern: string): string {
  return `CASE WHEN ${x} = 'NaN' THEN 'NaN' WHEN ${x} = 'Infinity' THEN 'Infinity' WHEN ${x} = '-Infinity' THEN '-Infinity' ELSE ltrim(to_char(${x}, '${pattern}')) END`;
}

/** An array as the JSON the sinks store for the list the source reads (src/model/json.ts `encodeJson`). */
function arrayJson(c: string, column: PgColumn): string {
  const element = column.elementOid;
  if (element === Oid.int2 || element === Oid.int4 || element === Oid.int8 || element === Oid.bool || column.elementCategory === "S") {
    return minify(`to_jsonb(${c})::text`);
  }
  let item: string;
  switch (element) {
    case Oid.numeric:
      // A decimal of scale 0 is written 1500e0, so that it reads back as a decimal.
      item = `CASE WHEN e IN ('NaN', 'Infinity', '-Infinity') THEN '"' || e::text || '"' WHEN scale(e) = 0 THEN e::text || 'e0' ELSE e::text END`;
      break;
    case Oid.oid:
      item = "e::text";
      break;
    case Oid.timestamptz:
      item = `CASE WHEN isfinite(e) THEN to_json(to_char(e AT TIME ZONE 'UTC', ${INSTANT_FORMAT}))::text ELSE to_json(e::text)::text END`;
      break;
    case Oid.timestamp:
    case Oid.date:
      item = `CASE WHEN isfinite(e) THEN to_json(to_char(e::timestamp, ${TIME_FORMAT}))::text ELSE to_json(e::text)::text END`;
      break;
    case Oid.bytea:
      item = `'{"$bytes":"' || translate(encode(e, 'base64'), E'\\n', '') || '"}'`;
      break;
    case Oid.json:
    case Oid.jsonb:
      item = minify("e::text");
      break;
    default:
      item = "to_json(format('%s', e))::text";
  }
  return `'[' || array_to_string(ARRAY(SELECT CASE WHEN e IS NULL THEN 'null' ELSE ${item} END FROM unnest(${c}) AS u(e)), ',') || ']'`;
}
