/**
 * The snapshot: every row of the captured tables as `read` events, in primary-key chunks.
 *
 * All chunks are read in one REPEATABLE READ transaction, so they see one state of the
 * database: on a first run, the slot's exported snapshot (the state at the slot's consistent
 * point, where streaming then starts, so there is no gap and no duplicate). A table is read
 * with keyset pagination — `WHERE (key) > (last key) ORDER BY key LIMIT chunk_size` — which
 * walks the key's index and costs the same for the last chunk as for the first; the next chunk
 * is requested while the current one is being delivered. A chunk holds `chunk_size` rows, or
 * fewer when the rows are wide (`MAX_CHUNK_BYTES`), so that memory is bounded by the chunk. Each chunk is a batch whose
 * checkpoint records how far the copy got (`SnapshotState`).
 *
 * Resuming after a crash, the exported snapshot is gone. The remaining chunks are read from
 * `lastKey` in a new snapshot, taken now, and streaming then starts at the slot's consistent
 * point as before. The copy is no longer one consistent state, yet the result converges (the
 * argument of DBLog's resumable dumps): every change committed after the consistent point is in
 * the stream, and the stream is applied after the copy, in commit order, by sinks that upsert
 * and delete by key. A row the new snapshot shows at a later state is first written at that
 * state, then taken through the same changes again and left at its latest one; a row deleted
 * meanwhile is missing from the copy and deleted again by the stream; a row inserted meanwhile
 * into an already-copied range comes from the stream. What remains is a window in which a
 * target row may show an older state than it showed a moment before — never the final state.
 *
 * A table whose key comes only from REPLICA IDENTITY FULL (no primary key, no identity index)
 * may hold duplicate rows, so it has no order to resume from: it is read through a cursor, its
 * chunks carry no checkpoint but the last, and a crash in the middle of it copies it again.
 */
import type pg from "pg";
import type { SourceBatch, SourceCheckpoint, Logger } from "../../runtime/contracts.js";
import { ConnectorError } from "../../runtime/contracts.js";
import type { ChangeEvent, SourceInfo } from "../../model/event.js";
import type { Position } from "../../model/position.js";
import type { Timestamp } from "../../model/timestamp.js";
import { setField, type Row } from "../../model/value.js";
import { describeAddress, queryError, quoteIdentifier, quoteTable, type ServerAddress } from "./connection.js";
import { decodeRow, rowShape, ValueDecodeError, type RowShape, type TypeRegistry } from "./decode.js";
import type { TableDescription } from "./tables.js";

/**
 * What a checkpoint of this source holds besides its position (JSON): the captured tables whose
 * rows are copied or being copied — so that a table added to \`tables\` later is known to need
 * a copy, even after a crash — and, during a snapshot, its progress.
 */
export interface CheckpointState {
  readonly tables: readonly string[];
  readonly snapshot?: SnapshotState;
}

/** Snapshot progress, kept in the checkpoint's state as `{ tables, snapshot: SnapshotState }`. */
export interface SnapshotState {
  /** Every table this snapshot copies, in order. */
  readonly tables: readonly string[];
  readonly tablesDone: readonly string[];
  /** The table being copied, or null between tables. */
  readonly table: string | null;
  /** The key columns' text at the last row copied of `table`; null before its first chunk. */
  readonly lastKey: readonly string[] | null;
  /** Where streaming starts once the copy is done (an LSN, `X/Y`). */
  readonly consistentPoint: string;
}

export function isSnapshotState(value: unknown): value is SnapshotState {
  const state = value as Partial<SnapshotState> | null;
  return (
    typeof state === "object" &&
    state !== null &&
    Array.isArray(state.tables) &&
    Array.isArray(state.tablesDone) &&
    typeof state.consistentPoint === "string" &&
    (state.table === null || typeof state.table === "string") &&
    (state.lastKey === null || Array.isArray(state.lastKey))
  );
}

export function snapshotComplete(state: SnapshotState): boolean {
  return state.tables.every((table) => state.tablesDone.includes(table));
}

export interface SnapshotOptions {
  /** A client inside the snapshot's REPEATABLE READ transaction. */
  readonly client: pg.Client;
  readonly tables: ReadonlyMap<string, TableDescription>;
  readonly types: TypeRegistry;
  readonly state: SnapshotState;
  /** Every captured table, for the checkpoints' `tables`. */
  readonly captured: readonly string[];
  readonly chunkSize: number;
  /** Every event's and checkpoint's position (the consistent point). */
  readonly position: Position;
  /** The events' `source.ts`: when the snapshot began. */
  readonly startedAt: Timestamp;
  readonly database: string;
  readonly address: ServerAddress;
  readonly log: Logger;
  readonly signal: AbortSignal;
}

