/**
 * The duckdb sink: change events into tables of an embedded DuckDB file.
 *
 * A write has two phases. First every event is admitted, in batch order: its table and columns
 * are made to exist (CREATE TABLE from the first row, ADD COLUMN for a new column, a widening
 * ALTER COLUMN TYPE — see types.ts), and every value is checked against its column. An event
 * with a value its column cannot hold exactly is rejected with the reason and takes no further
 * part; nothing is coerced. The DDL commits on its own, before the data, so that the data
 * transaction holds no DDL and a failed batch leaves at most an empty column behind.
 *
 * Then the admitted rows are written in one transaction, through an appender fed with data
 * chunks filled column by column: a prepared statement costs a call into the native library
 * per row, the appender's own append calls one per value, a chunk one per 2048 values of a
 * column — about twice as fast again as per-value appends, measured. `append` mode appends every change to the table itself, with its
 * operation, commit time and position. `upsert` mode first folds the batch per key, in order —
 * the last change of a key wins, so a key inserted then deleted in one batch ends deleted — then
 * appends the surviving deletes' keys and upserted rows to two temporary tables and applies them
 * with one DELETE ... USING and one INSERT OR REPLACE; the two touch different keys, so their
 * order does not matter. `write` resolves after COMMIT, when the batch is in DuckDB's
 * write-ahead log. Identifiers are always quoted; values only travel in chunks or as bound
 * parameters, never in SQL text.
 *
 * DuckDB compares identifiers ignoring ASCII case, so the sink does too: a row's `ID` is the
 * table's `id` column.
 */
import { resolve } from "node:path";
import { DuckDBDataChunk, DuckDBInstance, type DuckDBConnection, type DuckDBValue } from "@duckdb/node-api";
import type { ChangeEvent } from "../../model/event.js";
import { Timestamp } from "../../model/timestamp.js";
import type { Row, Value } from "../../model/value.js";
import { stringOption } from "../../runtime/connector-options.js";
import {
  ConnectorError,
  type Rejection,
  type SinkBatch,
  type SinkContext,
  type SinkEvent,
  type SinkFactory,
  type SinkWriter,
} from "../../runtime/contracts.js";
import {
  describeValue,
  inferType,
  keyText,
  misfit,
  parseColumnType,
  sqlType,
  toDuckDBValue,
  widening,
  type ColumnType,
} from "./types.js";

export type DuckDBSinkMode = "append" | "upsert";

/** The columns `append` mode adds to every row. */
export const APPEND_COLUMNS = {
  /** insert, update, delete or read (a snapshot row). */
  op: "_op",
  /** The source transaction's commit time (`source.ts`), TIMESTAMPTZ. */
  committedAt: "_committed_at",
  /** The source position's token (a PostgreSQL LSN, a binlog file:offset, a sequence number). */
  position: "_position",
} as const;

const UPSERTS_TABLE = "__dts_upserts";
const DELETES_TABLE = "__dts_deletes";

export const createSink: SinkFactory = (context) => new DuckDBSink(context);

interface Column {
  readonly name: string;
  type: ColumnType;
  /** Position in the table: columns are only ever added at the end. */
  readonly index: number;
}

interface Table {
  /** The name as the catalog spells it. */
  name: string;
  exists: boolean;
  columns: Column[];
  /** By name folded as DuckDB folds it. */
  byName: Map<string, Column>;
  /** The primary key's columns, or null without one. */
  primaryKey: Column[] | null;
  /** Key column name lists (as events spell them) already found to be the primary key. */
  knownKeys: Set<string>;
  /** The last few row shapes admitted the slow way (a delete's differs from an insert's), newest first. */
  shapes: Shape[];
}

/** A row's column names (then the extra entries': metadata or key columns) resolved to columns. */
interface Shape {
  readonly names: readonly string[];
  readonly extraNames: readonly string[];
  readonly columns: readonly Column[];
  readonly extraColumns: readonly Column[];
}

/** One upserted row or one deleted key, in `upsert` mode: values by column index. */
interface Change {
  readonly delete: boolean;
  readonly values: Value[];
}

