/**
 * The PostgreSQL source: a snapshot (snapshot.ts), then the change stream of a logical
 * replication slot (replication.ts), behind the runtime's pull-based `SourceReader`.
 *
 * `start` decides, from the slot and the resume checkpoint, what this run does:
 *
 *   no slot, no checkpoint   create the slot; "initial" exports its snapshot and copies every
 *                            table inside it, then streams from the slot's consistent point
 *   no slot, a checkpoint    an error: the slot was dropped, the changes since the checkpoint are
 *                            gone, and continuing would hide the gap
 *   slot, checkpoint inside  the snapshot crashed: copy what is left from the last chunk's key,
 *   the snapshot             in a new snapshot, then stream from the consistent point (why that
 *                            converges: snapshot.ts)
 *   slot, checkpoint         stream from the checkpoint; with "initial", tables added to `tables`
 *                            since then (every checkpoint lists the tables copied) are copied
 *                            first, in a new snapshot (the same argument covers them)
 *   slot, no checkpoint      "initial": copy every table in a new snapshot, then stream from the
 *                            slot's confirmed position; "never": stream from it
 *
 * "only" creates neither slot nor publication: it copies the tables in one REPEATABLE READ
 * transaction and ends; a completed copy is not repeated by a later run.
 *
 * Start-up checks stop the pipeline with a message that says what to do, by the findings
 * `dts check --live` prints too, with the same codes (preflight.ts): PostgreSQL 14 or later,
 * wal_level, the REPLICATION attribute, tables that do not exist, tables without a key,
 * REPLICA IDENTITY NOTHING (with such a table in a publication the server rejects its UPDATEs
 * and DELETEs: we will not do that to an application); and a slot in use. REPLICA IDENTITY
 * DEFAULT is a warning: updates then carry no `before` and deletes only the key. So is
 * `max_slot_wal_keep_size = -1` (the default): the slot then keeps WAL without bound while the
 * pipeline is stopped.
 */
import type pg from "pg";
import {
  ConnectorError,
  type SourceBatch,
  type SourceCheckpoint,
  type SourceContext,
  type SourceFactory,
  type SourceReader,
  type TableSchema,
} from "../../runtime/contracts.js";
import { bigIntToLsn, lsnToBigInt, pgLsnPosition } from "../../model/position.js";
import { Timestamp } from "../../model/timestamp.js";
import { connect, describeAddress, endQuietly, queryError, quoteLiteral, serverAddress, type ServerAddress } from "./connection.js";
import { TypeRegistry } from "./decode.js";
import { DEFAULT_STREAM_LIMITS, ReplicationStream, type StreamLimits, type StreamStats } from "./replication.js";
import { createSlot, ensurePublication, inspectSlot } from "./slot.js";
import { isSnapshotState, snapshotBatches, snapshotComplete, type SnapshotState } from "./snapshot.js";
import { readServer, resolveTables, type TableDescription } from "./tables.js";
import { serverFindings, tableFindings } from "./preflight.js";
import { readSourceSettings, type SourceSettings } from "./source-settings.js";
import { findingMessage, findingSeverity, type Finding } from "../capabilities.js";

export type { SnapshotMode } from "./source-settings.js";

/** Knobs that are not options: tests use them to make limits small and waits short. */
export interface SourceTuning {
  readonly stream?: Partial<StreamLimits>;
  /** How long an active slot is waited for before it is an error. */
  readonly slotWaitMillis?: number;
}

export const createSource: SourceFactory = (context) => new PostgresSource(context);

interface Plan {
  /** Tables to copy first, with the state to resume from, or none. */
  readonly snapshot: { readonly state: SnapshotState; readonly client: pg.Client } | null;
  /** Where streaming starts; null in "only" mode. */
  readonly streamFrom: bigint | null;
}

export class PostgresSource implements SourceReader {
  private readonly settings: SourceSettings;
  private readonly address: ServerAddress;
  private readonly application: string;
  private readonly types = new TypeRegistry();
  private readonly stopping = new AbortController();
  private catalog: pg.Client | undefined;
  private snapshotClient: pg.Client | undefined;
  private stream: ReplicationStream | undefined;
  private plan: Plan | undefined;
  private tables = new Map<string, TableDescription>();
  /** The WAL position just after `tables` were described (relation-schemas.ts). */
  private describedAt = 0n;
  /** Tables whose definition changed since start, as the stream last saw them, by their name now. */
  private readonly changedSchemas = new Map<string, TableSchema>();
  private database = "";
  private acknowledged = 0n;

