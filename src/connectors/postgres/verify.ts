/**
 * Comparing a source table with its copy, inside the two databases.
 *
 * Each side computes, in one scan, its row count and an order-independent checksum: the sum
 * over rows of the first 64 bits of md5(canonical row text), as a numeric (no overflow). Only
 * two numbers cross the network per table, whatever its size. The canonical text must come out
 * the same on both sides for the same values even when the copy's column types differ a little
 * from the source's (a created table may have inferred types), so each column is brought to a
 * common form before it is printed:
 *
 *   integers and numeric     trim_scale(x::numeric): 12.30, 12.3 and 12.300 print alike (and so
 *                            does a numeric domain, compared with a numeric copy)
 *   real, double             x::float8::text (shortest exact text); x::real::text when either
 *                            side is real (a real copied into double precision)
 *   date, timestamp(tz)      x::timestamp::text, in a UTC session (their arrays alike)
 *   json, jsonb              x::jsonb::text (key order and spacing normalised); json[] alike
 *   char(n)                  x::text (without the padding)
 *   everything else          format('%s', x): the type's output function, as the source
 *                            printed the value (x::text differs for inet: 10.0.0.1/32)
 *
 * each value quoted with quote_nullable (so NULL and the string 'NULL' differ, and no value can
 * forge a separator), joined by commas, the columns in name order. Both sessions use the same
 * settings (client.ts `connect`), on which the text of times, intervals and floats depends.
 *
 * On a mismatch the differing keys are found without copying the tables either: rows are put
 * in buckets by a hash of their key, each side sums its buckets, and only the rows of buckets
 * that differ are fetched — as (key text, row hash) pairs — and compared, up to a bound.
 */
import type pg from "pg";
import type { TargetTable } from "./ddl.js";
import { quoteIdent } from "./ddl.js";

/** What verify needs of one side's table. */
export interface ComparedTable {
  readonly schema: string;
  readonly table: string;
  /** Column name → type name (format_type without modifiers is enough: `numeric`, `integer[]`). */
  readonly columns: ReadonlyMap<string, string>;
}

export interface TableComparison {
  readonly sourceRows: bigint;
  readonly targetRows: bigint;
  readonly sourceChecksum: string;
  readonly targetChecksum: string;
  /** Source columns the target lacks (then nothing else is compared). */
  readonly missingColumns: readonly string[];
  readonly equal: boolean;
  /** At most `maxKeys` differing keys, as `id=5` texts, with what differs. */
  readonly differences: readonly KeyDifference[];
  /** More keys differ than were listed. */
  readonly moreDifferences: boolean;
}

export interface KeyDifference {
  readonly key: string;
  readonly kind: "missing in target" | "extra in target" | "differs";
}

export interface CompareOptions {
  readonly maxKeys?: number;
  /** Rows fetched per side, at most, to list differing keys. */
  readonly maxRowsFetched?: number;
}

/** A target table, as verify compares it. */
export function comparedTarget(table: TargetTable): ComparedTable {
  return { schema: table.schema, table: table.table, columns: new Map([...table.columns.values()].map((c) => [c.name, c.typeName])) };
}

/**
 * Compares `source` (read with `sourceClient`) and `target` by the source's columns, keyed by
 * `key` (the source's primary key; empty: counts and checksums only).
 */
