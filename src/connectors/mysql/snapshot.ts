/**
 * The snapshot: every row of the captured tables as `read` events, in primary-key chunks, all
 * read in one transaction that sees the database as it was at a known binlog point.
 *
 * Opening it (`openSnapshot`): FLUSH TABLES WITH READ LOCK, START TRANSACTION WITH CONSISTENT
 * SNAPSHOT, the binlog point (SHOW MASTER STATUS, and the GTID state), UNLOCK TABLES — the
 * global read lock is held for those three statements only, not for the copy. Without the
 * RELOAD privilege on MariaDB, its `binlog_snapshot_file`/`binlog_snapshot_position` status
 * variables give the point of the consistent snapshot with no lock at all (but no GTID state:
 * the stream then starts by file and offset). The stream starts at exactly that point, so no
 * change is lost and none is applied twice.
 *
 * Each table is one `SELECT … ORDER BY key` (after the resume key, if any), streamed — the
 * socket is paused while the runtime does not pull — and cut into chunks of `chunk_size` rows.
 * Each chunk is a batch whose checkpoint records the last key copied (`SnapshotState`).
 *
 * Resuming after a crash, the snapshot transaction is gone. The remaining rows are read after
 * the last key in a new snapshot, and the stream starts at the first snapshot's point as
 * before: a row the new snapshot shows at a later state is later taken through the same changes
 * again by the stream, applied by key; a row deleted meanwhile is deleted again; one inserted
 * into a copied range comes from the stream. The target converges on the source (the argument
 * of DBLog's resumable dumps, as in the postgres source).
 *
 * A table without a primary key has no order to resume from: it is read in one pass, its
 * chunks carry no checkpoint but the last, and a crash in the middle copies it again.
 */
import type mysql from "mysql2/promise";
import { ConnectorError, type Logger, type SnapshotProgress, type SourceBatch, type SourceCheckpoint } from "../../runtime/contracts.js";
import type { ChangeEvent, SourceInfo } from "../../model/event.js";
import type { Position } from "../../model/position.js";
import type { Timestamp } from "../../model/timestamp.js";
import { setField, type Row } from "../../model/value.js";
import { connect, connectorError, quoteIdentifier } from "./connection.js";
import type { BinlogPoint } from "./position.js";
import { selectExpression, type MysqlTable } from "./tables.js";
import { decodeValue, ValueDecodeError } from "./values.js";

/** A key column's value as the checkpoint keeps it: JSON, with bytes as hex. */
export type KeyValue = number | string | { readonly hex: string };

export interface SnapshotState {
  /** Every table this snapshot copies, in order. */
  readonly tables: readonly string[];
  readonly tablesDone: readonly string[];
  /** The table being copied, or null between tables. */
  readonly table: string | null;
  /** The key of the last row copied of `table`; null before its first chunk. */
  readonly lastKey: readonly KeyValue[] | null;
  /** Where streaming starts once the copy is done. */
  readonly point: BinlogPoint;
}

export function isSnapshotState(value: unknown): value is SnapshotState {
  const state = value as Partial<SnapshotState> | null;
  return (
    typeof state === "object" &&
    state !== null &&
    Array.isArray(state.tables) &&
    Array.isArray(state.tablesDone) &&
    typeof state.point === "object" &&
    state.point !== null &&
    (state.table === null || typeof state.table === "string") &&
    (state.lastKey === null || Array.isArray(state.lastKey))
  );
}

export function snapshotComplete(state: SnapshotState): boolean {
  return state.tables.every((table) => state.tablesDone.includes(table));
}

export interface OpenSnapshot {
  readonly connection: mysql.Connection;
  readonly point: BinlogPoint;
  /** When the snapshot began, for the events' `source.ts`. */
  readonly startedAt: Date;
}

