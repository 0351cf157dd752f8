/**
 * The PostgreSQL sink: each write is one target transaction of idempotent upserts and deletes.
 *
 * A write is planned before anything is sent. Every event becomes one or two actions on its
 * target table — an upsert of its row, a delete of its key, or for an update that changed the
 * key both (delete the old key, upsert the new row). Rows whose columns the table lacks are
 * rejected here, without a round trip, and so are updates and deletes with a value no column
 * can hold, as their keys are encoded (encode.ts) at once; inserts and snapshot rows are encoded
 * while they stream to the server, so that the work overlaps the server's. The actions of a
 * table then collapse per key, in order: the last action on a key is the key's final state (a
 * full row image makes an upsert self-sufficient; a partial one, such as an update without its
 * unchanged TOAST columns, is merged into the earlier row), so each key appears once per
 * statement, which `ON CONFLICT DO UPDATE` requires. Per table, the deletes go first, then the
 * upserts in the order their keys were last touched — a delete and an upsert of the same key
 * have become one action, so the reordering never changes a key's outcome.
 *
 * Upserts are batched one of two ways (docs/performance.md has the measurements that chose the
 * default): `copy` streams the rows into a temporary staging table with COPY and upserts from
 * it, `INSERT … SELECT … ON CONFLICT (pk) DO UPDATE` — and COPYs a batch of inserts and snapshot
 * rows straight into the table, under a savepoint, when none of its keys exists yet; `unnest`
 * sends one array per column, `INSERT … SELECT … FROM unnest($1::int8[], …) ON CONFLICT …`.
 * Deletes always go through unnest.
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
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type pg from "pg";
import copyStreams from "pg-copy-streams";
import type { ChangeEvent } from "../../model/event.js";
import type { Row, Value } from "../../model/value.js";
import { integerOption, stringOption } from "../../runtime/connector-options.js";
import {
  batchSize,
  ConnectorError,
  type BulkRows,
  type Logger,
  type Rejection,
  type SinkBatch,
  type SinkContext,
  type SinkEvent,
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
import { COPY_SAFE_KINDS, copyField, EncodeError, largeCopyValues, textArrayLiteral, type Encoder } from "./encode.js";

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
  readonly describeSource?: (event: ChangeEvent) => Promise<TableSchema | undefined>;
  readonly method?: UpsertMethod;
  /** Snapshot chunks loaded at once, each on its own connection. */
  readonly snapshotWriters?: number;
}

export function createSink(context: SinkContext): SinkWriter {
  const { options } = context;
  const createTables = options["create_tables"];
  if (createTables !== undefined && createTables !== null && typeof createTables !== "boolean") {
    throw new ConnectorError("postgres sink: option create_tables must be a boolean", false);
  }
  return new PostgresSink({
    url: stringOption(options, "postgres sink", "url"),
    createTables: createTables === true,
    batchSize: integerOption(options, "postgres sink", "batch_size", 10_000, 1),
    snapshotWriters: integerOption(options, "postgres sink", "snapshot_writers", DEFAULT_SNAPSHOT_WRITERS, 1),
    pipeline: context.pipeline,
    name: context.name,
    log: context.log,
    ...(context.describeSource !== undefined ? { describeSource: context.describeSource } : {}),
  });
}

/**
 * A list of columns that rows of one table arrive with, shared by every such row (most tables
 * have one): the encoders, where the key columns are, which texts COPY may need to escape.
 */
interface ColumnSet {
  readonly table: TargetTable;
  readonly names: readonly string[];
  readonly encoders: readonly Encoder[];
  /** Where each primary-key column is in `names`, in key order. */
  readonly keyIndexes: readonly number[];
  /** Whether a column's text can hold a character COPY must escape (numbers and times cannot). */
  readonly escaped: readonly boolean[];
}

/** One thing to do to one row of one table, on behalf of the event at `index`. */
interface Action {
  readonly index: number;
  readonly table: TargetTable;
  readonly kind: "upsert" | "delete";
  /** An insert or snapshot read: a row the target is not expected to have yet. */
  readonly fresh: boolean;
  /** Upserts: the row image and the set of its columns. */
  readonly row: Row | null;
  readonly columns: ColumnSet | null;
  /**
   * Upserts: the encoded values, when planning needed them (an update's key, a merge). A fresh
   * row is encoded only as it is written (`textsOf`), so that on the snapshot's hot path the
   * encoding of a chunk overlaps the server's work on the chunk before it.
   */
  readonly texts: readonly (string | null)[] | null;
  /** Deletes: the encoded primary-key values, in `table.primaryKey` order. */
  readonly keyTexts: readonly (string | null)[];
  /** The row's identity in its table (the encoded key), once computed. */
  key: string | undefined;
}

