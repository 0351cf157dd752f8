/**
 * Checkpoints kept in the target MySQL or MariaDB database (`checkpoint: "mysql"`), in
 *
 *   dts_checkpoints(pipeline VARCHAR(255), source VARCHAR(255), checkpoint LONGTEXT (JSON),
 *                   updated_at DATETIME(6), PRIMARY KEY (pipeline, source))
 *
 * in the database of the sink's URL (`dts` when the URL names none). `checkpoint` holds
 * `{"position": {"kind", "token"} | null, "state": …}`, one source's entry of the checkpoint
 * file. The sink writes its row in the same transaction as the changes it covers
 * (`saveWithin`), so data and position commit together: after a crash the target is exactly at
 * its stored position. In MySQL every DDL statement commits the open transaction, so the table
 * is created by `load` (which a run calls before its first write), never inside a write.
 *
 * The pipeline's lock is a named lock (GET_LOCK) on a connection of its own, named after the
 * database and the pipeline; the server releases it when that session ends, so a killed run
 * leaves none behind. A lock this run held on a session whose connection dropped, and which the
 * server has not ended yet, is recognised by its connection id and that session is killed.
 */
import { createHash } from "node:crypto";
import type mysql from "mysql2/promise";
import type { JsonValue } from "../../model/json-value.js";
import { ConnectorError, type CheckpointStore, type Logger, type SourceCheckpoint } from "../../runtime/contracts.js";
import { PipelineLockedError } from "../../runtime/run-lock.js";
import type { CheckpointStoreFactory } from "../capabilities.js";
import { connect, connectorError, isUnreachable, quoteIdentifier, serverLabel } from "./connection.js";

export const CHECKPOINT_TABLE = "dts_checkpoints";

/** The database holding the checkpoint table: the URL's, else `dts`. */
export function checkpointDatabase(url: string): string {
  try {
    const path = new URL(url).pathname;
    return path.length > 1 ? decodeURIComponent(path.slice(1)) : "dts";
  } catch {
    return "dts";
  }
}

export class MysqlCheckpointStore implements CheckpointStore {
  private connection: mysql.Connection | undefined;
  private readonly server: string;
  private readonly table: string;
  private readonly database: string;
  private lockSession: number | undefined;

  constructor(
    private readonly url: string,
    private readonly pipeline: string,
    private readonly purpose: string,
  ) {
    this.server = serverLabel(url);
    this.database = checkpointDatabase(url);
    this.table = `${quoteIdentifier(this.database)}.${quoteIdentifier(CHECKPOINT_TABLE)}`;
  }

  get location(): string {
    return `${this.database}.${CHECKPOINT_TABLE}`;
  }

