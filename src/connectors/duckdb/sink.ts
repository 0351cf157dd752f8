/**
 * The duckdb sink: change events into tables of an embedded DuckDB file.
 *
 * A write has three phases. First the batch's schema changes (`SinkBatch.schemaChanges`) are
 * applied to their tables (schema-changes.ts). Then every event is admitted, in batch order: its
 * table and columns are made to exist (CREATE TABLE from the first row, ADD COLUMN for a new
 * column, a widening ALTER COLUMN TYPE — see types.ts), and every value is checked against its
 * column. An event with a value its column cannot hold exactly is rejected with the reason and
 * takes no further part; nothing is coerced. The DDL commits on its own, before the data, so that
 * the data transaction holds no DDL and a failed batch leaves at most an empty column behind.
 *
 * Then the admitted rows are written in one transaction, through an appender fed with data
 * chunks filled column by column: a prepared statement costs a call into the native library
 * per row, the appender's own append calls one per value, a chunk one per 2048 values of a
 * column — about twice as fast again as per-value appends, measured. `append` mode appends every
 * change to the table itself, with its operation, commit time, position and the columns the
 * change left out (`_absent`). `upsert` mode first folds the batch per key, in order
 * (key-changes.ts) — the last change of a key wins, and an update that left columns out merges
 * into the key's earlier change — then, in the transaction: checks that the stored rows the
 * partial updates need are there (rejecting the events whose are not), builds the rows of key
 * changes from the stored rows they moved, deletes, and upserts each group of rows with the same
 * present columns with one INSERT … ON CONFLICT DO UPDATE of those columns only. Absent is not
 * null: no column a change left out is ever written. `write` resolves after COMMIT, when the
 * batch is in DuckDB's write-ahead log. Identifiers are always quoted; values only travel in
 * chunks or as bound parameters, never in SQL text.
 *
 * Tables are named by names.ts: `shop.orders` is `"shop"."orders"`. DuckDB compares identifiers
 * ignoring ASCII case, so the sink does too: a row's `ID` is the table's `id` column.
 */
import { resolve } from "node:path";
import { DuckDBDataChunk, DuckDBInstance, type DuckDBConnection, type DuckDBValue } from "@duckdb/node-api";
import type { ChangeEvent } from "../../model/event.js";
import { encodeJson } from "../../model/json.js";
import { Timestamp } from "../../model/timestamp.js";
import type { Row, Value } from "../../model/value.js";
import { optionsOf } from "../options.js";
import { sinkSpec } from "./spec.js";
import {
  ConnectorError,
  type Rejection,
  type SinkBatch,
  type SinkContext,
  type SinkEvent,
  type SinkFactory,
  type SinkSchemaChange,
  type SinkWriter,
  type TableSchema,
} from "../../runtime/contracts.js";
import { ABSENT, isPresent, KeyChanges, type Cell, type KeyChange } from "./key-changes.js";
import { DEFAULT_SCHEMA, fold, legacyTableFor, qualifiedName, quoteIdentifier as quote, tableFor, tableKey, type DuckDBTableName } from "./names.js";
import { describeConflict, planSchemaChange, type Conflict } from "./schema-changes.js";
import { sourceColumnType } from "./source-types.js";
import {
  describeValue,
  inferType,
  JSON_TYPE,
  keyText,
  misfit,
  parseColumnType,
  sqlType,
  TEXT_LIST,
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
  /**
   * VARCHAR[]: the table's columns the change left out (a value the source did not send, such as
   * PostgreSQL's unchanged TOASTed values; every column but the key of a delete that carries only
   * the key), empty when it left none out. Their cells are NULL in the row but mean "not in this
   * change", not NULL. NULL in rows written before the column existed.
   */
  absent: "_absent",
} as const;

const RESERVED_APPEND_COLUMNS: ReadonlySet<string> = new Set(Object.values(APPEND_COLUMNS));

/** Staging tables in the temporary catalog, made and dropped within one write. */
const STAGING = {
  upserts: "__dts_upserts",
  deletes: "__dts_deletes",
  keys: "__dts_keys",
  moves: "__dts_moves",
  moved: "__dts_moved",
} as const;
/** Columns of the staging tables beside the table's own. */
const ORDINAL_COLUMN = "__dts_n";
const ABSENT_COLUMN = "__dts_absent";
const FROM_PREFIX = "__dts_from_";

export const createSink: SinkFactory = (context) => new DuckDBSink(context);

interface Column {
  readonly name: string;
  type: ColumnType;
  /** Position in the table: columns are only ever added at the end. */
  readonly index: number;
}