/** A connection inside a consistent snapshot, and the binlog point it shows the database at. */
export async function openSnapshot(url: string, server: string, purpose: string, log: Logger): Promise<OpenSnapshot> {
  const connection = await connect(url, { purpose });
  try {
    // The copy pauses the socket while the pipeline is busy; the server must wait, not give up.
    await connection.query("SET SESSION net_write_timeout = 31536000, SESSION net_read_timeout = 31536000, SESSION wait_timeout = 31536000");
    await connection.query("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ");
    const mariadb = /mariadb/i.test(String(((await connection.query("SELECT VERSION() AS v")) as unknown as [Record<string, unknown>[]])[0][0]!.v));
    let locked = false;
    try {
      await connection.query("FLUSH TABLES WITH READ LOCK");
      locked = true;
    } catch (error) {
      const errno = (error as { errno?: number }).errno;
      if (!mariadb || (errno !== 1227 && errno !== 1044 && errno !== 1045)) throw error;
      log.info("no RELOAD privilege: taking the snapshot's binlog point from MariaDB's binlog_snapshot status, without a lock");
    }
    let point: BinlogPoint;
    try {
      await connection.query("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY");
      if (locked) {
        const [status] = (await connection.query("SHOW MASTER STATUS")) as unknown as [Record<string, unknown>[]];
        if (status.length === 0) throw new ConnectorError(`${server} has no binlog (log_bin is OFF): the mysql source reads changes from it`, false);
        const [gtidRows] = (await connection.query(mariadb ? "SELECT @@GLOBAL.gtid_binlog_pos AS g" : "SELECT @@GLOBAL.gtid_executed AS g")) as unknown as [Record<string, unknown>[]];
        const gtids = String(gtidRows[0]?.g ?? "").replace(/\s+/g, "");
        point = { file: String(status[0]!.File), offset: Number(status[0]!.Position), gtids };
      } else {
        const [rows] = (await connection.query("SHOW STATUS LIKE 'binlog_snapshot_%'")) as unknown as [Record<string, unknown>[]];
        const value = (name: string): string => String(rows.find((row) => String(row.Variable_name).toLowerCase() === name)?.Value ?? "");
        point = { file: value("binlog_snapshot_file"), offset: Number(value("binlog_snapshot_position")), gtids: "" };
      }
    } finally {
      if (locked) await connection.query("UNLOCK TABLES");
    }
    return { connection, point, startedAt: new Date() };
  } catch (error) {
    await connection.end().catch(() => {});
    throw connectorError(error, server, "opening the snapshot");
  }
}

export interface SnapshotOptions {
  readonly connection: mysql.Connection;
  readonly tables: ReadonlyMap<string, MysqlTable>;
  readonly state: SnapshotState;
  /** Every captured table, for the checkpoints' `tables`. */
  readonly captured: readonly string[];
  readonly chunkSize: number;
  readonly position: Position;
  readonly startedAt: Timestamp;
  readonly server: string;
  readonly log: Logger;
  readonly signal: AbortSignal;
  readonly progress?: (progress: SnapshotProgress) => void;
}

const PROGRESS_LOG_MS = 5000;

/** The snapshot's batches; the last one's checkpoint says every table is done. */
export async function* snapshotBatches(options: SnapshotOptions): AsyncGenerator<SourceBatch> {
  const { state, log, signal } = options;
  const tablesDone = [...state.tablesDone];
  for (const name of state.tables) {
    if (tablesDone.includes(name)) continue;
    if (signal.aborted) return;
    const table = options.tables.get(name);
    if (table === undefined) {
      tablesDone.push(name);
      continue;
    }
    const resumeKey = state.table === name ? state.lastKey : null;
    const checkpoint = (current: string | null, lastKey: readonly KeyValue[] | null): SourceCheckpoint => ({
      position: options.position,
      state: {
        tables: [...options.captured],
        snapshot: { tables: [...state.tables], tablesDone: [...tablesDone], table: current, lastKey: lastKey === null ? null : [...lastKey], point: { ...state.point } },
      },
    });
    const started = performance.now();
    let logged = started;
    let rows = 0;
    const total = table.estimatedRows;
    const tableNumber = state.tables.indexOf(name) + 1;
    const report = (): void => options.progress?.({ table: name, rows, ...(total > 0 ? { estimatedRows: total } : {}), tableNumber, tables: state.tables.length });
    log.info("snapshot: copying table", { table: name, estimatedRows: total >= 0 ? total : "unknown", ...(resumeKey !== null ? { resumingAfterKey: resumeKey } : {}) });
    report();
    for await (const chunk of tableChunks(table, resumeKey, options)) {
      rows += chunk.events.length;
      if (chunk.last) tablesDone.push(name);
      report();
      const now = performance.now();
      if (now - logged >= PROGRESS_LOG_MS) {
        logged = now;
        const seconds = (now - started) / 1000;
        log.info("snapshot: progress", {
          table: name,
          rows,
          ...(total > 0 ? { estimatedRows: total, percent: Math.min(100, Math.round((rows / total) * 100)) } : {}),
          rowsPerSecond: seconds > 0 ? Math.round(rows / seconds) : null,
        });
      }
      const at = chunk.last ? checkpoint(null, null) : chunk.lastKey !== null ? checkpoint(name, chunk.lastKey) : undefined;
      yield { events: chunk.events, ...(at !== undefined ? { checkpoint: at } : {}) };
      if (signal.aborted) return;
    }
    const seconds = (performance.now() - started) / 1000;
    log.info("snapshot: table copied", { table: name, rows, seconds: Math.round(seconds * 10) / 10, rowsPerSecond: seconds > 0 ? Math.round(rows / seconds) : null });
  }
  if (tablesDone.length === 0 && state.tables.length === 0) yield { events: [], checkpoint: { position: options.position, state: { tables: [...options.captured] } } };
}

