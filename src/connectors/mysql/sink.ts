/**
 * The MySQL / MariaDB sink: each write is one target transaction of idempotent upserts and
 * deletes, on one connection.
 *
 * A write first does its DDL, because in MySQL every DDL statement commits the open
 * transaction: the batch's schema changes (`SinkBatch.schemaChanges`: ADD COLUMN, a widening
 * MODIFY COLUMN, sink-schema.ts), missing tables (create_tables), and columns rows carry that
 * their table lacks. Only then does the transaction begin. (Inside a source transaction larger
 * than one write, DDL therefore commits the part applied so far: a crash after it replays the
 * whole transaction, which the idempotent writes absorb.)
 *
 * Every event becomes one or two operations, encoded at once (sink-types.ts) so that a value
 * no column can hold is rejected without a round trip:
 *
 *   upsert  an insert, a snapshot row, or an update with every column of its source table:
 *           `INSERT … VALUES (…), (…) ON DUPLICATE KEY UPDATE` of the columns it has;
 *   delete  by primary key, `DELETE … WHERE (k1, k2) IN ((…), (…))`;
 *   patch   an update without some of its source table's columns (absent: PostgreSQL's
 *           unchanged TOASTed values): an UPDATE of the columns it has, never an insert, so
 *           the absent ones keep their values;
 *   move    such an update that also changed the key: `INSERT INTO t (present…, absent…)
 *           SELECT ?, …, absent… FROM t WHERE old key` — the absent values are taken from the
 *           old row in the same transaction, never through the client — then the old key's
 *           DELETE. An update with every column that changed the key is a delete and an upsert.
 *
 * A patch or a move whose row the target does not have cannot be written without NULLs in
 * place of the absent values: where the write may be a replay (SinkContext.mayReplay) the
 * event is skipped with a warning (a later change, applied before the crash, deleted the row),
 * otherwise it is rejected with a reason naming REPLICA IDENTITY FULL.
 *
 * Operations run in event order; consecutive upserts of one table and column list are one
 * multi-row statement (MySQL applies a key twice in one statement in row order, so nothing is
 * folded or reordered), consecutive deletes of a table too. Values are parameters of prepared
 * statements. Statements hold at most `batch_size` rows and 65,535 parameters, in row counts
 * that are powers of two, so that a connection prepares a bounded set of statements.
 *
 * When the server refuses a value (out of range, too long, a bad date, a failed JSON check),
 * the write rolls back and starts again carefully: the events are split in halves, each tried
 * under a savepoint, down to single events, which are rejected with the table, the key and the
 * server's reason; everything else is applied, in order.
 *
 * A source transaction larger than one write stays open across writes and commits with its
 * last part. The pipeline's position (`checkpoint: "mysql"`) is written in the transaction it
 * covers (checkpoint-store.ts). A lost connection is a retriable error: the runtime retries the
 * write within its `retry_for`, and the rolled-back transaction is applied again whole — except
 * for a transaction whose earlier parts were lost with the connection, which stops the run so
 * the next one replays it from the checkpoint.
 */
import type mysql from "mysql2/promise";
import { qualifiedTableName, type ChangeEvent } from "../../model/event.js";
import type { Value } from "../../model/value.js";
import { integerOption, stringOption } from "../../runtime/connector-options.js";
import {
  batchSize,
  ConnectorError,
  type Logger,
  type Rejection,
  type SinkBatch,
  type SinkContext,
  type SinkEvent,
  type SinkSchemaChange,
  type SinkWriter,
  type TableSchema,
} from "../../runtime/contracts.js";
import { checkpointDatabase, MysqlCheckpointStore } from "./checkpoint-store.js";
import { connect, connectorError, errorKind, isUnreachable, quoteIdentifier as quote, serverLabel, type MysqlError } from "./connection.js";
import { planChange, syncStatements, describeSteps, type ColumnSync } from "./sink-schema.js";
import { createTableStatements, definitions, loadTable, neutralColumns, parseTarget, textCollation, type TargetTable } from "./sink-tables.js";
import { EncodeError, inferColumnType, type Parameter } from "./sink-types.js";

/** A statement holds at most this many parameters (MySQL's limit is 65,535). */
const MAX_PARAMETERS = 65_535;

export interface MysqlSinkOptions {
  readonly url: string;
  readonly createTables: boolean;
  readonly batchSize: number;
  readonly pipeline: string;
  readonly name: string;
  readonly log: Logger;
  readonly describeSource?: (event: ChangeEvent) => Promise<TableSchema | undefined>;
  readonly mayReplay: boolean;
}

