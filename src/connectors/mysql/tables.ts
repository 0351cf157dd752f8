/**
 * The captured tables: `tables` patterns resolved against information_schema, and what the
 * source, the checker and the sinks need to know of each — columns with their MySQL types, the
 * neutral column types (src/model/column-type.ts), how a value of each is decoded (values.ts),
 * the primary key, and the row estimate for the progress display.
 *
 * A pattern is `database.table` or a glob over that text (`*` any characters, `?` one). Globs
 * skip the system databases. A pattern that matches nothing is an error naming it: a pipeline
 * that silently captures nothing is worse than one that does not start.
 *
 * MariaDB stores JSON as LONGTEXT with a `json_valid()` CHECK constraint; such a column is a
 * JSON column here (as MySQL's own JSON type is), so that its values are documents, not text.
 */
import type mysql from "mysql2/promise";
import type { ColumnSchema, ColumnType } from "../../model/column-type.js";
import type { StaticType } from "../../expr/signatures.js";
import { ConnectorError, type TableSchema } from "../../runtime/contracts.js";
import { connectorError } from "./connection.js";
import type { ValueKind } from "./values.js";

export interface MysqlColumn {
  readonly name: string;
  /** `COLUMN_TYPE` as the server prints it (`int(10) unsigned`, `varchar(20)`), `json` for a MariaDB JSON column. */
  readonly type: string;
  readonly dataType: string;
  readonly nullable: boolean;
  /** VIRTUAL or STORED: computed by the server; its values are still read and streamed. */
  readonly generated: boolean;
  readonly charset: string | null;
  /** COLUMN_DEFAULT as the server prints it (MariaDB quotes string literals), null when none. */
  readonly defaultText: string | null;
  readonly neutral: ColumnType;
  readonly kind: ValueKind;
}

export interface MysqlTable {
  readonly database: string;
  readonly name: string;
  /** `database.table`, as events name it. */
  readonly qualifiedName: string;
  readonly columns: readonly MysqlColumn[];
  /** Primary-key columns in key order; empty when the table has none. */
  readonly primaryKey: readonly string[];
  /** information_schema's estimate; -1 when unknown. */
  readonly estimatedRows: number;
}

type Connection = Pick<mysql.Connection, "query">;

const SYSTEM_DATABASES = ["mysql", "information_schema", "performance_schema", "sys"];

