/**
 * `dts verify` on a mysql source: the captured tables in the row texts of src/model/canonical.ts,
 * so that they compare with their copies in another engine (PostgreSQL) value by value.
 *
 * Unlike the postgres and duckdb readers, which print canonical texts in SQL, this one reads the
 * rows — decoded exactly as the source sends them (values.ts) — and computes the texts, hashes
 * and buckets in dts with the reference implementation (`canonicalText`, `rowHash`, `bucketOf`).
 * MySQL cannot print a double in C's %.16e layout, nor a JSON document in jsonb's key order, so
 * the server-side route would not be exact; reading the rows costs a scan per pass, which `dts
 * verify` does at most three times (summary, buckets, rows of the differing buckets).
 *
 * Kinds: integers, YEAR and BIT are `integer`; DECIMAL `decimal`; FLOAT `float32`; DOUBLE
 * `float64`; DATE and DATETIME `local-time`; TIMESTAMP `instant`; character types, ENUM and SET
 * `string`; binary types `bytes`; JSON `json`, printed as PostgreSQL prints a jsonb (keys by
 * length, then bytes; the last of duplicate keys; no spaces), since a JSON copy in PostgreSQL is
 * a jsonb. TIME has no kind: it is compared as text, printed as the ISO 8601 duration
 * PostgreSQL prints for the interval it becomes (`PT-838H-59M-59S`).
 */
import type mysql from "mysql2/promise";
import { bucketOf, canonicalText, commonKind, rowHash, rowText, type CanonicalKind } from "../../model/canonical.js";
import { createHash } from "node:crypto";
import { Decimal } from "../../model/decimal.js";
import { Timestamp } from "../../model/timestamp.js";
import { isRecord, type Value } from "../../model/value.js";
import { ConnectorError } from "../../runtime/contracts.js";
import type { Checksum, ColumnForm, NativeComparison, RowQuery, VerifyColumn, VerifySource, VerifySourceReader, VerifyTable } from "../capabilities.js";
import { connect, connectorError, quoteIdentifier, serverLabel } from "./connection.js";
import { readSourceSettings } from "./source-settings.js";
import { describeTables, matchTables, selectExpression, type MysqlColumn } from "./tables.js";
import { decodeValue, type ValueKind } from "./values.js";

interface MysqlVerifyColumn extends VerifyColumn {
  readonly mysql: MysqlColumn;
}

function isMysqlColumn(column: VerifyColumn): column is MysqlVerifyColumn {
  return "mysql" in column;
}

export function canonicalKindOf(kind: ValueKind): CanonicalKind | undefined {
  switch (kind) {
    case "integer":
    case "bit":
      return "integer";
    case "decimal":
      return "decimal";
    case "float32":
      return "float32";
    case "float64":
      return "float64";
    case "date":
    case "datetime":
      return "local-time";
    case "timestamp":
      return "instant";
    case "string":
      return "string";
    case "bytes":
      return "bytes";
    case "json":
      return "json";
    default:
      return undefined;
  }
}

export const verifySource: VerifySource = async (context) => {
  const settings = readSourceSettings(context);
  const connection = await connect(settings.url, { purpose: context.tool });
  return new MysqlVerifyReader(connection, serverLabel(settings.url), settings.tables);
};

class MysqlVerifyReader implements VerifySourceReader {
  readonly engine = "mysql";

  constructor(
    private readonly connection: mysql.Connection,
    readonly where: string,
    private readonly patterns: readonly string[],
  ) {}

  async capturedTables(): Promise<readonly string[]> {
    return (await matchTables(this.connection, this.patterns, this.where)).names;
  }

  async table(name: string): Promise<VerifyTable | undefined> {
    const [described] = await describeTables(this.connection, [name], this.where);
    if (described === undefined) return undefined;
    const columns: MysqlVerifyColumn[] = described.columns.map((column) => ({ name: column.name, type: column.type, kind: canonicalKindOf(column.kind), mysql: column }));
    const byName = new Map(columns.map((column) => [column.name.toLowerCase(), column]));
    return { name: described.qualifiedName, columns, key: described.primaryKey, column: (columnName: string) => byName.get(columnName.toLowerCase()) };
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
    const found = new Map<number, { rows: bigint; sum: bigint }>();
    await this.scan(query, (key, text) => {
      const bucket = bucketOf(key, buckets);
      const entry = found.get(bucket) ?? { rows: 0n, sum: 0n };
      entry.rows++;
      entry.sum += rowHash(text);
      found.set(bucket, entry);
    });
    return new Map([...found].map(([bucket, { rows, sum }]) => [bucket, { rows, sum: sum.toString() }]));
  }

  async rows(query: RowQuery, buckets: number, chosen: readonly number[]): Promise<ReadonlyMap<string, string>> {
    const wanted = new Set(chosen);
    const found = new Map<string, string>();
    if (wanted.size === 0) return found;
    await this.scan(query, (key, text) => {
      if (wanted.has(bucketOf(key, buckets))) found.set(key, createHash("md5").update(text, "utf8").digest("hex"));
    });
    return found;
  }

  async close(): Promise<void> {
    await this.connection.end().catch(() => {});
  }