export function createSink(context: SinkContext): SinkWriter {
  const { options } = context;
  const createTables = options["create_tables"];
  if (createTables !== undefined && createTables !== null && typeof createTables !== "boolean") {
    throw new ConnectorError("mysql sink: option create_tables must be a boolean", false);
  }
  return new MysqlSink({
    url: stringOption(options, "mysql sink", "url"),
    createTables: createTables === true,
    batchSize: integerOption(options, "mysql sink", "batch_size", 1000, 1),
    pipeline: context.pipeline,
    name: context.name,
    log: context.log,
    ...(context.describeSource !== undefined ? { describeSource: context.describeSource } : {}),
    mayReplay: context.mayReplay ?? true,
  });
}

type Operation =
  | { readonly kind: "upsert"; readonly index: number; readonly table: TargetTable; readonly columns: readonly string[]; readonly values: readonly Parameter[] }
  | { readonly kind: "delete"; readonly index: number; readonly table: TargetTable; readonly key: readonly Parameter[] }
  | {
      readonly kind: "patch";
      readonly index: number;
      readonly table: TargetTable;
      readonly columns: readonly string[];
      readonly values: readonly Parameter[];
      readonly key: readonly Parameter[];
      readonly absent: readonly string[];
      readonly source: string;
    }
  | {
      readonly kind: "move";
      readonly index: number;
      readonly table: TargetTable;
      readonly columns: readonly string[];
      readonly values: readonly Parameter[];
      readonly from: readonly Parameter[];
      readonly absent: readonly string[];
      readonly source: string;
    };

/** A patch or a move whose row is not in the target: skipped or rejected, decided when the range it is in commits. */
interface Missing {
  readonly index: number;
  readonly reason: string;
}

/** A refusal by the server, with the operation it refused. */
class Refused extends Error {
  constructor(
    readonly operation: Operation | undefined,
    readonly error: MysqlError,
  ) {
    super(error.message);
  }
}

export class MysqlSink implements SinkWriter {
  readonly checkpoints: MysqlCheckpointStore;
  private readonly server: string;
  private readonly defaultDatabase: string | undefined;
  private connection: mysql.Connection | undefined;
  private collation: string | undefined;
  private readonly tables = new Map<string, TargetTable>();
  /** The source table's columns per target table (`display`), or null when unknown (every target column counts). */
  private readonly sourceColumns = new Map<string, ReadonlySet<string> | null>();
  /** A source transaction larger than one write, applied so far and not committed. */
  private open: { readonly connection: mysql.Connection; readonly source: string; readonly events: number } | undefined;
  private readonly lost = new Set<string>();

  constructor(private readonly options: MysqlSinkOptions) {
    this.server = serverLabel(options.url);
    const database = checkpointDatabase(options.url);
    this.defaultDatabase = new URL(options.url).pathname.length > 1 ? database : undefined;
    this.checkpoints = new MysqlCheckpointStore(options.url, options.pipeline, `dts sink ${options.name} checkpoints`);
  }

  async start(): Promise<void> {
    try {
      await this.connect();
    } catch (error) {
      if (error instanceof ConnectorError && isUnreachable(error.cause)) {
        throw new ConnectorError(`sink ${this.options.name}: ${error.message}`, false, { cause: error.cause });
      }
      throw error;
    }
  }

  async close(): Promise<void> {
    const connection = this.connection;
    this.connection = undefined;
    await Promise.all([connection?.end().catch(() => {}), this.checkpoints.close()]);
  }