  constructor(
    private readonly context: SourceContext,
    private readonly tuning: SourceTuning = {},
  ) {
    this.settings = readSourceSettings(context);
    this.address = serverAddress(this.settings.url);
    this.application = `dts ${context.pipeline}.${context.name}`;
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
    if (plan === undefined) throw new Error("postgres source: batches() before start()");
    const signal = this.stopping.signal;
    if (plan.snapshot !== null) {
      const { state, client } = plan.snapshot;
      const startedAt = await this.queryOn(client, "SELECT (extract(epoch FROM now()) * 1000000)::int8::text AS micros", "reading the snapshot's time");
      yield* snapshotBatches({
        client,
        tables: this.tables,
        types: this.types,
        state,
        captured: [...this.tables.keys()],
        chunkSize: this.settings.chunkSize,
        position: pgLsnPosition(state.consistentPoint),
        startedAt: new Timestamp(BigInt(String(startedAt[0]!.micros)), true),
        database: this.database,
        address: this.address,
        log: this.context.log,
        signal,
        ...(this.context.snapshotProgress !== undefined ? { progress: this.context.snapshotProgress } : {}),
      });
      this.context.snapshotProgress?.(null);
      if (signal.aborted) return;
      await this.queryOn(client, "COMMIT", "ending the snapshot");
      await endQuietly(client);
      this.snapshotClient = undefined;
      this.context.log.info("snapshot done", { tables: state.tables.length });
    }
    if (plan.streamFrom === null || signal.aborted) return;
    const stream = new ReplicationStream({
      url: this.settings.url,
      address: this.address,
      application: this.application,
      slot: this.settings.slot,
      publication: this.settings.publication,
      start: plan.streamFrom,
      acknowledged: this.acknowledged > plan.streamFrom ? this.acknowledged : plan.streamFrom,
      tables: this.tables,
      describedAt: this.describedAt,
      onSchemaChange: (change) => this.changedSchemas.set(change.table, change.schema),
      checkpointState: { tables: [...this.tables.keys()] },
      types: this.types,
      catalog: (sql, params) => this.catalogQuery(sql, params),
      database: this.database,
      resuming: true,
      log: this.context.log,
      limits: {
        ...DEFAULT_STREAM_LIMITS,
        heartbeatMs: this.settings.heartbeatSeconds * 1000,
        ...this.tuning.stream,
      },
    });
    this.stream = stream;
    await stream.start();
    for (;;) {
      const batch = await stream.next(signal);
      if (batch === null) return;
      yield batch;
    }
  }

  async acknowledge(checkpoint: SourceCheckpoint): Promise<void> {
    const position = checkpoint.position;
    if (position === null || position.kind !== "pg-lsn") return;
    const lsn = lsnToBigInt(position.token);
    if (lsn > this.acknowledged) this.acknowledged = lsn;
    this.stream?.acknowledge(lsn);
  }

  async close(): Promise<void> {
    this.stopping.abort();
    await this.release();
  }

  /** A captured table as the server declares it (generated columns left out: they are never sent). */
  async describe(table: { readonly schema: string; readonly table: string }): Promise<TableSchema | undefined> {
    const changed = this.changedSchemas.get(`${table.schema}.${table.table}`);
    if (changed !== undefined) return changed;
    const found = this.tables.get(`${table.schema}.${table.table}`);
    if (found === undefined) return undefined;
    return {
      dialect: "postgres",
      columns: found.columns.filter((column) => !column.generated).map((column) => ({ name: column.name, type: column.type, nullable: column.nullable })),
      primaryKey: found.keyColumns,
    };
  }

  /** The stream's queue and positions (for tests and diagnostics); undefined before streaming. */
  streamStats(): StreamStats | undefined {
    return this.stream?.stats();
  }

  // ------------------------------------------------------------------ start-up