interface Chunk {
  readonly events: ChangeEvent[];
  readonly lastKey: readonly KeyValue[] | null;
  readonly last: boolean;
}

function keyParameter(value: KeyValue): unknown {
  return typeof value === "object" ? Buffer.from(value.hex, "hex") : value;
}

function keyValueOf(raw: unknown): KeyValue {
  if (Buffer.isBuffer(raw)) return { hex: raw.toString("hex") };
  if (typeof raw === "number" || typeof raw === "string") return raw;
  return String(raw);
}

async function* tableChunks(table: MysqlTable, resumeKey: readonly KeyValue[] | null, options: SnapshotOptions): AsyncGenerator<Chunk> {
  const columns = table.columns;
  const names = columns.map((column) => column.name);
  const keyIndexes = table.primaryKey.map((key) => names.indexOf(key));
  const ordered = table.primaryKey.length > 0;
  const from = `${quoteIdentifier(table.database)}.${quoteIdentifier(table.name)}`;
  const keyList = table.primaryKey.map(quoteIdentifier).join(", ");
  let sql = `SELECT ${columns.map((column) => selectExpression(column, quoteIdentifier)).join(", ")} FROM ${from}`;
  const values: unknown[] = [];
  if (ordered) {
    if (resumeKey !== null) {
      sql += ` WHERE (${keyList}) > (${resumeKey.map(() => "?").join(", ")})`;
      values.push(...resumeKey.map(keyParameter));
    }
    sql += ` ORDER BY ${keyList}`;
  } else {
    options.log.info("snapshot: table has no primary key; copying it in one pass (a crash copies it again)", { table: table.qualifiedName });
  }
  const jsonColumns = new Set(columns.filter((column) => column.kind === "json").map((column) => column.name));
  const core = (options.connection as unknown as { connection: { query(options: object): { stream(options: object): AsyncIterable<unknown[]> & { destroy?(): void } } } }).connection;
  const stream = core
    .query({
      sql,
      values,
      rowsAsArray: true,
      // JSON as its text, parsed by decodeJson: the driver's JSON.parse would round big numbers.
      typeCast: (field: { type: string; name: string; extendedFormat?: string; string(encoding?: string): string | null }, next: () => unknown) =>
        field.type === "JSON" || field.extendedFormat === "json" || jsonColumns.has(field.name) ? field.string("utf8") : next(),
    })
    .stream({ highWaterMark: Math.min(options.chunkSize, 5000) });
  const source: SourceInfo = { connector: "mysql", db: table.database, schema: "", table: table.name, position: options.position, ts: options.startedAt };
  const kinds = columns.map((column) => column.kind);
  let warnedZero = false;
  const zeroDate = (): void => {
    if (warnedZero) return;
    warnedZero = true;
    options.log.warn("a zero date (0000-00-00, or a zero month or day) is sent as NULL: no calendar has it", { table: table.qualifiedName });
  };
  let events: ChangeEvent[] = [];
  let lastRaw: unknown[] | undefined;
  const keyOfRaw = (raw: unknown[]): KeyValue[] => keyIndexes.map((index) => keyValueOf(raw[index]));
  let finished = false;
  try {
    for await (const raw of stream) {
      let after: Row;
      try {
        after = {};
        for (let i = 0; i < names.length; i++) setField(after, names[i]!, decodeValue(kinds[i]!, raw[i], zeroDate));
      } catch (error) {
        if (error instanceof ValueDecodeError || error instanceof SyntaxError || error instanceof RangeError) {
          throw new ConnectorError(`snapshot of ${table.qualifiedName} from ${options.server}: ${error.message}`, false, { cause: error });
        }
        throw error;
      }
      const key: Row = {};
      for (const name of table.primaryKey) setField(key, name, after[name]!);
      events.push({ op: "read", before: null, after, key, source });
      lastRaw = raw;
      if (events.length >= options.chunkSize) {
        const chunk = events;
        events = [];
        yield { events: chunk, lastKey: ordered ? keyOfRaw(lastRaw) : null, last: false };
      }
    }
    finished = true;
  } catch (error) {
    if (error instanceof ConnectorError) throw error;
    throw connectorError(error, options.server, `reading ${table.qualifiedName}`);
  } finally {
    if (!finished) stream.destroy?.();
  }
  yield { events, lastKey: ordered && lastRaw !== undefined ? keyOfRaw(lastRaw) : null, last: true };
}