  async lock(options: { readonly log: Logger; readonly onLost: (error: Error) => void; readonly retaking?: boolean }): Promise<() => Promise<void>> {
    const name = lockName(this.database, this.pipeline);
    let connection: mysql.Connection;
    try {
      connection = await connect(this.url, { purpose: `dts pid ${process.pid} lock` });
    } catch (error) {
      if (!options.retaking && error instanceof ConnectorError && isUnreachable(error.cause)) {
        throw new ConnectorError(`taking the pipeline's lock: ${error.message}`, false, { cause: error.cause });
      }
      throw error;
    }
    try {
      const [rows] = await connection.query<mysql.RowDataPacket[]>("SELECT GET_LOCK(?, 0) AS locked, CONNECTION_ID() AS session", [name]);
      if (Number(rows[0]!.locked) !== 1) {
        const [holders] = await connection.query<mysql.RowDataPacket[]>("SELECT IS_USED_LOCK(?) AS holder", [name]);
        const holder = holders[0]?.holder === null || holders[0]?.holder === undefined ? undefined : Number(holders[0].holder);
        if (options.retaking && holder !== undefined && holder === this.lockSession) {
          options.log.warn("the pipeline's lock is still held by this run's previous session, whose connection dropped; ending it", { connection: holder });
          await connection.query(`KILL ${holder}`).catch(() => {});
          throw new ConnectorError(`the lock of pipeline "${this.pipeline}" on ${this.server} was still held by this run's previous session (connection ${holder}), which was ended`, true);
        }
        const who = holder === undefined ? "another session" : `connection ${holder}`;
        throw new PipelineLockedError(
          this.pipeline,
          `pipeline "${this.pipeline}" is already running: ${who} holds its lock ${name} on ${this.server}; stop the other dts-run of it` +
            (holder === undefined ? "" : `, or if it is gone end that session: KILL ${holder}`),
        );
      }
      this.lockSession = Number(rows[0]!.session);
    } catch (error) {
      await connection.end().catch(() => {});
      throw error instanceof PipelineLockedError || error instanceof ConnectorError ? error : connectorError(error, this.server, "taking the pipeline's lock");
    }
    let ended = false;
    const lost = (): void => {
      if (ended) return;
      ended = true;
      options.onLost(new ConnectorError(`the session holding the lock of pipeline "${this.pipeline}" on ${this.server} ended`, true));
    };
    connection.on("error", lost);
    connection.on("end", lost);
    // A dropped connection is noticed only when used: asked now and then.
    const probe = setInterval(() => void connection.query("SELECT 1").catch(lost), 5_000);
    probe.unref();
    return async () => {
      clearInterval(probe);
      if (ended) return;
      ended = true;
      await connection.query("SELECT RELEASE_LOCK(?)", [name]).catch(() => {});
      await connection.end().catch(() => {});
    };
  }

  async load(): Promise<Readonly<Record<string, SourceCheckpoint>>> {
    try {
      const connection = await this.open();
      await this.ensureTable(connection);
      const stored = await this.read(connection);
      return Object.fromEntries(stored.map((row) => [row.source, row.checkpoint]));
    } catch (error) {
      throw this.failure(error, "reading the checkpoints");
    }
  }

  async save(checkpoints: Readonly<Record<string, SourceCheckpoint>>): Promise<void> {
    try {
      const connection = await this.open();
      await this.ensureTable(connection);
      await this.saveWithin(connection, checkpoints);
    } catch (error) {
      throw this.failure(error, "saving the checkpoints");
    }
  }

  /** Stores the checkpoints with `connection`, inside whatever transaction it is in (no DDL here: it would commit). */
  async saveWithin(connection: mysql.Connection, checkpoints: Readonly<Record<string, SourceCheckpoint>>): Promise<void> {
    const names = Object.keys(checkpoints);
    if (names.length === 0) return;
    const values: string[] = [];
    for (const name of names) values.push(this.pipeline, name, JSON.stringify(checkpointJson(checkpoints[name]!)));
    await connection.query(
      `INSERT INTO ${this.table} (pipeline, source, checkpoint, updated_at) VALUES ${names.map(() => "(?, ?, ?, UTC_TIMESTAMP(6))").join(", ")}
       ON DUPLICATE KEY UPDATE checkpoint = VALUES(checkpoint), updated_at = VALUES(updated_at)`,
      values,
    );
  }

  async savedAt(): Promise<ReadonlyMap<string, Date>> {
    try {
      const stored = await this.read(await this.open());
      return new Map(stored.map((row) => [row.source, row.updatedAt]));
    } catch (error) {
      throw this.failure(error, "reading the checkpoints");
    }
  }

  async forget(): Promise<boolean> {
    try {
      const connection = await this.open();
      if (!(await this.exists(connection))) return false;
      const [result] = await connection.query<mysql.ResultSetHeader>(`DELETE FROM ${this.table} WHERE pipeline = ?`, [this.pipeline]);
      return result.affectedRows > 0;
    } catch (error) {
      throw this.failure(error, "removing the checkpoints");
    }
  }

