/**
 * `dts verify` on a mysql sink's tables: each row in the row text of src/model/canonical.ts, so
 * that a MySQL copy compares with its PostgreSQL (or any other engine's) original value by value.
 *
 * Unlike the postgres and duckdb readers, the texts are made here, not in SQL: MySQL has no
 * exact printing of a double in the canonical %.16e layout, and a JSON column's text depends on
 * the server (MariaDB keeps what was written, MySQL 8 reformats it). So the reader streams the
 * table's rows once per question — each value as the server's own text (or bytes) — turns
 * each into its dts value by the column's kind, and prints it with the reference functions of
 * canonical.ts (`canonicalText`, `rowText`, `rowHash`, `bucketOf`). What crosses the network is
 * the table, once per summary, bucket or row question; exact, at the price of that transfer.
 *
 * Kinds: TINYINT(1)/BOOLEAN boolean (0 and 1; other values print as integers and so differ),
 * integer types integer, DECIMAL decimal, FLOAT float32, DOUBLE float64, DATETIME and DATE
 * local-time, TIMESTAMP instant (the session is UTC), JSON (and MariaDB's JSON_VALID LONGTEXT)
 * json, binary types bytes, everything else string — a TIME as PostgreSQL prints one (no
 * trailing fractional zeros), so that `time` columns compare.
 */
import { createHash } from "node:crypto";
import { bucketOf, canonicalText, commonKind, rowHash, rowText, trimDecimal, type CanonicalKind } from "../../model/canonical.js";
import { Decimal } from "../../model/decimal.js";
import { decodeJson } from "../../model/json.js";
import { Timestamp } from "../../model/timestamp.js";
import { normalizeInteger, type Value } from "../../model/value.js";
import type mysql from "mysql2/promise";
import { ConnectorError } from "../../runtime/contracts.js";
import type { Checksum, ColumnForm, NativeComparison, RowQuery, SinkTable, VerifyColumn, VerifySink, VerifySinkReader, VerifyTable } from "../capabilities.js";
import { connect, connectorError, quoteIdentifier as quote, serverLabel } from "./connection.js";
import { loadTable, parseTarget, tableSql } from "./sink-tables.js";
import { columnTypeOf } from "./sink-types.js";

interface MysqlColumn extends VerifyColumn {
  readonly mysql: true;
  readonly dataType: string;
}

function isMysqlColumn(column: VerifyColumn): column is MysqlColumn {
  return "mysql" in column;
}

export const verifySink: VerifySink = async (context) => {
  const url = context.options.url;
  if (typeof url !== "string" || url === "") throw new ConnectorError(`mysql sink ${context.name}: option url is required`, false);
  const connection = await connect(url, { purpose: context.tool });
  const path = new URL(url).pathname;
  return new MysqlVerifyReader(connection, serverLabel(url), path.length > 1 ? decodeURIComponent(path.slice(1)) : undefined);
};

export class MysqlVerifyReader implements VerifySinkReader {
  readonly engine = "mysql";

  constructor(
    private readonly connection: mysql.Connection,
    readonly where: string,
    private readonly database: string | undefined,
  ) {}

  locate(target: string): SinkTable {
    const { database, table } = parseTarget(target, this.database);
    return { table: `${database}.${table}` };
  }

  async table(name: string): Promise<VerifyTable | undefined> {
    const { database, table } = parseTarget(name, this.database);
    const found = await this.run(`reading the columns of ${name}`, () => loadTable(this.connection, database, table));
    if (found === undefined) return undefined;
    const columns: MysqlColumn[] = [];
    for (const column of found.columns.values()) {
      if (column.generated) continue;
      columns.push({ name: column.name, type: column.json ? "json" : column.columnType, kind: kindOf(column.columnType, column.json), mysql: true, dataType: column.dataType });
    }
    // MySQL matches column names ignoring case.
    const byName = new Map(columns.map((column) => [column.name.toLowerCase(), column]));
    return { name: `${database}.${table}`, columns, key: found.primaryKey, column: (columnName: string) => byName.get(columnName.toLowerCase()) };
  }

  native(column: VerifyColumn, other: VerifyColumn): NativeComparison {
    if (column.type === other.type) return { note: undefined };
    const common = commonKind(column.kind, other.kind);
    if (common.kind === "none") return { unverifiable: common.reason };
    return { note: common.note };
  }

  cannotPrint(): string | undefined {
    return undefined;
  }

  async summary(query: RowQuery): Promise<Checksum> {
    let rows = 0n;
    let sum = 0n;
    await this.scan(query, (_key, text) => {
      rows++;
      sum += rowHash(text);
    });
    return { rows, sum: sum.toString() };
  }

  async buckets(query: RowQuery, buckets: number): Promise<ReadonlyMap<number, Checksum>> {
    const sums = new Map<number, { rows: bigint; sum: bigint }>();
    await this.scan(query, (key, text) => {
      const bucket = bucketOf(key, buckets);
      const entry = sums.get(bucket) ?? { rows: 0n, sum: 0n };
      entry.rows++;
      entry.sum += rowHash(text);
      sums.set(bucket, entry);
    });
    return new Map([...sums].map(([bucket, { rows, sum }]) => [bucket, { rows, sum: sum.toString() }]));
  }