export async function compareTables(
  sourceClient: pg.Client,
  source: ComparedTable,
  targetClient: pg.Client,
  target: ComparedTable,
  key: readonly string[],
  options: CompareOptions = {},
): Promise<TableComparison> {
  const maxKeys = options.maxKeys ?? 20;
  const columns = [...source.columns.keys()].sort();
  const missingColumns = columns.filter((c) => !target.columns.has(c));
  const sourceSql = tableSql(source);
  const targetSql = tableSql(target);
  if (missingColumns.length > 0) {
    const [s, t] = await Promise.all([countRows(sourceClient, sourceSql), countRows(targetClient, targetSql)]);
    return { sourceRows: s, targetRows: t, sourceChecksum: "", targetChecksum: "", missingColumns, equal: false, differences: [], moreDifferences: false };
  }
  const sourceRow = rowText(columns, source.columns, target.columns);
  const targetRow = rowText(columns, target.columns, source.columns);
  const [s, t] = await Promise.all([summary(sourceClient, sourceSql, sourceRow), summary(targetClient, targetSql, targetRow)]);
  const equal = s.rows === t.rows && s.checksum === t.checksum;
  const result = { sourceRows: s.rows, targetRows: t.rows, sourceChecksum: s.checksum, targetChecksum: t.checksum, missingColumns, equal };
  if (equal || key.length === 0) return { ...result, differences: [], moreDifferences: false };

  // Buckets: about a thousand rows each, at least 1, at most 65536.
  const rows = s.rows > t.rows ? s.rows : t.rows;
  const buckets = Math.min(65536, Math.max(1, 2 ** Math.ceil(Math.log2(Math.max(1, Number(rows) / 1000)))));
  const sourceKey = keyText(key, source.columns, target.columns);
  const targetKey = keyText(key, target.columns, source.columns);
  const [sb, tb] = await Promise.all([
    bucketSums(sourceClient, sourceSql, sourceKey, sourceRow, buckets),
    bucketSums(targetClient, targetSql, targetKey, targetRow, buckets),
  ]);
  const differing: number[] = [];
  let budget = options.maxRowsFetched ?? 100_000;
  for (let bucket = 0; bucket < buckets; bucket++) {
    const a = sb.get(bucket);
    const b = tb.get(bucket);
    if (a?.rows === b?.rows && a?.checksum === b?.checksum) continue;
    const cost = Number((a?.rows ?? 0n) > (b?.rows ?? 0n) ? (a?.rows ?? 0n) : (b?.rows ?? 0n));
    if (differing.length > 0 && cost > budget) break;
    budget -= cost;
    differing.push(bucket);
  }
  const [sr, tr] = await Promise.all([
    bucketRows(sourceClient, sourceSql, sourceKey, sourceRow, buckets, differing),
    bucketRows(targetClient, targetSql, targetKey, targetRow, buckets, differing),
  ]);
  const differences: KeyDifference[] = [];
  for (const [k, hash] of sr) {
    const other = tr.get(k);
    if (other === undefined) differences.push({ key: k, kind: "missing in target" });
    else if (other !== hash) differences.push({ key: k, kind: "differs" });
  }
  for (const k of tr.keys()) if (!sr.has(k)) differences.push({ key: k, kind: "extra in target" });
  differences.sort((x, y) => x.key.localeCompare(y.key, "en", { numeric: true }));
  const bucketsLeft = differing.length < countDiffering(sb, tb, buckets);
  return {
    ...result,
    differences: differences.slice(0, maxKeys).map((d) => ({ ...d, key: readableKey(key, d.key) })),
    moreDifferences: differences.length > maxKeys || bucketsLeft,
  };
}

function tableSql(table: ComparedTable): string {
  return `${quoteIdent(table.schema)}.${quoteIdent(table.table)}`;
}

/**
 * One column's value in the common form (see the file comment). `otherType` is the column's
 * type on the other side: char(n) prints without its padding, so a text copy of it is compared
 * without trailing spaces too.
 */
export function canonicalValue(column: string, type: string, otherType = type): string {
  const c = quoteIdent(column);
  const base = baseType(type);
  const other = baseType(otherType);
  // A copy whose type was inferred (real as double precision, a numeric domain as numeric) is
  // compared in the narrower or the common type.
  if (base === "real" || other === "real") return `${c}::real::text`;
  if (NUMBER_TYPES.has(other) && !BUILT_IN_TYPES.has(base) && !base.endsWith("[]")) return `trim_scale(${c}::numeric)::text`;
  if (TIME_ARRAYS.has(base) && TIME_ARRAYS.has(other)) return `${c}::timestamp[]::text`;
  if (base === "json[]") {
    return `CASE WHEN ${c} IS NULL THEN NULL ELSE coalesce((SELECT array_agg(e::jsonb) FROM unnest(${c}) AS e)::text, '{}') END`;
  }
  if (base.endsWith("[]")) return `${c}::text`;
  if (baseType(otherType) === "character" && base !== "character") return `rtrim(${c}::text, ' ')`;
  switch (base) {
    case "smallint":
    case "integer":
    case "bigint":
    case "numeric":
    case "oid":
      return `trim_scale(${c}::numeric)::text`;
    case "real":
    case "double precision":
      return `${c}::float8::text`;
    case "date":
    case "timestamp without time zone":
    case "timestamp with time zone":
    case "timestamp":
      return `${c}::timestamp::text`;
    case "json":
    case "jsonb":
      return `${c}::jsonb::text`;
    case "character":
      return `${c}::text`;
    default:
      // The type's output function, as the source printed it: a cast to text can differ from
      // it (inet's adds the netmask: 10.0.0.1/32).
      return `format('%s', ${c})`;
  }
}