  private async prepare(): Promise<void> {
    const { settings, context } = this;
    const log = context.log;
    const resuming = context.resume !== null;
    const catalog = await connect(settings.url, { role: "catalog", application: this.application, resuming });
    this.catalog = catalog;
    catalog.on("error", (error: unknown) => log.warn("catalog connection lost", { error: String(error) }));
    const query = (sql: string, params?: unknown[]): Promise<{ rows: Record<string, unknown>[] }> => catalog.query(sql, params);
    const where = `PostgreSQL at ${describeAddress(this.address)}`;

    const server = await readServer(query, this.address);
    const streaming = settings.snapshot !== "only";
    this.stopAt(serverFindings(server, this.address.user, streaming), where);
    this.database = String((await query("SELECT current_database() AS db")).rows[0]!.db);

    const tables = await resolveTables(query, settings.tables, this.address, this.types);
    this.tables = new Map(tables.map((table) => [table.qualifiedName, table]));
    this.stopAt(tableFindings(tables, streaming, undefined), where);
    if (streaming) {
      this.describedAt = lsnToBigInt(String((await query("SELECT pg_current_wal_lsn()::text AS lsn")).rows[0]!.lsn));
      if (server.maxSlotWalKeepSize === "-1") {
        log.warn(
          `${where} has max_slot_wal_keep_size = -1: while this pipeline is stopped or behind, its replication slot ${settings.slot} keeps ` +
            `every WAL file written since its position, without bound, until the server's disk is full. Bound it: ALTER SYSTEM SET ` +
            `max_slot_wal_keep_size = '50GB'; SELECT pg_reload_conf(); (a slot that falls further behind is then invalidated: the pipeline ` +
            `stops, and must copy its tables again). When the pipeline is retired, remove its slot: dts drop <pipeline file>, or SELECT pg_drop_replication_slot('${settings.slot}')`,
          { slot: settings.slot },
        );
      }
    }

    const resumeState = snapshotStateOf(context.resume);
    if (!streaming) {
      this.plan = await this.planCopyOnly(resumeState);
      return;
    }
    const resumeLsn = context.resume?.position != null ? lsnOf(context.resume.position) : null;
    const { added } = await ensurePublication(query, settings.publication, tables, this.address, log);
    const slot = await inspectSlot(query, settings.slot, this.database, this.address, this.tuning.slotWaitMillis ?? 5000, this.application);

    if (slot === undefined) {
      if (context.resume !== null) {
        throw new ConnectorError(
          `replication slot ${settings.slot} no longer exists at ${describeAddress(this.address)}, but the pipeline has a checkpoint at ` +
            `${resumeLsn === null ? "the start" : bigIntToLsn(resumeLsn)}: the changes since then are lost. To copy everything again, ` +
            `remove the pipeline's checkpoint and run with snapshot "initial"`,
          false,
        );
      }
      const created = await createSlot(settings.url, this.address, settings.slot, settings.snapshot === "initial", server.version, this.application, log);
      try {
        if (settings.snapshot === "initial") {
          const client = await this.openSnapshot(created.snapshotName);
          const state = freshState([...this.tables.keys()], created.consistentPoint);
          this.plan = { snapshot: { state, client }, streamFrom: created.consistentPoint };
        } else {
          this.plan = { snapshot: null, streamFrom: created.consistentPoint };
        }
      } finally {
        // The exported snapshot is imported (or not needed): the creating connection may go.
        await endQuietly(created.connection);
      }
      this.acknowledged = created.consistentPoint;
      return;
    }

    const confirmed = slot.confirmedFlush ?? 0n;
    if (resumeLsn !== null) {
      if (resumeLsn < confirmed) {
        log.warn("the slot's confirmed position is past the checkpoint: another reader consumed it, and changes in between may be missing", {
          slot: settings.slot,
          checkpoint: bigIntToLsn(resumeLsn),
          confirmed: bigIntToLsn(confirmed),
        });
      }
      this.acknowledged = resumeLsn;
      const names = [...this.tables.keys()];
      // Tables captured now whose rows were never copied: added to `tables` since the checkpoint.
      // (A checkpoint without the list predates it: the publication's old tables stand in.)
      const copied = checkpointTables(context.resume) ?? names.filter((name) => !added.includes(name));
      const uncopied = names.filter((name) => !copied.includes(name));
      if (resumeState !== null && !snapshotComplete(resumeState) && settings.snapshot === "initial") {
        // Interrupted copy: the remaining chunks, then the stream from the consistent point.
        const state: SnapshotState = { ...resumeState, tables: [...resumeState.tables, ...uncopied.filter((name) => !resumeState.tables.includes(name))] };
        log.info("resuming the snapshot", { tablesDone: state.tablesDone.length, tables: state.tables.length, table: state.table, afterKey: state.lastKey });
        this.plan = { snapshot: { state, client: await this.openSnapshot(null) }, streamFrom: lsnToBigInt(resumeState.consistentPoint) };
        return;
      }
      if (uncopied.length > 0 && settings.snapshot === "initial") {
        log.info("copying tables added since the last run, then streaming from the checkpoint", { tables: uncopied });
        this.plan = { snapshot: { state: freshState(uncopied, resumeLsn), client: await this.openSnapshot(null) }, streamFrom: resumeLsn };
        return;
      }
      if (uncopied.length > 0) log.warn('tables added since the last run are streamed from now on, but their existing rows are not copied (snapshot: "never")', { tables: uncopied });
      this.plan = { snapshot: null, streamFrom: resumeLsn };
      return;
    }
    this.acknowledged = confirmed;
    if (settings.snapshot === "initial") {
      log.info("the slot exists but the pipeline has no checkpoint: copying every table in a new snapshot, then streaming from the slot's position", {
        slot: settings.slot,
        from: bigIntToLsn(confirmed),
      });
      this.plan = { snapshot: { state: freshState([...this.tables.keys()], confirmed), client: await this.openSnapshot(null) }, streamFrom: confirmed };
      return;
    }
    this.plan = { snapshot: null, streamFrom: confirmed };
  }

