/**
 * The binlog stream: zongji connected as a replica from a known point, its events turned into
 * the runtime's batches.
 *
 * zongji pushes events as the socket delivers them; the runtime pulls. Events wait in a queue
 * and are processed when a batch is asked for (`next`), so that a DDL statement is handled —
 * the tables described again, the change reported — before any row event after it is decoded.
 * When the queue is long the socket is paused (the server then waits, as it would for a slow
 * replica), and resumed when it drains.
 *
 * A transaction's row events become one batch, with a checkpoint at its end (the XID event, or
 * the statement of a DDL); small transactions are joined up to `batchEvents`, and a transaction
 * larger than that is split into batches without a checkpoint but the last. The checkpoint is
 * the binlog point after the transaction — file, offset, and the GTID state including it — so
 * that a restart neither repeats a committed transaction nor skips one.
 *
 * Caught up: when the queue is empty between transactions, the server's binlog end (`SHOW
 * MASTER STATUS`) is compared with the stream's point, at most every `probeMs`; at or past it,
 * a batch without events says `caughtUp` with a checkpoint at the stream's point. That same
 * empty batch, every `heartbeatMs` on a quiet server (or one whose changes are all in tables not
 * captured), moves the stored position and keeps the lag honest.
 *
 * A binlog the server no longer has (purged, or expired by `binlog_expire_logs_seconds`) is the
 * server's error 1236 at connect: a non-retriable error saying to copy the tables again — never
 * a silent start at the end, which would lose the changes in between.
 */
import ZongJi, { type AnyBinlogEvent } from "@vlasky/zongji";
import { ConnectorError, type Logger, type SchemaChange, type SourceBatch } from "../../runtime/contracts.js";
import type { ChangeEvent, SourceInfo } from "../../model/event.js";
import { Timestamp } from "../../model/timestamp.js";
import { setField, type Row } from "../../model/value.js";
import { comparePoints, describePoint, MariadbGtids, pointPosition, type BinlogPoint } from "./position.js";
import type { MysqlTable } from "./tables.js";
import { decodeValue, fixBinlogNegativeTime, ValueDecodeError } from "./values.js";
import { patternToRegExp } from "./tables.js";
import type { JsonValue } from "../../model/json-value.js";

export interface StreamLimits {
  /** Events per batch, at most (a larger transaction is split). */
  readonly batchEvents: number;
  /** Queued binlog events at which the socket is paused. */
  readonly queueEvents: number;
  /** How often the binlog end is asked for while idle. */
  readonly probeMs: number;
  /** An empty batch moving the position at least this often on a quiet server; 0: none. */
  readonly heartbeatMs: number;
}

export const DEFAULT_STREAM_LIMITS: StreamLimits = { batchEvents: 5000, queueEvents: 20_000, probeMs: 1000, heartbeatMs: 10_000 };

export interface BinlogStreamOptions {
  readonly url: string;
  readonly server: string;
  readonly serverId: number;
  readonly start: BinlogPoint;
  /** The captured tables by `database.table`; the stream updates it on DDL (via `onDdl`). */
  readonly tables: Map<string, MysqlTable>;
  /** The `tables` option, for telling whether a new table is captured. */
  readonly patterns: readonly string[];
  /** State stored with every checkpoint (the captured tables). */
  readonly checkpointState: () => JsonValue;
  /** A DDL statement on `database`: re-describe, return the changes to report. */
  readonly onDdl: (query: string, database: string) => Promise<readonly SchemaChange[]>;
  /** The binlog end, for caught-up: `SHOW MASTER STATUS`. */
  readonly binlogEnd: () => Promise<{ file: string; offset: number } | undefined>;
  readonly database: (table: MysqlTable) => string;
  readonly log: Logger;
  readonly limits: StreamLimits;
}

type RawEvent = AnyBinlogEvent & { gtid?: string };