interface Table {
  /** The name as the catalog spells it (or as it is to be created). */
  name: DuckDBTableName;
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

/** What one batch writes to one table. */
interface Pending {
  readonly table: Table;
  /** `append` mode: every admitted row, in order. */
  readonly rows: Cell[][];
  /** `upsert` mode: the final change per key. */
  readonly changes: KeyChanges;
  /** Widening checks of stored rows already made in this batch: `index:type` → the rows fit. */
  readonly storedFits: Map<string, boolean>;
}

/** What admitting an event decided: its row's cells by column index, or why it is rejected. */
type Admission = { readonly reason: string } | { readonly reason?: undefined; readonly values: Cell[] };

/** Rows per DuckDB data chunk (its standard vector size). */
const CHUNK_ROWS = 2048;
/** Row shapes remembered per table. */
const MAX_SHAPES = 4;

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A string as a SQL literal (for column names compared as data; values never go into SQL text). */
function literal(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
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
  // Checked and defaulted once against the spec (connectors/options.ts); an empty name is not
  // something the spec's types can refuse.
  const { path, table, mode } = optionsOf(sinkSpec, context.options, `sink ${context.name}`);
  if (path === "") throw new ConnectorError(`${connector}: option path must name a file`, false);
  if (table === "") throw new ConnectorError(`${connector}: option table must not be empty`, false);
  return {
    path,
    file: path === ":memory:" ? path : resolve(context.baseDir ?? ".", path),
    table: table ?? null,
    mode,
  };
}

/** A staging table's column: a table column's type at a place in the staged rows. */
interface StagedColumn {
  readonly name: string;
  readonly type: ColumnType;
  readonly index: number;
}

class DuckDBSink implements SinkWriter {
  private readonly settings: Settings;
  private connection: DuckDBConnection | null = null;
  private instance: DuckDBInstance | null = null;
  /** The database's catalog name, to qualify tables past the temporary catalog. */
  private catalog = "";
  /** Tables as this sink knows them, by `tableKey`; dropped after a failed write. */
  private readonly tables = new Map<string, Table>();
  /** The target that first wrote to each table (by `tableKey`): another target may not share it. */
  private readonly targets = new Map<string, string>();
  /** The declared schemas of source tables (`schema.table`), asked once of the source. */
  private readonly sourceSchemas = new Map<string, Promise<TableSchema | undefined>>();
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
      for (const change of batch.schemaChanges ?? []) await this.applySchemaChange(change);
    } catch (error) {
      this.tables.clear();
      throw this.failure("applying schema changes", error);
    }
    try {
      for (let index = 0; index < batch.events.length; index++) {
        const reason = await this.admit(batch.events[index]!, index, pending);
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
        else await this.applyChanges(item, batch, rejections);
      }
      await this.run("COMMIT");
    } catch (error) {
      await this.run("ROLLBACK").catch(() => undefined);
      this.tables.clear();
      throw this.failure(`writing ${batch.events.length - rejections.length} events`, error);
    }
    return rejections.sort((a, b) => a.index - b.index);
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

  /** The table the event's target maps to in this sink, or why there is none. */
  private async tableOf(target: string): Promise<Table | string> {
    const name = tableFor(target, this.settings.table);
    if (name.table === "" || name.schema === "") return `the event's target ${JSON.stringify(target)} has an empty schema or table name`;
    const key = tableKey(name);
    if (this.settings.table === null) {
      const first = this.targets.get(key);
      if (first !== undefined && first !== target) {
        return (
          `the targets ${JSON.stringify(first)} and ${JSON.stringify(target)} both name DuckDB table ${qualifiedName(name)} ` +
          `(DuckDB ignores case in names, and a target without a schema is in "${DEFAULT_SCHEMA}"); send one of them to another table with a route step`
        );
      }
      this.targets.set(key, target);
    }
    return this.tables.get(key) ?? (await this.loadTable(name, target));
  }

  /** Makes the event's table and columns fit it and records its row; returns why not, if not. */
  private async admit(sinkEvent: SinkEvent, index: number, pending: Map<Table, Pending>): Promise<string | undefined> {
    const { event } = sinkEvent;
    const table = await this.tableOf(sinkEvent.target);
    if (typeof table === "string") return table;
    let item = pending.get(table);
    if (item === undefined) {
      item = { table, rows: [], changes: new KeyChanges(), storedFits: new Map() };
      pending.set(table, item);
    }
    const admission = this.settings.mode === "append" ? await this.admitAppend(sinkEvent, item) : await this.admitUpsert(sinkEvent, index, item);
    return admission.reason;
  }

  private async admitAppend(sinkEvent: SinkEvent, item: Pending): Promise<Admission> {
    const { event } = sinkEvent;
    const image = event.after ?? event.before ?? event.key;
    const metadata: [string, Value][] = [
      [APPEND_COLUMNS.op, event.op],
      [APPEND_COLUMNS.committedAt, new Timestamp(event.source.ts.epochMicros, true)],
      [APPEND_COLUMNS.position, event.source.position.token],
      [APPEND_COLUMNS.absent, []],
    ];
    const admission = await this.fitColumns(item, sinkEvent, image, metadata, null);
    if (admission.reason !== undefined) return admission;
    const { table } = item;
    const cells = admission.values;
    const absent: string[] = [];
    for (const column of table.columns) if (cells[column.index] === ABSENT) absent.push(column.name);
    cells[table.byName.get(APPEND_COLUMNS.absent)!.index] = absent;
    item.rows.push(cells);
    return admission;
  }

