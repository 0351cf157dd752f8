/**
 * The snapshot: every row of the captured tables as `read` events, in primary-key chunks.
 *
 * All chunks are read in one REPEATABLE READ transaction, so they see one state of the
 * database: on a first run, the slot's exported snapshot (the state at the slot's consistent
 * point, where streaming then starts, so there is no gap and no duplicate). A table with a key
 * order is read as one `COPY (SELECT … ORDER BY key) TO STDOUT` (after the resume key, if any)
 * and cut into chunks as it streams in (`keysetChunks`). A chunk is the CopyData messages as
 * the server sent them (`SourceBatch.bulk`, copy-wire.ts), which a PostgreSQL sink loads as
 * they are; its events are made only if something reads them, with only the key columns
 * decoded at once and the rest when read (lazy-row.ts). A chunk holds `chunk_size` rows, or
 * fewer when the rows are wide (`MAX_CHUNK_BYTES`), so that memory is bounded by the chunks in
 * flight. Each chunk is a batch whose checkpoint records how far the copy got (`SnapshotState`).
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
import { CopyOut, framesOf, holdsLargeRow, LARGE_MESSAGE_BYTES, lastRow, rowsOf, rowsText, type CopyFrames } from "./copy-wire.js";
import type { BulkRows, Logger, SnapshotProgress, SourceBatch, SourceCheckpoint } from "../../runtime/contracts.js";
import { ConnectorError } from "../../runtime/contracts.js";
import { qualifiedTableName, type ChangeEvent, type SourceInfo } from "../../model/event.js";
import type { Position } from "../../model/position.js";
import type { Timestamp } from "../../model/timestamp.js";
import { setField, type Row, type Value } from "../../model/value.js";
import { describeAddress, queryError, quoteIdentifier, quoteTable, type ServerAddress } from "./connection.js";
import { decodeRow, Oid, rowShape, ValueDecodeError, type RowShape, type TypeRegistry } from "./decode.js";
import { copyUnescape, decodeCopyRow, LazyRows } from "./lazy-row.js";
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
  /** Told where the copy stands after every chunk (the progress display). */
  readonly progress?: (progress: SnapshotProgress) => void;
}

/** How often a copy's progress is logged. */
const PROGRESS_LOG_MS = 5000;

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
  /** Every row after `key` (all when null) in key order, as a `COPY (…) TO STDOUT` with the key inlined (COPY takes no parameters). */
  readonly copyAfter: (key: readonly string[] | null) => string;
  readonly source: SourceInfo;
  /** `PostgreSQL at host:port`, for messages. */
  readonly where: string;
  /** The table as events name it (`schema.table`): the bulk rows' target. */
  readonly target: string;
  /** The selected columns and their types, for the batches' bulk COPY text. */
  readonly rawColumns: readonly string[];
  readonly rawTypes: readonly string[];
  /** Per column: its text may hold a character COPY escapes (not numbers, booleans, times). */
  readonly rawEscaped: readonly boolean[];
  /** The keyset chunks' rows, decoded when read (lazy-row.ts). */
  readonly lazy: LazyRows;
}