  async write(batch: SinkBatch): Promise<readonly Rejection[]> {
    const transaction = batch.transaction;
    if (this.open !== undefined && this.open.connection !== this.connection) {
      this.lost.add(this.open.source);
      this.open = undefined;
    }
    const open = this.open;
    if (open !== undefined && (transaction === undefined || transaction.source !== open.source || !transaction.continues)) {
      this.options.log.warn("a large source transaction is committed in parts: another source's changes came in between", {
        source: open.source,
        changes_so_far: open.events,
      });
      await this.commitOpen();
    }
    if (transaction?.continues === true && this.open === undefined && this.lost.has(transaction.source)) {
      throw new ConnectorError(
        `sink ${this.options.name}: the connection to ${this.server} was lost in the middle of a transaction of source ` +
          `${transaction.source}, whose earlier part was not committed; stopping, so that the next run applies the whole ` +
          `transaction again from the last checkpoint`,
        false,
      );
    }
    const continuing = transaction?.continues === true && this.open !== undefined;
    const keepOpen = transaction?.open === true;
    const schemaChanges = batch.schemaChanges ?? [];
    if (batch.events.length === 0 && batch.checkpoints === undefined && schemaChanges.length === 0) {
      if (continuing && !keepOpen) await this.commitOpen();
      return [];
    }
    try {
      const connection = await this.connect();
      for (const change of schemaChanges) await this.applySchemaChange(connection, change);
      const rejections: Rejection[] = [];
      const byEvent = await this.plan(connection, batch.events, rejections);
      await connection.query(continuing ? "SAVEPOINT dts_write" : "START TRANSACTION");
      let missing: Missing[];
      try {
        missing = await this.applyAll(connection, byEvent.flat());
      } catch (error) {
        if (!(error instanceof Refused)) throw error;
        await connection.query(continuing ? "ROLLBACK TO SAVEPOINT dts_write" : "ROLLBACK");
        if (!continuing) await connection.query("START TRANSACTION");
        missing = [];
        await this.bisect(connection, byEvent, 0, byEvent.length, rejections, missing, true);
      }
      this.settleMissing(missing, rejections);
      // A rejected event stops the position from moving past it (see SinkBatch.checkpoints).
      if (batch.checkpoints !== undefined && rejections.length === 0) await this.checkpoints.saveWithin(connection, batch.checkpoints);
      if (keepOpen) {
        this.open = { connection, source: transaction!.source, events: (continuing ? this.open!.events : 0) + batchSize(batch) };
      } else {
        await connection.query("COMMIT");
        this.open = undefined;
        this.lost.delete(transaction?.source ?? "");
      }
      return rejections.sort((a, b) => a.index - b.index);
    } catch (error) {
      if (this.open !== undefined || keepOpen) {
        if (transaction !== undefined) this.lost.add(transaction.source);
        this.open = undefined;
      }
      throw this.failure(error, `writing ${batch.events.length} events`);
    }
  }

  private async commitOpen(): Promise<void> {
    const open = this.open;
    if (open === undefined) return;
    this.open = undefined;
    try {
      await open.connection.query("COMMIT");
    } catch (error) {
      this.lost.add(open.source);
      throw this.failure(error, `committing ${open.events} changes of a transaction of source ${open.source}`);
    }
  }

  // ------------------------------------------------------------------ connection

  private async connect(): Promise<mysql.Connection> {
    if (this.connection !== undefined) return this.connection;
    const connection = await connect(this.options.url, { purpose: `dts sink ${this.options.name}` });
    // Strict: a value a column cannot hold is an error, never a truncation; 0 in an
    // AUTO_INCREMENT key is the value 0.
    await connection.query(
      "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'",
    );
    const forget = (): void => {
      if (this.connection === connection) this.connection = undefined;
    };
    connection.on("error", forget);
    connection.on("end", forget);
    this.collation ??= await textCollation(connection);
    this.connection = connection;
    return connection;
  }

  /** A ConnectorError for `error`; a lost connection is dropped (the retry opens a new one). */
  private failure(error: unknown, doing: string): ConnectorError {
    if (error instanceof ConnectorError) return error;
    const converted = connectorError(error, this.server, `sink ${this.options.name}: ${doing}`);
    const connection = this.connection;
    if (connection !== undefined) {
      if (converted.retriable) {
        this.connection = undefined;
        void connection.end().catch(() => {});
      } else {
        void connection.query("ROLLBACK").catch(() => {});
      }
    }
    return converted;
  }

  // ------------------------------------------------------------------ tables and DDL

  private async table(connection: mysql.Connection, target: string, events: readonly SinkEvent[]): Promise<TargetTable> {
    const cached = this.tables.get(target);
    if (cached !== undefined) return cached;
    const { database, table } = parseTarget(target, this.defaultDatabase);
    let found = await loadTable(connection, database, table);
    if (found === undefined) {
      if (!this.options.createTables) {
        throw new ConnectorError(`sink ${this.options.name}: table ${database}.${table} does not exist on ${this.server}; create it, or set create_tables: true`, false);
      }
      found = await this.createTable(connection, database, table, events.filter((e) => e.target === target));
    }
    if (found.primaryKey.length === 0) {
      throw new ConnectorError(
        `sink ${this.options.name}: table ${found.display} on ${this.server} has no primary key; the mysql sink upserts and deletes by primary key: add one (ALTER TABLE ${found.sql} ADD PRIMARY KEY (…))`,
        false,
      );
    }
    this.tables.set(target, found);
    return found;
  }