  private async admitUpsert(sinkEvent: SinkEvent, index: number, item: Pending): Promise<Admission> {
    const { event } = sinkEvent;
    const { table } = item;
    const where = qualifiedName(table.name);
    const keyNames = Object.keys(event.key);
    if (keyNames.length === 0) {
      return { reason: `table ${where}: the event has no key, which upsert mode needs (mode "append" keeps changes without one)` };
    }
    for (const name of keyNames) {
      if (event.key[name] === null) return { reason: `table ${where}: key column ${quote(name)} is null` };
    }
    if (table.exists) {
      const reason = this.checkKey(table, keyNames);
      if (reason !== undefined) return { reason };
    }
    const isDelete = event.op === "delete";
    const image = isDelete ? event.key : event.after;
    if (image === null) return { reason: `table ${where}: the ${event.op} event has no row image (after)` };
    // The key fills in key columns the row lacks (a map may have left them out).
    const missing: [string, Value][] = [];
    for (const name of keyNames) {
      if (Object.hasOwn(image, name)) continue;
      if (!Object.keys(image).some((column) => fold(column) === fold(name))) missing.push([name, event.key[name]!]);
    }
    const admission = await this.fitColumns(item, sinkEvent, image, missing, keyNames);
    if (admission.reason !== undefined) return admission;
    const cells = admission.values;
    const primaryKey = table.primaryKey!;
    const key = this.keyOf(primaryKey, cells);
    if (key === undefined) return { reason: `table ${where}: a key column of the row is null` };
    const { changes } = item;
    const columns = table.columns.length;
    switch (event.op) {
      case "delete":
        changes.delete(key, cells, index);
        return admission;
      case "insert":
      case "read":
        changes.insert(key, cells, index);
        return admission;
      case "update": {
        // An update that moved the row to another key: `before` holds the old key.
        const before = event.before === null ? undefined : this.keyValues(primaryKey, event.before);
        const oldKey = before === undefined ? undefined : this.keyOf(primaryKey, before);
        if (before !== undefined && oldKey !== undefined && oldKey !== key) {
          if (changes.move(oldKey, before, key, cells, columns, index)) return admission;
          return { reason: this.absentReason(table, event, cells, "the row with its old key was deleted earlier in the same batch") };
        }
        if (changes.update(key, cells, columns, index)) return admission;
        return { reason: this.absentReason(table, event, cells, "the row was deleted earlier in the same batch") };
      }
      default: {
        const unreachable: never = event.op;
        return unreachable;
      }
    }
  }

  /**
   * Why an update that left columns out cannot be written: the stored row to keep them from is
   * not there (`situation`), and writing NULL in their place would lose them.
   */
  private absentReason(table: Table, event: ChangeEvent, cells: readonly Cell[], situation: string): string {
    const absent = table.columns.filter((column) => !isPresent(cells[column.index])).map((column) => quote(column.name));
    const sourceTable = `${event.source.schema || event.source.db}.${event.source.table}`;
    return (
      `table ${qualifiedName(table.name)}: the update of key ${keyDescription(event.key)} leaves out column${absent.length === 1 ? "" : "s"} ${absent.join(", ")} ` +
      `(values the source did not send because they did not change, such as PostgreSQL's unchanged TOASTed values), and ${situation}, so there is no stored value to keep; ` +
      `nothing was written for it, as NULL would lose the values. Make the source send whole rows (PostgreSQL: ALTER TABLE ${sourceTable} REPLICA IDENTITY FULL) ` +
      `or copy the table again with a snapshot`
    );
  }

  /** Why the event's key columns are not the table's primary key, if they are not. */
  private checkKey(table: Table, keyNames: readonly string[]): string | undefined {
    const spelled = keyNames.join("\u0000");
    if (table.knownKeys.has(spelled)) return undefined;
    if (table.primaryKey === null) {
      throw new ConnectorError(
        `duckdb sink "${this.context.name}": table ${qualifiedName(table.name)} in ${JSON.stringify(this.settings.path)} has no primary key, which upsert mode needs; add one, or use mode "append"`,
        false,
      );
    }
    const expected = table.primaryKey.map((column) => fold(column.name)).sort();
    const given = keyNames.map(fold).sort();
    if (expected.join("\u0000") !== given.join("\u0000")) {
      return `table ${qualifiedName(table.name)}: the event's key (${keyNames.map(quote).join(", ")}) is not the table's primary key (${table.primaryKey.map((c) => quote(c.name)).join(", ")})`;
    }
    table.knownKeys.add(spelled);
    return undefined;
  }

  /** The key columns' values of a row, by column index, when it has all of them and they fit. */
  private keyValues(primaryKey: readonly Column[], row: Row): Cell[] | undefined {
    const values: Cell[] = [];
    for (const column of primaryKey) {
      const name = Object.hasOwn(row, column.name) ? column.name : Object.keys(row).find((candidate) => fold(candidate) === fold(column.name));
      const value = name === undefined ? null : row[name]!;
      if (value === null || misfit(column.type, value) !== undefined) return undefined;
      values[column.index] = value;
    }
    return values;
  }

  private keyOf(primaryKey: readonly Column[], values: readonly Cell[]): string | undefined {
    if (primaryKey.length === 1) {
      const value = values[primaryKey[0]!.index];
      return !isPresent(value) || value === null ? undefined : keyText(primaryKey[0]!.type, value);
    }
    const parts: string[] = [];
    for (const column of primaryKey) {
      const value = values[column.index];
      if (!isPresent(value) || value === null) return undefined;
      parts.push(keyText(column.type, value));
    }
    return JSON.stringify(parts);
  }

