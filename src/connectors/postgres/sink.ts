/**
 * The PostgreSQL sink: each write is one target transaction of idempotent upserts and deletes.
 *
 * A write is planned before anything is sent (actions.ts). Every event becomes one or two
 * actions on its target table — an upsert of its row, a delete of its key, or for an update that
 * changed the key both (delete the old key, upsert the new row). Updates and deletes with a value
 * no column can hold are rejected here, without a round trip, as their keys are encoded
 * (encode.ts) at once; inserts and snapshot rows are encoded while they stream to the server, so
 * that the work overlaps the server's. A source table's ALTER TABLE (`SinkBatch.schemaChanges`)
 * is applied to its target table first, and a row with a column the table lacks adds the column
 * (both with create_tables; without it they stop the pipeline with the statements to run: see
 * schema-sync.ts). DDL runs on its own, committed at once, except inside a source transaction
 * larger than one write, where it joins the open transaction (and is forgotten if that is lost).
 *
 * Absent is not null (see SinkWriter): an update without some of the source table's columns
 * (PostgreSQL's unchanged TOASTed values) never writes NULL in their place. Inside the write's
 * transaction, before anything is applied, absent.ts follows each such update back to the row it
 * replaces — an earlier image of the key in the same write, the target's row, or across a key
 * change the old key's row — reading the target's rows in one statement per table: a row that
 * moves is completed with the values it lacks, one that stays updates only the columns it has
 * (an UPDATE, never an insert), and one whose row is nowhere is rejected, naming REPLICA
 * IDENTITY FULL. The actions of a table then collapse per key, in order: the last action on a key
 * is the key's final state (a later image is merged over an earlier one of the same key), so
 * each key appears once per statement, which `ON CONFLICT DO UPDATE` requires. Per table, the
 * deletes go first, then the updates and upserts in the order their keys were last touched — a
 * delete and an upsert of the same key have become one action, so the reordering never changes a
 * key's outcome.
 *
 * Upserts are batched one of two ways (docs/performance.md has the measurements that chose the
 * default): `copy` streams the rows into a temporary staging table with COPY and upserts from
 * it, `INSERT … SELECT … ON CONFLICT (pk) DO UPDATE` — and COPYs a batch of inserts and snapshot
 * rows straight into the table, under a savepoint, when none of its keys exists yet; `unnest`
 * sends one array per column, `INSERT … SELECT … FROM unnest($1::int8[], …) ON CONFLICT …`.
 * Updates of rows without some of their columns go the same two ways, as `UPDATE … FROM` the
 * staging table or the arrays. Deletes always go through unnest.
 *
 * When the server refuses a batched statement because of a value or a constraint, the write
 * rolls back and starts again in a careful mode that finds the culprits by bisection: the
 * events are split into halves, each tried under a savepoint, down to single events, which are
 * applied with one plain statement each and, if refused, rejected with the table, the key, the
 * column and the server's reason. Ranges are contiguous and applied in order, so per-key order
 * holds in careful mode too, and everything but the refused events is applied — a handful of
 * bad rows among ten thousand cost a few dozen statements, not ten thousand.
 *
 * Snapshot chunks of a PostgreSQL source arrive as the CopyData messages its server sent
 * (`SinkBatch.bulk`, copy-wire.ts). When the target's columns are the source's, name for name
 * and type for type, those bytes go into the target's COPY as they came, and the rows are
 * never decoded or encoded in between; up to
 * `snapshot_writers` such chunks are loaded at once, each on its own connection, so that the
 * target server parses and indexes on several cores. Anything the bytes cannot do (other
 * columns, a refused value) goes the way of events, which the batch then makes.
 */
import { isRecord } from "../../model/value.js";
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type pg from "pg";
import copyStreams from "pg-copy-streams";
import type { ChangeEvent } from "../../model/event.js";
import type { Row, Value } from "../../model/value.js";
import { optionsOf } from "../options.js";
import { sinkSpec } from "./spec.js";
import {
  batchSize,
  ConnectorError,
  type BulkRows,
  type Logger,
  type Rejection,
  type SinkBatch,
  type SinkContext,
  type SinkEvent,
  type SchemaChange,
  type SinkSchemaChange,
  type SinkWriter,
  type TableSchema,
} from "../../runtime/contracts.js";
import { PostgresCheckpointStore } from "./checkpoint-store.js";
import { connect, connectorError, errorKind, isUnreachable, serverLabel, type PgError } from "./client.js";
import {
  createTableStatements,
  definitionsFromSchema,
  inferType,
  loadTable,
  parseTarget,
  quoteIdent,
  type ColumnDefinition,
  type TargetTable,
} from "./ddl.js";
import { copyFramesIn } from "./copy-wire.js";
import { OrderedCheckpoints } from "./ordered-checkpoints.js";
import { copyField, EncodeError, largeCopyValues, textArrayLiteral } from "./encode.js";
import {
  actionsOf,
  collapse,
  ColumnSets,
  encodeRow,
  keyTextsOf,
  NO_TEXTS,
  textsOf,
  UnknownColumnError,
  type Action,
  type ColumnSet,
} from "./actions.js";
import { planAbsent, type AbsentRejection, type FoundRows, type RowRequest } from "./absent.js";
import { planSync, syncStatements, type ColumnSync } from "./schema-sync.js";

export type UpsertMethod = "unnest" | "copy";

/** The faster of the two on the benchmark machine; see docs/performance.md. */
export const DEFAULT_UPSERT_METHOD: UpsertMethod = "copy";

/** Two: on the benchmark machine (2 cores) a third gained nothing; see docs/performance.md. */
export const DEFAULT_SNAPSHOT_WRITERS = 2;

export interface PostgresSinkOptions {
  readonly url: string;
  readonly createTables: boolean;
  /** Rows per statement at most. */
  readonly batchSize: number;
  readonly pipeline: string;
  readonly name: string;
  readonly log: Logger;
  readonly describeSource?: (event: SinkEvent | ChangeEvent) => Promise<TableSchema | undefined>;
  readonly method?: UpsertMethod;
  /** Snapshot chunks loaded at once, each on its own connection. */
  readonly snapshotWriters?: number;
  /** Writes may be given again after a crash (SinkContext.mayReplay); true when absent. */
  readonly mayReplay?: boolean;
}

export function createSink(context: SinkContext): SinkWriter {
  // Checked and defaulted once against the spec (connectors/options.ts).
  const options = optionsOf(sinkSpec, context.options, `sink ${context.name}`);
  return new PostgresSink({
    url: options.url,
    createTables: options.create_tables,
    batchSize: options.batch_size,
    snapshotWriters: options.snapshot_writers,
    pipeline: context.pipeline,
    name: context.name,
    log: context.log,
    ...(context.describeSource !== undefined ? { describeSource: context.describeSource } : {}),
    mayReplay: context.mayReplay ?? true,
  });
}