interface ZongJiLike {
  on(event: string, listener: (...args: never[]) => void): unknown;
  start(options: Record<string, unknown>): void;
  stop(): void;
  connection: { pause(): void; resume(): void } | null;
  isMariaDb: boolean;
  gtidSet: string | undefined;
  tableMap: Record<number, { parentSchema: string; tableName: string }>;
}

export class BinlogStream {
  private zongji: ZongJiLike | undefined;
  private readonly queue: RawEvent[] = [];
  private head = 0;
  private paused = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;
  private closing = false;
  /** The point after the last event processed. */
  private file: string;
  private offset: number;
  private gtids: MariadbGtids | undefined;
  private mysqlGtids: string;
  private pendingGtid: string | undefined;
  private standalone = false;
  /** Events of the open transaction. */
  private transaction: ChangeEvent[] = [];
  private inTransaction = false;
  /** Whether the open transaction's earlier events went out in a batch already (a split). */
  private split = false;
  private lastCheckpointed: BinlogPoint;
  private lastEmitAt = Date.now();
  private lastProbeAt = 0;
  private readonly zeroDateWarned = new Set<string>();
  private lastEventTs = 0;

  constructor(private readonly options: BinlogStreamOptions) {
    this.file = options.start.file;
    this.offset = options.start.offset;
    this.mysqlGtids = options.start.gtids;
    this.lastCheckpointed = options.start;
  }

  /** Connects and waits until the server streams (or refuses: a purged position). */
  async start(): Promise<void> {
    const parsed = new URL(this.options.url);
    const zongji = new ZongJi({
      host: parsed.hostname,
      port: parsed.port === "" ? 3306 : Number(parsed.port),
      user: decodeURIComponent(parsed.username),
      password: decodeURIComponent(parsed.password),
      dateStrings: true,
      supportBigNumbers: true,
      bigNumberStrings: true,
      jsonStrings: true,
      timezone: "Z",
      charset: "utf8mb4_bin",
    } as never) as unknown as ZongJiLike;
    this.zongji = zongji;
    const ready = new Promise<void>((resolve, reject) => {
      zongji.on("ready", () => resolve());
      zongji.on("error", (error: Error) => {
        const converted = this.convert(error);
        this.failure ??= converted;
        reject(converted);
        this.wake?.();
      });
    });
    zongji.on("binlog", (event: RawEvent) => {
      this.queue.push(event);
      if (!this.paused && this.queue.length - this.head >= this.options.limits.queueEvents) {
        this.paused = true;
        zongji.connection?.pause();
      }
      this.wake?.();
    });
    const start = this.options.start;
    const databases = this.capturedDatabases();
    zongji.start({
      serverId: this.options.serverId,
      ...(start.gtids !== "" ? { gtidSet: start.gtids } : { filename: start.file, position: start.offset }),
      ...(databases !== undefined ? { includeSchema: Object.fromEntries(databases.map((db) => [db, true])) } : {}),
    });
    await ready;
    this.gtids = zongji.isMariaDb ? new MariadbGtids(start.gtids) : undefined;
    // The first event after connecting can take until the next write on the server; the
    // connection is proved by 'ready', and an error after it arrives through `failure`.
  }

  /** The databases the patterns can match, or undefined when a database part is a glob. */
  private capturedDatabases(): string[] | undefined {
    const databases = new Set<string>();
    for (const pattern of this.options.patterns) {
      const db = pattern.slice(0, pattern.indexOf("."));
      if (/[*?]/.test(db) || db === "") return undefined;
      databases.add(db);
    }
    return [...databases];
  }

