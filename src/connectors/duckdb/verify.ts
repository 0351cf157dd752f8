/**
 * `dts verify` on a duckdb sink's file: the copies are read in the row texts of
 * src/model/canonical.ts, inside DuckDB, so that they compare with a table of another engine
 * (a PostgreSQL source, today) value by value.
 *
 * Each column prints the canonical text of the kind both sides agree on (`commonKind`): a
 * DECIMAL without its trailing zeros (a DECIMAL column has one scale for all its values, while
 * the source's numeric keeps each value's), a DOUBLE in C's %.16e layout (printf: correctly
 * rounded, so exact), a FLOAT at %.8e, a BLOB in lower-case hex, a TIMESTAMPTZ as its UTC time
 * and a TIMESTAMP as its wall-clock time (strftime, in a UTC session), a JSON column's text
 * as the sink stored it (`encodeJson`), a VARCHAR as itself.
 *
 * The file is opened read-only. DuckDB lets one process write a file and no other process
 * open it meanwhile, so the file of a running pipeline cannot be read: that is said, with the
 * process holding it, rather than reported as a difference. A file that does not exist holds
 * no table, and every copy in it is reported missing.
 *
 * Which table holds a target's rows is the sink's own rule (names.ts `tableFor`): the `table`
 * option, else the target's schema and table (`shop.orders` is `"shop"."orders"`). `append` mode keeps
 * every change as a row, so its table is a history, not a copy, and is not compared.
 */
import { access } from "node:fs/promises";
import { resolve } from "node:path";
import { DuckDBInstance, type DuckDBConnection, type DuckDBValue } from "@duckdb/node-api";
import { commonKind, type CanonicalKind } from "../../model/canonical.js";
import { ConnectorError } from "../../runtime/contracts.js";
import type { Checksum, ColumnForm, NativeComparison, RowQuery, SinkTable, VerifyColumn, VerifySink, VerifySinkReader, VerifyTable } from "../capabilities.js";
import { fold, qualifiedName, quoteIdentifier as quote, tableFor, type DuckDBTableName } from "./names.js";
import { parseColumnType, type ColumnType } from "./types.js";

interface Settings {
  readonly path: string;
  /** Resolved against the pipeline file's folder, or `:memory:`. */
  readonly file: string;
  readonly table: string | undefined;
  readonly mode: string;
}

/** The table a target's rows land in (the sink's rule: sink.ts `admit`). */

interface DuckColumn extends VerifyColumn {
  readonly duck: ColumnType;
}

function isDuckColumn(column: VerifyColumn): column is DuckColumn {
  return "duck" in column;
}

export const verifySink: VerifySink = async (context) => {
  const path = context.options.path;
  if (typeof path !== "string" || path === "") throw new ConnectorError(`duckdb sink ${context.name}: option path is required`, false);
  const table = context.options.table;
  const mode = context.options.mode;
  const settings: Settings = {
    path,
    file: path === ":memory:" ? path : resolve(context.baseDir, path),
    table: typeof table === "string" && table !== "" ? table : undefined,
    mode: typeof mode === "string" ? mode : "upsert",
  };
  return DuckDBReader.open(settings, context.name);
};

class DuckDBReader implements VerifySinkReader {
  readonly engine = "duckdb";
  /** The tables `locate` named, by the name it gave them. */
  private readonly located = new Map<string, DuckDBTableName>();

  private constructor(
    private readonly settings: Settings,
    /** Null when the file does not exist (or is in memory): it holds no table. */
    private readonly connection: DuckDBConnection | null,
    private readonly instance: DuckDBInstance | null,
    readonly where: string,
  ) {}

  static async open(settings: Settings, sink: string): Promise<DuckDBReader> {
    const exists = settings.file !== ":memory:" && (await access(settings.file).then(() => true, () => false));
    if (!exists) return new DuckDBReader(settings, null, null, settings.file === ":memory:" ? "an in-memory database" : `${settings.file} (no such file)`);
    let instance: DuckDBInstance;
    try {
      instance = await DuckDBInstance.create(settings.file, { access_mode: "READ_ONLY" });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const lock = /Conflicting lock is held in (.*?) \(PID (\d+)\)/.exec(message);
      if (lock !== null) {
        throw new ConnectorError(
          `duckdb sink ${sink}: the file ${settings.file} is in use by process ${lock[2]} (${lock[1]}), most likely the running pipeline: ` +
            `DuckDB lets no other process open a file while one writes it; stop the pipeline, or wait until it stops, then run dts verify again`,
          false,
          { cause: error },
        );
      }
      throw new ConnectorError(`duckdb sink ${sink}: cannot open ${settings.file}: ${message}`, false, { cause: error });
    }
    const connection = await instance.connect();
    await connection.run("SET TimeZone = 'UTC'");
    return new DuckDBReader(settings, connection, instance, settings.file);
  }