  private async planCopyOnly(resumeState: SnapshotState | null): Promise<Plan> {
    if (this.context.resume !== null && (resumeState === null || snapshotComplete(resumeState))) {
      this.context.log.info("the copy is already complete; nothing to do");
      return { snapshot: null, streamFrom: null };
    }
    const client = await this.openSnapshot(null);
    let state = resumeState;
    if (state === null) {
      const rows = await this.queryOn(client, "SELECT pg_catalog.pg_current_wal_lsn()::text AS lsn", "reading the WAL position");
      state = freshState([...this.tables.keys()], lsnToBigInt(String(rows[0]!.lsn)));
    }
    return { snapshot: { state, client }, streamFrom: null };
  }

  /**
   * Stops the start at the first error finding (the same findings, with the same codes, as
   * `dts check --live` prints: preflight.ts), and logs the warnings.
   */
  private stopAt(findings: readonly Finding[], where: string): void {
    const error = findings.find((finding) => findingSeverity(finding) === "error");
    if (error !== undefined) {
      throw new ConnectorError(`${where}: ${findingMessage(error)} (${error.code})${error.fix !== undefined ? `: ${error.fix}` : ""}`, false);
    }
    for (const warning of findings) {
      this.context.log.warn(findingMessage(warning), { code: warning.code, ...(warning.fix !== undefined ? { fix: warning.fix } : {}) });
    }
  }

  /** A REPEATABLE READ transaction, in the exported snapshot when there is one, else in a new one. */
  private async openSnapshot(snapshotName: string | null): Promise<pg.Client> {
    const client = await connect(this.settings.url, { role: "snapshot", application: this.application, resuming: this.context.resume !== null });
    this.snapshotClient = client;
    client.on("error", (error: unknown) => this.context.log.warn("snapshot connection lost", { error: String(error) }));
    await this.queryOn(client, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "starting the snapshot");
    if (snapshotName !== null) await this.queryOn(client, `SET TRANSACTION SNAPSHOT ${quoteLiteral(snapshotName)}`, "importing the slot's snapshot");
    return client;
  }

  /**
   * A statement on the catalog connection, reconnecting once if the connection is gone: it
   * idles for hours while the stream runs, and a server-side timeout or restart may end it.
   */
  private async catalogQuery(sql: string, params?: unknown[]): Promise<{ rows: Record<string, unknown>[] }> {
    const catalog = this.catalog;
    if (catalog === undefined) throw new ConnectorError("postgres source: closed", false);
    try {
      return await catalog.query(sql, params);
    } catch (error) {
      const gone = /Connection terminated|not queryable|ECONNRESET|EPIPE|ended unexpectedly/i.test(String((error as Error)?.message ?? error));
      if (!gone || this.stopping.signal.aborted) throw error;
      await endQuietly(catalog);
      const fresh = await connect(this.settings.url, { role: "catalog", application: this.application, resuming: true });
      fresh.on("error", (lost: unknown) => this.context.log.warn("catalog connection lost", { error: String(lost) }));
      if (this.stopping.signal.aborted) {
        await endQuietly(fresh);
        throw error;
      }
      this.catalog = fresh;
      return await fresh.query(sql, params);
    }
  }

  private async queryOn(client: pg.Client, sql: string, what: string): Promise<Record<string, unknown>[]> {
    try {
      return (await client.query(sql)).rows as Record<string, unknown>[];
    } catch (error) {
      throw queryError(error, this.address, what);
    }
  }

  private async release(): Promise<void> {
    const stream = this.stream;
    this.stream = undefined;
    await stream?.close();
    await endQuietly(this.snapshotClient);
    this.snapshotClient = undefined;
    await endQuietly(this.catalog);
    this.catalog = undefined;
  }
}

function freshState(tables: readonly string[], consistentPoint: bigint): SnapshotState {
  return { tables: [...tables], tablesDone: [], table: null, lastKey: null, consistentPoint: bigIntToLsn(consistentPoint) };
}

function snapshotStateOf(checkpoint: SourceCheckpoint | null): SnapshotState | null {
  const state = checkpoint?.state as { snapshot?: unknown } | undefined | null;
  return state !== null && typeof state === "object" && isSnapshotState(state.snapshot) ? state.snapshot : null;
}

function checkpointTables(checkpoint: SourceCheckpoint | null): string[] | null {
  const tables = (checkpoint?.state as { tables?: unknown } | undefined | null)?.tables;
  return Array.isArray(tables) && tables.every((table) => typeof table === "string") ? (tables as string[]) : null;
}

function lsnOf(position: { kind: string; token: string }): bigint {
  if (position.kind !== "pg-lsn") throw new ConnectorError(`postgres: the checkpoint holds a ${position.kind} position, not a PostgreSQL LSN`, false);
  return lsnToBigInt(position.token);
}