/** What one batch writes to one table. */
interface Pending {
  readonly table: Table;
  /** `append` mode: every admitted row, in order. */
  readonly rows: Value[][];
  /** `upsert` mode: the last change per key. */
  readonly changes: Map<string, Change>;
  /** Widening checks of stored rows already made in this batch: `index:type` → the rows fit. */
  readonly storedFits: Map<string, boolean>;
}

/** What admitting an event decided: its row's values by column index, or why it is rejected. */
type Admission = { readonly reason: string } | { readonly reason?: undefined; readonly values: Value[] };

const foldedNames = new Map<string, string>();

/** DuckDB folds identifiers by ASCII case only: "A" is "a", but "É" is not "é". */
function fold(name: string): string {
  let folded = foldedNames.get(name);
  if (folded === undefined) {
    folded = name.replace(/[A-Z]+/g, (letters) => letters.toLowerCase());
    // Names repeat (columns, tables); the bound only guards against rows with ever-new names.
    if (foldedNames.size >= 10_000) foldedNames.clear();
    foldedNames.set(name, folded);
  }
  return folded;
}

/** Rows per DuckDB data chunk (its standard vector size). */
const CHUNK_ROWS = 2048;
/** Row shapes remembered per table. */
const MAX_SHAPES = 4;

function quote(identifier: string): string {
  return `"${identifier.replaceAll('"', '""')}"`;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// ---------------------------------------------------------------- shared database files

/**
 * DuckDB lets one process open a file once, so sinks writing to the same file share an
 * instance, each with its own connection. The last to close checkpoints and closes it.
 */
interface SharedInstance {
  readonly instance: DuckDBInstance;
  users: number;
}

const openInstances = new Map<string, Promise<SharedInstance>>();
const closingInstances = new Map<string, Promise<void>>();

async function acquireInstance(file: string): Promise<DuckDBInstance> {
  await closingInstances.get(file);
  let shared = openInstances.get(file);
  if (shared === undefined) {
    shared = DuckDBInstance.create(file).then((instance) => ({ instance, users: 0 }));
    openInstances.set(file, shared);
    shared.catch(() => openInstances.delete(file));
  }
  const entry = await shared;
  entry.users++;
  return entry.instance;
}

async function releaseInstance(file: string): Promise<void> {
  const shared = openInstances.get(file);
  if (shared === undefined) return;
  const entry = await shared;
  if (--entry.users > 0) return;
  openInstances.delete(file);
  const closing = (async () => {
    try {
      const connection = await entry.instance.connect();
      try {
        await connection.run("CHECKPOINT");
      } finally {
        connection.closeSync();
      }
    } finally {
      entry.instance.closeSync();
    }
  })();
  closingInstances.set(file, closing.then(() => undefined, () => undefined));
  try {
    await closing;
  } finally {
    closingInstances.delete(file);
  }
}

// ---------------------------------------------------------------- the sink

interface Settings {
  /** As written in the pipeline. */
  readonly path: string;
  /** The path as DuckDB opens it: resolved against the pipeline file's folder, or `:memory:`. */
  readonly file: string;
  readonly table: string | null;
  readonly mode: DuckDBSinkMode;
}

function readSettings(context: SinkContext): Settings {
  const connector = `duckdb sink "${context.name}"`;
  const path = stringOption(context.options, connector, "path");
  const table = stringOption(context.options, connector, "table", undefined);
  const mode = stringOption(context.options, connector, "mode", "upsert");
  if (path === "") throw new ConnectorError(`${connector}: option path must name a file`, false);
  if (table === "") throw new ConnectorError(`${connector}: option table must not be empty`, false);
  if (mode !== "append" && mode !== "upsert") throw new ConnectorError(`${connector}: option mode must be "append" or "upsert", found ${JSON.stringify(mode)}`, false);
  return {
    path,
    file: path === ":memory:" ? path : resolve(context.baseDir ?? ".", path),
    table: table ?? null,
    mode,
  };
}

class DuckDBSink implements SinkWriter {
  private readonly settings: Settings;
  private connection: DuckDBConnection | null = null;
  private instance: DuckDBInstance | null = null;
  /** The database's catalog name, to qualify tables past the temporary catalog. */
  private catalog = "";
  /** Tables as this sink knows them, by folded name; dropped after a failed write. */
  private readonly tables = new Map<string, Table>();
  /** Columns already warned about, so a fallback is logged once. */
  private readonly warned = new Set<string>();

  constructor(private readonly context: SinkContext) {
    this.settings = readSettings(context);
  }

  async start(): Promise<void> {
    const { file, path } = this.settings;
    try {
      this.instance = file === ":memory:" ? await DuckDBInstance.create(file) : await acquireInstance(file);
      this.connection = await this.instance.connect();
      const reader = await this.connection.runAndReadAll("SELECT current_database()");
      this.catalog = String(reader.getRows()[0]![0]);
    } catch (error) {
      await this.close().catch(() => undefined);
      throw new ConnectorError(`duckdb sink "${this.context.name}": cannot open ${JSON.stringify(path)}: ${errorText(error)}`, false, { cause: error });
    }
    this.context.log.info("duckdb sink opened", { path, file, mode: this.settings.mode });
  }

  async write(batch: SinkBatch): Promise<readonly Rejection[]> {
    const connection = this.connection;
    if (connection === null) throw new ConnectorError(`duckdb sink "${this.context.name}" is not started`, false);
    const rejections: Rejection[] = [];
    const pending = new Map<Table, Pending>();
    try {
      for (let index = 0; index < batch.events.length; index++) {
        const reason = await this.admit(batch.events[index]!, pending);
        if (reason !== undefined) rejections.push({ index, reason });
      }
    } catch (error) {
      this.tables.clear();
      throw this.failure("preparing tables", error);
    }
    if (pending.size === 0) return rejections;
    await this.run("BEGIN TRANSACTION");
    try {
      for (const item of pending.values()) {
        if (this.settings.mode === "append") await this.appendRows(item);
        else await this.applyChanges(item);
      }
      await this.run("COMMIT");
    } catch (error) {
      await this.run("ROLLBACK").catch(() => undefined);
      this.tables.clear();
      throw this.failure(`writing ${batch.events.length - rejections.length} events`, error);
    }
    return rejections;
  }

  async close(): Promise<void> {
    const { connection, instance } = this;
    this.connection = null;
    this.instance = null;
    this.tables.clear();
    if (connection !== null) connection.closeSync();
    if (instance === null) return;
    if (this.settings.file === ":memory:") instance.closeSync();
    else await releaseInstance(this.settings.file);
  }

  // -------------------------------------------------------------- admission

  /** Makes the event's table and columns fit it and records its row; returns why not, if not. */
  private async admit(sinkEvent: SinkEvent, pending: Map<Table, Pending>): Promise<string | undefined> {
    const { event } = sinkEvent;
    const tableName = this.settings.table ?? sinkEvent.target.replaceAll(".", "_");
    if (tableName === "") return "the event has no target table";
    const table = this.tables.get(fold(tableName)) ?? (await this.loadTable(tableName));
    let item = pending.get(table);
    if (item === undefined) {
      item = { table, rows: [], changes: new Map(), storedFits: new Map() };
      pending.set(table, item);
    }
    const admission = this.settings.mode === "append" ? await this.admitAppend(event, item) : await this.admitUpsert(event, item);
    return admission.reason;
  }

  private async admitAppend(event: ChangeEvent, item: Pending): Promise<Admission> {
    const image = event.after ?? event.before ?? event.key;
    const metadata: [string, Value][] = [
      [APPEND_COLUMNS.op, event.op],
      [APPEND_COLUMNS.committedAt, new Timestamp(event.source.ts.epochMicros, true)],
      [APPEND_COLUMNS.position, event.source.position.token],
    ];
    const admission = await this.fitColumns(item, image, metadata, null);
    if (admission.reason === undefined) item.rows.push(admission.values);
    return admission;
  }

  private async admitUpsert(event: ChangeEvent, item: Pending): Promise<Admission> {
    const { table } = item;
    const keyNames = Object.keys(event.key);
    if (keyNames.length === 0) {
      return { reason: `table ${quote(table.name)}: the event has no key, which upsert mode needs (mode "append" keeps changes without one)` };
    }
    for (const name of keyNames) {
      if (event.key[name] === null) return { reason: `table ${quote(table.name)}: key column ${quote(name)} is null` };
    }
    if (table.exists) {
      const reason = this.checkKey(table, keyNames);
      if (reason !== undefined) return { reason };
    }
    const isDelete = event.op === "delete";
    const image = isDelete ? event.key : event.after;
    if (image === null) return { reason: `table ${quote(table.name)}: the ${event.op} event has no row image (after)` };
    // The key fills in key columns the row lacks (a map may have left them out).
    const missing: [string, Value][] = [];
    for (const name of keyNames) {
      if (Object.hasOwn(image, name)) continue;
      if (!Object.keys(image).some((column) => fold(column) === fold(name))) missing.push([name, event.key[name]!]);
    }
    const admission = await this.fitColumns(item, image, missing, keyNames);
    if (admission.reason !== undefined) return admission;
    const primaryKey = table.primaryKey!;
    const key = this.keyOf(primaryKey, admission.values);
    if (key === undefined) return { reason: `table ${quote(table.name)}: a key column of the row is null` };
    // An update that moved the row to another key removes the old one.
    if (event.op === "update" && event.before !== null) {
      const before = this.keyValues(primaryKey, event.before);
      const oldKey = before === undefined ? undefined : this.keyOf(primaryKey, before);
      if (before !== undefined && oldKey !== undefined && oldKey !== key) item.changes.set(oldKey, { delete: true, values: before });
    }
    item.changes.set(key, { delete: isDelete, values: admission.values });
    return admission;
  }

  /** Why the event's key columns are not the table's primary key, if they are not. */
  private checkKey(table: Table, keyNames: readonly string[]): string | undefined {
    const spelled = keyNames.join("\u0000");
    if (table.knownKeys.has(spelled)) return undefined;
    if (table.primaryKey === null) {
      throw new ConnectorError(
        `duckdb sink "${this.context.name}": table ${quote(table.name)} in ${JSON.stringify(this.settings.path)} has no primary key, which upsert mode needs; add one, or use mode "append"`,
        false,
      );
    }
    const expected = table.primaryKey.map((column) => fold(column.name)).sort();
    const given = keyNames.map(fold).sort();
    if (expected.join("\u0000") !== given.join("\u0000")) {
      return `table ${quote(table.name)}: the event's key (${keyNames.map(quote).join(", ")}) is not the table's primary key (${table.primaryKey.map((c) => quote(c.name)).join(", ")})`;
    }
    table.knownKeys.add(spelled);
    return undefined;
  }

  /** The key columns' values of a row, by column index, when it has all of them and they fit. */
  private keyValues(primaryKey: readonly Column[], row: Row): Value[] | undefined {
    const values: Value[] = [];
    for (const column of primaryKey) {
      const name = Object.hasOwn(row, column.name) ? column.name : Object.keys(row).find((candidate) => fold(candidate) === fold(column.name));
      const value = name === undefined ? null : row[name]!;
      if (value === null || misfit(column.type, value) !== undefined) return undefined;
      values[column.index] = value;
    }
    return values;
  }

  private keyOf(primaryKey: readonly Column[], values: readonly Value[]): string | undefined {
    if (primaryKey.length === 1) {
      const value = values[primaryKey[0]!.index] ?? null;
      return value === null ? undefined : keyText(primaryKey[0]!.type, value);
    }
    const parts: string[] = [];
    for (const column of primaryKey) {
      const value = values[column.index] ?? null;
      if (value === null) return undefined;
      parts.push(keyText(column.type, value));
    }
    return JSON.stringify(parts);
  }

  /**
   * The row's values by column index, once its values fit the table: the table is created, the
   * missing columns added and the columns that need it widened — only when every value fits, so
   * that a rejected event changes nothing. `extra` are entries beyond the row's own (append
   * mode's metadata; key columns the row lacks). A row of the same shape as the last one skips
   * straight to checking its values.
   */
  private async fitColumns(item: Pending, image: Row, extra: readonly [string, Value][], keyNames: readonly string[] | null): Promise<Admission> {
    const { table } = item;
    const names = Object.keys(image);
    const shape = table.shapes.find((known) => sameNames(known.names, names) && sameExtraNames(known.extraNames, extra));
    if (shape !== undefined) {
      const values: Value[] = new Array<Value>(table.columns.length).fill(null);
      let fits = true;
      for (let i = 0; i < names.length && fits; i++) {
        const value = image[names[i]!] ?? null;
        const column = shape.columns[i]!;
        if (value !== null && misfit(column.type, value) !== undefined) fits = false;
        values[column.index] = value;
      }
      for (let i = 0; i < extra.length && fits; i++) {
        const value = extra[i]![1];
        const column = shape.extraColumns[i]!;
        if (value !== null && misfit(column.type, value) !== undefined) fits = false;
        values[column.index] = value;
      }
      if (fits) return { values };
    }
    const entries: (readonly [string, Value])[] = [...extra, ...names.map((name): [string, Value] => [name, image[name] ?? null])];
    if (this.settings.mode === "append") {
      for (const name of Object.values(APPEND_COLUMNS)) {
        if (names.some((column) => fold(column) === name)) {
          return { reason: `table ${quote(table.name)}: the row has a column named ${quote(name)}, which append mode adds itself` };
        }
      }
      // The row's columns first, then the metadata.
      entries.push(...entries.splice(0, extra.length));
    }
    const seen = new Map<string, string>();
    const additions: { name: string; type: ColumnType; warning?: string }[] = [];
    const widenings: { column: Column; to: ColumnType }[] = [];
    for (const [name, value] of entries) {
      if (name === "") return { reason: `table ${quote(table.name)}: the row has a column with an empty name` };
      const folded = fold(name);
      const twin = seen.get(folded);
      if (twin !== undefined) {
        return { reason: `table ${quote(table.name)}: the row's columns ${quote(twin)} and ${quote(name)} are one column in DuckDB, which ignores case in names` };
      }
      seen.set(folded, name);
      const column = table.byName.get(folded);
      if (column === undefined) {
        additions.push({ name, ...inferType(value) });
        continue;
      }
      if (value === null) continue;
      const detail = misfit(column.type, value);
      if (detail === undefined) continue;
      const isKey = table.primaryKey?.includes(column) ?? false;
      const to = isKey ? undefined : await this.widen(item, column, value);
      if (to === undefined) {
        return {
          reason: `table ${quote(table.name)}, column ${quote(column.name)} (${sqlType(column.type)}) cannot hold ${describeValue(value)}${detail === "" ? "" : `: ${detail}`}`,
        };
      }
      widenings.push({ column, to });
    }
    if (!table.exists) await this.createTable(table, additions, keyNames ?? []);
    else {
      for (const addition of additions) await this.addColumn(table, addition.name, addition.type);
      for (const { column, to } of widenings) await this.alterColumn(table, column, to);
    }
    for (const addition of additions) {
      if (addition.warning !== undefined) this.warnOnce(table, addition.name, addition.warning);
    }
    const columnOf = (name: string) => table.byName.get(fold(name))!;
    table.shapes.unshift({ names, extraNames: extra.map(([name]) => name), columns: names.map(columnOf), extraColumns: extra.map(([name]) => columnOf(name)) });
    if (table.shapes.length > MAX_SHAPES) table.shapes.pop();
    const values: Value[] = new Array<Value>(table.columns.length).fill(null);
    for (const [name, value] of entries) values[columnOf(name).index] = value;
    return { values };
  }

  /** The wider type the column may take to hold `value`, when the stored rows and the batch's rows fit it too. */
  private async widen(item: Pending, column: Column, value: Value): Promise<ColumnType | undefined> {
    const candidate = widening(column.type, value);
    if (candidate === undefined || misfit(candidate.to, value) !== undefined) return undefined;
    const earlier = this.settings.mode === "append" ? item.rows : [...item.changes.values()].map((change) => change.values);
    for (const values of earlier) {
      const stored = values[column.index] ?? null;
      if (stored !== null && misfit(candidate.to, stored) !== undefined) return undefined;
    }
    if (candidate.offenders !== null) {
      const check = `${column.index}:${sqlType(candidate.to)}`;
      let fits = item.storedFits.get(check);
      if (fits === undefined) {
        const rows = await this.query(`SELECT count(*) FROM ${this.qualified(item.table)} WHERE ${candidate.offenders(quote(column.name))}`, []);
        fits = rows[0]![0] === 0n;
        item.storedFits.set(check, fits);
      }
      if (!fits) return undefined;
    }
    return candidate.to;
  }

  private warnOnce(table: Table, column: string, warning: string): void {
    const id = `${fold(table.name)}\u0000${fold(column)}`;
    if (this.warned.has(id)) return;
    this.warned.add(id);
    this.context.log.warn(`duckdb sink: table ${quote(table.name)}, column ${quote(column)}: ${warning}`, { table: table.name, column });
  }

  // -------------------------------------------------------------- the catalog

  private qualified(table: Table | string): string {
    return `${quote(this.catalog)}.main.${quote(typeof table === "string" ? table : table.name)}`;
  }

  /** The table as the catalog has it, read once and then kept up to date by this sink's DDL. */
  private async loadTable(name: string): Promise<Table> {
    const folded = fold(name);
    const table: Table = { name, exists: false, columns: [], byName: new Map(), primaryKey: null, knownKeys: new Set(), shapes: [] };
    const tables = await this.query(`SELECT table_name FROM duckdb_tables() WHERE database_name = $1 AND schema_name = 'main'`, [this.catalog]);
    const found = tables.map((row) => String(row[0])).find((candidate) => fold(candidate) === folded);
    if (found !== undefined) {
      table.name = found;
      table.exists = true;
      const columns = await this.query(
        `SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = $1 AND schema_name = 'main' AND table_name = $2 ORDER BY column_index`,
        [this.catalog, found],
      );
      for (const [columnName, dataType] of columns) this.remember(table, String(columnName), parseColumnType(String(dataType)));
      const keys = await this.query(
        `SELECT constraint_column_names FROM duckdb_constraints() WHERE database_name = $1 AND schema_name = 'main' AND table_name = $2 AND constraint_type = 'PRIMARY KEY'`,
        [this.catalog, found],
      );
      if (keys.length > 0) {
        const names = keys[0]![0] as unknown as { items: readonly DuckDBValue[] };
        table.primaryKey = names.items.map((keyName) => table.byName.get(fold(String(keyName)))!);
      }
    }
    this.tables.set(folded, table);
    return table;
  }

  private remember(table: Table, name: string, type: ColumnType): Column {
    const column: Column = { name, type, index: table.columns.length };
    table.columns.push(column);
    table.byName.set(fold(name), column);
    return column;
  }

  private async createTable(table: Table, columns: readonly { name: string; type: ColumnType }[], keyNames: readonly string[]): Promise<void> {
    const definitions = columns.map((column) => `${quote(column.name)} ${sqlType(column.type)}`);
    if (keyNames.length > 0) definitions.push(`PRIMARY KEY (${keyNames.map(quote).join(", ")})`);
    await this.run(`CREATE TABLE IF NOT EXISTS ${this.qualified(table)} (${definitions.join(", ")})`);
    for (const column of columns) this.remember(table, column.name, column.type);
    table.exists = true;
    if (keyNames.length > 0) table.primaryKey = keyNames.map((name) => table.byName.get(fold(name))!);
    this.context.log.info(`duckdb sink: created table ${quote(table.name)}`, {
      table: table.name,
      columns: columns.map((column) => `${column.name} ${sqlType(column.type)}`),
      primaryKey: keyNames,
    });
  }

  private async addColumn(table: Table, name: string, type: ColumnType): Promise<void> {
    await this.run(`ALTER TABLE ${this.qualified(table)} ADD COLUMN ${quote(name)} ${sqlType(type)}`);
    this.remember(table, name, type);
    this.context.log.info(`duckdb sink: added column ${quote(name)} ${sqlType(type)} to table ${quote(table.name)}`, { table: table.name, column: name });
  }

  private async alterColumn(table: Table, column: Column, to: ColumnType): Promise<void> {
    await this.run(`ALTER TABLE ${this.qualified(table)} ALTER COLUMN ${quote(column.name)} TYPE ${sqlType(to)}`);
    this.context.log.info(`duckdb sink: widened column ${quote(column.name)} of table ${quote(table.name)} from ${sqlType(column.type)} to ${sqlType(to)}`, {
      table: table.name,
      column: column.name,
    });
    column.type = to;
  }

  // -------------------------------------------------------------- writing

  private async appendRows(item: Pending): Promise<void> {
    await this.appendChunks(item.table.name, this.catalog, item.table.columns, item.rows);
  }

  private async applyChanges(item: Pending): Promise<void> {
    const { table } = item;
    const primaryKey = table.primaryKey!;
    const target = this.qualified(table);
    const deletes: Value[][] = [];
    const upserts: Value[][] = [];
    for (const change of item.changes.values()) (change.delete ? deletes : upserts).push(change.values);
    if (deletes.length > 0) {
      const keyList = primaryKey.map((column) => quote(column.name)).join(", ");
      await this.run(`CREATE OR REPLACE TEMP TABLE ${quote(DELETES_TABLE)} AS SELECT ${keyList} FROM ${target} LIMIT 0`);
      await this.appendChunks(DELETES_TABLE, "temp", primaryKey, deletes);
      const match = primaryKey.map((column) => `target.${quote(column.name)} = gone.${quote(column.name)}`).join(" AND ");
      await this.run(`DELETE FROM ${target} AS target USING temp.main.${quote(DELETES_TABLE)} AS gone WHERE ${match}`);
      await this.run(`DROP TABLE temp.main.${quote(DELETES_TABLE)}`);
    }
    if (upserts.length > 0) {
      const columnList = table.columns.map((column) => quote(column.name)).join(", ");
      await this.run(`CREATE OR REPLACE TEMP TABLE ${quote(UPSERTS_TABLE)} AS SELECT ${columnList} FROM ${target} LIMIT 0`);
      await this.appendChunks(UPSERTS_TABLE, "temp", table.columns, upserts);
      await this.run(`INSERT OR REPLACE INTO ${target} (${columnList}) SELECT ${columnList} FROM temp.main.${quote(UPSERTS_TABLE)}`);
      await this.run(`DROP TABLE temp.main.${quote(UPSERTS_TABLE)}`);
    }
  }

  /**
   * Appends rows (values by column index) to a table whose columns are `columns`, in that order,
   * through data chunks filled column by column — with the appender's own column types, so
   * that the chunk matches the table exactly (a JSON column included).
   */
  private async appendChunks(table: string, catalog: string, columns: readonly Column[], rows: readonly Value[][]): Promise<void> {
    const appender = await this.connection!.createAppender(table, "main", catalog);
    try {
      if (appender.columnCount !== columns.length) {
        // Another sink of this process sharing the file changed the table: read it again and retry.
        throw new ConnectorError(`duckdb sink "${this.context.name}": table ${quote(table)} has ${appender.columnCount} columns, not the ${columns.length} this sink knew`, true);
      }
      const types = columns.map((_, i) => appender.columnType(i));
      for (let start = 0; start < rows.length; start += CHUNK_ROWS) {
        const count = Math.min(CHUNK_ROWS, rows.length - start);
        const chunk = DuckDBDataChunk.create(types, count);
        for (let c = 0; c < columns.length; c++) {
          const { type, index } = columns[c]!;
          const vector = chunk.getColumnVector(c);
          for (let r = 0; r < count; r++) vector.setItem(r, toDuckDBValue(type, rows[start + r]![index] ?? null));
          vector.flush();
        }
        appender.appendDataChunk(chunk);
      }
      appender.flushSync();
    } catch (error) {
      appender.clear();
      throw error;
    } finally {
      appender.closeSync();
    }
  }

  private async run(sql: string): Promise<void> {
    await this.connection!.run(sql);
  }

  private async query(sql: string, values: DuckDBValue[]): Promise<DuckDBValue[][]> {
    const reader = await this.connection!.runAndReadAll(sql, values);
    return reader.getRows() as DuckDBValue[][];
  }

  /**
   * A DuckDB error as a ConnectorError. A write-write conflict with another connection and an
   * I/O error (a full disk) may pass, so they are retried; anything else would fail again.
   */
  private failure(doing: string, error: unknown): ConnectorError {
    if (error instanceof ConnectorError) return error;
    const text = errorText(error);
    const retriable = /^(TransactionContext Error|IO Error)/.test(text) || /conflict/i.test(text);
    return new ConnectorError(`duckdb sink "${this.context.name}" (${this.settings.path}): ${doing} failed: ${text}`, retriable, { cause: error });
  }
}

function sameExtraNames(names: readonly string[], extra: readonly (readonly [string, Value])[]): boolean {
  if (names.length !== extra.length) return false;
  for (let i = 0; i < names.length; i++) if (names[i] !== extra[i]![0]) return false;
  return true;
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