  async close(): Promise<void> {
    const connection = this.connection;
    this.connection = undefined;
    await connection?.end().catch(() => {});
  }

  /** Creates the table (and database) if missing: only outside a write, since DDL commits. */
  async ensureTable(connection: mysql.Connection): Promise<void> {
    if (await this.exists(connection)) return;
    await connection.query(`CREATE DATABASE IF NOT EXISTS ${quoteIdentifier(this.database)} CHARACTER SET utf8mb4`);
    await connection.query(
      `CREATE TABLE IF NOT EXISTS ${this.table} (
  pipeline VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  source VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  checkpoint LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  PRIMARY KEY (pipeline, source)
) ENGINE=InnoDB`,
    );
  }

  private async exists(connection: mysql.Connection): Promise<boolean> {
    const [rows] = await connection.query<mysql.RowDataPacket[]>(
      "SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
      [this.database, CHECKPOINT_TABLE],
    );
    return Number(rows[0]!.n) > 0;
  }

  private async read(connection: mysql.Connection): Promise<{ source: string; checkpoint: SourceCheckpoint; updatedAt: Date }[]> {
    if (!(await this.exists(connection))) return [];
    const [rows] = await connection.query<mysql.RowDataPacket[]>(
      `SELECT source, checkpoint, updated_at FROM ${this.table} WHERE pipeline = ? ORDER BY source`,
      [this.pipeline],
    );
    return rows.map((row) => ({
      source: String(row.source),
      checkpoint: parseCheckpoint(String(row.source), String(row.checkpoint), `${this.location} on ${this.server}`),
      updatedAt: new Date(`${String(row.updated_at).replace(" ", "T")}Z`),
    }));
  }

  private async open(): Promise<mysql.Connection> {
    if (this.connection !== undefined) return this.connection;
    const connection = await connect(this.url, { purpose: this.purpose });
    const forget = (): void => {
      if (this.connection === connection) this.connection = undefined;
    };
    connection.on("error", forget);
    connection.on("end", forget);
    this.connection = connection;
    return connection;
  }

  private failure(error: unknown, doing: string): ConnectorError {
    const converted = connectorError(error, this.server, doing);
    if (converted.retriable) void this.close();
    return converted;
  }
}

/** The store of a sink's database, for the tools (`dts status`, `dts drop`). */
export const openCheckpointStore: CheckpointStoreFactory = (context) => {
  const url = context.options.url;
  if (typeof url !== "string" || url === "") throw new ConnectorError(`mysql sink ${context.name}: option url is required`, false);
  return new MysqlCheckpointStore(url, context.pipeline, context.tool);
};

/** A named lock is server-wide and at most 64 characters: the database and pipeline, hashed. */
export function lockName(database: string, pipeline: string): string {
  return `dts_${createHash("sha256").update(`${database}\u0000${pipeline}`).digest("hex").slice(0, 40)}`;
}

function parseCheckpoint(source: string, text: string, where: string): SourceCheckpoint {
  let record: { position?: { kind?: unknown; token?: unknown } | null; state?: JsonValue } | null;
  try {
    record = JSON.parse(text) as typeof record;
  } catch {
    record = null;
  }
  const position = record?.position;
  if (record === null || typeof record !== "object" || position === undefined || (position !== null && (typeof position.kind !== "string" || typeof position.token !== "string"))) {
    throw new ConnectorError(`the checkpoint of source "${source}" in ${where} is malformed; delete its row to start from the beginning`, false);
  }
  return {
    position: position === null ? null : { kind: position.kind as string, token: position.token as string },
    ...(record.state !== undefined ? { state: record.state } : {}),
  };
}

function checkpointJson(checkpoint: SourceCheckpoint): JsonValue {
  const out: { [key: string]: JsonValue } = {
    position: checkpoint.position === null ? null : { kind: checkpoint.position.kind, token: checkpoint.position.token },
  };
  if (checkpoint.state !== undefined) out.state = checkpoint.state;
  return out;
}