  locate(target: string): SinkTable {
    if (this.settings.file === ":memory:") return { unverifiable: "the database is in memory: it is gone when the run ends" };
    if (this.settings.mode === "append") return { unverifiable: 'mode "append" keeps every change as a row: the table is a history, not a copy' };
    const name = tableFor(target, this.settings.table ?? null);
    const shown = qualifiedName(name);
    this.located.set(shown, name);
    return { table: shown };
  }

  async table(shown: string): Promise<VerifyTable | undefined> {
    const name = this.located.get(shown) ?? tableFor(shown);
    if (this.connection === null) return undefined;
    const tables = await this.query(`SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database()`);
    const match = tables.find((row) => fold(String(row[0])) === fold(name.schema) && fold(String(row[1])) === fold(name.table));
    if (match === undefined) return undefined;
    const schema = String(match[0]);
    const found = String(match[1]);
    const rows = await this.query(
      `SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = current_database() AND schema_name = $1 AND table_name = $2 ORDER BY column_index`,
      [schema, found],
    );
    const columns: DuckColumn[] = rows.map(([columnName, dataType]) => {
      const duck = parseColumnType(String(dataType));
      return { name: String(columnName), type: String(dataType), duck, kind: kindOf(duck) };
    });
    const keys = await this.query(
      `SELECT constraint_column_names FROM duckdb_constraints() WHERE database_name = current_database() AND schema_name = $1 AND table_name = $2 AND constraint_type = 'PRIMARY KEY'`,
      [schema, found],
    );
    const keyList = keys[0]?.[0];
    const key = keyList !== undefined && keyList !== null && typeof keyList === "object" && "items" in keyList ? keyList.items.map(String) : [];
    const byName = new Map(columns.map((column) => [fold(column.name), column]));
    return { name: qualifiedName({ schema, table: found }), columns, key, column: (columnName: string) => byName.get(fold(columnName)) };
  }

  native(column: VerifyColumn, other: VerifyColumn): NativeComparison {
    const form = nativeForm(column, other);
    return "unverifiable" in form ? form : { note: form.note };
  }

  cannotPrint(): string | undefined {
    return undefined;
  }

  async summary(query: RowQuery): Promise<Checksum> {
    const [row] = await this.query(`SELECT count(*)::VARCHAR, coalesce(sum(h), 0)::VARCHAR FROM (SELECT ${hash64(rowSql(query.columns))} AS h FROM ${query.table.name})`);
    return { rows: BigInt(String(row![0])), sum: String(row![1]) };
  }

  async buckets(query: RowQuery, buckets: number): Promise<ReadonlyMap<number, Checksum>> {
    const rows = await this.query(
      `SELECT b, count(*)::VARCHAR, sum(h)::VARCHAR FROM (SELECT ${bucketSql(rowSql(query.key), buckets)} AS b, ${hash64(rowSql(query.columns))} AS h FROM ${query.table.name}) GROUP BY b`,
    );
    return new Map(rows.map(([bucket, count, sum]) => [Number(bucket), { rows: BigInt(String(count)), sum: String(sum) }]));
  }

  async rows(query: RowQuery, buckets: number, chosen: readonly number[]): Promise<ReadonlyMap<string, string>> {
    if (chosen.length === 0) return new Map();
    const key = rowSql(query.key);
    const rows = await this.query(
      `SELECT ${key}, md5(${rowSql(query.columns)}) FROM ${query.table.name} WHERE ${bucketSql(key, buckets)} IN (${chosen.map((bucket) => String(Math.trunc(bucket))).join(", ")})`,
    );
    return new Map(rows.map(([k, h]) => [String(k), String(h)]));
  }

  async close(): Promise<void> {
    this.connection?.closeSync();
    this.instance?.closeSync();
  }