const TIME_ARRAYS: ReadonlySet<string> = new Set(["date[]", "timestamp without time zone[]", "timestamp with time zone[]"]);
const NUMBER_TYPES: ReadonlySet<string> = new Set(["smallint", "integer", "bigint", "numeric", "oid"]);
/** Built-in types by their format_type names; another name is a domain or a user type. */
const BUILT_IN_TYPES: ReadonlySet<string> = new Set([
  ...NUMBER_TYPES,
  ...["real", "double precision", "money", "boolean", "text", "character varying", "character", "name", "bytea", "uuid"],
  ...["date", "time without time zone", "time with time zone", "timestamp without time zone", "timestamp with time zone", "interval"],
  ...["json", "jsonb", "xml", "inet", "cidr", "macaddr", "macaddr8", "bit", "bit varying", "tsvector", "tsquery"],
]);

function baseType(type: string): string {
  return type.replace(/\(.*?\)/g, "").replace(/\s+/g, " ").trim();
}

function rowText(columns: readonly string[], types: ReadonlyMap<string, string>, otherTypes: ReadonlyMap<string, string>): string {
  if (columns.length === 0) return "''";
  return columns.map((c) => `quote_nullable(${canonicalValue(c, types.get(c)!, otherTypes.get(c))})`).join(" || ',' || ");
}

function keyText(key: readonly string[], types: ReadonlyMap<string, string>, otherTypes: ReadonlyMap<string, string>): string {
  return key.map((c) => `quote_nullable(${canonicalValue(c, types.get(c) ?? "text", otherTypes.get(c))})`).join(" || ',' || ");
}

const hash64 = (text: string) => `('x' || substr(md5(${text}), 1, 16))::bit(64)::int8`;
const bucketOf = (keyExpr: string, buckets: number) => `(('x' || substr(md5(${keyExpr}), 1, 8))::bit(32)::int4 & ${buckets - 1})`;

async function countRows(client: pg.Client, table: string): Promise<bigint> {
  const { rows } = await client.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${table}`);
  return BigInt(rows[0]!.n);
}

async function summary(client: pg.Client, table: string, row: string): Promise<{ rows: bigint; checksum: string }> {
  const { rows } = await client.query<{ n: string; checksum: string }>(
    `SELECT count(*)::text AS n, coalesce(sum(${hash64(row)}::numeric), 0)::text AS checksum FROM ${table}`,
  );
  return { rows: BigInt(rows[0]!.n), checksum: rows[0]!.checksum };
}

async function bucketSums(client: pg.Client, table: string, key: string, row: string, buckets: number): Promise<Map<number, { rows: bigint; checksum: string }>> {
  const { rows } = await client.query<{ b: number; n: string; checksum: string }>(
    `SELECT ${bucketOf(key, buckets)} AS b, count(*)::text AS n, sum(${hash64(row)}::numeric)::text AS checksum FROM ${table} GROUP BY 1`,
  );
  return new Map(rows.map((r) => [Number(r.b), { rows: BigInt(r.n), checksum: r.checksum }]));
}

async function bucketRows(client: pg.Client, table: string, key: string, row: string, buckets: number, chosen: readonly number[]): Promise<Map<string, string>> {
  if (chosen.length === 0) return new Map();
  const { rows } = await client.query<{ k: string; h: string }>(
    `SELECT ${key} AS k, md5(${row}) AS h FROM ${table} WHERE ${bucketOf(key, buckets)} = ANY($1::int4[])`,
    [chosen],
  );
  return new Map(rows.map((r) => [r.k, r.h]));
}

function countDiffering(a: Map<number, { rows: bigint; checksum: string }>, b: Map<number, { rows: bigint; checksum: string }>, buckets: number): number {
  let n = 0;
  for (let bucket = 0; bucket < buckets; bucket++) {
    const x = a.get(bucket);
    const y = b.get(bucket);
    if (x?.rows !== y?.rows || x?.checksum !== y?.checksum) n++;
  }
  return n;
}

/** `'5','a'` (quoted key values) → `id=5, name=a`. */
function readableKey(key: readonly string[], text: string): string {
  const values: string[] = [];
  const pattern = /NULL|E?'((?:[^']|'')*)'/gy;
  for (let m = pattern.exec(text); m !== null; m = pattern.exec(text)) {
    values.push(m[1] === undefined ? "null" : m[1].replace(/''/g, "'"));
    if (text[pattern.lastIndex] === ",") pattern.lastIndex++;
  }
  return key.map((c, i) => `${c}=${values[i] ?? "?"}`).join(", ");
}
