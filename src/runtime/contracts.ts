/**
 * What a connector implements and what the runtime gives it. Sources are pulled: the
 * runtime asks for the next batch only when its in-flight limit allows, so a slow sink slows
 * the source and memory stays bounded by (batch size × in-flight batches), whatever the
 * backlog. A push-based protocol (a replication socket) must pause itself while nobody pulls.
 *
 * Positions move only at transaction ends: a source marks the batches after which it could
 * resume (`checkpoint`), the coordinator persists that checkpoint only after every sink that
 * received the batch's events has made them durable, and only then tells the source
 * (`acknowledge`), e.g. to move a PostgreSQL slot.
 */
import type { JsonValue } from "../model/json-value.js";
import type { ChangeEvent } from "../model/event.js";
import type { Position } from "../model/position.js";
import type { Value } from "../model/value.js";

/** Where a source resumes: its position, and connector state such as snapshot progress. */
export interface SourceCheckpoint {
  readonly position: Position | null;
  /** Connector-specific and JSON-serializable, e.g. `{ snapshot: { table, lastKey } }`. */
  readonly state?: JsonValue;
}

export interface SourceBatch {
  /**
   * The batch's events. A batch with `bulk` may make them only when first read (a getter): the
   * runtime reads them only for a flow with steps or a sink that does not take the bulk rows,
   * so a snapshot chunk loaded as it is never becomes events at all.
   */
  readonly events: readonly ChangeEvent[];
  /**
   * Set when the batch ends at a transaction boundary: after these events are durable, the
   * source can resume from here. A batch that ends inside a large transaction has none.
   */
  readonly checkpoint?: SourceCheckpoint;
  /** The source has nothing more to send right now (used by `--until-caught-up`). */
  readonly caughtUp?: boolean;
  /**
   * Optional: the events' rows as the source database printed them in its bulk format, for a
   * sink that loads that format as it is (a PostgreSQL snapshot chunk into a PostgreSQL table
   * with the same columns). Only for `read` events of one table; `events` stays authoritative.
   */
  readonly bulk?: BulkRows;
  /**
   * Captured tables whose columns changed (ALTER TABLE) before this batch's events: each is
   * seen by the sinks before any event of the batch, so that a database sink can add or widen
   * a column before the first row that needs it.
   */
  readonly schemaChanges?: readonly SchemaChange[];
}

/**
 * A captured table's definition changed, as the source saw it in its change stream (PostgreSQL's
 * Relation message, MySQL's DDL in the binlog), at the point where it happened: the events
 * after it have the new columns.
 */
export interface SchemaChange {
  /** The table as events name it (`schema.table`, or `db.table`), after the change. */
  readonly table: string;
  /** The table's columns and key after the change. */
  readonly schema: TableSchema;
  /** What changed, column by column, in the table's column order. */
  readonly columns: readonly ColumnChange[];
  /** Set when the table itself was renamed: its name before. */
  readonly renamedFrom?: string;
}

/**
 * One column's change. Where the source cannot tell a rename from a drop and an add (pgoutput
 * sends only the new column list), a rename is a `dropped` and an `added`.
 */
export type ColumnChange =
  | {
      readonly kind: "added";
      readonly column: string;
      readonly type: string;
      /**
       * What the rows that existed before the change hold in the new column, when not NULL: a
       * constant DEFAULT's value as the source prints it, or values the server computed row by
       * row (a volatile DEFAULT such as random()), which no change event carries.
       */
      readonly existing?: { readonly value: string } | "computed";
    }
  | { readonly kind: "dropped"; readonly column: string; readonly type: string }
  | { readonly kind: "retyped"; readonly column: string; readonly from: string; readonly to: string }
  | { readonly kind: "renamed"; readonly from: string; readonly to: string };

/** A schema change as a sink receives it: with the table it applies to in this sink. */
export interface SinkSchemaChange {
  readonly change: SchemaChange;
  /** The sink's table for the source table (`target`): the events of that table land there. */
  readonly target: string;
}

/**
 * Rows of one table in a database's bulk format, `count` of them, in the batch's event order.
 * `pg-copy-data`: PostgreSQL's COPY text (fields escaped, `\N` for NULL, tab-separated, each
 * row ending in a newline), each row framed as the protocol's CopyData message (`d`, a 4-byte
 * big-endian length counting itself, the row) — as it comes from one server's COPY TO and goes
 * into another's COPY FROM. The bytes are split across `data` anywhere, even inside a message;
 * together they are whole messages. A sink loads them as they are or not at all.
 */