/** `*` and `?` globs over `database.table`. */
export function patternToRegExp(pattern: string): RegExp {
  const source = pattern.replace(/[\\^$+.()|[\]{}]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${source}$`, "s");
}

export function isGlob(pattern: string): boolean {
  return /[*?]/.test(pattern);
}

/** The names of the tables `patterns` select (each once, in pattern order), and the patterns that select none. */
export async function matchTables(connection: Connection, patterns: readonly string[], server: string): Promise<{ names: string[]; unmatched: string[] }> {
  let rows: Record<string, unknown>[];
  try {
    [rows] = (await connection.query(
      `SELECT TABLE_SCHEMA AS db, TABLE_NAME AS name FROM information_schema.TABLES
        WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN (${SYSTEM_DATABASES.map(() => "?").join(", ")})
        ORDER BY TABLE_SCHEMA, TABLE_NAME`,
      SYSTEM_DATABASES,
    )) as unknown as [Record<string, unknown>[]];
  } catch (error) {
    throw connectorError(error, server, "listing tables");
  }
  const all = rows.map((row) => `${String(row.db)}.${String(row.name)}`);
  const names: string[] = [];
  const unmatched: string[] = [];
  for (const pattern of patterns) {
    const regexp = patternToRegExp(pattern);
    const found = all.filter((name) => regexp.test(name));
    if (found.length === 0) unmatched.push(pattern);
    for (const name of found) if (!names.includes(name)) names.push(name);
  }
  return { names, unmatched };
}

/** The tables `patterns` select, described; throws naming a pattern that selects nothing. */
export async function resolveTables(connection: Connection, patterns: readonly string[], server: string): Promise<MysqlTable[]> {
  const { names, unmatched } = await matchTables(connection, patterns, server);
  if (unmatched.length > 0) {
    const pattern = unmatched[0]!;
    throw new ConnectorError(
      `${isGlob(pattern) ? `no table matches "${pattern}"` : `table ${pattern} does not exist`} in ${server} (DTS${isGlob(pattern) ? "6005" : "6004"}): check the tables option`,
      false,
    );
  }
  return describeTables(connection, names, server);
}

/** Describes tables by `database.table` name; a table that does not exist is left out. */
export async function describeTables(connection: Connection, names: readonly string[], server: string): Promise<MysqlTable[]> {
  if (names.length === 0) return [];
  const pairs = names.map((name) => splitName(name));
  const where = pairs.map(() => "(TABLE_SCHEMA = ? AND TABLE_NAME = ?)").join(" OR ");
  const params = pairs.flatMap(([db, table]) => [db, table]);
  try {
    const [columns] = (await connection.query(
      `SELECT TABLE_SCHEMA AS db, TABLE_NAME AS tbl, COLUMN_NAME AS name, DATA_TYPE AS data_type, COLUMN_TYPE AS column_type,
              IS_NULLABLE AS nullable, CHARACTER_SET_NAME AS charset, EXTRA AS extra, COLUMN_KEY AS column_key,
              CHARACTER_MAXIMUM_LENGTH AS char_length, NUMERIC_PRECISION AS num_precision, NUMERIC_SCALE AS num_scale,
              DATETIME_PRECISION AS dt_precision, COLUMN_DEFAULT AS default_text
         FROM information_schema.COLUMNS WHERE ${where} ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION`,
      params,
    )) as unknown as [Record<string, unknown>[]];
    const [keys] = (await connection.query(
      `SELECT TABLE_SCHEMA AS db, TABLE_NAME AS tbl, COLUMN_NAME AS name FROM information_schema.STATISTICS
        WHERE INDEX_NAME = 'PRIMARY' AND (${where}) ORDER BY TABLE_SCHEMA, TABLE_NAME, SEQ_IN_INDEX`,
      params,
    )) as unknown as [Record<string, unknown>[]];
    const [estimates] = (await connection.query(
      `SELECT TABLE_SCHEMA AS db, TABLE_NAME AS tbl, TABLE_ROWS AS estimate FROM information_schema.TABLES WHERE ${where}`,
      params,
    )) as unknown as [Record<string, unknown>[]];
    const jsonColumns = await readJsonChecks(connection, where, params);
    return pairs
      .map(([db, table]): MysqlTable | undefined => {
        const own = columns.filter((row) => row.db === db && row.tbl === table);
        if (own.length === 0) return undefined;
        const estimate = estimates.find((row) => row.db === db && row.tbl === table)?.estimate;
        return {
          database: db,
          name: table,
          qualifiedName: `${db}.${table}`,
          columns: own.map((row) => describeColumn(row, jsonColumns.has(`${db}.${table}.${String(row.name)}`))),
          primaryKey: keys.filter((row) => row.db === db && row.tbl === table).map((row) => String(row.name)),
          estimatedRows: estimate === null || estimate === undefined ? -1 : Number(estimate),
        };
      })
      .filter((table): table is MysqlTable => table !== undefined);
  } catch (error) {
    throw connectorError(error, server, "describing tables");
  }
}

/** MariaDB's JSON columns: LONGTEXT with a `json_valid(col)` CHECK (MySQL's JSON is a type of its own). */
async function readJsonChecks(connection: Connection, where: string, params: unknown[]): Promise<Set<string>> {
  try {
    const [rows] = (await connection.query(
      `SELECT CONSTRAINT_SCHEMA AS db, TABLE_NAME AS tbl, CHECK_CLAUSE AS clause FROM information_schema.CHECK_CONSTRAINTS
        WHERE ${where.replaceAll("TABLE_SCHEMA", "CONSTRAINT_SCHEMA")}`,
      params,
    )) as unknown as [Record<string, unknown>[]];
    const found = new Set<string>();
    for (const row of rows) {
      const m = /^json_valid\(`((?:[^`]|``)+)`\)$/i.exec(String(row.clause).trim());
      if (m !== null) found.add(`${String(row.db)}.${String(row.tbl)}.${m[1]!.replaceAll("``", "`")}`);
    }
    return found;
  } catch {
    // MySQL before 8.0.16 has no CHECK_CONSTRAINTS, and no JSON stored as text either.
    return new Set();
  }
}

export function splitName(name: string): [string, string] {
  const dot = name.indexOf(".");
  if (dot <= 0) throw new ConnectorError(`mysql source: table ${JSON.stringify(name)} must be named as database.table`, false);
  return [name.slice(0, dot), name.slice(dot + 1)];
}

function describeColumn(row: Record<string, unknown>, json: boolean): MysqlColumn {
  const dataType = String(row.data_type).toLowerCase();
  const columnType = String(row.column_type).toLowerCase();
  const extra = String(row.extra ?? "").toUpperCase();
  const { neutral, kind } = json || dataType === "json" ? { neutral: { kind: "json" } as ColumnType, kind: "json" as const } : typeOf(dataType, columnType, row);
  return {
    name: String(row.name),
    type: json ? "json" : columnType,
    dataType,
    nullable: row.nullable === "YES",
    generated: /VIRTUAL|STORED|PERSISTENT/.test(extra),
    charset: row.charset === null || row.charset === undefined ? null : String(row.charset),
    defaultText: row.default_text === null || row.default_text === undefined ? null : String(row.default_text),
    neutral,
    kind,
  };
}

const integerBits: Readonly<Record<string, 8 | 16 | 24 | 32 | 64>> = { tinyint: 8, smallint: 16, mediumint: 24, int: 32, integer: 32, bigint: 64 };

function precisionOf(columnType: string): number {
  const m = /\((\d+)\)/.exec(columnType);
  return m === null ? 0 : Number(m[1]);
}

function valuesOf(columnType: string): string[] {
  const inner = columnType.slice(columnType.indexOf("(") + 1, columnType.lastIndexOf(")"));
  const values: string[] = [];
  const pattern = /'((?:[^']|'')*)'/g;
  for (let m = pattern.exec(inner); m !== null; m = pattern.exec(inner)) values.push(m[1]!.replaceAll("''", "'"));
  return values;
}