  /** A table made from its source's description, or (without one) from the events' values. */
  private async createTable(connection: mysql.Connection, database: string, table: string, events: readonly SinkEvent[]): Promise<TargetTable> {
    const first = events[0]?.event;
    const described = first === undefined ? undefined : await this.options.describeSource?.(first).catch(() => undefined);
    let columns: { name: string; type: import("../../model/column-type.js").ColumnType }[];
    let primaryKey: readonly string[];
    if (described !== undefined) {
      columns = neutralColumns(described);
      primaryKey = described.primaryKey;
    } else {
      const names: string[] = [];
      for (const { event } of events) for (const name of Object.keys(event.after ?? event.before ?? {})) if (!names.includes(name)) names.push(name);
      columns = names.map((name) => ({ name, type: inferColumnType(events.map(({ event }) => event.after?.[name] ?? event.before?.[name] ?? null)) }));
      primaryKey = first === undefined ? [] : Object.keys(first.key);
    }
    if (primaryKey.length === 0) {
      throw new ConnectorError(`sink ${this.options.name}: cannot create table ${database}.${table}: its source has no primary key, and the mysql sink writes by primary key`, false);
    }
    const defs = definitions(columns, primaryKey, this.collation ?? "utf8mb4_bin");
    for (const statement of createTableStatements(database, table, defs, primaryKey, this.collation ?? "utf8mb4_bin")) await connection.query(statement);
    this.options.log.info("created table", {
      table: `${database}.${table}`,
      columns: defs.map((c) => `${c.name} ${c.sql}`).join(", "),
      primary_key: primaryKey.join(", "),
      types_from: described !== undefined ? "source" : "values",
    });
    if (described !== undefined) this.sourceColumns.set(`${database}.${table}`, new Set(described.columns.map((c) => c.name)));
    const found = await loadTable(connection, database, table);
    if (found === undefined) throw new ConnectorError(`sink ${this.options.name}: table ${database}.${table} vanished after it was created`, false);
    return found;
  }

  /** Runs DDL on a table and reloads it everywhere it is cached. */
  private async alter(connection: mysql.Connection, table: TargetTable, statements: readonly string[]): Promise<TargetTable> {
    for (const statement of statements) await connection.query(statement);
    const reloaded = await loadTable(connection, table.database, table.table);
    if (reloaded === undefined) throw new ConnectorError(`sink ${this.options.name}: table ${table.display} vanished while it was altered`, false);
    for (const [target, cached] of this.tables) if (cached.display === table.display) this.tables.set(target, reloaded);
    return reloaded;
  }

  /** A source table's ALTER TABLE, applied to its target table before the batch's events (sink-schema.ts). */
  private async applySchemaChange(connection: mysql.Connection, { change, target }: SinkSchemaChange): Promise<void> {
    const { database, table } = parseTarget(target, this.defaultDatabase);
    if (change.renamedFrom !== undefined) {
      this.options.log.warn(
        `source table ${change.renamedFrom} was renamed to ${change.table}: its changes go to target table ${target} from now on, and target ` +
          `table ${change.renamedFrom} is stale (it keeps the rows as they were)`,
        { table: change.table, renamed_from: change.renamedFrom },
      );
    }
    const found = await loadTable(connection, database, table);
    if (found === undefined) {
      if (!this.options.createTables) throw new ConnectorError(`sink ${this.options.name}: table ${database}.${table} does not exist on ${this.server}; create it, or set create_tables: true`, false);
      const defs = definitions(neutralColumns(change.schema), change.schema.primaryKey, this.collation ?? "utf8mb4_bin");
      for (const statement of createTableStatements(database, table, defs, change.schema.primaryKey, this.collation ?? "utf8mb4_bin")) await connection.query(statement);
      this.options.log.info("created table", { table: `${database}.${table}`, columns: defs.map((c) => `${c.name} ${c.sql}`).join(", "), types_from: "source" });
      this.tables.delete(target);
    } else {
      const steps = planChange(found, change, this.collation ?? "utf8mb4_bin");
      const refused = steps.flatMap((step) => (step.kind === "refuse" ? [step] : []));
      if (refused.length > 0) {
        throw new ConnectorError(
          `sink ${this.options.name}: ${refused.map((step) => step.reason).join("; ")}. The sink changes a column's type only to a wider one: bring target table ` +
            `${found.display} in line (${refused.map((step) => `ALTER TABLE ${found.sql} MODIFY COLUMN ${quote(step.column)} ${step.to};`).join(" ")}) and start the pipeline again`,
          false,
        );
      }
      const statements = syncStatements(found, steps);
      if (statements.length > 0 && !this.options.createTables) {
        throw new ConnectorError(
          `sink ${this.options.name}: source table ${change.table} changed (${describeSteps(steps)}) and target table ${found.display} must follow before the rows ` +
            `that need it; with create_tables: false the sink changes no table: run ${statements.map((s) => `${s};`).join(" ")} and start the pipeline again, or set create_tables: true`,
          false,
        );
      }
      if (statements.length > 0) await this.alter(connection, found, statements);
      this.tables.delete(target);
      this.report(change.table, found, steps);
    }
    this.sourceColumns.set(`${database}.${table}`, new Set(change.schema.columns.map((column) => column.name)));
  }

