/**
 * The mysql source (MySQL and MariaDB): a consistent snapshot (snapshot.ts), then the binlog
 * from exactly its point (binlog.ts), behind the runtime's pull-based `SourceReader`.
 *
 * `start` decides, from the resume checkpoint, what this run does:
 *
 *   no checkpoint             "initial": open a consistent snapshot, copy every table, stream
 *                             from the snapshot's binlog point; "never": stream from the
 *                             binlog's end now; "only": copy, then end
 *   checkpoint inside the     the copy crashed: copy what is left after the last chunk's key in
 *   snapshot                  a new snapshot, then stream from the first snapshot's point (why
 *                             that converges: snapshot.ts)
 *   checkpoint                stream from it — by GTID where the checkpoint has a GTID state,
 *                             else by file and offset; with "initial", tables added to `tables`
 *                             since then (every checkpoint lists the tables copied) are copied
 *                             first, in a new snapshot, by the same argument
 *
 * Start-up checks (preflight.ts, with the codes `dts check --live` prints): log_bin,
 * binlog_format ROW, binlog_row_image FULL, binlog_row_metadata FULL on servers that have it,
 * tables that exist and have a primary key.
 */
import type mysql from "mysql2/promise";
import {
  ConnectorError,
  type SchemaChange,
  type SourceBatch,
  type SourceCheckpoint,
  type SourceContext,
  type SourceFactory,
  type SourceReader,
  type TableSchema,
} from "../../runtime/contracts.js";
import { Timestamp } from "../../model/timestamp.js";
import { findingMessage, findingSeverity, type Finding } from "../capabilities.js";
import { BinlogStream, DEFAULT_STREAM_LIMITS, type StreamLimits } from "./binlog.js";
import { connect, connectorError, serverLabel } from "./connection.js";
import { describePoint, pointPosition, positionPoint, type BinlogPoint } from "./position.js";
import { readServer, serverFindings, tableFindings } from "./preflight.js";
import { diffTables, renamesIn, stillCaptured } from "./schema-changes.js";
import { isSnapshotState, openSnapshot, snapshotBatches, snapshotComplete, type SnapshotState } from "./snapshot.js";
import { readSourceSettings, type SourceSettings } from "./source-settings.js";
import { describeTables, matchTables, resolveTables, tableSchema, type MysqlTable } from "./tables.js";

export interface SourceTuning {
  readonly stream?: Partial<StreamLimits>;
}

export const createSource: SourceFactory = (context) => new MysqlSource(context);

interface Plan {
  readonly snapshot: { readonly state: SnapshotState; readonly connection: mysql.Connection; readonly startedAt: Date } | null;
  /** Where streaming starts; null in "only" mode. */
  readonly streamFrom: BinlogPoint | null;
}

export class MysqlSource implements SourceReader {
  private readonly settings: SourceSettings;
  private readonly server: string;
  private readonly purpose: string;
  private readonly stopping = new AbortController();
  private catalog: mysql.Connection | undefined;
  private snapshotConnection: mysql.Connection | undefined;
  private stream: BinlogStream | undefined;
  private plan: Plan | undefined;
  private readonly tables = new Map<string, MysqlTable>();

  constructor(
    private readonly context: SourceContext,
    private readonly tuning: SourceTuning = {},
  ) {
    this.settings = readSourceSettings(context);
    this.server = serverLabel(this.settings.url);
    this.purpose = `dts ${context.pipeline}.${context.name}`;
    context.signal.addEventListener("abort", () => this.stopping.abort(), { once: true });
  }

  async start(): Promise<void> {
    try {
      await this.prepare();
    } catch (error) {
      await this.release();
      throw error;
    }
  }

  async *batches(): AsyncGenerator<SourceBatch> {
    const plan = this.plan;
    if (plan === undefined) throw new Error("mysql source: batches() before start()");
    const signal = this.stopping.signal;
    if (plan.snapshot !== null) {
      const { state, connection, startedAt } = plan.snapshot;
      yield* snapshotBatches({
        connection,
        tables: this.tables,
        state,
        captured: [...this.tables.keys()],
        chunkSize: this.settings.chunkSize,
        position: pointPosition(state.point),
        startedAt: Timestamp.fromDate(startedAt),
        server: this.server,
        log: this.context.log,
        signal,
        ...(this.context.snapshotProgress !== undefined ? { progress: this.context.snapshotProgress } : {}),
      });
      this.context.snapshotProgress?.(null);
      if (signal.aborted) return;
      await connection.query("COMMIT").catch(() => {});
      await connection.end().catch(() => {});
      this.snapshotConnection = undefined;
      this.context.log.info("snapshot done", { tables: state.tables.length });
    }
    if (plan.streamFrom === null || signal.aborted) return;
    const stream = new BinlogStream({
      url: this.settings.url,
      server: this.server,
      serverId: this.settings.serverId,
      start: plan.streamFrom,
      tables: this.tables,
      patterns: this.settings.tables,
      checkpointState: () => ({ tables: [...this.tables.keys()] }),
      onDdl: (query, database) => this.onDdl(query, database),
      binlogEnd: () => this.binlogEnd(),
      database: (table) => table.database,
      log: this.context.log,
      limits: { ...DEFAULT_STREAM_LIMITS, ...this.tuning.stream },
    });
    this.stream = stream;
    this.context.log.info("streaming the binlog", { from: describePoint(plan.streamFrom), serverId: this.settings.serverId });
    await stream.start();
    for (;;) {
      const batch = await stream.next(signal);
      if (batch === null) return;
      yield batch;
    }
  }