  private async query(sql: string, values: DuckDBValue[] = []): Promise<DuckDBValue[][]> {
    if (this.connection === null) return [];
    try {
      return (await this.connection.runAndReadAll(sql, values)).getRows();
    } catch (error) {
      throw new ConnectorError(`reading ${this.where}: ${error instanceof Error ? error.message : String(error)}`, false, { cause: error });
    }
  }
}

function kindOf(type: ColumnType): CanonicalKind | undefined {
  switch (type.kind) {
    case "boolean":
      return "boolean";
    case "integer":
      return "integer";
    case "double":
      return "float64";
    case "float":
      return "float32";
    case "decimal":
      return "decimal";
    case "varchar":
      return "string";
    case "json":
      return "json";
    case "timestamp":
      return type.withZone ? "instant" : "local-time";
    case "blob":
      return "bytes";
    case "unsupported":
      return undefined;
  }
}

/** DuckDB folds identifiers by ASCII case only (as the sink does). */


// ---------------------------------------------------------------- SQL

const hash64 = (row: string): string => `('0x' || substr(md5(${row}), 1, 16))::UBIGINT`;
const bucketSql = (key: string, buckets: number): string => `(('0x' || substr(md5(${key}), 1, 8))::UINTEGER & ${buckets - 1})`;

function rowSql(columns: readonly ColumnForm[]): string {
  if (columns.length === 0) return "''";
  return columns
    .map((column) => {
      const value = valueSql(column);
      return `coalesce(strlen(${value})::VARCHAR || ':' || ${value}, '-')`;
    })
    .join(" || ");
}

function valueSql({ column, form }: ColumnForm): string {
  if (!isDuckColumn(column)) throw new Error(`duckdb verify: ${column.name} is not a DuckDB column`);
  const c = quote(column.name);
  let text: string;
  switch (form.kind) {
    case "native": {
      const native = nativeForm(column, form.other);
      if ("unverifiable" in native) throw new Error(`duckdb verify: ${column.name}: ${native.unverifiable}`);
      text = native.as === undefined ? `${c}::VARCHAR` : canonicalSql(c, column, native.as);
      break;
    }
    case "canonical":
      text = canonicalSql(c, column, form.as);
      break;
    case "text":
      text = `${c}::VARCHAR`;
      break;
  }
  return `(CASE WHEN ${c} IS NULL THEN NULL ELSE ${text} END)`;
}

/** Two DuckDB columns: of one type, by its text; else in the canonical kind both print. */
function nativeForm(a: VerifyColumn, b: VerifyColumn): { readonly note: string | undefined; readonly as: CanonicalKind | undefined } | { readonly unverifiable: string } {
  if (a.type === b.type) return { note: undefined, as: undefined };
  const common = commonKind(a.kind, b.kind);
  if (common.kind === "none") return { unverifiable: common.reason };
  if (common.kind === "text") return { note: common.note, as: undefined };
  return { note: common.note, as: common.kind };
}

function canonicalSql(c: string, column: DuckColumn, kind: CanonicalKind): string {
  switch (kind) {
    case "boolean":
      return `CASE WHEN ${c} THEN 'true' ELSE 'false' END`;
    case "integer":
      return `${c}::VARCHAR`;
    case "decimal": {
      const text = `${c}::VARCHAR`;
      const trimmed = `CASE WHEN contains(${text}, '.') THEN regexp_replace(${text}, '\\.?0+$', '') ELSE ${text} END`;
      return `CASE WHEN ${trimmed} = '-0' THEN '0' ELSE ${trimmed} END`;
    }
    case "float64":
      return floatSql(`${c}::DOUBLE`, "%.16e");
    case "float32":
      return floatSql(`${c}::FLOAT`, "%.8e");
    case "string":
      return `${c}::VARCHAR`;
    case "bytes":
      return `lower(hex(${c}))`;
    case "instant":
      return `strftime(${c}, '%Y-%m-%dT%H:%M:%S.%fZ')`;
    case "local-time":
      return `strftime(${c}, '%Y-%m-%dT%H:%M:%S.%f')`;
    case "json":
      return column.duck.kind === "json" ? `${c}::VARCHAR` : `to_json(${c})::VARCHAR`;
  }
}

function floatSql(x: string, format: string): string {
  return `CASE WHEN isnan(${x}) THEN 'NaN' WHEN isinf(${x}) THEN (CASE WHEN ${x} > 0 THEN 'Infinity' ELSE '-Infinity' END) ELSE printf('${format}', ${x}) END`;
}