export class PostgresSink implements SinkWriter {
  readonly checkpoints: PostgresCheckpointStore;
  private readonly server: string;
  private readonly method: UpsertMethod;
  readonly bulkFormats = ["pg-copy-data"] as const;
  readonly parallelBulkWrites: number;
  /** Connections, each used by one write at a time; the first is opened at start, the rest when needed. */
  private readonly sessions: Session[];
  private readonly free: Session[];
  private readonly tables = new Map<string, TargetTable>();
  private readonly resolving = new Map<string, Promise<TargetTable>>();
  /** A source transaction larger than one write, applied so far and not committed (SinkBatch.transaction). */
  private open: { readonly session: Session; readonly client: pg.Client; readonly source: string; readonly events: number } | undefined;
  /** Sources whose open transaction was lost with its connection: its next part cannot be applied alone. */
  private readonly lost = new Set<string>();
  private readonly ordered = new OrderedCheckpoints();
  /**
   * Tables where a direct COPY of fresh rows met an existing key (a replayed chunk after a
   * crash): the next batches of fresh rows go through the staging upsert, how many below.
   */
  private readonly conflicted = new Map<TargetTable, number>();
  private readonly columnSets = new ColumnSets();
  private readonly bulkCheck = new BulkCheck();
  /**
   * The source table's columns, per target table (`TargetTable.display`), as its source describes
   * them (`describeSource`, or the schema of a change), or null when unknown: then every column
   * of the target counts as the source's. A column of the source an update lacks is absent.
   */
  private readonly sourceColumns = new Map<string, ReadonlySet<string> | null>();
  private absentCache = new WeakMap<ColumnSet, { readonly source: ReadonlySet<string> | null; readonly absent: readonly string[] }>();
  private readonly absentOf = (set: ColumnSet): readonly string[] => {
    const table = set.table;
    if (set.names.length === table.columns.size) return NO_NAMES;
    const source = this.sourceColumns.get(table.display) ?? null;
    const cached = this.absentCache.get(set);
    if (cached !== undefined && cached.source === source) return cached.absent;
    const absent = [...table.columns.keys()].filter((name) => !set.names.includes(name) && (source === null || source.has(name)));
    this.absentCache.set(set, { source, absent });
    return absent;
  };

  constructor(private readonly options: PostgresSinkOptions) {
    this.server = serverLabel(options.url);
    this.method = options.method ?? DEFAULT_UPSERT_METHOD;
    this.parallelBulkWrites = options.snapshotWriters ?? DEFAULT_SNAPSHOT_WRITERS;
    this.sessions = Array.from({ length: this.parallelBulkWrites }, () => new Session());
    this.free = [...this.sessions].reverse();
    this.checkpoints = new PostgresCheckpointStore(options.url, options.pipeline, `dts sink ${options.name} checkpoints`);
  }

  async start(): Promise<void> {
    try {
      await this.connection(this.sessions[0]!);
    } catch (error) {
      // Said at once, not retried (see isUnreachable).
      if (error instanceof ConnectorError && isUnreachable(error.cause)) {
        throw new ConnectorError(`sink ${this.options.name}: ${error.message}`, false, { cause: error.cause });
      }
      throw error;
    }
  }

  async close(): Promise<void> {
    const clients = this.sessions.map((session) => session.client);
    for (const session of this.sessions) session.forget();
    await Promise.all([...clients.map((client) => client?.end().catch(() => {})), this.checkpoints.close()]);
  }