  async acknowledge(_checkpoint: SourceCheckpoint): Promise<void> {
    // The server keeps nothing for a binlog reader: there is nothing to release.
  }

  async close(): Promise<void> {
    this.stopping.abort();
    await this.release();
  }

  async describe(table: { readonly schema: string; readonly table: string }): Promise<TableSchema | undefined> {
    const found = this.tables.get(`${table.schema}.${table.table}`);
    return found === undefined ? undefined : tableSchema(found);
  }

  // ------------------------------------------------------------------ start-up

  private async prepare(): Promise<void> {
    const { settings, context } = this;
    const log = context.log;
    const catalog = await connect(settings.url, { purpose: this.purpose });
    this.catalog = catalog;
    const streaming = settings.snapshot !== "only";
    const server = await readServer(catalog, this.server);
    this.stopAt(serverFindings(server, streaming, settings.snapshot !== "never"));
    const described = await resolveTables(catalog, settings.tables, this.server);
    this.stopAt(tableFindings(described));
    for (const table of described) this.tables.set(table.qualifiedName, table);

    const resume = context.resume;
    const resumeState = snapshotStateOf(resume);
    if (!streaming) {
      if (resume !== null && (resumeState === null || snapshotComplete(resumeState))) {
        log.info("the copy is already complete; nothing to do");
        this.plan = { snapshot: null, streamFrom: null };
        return;
      }
      const opened = await this.openSnapshot();
      const state = resumeState ?? freshState([...this.tables.keys()], opened.point);
      this.plan = { snapshot: { state, connection: opened.connection, startedAt: opened.startedAt }, streamFrom: null };
      return;
    }
    if (resume === null || resume.position === null) {
      if (settings.snapshot === "initial") {
        const opened = await this.openSnapshot();
        log.info("snapshot taken at binlog point", { point: describePoint(opened.point) });
        this.plan = { snapshot: { state: freshState([...this.tables.keys()], opened.point), connection: opened.connection, startedAt: opened.startedAt }, streamFrom: opened.point };
      } else {
        this.plan = { snapshot: null, streamFrom: await this.currentPoint() };
      }
      return;
    }
    let resumePoint: BinlogPoint;
    try {
      resumePoint = positionPoint(resume.position);
    } catch (error) {
      throw new ConnectorError(`mysql source: the checkpoint holds ${resume.position.kind} position ${resume.position.token}, not a binlog position (${(error as Error).message})`, false);
    }
    if (resumeState !== null && !snapshotComplete(resumeState) && settings.snapshot === "initial") {
      const names = [...this.tables.keys()];
      const state: SnapshotState = { ...resumeState, tables: [...resumeState.tables, ...names.filter((name) => !resumeState.tables.includes(name))] };
      log.info("resuming the snapshot", { tablesDone: state.tablesDone.length, tables: state.tables.length, table: state.table, afterKey: state.lastKey });
      const opened = await this.openSnapshot();
      this.plan = { snapshot: { state, connection: opened.connection, startedAt: opened.startedAt }, streamFrom: resumeState.point };
      return;
    }
    const copied = checkpointTables(resume) ?? [...this.tables.keys()];
    const uncopied = [...this.tables.keys()].filter((name) => !copied.includes(name));
    if (uncopied.length > 0 && settings.snapshot === "initial") {
      log.info("copying tables added since the last run, then streaming from the checkpoint", { tables: uncopied });
      const opened = await this.openSnapshot();
      const state = freshState(uncopied, resumePoint);
      this.plan = { snapshot: { state, connection: opened.connection, startedAt: opened.startedAt }, streamFrom: resumePoint };
      return;
    }
    if (uncopied.length > 0) log.warn('tables added since the last run are streamed from now on, but their existing rows are not copied (snapshot: "never")', { tables: uncopied });
    this.plan = { snapshot: null, streamFrom: resumePoint };
  }