  private convert(error: Error): ConnectorError {
    const e = error as Error & { errno?: number; code?: string; sqlMessage?: string };
    const message = e.sqlMessage ?? e.message;
    if (e.errno === 1236 || /Could not find (first log file|GTID state)|purged|binlog truncated/i.test(message)) {
      return new ConnectorError(
        `the binlog at ${describePoint(this.lastCheckpointed)} is no longer on ${this.options.server} (${message}): the changes since the ` +
          `pipeline's checkpoint are lost. Copy the tables again: remove the pipeline's checkpoint (dts drop <pipeline file>) and run with ` +
          `snapshot "initial"; keep binlogs longer than the longest stop (binlog_expire_logs_seconds)`,
        false,
        { cause: error },
      );
    }
    if (e.errno === 1227 || e.errno === 1045 || e.errno === 1044) {
      return new ConnectorError(`cannot read the binlog of ${this.options.server}: ${message}; the user needs REPLICATION SLAVE (and BINLOG MONITOR on MariaDB, REPLICATION CLIENT on MySQL)`, false, { cause: error });
    }
    const fatal = e.errno !== undefined && e.errno < 2000 && e.errno !== 1053 && e.errno !== 1927;
    return new ConnectorError(`reading the binlog of ${this.options.server}: ${message}`, !fatal, { cause: error });
  }

  /** The point after the last processed event, and whether the stream is between transactions. */
  point(): BinlogPoint {
    return { file: this.file, offset: this.offset, gtids: this.currentGtids() };
  }

  private currentGtids(): string {
    return this.gtids !== undefined ? this.gtids.toString() : this.mysqlGtids;
  }

  /** When the last event was written on the server (ms), for lag. */
  lastEventMillis(): number {
    return this.lastEventTs;
  }

  /** The next batch; null once closed or aborted. */
  async next(signal: AbortSignal): Promise<SourceBatch | null> {
    const committed: ChangeEvent[] = [];
    let checkpoint: BinlogPoint | undefined;
    const limit = this.options.limits.batchEvents;
    const finish = (extra: Partial<SourceBatch> = {}): SourceBatch => {
      this.lastEmitAt = Date.now();
      if (checkpoint !== undefined) this.lastCheckpointed = checkpoint;
      return { events: committed, ...(checkpoint !== undefined ? { checkpoint: { position: pointPosition(checkpoint), state: this.options.checkpointState() } } : {}), ...extra };
    };
    for (;;) {
      if (this.failure !== undefined) throw this.failure;
      if (signal.aborted || this.closing) return null;
      const event = this.take();
      if (event === undefined) {
        if (committed.length > 0) return finish();
        const idle = await this.idle(signal);
        if (idle !== undefined) return idle;
        continue;
      }
      const name = event.getEventName();
      if (this.transaction.length >= limit && (name === "writerows" || name === "updaterows" || name === "deleterows")) {
        // The open transaction outgrows a batch: what it has so far goes out without a checkpoint.
        this.unTake();
        if (committed.length > 0) return finish();
        return this.splitBatch();
      }
      if (name === "query" && this.isDdl(event)) {
        if (committed.length > 0) {
          this.unTake();
          return finish();
        }
        const changes = await this.ddl(event);
        checkpoint = this.point();
        return finish(changes.length > 0 ? { schemaChanges: changes } : {});
      }
      const ended = this.process(event, name);
      if (ended) {
        if (this.transaction.length > 0) {
          for (const change of this.transaction) committed.push(change);
        }
        this.transaction = [];
        checkpoint = this.point();
        if (this.split) {
          this.split = false;
          return finish();
        }
        if (committed.length >= limit) return finish();
      }
    }
  }

  private splitBatch(): SourceBatch {
    const events = this.transaction;
    this.transaction = [];
    this.split = true;
    return { events };
  }

  private take(): RawEvent | undefined {
    if (this.head >= this.queue.length) {
      if (this.queue.length > 0) {
        this.queue.length = 0;
        this.head = 0;
      }
      return undefined;
    }
    const event = this.queue[this.head++]!;
    if (this.head > 4096) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    if (this.paused && this.queue.length - this.head < this.options.limits.queueEvents / 4) {
      this.paused = false;
      this.zongji?.connection?.resume();
    }
    return event;
  }

  private unTake(): void {
    this.head--;
  }