  async write(batch: SinkBatch): Promise<readonly Rejection[]> {
    const transaction = batch.transaction;
    if (this.open !== undefined && this.open.session.client !== this.open.client) {
      // Its connection ended between two parts (the server restarted, the session was killed).
      this.lost.add(this.open.source);
      this.free.push(this.open.session);
      this.open = undefined;
    }
    const open = this.open;
    if (open !== undefined && (transaction === undefined || transaction.source !== open.source || !transaction.continues)) {
      // Another source's write came between the parts of a large transaction (two sources
      // into one sink): what is applied of it commits now, and its rest in later transactions.
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
    const bulk = batch.bulk !== undefined && batch.bulk.count > 0 ? batch.bulk : undefined;
    const schemaChanges = batch.schemaChanges ?? [];
    if (bulk === undefined && batch.events.length === 0 && batch.checkpoints === undefined && schemaChanges.length === 0) {
      if (continuing && transaction?.open === false) await this.commitOpen();
      return [];
    }
    const session = continuing ? this.open!.session : this.free.pop();
    if (session === undefined) throw new Error(`sink ${this.options.name}: more writes at once than its ${this.sessions.length} connections`);
    const keepOpen = transaction?.open === true;
    // A snapshot chunk that may be written beside others (SinkWriter.parallelBulkWrites) stores
    // its position in the order the chunks were started, not the order they commit.
    const ordering =
      batch.bulk !== undefined && batch.checkpoints !== undefined && transaction === undefined && this.parallelBulkWrites > 1
        ? this.ordered.place(batch, batch.checkpoints)
        : undefined;
    const ending: WriteEnd = { keepOpen, ordering };
    try {
      let rejections: readonly Rejection[] = [];
      // Before the events: the tables take the source's new columns first.
      for (const change of schemaChanges) await this.applySchemaChange(session, change, continuing);
      if (bulk === undefined || !(await this.writeBulk(session, batch, bulk, continuing, ending))) {
        rejections = await this.writeEvents(session, batch, continuing, ending);
      }
      if (keepOpen) {
        this.open = { session, client: session.client!, source: transaction!.source, events: (continuing ? this.open!.events : 0) + batchSize(batch) };
      } else {
        this.open = undefined;
        this.lost.delete(transaction?.source ?? "");
      }
      return rejections;
    } catch (error) {
      if (this.open?.session === session || keepOpen) {
        // Whatever the transaction held so far is gone with it.
        if (transaction !== undefined) this.lost.add(transaction.source);
        this.open = undefined;
      }
      this.forgetAltered(session);
      throw error;
    } finally {
      if (this.open?.session !== session) this.free.push(session);
    }
  }

  /** Commits the transaction left open by the parts of a large source transaction. */
  private async commitOpen(): Promise<void> {
    const open = this.open;
    if (open === undefined) return;
    this.open = undefined;
    try {
      await open.session.client!.query("COMMIT");
      open.session.altered.clear();
    } catch (error) {
      this.lost.add(open.source);
      throw this.failure(error, `committing ${open.events} changes of a transaction of source ${open.source}`, open.session);
    } finally {
      this.free.push(open.session);
    }
  }

  /** Starts a write: a new transaction, or inside one left open, a savepoint to come back to. */
  private async startWrite(session: Session, continuing: boolean): Promise<void> {
    if (continuing) await session.client!.query("SAVEPOINT dts_write");
    else await this.begin(session);
  }

  /** Undoes the write so far (a refused row), keeping an open transaction's earlier parts. */
  private async undoWrite(session: Session, continuing: boolean): Promise<void> {
    await session.client!.query(continuing ? "ROLLBACK TO SAVEPOINT dts_write" : "ROLLBACK");
    // Staging tables made since may be gone with the rollback; they are made again when needed.
    session.staging.clear();
  }

  /**
   * Ends a write: stores its checkpoints (unless it rejected events) and commits, unless the
   * source transaction goes on in the next write; a write among parallel ones stores them in
   * their order (ordered-checkpoints.ts).
   */
  private async endWrite(session: Session, batch: SinkBatch, ending: WriteEnd, storeOwn: boolean): Promise<void> {
    const client = session.client!;
    if (ending.ordering !== undefined) {
      await this.ordered.commit(ending.ordering, storeOwn, async (checkpoints) => {
        if (checkpoints !== undefined) await this.checkpoints.saveWithin(client, checkpoints);
        await client.query("COMMIT");
      });
      return;
    }
    if (batch.checkpoints !== undefined && storeOwn) await this.checkpoints.saveWithin(client, batch.checkpoints);
    if (!ending.keepOpen) {
      await client.query("COMMIT");
      session.altered.clear();
    }
  }

  /**
   * Loads bulk rows as they are, in one transaction; false when they cannot go that way (other
   * columns or types in the target, or a value the server refused), and nothing was written.
   */
  private async writeBulk(session: Session, batch: SinkBatch, bulk: BulkRows, continuing: boolean, ending: WriteEnd): Promise<boolean> {
    let table: TargetTable;
    let columns: ColumnSet;
    try {
      // The events are read only if the table must be created (their values and source describe it).
      table = this.tables.get(bulk.table) ?? (await this.resolveOnce(session, bulk.table, () => batch.events));
      columns = this.columnSets.ofNames(table, bulk.columns);
    } catch (error) {
      if (error instanceof EncodeError) return false;
      throw this.failure(error, "preparing a write", session);
    }
    if (!this.bulkCheck.fits(columns, bulk)) return false;
    try {
      const client = await this.connection(session);
      await this.startWrite(session, continuing);
      try {
        await this.copyRows(session, table, bulk.columns, (sql) => copyFramesIn(client, sql, bulk.data), true);
      } catch (error) {
        if (!refused(error)) throw error;
        await this.undoWrite(session, continuing);
        return false;
      }
      await this.endWrite(session, batch, ending, true);
      return true;
    } catch (error) {
      throw this.failure(error, `writing ${bulk.count} rows`, session);
    }
  }

  private async writeEvents(session: Session, batch: SinkBatch, continuing: boolean, ending: WriteEnd): Promise<readonly Rejection[]> {
    const rejections: Rejection[] = [];
    let actions: Action[][];
    try {
      actions = await this.plan(session, batch.events, rejections, continuing);
    } catch (error) {
      throw this.failure(error, "preparing a write", session);
    }
    try {
      await this.connection(session);
      await this.startWrite(session, continuing);
      actions = await this.completeAbsent(session, batch.events, actions, rejections);
      try {
        await this.applyRange(session, actions.flat(), this.method);
      } catch (error) {
        if (!refused(error)) throw error;
        // Start again, carefully: find the refused events by bisection and apply the rest.
        await this.undoWrite(session, continuing);
        await this.startWrite(session, continuing);
        await this.bisect(session, actions, 0, actions.length, rejections, true);
      }
      // A rejected event stops the position from moving past it (see SinkBatch.checkpoints).
      await this.endWrite(session, batch, ending, rejections.length === 0);
    } catch (error) {
      throw this.failure(error, `writing ${batch.events.length} events`, session);
    }
    return rejections.sort((a, b) => a.index - b.index);
  }

  private async begin(session: Session): Promise<void> {
    session.stagedInTransaction.clear();
    await session.client!.query("BEGIN");
  }

  // ------------------------------------------------------------------ connection

  private async connection(session: Session): Promise<pg.Client> {
    if (session.client !== undefined) return session.client;
    // What the lost connection's open transaction altered is gone with it.
    this.forgetAltered(session);
    const client = await connect(this.options.url, `dts sink ${this.options.name}`);
    client.on("error", () => session.forget(client));
    client.on("end", () => session.forget(client));
    session.client = client;
    return client;
  }

  /** Turns an error into a ConnectorError; after a connection error, drops the session. */
  private failure(error: unknown, doing: string, session: Session): ConnectorError {
    const converted = connectorError(error, this.server, `sink ${this.options.name}: ${doing}`);
    this.forgetAltered(session);
    const client = session.client;
    if (client !== undefined) {
      if (converted.retriable) {
        session.forget(client);
        void client.end().catch(() => {});
      } else {
        // Leave the session usable for the next write (the runner may stop, or not).
        void client.query("ROLLBACK").catch(() => {});
        session.staging.clear();
      }
    }
    return converted;
  }

  // ------------------------------------------------------------------ planning

  /**
   * Every event's actions, by event; events that cannot be applied are rejected here. Rows with
   * columns their table lacks add those columns first (create_tables), and are planned again.
   */
  private async plan(session: Session, events: readonly SinkEvent[], rejections: Rejection[], inTransaction: boolean): Promise<Action[][]> {
    for (let attempt = 0; ; attempt++) {
      const byEvent: Action[][] = [];
      const refused: Rejection[] = [];
      const unknown = new Map<TargetTable, { columns: Set<string>; events: SinkEvent[] }>();
      for (let index = 0; index < events.length; index++) {
        const sinkEvent = events[index]!;
        const table = this.tables.get(sinkEvent.target) ?? (await this.resolveOnce(session, sinkEvent.target, () => events));
        if (sinkEvent.event.op === "update" && !this.sourceColumns.has(table.display)) await this.learnSourceColumns(table, sinkEvent);
        try {
          byEvent.push(actionsOf(sinkEvent, index, table, this.columnSets, this.absentOf));
        } catch (error) {
          if (error instanceof UnknownColumnError && attempt === 0) {
            const known = unknown.get(table) ?? { columns: new Set<string>(), events: [] };
            for (const name of Object.keys(sinkEvent.event.after ?? {})) if (!table.columns.has(name)) known.columns.add(name);
            known.events.push(sinkEvent);
            unknown.set(table, known);
            continue;
          }
          if (!(error instanceof EncodeError)) throw error;
          refused.push({ index, reason: `${table.display}: ${error.message}` });
        }
      }
      if (unknown.size === 0) {
        rejections.push(...refused);
        return byEvent;
      }
      for (const [table, { columns, events: carrying }] of unknown) await this.addColumns(session, table, [...columns], carrying, inTransaction);
    }
  }

  /**
   * Columns rows carry and their target table lacks, announced by no schema change (a flow that
   * maps or routes, a column added while the pipeline was stopped): added with the source's type
   * (or one inferred from the values) with create_tables; without it, an error with the statement.
   */
  private async addColumns(session: Session, table: TargetTable, columns: readonly string[], events: readonly SinkEvent[], inTransaction: boolean): Promise<void> {
    const client = await this.connection(session);
    const described = await this.options.describeSource?.(events[0]!).catch(() => undefined);
    const declared = described === undefined ? new Map<string, string>() : new Map((await definitionsFromSchema(client, described)).map((c) => [c.name, c.type]));
    const steps: ColumnSync[] = columns.map((column) => ({
      kind: "add",
      column,
      type: declared.get(column) ?? inferType(events.map((e) => e.event.after?.[column] ?? null)),
    }));
    const source = sourceNameOf(events[0]!.event);
    const statements = syncStatements(table, steps);
    if (!this.options.createTables) {
      throw new ConnectorError(
        `sink ${this.options.name}: target table ${table.display} has no ${columns.length === 1 ? "column" : "columns"} ${columns.join(", ")}, which rows of ` +
          `${source} carry (added to the source since, or made by a step); with create_tables: false the sink changes no table: run ` +
          `${statements.map((statement) => `${statement};`).join(" ")} and start the pipeline again, or set create_tables: true`,
        false,
      );
    }
    await this.alter(session, table, statements, inTransaction);
    if (described !== undefined) this.sourceColumns.set(table.display, new Set(described.columns.map((column) => column.name)));
    this.options.log.info("added columns to a target table for the rows that carry them", {
      table: table.display,
      columns: steps.map((step) => `${step.column} ${step.kind === "add" ? step.type : ""}`).join(", "),
      types_from: described !== undefined ? "source" : "values",
    });
  }

  /** Runs DDL on a target table and reloads it; in an open transaction, remembered until it commits. */
  private async alter(session: Session, table: TargetTable, statements: readonly string[], inTransaction: boolean): Promise<TargetTable> {
    const client = await this.connection(session);
    for (const statement of statements) await client.query(statement);
    const reloaded = await loadTable(client, table.schema, table.table);
    if (reloaded === undefined) throw new ConnectorError(`sink ${this.options.name}: table ${table.display} vanished while it was altered`, false);
    for (const [target, cached] of this.tables) {
      if (cached === table || cached.display === table.display) {
        this.tables.set(target, reloaded);
        if (inTransaction) session.altered.add(target);
      }
    }
    this.absentCache = new WeakMap();
    return reloaded;
  }

  /** Tables altered in a transaction that is lost: loaded again from the catalog when next met. */
  private forgetAltered(session: Session): void {
    for (const target of session.altered) this.tables.delete(target);
    session.altered.clear();
  }

  /**
   * A source table's ALTER TABLE, applied to its target table before the batch's events
   * (schema-sync.ts): columns added and widened (create_tables), refused where the target
   * cannot follow, warned of where the target keeps what the source dropped or renamed.
   */
  private async applySchemaChange(session: Session, { change, target }: SinkSchemaChange, inTransaction: boolean): Promise<void> {
    const client = await this.connection(session);
    const doing = `applying a change of source table ${change.table} to ${target}`;
    try {
      const { schema, table } = parseTarget(target);
      if (change.renamedFrom !== undefined) this.warnRenamed(change.renamedFrom, change.table, target);
      // As the catalog has it now: the cached one may predate another session's DDL.
      let found = await loadTable(client, schema, table);
      if (found === undefined) {
        if (!this.options.createTables) {
          const renamed = change.renamedFrom === undefined ? "" : `; source table ${change.renamedFrom} was renamed to ${change.table}: rename the target table to match (ALTER TABLE ${change.renamedFrom} RENAME TO ${quoteIdent(table)})`;
          throw new ConnectorError(`sink ${this.options.name}: table ${schema}.${table} does not exist on ${this.server}${renamed}; create it, or set create_tables: true`, false);
        }
        const columns = await definitionsFromSchema(client, change.schema);
        for (const statement of createTableStatements(schema, table, columns, change.schema.primaryKey)) await client.query(statement);
        this.options.log.info("created table", { table: `${schema}.${table}`, columns: columns.map((c) => `${c.name} ${c.type}`).join(", "), primary_key: change.schema.primaryKey.join(", "), types_from: "source" });
        found = await loadTable(client, schema, table);
        if (found === undefined) throw new ConnectorError(`sink ${this.options.name}: table ${schema}.${table} vanished after it was created`, false);
        this.tables.set(target, found);
        if (inTransaction) session.altered.add(target);
      } else {
        if (found.primaryKey.length === 0) {
          throw new ConnectorError(`sink ${this.options.name}: table ${found.display} on ${this.server} has no primary key; the postgres sink upserts and deletes by primary key`, false);
        }
        this.tables.set(target, found);
        const types = new Map((await definitionsFromSchema(client, change.schema)).map((c) => [c.name, c.type]));
        const steps = planSync(found, change, types);
        this.refuse(change, found, steps);
        const statements = syncStatements(found, steps);
        if (statements.length > 0 && !this.options.createTables) {
          throw new ConnectorError(
            `sink ${this.options.name}: source table ${change.table} changed (${describeSteps(steps)}) and target table ${found.display} must follow ` +
              `before the rows that need it; with create_tables: false the sink changes no table: run ${statements.map((statement) => `${statement};`).join(" ")} ` +
              `and start the pipeline again, or set create_tables: true`,
            false,
          );
        }
        if (statements.length > 0) await this.alter(session, found, statements, inTransaction);
        this.reportSteps(change, found, steps);
      }
      this.sourceColumns.set(`${schema}.${table}`, new Set(change.schema.columns.map((column) => column.name)));
      this.absentCache = new WeakMap();
    } catch (error) {
      throw this.failure(error, doing, session);
    }
  }

  /** A narrowing or other type change the target cannot follow: an error naming both types and what to run. */
  private refuse(change: SchemaChange, table: TargetTable, steps: readonly ColumnSync[]): void {
    const refused = steps.flatMap((step) => (step.kind === "refuse" ? [step] : []));
    if (refused.length === 0) return;
    const said = refused.map((step) => {
      const before = change.columns.find((c) => c.kind === "retyped" && c.column === step.column);
      const from = before?.kind === "retyped" ? before.from : step.from;
      const why = step.narrowing
        ? "a narrowing: the source's ALTER rewrote its rows (numeric and time values may be rounded), and no change event carries them"
        : "a change of type the sink does not follow: the source's ALTER may have rewritten its rows, and no change event carries them";
      return `column ${step.column} went from ${from} to ${step.to} in source table ${change.table}, ${why}; target table ${table.display} has ${step.from}`;
    });
    const statements = refused.map((step) => `ALTER TABLE ${table.sql} ALTER COLUMN ${quoteIdent(step.column)} TYPE ${step.to} USING ${quoteIdent(step.column)}::${step.to};`);
    throw new ConnectorError(
      `sink ${this.options.name}: ${said.join("; ")}. The sink changes a column's type only to a wider one: bring the target in line ` +
        `(${statements.join(" ")}) and start the pipeline again`,
      false,
    );
  }

  private reportSteps(change: SchemaChange, table: TargetTable, steps: readonly ColumnSync[]): void {
    for (const step of steps) {
      switch (step.kind) {
        case "add":
          if (step.existing === "computed") {
            this.options.log.warn(
              `column ${step.column} was added to source table ${change.table} with a DEFAULT the server computed for each existing row (or that the ` +
                `catalog no longer shows), which no change event carries: in target table ${table.display} those rows have NULL in ${step.column}; ` +
                `copy the table again to fill them`,
              { table: table.display, column: step.column },
            );
          } else {
            this.options.log.info("added a column to a target table, as its source table did", {
              table: table.display,
              column: `${step.column} ${step.type}`,
              ...(step.existing !== undefined ? { existing_rows: step.existing.value } : {}),
            });
          }
          break;
        case "widen":
          this.options.log.info("widened a column of a target table, as its source table did", { table: table.display, column: step.column, from: step.from, to: step.to });
          break;
        case "keep": {
          const added = steps.filter((s) => s.kind === "add").map((s) => s.column);
          this.options.log.warn(
            `column ${step.column} was dropped from source table ${change.table} (or renamed: pgoutput cannot tell a rename from a drop and an add); ` +
              `target table ${table.display} keeps it and its values, and rows written from now on have NULL there` +
              (added.length > 0 ? `. If it was renamed to ${added.join(" or ")}, the rows not changed since have their value only in ${step.column}: copy the table again to move them` : ""),
            { table: table.display, column: step.column },
          );
          break;
        }
        case "refuse":
          break;
        default: {
          const unreachable: never = step;
          void unreachable;
        }
      }
    }
  }

  private warnRenamed(from: string, to: string, target: string): void {
    this.options.log.warn(
      `source table ${from} was renamed to ${to}: its changes go to target table ${target} from now on, and target table ${from} is stale ` +
        `(it keeps the rows as they were). To have every row in ${target}, restart the pipeline with ${to} in its tables (a table new to the ` +
        `pipeline is copied first), then drop ${from} in the target`,
      { table: to, renamed_from: from, stale_target: from },
    );
  }

  /** Which of the target's columns its source table has: an update lacking one of them lacks a value. */
  private async learnSourceColumns(table: TargetTable, event: SinkEvent): Promise<void> {
    const schema = await this.options.describeSource?.(event).catch(() => undefined);
    this.sourceColumns.set(table.display, schema === undefined ? null : new Set(schema.columns.map((column) => column.name)));
  }

  /**
   * Updates that lack some of the source's columns, followed back to the rows they replace
   * (absent.ts): the rows the target has are read here, in the write's transaction; each such
   * update is then kept (it updates a row the target has), completed into a whole row, or
   * rejected with its event.
   */
  private async completeAbsent(session: Session, events: readonly SinkEvent[], byEvent: Action[][], rejections: Rejection[]): Promise<Action[][]> {
    const plan = planAbsent(byEvent, this.absentOf);
    if (plan === undefined) return byEvent;
    const found = await this.readRows(session.client!, plan.reads);
    const resolved = plan.resolve(found);
    for (const rejection of resolved.rejected) {
      const reason = absentReason(events[rejection.index]!.event, rejection);
      // A replayed write meets such an update when a change after it, applied before the
      // crash, deleted its row: skipped, the replay goes on to that change (SinkContext.mayReplay).
      if (this.options.mayReplay !== false) this.options.log.warn(`skipped an update that cannot be applied; after a crash this is the replay of a row deleted later, otherwise the target lost the row: ${reason}`);
      else rejections.push({ index: rejection.index, reason });
    }
    return resolved.byEvent;
  }

  /** The rows the target has at these keys, as text: one statement per table for those whose values are needed, one for the others. */
  private async readRows(client: pg.Client, reads: ReadonlyMap<TargetTable, ReadonlyMap<string, RowRequest>>): Promise<FoundRows> {
    const rows = new Map<TargetTable, Map<string, ReadonlyMap<string, string | null>>>();
    for (const [table, requests] of reads) {
      const found = new Map<string, ReadonlyMap<string, string | null>>();
      rows.set(table, found);
      for (const values of [false, true]) {
        const wanted = [...requests].filter(([, request]) => request.values === values);
        if (wanted.length === 0) continue;
        const key = table.primaryKey;
        const columns = values ? [...table.columns.keys()] : [];
        const text =
          `SELECT u.i${columns.map((c, j) => `, t.${quoteIdent(c)}::text AS c${j}`).join("")} ` +
          `FROM unnest(${key.map((_, k) => `$${k + 1}::text[]`).join(", ")}) WITH ORDINALITY AS u(${key.map((_, k) => `k${k}, `).join("")}i) ` +
          `JOIN ${table.sql} AS t ON ${key.map((c, k) => `t.${quoteIdent(c)} = u.k${k}::${table.columns.get(c)!.castType}`).join(" AND ")}`;
        const params = key.map((_, k) => textArrayLiteral(wanted.map(([, request]) => request.keyTexts[k]!)));
        const result = await client.query<Record<string, string | null>>(text, params);
        for (const row of result.rows) {
          const [keyString] = wanted[Number(row.i) - 1]!;
          found.set(keyString, new Map(columns.map((c, j) => [c, row[`c${j}`] ?? null])));
        }
      }
    }
    return (table, key) => rows.get(table)?.get(key);
  }

  /**
   * The target table, looked up (and created) once even when parallel writes meet it at the
   * same time: two would both find it missing and both create it.
   */
  private resolveOnce(session: Session, target: string, events: () => readonly SinkEvent[]): Promise<TargetTable> {
    let resolving = this.resolving.get(target);
    if (resolving === undefined) {
      resolving = this.resolveTable(session, target, events).finally(() => this.resolving.delete(target));
      this.resolving.set(target, resolving);
    }
    return resolving;
  }

  /** The target table; `events` (the write's, some bound for it) describe it if it must be created. */
  private async resolveTable(session: Session, target: string, events: () => readonly SinkEvent[]): Promise<TargetTable> {
    const { schema, table } = parseTarget(target);
    if (schema === "" || table === "") throw new ConnectorError(`sink ${this.options.name}: "${target}" is not a table name (schema.table or table)`, false);
    const client = await this.connection(session);
    let found = await loadTable(client, schema, table);
    if (found === undefined) {
      if (!this.options.createTables) {
        throw new ConnectorError(
          `sink ${this.options.name}: table ${schema}.${table} does not exist on ${this.server}; create it, or set create_tables: true`,
          false,
        );
      }
      const bound = events().filter((e) => e.target === target);
      await this.createTable(client, schema, table, bound[0]!, bound);
      found = await loadTable(client, schema, table);
      if (found === undefined) throw new ConnectorError(`sink ${this.options.name}: table ${schema}.${table} vanished after it was created`, false);
    }
    if (found.primaryKey.length === 0) {
      throw new ConnectorError(
        `sink ${this.options.name}: table ${found.display} on ${this.server} has no primary key; the postgres sink upserts and deletes by primary key`,
        false,
      );
    }
    this.tables.set(target, found);
    return found;
  }

  private async createTable(client: pg.Client, schema: string, table: string, first: SinkEvent, events: readonly SinkEvent[]): Promise<void> {
    const rows = events.flatMap((e) => [e.event.after, e.event.before]).filter((row): row is Row => row !== null);
    const seen = new Map<string, Value[]>();
    for (const row of rows) {
      for (const [name, value] of Object.entries(row)) {
        const values = seen.get(name) ?? [];
        values.push(value);
        seen.set(name, values);
      }
    }
    const described = await this.options.describeSource?.(first).catch(() => undefined);
    let columns: ColumnDefinition[] = [];
    let primaryKey: readonly string[] = [];
    if (described !== undefined) {
      columns = await definitionsFromSchema(client, described);
      primaryKey = described.primaryKey;
    }
    // Columns the events have and the description lacks (a map step added them): from values.
    const describedNames = new Set(columns.map((c) => c.name));
    for (const [name, values] of seen) if (!describedNames.has(name)) columns.push({ name, type: inferType(values) });
    if (primaryKey.length === 0) primaryKey = Object.keys(events.find((e) => Object.keys(e.event.key).length > 0)?.event.key ?? {});
    if (primaryKey.length === 0) {
      throw new ConnectorError(`sink ${this.options.name}: cannot create ${schema}.${table}: its events carry no primary key`, false);
    }
    for (const name of primaryKey) if (!columns.some((c) => c.name === name)) columns.push({ name, type: "text" });
    for (const statement of createTableStatements(schema, table, columns, primaryKey)) await client.query(statement);
    this.options.log.info("created table", {
      table: `${schema}.${table}`,
      columns: columns.map((c) => `${c.name} ${c.type}`).join(", "),
      primary_key: primaryKey.join(", "),
      types_from: described !== undefined ? "source" : "values",
    });
  }

  // ------------------------------------------------------------------ applying

  /** Applies the actions' final states in as few statements as possible. */
  private async applyRange(session: Session, actions: readonly Action[], method: UpsertMethod): Promise<void> {
    const client = session.client!;
    for (const plan of collapse(actions)) {
      const { table } = plan;
      for (let i = 0; i < plan.deletes.length; i += this.options.batchSize) {
        await this.deleteRows(client, table, plan.deletes.slice(i, i + this.options.batchSize));
      }
      for (const group of plan.upserts.values()) {
        for (let i = 0; i < group.length; i += this.options.batchSize) {
          const rows = i === 0 && group.length <= this.options.batchSize ? group : group.slice(i, i + this.options.batchSize);
          if (method === "copy" && !small(rows)) await this.copyRows(session, table, rows[0]!.columns!.names, (sql) => copyIn(client, sql, rows), plan.fresh);
          else await this.unnestRows(client, table, rows);
        }
      }
      // Rows without some of the source's columns: only ever updated (absent.ts), never inserted.
      for (const group of plan.updates.values()) {
        for (let i = 0; i < group.length; i += this.options.batchSize) {
          const rows = group.slice(i, i + this.options.batchSize);
          if (method === "copy" && !small(rows)) await this.copyUpdate(session, table, rows);
          else await this.unnestUpdate(client, table, rows);
        }
      }
    }
  }

  private async deleteRows(client: pg.Client, table: TargetTable, rows: readonly Action[]): Promise<void> {
    const key = table.primaryKey;
    const params = key.map((_, k) => textArrayLiteral(rows.map((r) => r.keyTexts[k]!)));
    const name = `dts_del_${table.display}`;
    const text =
      `DELETE FROM ${table.sql} AS t USING unnest(${key.map((_, k) => `$${k + 1}::text[]`).join(", ")}) AS u(${key.map((_, k) => `k${k}`).join(", ")}) ` +
      `WHERE ${key.map((c, k) => `t.${quoteIdent(c)} = u.k${k}::${table.columns.get(c)!.castType}`).join(" AND ")}`;
    await this.query(client, name, text, params);
  }

  private async unnestRows(client: pg.Client, table: TargetTable, rows: readonly Action[]): Promise<void> {
    const columns = rows[0]!.columns!.names;
    const texts = rows.map(textsOf);
    const params = columns.map((_, c) => textArrayLiteral(texts.map((row) => row[c]!)));
    const text =
      `INSERT INTO ${table.sql} AS t (${columns.map(quoteIdent).join(", ")})${table.identityAlways ? " OVERRIDING SYSTEM VALUE" : ""} ` +
      `SELECT ${columns.map((c, i) => (table.columns.get(c)!.arrayType === null ? `u.c${i}::${table.columns.get(c)!.castType}` : `u.c${i}`)).join(", ")} ` +
      `FROM unnest(${columns.map((c, i) => `$${i + 1}::${table.columns.get(c)!.arrayType ?? "text[]"}`).join(", ")}) AS u(${columns.map((_, i) => `c${i}`).join(", ")}) ` +
      onConflict(table, columns);
    await this.query(client, `dts_ups_${table.display}_${columns.join(",")}`, text, params);
  }

  /** Rows that are not whole, as arrays: an UPDATE of the columns they have. */
  private async unnestUpdate(client: pg.Client, table: TargetTable, rows: readonly Action[]): Promise<void> {
    const columns = rows[0]!.columns!.names;
    if (columns.every((c) => table.primaryKey.includes(c))) return;
    const texts = rows.map(textsOf);
    const params = columns.map((_, c) => textArrayLiteral(texts.map((row) => row[c]!)));
    const value = (c: string, i: number): string => (table.columns.get(c)!.arrayType === null ? `u.c${i}::${table.columns.get(c)!.castType}` : `u.c${i}`);
    const text =
      `UPDATE ${table.sql} AS t SET ${columns.flatMap((c, i) => (table.primaryKey.includes(c) ? [] : [`${quoteIdent(c)} = ${value(c, i)}`])).join(", ")} ` +
      `FROM unnest(${columns.map((c, i) => `$${i + 1}::${table.columns.get(c)!.arrayType ?? "text[]"}`).join(", ")}) AS u(${columns.map((_, i) => `c${i}`).join(", ")}) ` +
      `WHERE ${table.primaryKey.map((c) => `t.${quoteIdent(c)} = ${value(c, columns.indexOf(c))}`).join(" AND ")}`;
    const result = await this.query(client, `dts_upd_${table.display}_${columns.join(",")}`, text, params);
    updatedAll(table, result.rowCount, rows.length);
  }

  /**
   * COPY into a staging table, then one upsert from it. Rows the target is not expected to
   * have (a snapshot, inserts) are first tried straight into the table under a savepoint — a
   * fresh copy then costs one COPY — and a key that exists already sends that table's next
   * few batches of fresh rows to staging, until a replayed stretch is likely over.
   */
  private async copyRows(session: Session, table: TargetTable, columns: readonly string[], send: (copySql: string) => Promise<void>, fresh: boolean): Promise<void> {
    const client = session.client!;
    const columnList = columns.map(quoteIdent).join(", ");
    const skips = fresh ? (this.conflicted.get(table) ?? 0) : -1;
    if (skips > 0) this.conflicted.set(table, skips - 1);
    if (skips === 0 && !table.identityAlways) {
      await client.query("SAVEPOINT dts_direct");
      try {
        await send(`COPY ${table.sql} (${columnList}) FROM STDIN`);
        await client.query("RELEASE SAVEPOINT dts_direct");
        return;
      } catch (error) {
        if ((error as PgError).code !== "23505") throw error;
        await client.query("ROLLBACK TO SAVEPOINT dts_direct");
        await client.query("RELEASE SAVEPOINT dts_direct");
        this.conflicted.set(table, STAGED_AFTER_CONFLICT);
      }
    }
    const stage = await this.stage(session, table, columns, send);
    await client.query(
      `INSERT INTO ${table.sql} AS t (${columnList})${table.identityAlways ? " OVERRIDING SYSTEM VALUE" : ""} SELECT ${columnList} FROM ${stage} ` +
        onConflict(table, columns),
    );
  }

  /** Rows that are not whole, through a staging table: an UPDATE of the columns they have. */
  private async copyUpdate(session: Session, table: TargetTable, rows: readonly Action[]): Promise<void> {
    const client = session.client!;
    const columns = rows[0]!.columns!.names;
    const updated = columns.filter((c) => !table.primaryKey.includes(c));
    if (updated.length === 0) return;
    const stage = await this.stage(session, table, columns, (sql) => copyIn(client, sql, rows));
    const result = await client.query(
      `UPDATE ${table.sql} AS t SET ${updated.map((c) => `${quoteIdent(c)} = s.${quoteIdent(c)}`).join(", ")} FROM ${stage} AS s ` +
        `WHERE ${table.primaryKey.map((c) => `t.${quoteIdent(c)} = s.${quoteIdent(c)}`).join(" AND ")}`,
    );
    updatedAll(table, result.rowCount, rows.length);
  }

  /**
   * Sends rows into a staging table: one per target table and column list, typed like the
   * target's columns so that COPY's own input checks apply, and emptied by every commit (or
   * before a second use in one transaction).
   */
  private async stage(session: Session, table: TargetTable, columns: readonly string[], send: (copySql: string) => Promise<void>): Promise<string> {
    const client = session.client!;
    const columnList = columns.map(quoteIdent).join(", ");
    // The types are part of its name: after an ALTER COLUMN TYPE of the target, a new one is made.
    const stageKey = `${table.display}\u0000${columns.map((c) => `${c}\u0001${table.columns.get(c)!.typeName}`).join("\u0000")}`;
    let stage = session.staging.get(stageKey);
    if (stage === undefined) {
      // Named after what it holds, so that a table made by an earlier transaction of this
      // session is found again by IF NOT EXISTS even after the cache was cleared.
      stage = quoteIdent(`dts_stage_${createHash("sha1").update(stageKey).digest("hex").slice(0, 20)}`);
      await client.query(`CREATE TEMP TABLE IF NOT EXISTS ${stage} ON COMMIT DELETE ROWS AS SELECT ${columnList} FROM ${table.sql} WITH NO DATA`);
      session.staging.set(stageKey, stage);
    } else if (session.stagedInTransaction.has(stage)) {
      await client.query(`DELETE FROM ${stage}`);
    }
    session.stagedInTransaction.add(stage);
    await send(`COPY ${stage} (${columnList}) FROM STDIN`);
    return stage;
  }

  /** A named (server-side prepared) statement: parsed and planned once per session. */
  private async query(client: pg.Client, name: string, text: string, values: unknown[]): Promise<pg.QueryResult> {
    // Names are at most 63 bytes on the server; long ones are shortened to a stable hash. The
    // text is part of it: after DDL on the target (a wider type) the same name is a new text.
    const named = `${name}_${createHash("sha1").update(text).digest("hex").slice(0, 8)}`;
    const short = named.length <= 60 ? named : `dts_${createHash("sha1").update(named).digest("hex")}`;
    return client.query({ name: short, text, values });
  }

  /**
   * Careful mode: applies events [lo, hi) with the refused ones rejected. A range is tried
   * whole under a savepoint (unless known to fail) and split in two when refused.
   */
  private async bisect(session: Session, byEvent: readonly Action[][], lo: number, hi: number, rejections: Rejection[], knownToFail: boolean): Promise<void> {
    if (hi <= lo) return;
    const client = session.client!;
    if (hi - lo === 1) {
      const actions = byEvent[lo]!;
      if (actions.length === 0) return;
      await client.query("SAVEPOINT dts_event");
      try {
        for (const action of actions) await applyOne(client, action);
        await client.query("RELEASE SAVEPOINT dts_event");
      } catch (error) {
        if (!refused(error)) throw error;
        await client.query("ROLLBACK TO SAVEPOINT dts_event");
        await client.query("RELEASE SAVEPOINT dts_event");
        const reason = error instanceof EncodeError ? `${actions[0]!.table.display}: ${error.message}` : explain(actions, error as PgError);
        rejections.push({ index: actions[0]!.index, reason });
      }
      return;
    }
    if (!knownToFail) {
      await client.query("SAVEPOINT dts_range");
      try {
        await this.applyRange(session, byEvent.slice(lo, hi).flat(), "unnest");
        await client.query("RELEASE SAVEPOINT dts_range");
        return;
      } catch (error) {
        if (!refused(error)) throw error;
        await client.query("ROLLBACK TO SAVEPOINT dts_range");
        await client.query("RELEASE SAVEPOINT dts_range");
      }
    }
    const mid = lo + Math.floor((hi - lo) / 2);
    await this.bisect(session, byEvent, lo, mid, rejections, false);
    await this.bisect(session, byEvent, mid, hi, rejections, false);
  }
}

/** How a write ends: left open for the next part of a source transaction, or committed, in order among parallel writes. */
interface WriteEnd {
  readonly keepOpen: boolean;
  /** The write's place among parallel writes that store checkpoints (OrderedCheckpoints). */
  readonly ordering: number | undefined;
}

const NO_NAMES: readonly string[] = [];

/** Batches of fresh rows that go through staging after a direct COPY met an existing key. */
const STAGED_AFTER_CONFLICT = 8;

/**
 * Rows of one table and column list at most this many go by one prepared UNNEST statement even
 * with the COPY method: a staging table costs three round trips more (COPY, then the upsert from
 * it, and emptying it), which is most of the time of a small transaction applied as it streams.
 */
const SMALL_GROUP = 64;

/**
 * A group small enough for one UNNEST statement: few rows, none holding a large value. A
 * statement's parameters are whole strings in memory (a 50 MB bytea is a 100 MB hex text, then
 * its array literal), where COPY streams the row in chunks; documents (lists, records) may be
 * large too and go by COPY.
 */
function small(rows: readonly Action[]): boolean {
  if (rows.length > SMALL_GROUP) return false;
  for (const action of rows) {
    const row = action.row;
    if (row === null) continue;
    for (const column in row) {
      const value = row[column];
      if (typeof value === "string" ? value.length > SMALL_VALUE : value instanceof Uint8Array ? value.length > SMALL_VALUE / 2 : typeof value === "object" && value !== null && (Array.isArray(value) || isRecord(value))) {
        return false;
      }
    }
  }
  return true;
}

const SMALL_VALUE = 16 * 1024;

/** One connection and what lives in its server session. */
class Session {
  client: pg.Client | undefined;
  /** Staging tables of this session, by table and column list. */
  readonly staging = new Map<string, string>();
  /** Staging tables filled in the current transaction. */
  readonly stagedInTransaction = new Set<string>();
  /** Targets whose tables were altered (or created) inside the open transaction: forgotten if it is lost. */
  readonly altered = new Set<string>();