const rawText: pg.CustomTypesConfig = { getTypeParser: () => (text: string) => text } as unknown as pg.CustomTypesConfig;

interface TablePlan {
  readonly table: TableDescription;
  readonly shape: RowShape;
  /** Indexes into the selected columns of the key columns. */
  readonly keyIndexes: readonly number[];
  /** Keyset pagination is possible (a primary key or identity index). */
  readonly ordered: boolean;
  /** Every row, in no order (the cursor of a table without a key order). */
  readonly everyRow: string;
  readonly firstChunk: string;
  readonly nextChunk: string;
  readonly source: SourceInfo;
  /** `PostgreSQL at host:port`, for messages. */
  readonly where: string;
}

/** The snapshot's batches; the last one's checkpoint says every table is done. */
export async function* snapshotBatches(options: SnapshotOptions): AsyncGenerator<SourceBatch> {
  const { state, log, signal } = options;
  const tablesDone = [...state.tablesDone];
  for (const name of state.tables) {
    if (tablesDone.includes(name)) continue;
    if (signal.aborted) return;
    const table = options.tables.get(name);
    if (table === undefined) {
      // Dropped from `tables` since the snapshot began: nothing left to copy of it.
      tablesDone.push(name);
      continue;
    }
    const resumeKey = state.table === name ? state.lastKey : null;
    const plan = planTable(table, options);
    const checkpoint = (table: string | null, lastKey: readonly string[] | null): SourceCheckpoint => ({
      position: options.position,
      state: {
        tables: [...options.captured],
        snapshot: { tables: [...state.tables], tablesDone: [...tablesDone], table, lastKey: lastKey === null ? null : [...lastKey], consistentPoint: state.consistentPoint },
      },
    });
    const started = performance.now();
    let rows = 0;
    const total = table.estimatedRows;
    log.info("snapshot: copying table", {
      table: name,
      estimatedRows: total >= 0 ? Math.round(total) : "unknown",
      ...(resumeKey !== null ? { resumingAfterKey: resumeKey } : {}),
    });
    const chunks = plan.ordered ? keysetChunks(plan, resumeKey, options) : cursorChunks(plan, options);
    for await (const chunk of chunks) {
      rows += chunk.events.length;
      if (chunk.last) tablesDone.push(name);
      const seconds = (performance.now() - started) / 1000;
      log.debug("snapshot: chunk", {
        table: name,
        rows,
        ...(total > 0 ? { estimatedRows: Math.round(total), percent: Math.min(100, Math.round((rows / total) * 100)) } : {}),
        rowsPerSecond: seconds > 0 ? Math.round(rows / seconds) : null,
      });
      yield {
        events: chunk.events,
        ...(chunk.last ? { checkpoint: checkpoint(null, null) } : chunk.lastKey !== null ? { checkpoint: checkpoint(name, chunk.lastKey) } : {}),
      };
      if (signal.aborted) return;
    }
    const seconds = (performance.now() - started) / 1000;
    log.info("snapshot: table copied", { table: name, rows, seconds: Math.round(seconds * 10) / 10, rowsPerSecond: seconds > 0 ? Math.round(rows / seconds) : null });
  }
}

function planTable(table: TableDescription, options: SnapshotOptions): TablePlan {
  const selected = table.columns.filter((column) => !column.generated || table.keyColumns.includes(column.name));
  const names = selected.map((column) => column.name);
  const shape = rowShape(table.qualifiedName, names, selected.map((column) => options.types.column(column.typeOid).parse));
  const ordered = table.primaryKey.length > 0 || table.replicaIdentity === "index";
  const keyIndexes = table.keyColumns.map((key) => names.indexOf(key));
  const keyColumns = table.keyColumns.map((key) => table.columns.find((column) => column.name === key)!);
  const from = `${table.kind === "partitioned" ? "" : "ONLY "}${quoteTable(table.schema, table.name)}`;
  const select = `SELECT ${names.map(quoteIdentifier).join(", ")} FROM ${from}`;
  const order = keyColumns.map((column) => quoteIdentifier(column.name)).join(", ");
  const params = keyColumns.map((column, i) => `$${i + 1}::${column.type}`).join(", ");
  return {
    table,
    shape,
    keyIndexes,
    ordered,
    everyRow: select,
    firstChunk: `${select} ORDER BY ${order} LIMIT $1::int8`,
    nextChunk: `${select} WHERE (${order}) > (${params}) ORDER BY ${order} LIMIT $${keyColumns.length + 1}::int8`,
    source: {
      connector: "postgres",
      db: options.database,
      schema: table.schema,
      table: table.name,
      position: options.position,
      ts: options.startedAt,
    },
    where: `PostgreSQL at ${describeAddress(options.address)}`,
  };
}