  /** Waits for an event; gives the caught-up or heartbeat batch when due. */
  private async idle(signal: AbortSignal): Promise<SourceBatch | undefined> {
    const { probeMs, heartbeatMs } = this.options.limits;
    const now = Date.now();
    if (!this.inTransaction && now - this.lastProbeAt >= probeMs) {
      this.lastProbeAt = now;
      const end = await this.options.binlogEnd().catch(() => undefined);
      if (this.head < this.queue.length) return undefined;
      if (end !== undefined && comparePoints(this.point(), end) >= 0) {
        const moved = comparePoints(this.point(), this.lastCheckpointed) !== 0 || this.point().gtids !== this.lastCheckpointed.gtids;
        if (moved || heartbeatMs === 0 || now - this.lastEmitAt >= Math.min(heartbeatMs, probeMs * 3) || !this.reportedCaughtUp) {
          this.reportedCaughtUp = true;
          this.lastEmitAt = now;
          const point = this.point();
          this.lastCheckpointed = point;
          return { events: [], checkpoint: { position: pointPosition(point), state: this.options.checkpointState() }, caughtUp: true };
        }
      } else {
        this.reportedCaughtUp = false;
      }
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, probeMs);
      const onAbort = (): void => done();
      signal.addEventListener("abort", onAbort, { once: true });
      this.wake = done;
      function done(): void {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        resolve();
      }
    });
    this.wake = undefined;
    return undefined;
  }

  private reportedCaughtUp = false;

  /** Takes one event; true when it ends a transaction. */
  private process(event: RawEvent, name: string): boolean {
    if (event.timestamp > 0) this.lastEventTs = event.timestamp;
    switch (name) {
      case "rotate": {
        const rotate = event as Extract<AnyBinlogEvent, { binlogName: string; position: number }>;
        this.file = rotate.binlogName;
        this.offset = Number(rotate.position);
        return false;
      }
      case "mariadbgtid": {
        const gtid = event as Extract<AnyBinlogEvent, { getTypeName(): "MariadbGtid" }>;
        this.advance(event);
        this.pendingGtid = gtid.gtid;
        this.standalone = gtid.standalone;
        this.inTransaction = !gtid.standalone;
        return false;
      }
      case "gtid":
        this.advance(event);
        this.pendingGtid = (event as { gtid: string }).gtid;
        this.inTransaction = true;
        return false;
      case "xid":
        this.advance(event);
        this.commitGtid();
        this.inTransaction = false;
        return true;
      case "query": {
        this.advance(event);
        const query = (event as { query: string }).query.trim().toUpperCase();
        if (query === "BEGIN" || query.startsWith("XA START")) {
          this.inTransaction = true;
          return false;
        }
        if (query === "COMMIT" || query.startsWith("XA COMMIT") || query === "ROLLBACK") {
          this.commitGtid();
          this.inTransaction = false;
          return true;
        }
        // Any other statement outside a transaction (a DDL of a table not captured, a CREATE
        // DATABASE): a group of its own.
        if (!this.inTransaction || this.standalone) {
          this.commitGtid();
          this.inTransaction = false;
          return true;
        }
        return false;
      }
      case "writerows":
      case "updaterows":
      case "deleterows":
        this.advance(event);
        this.rows(event, name);
        return false;
      default:
        this.advance(event);
        return false;
    }
  }

  private advance(event: RawEvent): void {
    if (event.nextPosition > 0) this.offset = event.nextPosition;
  }

  private commitGtid(): void {
    if (this.pendingGtid !== undefined) {
      if (this.gtids !== undefined) this.gtids.add(this.pendingGtid);
      else this.mysqlGtids = this.zongji?.gtidSet ?? this.mysqlGtids;
    }
    this.pendingGtid = undefined;
    this.standalone = false;
  }

  private isDdl(event: RawEvent): boolean {
    const query = (event as { query: string }).query;
    return /^\s*(?:\/\*.*?\*\/\s*)*(ALTER|CREATE|RENAME|DROP)\s+(TABLE|TEMPORARY)\b/is.test(query) && !/^\s*(CREATE|DROP)\s+TEMPORARY/i.test(query);
  }

  private async ddl(event: RawEvent): Promise<readonly SchemaChange[]> {
    this.process(event, "query");
    const query = event as Extract<AnyBinlogEvent, { getTypeName(): "Query" }>;
    return this.options.onDdl(query.query, query.schema);
  }

  private rows(event: RawEvent, name: string): void {
    const rowsEvent = event as unknown as { tableId: number; rows: unknown[]; tableMap: ZongJiLike["tableMap"] };
    const mapped = rowsEvent.tableMap[rowsEvent.tableId];
    if (mapped === undefined) return;
    const qualified = `${mapped.parentSchema}.${mapped.tableName}`;
    const table = this.options.tables.get(qualified);
    if (table === undefined) return;
    const source: SourceInfo = {
      connector: "mysql",
      db: table.database,
      schema: "",
      table: table.name,
      position: pointPosition(this.point()),
      ts: Timestamp.fromEpochMillis(event.timestamp),
      ...(this.pendingGtid !== undefined ? { txid: this.pendingGtid } : {}),
    };
    for (const raw of rowsEvent.rows) {
      if (name === "updaterows") {
        const { before, after } = raw as { before: Record<string, unknown>; after: Record<string, unknown> };
        const b = this.decode(table, before);
        const a = this.decode(table, after);
        this.transaction.push({ op: "update", before: b, after: a, key: keyOf(table, a), source });
      } else if (name === "writerows") {
        const a = this.decode(table, raw as Record<string, unknown>);
        this.transaction.push({ op: "insert", before: null, after: a, key: keyOf(table, a), source });
      } else {
        const b = this.decode(table, raw as Record<string, unknown>);
        this.transaction.push({ op: "delete", before: b, after: null, key: keyOf(table, b), source });
      }
    }
  }

  private decode(table: MysqlTable, raw: Record<string, unknown>): Row {
    const row: Row = {};
    try {
      for (const column of table.columns) {
        if (!Object.hasOwn(raw, column.name)) continue;
        let value = raw[column.name];
        if (column.kind === "time" && typeof value === "string" && value.startsWith("-")) value = fixBinlogNegativeTime(value);
        setField(row, column.name, decodeValue(column.kind, value, () => this.zeroDate(table, column.name)));
      }
      // A column the description does not know yet (added since): carried by what zongji made of it.
      for (const name of Object.keys(raw)) {
        if (Object.hasOwn(row, name)) continue;
        setField(row, name, decodeValue("other", raw[name]));
      }
    } catch (error) {
      if (error instanceof ValueDecodeError || error instanceof SyntaxError || error instanceof RangeError) {
        throw new ConnectorError(`binlog of ${this.options.server}, table ${table.qualifiedName}: ${error.message}`, false, { cause: error });
      }
      throw error;
    }
    return row;
  }

  private zeroDate(table: MysqlTable, column: string): void {
    const key = `${table.qualifiedName}.${column}`;
    if (this.zeroDateWarned.has(key)) return;
    this.zeroDateWarned.add(key);
    this.options.log.warn("a zero date (0000-00-00, or a zero month or day) is sent as NULL: no calendar has it", { table: table.qualifiedName, column });
  }

  async close(): Promise<void> {
    this.closing = true;
    this.wake?.();
    const zongji = this.zongji;
    this.zongji = undefined;
    if (zongji === undefined) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2000);
      zongji.on("stopped", () => {
        clearTimeout(timer);
        resolve();
      });
      try {
        zongji.stop();
      } catch {
        clearTimeout(timer);
        resolve();
      }
    });
  }
}

export function keyOf(table: MysqlTable, row: Row): Row {
  const key: Row = {};
  for (const name of table.primaryKey) setField(key, name, Object.hasOwn(row, name) ? row[name]! : null);
  return key;
}

/** Whether `name` is captured by the patterns. */
export function capturedBy(patterns: readonly string[], name: string): boolean {
  return patterns.some((pattern) => patternToRegExp(pattern).test(name));
}