export interface BulkRows {
  readonly format: "pg-copy-data";
  /** The table the rows belong to, as events name it (`schema.table`): their target. */
  readonly table: string;
  /** The columns of every line, in order (one array for all batches of a table). */
  readonly columns: readonly string[];
  /** Each column's type as the source prints it (PostgreSQL's `format_type`: `numeric(12,2)`). */
  readonly types: readonly string[];
  readonly data: readonly Buffer[];
  readonly count: number;
}

/** The number of events in a batch, without making a bulk batch's events. */
export function batchSize(batch: SourceBatch | SinkBatch): number {
  return batch.bulk !== undefined ? batch.bulk.count : batch.events.length;
}

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export interface SourceContext {
  readonly pipeline: string;
  /** The source's name in the pipeline. */
  readonly name: string;
  /** Options fixed at start, `env()` and lets resolved, defaults filled. */
  readonly options: Readonly<Record<string, Value>>;
  /** The last durable checkpoint, or null on a first run. */
  readonly resume: SourceCheckpoint | null;
  readonly log: Logger;
  /** Aborted when the pipeline stops: a source ends its iteration soon after. */
  readonly signal: AbortSignal;
  /**
   * The pipeline file's folder: a relative path in an option (a file to read) is relative to
   * it, as checkpoint files and validate schemas are. The working directory when absent.
   */
  readonly baseDir?: string;
  /** Optional: where a snapshot stands, for the progress display (null once it is done). */
  readonly snapshotProgress?: (progress: SnapshotProgress | null) => void;
}

/** A snapshot's progress through its tables. */
export interface SnapshotProgress {
  /** The table being copied (`schema.table`). */
  readonly table: string;
  /** Rows of it copied so far (since the copy resumed, after a crash). */
  readonly rows: number;
  /** The table's size as the database estimates it; unknown when absent. */
  readonly estimatedRows?: number;
  /** Its place among the tables to copy, from 1, and how many there are. */
  readonly tableNumber: number;
  readonly tables: number;
}

export interface SourceReader {
  /** Connects and checks what it needs (tables exist, server settings); throws a ConnectorError. */
  start(): Promise<void>;
  /** Ends when the source is finite and done (datagen, jsonl, snapshot "only") or on abort. */
  batches(): AsyncIterable<SourceBatch>;
  /** Everything up to this checkpoint is durable in every sink and in the checkpoint store. */
  acknowledge(checkpoint: SourceCheckpoint): Promise<void>;
  /** Called once at the end, also after a failed `start()` (release whatever it opened). */
  close(): Promise<void>;
  /**
   * Optional: a captured table's columns and primary key as the source database declares them,
   * for sinks that create missing tables (`create_tables`). Undefined for a table it does not know.
   */
  describe?(table: { readonly schema: string; readonly table: string }): Promise<TableSchema | undefined>;
}

/** A table as its source database declares it: what a sink needs to create a faithful copy. */
export interface TableSchema {
  /** The database whose type names `columns[].type` uses. */
  readonly dialect: "postgres" | "mysql";
  /** In table order. `type` as the database prints it: `numeric(10,2)`, `character varying(3)`, `integer[]`, `varchar(20)`. */
  readonly columns: readonly { readonly name: string; readonly type: string; readonly nullable: boolean }[];
  readonly primaryKey: readonly string[];
}

/** One event as a sink sees it: after the flow's steps, with its destination table. */
export interface SinkEvent {
  readonly event: ChangeEvent;
  /** `target`: the source table, unless a `route` step set another. */
  readonly target: string;
  /**
   * The pipeline source whose flow gave the event (its name in the file): what
   * `SinkContext.describeSource` asks, since two sources of one connector may hold tables of
   * the same name. Set by the runtime.
   */
  readonly sourceName?: string;
  /** Set only for events sent to the dead-letter sink: why the event was rejected, and where. */
  readonly rejection?: { readonly reason: string; readonly where: string };
}