  private report(source: string, table: TargetTable, steps: readonly ColumnSync[]): void {
    for (const step of steps) {
      if (step.kind === "add") {
        if (step.existing === "computed") {
          this.options.log.warn(
            `column ${step.column} was added to source table ${source} with a DEFAULT the server computed for each existing row, which no change ` +
              `event carries: in target table ${table.display} those rows have NULL in ${step.column}; copy the table again to fill them`,
            { table: table.display, column: step.column },
          );
        } else this.options.log.info("added a column to a target table, as its source table did", { table: table.display, column: `${step.column} ${step.sql}` });
      } else if (step.kind === "widen") {
        this.options.log.info("widened a column of a target table, as its source table did", { table: table.display, column: step.column, from: step.from, to: step.to });
      } else if (step.kind === "keep") {
        this.options.log.warn(
          `column ${step.column} was dropped from source table ${source} (or renamed); target table ${table.display} keeps it and its values, and rows written from now on have NULL there`,
          { table: table.display, column: step.column },
        );
      }
    }
  }

  /** Columns rows carry that their table lacks: added (create_tables) with the source's type, or one inferred from the values. */
  private async addColumns(connection: mysql.Connection, table: TargetTable, columns: readonly string[], events: readonly SinkEvent[]): Promise<TargetTable> {
    const described = await this.options.describeSource?.(events[0]!.event).catch(() => undefined);
    const declared = new Map(described === undefined ? [] : neutralColumns(described).map((c) => [c.name, c.type]));
    const defs = definitions(
      columns.map((name) => ({ name, type: declared.get(name) ?? inferColumnType(events.map((e) => e.event.after?.[name] ?? null)) })),
      [],
      this.collation ?? "utf8mb4_bin",
    );
    const statements = defs.map((c) => `ALTER TABLE ${table.sql} ADD COLUMN IF NOT EXISTS ${quote(c.name)} ${c.sql}`);
    if (!this.options.createTables) {
      throw new ConnectorError(
        `sink ${this.options.name}: target table ${table.display} has no ${columns.length === 1 ? "column" : "columns"} ${columns.join(", ")}, which rows carry; ` +
          `with create_tables: false the sink changes no table: run ${statements.map((s) => `${s};`).join(" ")} and start the pipeline again, or set create_tables: true`,
        false,
      );
    }
    if (described !== undefined) this.sourceColumns.set(table.display, new Set(described.columns.map((c) => c.name)));
    this.options.log.info("added columns to a target table for the rows that carry them", {
      table: table.display,
      columns: defs.map((c) => `${c.name} ${c.sql}`).join(", "),
      types_from: described !== undefined ? "source" : "values",
    });
    return this.alter(connection, table, statements);
  }

  // ------------------------------------------------------------------ planning

  /** Every event's operations; events with a value no column can hold are rejected here. DDL happens here, before the transaction. */
  private async plan(connection: mysql.Connection, events: readonly SinkEvent[], rejections: Rejection[]): Promise<Operation[][]> {
    // Tables first, and the columns rows carry that they lack (DDL: before the transaction).
    const byTarget = new Map<string, SinkEvent[]>();
    for (const sinkEvent of events) {
      const list = byTarget.get(sinkEvent.target) ?? [];
      list.push(sinkEvent);
      byTarget.set(sinkEvent.target, list);
    }
    for (const [target, list] of byTarget) {
      let table = await this.table(connection, target, list);
      const lacking: string[] = [];
      const carrying: SinkEvent[] = [];
      for (const sinkEvent of list) {
        let carries = false;
        for (const name of Object.keys(sinkEvent.event.after ?? {})) {
          if (!table.columns.has(name)) {
            carries = true;
            if (!lacking.includes(name)) lacking.push(name);
          }
        }
        if (carries) carrying.push(sinkEvent);
      }
      if (lacking.length > 0) table = await this.addColumns(connection, table, lacking, carrying);
      this.tables.set(target, table);
      if (!this.sourceColumns.has(table.display)) {
        const update = list.find((e) => e.event.op === "update");
        if (update !== undefined) {
          const schema = await this.options.describeSource?.(update.event).catch(() => undefined);
          this.sourceColumns.set(table.display, schema === undefined ? null : new Set(schema.columns.map((c) => c.name)));
        }
      }
    }
    const byEvent: Operation[][] = [];
    for (let index = 0; index < events.length; index++) {
      const sinkEvent = events[index]!;
      const table = this.tables.get(sinkEvent.target)!;
      try {
        byEvent.push(this.operationsOf(sinkEvent.event, index, table));
      } catch (error) {
        if (!(error instanceof EncodeError)) throw error;
        rejections.push({ index, reason: `${table.display}: ${error.message}` });
        byEvent.push([]);
      }
    }
    return byEvent;
  }