  /** The connection is gone, and what lived in its session (staging tables) with it. */
  forget(client?: pg.Client): void {
    if (client !== undefined && this.client !== client) return;
    this.client = undefined;
    this.staging.clear();
  }
}


/**
 * An UPDATE of rows the write found in the target (absent.ts) must have met them all; one that
 * did not, met a row removed since by someone else: the write is tried again, and rereads.
 */
function updatedAll(table: TargetTable, count: number | null, expected: number): void {
  if (count === expected) return;
  throw new ConnectorError(`${table.display}: ${expected - (count ?? 0)} of ${expected} rows to update were no longer there (changed by another writer?)`, true);
}

/** `schema.table` (or `db.table`) of the event's source table. */
function sourceNameOf(event: ChangeEvent): string {
  return `${event.source.schema || event.source.db}.${event.source.table}`;
}

/** `added c integer, n integer -> bigint`: what a change asks of the target, for a message. */
function describeSteps(steps: readonly ColumnSync[]): string {
  return steps
    .flatMap((step) => (step.kind === "add" ? [`added ${step.column} ${step.type}`] : step.kind === "widen" ? [`${step.column} ${step.from} -> ${step.to}`] : []))
    .join(", ");
}

/**
 * An update rejected because it lacks some of the source's columns and the target has no row to
 * take them from: which columns, why they are missing, and how to make the source send them.
 */
function absentReason(event: ChangeEvent, rejection: AbsentRejection): string {
  const { action, absent, looked } = rejection;
  const table = action.table;
  const keyOf = (texts: readonly (string | null)[]): string => table.primaryKey.map((c, k) => `${c}=${texts[k] ?? "null"}`).join(", ");
  const own = keyOf(keyTextsOf(action));
  const them = absent.length === 1 ? "it" : "them";
  const rows = looked.length === 0 ? "the row it replaces was deleted before it" : `the target has no row ${looked.map(keyOf).join(" or ")} to take ${them} from`;
  const source = sourceNameOf(event);
  return (
    `${table.display} (${own}): the update has no value for ${absent.length === 1 ? "column" : "columns"} ${absent.join(", ")} ` +
    `(unchanged, so left out of the change: PostgreSQL does so with large TOASTed values) and ${rows}; ` +
    `writing the row would put NULL in ${them}. Have the source send whole rows: ALTER TABLE ${source} REPLICA IDENTITY FULL, ` +
    `and copy the table again to bring the target's rows back`
  );
}

/** The server refused a value or a row, or a value could not be encoded: careful mode finds which. */
function refused(error: unknown): boolean {
  return error instanceof EncodeError || errorKind(error) === "data";
}

function onConflict(table: TargetTable, columns: readonly string[]): string {
  const keyList = table.primaryKey.map(quoteIdent).join(", ");
  const updates = columns.filter((c) => !table.primaryKey.includes(c));
  if (updates.length === 0) return `ON CONFLICT (${keyList}) DO NOTHING`;
  return `ON CONFLICT (${keyList}) DO UPDATE SET ${updates.map((c) => `${quoteIdent(c)} = EXCLUDED.${quoteIdent(c)}`).join(", ")}`;
}

/**
 * Streams the rows into COPY. A row that cannot be encoded ends the stream early (the COPY
 * then completes with the rows before it) and the error is thrown after: the caller rolls the
 * transaction back, so the partial COPY never counts.
 */
async function copyIn(client: pg.Client, sql: string, rows: readonly Action[]): Promise<void> {
  const stream = client.query(copyStreams.from(sql));
  const refusal: { error?: EncodeError } = {};
  await pipeline(Readable.from(copyChunks(rows, refusal), { objectMode: false }), stream);
  if (refusal.error !== undefined) throw refusal.error;
}

/** COPY text, in chunks of about 256 kB; large bytes in slices of their own (largeCopyValues). */
function* copyChunks(rows: readonly Action[], refusal: { error?: EncodeError }): Generator<string> {
  const escaped = rows[0]!.columns!.escaped;
  let chunk = "";
  for (const row of rows) {
    let texts: readonly (string | null)[];
    let large: Map<number, Iterable<string>> | undefined;
    try {
      large = row.texts === null ? largeCopyValues(row.columns!.names, row.columns!.encoders, row.row!) : undefined;
      texts = large === undefined ? textsOf(row) : encodeRow(row.columns!, row.row!, large);
    } catch (error) {
      if (!(error instanceof EncodeError)) throw error;
      refusal.error = error;
      break;
    }
    let line = "";
    for (let i = 0; i < texts.length; i++) {
      const text = texts[i]!;
      if (i > 0) line += "\t";
      const slices = large?.get(i);
      if (slices !== undefined) {
        chunk += line;
        line = "";
        if (chunk !== "") yield chunk;
        chunk = "";
        yield* slices;
        continue;
      }
      line += text === null ? "\\N" : escaped[i] ? copyField(text) : text;
    }
    chunk += line + "\n";
    if (chunk.length > 262_144) {
      yield chunk;
      chunk = "";
    }
  }
  if (chunk !== "") yield chunk;
}

/** One event's action(s) applied with plain one-row statements (careful mode). */
async function applyOne(client: pg.Client, action: Action): Promise<void> {
  const { table } = action;
  if (action.kind === "delete") {
    await client.query(
      `DELETE FROM ${table.sql} WHERE ${table.primaryKey.map((c, k) => `${quoteIdent(c)} = $${k + 1}`).join(" AND ")}`,
      action.keyTexts as (string | null)[],
    );
    return;
  }
  // Untyped parameters take the column's type, so a refused value is reported by position.
  const columns = action.columns!.names;
  const texts = textsOf(action);
  if (!action.whole) {
    // Not whole: only the columns it has, of the row the target has (absent.ts).
    const updated = columns.flatMap((c, i) => (table.primaryKey.includes(c) ? [] : [`${quoteIdent(c)} = $${i + 1}`]));
    if (updated.length === 0) return;
    const result = await client.query(
      `UPDATE ${table.sql} SET ${updated.join(", ")} WHERE ${table.primaryKey.map((c) => `${quoteIdent(c)} = $${columns.indexOf(c) + 1}`).join(" AND ")}`,
      texts as (string | null)[],
    );
    updatedAll(table, result.rowCount, 1);
    return;
  }
  await client.query(
    `INSERT INTO ${table.sql} AS t (${columns.map(quoteIdent).join(", ")})${table.identityAlways ? " OVERRIDING SYSTEM VALUE" : ""} ` +
      `VALUES (${columns.map((_, i) => `$${i + 1}`).join(", ")}) ` +
      onConflict(table, columns),
    texts as (string | null)[],
  );
}

/**
 * Whether a source's COPY text can go into a column set unchanged: the same columns in the
 * same order, each of the same type (so the server reads each text as the source's type
 * printed it). Money is left out: its text depends on each server's locale.
 */
class BulkCheck {
  private readonly checked = new WeakMap<ColumnSet, { columns: readonly string[]; types: readonly string[]; fits: boolean }>();