export interface SinkBatch {
  /** The events; with `bulk`, its rows as events, made only when first read. */
  readonly events: readonly SinkEvent[];
  /**
   * Set when the events are exactly these rows, untouched by any step and bound for
   * `bulk.table`, in a format the sink takes (`SinkWriter.bulkFormats`). The sink may load the
   * rows and never read `events`; it still answers with rejections indexed by event.
   */
  readonly bulk?: BulkRows;
  /**
   * Set when the batch is part of a source transaction too large for one batch (a batch of
   * its source without a checkpoint). `continues`: the batch's first events belong to a
   * transaction whose earlier events came in this sink's earlier writes; `open`: its last
   * events' transaction goes on in a later write. The write that ends it has neither (and may
   * have no events). A sink that applies a source transaction whole keeps its own transaction
   * open across these writes and commits at the end: a write that leaves it open is not
   * durable when it resolves, and need not be — the position moves only at a transaction's
   * end, so a crash before it replays the whole transaction. Writes of one open transaction
   * come one at a time, not combined with other batches.
   */
  readonly transaction?: SourceTransaction;
  /**
   * When the sink holds the pipeline's checkpoints (`checkpoint: "postgres"`), the
   * checkpoints to store in the same transaction as these events, by source name.
   * `events` may then be empty (a batch whose events were all filtered out still moves the
   * position). A write that rejects any event must not store these checkpoints: the runner
   * then stops, and the position must not have moved past the rejected event.
   */
  readonly checkpoints?: Readonly<Record<string, SourceCheckpoint>>;
  /**
   * Changes of source tables to apply before `events` (`SourceBatch.schemaChanges`). A sink
   * gets them only from flows that pass the source's columns through unchanged and do not
   * route (steps of `filter` and `validate` only), since only there are its table's columns
   * the source table's. A sink that keeps tables (a database) brings its table in line with
   * each — or, where it cannot (a narrowing type change, `create_tables: false`), throws a
   * non-retriable ConnectorError naming the table, the column and what to run; a renamed or
   * dropped column is a warning (the target keeps the old column), never NULLs written over
   * values. Other sinks ignore them. A batch may carry changes and no events.
   */
  readonly schemaChanges?: readonly SinkSchemaChange[];
}

/** Where a sink batch stands in a source transaction larger than one batch (`SinkBatch.transaction`). */
export interface SourceTransaction {
  /** The source whose transaction it is. */
  readonly source: string;
  readonly continues: boolean;
  readonly open: boolean;
}

/** An event the sink cannot take (a value its column cannot hold): dead-lettered with the reason. */
export interface Rejection {
  readonly index: number;
  readonly reason: string;
}

export interface SinkContext {
  readonly pipeline: string;
  readonly name: string;
  /** Options fixed at start, resolved. */
  readonly options: Readonly<Record<string, Value>>;
  /** Per-event options (e.g. a Redis key), compiled: call with the event to get the value. */
  readonly eventOptions: Readonly<Record<string, (event: SinkEvent) => Value>>;
  readonly log: Logger;
  /**
   * The pipeline file's folder: a relative path in an option (a file to write) is relative
   * to it. The working directory when absent.
   */
  readonly baseDir?: string;
  /**
   * Optional: the schema of the source table an event came from (the `describe` of the source
   * that read it), for `create_tables`. Sinks infer types from values when it is absent or
   * gives undefined. Give it the SinkEvent: its `sourceName` says which source read it. A bare
   * ChangeEvent only names its connector, so it is answered only when the pipeline has one
   * source of that connector (with two PostgreSQL sources, a same-named table may be in both).
   */
  readonly describeSource?: (event: SinkEvent | ChangeEvent) => Promise<TableSchema | undefined>;
  /**
   * Whether a write of this sink may be given again after a crash (true when absent): the
   * position of a source that feeds it is saved outside its own transactions (a checkpoint
   * file, or beside a second sink), so the changes after the last saved position reach it a
   * second time. A sink then meets states a replay explains: an update without its absent
   * columns whose row a later change, applied before the crash, deleted. Such an update is
   * skipped with a warning, since the replay goes on to that later change. Where no write is
   * replayed (the sink stores the position of every source that feeds it in the same
   * transaction), the same state means the target lost the row, and the event is rejected.
   */
  readonly mayReplay?: boolean;
}