/** The neutral type and the decoding of a MySQL column type. */
export function typeOf(dataType: string, columnType: string, row: Record<string, unknown> = {}): { neutral: ColumnType; kind: ValueKind } {
  const bits = integerBits[dataType];
  if (bits !== undefined) return { neutral: { kind: "integer", bits, signed: !columnType.includes("unsigned") }, kind: "integer" };
  switch (dataType) {
    case "decimal":
    case "numeric":
      return { neutral: { kind: "decimal", precision: Number(row.num_precision ?? 10), scale: Number(row.num_scale ?? 0) }, kind: "decimal" };
    case "float":
      return { neutral: { kind: "float", bits: 32 }, kind: "float32" };
    case "double":
    case "real":
      return { neutral: { kind: "float", bits: 64 }, kind: "float64" };
    case "bit":
      return { neutral: { kind: "bit", length: precisionOf(columnType) || 1 }, kind: "bit" };
    case "date":
      return { neutral: { kind: "date" }, kind: "date" };
    case "datetime":
      return { neutral: { kind: "timestamp", precision: precisionOf(columnType), zone: false }, kind: "datetime" };
    case "timestamp":
      return { neutral: { kind: "timestamp", precision: precisionOf(columnType), zone: true }, kind: "timestamp" };
    case "time":
      return { neutral: { kind: "interval" }, kind: "time" };
    case "year":
      return { neutral: { kind: "year" }, kind: "integer" };
    case "char":
    case "varchar":
      return { neutral: { kind: "text", length: Number(row.char_length ?? precisionOf(columnType)), ...(dataType === "char" ? { fixed: true } : {}) }, kind: "string" };
    case "tinytext":
    case "text":
    case "mediumtext":
    case "longtext":
      return { neutral: { kind: "text" }, kind: "string" };
    case "binary":
    case "varbinary":
      return { neutral: { kind: "binary", length: precisionOf(columnType), ...(dataType === "binary" ? { fixed: true } : {}) }, kind: "bytes" };
    case "tinyblob":
    case "blob":
    case "mediumblob":
    case "longblob":
      return { neutral: { kind: "binary" }, kind: "bytes" };
    case "enum":
      return { neutral: { kind: "enum", values: valuesOf(columnType) }, kind: "string" };
    case "set":
      return { neutral: { kind: "set", values: valuesOf(columnType) }, kind: "string" };
    case "json":
      return { neutral: { kind: "json" }, kind: "json" };
    case "uuid":
      return { neutral: { kind: "uuid" }, kind: "string" };
    default:
      // Spatial types, INET4/INET6 and the like: carried as the server's text or bytes.
      return { neutral: { kind: "other", name: columnType }, kind: "other" };
  }
}

/** What a value of the column is in dts (src/expr/signatures.ts), for `dts check --live`. */
export function staticTypeOf(column: MysqlColumn): StaticType {
  switch (column.kind) {
    case "integer":
    case "bit":
      return "integer";
    case "decimal":
      return "decimal";
    case "float32":
    case "float64":
      return "float";
    case "date":
    case "datetime":
    case "timestamp":
      return "timestamp";
    case "bytes":
      return "bytes";
    case "json":
      return "any";
    case "string":
    case "time":
      return "string";
    default:
      return "any";
  }
}

/** The table as the neutral model describes it. */
export function neutralColumns(table: MysqlTable): ColumnSchema[] {
  return table.columns.map((column) => ({ name: column.name, type: column.neutral, native: column.type, nullable: column.nullable, ...(column.generated ? { generated: true } : {}) }));
}

/** What a sink creating the table needs (`SourceReader.describe`). */
export function tableSchema(table: MysqlTable): TableSchema {
  return {
    dialect: "mysql",
    columns: table.columns.map((column) => ({ name: column.name, type: column.type, nullable: column.nullable })),
    primaryKey: table.primaryKey,
  };
}

/**
 * How a column is selected so that its text loses nothing: a FLOAT through DOUBLE, since the
 * server prints a FLOAT to 6 significant digits (26.333334 as 26.3333) but a DOUBLE exactly.
 */
export function selectExpression(column: Pick<MysqlColumn, "name" | "kind">, quote: (name: string) => string): string {
  return column.kind === "float32" ? `CAST(${quote(column.name)} AS DOUBLE) AS ${quote(column.name)}` : quote(column.name);
}