  private operationsOf(event: ChangeEvent, index: number, table: TargetTable): Operation[] {
    if (event.op === "delete") return [{ kind: "delete", index, table, key: this.keyOf(table, event.before ?? event.key, event.key) }];
    const after = event.after;
    if (after === null) throw new EncodeError(`a ${event.op} event without a row`);
    const columns: string[] = [];
    const values: Parameter[] = [];
    for (const [name, column] of table.columns) {
      if (column.generated || !Object.hasOwn(after, name)) continue;
      columns.push(name);
      values.push(column.encode(after[name] as Value));
    }
    const key = this.keyOf(table, after, event.key);
    const upsert: Operation = { kind: "upsert", index, table, columns, values };
    if (event.op !== "update") return [upsert];
    const absent = this.absentOf(table, after);
    let from: Parameter[] | undefined;
    const before = event.before;
    if (before !== null && table.primaryKey.every((name) => Object.hasOwn(before, name))) {
      const old = this.keyOf(table, before, before);
      if (!sameKey(old, key)) from = old;
    }
    if (absent.length === 0) return from === undefined ? [upsert] : [{ kind: "delete", index, table, key: from }, upsert];
    const source = qualifiedTableName(event.source);
    if (from === undefined) return [{ kind: "patch", index, table, columns, values, key, absent, source }];
    return [{ kind: "move", index, table, columns, values, from, absent, source }];
  }

  /** The source table's columns (not generated) the row lacks: absent, so unchanged. */
  private absentOf(table: TargetTable, row: Readonly<Record<string, Value>>): string[] {
    const source = this.sourceColumns.get(table.display) ?? null;
    const absent: string[] = [];
    for (const [name, column] of table.columns) {
      if (column.generated || Object.hasOwn(row, name)) continue;
      if (source === null || source.has(name)) absent.push(name);
    }
    return absent;
  }

  private keyOf(table: TargetTable, row: Readonly<Record<string, Value>>, fallback: Readonly<Record<string, Value>>): Parameter[] {
    return table.primaryKey.map((name) => {
      const value = Object.hasOwn(row, name) ? row[name] : Object.hasOwn(fallback, name) ? fallback[name] : undefined;
      if (value === undefined || value === null) throw new EncodeError(`the row has no value for the primary-key column ${name}`);
      return table.columns.get(name)!.encode(value);
    });
  }

  // ------------------------------------------------------------------ applying

  /** Applies operations in order, batching runs; the server's refusal of a value throws Refused. */
  private async applyAll(connection: mysql.Connection, operations: readonly Operation[]): Promise<Missing[]> {
    const missing: Missing[] = [];
    let i = 0;
    while (i < operations.length) {
      const first = operations[i]!;
      let j = i + 1;
      if (first.kind === "upsert") {
        while (j < operations.length) {
          const next = operations[j]!;
          if (next.kind !== "upsert" || next.table !== first.table || !sameColumns(next.columns, first.columns)) break;
          j++;
        }
        await this.upsert(connection, operations.slice(i, j) as UpsertOp[]);
      } else if (first.kind === "delete") {
        while (j < operations.length && operations[j]!.kind === "delete" && operations[j]!.table === first.table) j++;
        await this.delete(connection, operations.slice(i, j) as DeleteOp[]);
      } else {
        const found = await this.applyPartial(connection, first);
        if (!found) missing.push({ index: first.index, reason: absentReason(first) });
      }
      i = j;
    }
    return missing;
  }

  private async upsert(connection: mysql.Connection, rows: readonly UpsertOp[]): Promise<void> {
    const { table, columns } = rows[0]!;
    const updates = columns.filter((c) => !table.primaryKey.includes(c));
    const update =
      updates.length === 0
        ? `${quote(table.primaryKey[0]!)} = ${quote(table.primaryKey[0]!)}`
        : updates.map((c) => `${quote(c)} = VALUES(${quote(c)})`).join(", ");
    const head = `INSERT INTO ${table.sql} (${columns.map(quote).join(", ")}) VALUES `;
    const tuple = `(${columns.map(() => "?").join(", ")})`;
    for (const chunk of chunks(rows, this.rowsPerStatement(columns.length))) {
      const values: Parameter[] = [];
      for (const row of chunk) for (const value of row.values) values.push(value);
      await this.execute(connection, `${head}${Array(chunk.length).fill(tuple).join(", ")} ON DUPLICATE KEY UPDATE ${update}`, values, chunk);
    }
  }