  /**
   * The row's cells by column index, once its values fit the table: the table is created, the
   * missing columns added and the columns that need it widened — only when every value fits, so
   * that a rejected event changes nothing. The table's columns the row lacks are ABSENT. `extra`
   * are entries beyond the row's own (append mode's metadata; key columns the row lacks). A row
   * of the same shape as the last one skips straight to checking its values.
   */
  private async fitColumns(item: Pending, sinkEvent: SinkEvent, image: Row, extra: readonly [string, Value][], keyNames: readonly string[] | null): Promise<Admission> {
    const { table } = item;
    const where = qualifiedName(table.name);
    const names = Object.keys(image);
    const shape = table.shapes.find((known) => sameNames(known.names, names) && sameExtraNames(known.extraNames, extra));
    if (shape !== undefined) {
      const values: Cell[] = new Array<Cell>(table.columns.length).fill(ABSENT);
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
      for (const name of RESERVED_APPEND_COLUMNS) {
        if (names.some((column) => fold(column) === name)) {
          return { reason: `table ${where}: the row has a column named ${quote(name)}, which append mode adds itself` };
        }
      }
      // The row's columns first, then the metadata.
      entries.push(...entries.splice(0, extra.length));
    }
    const seen = new Map<string, string>();
    const additions: { name: string; type: ColumnType; warning?: string }[] = [];
    const widenings: { column: Column; to: ColumnType }[] = [];
    for (const [name, value] of entries) {
      if (name === "") return { reason: `table ${where}: the row has a column with an empty name` };
      const folded = fold(name);
      const twin = seen.get(folded);
      if (twin !== undefined) {
        return { reason: `table ${where}: the row's columns ${quote(twin)} and ${quote(name)} are one column in DuckDB, which ignores case in names` };
      }
      seen.set(folded, name);
      const column = table.byName.get(folded);
      if (column === undefined) {
        additions.push({ name, ...(await this.newColumnType(sinkEvent, name, value)) });
        continue;
      }
      if (value === null) continue;
      const detail = misfit(column.type, value);
      if (detail === undefined) continue;
      const isKey = table.primaryKey?.includes(column) ?? false;
      const to = isKey ? undefined : await this.widen(item, column, value);
      if (to === undefined) {
        return {
          reason: `table ${where}, column ${quote(column.name)} (${sqlType(column.type)}) cannot hold ${describeValue(value)}${detail === "" ? "" : `: ${detail}`}`,
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
    const values: Cell[] = new Array<Cell>(table.columns.length).fill(ABSENT);
    for (const [name, value] of entries) values[columnOf(name).index] = value;
    return { values };
  }

  /**
   * The type of a new column from its first value — or JSON, when the source declares the column
   * json/jsonb and the value is a JSON value: only the declaration tells a JSON string from text.
   */
  private async newColumnType(sinkEvent: SinkEvent, name: string, value: Value): Promise<{ type: ColumnType; warning?: string }> {
    if (this.settings.mode === "append" && name === APPEND_COLUMNS.absent) return { type: TEXT_LIST };
    if (value === null || misfit(JSON_TYPE, value) === undefined) {
      const schema = await this.sourceSchema(sinkEvent);
      const declared = schema?.columns.find((column) => column.name === name) ?? schema?.columns.find((column) => fold(column.name) === fold(name));
      if (schema !== undefined && declared !== undefined && sourceColumnType(schema.dialect, declared.type)?.values === "json") return { type: JSON_TYPE };
    }
    return inferType(value);
  }

  /**
   * The source table's declared schema, asked once of the source that read it (undefined when it
   * cannot say): two sources may each have a table of the name.
   */
  private sourceSchema(sinkEvent: SinkEvent): Promise<TableSchema | undefined> {
    const describe = this.context.describeSource;
    if (describe === undefined) return Promise.resolve(undefined);
    const { event } = sinkEvent;
    const name = `${sinkEvent.sourceName ?? ""}/${event.source.schema || event.source.db}.${event.source.table}`;
    let schema = this.sourceSchemas.get(name);
    if (schema === undefined) {
      schema = describe(sinkEvent).catch(() => undefined);
      this.sourceSchemas.set(name, schema);
    }
    return schema;
  }

  /** The wider type the column may take to hold `value`, when the stored rows and the batch's rows fit it too. */
  private async widen(item: Pending, column: Column, value: Value): Promise<ColumnType | undefined> {
    const candidate = widening(column.type, value);
    if (candidate === undefined || misfit(candidate.to, value) !== undefined) return undefined;
    const earlier = this.settings.mode === "append" ? item.rows : item.changes.allCells();
    for (const values of earlier) {
      const stored = values[column.index];
      if (isPresent(stored) && stored !== null && misfit(candidate.to, stored) !== undefined) return undefined;
    }
    if (candidate.offenders !== null) {
      const check = `${column.index}:${sqlType(candidate.to)}`;
      let fits = item.storedFits.get(check);
      if (fits === undefined) {
        fits = !(await this.hasOffenders(item.table, column.name, candidate.offenders));
        item.storedFits.set(check, fits);
      }
      if (!fits) return undefined;
    }
    return candidate.to;
  }

  private async hasOffenders(table: Table, column: string, offenders: (column: string) => string): Promise<boolean> {
    const rows = await this.query(`SELECT count(*) FROM ${this.qualified(table)} WHERE ${offenders(quote(column))}`, []);
    return rows[0]![0] !== 0n;
  }

  private warnOnce(table: Table, column: string, warning: string): void {
    const id = `${tableKey(table.name)}\u0000${fold(column)}`;
    if (this.warned.has(id)) return;
    this.warned.add(id);
    this.context.log.warn(`duckdb sink: table ${qualifiedName(table.name)}, column ${quote(column)}: ${warning}`, { table: qualifiedName(table.name), column });
  }

  // -------------------------------------------------------------- schema changes

  /** Brings the DuckDB table of a changed source table in line with it (schema-changes.ts). */
  private async applySchemaChange({ change, target }: SinkSchemaChange): Promise<void> {
    this.sourceSchemas.set(change.table, Promise.resolve(change.schema));
    const name = tableFor(target, this.settings.table);
    if (change.renamedFrom !== undefined && this.settings.table === null) {
      const stale = await this.findTable(tableFor(change.renamedFrom));
      if (stale !== undefined && tableKey(stale) !== tableKey(name)) {
        this.context.log.warn(
          `duckdb sink: source table ${change.renamedFrom} was renamed to ${change.table}: its changes now go to DuckDB table ${qualifiedName(name)}, ` +
            `and table ${qualifiedName(stale)} is stale — it keeps the rows written before the rename and changes no more. Updates of rows not copied over ` +
            `may be rejected; copy them (INSERT INTO ${qualifiedName(name)} SELECT * FROM ${qualifiedName(stale)}, once the new table exists) or drop the stale table`,
          { table: qualifiedName(stale), renamedTo: qualifiedName(name) },
        );
      }
    }
    if (name.schema === "" || name.table === "") return;
    const table = this.tables.get(tableKey(name)) ?? (await this.loadTable(name, target));
    const where = qualifiedName(table.name);
    if (!table.exists) {
      this.context.log.debug(`duckdb sink: table ${where} does not exist yet; it is created from its first row`, { table: where });
      return;
    }
    const reserved = this.settings.mode === "append" ? RESERVED_APPEND_COLUMNS : new Set<string>();
    const plan = planSchemaChange(where, table.columns, change, reserved);
    const conflicts: Conflict[] = [...plan.conflicts];
    const widenings = [];
    for (const widening of plan.widenings) {
      if (widening.offenders !== null && (await this.hasOffenders(table, widening.column, widening.offenders))) {
        conflicts.push({
          column: widening.column,
          columnType: widening.from,
          sourceType: widening.sourceType,
          reason: `stored values of the column do not fit ${sqlType(widening.to)}`,
        });
      } else widenings.push(widening);
    }
    if (conflicts.length > 0) {
      throw new ConnectorError(
        `duckdb sink "${this.context.name}": source table ${change.table} changed in a way table ${where} cannot follow: ` +
          `${conflicts.map((conflict) => describeConflict(where, conflict)).join("; ")}; then run the pipeline again`,
        false,
      );
    }
    for (const addition of plan.additions) await this.addColumn(table, addition.name, addition.type);
    for (const widening of widenings) await this.alterColumn(table, table.byName.get(fold(widening.column))!, widening.to);
    for (const warning of plan.warnings) this.context.log.warn(`duckdb sink: ${warning}`, { table: where });
    if (plan.deferred.length > 0) {
      this.context.log.info(`duckdb sink: table ${where}: column${plan.deferred.length === 1 ? "" : "s"} ${plan.deferred.map(quote).join(", ")} will be added with the first value`, {
        table: where,
      });
    }
  }

  // -------------------------------------------------------------- the catalog

  private qualified(table: Table | DuckDBTableName): string {
    const name = "name" in table ? table.name : table;
    return `${quote(this.catalog)}.${qualifiedName(name)}`;
  }

  /** The table as the catalog spells it, when it exists. */
  private async findTable(name: DuckDBTableName): Promise<DuckDBTableName | undefined> {
    const tables = await this.query(`SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = $1`, [this.catalog]);
    const key = tableKey(name);
    const found = tables.find((row) => tableKey({ schema: String(row[0]), table: String(row[1]) }) === key);
    return found === undefined ? undefined : { schema: String(found[0]), table: String(found[1]) };
  }

  /**
   * The table as the catalog has it, read once and then kept up to date by this sink's DDL. A
   * table that is not there while the old naming's table of its target is stops the sink: its rows
   * are in the old table, and a second table beside it would be a copy with holes.
   */
  private async loadTable(name: DuckDBTableName, target: string): Promise<Table> {
    const table: Table = { name, exists: false, columns: [], byName: new Map(), primaryKey: null, knownKeys: new Set(), shapes: [] };
    const found = await this.findTable(name);
    if (found !== undefined) {
      table.name = found;
      table.exists = true;
      const columns = await this.query(
        `SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = $1 AND schema_name = $2 AND table_name = $3 ORDER BY column_index`,
        [this.catalog, found.schema, found.table],
      );
      for (const [columnName, dataType] of columns) this.remember(table, String(columnName), parseColumnType(String(dataType)));
      const keys = await this.query(
        `SELECT constraint_column_names FROM duckdb_constraints() WHERE database_name = $1 AND schema_name = $2 AND table_name = $3 AND constraint_type = 'PRIMARY KEY'`,
        [this.catalog, found.schema, found.table],
      );
      if (keys.length > 0) {
        const names = keys[0]![0] as unknown as { items: readonly DuckDBValue[] };
        table.primaryKey = names.items.map((keyName) => table.byName.get(fold(String(keyName)))!);
      }
    } else if (this.settings.table === null) {
      const legacy = legacyTableFor(target);
      const old = legacy === undefined ? undefined : await this.findTable(legacy);
      if (old !== undefined) throw await this.legacyTableError(target, name, old);
    }
    this.tables.set(tableKey(name), table);
    return table;
  }

  private async legacyTableError(target: string, name: DuckDBTableName, old: DuckDBTableName): Promise<ConnectorError> {
    const to = qualifiedName(name);
    const from = qualifiedName(old);
    // CREATE TABLE AS copies columns and rows, not the primary key, which upsert mode needs.
    const keys = await this.query(
      `SELECT constraint_column_names FROM duckdb_constraints() WHERE database_name = $1 AND schema_name = $2 AND table_name = $3 AND constraint_type = 'PRIMARY KEY'`,
      [this.catalog, old.schema, old.table],
    );
    const keyNames = keys.length === 0 ? [] : (keys[0]![0] as unknown as { items: readonly DuckDBValue[] }).items.map((key) => quote(String(key)));
    const move =
      `CREATE SCHEMA IF NOT EXISTS ${quote(name.schema)}; CREATE TABLE ${to} AS FROM ${from}; ` +
      (keyNames.length > 0 ? `ALTER TABLE ${to} ADD PRIMARY KEY (${keyNames.join(", ")}); ` : "") +
      `DROP TABLE ${from};`;
    return new ConnectorError(
      `duckdb sink "${this.context.name}": the events of ${target} now go to DuckDB table ${to} (a schema per source schema, so that no two ` +
        `source tables share a table), but ${JSON.stringify(this.settings.path)} has table ${from}, where earlier versions wrote them. ` +
        `Move it with: ${move} Or, to start the new table empty, rename the old one (ALTER TABLE ${from} RENAME TO ${quote(`${old.table}_old`)}) and copy the source table again with a snapshot. ` +
        `If two source tables wrote to ${from} (the old naming gave a.b_c and a_b.c one table), do the latter`,
      false,
    );
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
    if (fold(table.name.schema) !== DEFAULT_SCHEMA) await this.run(`CREATE SCHEMA IF NOT EXISTS ${quote(this.catalog)}.${quote(table.name.schema)}`);
    await this.run(`CREATE TABLE IF NOT EXISTS ${this.qualified(table)} (${definitions.join(", ")})`);
    for (const column of columns) this.remember(table, column.name, column.type);
    table.exists = true;
    // The schema may exist spelled in another case: the catalog's spelling is the table's.
    table.name = (await this.findTable(table.name)) ?? table.name;
    if (keyNames.length > 0) table.primaryKey = keyNames.map((name) => table.byName.get(fold(name))!);
    this.context.log.info(`duckdb sink: created table ${qualifiedName(table.name)}`, {
      table: qualifiedName(table.name),
      columns: columns.map((column) => `${column.name} ${sqlType(column.type)}`),
      primaryKey: keyNames,
    });
  }

  private async addColumn(table: Table, name: string, type: ColumnType): Promise<void> {
    await this.run(`ALTER TABLE ${this.qualified(table)} ADD COLUMN ${quote(name)} ${sqlType(type)}`);
    this.remember(table, name, type);
    this.context.log.info(`duckdb sink: added column ${quote(name)} ${sqlType(type)} to table ${qualifiedName(table.name)}`, { table: qualifiedName(table.name), column: name });
  }

  private async alterColumn(table: Table, column: Column, to: ColumnType): Promise<void> {
    await this.run(`ALTER TABLE ${this.qualified(table)} ALTER COLUMN ${quote(column.name)} TYPE ${sqlType(to)}`);
    this.context.log.info(`duckdb sink: widened column ${quote(column.name)} of table ${qualifiedName(table.name)} from ${sqlType(column.type)} to ${sqlType(to)}`, {
      table: qualifiedName(table.name),
      column: column.name,
    });
    column.type = to;
  }

  // -------------------------------------------------------------- writing

  private async appendRows(item: Pending): Promise<void> {
    await this.appendChunks(item.table.name, this.catalog, item.table.columns, item.rows);
  }

  /**
   * Applies an upsert-mode table's final changes: the stored rows the patches and moves need are
   * looked up first (rejecting what cannot be completed), the moved rows built from the rows they
   * moved before anything changes, then the deletes, then the upserts of present columns.
   */
  private async applyChanges(item: Pending, batch: SinkBatch, rejections: Rejection[]): Promise<void> {
    const { table } = item;
    const primaryKey = table.primaryKey!;
    const deletes: (readonly Cell[])[] = [];
    const upserts: { readonly cells: readonly Cell[]; readonly whole: boolean }[] = [];
    const patches: Extract<KeyChange, { kind: "patch" }>[] = [];
    const moves: Extract<KeyChange, { kind: "move" }>[] = [];
    for (const change of item.changes.byKey.values()) {
      switch (change.kind) {
        case "delete":
          deletes.push(change.cells);
          break;
        case "row":
          upserts.push({ cells: change.cells, whole: change.whole });
          break;
        case "patch":
          patches.push(change);
          break;
        case "move":
          moves.push(change);
          break;
        default: {
          const unreachable: never = change;
          return unreachable;
        }
      }
    }
    let moved = 0;
    if (patches.length > 0 || moves.length > 0) {
      // Which of the keys the patches and moves need are stored: a patch's own; a move's old key,
      // and its new one — stored already, the move is a replay and updates that row.
      const lookups: (readonly Cell[])[] = [];
      for (const patch of patches) lookups.push(patch.cells);
      for (const move of moves) lookups.push(move.cells, move.fromCells);
      const stored = await this.storedKeys(table, lookups);
      // The stored row is not there: after a crash, the replay of a row a later change deleted
      // (skipped with a warning, the replay goes on to that change), else the table lost it.
      const reject = (change: KeyChange, situation: string) => {
        for (const index of change.events) {
          const sinkEvent = batch.events[index]!;
          const reason = this.absentReason(table, sinkEvent.event, change.cells, situation);
          if (this.context.mayReplay !== false) {
            this.context.log.warn(`skipped an update that cannot be applied; after a crash this is the replay of a row deleted later, otherwise the table lost the row: ${reason}`);
          } else rejections.push({ index, reason });
        }
      };
      for (let i = 0; i < patches.length; i++) {
        if (stored.has(i)) upserts.push({ cells: patches[i]!.cells, whole: false });
        else reject(patches[i]!, `the row is not in the table`);
      }
      const carried: Extract<KeyChange, { kind: "move" }>[] = [];
      for (let i = 0; i < moves.length; i++) {
        const move = moves[i]!;
        const ordinal = patches.length + 2 * i;
        if (!move.whole && stored.has(ordinal)) upserts.push({ cells: move.cells, whole: false });
        else if (stored.has(ordinal + 1)) carried.push(move);
        else reject(move, `the row with its old key ${keyDescription(this.keyRow(primaryKey, move.fromCells))} is not in the table`);
      }
      if (carried.length > 0) moved = await this.buildMovedRows(table, carried);
    }
    const target = this.qualified(table);
    if (deletes.length > 0) {
      const keyList = primaryKey.map((column) => quote(column.name)).join(", ");
      await this.run(`CREATE OR REPLACE TEMP TABLE ${quote(STAGING.deletes)} AS SELECT ${keyList} FROM ${target} LIMIT 0`);
      await this.appendChunks({ schema: DEFAULT_SCHEMA, table: STAGING.deletes }, "temp", primaryKey, deletes);
      const match = primaryKey.map((column) => `target.${quote(column.name)} = gone.${quote(column.name)}`).join(" AND ");
      await this.run(`DELETE FROM ${target} AS target USING temp.main.${quote(STAGING.deletes)} AS gone WHERE ${match}`);
      await this.run(`DROP TABLE temp.main.${quote(STAGING.deletes)}`);
    }
    if (moved > 0) {
      await this.upsertFrom(table, STAGING.moved, table.columns);
      await this.run(`DROP TABLE temp.main.${quote(STAGING.moved)}`);
    }
    // One statement per set of present columns: usually one.
    const groups = new Map<string, { columns: Column[]; rows: (readonly Cell[])[] }>();
    for (const { cells, whole } of upserts) {
      const present = whole ? table.columns : table.columns.filter((column) => isPresent(cells[column.index]));
      const signature = whole ? "*" : present.map((column) => column.index).join(",");
      let group = groups.get(signature);
      if (group === undefined) {
        group = { columns: present, rows: [] };
        groups.set(signature, group);
      }
      group.rows.push(cells);
    }
    for (const { columns, rows } of groups.values()) {
      const columnList = columns.map((column) => quote(column.name)).join(", ");
      await this.run(`CREATE OR REPLACE TEMP TABLE ${quote(STAGING.upserts)} AS SELECT ${columnList} FROM ${target} LIMIT 0`);
      await this.appendChunks(
        { schema: DEFAULT_SCHEMA, table: STAGING.upserts },
        "temp",
        columns,
        rows,
      );
      await this.upsertFrom(table, STAGING.upserts, columns);
      await this.run(`DROP TABLE temp.main.${quote(STAGING.upserts)}`);
    }
  }

  /** Upserts a staging table's rows (`columns` of the table) into the table, setting only those columns of a stored row. */
  private async upsertFrom(table: Table, staging: string, columns: readonly Column[]): Promise<void> {
    const primaryKey = table.primaryKey!;
    const columnList = columns.map((column) => quote(column.name)).join(", ");
    const updates = columns.filter((column) => !primaryKey.includes(column)).map((column) => `${quote(column.name)} = excluded.${quote(column.name)}`);
    const onConflict = updates.length === 0 ? "DO NOTHING" : `DO UPDATE SET ${updates.join(", ")}`;
    await this.run(
      `INSERT INTO ${this.qualified(table)} (${columnList}) SELECT ${columnList} FROM temp.main.${quote(staging)} ` +
        `ON CONFLICT (${primaryKey.map((column) => quote(column.name)).join(", ")}) ${onConflict}`,
    );
  }

  /** The ordinals of `keys` (key values by column index) whose rows the table holds. */
  private async storedKeys(table: Table, keys: readonly (readonly Cell[])[]): Promise<Set<number>> {
    const primaryKey = table.primaryKey!;
    const keyList = primaryKey.map((column) => quote(column.name)).join(", ");
    const target = this.qualified(table);
    await this.run(`CREATE OR REPLACE TEMP TABLE ${quote(STAGING.keys)} AS SELECT ${keyList}, 0::BIGINT AS ${quote(ORDINAL_COLUMN)} FROM ${target} LIMIT 0`);
    const staged: StagedColumn[] = [...primaryKey.map((column, index) => ({ name: column.name, type: column.type, index })), { name: ORDINAL_COLUMN, type: { kind: "integer", sql: "BIGINT" }, index: primaryKey.length }];
    const rows = keys.map((cells, ordinal): Cell[] => [...primaryKey.map((column) => cells[column.index]!), ordinal]);
    await this.appendChunks({ schema: DEFAULT_SCHEMA, table: STAGING.keys }, "temp", staged, rows);
    const match = primaryKey.map((column) => `stored.${quote(column.name)} = wanted.${quote(column.name)}`).join(" AND ");
    const found = await this.query(
      `SELECT wanted.${quote(ORDINAL_COLUMN)} FROM temp.main.${quote(STAGING.keys)} AS wanted WHERE EXISTS (SELECT 1 FROM ${target} AS stored WHERE ${match})`,
      [],
    );
    await this.run(`DROP TABLE temp.main.${quote(STAGING.keys)}`);
    return new Set(found.map((row) => Number(row[0])));
  }

  /**
   * Builds the rows of key changes that left columns out into a staging table, whole: each
   * present column from the change, each absent one from the stored row with the old key. All
   * are built before any row changes, so a row moved away in the same batch is read as it was.
   */
  private async buildMovedRows(table: Table, moves: readonly Extract<KeyChange, { kind: "move" }>[]): Promise<number> {
    const primaryKey = table.primaryKey!;
    const target = this.qualified(table);
    const width = table.columns.length;
    const staged: StagedColumn[] = [
      ...table.columns.map((column) => ({ name: column.name, type: column.type, index: column.index })),
      ...primaryKey.map((column, i) => ({ name: `${FROM_PREFIX}${i}`, type: column.type, index: width + i })),
      { name: ABSENT_COLUMN, type: TEXT_LIST, index: width + primaryKey.length },
    ];
    const fromList = primaryKey.map((column, i) => `${quote(column.name)} AS ${quote(`${FROM_PREFIX}${i}`)}`).join(", ");
    await this.run(
      `CREATE OR REPLACE TEMP TABLE ${quote(STAGING.moves)} AS SELECT *, ${fromList}, []::VARCHAR[] AS ${quote(ABSENT_COLUMN)} FROM ${target} LIMIT 0`,
    );
    const rows = moves.map((move): Cell[] => {
      const row: Cell[] = table.columns.map((column) => (isPresent(move.cells[column.index]) ? move.cells[column.index]! : null));
      for (const column of primaryKey) row.push(move.fromCells[column.index]!);
      row.push(table.columns.filter((column) => !isPresent(move.cells[column.index])).map((column) => column.name));
      return row;
    });
    await this.appendChunks({ schema: DEFAULT_SCHEMA, table: STAGING.moves }, "temp", staged, rows);
    const values = table.columns
      .map((column) => `CASE WHEN list_contains(change.${quote(ABSENT_COLUMN)}, ${literal(column.name)}) THEN stored.${quote(column.name)} ELSE change.${quote(column.name)} END AS ${quote(column.name)}`)
      .join(", ");
    const match = primaryKey.map((column, i) => `stored.${quote(column.name)} = change.${quote(`${FROM_PREFIX}${i}`)}`).join(" AND ");
    await this.run(
      `CREATE OR REPLACE TEMP TABLE ${quote(STAGING.moved)} AS SELECT ${values} FROM temp.main.${quote(STAGING.moves)} AS change JOIN ${target} AS stored ON ${match}`,
    );
    await this.run(`DROP TABLE temp.main.${quote(STAGING.moves)}`);
    return moves.length;
  }

  /** The key's values as a row, for messages. */
  private keyRow(primaryKey: readonly Column[], cells: readonly Cell[]): Row {
    const row: Row = {};
    for (const column of primaryKey) row[column.name] = isPresent(cells[column.index]) ? (cells[column.index] as Value) : null;
    return row;
  }

  /**
   * Appends rows to a table whose columns are `columns`, in that order, each taking its value
   * from a row's cell at the column's `index` (an absent cell is NULL), through data chunks filled
   * column by column — with the appender's own column types, so that the chunk matches the table
   * exactly (a JSON column included).
   */
  private async appendChunks(table: DuckDBTableName, catalog: string, columns: readonly StagedColumn[], rows: readonly (readonly Cell[])[]): Promise<void> {
    const appender = await this.connection!.createAppender(table.table, table.schema, catalog);
    try {
      if (appender.columnCount !== columns.length) {
        // Another sink of this process sharing the file changed the table: read it again and retry.
        throw new ConnectorError(
          `duckdb sink "${this.context.name}": table ${qualifiedName(table)} has ${appender.columnCount} columns, not the ${columns.length} this sink knew`,
          true,
        );
      }
      const types = columns.map((_, i) => appender.columnType(i));
      for (let start = 0; start < rows.length; start += CHUNK_ROWS) {
        const count = Math.min(CHUNK_ROWS, rows.length - start);
        const chunk = DuckDBDataChunk.create(types, count);
        for (let c = 0; c < columns.length; c++) {
          const { type, index } = columns[c]!;
          const vector = chunk.getColumnVector(c);
          for (let r = 0; r < count; r++) {
            const cell = rows[start + r]![index];
            vector.setItem(r, isPresent(cell) ? toDuckDBValue(type, cell) : null);
          }
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

/** A key as messages print it: `(id)=(20)`. */
function keyDescription(key: Row): string {
  const names = Object.keys(key);
  return `(${names.join(", ")})=(${names.map((name) => encodeJson(key[name]!)).join(", ")})`;
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