  fits(set: ColumnSet, raw: BulkRows): boolean {
    if (raw.format !== "pg-copy-data") return false;
    const last = this.checked.get(set);
    if (last !== undefined && last.columns === raw.columns && last.types === raw.types) return last.fits;
    const { names, table } = set;
    let fits = raw.columns.length === names.length && raw.types.length === names.length;
    for (let i = 0; fits && i < names.length; i++) {
      const type = table.columns.get(names[i]!)!.typeName;
      fits = raw.columns[i] === names[i] && raw.types[i] === type && type !== "money";
    }
    this.checked.set(set, { columns: raw.columns, types: raw.types, fits });
    return fits;
  }
}


/** A rejection's reason: table, key, column and value where they can be told, and the server's words. */
function explain(actions: readonly Action[], error: PgError): string {
  const action = actions.find((a) => a.kind === "upsert") ?? actions[0]!;
  const { table } = action;
  const keyTexts = keyTextsOf(action);
  const key = table.primaryKey.map((c, k) => `${c}=${keyTexts[k] ?? "null"}`).join(", ");
  const names = action.columns?.names ?? [];
  const texts = action.kind === "upsert" ? textsOf(action) : NO_TEXTS;
  const column = culpritColumn(action, names, texts, error);
  const at = column === undefined ? -1 : names.indexOf(column);
  const value = at === -1 ? "" : ` (value ${JSON.stringify(shorten(texts[at] ?? null))})`;
  const detail = error.detail ? `; ${error.detail}` : "";
  return `${table.display} (${key})${column === undefined ? "" : `, column ${column}`}: ${error.message}${value}${detail}`;
}

function culpritColumn(action: Action, names: readonly string[], texts: readonly (string | null)[], error: PgError): string | undefined {
  if (error.column !== undefined) return error.column;
  const parameter = /parameter \$(\d+)/.exec(error.where ?? "");
  if (parameter !== null) return (action.kind === "delete" ? action.table.primaryKey : names)[Number(parameter[1]) - 1];
  // "value too long for type character varying(3)", "integer out of range", "numeric field overflow"
  const typeName =
    /for type (.+?)(?::|$)/.exec(error.message)?.[1] ??
    /^(\w+) out of range/.exec(error.message)?.[1] ??
    (error.message.startsWith("numeric field overflow") ? "numeric(" : undefined);
  if (typeName === undefined) return undefined;
  const candidates = names.filter((c, i) => texts[i] !== null && action.table.columns.get(c)!.typeName.startsWith(typeName));
  if (candidates.length === 1) return candidates[0];
  const limit = /\((\d+)\)$/.exec(typeName);
  if (limit !== null) return candidates.find((c) => [...(texts[names.indexOf(c)] ?? "")].length > Number(limit[1]));
  return undefined;
}

function shorten(text: string | null): string | null {
  return text !== null && text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