  private async openSnapshot(): Promise<{ connection: mysql.Connection; point: BinlogPoint; startedAt: Date }> {
    const opened = await openSnapshot(this.settings.url, this.server, this.purpose, this.context.log);
    this.snapshotConnection = opened.connection;
    return opened;
  }

  /** The binlog's end now, with the GTID state: where "never" starts. */
  private async currentPoint(): Promise<BinlogPoint> {
    const end = await this.binlogEnd();
    if (end === undefined) throw new ConnectorError(`${this.server} has no binlog (log_bin is OFF): the mysql source reads changes from it`, false);
    const version = await this.catalogQuery("SELECT VERSION() AS v");
    const rows = await this.catalogQuery(/mariadb/i.test(String(version[0]?.v)) ? "SELECT @@GLOBAL.gtid_binlog_pos AS g" : "SELECT @@GLOBAL.gtid_executed AS g");
    return { file: end.file, offset: end.offset, gtids: String(rows[0]?.g ?? "").replace(/\s+/g, "") };
  }

  private async binlogEnd(): Promise<{ file: string; offset: number } | undefined> {
    const rows = await this.catalogQuery("SHOW MASTER STATUS");
    if (rows.length === 0) return undefined;
    return { file: String(rows[0]!.File), offset: Number(rows[0]!.Position) };
  }

  /** A DDL statement seen in the binlog: the captured tables described again, the differences. */
  private async onDdl(query: string, database: string): Promise<readonly SchemaChange[]> {
    const catalog = await this.catalogConnection();
    const { names } = await matchTables(catalog, this.settings.tables, this.server);
    const described = await describeTables(catalog, names, this.server);
    const after = [...described, ...stillCaptured(this.tables, described, query, database)];
    const renames = renamesIn(query, database);
    const changes = diffTables({ before: this.tables, after, renames, log: this.context.log });
    this.tables.clear();
    for (const table of after) this.tables.set(table.qualifiedName, table);
    for (const change of changes) {
      this.context.log.info("a captured table changed", {
        table: change.table,
        ...(change.renamedFrom !== undefined ? { renamedFrom: change.renamedFrom } : {}),
        columns: change.columns.map((column) => `${column.kind} ${"column" in column ? column.column : `${column.from}→${column.to}`}`),
      });
    }
    return changes;
  }

  private stopAt(findings: readonly Finding[]): void {
    const error = findings.find((finding) => findingSeverity(finding) === "error");
    if (error !== undefined) {
      throw new ConnectorError(`${this.server}: ${findingMessage(error)} (${error.code})${error.fix !== undefined ? `: ${error.fix}` : ""}`, false);
    }
    for (const warning of findings) {
      this.context.log.warn(findingMessage(warning), { code: warning.code, ...(warning.fix !== undefined ? { fix: warning.fix } : {}) });
    }
  }

  private async catalogConnection(): Promise<mysql.Connection> {
    if (this.catalog === undefined) {
      if (this.stopping.signal.aborted) throw new ConnectorError("mysql source: closed", false);
      this.catalog = await connect(this.settings.url, { purpose: this.purpose });
    }
    return this.catalog;
  }

  /** A statement on the catalog connection, reconnecting once if it is gone (it idles for hours). */
  private async catalogQuery(sql: string): Promise<Record<string, unknown>[]> {
    for (let attempt = 0; ; attempt++) {
      const catalog = await this.catalogConnection();
      try {
        const [rows] = (await catalog.query(sql)) as unknown as [Record<string, unknown>[]];
        return rows;
      } catch (error) {
        await catalog.end().catch(() => {});
        this.catalog = undefined;
        if (attempt > 0 || this.stopping.signal.aborted) throw connectorError(error, this.server, "reading the binlog position");
      }
    }
  }

  private async release(): Promise<void> {
    const stream = this.stream;
    this.stream = undefined;
    await stream?.close();
    const snapshot = this.snapshotConnection;
    this.snapshotConnection = undefined;
    // Mid-result, end() would wait for the rest of the table: destroy.
    snapshot?.destroy();
    await this.catalog?.end().catch(() => {});
    this.catalog = undefined;
  }
}

function freshState(tables: readonly string[], point: BinlogPoint): SnapshotState {
  return { tables: [...tables], tablesDone: [], table: null, lastKey: null, point };
}

function snapshotStateOf(checkpoint: SourceCheckpoint | null): SnapshotState | null {
  const state = checkpoint?.state as { snapshot?: unknown } | undefined | null;
  return state !== null && typeof state === "object" && isSnapshotState(state.snapshot) ? state.snapshot : null;
}

function checkpointTables(checkpoint: SourceCheckpoint | null): string[] | null {
  const tables = (checkpoint?.state as { tables?: unknown } | undefined | null)?.tables;
  return Array.isArray(tables) && tables.every((table) => typeof table === "string") ? (tables as string[]) : null;
}