/**
 * A sink's writer. **Absent is not null**: a column missing from an event's `after` (a
 * PostgreSQL TOASTed value an UPDATE did not touch, a partial update) is *unchanged*, and no
 * sink may write NULL, a default or anything else in its place:
 *
 * - a table sink (postgres, mysql, duckdb) updates only the columns the row has; where it must
 *   write a whole row (an update that changed the key, so the row moves) it takes the absent
 *   values from the row it replaces, in the same transaction, and where that row is not there
 *   it skips the event with a warning where the write may be a replay (`SinkContext.mayReplay`),
 *   and otherwise rejects it with a reason naming `REPLICA IDENTITY FULL`;
 * - a key-value sink storing columns separately (a Redis hash) sets only the present fields;
 * - a sink writing whole documents (a Redis JSON value, a Kafka or queue message, a jsonl line)
 *   writes the row as it has it — the absent column is left out of the document, never set to
 *   null — and a format that must have every column (Debezium's `after`) says so in its docs.
 *
 * **JSON null is not SQL NULL** either: a json/jsonb column holding the JSON document `null`
 * holds `JSON_NULL` (src/model/value.ts), while `null` is SQL NULL. A sink with a JSON column
 * type writes `JSON_NULL` as the JSON text `null` (PostgreSQL `'null'::jsonb`, DuckDB's JSON
 * `null`, MySQL's JSON `null`) and `null` as SQL NULL, in every path (row by row, bulk, COPY,
 * key lookups); into a text column `JSON_NULL` goes as the text `null`, and into any other
 * column it is refused. A sink writing JSON text (jsonl, Debezium, a message) prints both as
 * `null`. A source reading a JSON column gives `JSON_NULL` for the document `null`
 * (`decodeJsonDocument` in src/model/json.ts), never `null`.
 */
export interface SinkWriter {
  start(): Promise<void>;
  /**
   * Resolves when every event of the batch is durable (or rejected). Called with one batch at a
   * time per sink, in order — except bulk writes, up to `parallelBulkWrites` at once. Throws a
   * ConnectorError when it cannot write.
   */
  write(batch: SinkBatch): Promise<readonly Rejection[]>;
  /** Called once at the end, also after a failed `start()` (release whatever it opened). */
  close(): Promise<void>;
  /** Present when the sink can keep the pipeline's checkpoints in its own transactions. */
  readonly checkpoints?: CheckpointStore;
  /** The `BulkRows` formats the sink loads as they are; it is given `SinkBatch.bulk` only in these. */
  readonly bulkFormats?: readonly BulkRows["format"][];
  /**
   * How many bulk writes the sink may be given at once (1 when absent). Only batches of
   * snapshot rows go in parallel: their keys are distinct, so their order does not matter; any
   * other write waits until they are all durable, and starts alone. A sink that stores
   * checkpoints in its writes (`SinkBatch.checkpoints`) must then store, in each transaction,
   * only checkpoints whose writes and every write started before them have committed: a later
   * write may commit first.
   */
  readonly parallelBulkWrites?: number;
}

/** Where checkpoints are kept: a file by default, or inside a database sink. */
export interface CheckpointStore {
  load(): Promise<Readonly<Record<string, SourceCheckpoint>>>;
  /**
   * Durable when it resolves. Sources not named keep the checkpoint they had (the runner may
   * save one source without the others). A sink-held store may instead save within `write`.
   */
  save(checkpoints: Readonly<Record<string, SourceCheckpoint>>): Promise<void>;
  /**
   * Takes the pipeline's lock in this store, so that a second run of the pipeline fails at start
   * instead of reading and overwriting the same checkpoints; resolves to the function releasing
   * it. Throws a `PipelineLockedError` (run-lock.ts) when another run holds it. `onLost` is
   * called if the store loses a lock it held (the database session holding it ended); the
   * runner then holds every write and calls `lock` again with `retaking: true`, retrying while
   * it throws retriable errors: a server it cannot reach then is a server restarting, not a
   * wrong URL, and a lock still held by this run's own lost session is not another run's.
   */
  lock?(options: { readonly log: Logger; readonly onLost: (error: Error) => void; readonly retaking?: boolean }): Promise<() => Promise<void>>;
  /** Where the checkpoints are kept, for the tools' messages: a file, a table on a server. */
  readonly location?: string;
  /** When each source's checkpoint was last saved, where the store knows it (`dts status`). */
  savedAt?(): Promise<ReadonlyMap<string, Date>>;
  /**
   * Removes the pipeline's checkpoints, and only its own (`dts drop`, under the lock): the
   * next run starts from the beginning. False when there were none.
   */
  forget?(): Promise<boolean>;
  /** Ends the store's own connections, if it has any (a store a tool opened). */
  close?(): Promise<void>;
}

/**
 * Errors a connector throws: `new ConnectorError(message, retriable, { cause, code })`.
 * `retriable` errors (a dropped connection, a deadlock) are retried with backoff; the others
 * stop the pipeline with the message and the last durable position. Defined with the rest of
 * dts's errors, their codes and exit codes (src/diagnostics/errors.ts).
 */
export { ConnectorError } from "../diagnostics/errors.js";

export type SourceFactory = (context: SourceContext) => SourceReader;
export type SinkFactory = (context: SinkContext) => SinkWriter;