  private async delete(connection: mysql.Connection, rows: readonly DeleteOp[]): Promise<void> {
    const { table } = rows[0]!;
    const keyList = table.primaryKey.length === 1 ? quote(table.primaryKey[0]!) : `(${table.primaryKey.map(quote).join(", ")})`;
    const tuple = table.primaryKey.length === 1 ? "?" : `(${table.primaryKey.map(() => "?").join(", ")})`;
    for (const chunk of chunks(rows, this.rowsPerStatement(table.primaryKey.length))) {
      const values: Parameter[] = [];
      for (const row of chunk) for (const value of row.key) values.push(value);
      await this.execute(connection, `DELETE FROM ${table.sql} WHERE ${keyList} IN (${Array(chunk.length).fill(tuple).join(", ")})`, values, chunk);
    }
  }

  /** A patch or a move; false when the row it needs is not in the target. */
  private async applyPartial(connection: mysql.Connection, op: Extract<Operation, { kind: "patch" | "move" }>): Promise<boolean> {
    const { table } = op;
    const where = table.primaryKey.map((c) => `${quote(c)} = ?`).join(" AND ");
    if (op.kind === "patch") {
      const set = op.columns.filter((c) => !table.primaryKey.includes(c));
      if (set.length === 0) {
        const [rows] = await this.execute<mysql.RowDataPacket[]>(connection, `SELECT 1 FROM ${table.sql} WHERE ${where} FOR UPDATE`, [...op.key], [op]);
        return rows.length > 0;
      }
      const values = op.columns.flatMap((c, i) => (table.primaryKey.includes(c) ? [] : [op.values[i]!]));
      const [result] = await this.execute<mysql.ResultSetHeader>(
        connection,
        `UPDATE ${table.sql} SET ${set.map((c) => `${quote(c)} = ?`).join(", ")} WHERE ${where}`,
        [...values, ...op.key],
        [op],
      );
      // Matched rows (the driver's FOUND_ROWS flag), changed or not.
      return result.affectedRows > 0;
    }
    // The new row from the present values and the old row's absent ones, read in this transaction.
    const names = [...op.columns, ...op.absent];
    const updates = names.filter((c) => !table.primaryKey.includes(c));
    const update = updates.length === 0 ? `${quote(table.primaryKey[0]!)} = ${quote(table.primaryKey[0]!)}` : updates.map((c) => `${quote(c)} = VALUES(${quote(c)})`).join(", ");
    const [inserted] = await this.execute<mysql.ResultSetHeader>(
      connection,
      `INSERT INTO ${table.sql} (${names.map(quote).join(", ")}) SELECT ${[...op.columns.map(() => "?"), ...op.absent.map((c) => `o.${quote(c)}`)].join(", ")} ` +
        `FROM ${table.sql} AS o WHERE ${table.primaryKey.map((c) => `o.${quote(c)} = ?`).join(" AND ")} ON DUPLICATE KEY UPDATE ${update}`,
      [...op.values, ...op.from],
      [op],
    );
    if (inserted.affectedRows === 0) return false;
    await this.execute(connection, `DELETE FROM ${table.sql} WHERE ${where}`, [...op.from], [op]);
    return true;
  }

  private async execute<T extends mysql.RowDataPacket[] | mysql.ResultSetHeader = mysql.ResultSetHeader>(
    connection: mysql.Connection,
    sql: string,
    values: readonly Parameter[],
    operations: readonly Operation[],
  ): Promise<[T, mysql.FieldPacket[]]> {
    try {
      return (await connection.execute(sql, values as Parameter[])) as [T, mysql.FieldPacket[]];
    } catch (error) {
      if (errorKind(error) === "data") throw new Refused(operations.length === 1 ? operations[0] : undefined, error as MysqlError);
      throw error;
    }
  }

  /** Rows per statement: at most batch_size and the parameter limit, a power of two. */
  private rowsPerStatement(columns: number): number {
    const most = Math.max(1, Math.min(this.options.batchSize, Math.floor(MAX_PARAMETERS / Math.max(1, columns))));
    return 2 ** Math.floor(Math.log2(most));
  }