  /** Every row's key text and row text. */
  private async scan(query: RowQuery, each: (key: string, text: string) => void): Promise<void> {
    const [database, table] = splitQualified(query.table.name);
    const wanted = [...new Set([...query.columns, ...query.key].map((form) => form.column.name))];
    const columns = wanted.map((name) => {
      const column = query.table.column(name);
      if (column === undefined || !isMysqlColumn(column)) throw new Error(`mysql verify: no column ${name} in ${query.table.name}`);
      return column;
    });
    const index = new Map(wanted.map((name, i) => [name, i]));
    const sql = `SELECT ${columns.map((column) => selectExpression(column.mysql, quoteIdentifier)).join(", ")} FROM ${quoteIdentifier(database)}.${quoteIdentifier(table)}`;
    const core = (this.connection as unknown as { connection: { query(options: object): { stream(options: object): AsyncIterable<unknown[]> } } }).connection;
    const texts = (forms: readonly ColumnForm[], values: readonly Value[]): string =>
      rowText(forms.map((form) => printValue(form, values[index.get(form.column.name)!]!)));
    try {
      const stream = core
        .query({
          sql,
          rowsAsArray: true,
          typeCast: (field: { type: string; name: string; extendedFormat?: string; string(encoding?: string): string | null }, next: () => unknown) =>
            field.type === "JSON" || field.extendedFormat === "json" ? field.string("utf8") : next(),
        })
        .stream({ highWaterMark: 1000 });
      for await (const raw of stream) {
        const values = columns.map((column, i) => (column.mysql.kind === "json" && typeof raw[i] === "object" && raw[i] !== null && !Buffer.isBuffer(raw[i]) ? decodeValue("other", JSON.stringify(raw[i])) : decodeValue(column.mysql.kind, raw[i])));
        each(texts(query.key, values), texts(query.columns, values));
      }
    } catch (error) {
      if (error instanceof ConnectorError) throw error;
      throw connectorError(error, this.where, `reading ${query.table.name} for verify`);
    }
  }
}

function splitQualified(name: string): [string, string] {
  const dot = name.indexOf(".");
  return [name.slice(0, dot), name.slice(dot + 1)];
}

function printValue(form: ColumnForm, value: Value): string | null {
  if (value === null) return null;
  const column = form.column;
  const own = column.kind;
  switch (form.form.kind) {
    case "canonical":
      return canonical(form.form.as, value);
    case "native":
      return own === undefined ? engineText(value) : canonical(own, value);
    case "text":
      return engineText(value);
  }
}

function canonical(kind: CanonicalKind, value: Value): string | null {
  if (kind === "json") return value === null ? null : jsonbText(value);
  if (kind === "decimal" && typeof value === "number") return canonicalText(kind, BigInt(value));
  if ((kind === "float64" || kind === "float32") && (typeof value === "bigint" || value instanceof Decimal)) return canonicalText(kind, Number(value.toString()));
  if (kind === "string" && typeof value !== "string") return engineText(value);
  return canonicalText(kind, value);
}

/**
 * The value as text. A TIME is printed as the ISO 8601 duration PostgreSQL prints for the
 * interval it becomes (IntervalStyle iso_8601, as dts's sessions set it): `-838:59:59` is
 * `PT-838H-59M-59S`, each field with its sign, zero fields left out, `PT0S` for zero.
 */
function engineText(value: Value): string {
  if (typeof value === "string") {
    const time = /^(-?)(\d+):(\d{2}):(\d{2})(?:\.(\d+))?$/.exec(value);
    if (time !== null) {
      const sign = time[1]!;
      const [hours, minutes, seconds] = [Number(time[2]), Number(time[3]), Number(time[4])];
      const fraction = (time[5] ?? "").replace(/0+$/, "");
      let text = "PT";
      if (hours !== 0) text += `${sign}${hours}H`;
      if (minutes !== 0) text += `${sign}${minutes}M`;
      if (seconds !== 0 || fraction !== "") text += `${sign}${seconds}${fraction === "" ? "" : `.${fraction}`}S`;
      return text === "PT" ? "PT0S" : text;
    }
    return value;
  }
  if (value instanceof Timestamp) return value.toISOString();
  if (Buffer.isBuffer(value)) return value.toString("hex");
  if (value instanceof Decimal) return value.toString();
  if (typeof value === "object" && value !== null) return jsonbText(value);
  return String(value);
}

/** A JSON value as PostgreSQL prints the jsonb it becomes, minified. */
export function jsonbText(value: Value): string {
  if (value === null) return "null";
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "boolean" || typeof value === "bigint") return String(value);
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : new Decimal(value).toString();
  if (value instanceof Decimal) return value.toString();
  if (Array.isArray(value)) return `[${value.map(jsonbText).join(",")}]`;
  if (isRecord(value)) {
    const keys = Object.keys(value).sort((a, b) => {
      const la = Buffer.byteLength(a);
      const lb = Buffer.byteLength(b);
      return la !== lb ? la - lb : Buffer.compare(Buffer.from(a), Buffer.from(b));
    });
    return `{${keys.map((key) => `${JSON.stringify(key)}:${jsonbText(value[key]!)}`).join(",")}}`;
  }
  return JSON.stringify(String(value));
}