interface Chunk {
  readonly events: ChangeEvent[];
  /** The key text of the chunk's last row, when the table can resume from it. */
  readonly lastKey: readonly string[] | null;
  /** The table is done after this chunk. */
  readonly last: boolean;
}

type TextRow = (string | null)[];

/**
 * Rows per chunk: `chunk_size`, unless rows are so wide that a chunk would pass
 * `MAX_CHUNK_BYTES` of text — memory must stay bounded whatever the rows hold, so a table's
 * first chunk is small and each next one is sized from the rows seen so far.
 */
export const MAX_CHUNK_BYTES = 32 * 1024 * 1024;
const FIRST_CHUNK_ROWS = 1000;

class ChunkSizer {
  private rows = 0;
  private bytes = 0;
  limit: number;

  constructor(private readonly chunkSize: number) {
    this.limit = Math.min(chunkSize, FIRST_CHUNK_ROWS);
  }

  /** Counts a chunk's text and returns the next chunk's row limit. */
  next(rows: readonly TextRow[]): number {
    for (const row of rows) {
      let bytes = 16;
      for (const text of row) if (text !== null) bytes += text.length;
      this.bytes += bytes;
    }
    this.rows += rows.length;
    const average = this.rows > 0 ? this.bytes / this.rows : 1;
    this.limit = Math.max(1, Math.min(this.chunkSize, Math.floor(MAX_CHUNK_BYTES / average)));
    return this.limit;
  }
}

async function* keysetChunks(plan: TablePlan, resumeKey: readonly string[] | null, options: SnapshotOptions): AsyncGenerator<Chunk> {
  const sizer = new ChunkSizer(options.chunkSize);
  const fetch = (key: readonly string[] | null, limit: number): Promise<TextRow[]> => {
    const query: pg.QueryConfig = key === null ? { text: plan.firstChunk, values: [limit] } : { text: plan.nextChunk, values: [...key, limit] };
    return options.client
      .query<TextRow>({ ...query, rowMode: "array", types: rawText })
      .then((result) => result.rows)
      .catch((error: unknown) => {
        throw queryError(error, options.address, `reading ${plan.table.qualifiedName}`);
      });
  };
  let limit = sizer.limit;
  let pending = fetch(resumeKey, limit);
  try {
    for (;;) {
      const rows = await pending;
      const full = rows.length === limit;
      const lastKey = rows.length > 0 ? plan.keyIndexes.map((index) => rows[rows.length - 1]![index] as string) : resumeKey;
      // Ask for the next chunk before handing this one over, so the server works meanwhile.
      if (full) {
        limit = sizer.next(rows);
        pending = fetch(lastKey, limit);
      }
      yield { events: toEvents(plan, rows), lastKey, last: !full };
      if (!full) return;
    }
  } finally {
    // An abandoned read-ahead must not surface as an unhandled rejection.
    pending.catch(() => {});
  }
}

async function* cursorChunks(plan: TablePlan, options: SnapshotOptions): AsyncGenerator<Chunk> {
  const cursor = quoteIdentifier(`dts_snapshot_${plan.table.oid}`);
  const run = async (text: string): Promise<TextRow[]> => {
    try {
      return (await options.client.query<TextRow>({ text, rowMode: "array", types: rawText })).rows;
    } catch (error) {
      throw queryError(error, options.address, `reading ${plan.table.qualifiedName}`);
    }
  };
  options.log.info("snapshot: table has no primary key; copying it in one pass (a crash copies it again)", { table: plan.table.qualifiedName });
  await run(`DECLARE ${cursor} NO SCROLL CURSOR FOR ${plan.everyRow}`);
  const sizer = new ChunkSizer(options.chunkSize);
  for (;;) {
    const limit = sizer.limit;
    const rows = await run(`FETCH FORWARD ${limit} FROM ${cursor}`);
    const last = rows.length < limit;
    if (last) await run(`CLOSE ${cursor}`);
    else sizer.next(rows);
    yield { events: toEvents(plan, rows), lastKey: null, last };
    if (last) return;
  }
}

function toEvents(plan: TablePlan, rows: readonly TextRow[]): ChangeEvent[] {
  const events: ChangeEvent[] = new Array(rows.length);
  const { shape, keyIndexes, source } = plan;
  const keyNames = plan.table.keyColumns;
  for (let r = 0; r < rows.length; r++) {
    let after: Row;
    try {
      after = decodeRow(shape, rows[r]!);
    } catch (error) {
      if (error instanceof ValueDecodeError) throw new ConnectorError(`snapshot from ${plan.where}: ${error.message}`, false, { cause: error });
      throw error;
    }
    const key: Row = {};
    for (let k = 0; k < keyIndexes.length; k++) setField(key, keyNames[k]!, after[shape.names[keyIndexes[k]!]!]!);
    events[r] = { op: "read", before: null, after, key, source };
  }
  return events;
}