  /**
   * Careful mode: applies events [lo, hi) with the refused ones rejected. A range is tried whole
   * under a savepoint (unless known to fail) and split in two when refused.
   */
  private async bisect(
    connection: mysql.Connection,
    byEvent: readonly Operation[][],
    lo: number,
    hi: number,
    rejections: Rejection[],
    missing: Missing[],
    knownToFail: boolean,
  ): Promise<void> {
    if (hi <= lo) return;
    if (!knownToFail || hi - lo === 1) {
      const operations = byEvent.slice(lo, hi).flat();
      if (operations.length === 0) return;
      await connection.query("SAVEPOINT dts_range");
      try {
        missing.push(...(await this.applyAll(connection, operations)));
        await connection.query("RELEASE SAVEPOINT dts_range");
        return;
      } catch (error) {
        if (!(error instanceof Refused)) throw error;
        await connection.query("ROLLBACK TO SAVEPOINT dts_range");
        if (hi - lo === 1) {
          rejections.push({ index: lo, reason: explain(operations, error) });
          return;
        }
      }
    }
    const mid = lo + Math.floor((hi - lo) / 2);
    await this.bisect(connection, byEvent, lo, mid, rejections, missing, false);
    await this.bisect(connection, byEvent, mid, hi, rejections, missing, false);
  }

  /** Patches and moves whose rows were not there: skipped where the write may be a replay, else rejected. */
  private settleMissing(missing: readonly Missing[], rejections: Rejection[]): void {
    for (const item of missing) {
      if (this.options.mayReplay) {
        this.options.log.warn(`skipped an update whose row is not in the target (a replay after a crash: a later change deleted it): ${item.reason}`, { index: item.index });
      } else {
        rejections.push(item);
      }
    }
  }
}

type UpsertOp = Extract<Operation, { kind: "upsert" }>;
type DeleteOp = Extract<Operation, { kind: "delete" }>;

function sameKey(a: readonly Parameter[], b: readonly Parameter[]): boolean {
  return a.every((value, i) => {
    const other = b[i];
    if (value === null || other === null || other === undefined) return value === other;
    if (typeof value === "string" || typeof other === "string") return value === other;
    return value.equals(other);
  });
}

function sameColumns(a: readonly string[], b: readonly string[]): boolean {
  return a === b || (a.length === b.length && a.every((name, i) => name === b[i]));
}

/** `items` in runs of at most `size`, then of the powers of two below it (a bounded set of statements). */
function* chunks<T>(items: readonly T[], size: number): Generator<readonly T[]> {
  let at = 0;
  while (at < items.length) {
    let take = size;
    while (take > items.length - at) take >>= 1;
    yield items.slice(at, at + take);
    at += take;
  }
}

function keyText(table: TargetTable, key: readonly Parameter[]): string {
  return table.primaryKey.map((c, i) => `${c}=${printParameter(key[i] ?? null)}`).join(", ");
}

function printParameter(value: Parameter): string {
  if (value === null) return "null";
  return typeof value === "string" ? value : `0x${value.toString("hex")}`;
}

/** A rejection's reason: table, key, and the server's words (which name the column). */
function explain(operations: readonly Operation[], refused: Refused): string {
  const op = refused.operation ?? operations.find((o) => o.kind !== "delete") ?? operations[0]!;
  const key =
    op.kind === "delete" ? op.key : op.kind === "move" || op.kind === "patch" || op.kind === "upsert" ? op.table.primaryKey.map((c) => {
      const at = op.columns.indexOf(c);
      return at === -1 ? null : op.values[at]!;
    }) : [];
  const error = refused.error;
  return `${op.table.display} (${keyText(op.table, key)}): ${error.sqlMessage ?? error.message}${error.code !== undefined ? ` [${error.code}]` : ""}`;
}

/** Why a patch or a move cannot be written: which columns, why they are missing, how to make the source send them. */
function absentReason(op: Extract<Operation, { kind: "patch" | "move" }>): string {
  const { table, absent } = op;
  const own = keyText(table, op.kind === "patch" ? op.key : table.primaryKey.map((c) => op.values[op.columns.indexOf(c)] ?? null));
  const them = absent.length === 1 ? "it" : "them";
  const looked = op.kind === "patch" ? "the target has no such row" : `the target has no row ${keyText(table, op.from)} (the old key) to take ${them} from`;
  return (
    `${table.display} (${own}): the update has no value for ${absent.length === 1 ? "column" : "columns"} ${absent.join(", ")} ` +
    `(unchanged, so left out of the change: PostgreSQL does so with large TOASTed values) and ${looked}; ` +
    `writing the row would put NULL in ${them}. Have the source send whole rows: ALTER TABLE ${op.source} REPLICA IDENTITY FULL, ` +
    `and copy the table again to bring the target's rows back`
  );
}