/** Types whose output never holds a backslash, tab or line break. */
const PLAIN_OIDS: ReadonlySet<number> = new Set([
  Oid.bool, Oid.int2, Oid.int4, Oid.int8, Oid.oid, Oid.xid, Oid.cid, Oid.float4, Oid.float8, Oid.numeric,
  Oid.date, Oid.time, Oid.timetz, Oid.timestamp, Oid.timestamptz, Oid.interval, Oid.uuid,
]);

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
    const tableNumber = state.tables.indexOf(name) + 1;
    const report = (): void =>
      options.progress?.({ table: name, rows, ...(total > 0 ? { estimatedRows: Math.round(total) } : {}), tableNumber, tables: state.tables.length });
    report();
    let logged = started;
    const chunks = plan.ordered ? keysetChunks(plan, resumeKey, options) : cursorChunks(plan, options);
    for await (const chunk of chunks) {
      rows += chunk.bulk.count;
      if (chunk.last) tablesDone.push(name);
      report();
      const now = performance.now();
      // Without a terminal (a service's log), progress is a log line every few seconds.
      if (now - logged >= PROGRESS_LOG_MS) {
        logged = now;
        const seconds = (now - started) / 1000;
        log.info("snapshot: progress", {
          table: name,
          rows,
          ...(total > 0 ? { estimatedRows: Math.round(total), percent: Math.min(100, Math.round((rows / total) * 100)) } : {}),
          rowsPerSecond: seconds > 0 ? Math.round(rows / seconds) : null,
        });
      }
      const at = chunk.last ? checkpoint(null, null) : chunk.lastKey !== null ? checkpoint(name, chunk.lastKey) : undefined;
      yield {
        bulk: chunk.bulk,
        get events() {
          return chunk.events;
        },
        ...(at !== undefined ? { checkpoint: at } : {}),
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
  const where = `PostgreSQL at ${describeAddress(options.address)}`;
  const rawEscaped = selected.map((column) => !PLAIN_OIDS.has(column.typeOid));
  const from = `${table.kind === "partitioned" ? "" : "ONLY "}${quoteTable(table.schema, table.name)}`;
  const select = `SELECT ${names.map(quoteIdentifier).join(", ")} FROM ${from}`;
  const order = keyColumns.map((column) => quoteIdentifier(column.name)).join(", ");
  return {
    table,
    shape,
    keyIndexes,
    ordered,
    everyRow: select,
    copyAfter: (key) =>
      key === null
        ? `COPY (${select} ORDER BY ${order}) TO STDOUT`
        : `COPY (${select} WHERE (${order}) > (${keyColumns.map((column, i) => `${literal(key[i]!)}::${column.type}`).join(", ")}) ORDER BY ${order}) TO STDOUT`,
    source: {
      connector: "postgres",
      db: options.database,
      schema: table.schema,
      table: table.name,
      position: options.position,
      ts: options.startedAt,
    },
    where,
    target: qualifiedTableName({ db: options.database, schema: table.schema, table: table.name }),
    rawColumns: names,
    rawTypes: selected.map((column) => column.type),
    rawEscaped,
    lazy: new LazyRows(shape, rawEscaped, (error) => new ConnectorError(`snapshot from ${where}: ${error.message}`, false, { cause: error })),
  };
}

/**
 * A chunk's rows as COPY text lines, for a sink that passes them through instead of encoding
 * the decoded values again. Built from the rows' text (after decoding, reusing the arrays) as
 * flat strings, so that the many field strings of a chunk do not outlive it.
 */
function bulkRows(plan: TablePlan, rows: TextRow[]): BulkRows {
  const lines = copyLines(plan.rawEscaped, rows);
  const { data, count } = framesOf(lines.length === 0 ? "" : `${lines.join("\n")}\n`);
  return { format: "pg-copy-data", table: plan.target, columns: plan.rawColumns, types: plan.rawTypes, data, count };
}

const copySpecial = /[\\\n\r\t]/;
const copySpecials = /[\\\n\r\t]/g;
const copyEscapes: Readonly<Record<string, string>> = { "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/** Overwrites the rows' fields with their COPY spelling. */
function copyLines(escaped: readonly boolean[], rows: TextRow[]): string[] {
  const lines: string[] = new Array(rows.length);
  const width = escaped.length;
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!;
    for (let i = 0; i < width; i++) {
      const text = row[i];
      if (text === null || text === undefined) row[i] = "\\N";
      else if (escaped[i] && copySpecial.test(text)) row[i] = text.replace(copySpecials, (c) => copyEscapes[c]!);
    }
    lines[r] = row.join("\t");
  }
  return lines;
}

interface Chunk {
  /** The rows as events; for a keyset chunk, made only when first read. */
  readonly events: readonly ChangeEvent[];
  /** The rows' COPY text. */
  readonly bulk: BulkRows;
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

  /** Counts a chunk of `rows` rows and `chars` characters of COPY text; returns the next chunk's row limit. */
  nextOf(rows: number, chars: number): number {
    this.rows += rows;
    this.bytes += chars + 16 * rows;
    const average = this.rows > 0 ? this.bytes / this.rows : 1;
    this.limit = Math.max(1, Math.min(this.chunkSize, Math.floor(MAX_CHUNK_BYTES / average)));
    return this.limit;
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

/**
 * A table with a key order, read as one `COPY (SELECT … ORDER BY key) TO STDOUT` (after the
 * resume key, if any) and cut into chunks as it streams in: the server streams the table as it
 * would to `psql`, with no query per chunk, and a chunk not yet asked for is simply not read,
 * which pauses the socket and so the server. A chunk is the CopyData messages as they arrived
 * (copy-wire.ts; `SourceBatch.bulk`), for a sink that loads them as they are; only its last row
 * is read here, for the key a resumed copy starts after. Events are made from the text only if
 * something asks for them.
 */
async function* keysetChunks(plan: TablePlan, resumeKey: readonly string[] | null, options: SnapshotOptions): AsyncGenerator<Chunk> {
  const sizer = new ChunkSizer(options.chunkSize);
  const copy = new CopyOut(plan.copyAfter(resumeKey));
  options.client.query(copy as unknown as pg.Submittable);
  let lastKey = resumeKey;
  let finished = false;
  try {
    for (;;) {
      let frames: Awaited<ReturnType<CopyOut["next"]>>;
      try {
        frames = await copy.next(sizer.limit, MAX_CHUNK_BYTES);
      } catch (error) {
        throw queryError(error, options.address, `reading ${plan.table.qualifiedName}`);
      }
      if (frames.count > 0) lastKey = keyOfRow(plan, lastRow(frames));
      sizer.nextOf(frames.count, frames.bytes);
      let events: ChangeEvent[] | undefined;
      finished = frames.last;
      yield {
        get events() {
          return (events ??= holdsLargeRow(frames) ? rowsToEvents(plan, rowsOf(frames)) : linesToEvents(plan, linesOf(frames)));
        },
        bulk: { format: "pg-copy-data", table: plan.target, columns: plan.rawColumns, types: plan.rawTypes, data: frames.data, count: frames.count },
        lastKey,
        last: frames.last,
      };
      if (frames.last) return;
    }
  } finally {
    // Stopped in the middle of the table: the connection is mid-COPY, of no further use.
    if (!finished) copy.abandon();
  }
}

/** COPY rows' lines, without their newlines. */
function linesOf(frames: CopyFrames): string[] {
  if (frames.count === 0) return [];
  const lines = rowsText(frames).split("\n");
  lines.pop();
  return lines;
}

/** A string literal that reads the same whatever standard_conforming_strings is. */
function literal(text: string): string {
  return `E'${text.replace(/\\/g, "\\\\").replace(/'/g, "''")}'`;
}

/** The key columns' text of one COPY row; only they become text (a row may be 100 MB). */
function keyOfRow(plan: TablePlan, row: Buffer): string[] {
  const bounds: [number, number][] = [];
  const lastKeyField = Math.max(...plan.keyIndexes);
  for (let from = 0, to = 0; from <= row.length && bounds.length <= lastKeyField; from = to + 1) {
    to = row.indexOf(0x09, from);
    if (to === -1) to = row.length;
    bounds.push([from, to]);
  }
  return plan.keyIndexes.map((index) => copyField(row.toString("utf8", bounds[index]![0], bounds[index]![1]), plan.rawEscaped[index]!) as string);
}

/** A COPY text field's value: null for `\N`, else the text with its escapes undone. */
function copyField(field: string, escaped: boolean): string | null {
  if (field === "\\N") return null;
  return escaped && field.indexOf("\\") !== -1 ? copyUnescape(field) : field;
}

export { copyUnescape };

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
    const events = await toEvents(plan, rows);
    yield { events, bulk: bulkRows(plan, rows), lastKey: null, last };
    if (last) return;
  }
}

/**
 * Rows decoded between two turns of the event loop. Decoding a whole chunk at once would hold
 * the one JavaScript thread for tens of milliseconds, during which the sinks' replies (the end
 * of a COPY, a COMMIT) wait unread and their servers idle: in slices, reading and writing overlap.
 */
const DECODE_SLICE = 500;

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * A chunk's COPY lines → events whose `after` is decoded when read (lazy-row.ts): only the key
 * columns are decoded here, so a step that reads one column decodes one column.
 */
function linesToEvents(plan: TablePlan, lines: readonly string[]): ChangeEvent[] {
  const events: ChangeEvent[] = new Array(lines.length);
  const { keyIndexes, source, lazy } = plan;
  const keyNames = plan.table.keyColumns;
  const keyValues: Value[] = new Array<Value>(keyIndexes.length).fill(null);
  for (let r = 0; r < lines.length; r++) {
    const after = lazy.row(lines[r]!, keyIndexes, keyValues);
    const key: Row = {};
    for (let k = 0; k < keyIndexes.length; k++) setField(key, keyNames[k]!, keyValues[k]!);
    events[r] = { op: "read", before: null, after, key, source };
  }
  return events;
}

/**
 * A chunk's rows → events when one of them is large: each large row decoded at once from its
 * bytes (a bytea's hex straight into its bytes, lazy-row.ts), the others lazily as usual.
 */
function rowsToEvents(plan: TablePlan, rows: readonly Buffer[]): ChangeEvent[] {
  const { shape, keyIndexes, source, lazy } = plan;
  const keyNames = plan.table.keyColumns;
  const keyValues: Value[] = new Array<Value>(keyIndexes.length).fill(null);
  return rows.map((bytes): ChangeEvent => {
    let after: Row;
    if (bytes.length >= LARGE_MESSAGE_BYTES) {
      try {
        after = decodeCopyRow(shape, plan.rawEscaped, bytes);
      } catch (error) {
        if (error instanceof ValueDecodeError) throw new ConnectorError(`snapshot from ${plan.where}: ${error.message}`, false, { cause: error });
        throw error;
      }
      for (let k = 0; k < keyIndexes.length; k++) keyValues[k] = after[shape.names[keyIndexes[k]!]!]!;
    } else {
      after = lazy.row(bytes.toString("utf8"), keyIndexes, keyValues);
    }
    const key: Row = {};
    for (let k = 0; k < keyIndexes.length; k++) setField(key, keyNames[k]!, keyValues[k]!);
    return { op: "read", before: null, after, key, source };
  });
}

async function toEvents(plan: TablePlan, rows: readonly TextRow[]): Promise<ChangeEvent[]> {
  const events: ChangeEvent[] = new Array(rows.length);
  for (let r = 0; r < rows.length; r++) {
    if (r > 0 && r % DECODE_SLICE === 0) await nextTurn();
    events[r] = eventOf(plan, rows[r]!);
  }
  return events;
}

function eventOf(plan: TablePlan, texts: readonly (string | null)[]): ChangeEvent {
  const { shape, keyIndexes, source } = plan;
  const keyNames = plan.table.keyColumns;
  let after: Row;
  try {
    after = decodeRow(shape, texts);
  } catch (error) {
    if (error instanceof ValueDecodeError) throw new ConnectorError(`snapshot from ${plan.where}: ${error.message}`, false, { cause: error });
    throw error;
  }
  const key: Row = {};
  for (let k = 0; k < keyIndexes.length; k++) setField(key, keyNames[k]!, after[shape.names[keyIndexes[k]!]!]!);
  return { op: "read", before: null, after, key, source };
}