  async rows(query: RowQuery, buckets: number, chosen: readonly number[]): Promise<ReadonlyMap<string, string>> {
    const wanted = new Set(chosen);
    const out = new Map<string, string>();
    if (wanted.size === 0) return out;
    await this.scan(query, (key, text) => {
      if (wanted.has(bucketOf(key, buckets))) out.set(key, md5Hex(text));
    });
    return out;
  }

  async close(): Promise<void> {
    await this.connection.end().catch(() => {});
  }

  /** Streams the table, calling `each` with every row's key text and row text. */
  private async scan(query: RowQuery, each: (key: string, text: string) => void): Promise<void> {
    const { database, table } = parseTarget(query.table.name, this.database);
    const forms = [...query.columns, ...query.key];
    const names = forms.map((form) => form.column.name);
    const list = names.length === 0 ? "1" : names.map((name, i) => `${quote(name)} AS c${i}`).join(", ");
    const sql = `SELECT ${list} FROM ${tableSql(database, table)}`;
    const printers = forms.map(printer);
    const valueCount = query.columns.length;
    await this.run(`reading ${query.table.name}`, async () => {
      const core = (this.connection as unknown as { connection: { query(options: object): { stream(options?: object): AsyncIterable<unknown[]> } } }).connection;
      const binary = new Set(forms.flatMap((form, i) => (form.column.kind === "bytes" ? [`c${i}`] : [])));
      const typeCast = (field: { name: string; string(): string | null; buffer(): Buffer | null }): string | Buffer | null =>
        binary.has(field.name) ? field.buffer() : field.string();
      const stream = core.query({ sql, rowsAsArray: true, typeCast }).stream({ highWaterMark: 1000 });
      for await (const row of stream) {
        const texts = (row as (string | Buffer | null)[]).map((raw, i) => (raw === null ? null : printers[i]!(raw)));
        each(rowText(texts.slice(valueCount)), rowText(texts.slice(0, valueCount)));
      }
    });
  }

  private async run<T>(doing: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw connectorError(error, this.where, doing);
    }
  }
}

function md5Hex(text: string): string {
  return createHash("md5").update(text, "utf8").digest("hex");
}

/** The canonical kind of a MySQL column type (see the file comment). */
export function kindOf(columnType: string, json: boolean): CanonicalKind | undefined {
  if (json) return "json";
  const type = columnTypeOf("mysql", columnType);
  switch (type.kind) {
    case "boolean":
      return "boolean";
    case "integer":
    case "year":
      return "integer";
    case "decimal":
      return "decimal";
    case "float":
      return type.bits === 32 ? "float32" : "float64";
    case "binary":
      return "bytes";
    case "date":
      return "local-time";
    case "timestamp":
      return type.zone ? "instant" : "local-time";
    case "json":
      return "json";
    default:
      return "string";
  }
}

/** How a column's raw value prints for its form. */
function printer({ column, form }: ColumnForm): (raw: string | Buffer) => string | null {
  if (!isMysqlColumn(column)) throw new Error(`mysql verify: ${column.name} is not a MySQL column`);
  let as: CanonicalKind | undefined;
  switch (form.kind) {
    case "native": {
      if (column.type === form.other.type) return ownText;
      const common = commonKind(column.kind, form.other.kind);
      as = common.kind === "none" || common.kind === "text" ? undefined : common.kind;
      break;
    }
    case "canonical":
      as = form.as;
      break;
    case "text":
      as = undefined;
  }
  if (as === undefined) return ownText;
  const kind = column.kind;
  const target = as;
  return (raw) => canonicalText(target, valueOf(kind, column, raw));
}

function ownText(raw: string | Buffer): string {
  return typeof raw === "string" ? raw : raw.toString("hex");
}

/** The dts value of a raw value, by the column's kind. */
function valueOf(kind: CanonicalKind | undefined, column: MysqlColumn, raw: string | Buffer): Value {
  if (typeof raw !== "string") return raw;
  switch (kind) {
    case "boolean":
      return raw === "1" ? true : raw === "0" ? false : normalizeInteger(BigInt(raw));
    case "integer":
      return normalizeInteger(BigInt(raw));
    case "decimal":
      return new Decimal(trimDecimal(raw));
    case "float32":
    case "float64":
      return Number(raw);
    case "local-time":
    case "instant":
      // The session is UTC: a TIMESTAMP's text is its UTC time.
      return new Timestamp(Timestamp.parse(raw.replace(" ", "T")).epochMicros, kind === "instant");
    case "json":
      return decodeJson(raw);
    default:
      return column.dataType === "time" ? timeText(raw) : raw;
  }
}

/** `10:00:00.500000` → `10:00:00.5`, `10:00:00.000000` → `10:00:00`: as PostgreSQL prints a time. */
function timeText(raw: string): string {
  return raw.includes(".") ? raw.replace(/0+$/, "").replace(/\.$/, "") : raw;
}