interface TablePlan {
  readonly table: TargetTable;
  readonly deletes: Action[];
  /** By column set. */
  readonly upserts: Map<ColumnSet, Action[]>;
  readonly fresh: boolean;
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
    if (bulk === undefined && batch.events.length === 0 && batch.checkpoints === undefined) {
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
    if (!ending.keepOpen) await client.query("COMMIT");
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
      actions = await this.plan(session, batch.events, rejections);
    } catch (error) {
      throw this.failure(error, "preparing a write", session);
    }
    try {
      const client = await this.connection(session);
      await this.startWrite(session, continuing);
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
    const client = await connect(this.options.url, `dts sink ${this.options.name}`);
    client.on("error", () => session.forget(client));
    client.on("end", () => session.forget(client));
    session.client = client;
    return client;
  }

  /** Turns an error into a ConnectorError; after a connection error, drops the session. */
  private failure(error: unknown, doing: string, session: Session): ConnectorError {
    const converted = connectorError(error, this.server, `sink ${this.options.name}: ${doing}`);
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

  /** Every event's actions, by event; events that cannot be applied are rejected here. */
  private async plan(session: Session, events: readonly SinkEvent[], rejections: Rejection[]): Promise<Action[][]> {
    const byEvent: Action[][] = [];
    for (let index = 0; index < events.length; index++) {
      const sinkEvent = events[index]!;
      const table = this.tables.get(sinkEvent.target) ?? (await this.resolveOnce(session, sinkEvent.target, () => events));
      try {
        byEvent.push(actionsOf(sinkEvent, index, table, this.columnSets));
      } catch (error) {
        if (!(error instanceof EncodeError)) throw error;
        rejections.push({ index, reason: `${table.display}: ${error.message}` });
      }
    }
    return byEvent;
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
    const described = await this.options.describeSource?.(first.event).catch(() => undefined);
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
          if (method === "copy") await this.copyRows(session, table, rows[0]!.columns!.names, (sql) => copyIn(client, sql, rows), plan.fresh);
          else await this.unnestRows(client, table, rows);
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
    const stageKey = `${table.display}\u0000${columns.join("\u0000")}`;
    // One staging table per target table and column list, typed like the target's columns so
    // that COPY's own input checks apply, and emptied by every commit (or before a second use
    // in one transaction).
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
    await client.query(
      `INSERT INTO ${table.sql} AS t (${columnList})${table.identityAlways ? " OVERRIDING SYSTEM VALUE" : ""} SELECT ${columnList} FROM ${stage} ` +
        onConflict(table, columns),
    );
  }

  /** A named (server-side prepared) statement: parsed and planned once per session. */
  private async query(client: pg.Client, name: string, text: string, values: unknown[]): Promise<void> {
    // Names are at most 63 bytes on the server; long ones are shortened to a stable hash.
    const short = name.length <= 60 ? name : `dts_${createHash("sha1").update(name).digest("hex")}`;
    await client.query({ name: short, text, values });
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

/** Batches of fresh rows that go through staging after a direct COPY met an existing key. */
const STAGED_AFTER_CONFLICT = 8;

/** One connection and what lives in its server session. */
class Session {
  client: pg.Client | undefined;
  /** Staging tables of this session, by table and column list. */
  readonly staging = new Map<string, string>();
  /** Staging tables filled in the current transaction. */
  readonly stagedInTransaction = new Set<string>();

  /** The connection is gone, and what lived in its session (staging tables) with it. */
  forget(client?: pg.Client): void {
    if (client !== undefined && this.client !== client) return;
    this.client = undefined;
    this.staging.clear();
  }
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
  await client.query(
    `INSERT INTO ${table.sql} AS t (${columns.map(quoteIdent).join(", ")})${table.identityAlways ? " OVERRIDING SYSTEM VALUE" : ""} ` +
      `VALUES (${columns.map((_, i) => `$${i + 1}`).join(", ")}) ` +
      onConflict(table, columns),
    texts as (string | null)[],
  );
}

/**
 * Per table (in order of first appearance): each key's final action. A range of inserts and
 * snapshot reads only needs no collapsing (a key cannot be inserted twice without a delete in
 * between), which spares a map lookup per row on the snapshot's hot path; should a key repeat
 * anyway (two sources routed into one table), the server refuses the statement and careful
 * mode applies the rows one by one, in order.
 */
function collapse(actions: readonly Action[]): TablePlan[] {
  if (actions.every((action) => action.fresh)) return groupFresh(actions);
  const finals = new Map<TargetTable, Map<string, Action>>();
  const fresh = new Map<TargetTable, boolean>();
  for (const action of actions) {
    let byKey = finals.get(action.table);
    if (byKey === undefined) {
      byKey = new Map();
      finals.set(action.table, byKey);
      fresh.set(action.table, true);
    }
    if (!action.fresh) fresh.set(action.table, false);
    const key = keyOfAction(action);
    const previous = byKey.get(key);
    let final = action;
    if (previous !== undefined) {
      byKey.delete(key); // re-inserted below, so that the map's order is last-touched order
      if (action.kind === "upsert" && previous.kind === "upsert") final = merge(previous, action);
    }
    byKey.set(key, final);
  }
  const plans: TablePlan[] = [];
  for (const [table, byKey] of finals) {
    const plan: TablePlan = { table, deletes: [], upserts: new Map(), fresh: fresh.get(table)! };
    for (const action of byKey.values()) {
      if (action.kind === "delete") plan.deletes.push(action);
      else addTo(plan.upserts, action);
    }
    plans.push(plan);
  }
  return plans;
}

function groupFresh(actions: readonly Action[]): TablePlan[] {
  const plans = new Map<TargetTable, TablePlan>();
  for (const action of actions) {
    let plan = plans.get(action.table);
    if (plan === undefined) {
      plan = { table: action.table, deletes: [], upserts: new Map(), fresh: true };
      plans.set(action.table, plan);
    }
    addTo(plan.upserts, action);
  }
  return [...plans.values()];
}

function addTo(groups: Map<ColumnSet, Action[]>, action: Action): void {
  const group = groups.get(action.columns!);
  if (group === undefined) groups.set(action.columns!, [action]);
  else group.push(action);
}

/** A later row image over an earlier one: columns it lacks keep the earlier values. */
function merge(earlier: Action, later: Action): Action {
  const before = earlier.columns!;
  const after = later.columns!;
  if (before === after || before.names.every((c) => after.names.includes(c))) return later;
  const texts = new Map<string, string | null>();
  const earlierTexts = textsOf(earlier);
  const laterTexts = textsOf(later);
  before.names.forEach((c, i) => texts.set(c, earlierTexts[i]!));
  after.names.forEach((c, i) => texts.set(c, laterTexts[i]!));
  const names = [...texts.keys()];
  return { ...later, row: null, columns: columnSetOf(later.table, names), texts: names.map((c) => texts.get(c)!) };
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

/** The column sets met so far, per table; the last one used is tried first. */
class ColumnSets {
  private readonly last = new Map<TargetTable, ColumnSet>();
  private readonly lastNamed = new Map<TargetTable, { names: readonly string[]; set: ColumnSet }>();

  /** The set of these columns (a source's raw column list, one array for all its batches). */
  ofNames(table: TargetTable, names: readonly string[]): ColumnSet {
    const last = this.lastNamed.get(table);
    if (last !== undefined && last.names === names) return last.set;
    const set = columnSetOf(table, names);
    this.lastNamed.set(table, { names, set });
    return set;
  }

  /** The set of `row`'s columns, found without allocating when it is the usual one. */
  of(table: TargetTable, row: Row): ColumnSet {
    const last = this.last.get(table);
    if (last !== undefined) {
      const names = last.names;
      let i = 0;
      let same = true;
      for (const name in row) {
        if (names[i] !== name) {
          same = false;
          break;
        }
        i++;
      }
      if (same && i === names.length) return last;
    }
    const set = columnSetOf(table, Object.keys(row));
    this.last.set(table, set);
    return set;
  }
}

const columnSetCache = new WeakMap<TargetTable, Map<string, ColumnSet>>();

function columnSetOf(table: TargetTable, names: readonly string[]): ColumnSet {
  let sets = columnSetCache.get(table);
  if (sets === undefined) {
    sets = new Map();
    columnSetCache.set(table, sets);
  }
  const id = names.join("\u0000");
  let set = sets.get(id);
  if (set === undefined) {
    const columns = names.map((name) => {
      const column = table.columns.get(name);
      if (column === undefined) throw new EncodeError(`no column ${name} in ${table.display}`);
      return column;
    });
    const keyIndexes = table.primaryKey.map((name) => names.indexOf(name));
    const missing = table.primaryKey.find((_, k) => keyIndexes[k] === -1);
    if (missing !== undefined) throw new EncodeError(`the row has no value for the primary-key column ${missing}`);
    set = {
      table,
      names,
      encoders: columns.map((c) => c.encode),
      keyIndexes,
      escaped: columns.map((c) => !COPY_SAFE_KINDS.has(c.encoding.kind)),
    };
    sets.set(id, set);
  }
  return set;
}

/**
 * What the event asks of its target table; throws EncodeError when it cannot be applied. An
 * insert or read is only checked for its columns here (see `Action.texts`); an update is
 * encoded at once, as its key decides whether it moved a row.
 */
function actionsOf(sinkEvent: SinkEvent, index: number, table: TargetTable, columnSets: ColumnSets): Action[] {
  const event = sinkEvent.event;
  if (event.op === "delete") return [deleteAction(index, table, keyOf(table, event.key, event.before))];
  const after = event.after;
  if (after === null) throw new EncodeError(`${event.op} event without an after image`);
  const columns = columnSets.of(table, after);
  if (event.op !== "update") {
    return [{ index, table, kind: "upsert", fresh: true, row: after, columns, texts: null, keyTexts: NO_TEXTS, key: undefined }];
  }
  const texts = encodeRow(columns, after);
  const upsert: Action = { index, table, kind: "upsert", fresh: false, row: after, columns, texts, keyTexts: NO_TEXTS, key: undefined };
  if (event.before !== null && table.primaryKey.every((name) => Object.hasOwn(event.before!, name))) {
    const oldKey = keyOf(table, null, event.before);
    if (keyString(oldKey) !== keyOfAction(upsert)) return [deleteAction(index, table, oldKey), upsert];
  }
  return [upsert];
}

/** The row's columns' texts; those in `skip` are left null (their caller sends them otherwise). */
function encodeRow(columns: ColumnSet, row: Row, skip?: ReadonlyMap<number, unknown>): (string | null)[] {
  const { names, encoders } = columns;
  const texts: (string | null)[] = new Array(names.length);
  for (let i = 0; i < names.length; i++) {
    if (skip?.has(i)) {
      texts[i] = null;
      continue;
    }
    try {
      texts[i] = encoders[i]!(row[names[i]!]!);
    } catch (error) {
      if (error instanceof EncodeError) throw new EncodeError(`column ${names[i]}: ${error.message}`);
      throw error;
    }
  }
  return texts;
}

/** An upsert's encoded values (encoding them now if planning did not). */
function textsOf(action: Action): readonly (string | null)[] {
  return action.texts ?? encodeRow(action.columns!, action.row!);
}

const NO_TEXTS: readonly (string | null)[] = [];

function deleteAction(index: number, table: TargetTable, keyTexts: (string | null)[]): Action {
  return { index, table, kind: "delete", fresh: false, row: null, columns: null, texts: null, keyTexts, key: keyString(keyTexts) };
}

/** The encoded key of any action. */
function keyTextsOf(action: Action): readonly (string | null)[] {
  if (action.kind === "delete") return action.keyTexts;
  const { keyIndexes, encoders, names } = action.columns!;
  if (action.texts !== null) return keyIndexes.map((at) => action.texts![at]!);
  return keyIndexes.map((at) => encoders[at]!(action.row![names[at]!]!));
}

function keyOfAction(action: Action): string {
  if (action.key === undefined) action.key = keyString(keyTextsOf(action));
  return action.key;
}

/** The primary key's encoded values, from the event's key or else its before image. */
function keyOf(table: TargetTable, key: Row | null, before: Row | null): (string | null)[] {
  return table.primaryKey.map((name) => {
    const value = key !== null && Object.hasOwn(key, name) ? key[name]! : before !== null && Object.hasOwn(before, name) ? before[name]! : undefined;
    if (value === undefined || value === null) throw new EncodeError(`the delete has no value for the primary-key column ${name}`);
    return table.columns.get(name)!.encode(value);
  });
}

function keyString(texts: readonly (string | null)[]): string {
  return texts.length === 1 ? (texts[0] ?? "\u0000") : texts.map((t) => (t === null ? "\u0000" : t)).join("\u0001");
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
