/**
 * Checkpoints kept in the target database (`checkpoint: "postgres"`), in
 *
 *   dts.checkpoints(pipeline text, source text, checkpoint jsonb, updated_at timestamptz,
 *                   primary key (pipeline, source))
 *
 * `checkpoint` holds `{"position": {"kind", "token"} | null, "state": …}`, the shape of one
 * source in the checkpoint file. The sink writes a row inside the same transaction as the
 * events it covers (`saveWithin`), so the data and the position commit together or not at all:
 * after a crash the target is exactly at its stored position and nothing is applied twice.
 * `load` and `save` use a connection of their own, so that a save from the checkpoint
 * coordinator never lands inside a write's transaction (and is never rolled back with it).
 *
 * The pipeline's lock (one run at a time, see run-lock.ts) is a session-level advisory lock
 * keyed by a hash of the pipeline's name, so it is per pipeline and database, as the rows
 * are. It lives on a third connection: the load/save connection is dropped and reopened on
 * errors, which would let go of it unnoticed. The server releases it when the session ends,
 * so a killed run leaves no stale lock behind; until the server has noticed, its session
 * still holds the lock, so a lock held by a dts run that no longer exists on this host is a
 * retriable error rather than a refusal.
 *
 * When the lock's session ends mid-run (the server restarted, the connection dropped), the
 * runner takes the lock again (`retaking`). A server that refuses connections is then one
 * restarting, and is retried. The lock may still be held by this run's own previous session,
 * when the client saw the connection drop but the server has not noticed yet: that session,
 * recognised by its server process id, is ended, and the lock taken once the server has let
 * go of it. Held by any other session, it is another run's, and the runner stops.
 */
import { createHash } from "node:crypto";
import { hostname } from "node:os";
import type pg from "pg";
import type { JsonValue } from "../../model/json-value.js";
import type { CheckpointStore, Logger, SourceCheckpoint } from "../../runtime/contracts.js";
import { ConnectorError } from "../../runtime/contracts.js";
import { PipelineLockedError, processIsGone } from "../../runtime/run-lock.js";
import { connect, connectorError, isUnreachable, serverLabel } from "./client.js";
import type { CheckpointStoreFactory } from "../capabilities.js";

export const CHECKPOINT_TABLE = "dts.checkpoints";

const createStatements = [
  "CREATE SCHEMA IF NOT EXISTS dts",
  `CREATE TABLE IF NOT EXISTS dts.checkpoints (
  pipeline text NOT NULL,
  source text NOT NULL,
  checkpoint jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (pipeline, source)
)`,
];

const upsertStatement = `INSERT INTO dts.checkpoints (pipeline, source, checkpoint, updated_at)
SELECT $1, s, c::jsonb, now() FROM unnest($2::text[], $3::text[]) AS u(s, c)
ON CONFLICT (pipeline, source) DO UPDATE SET checkpoint = EXCLUDED.checkpoint, updated_at = EXCLUDED.updated_at`;

export class PostgresCheckpointStore implements CheckpointStore {
  private client: pg.Client | undefined;
  private readonly server: string;
  /** Per session: the table is known to exist. */
  private readonly ready = new WeakSet<pg.Client>();

  constructor(
    private readonly url: string,
    private readonly pipeline: string,
    private readonly applicationName: string,
  ) {
    this.server = serverLabel(url);
  }

  /** The server process of the session that held the lock last, to recognise it if it lingers. */
  private lockSession: number | undefined;

  async lock(options: { readonly log: Logger; readonly onLost: (error: Error) => void; readonly retaking?: boolean }): Promise<() => Promise<void>> {
    const key = advisoryLockKey(this.pipeline);
    // The holder's name as other sessions see it in pg_stat_activity, for their error message.
    let client: pg.Client;
    try {
      client = await connect(this.url, `dts pid ${process.pid} on ${hostname()}`);
    } catch (error) {
      // The lock is the first thing a run asks of this server: one that cannot be reached at
      // start is said at once (see isUnreachable), naming the server, as a sink's start would.
      if (!options.retaking && error instanceof ConnectorError && isUnreachable(error.cause)) {
        throw new ConnectorError(`taking the pipeline's lock: ${error.message}`, false, { cause: error.cause });
      }
      throw error;
    }
    try {
      const { rows } = await client.query<{ locked: boolean; session: number }>("SELECT pg_try_advisory_lock($1::bigint) AS locked, pg_backend_pid() AS session", [
        key.toString(),
      ]);
      if (!rows[0]!.locked) {
        const holder = await lockHolder(client, key).catch(() => undefined);
        if (options.retaking && holder !== undefined && holder.pid === this.lockSession) throw await this.endOwnSession(client, holder.pid, options.log);
        throw this.lockedError(key, holder);
      }
      this.lockSession = rows[0]!.session;
    } catch (error) {
      await client.end().catch(() => {});
      throw error instanceof PipelineLockedError ? error : connectorError(error, this.server, "taking the pipeline's lock");
    }
    let ended = false;
    const lost = (): void => {
      if (ended) return;
      ended = true;
      options.onLost(
        new ConnectorError(`the session holding the lock of pipeline "${this.pipeline}" on ${this.server} ended`, true),
      );
    };
    client.on("error", lost);
    client.on("end", lost);
    return async () => {
      if (ended) return;
      ended = true;
      // Ending the session would release it too, but only once the server process has exited:
      // a run started right after could still find it held.
      await client.query("SELECT pg_advisory_unlock($1::bigint)", [key.toString()]).catch(() => {});
      await client.end().catch(() => {});
    };
  }

  /** This run's previous lock session outlived its connection: it is ended, and the lock taken on the next try. */
  private async endOwnSession(client: pg.Client, pid: number, log: Logger): Promise<ConnectorError> {
    log.warn("the pipeline's lock is still held by this run's previous session, whose connection dropped; ending it", { server_process: pid });
    await client.query("SELECT pg_terminate_backend($1)", [pid]).catch(() => {});
    return new ConnectorError(
      `the lock of pipeline "${this.pipeline}" in ${this.server} was still held by this run's previous session (server process ${pid}), which was ended`,
      true,
    );
  }

  async load(): Promise<Readonly<Record<string, SourceCheckpoint>>> {
    try {
      const client = await this.connection();
      const stored = await readStoredCheckpoints(client, this.pipeline, this.server);
      return Object.fromEntries(stored.map((row) => [row.source, row.checkpoint]));
    } catch (error) {
      throw this.failure(error, "reading the checkpoints");
    }
  }

  async save(checkpoints: Readonly<Record<string, SourceCheckpoint>>): Promise<void> {
    try {
      await this.saveWithin(await this.connection(), checkpoints);
    } catch (error) {
      throw this.failure(error, "saving the checkpoints");
    }
  }

  /** Stores the checkpoints with `client`, inside whatever transaction it is in. */
  async saveWithin(client: pg.Client, checkpoints: Readonly<Record<string, SourceCheckpoint>>): Promise<void> {
    const names = Object.keys(checkpoints);
    if (names.length === 0) return;
    await this.ensureTable(client);
    await client.query({
      name: "dts_checkpoint_save",
      text: upsertStatement,
      values: [this.pipeline, names, names.map((name) => JSON.stringify(checkpointJson(checkpoints[name]!)))],
    });
  }

  /** Read as "checkpoints in dts.checkpoints of sink NAME": the sink's options say which server. */
  get location(): string {
    return CHECKPOINT_TABLE;
  }

  async savedAt(): Promise<ReadonlyMap<string, Date>> {
    try {
      const stored = await readStoredCheckpoints(await this.connection(), this.pipeline, this.server);
      return new Map(stored.map((row) => [row.source, row.updatedAt]));
    } catch (error) {
      throw this.failure(error, "reading the checkpoints");
    }
  }

  async forget(): Promise<boolean> {
    try {
      const client = await this.connection();
      const exists = await client.query<{ found: boolean }>("SELECT to_regclass('dts.checkpoints') IS NOT NULL AS found");
      if (!exists.rows[0]!.found) return false;
      const deleted = await client.query("DELETE FROM dts.checkpoints WHERE pipeline = $1", [this.pipeline]);
      return (deleted.rowCount ?? 0) > 0;
    } catch (error) {
      throw this.failure(error, "removing the checkpoints");
    }
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => {});
  }

  private async ensureTable(client: pg.Client): Promise<void> {
    if (this.ready.has(client)) return;
    const exists = await client.query<{ found: boolean }>("SELECT to_regclass('dts.checkpoints') IS NOT NULL AS found");
    if (!exists.rows[0]!.found) for (const statement of createStatements) await client.query(statement);
    this.ready.add(client);
  }

  private async connection(): Promise<pg.Client> {
    if (this.client !== undefined) return this.client;
    const client = await connect(this.url, this.applicationName);
    const forget = (): void => {
      if (this.client === client) this.client = undefined;
    };
    client.on("error", forget);
    client.on("end", forget);
    this.client = client;
    return client;
  }

  private lockedError(key: bigint, holder: LockSession | undefined): Error {
    const running = `pipeline "${this.pipeline}" is already running`;
    const lock = `its lock in ${this.server} (advisory lock ${key})`;
    if (holder === undefined) return new PipelineLockedError(this.pipeline, `${running}: another session holds ${lock}; stop the other dts-run of it`);
    const terminate = `SELECT pg_terminate_backend(${holder.pid})`;
    const dts = /^dts pid (\d+) on (.+)$/.exec(holder.application_name);
    if (dts === null) {
      const name = holder.application_name === "" ? "" : ` ("${holder.application_name}")`;
      return new PipelineLockedError(
        this.pipeline,
        `${running}: server process ${holder.pid}${name} holds ${lock}; stop the other dts-run of it, or end that session: ${terminate}`,
      );
    }
    const pid = dts[1]!;
    const host = dts[2]!;
    if (processIsGone(Number(pid), host)) {
      // A run killed a moment ago: the server ends its session as soon as it notices, so retry.
      return new ConnectorError(
        `the lock of pipeline "${this.pipeline}" in ${this.server} is still held by server process ${holder.pid} of ` +
          `dts-run pid ${pid}, which no longer runs; if the server does not end that session, end it: ${terminate}`,
        true,
      );
    }
    return new PipelineLockedError(
      this.pipeline,
      `${running}: dts-run pid ${pid} on host ${host} holds ${lock}, in server process ${holder.pid}; ` +
        `stop the other dts-run (pid ${pid}) or, if it is gone, end its session: ${terminate}`,
    );
  }

  private failure(error: unknown, doing: string): ConnectorError {
    const converted = connectorError(error, this.server, doing);
    if (converted.retriable) void this.close();
    return converted;
  }
}

/** The store of a sink's database, for the tools (`dts status`, `dts drop`): the checkpointStore capability. */
export const openCheckpointStore: CheckpointStoreFactory = (context) => {
  const url = context.options.url;
  if (typeof url !== "string" || url === "") throw new ConnectorError(`postgres sink ${context.name}: option url is required`, false);
  return new PostgresCheckpointStore(url, context.pipeline, context.tool);
};

/**
 * The advisory lock key of a pipeline: the first 64 bits of SHA-256 of `dts:NAME`, the same in
 * every version of dts and of PostgreSQL (the server's own hashtext is not promised to be).
 */
export function advisoryLockKey(pipeline: string): bigint {
  return createHash("sha256").update(`dts:${pipeline}`).digest().readBigInt64BE(0);
}

interface LockSession {
  readonly pid: number;
  readonly application_name: string;
}

/** The session holding the key in this database; absent when it has let go since. */
async function lockHolder(client: pg.Client, key: bigint): Promise<LockSession | undefined> {
  // pg_locks shows a bigint key as its high half in classid and its low half in objid.
  const unsigned = BigInt.asUintN(64, key);
  const { rows } = await client.query<LockSession>(
    `SELECT l.pid, coalesce(a.application_name, '') AS application_name
     FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
       AND l.classid = $1::oid AND l.objid = $2::oid`,
    [(unsigned >> 32n).toString(), (unsigned & 0xffffffffn).toString()],
  );
  return rows[0];
}

export interface StoredCheckpoint {
  readonly source: string;
  readonly checkpoint: SourceCheckpoint;
  readonly updatedAt: Date;
}

/** The pipeline's rows of dts.checkpoints (none when the table does not exist yet). */
export async function readStoredCheckpoints(client: pg.Client, pipeline: string, server: string): Promise<StoredCheckpoint[]> {
  const exists = await client.query<{ found: boolean }>("SELECT to_regclass('dts.checkpoints') IS NOT NULL AS found");
  if (!exists.rows[0]!.found) return [];
  const result = await client.query<{ source: string; checkpoint: unknown; updated_at: Date }>(
    "SELECT source, checkpoint, updated_at FROM dts.checkpoints WHERE pipeline = $1 ORDER BY source",
    [pipeline],
  );
  return result.rows.map((row) => ({ source: row.source, checkpoint: parseCheckpoint(row.source, row.checkpoint, server), updatedAt: row.updated_at }));
}

function parseCheckpoint(source: string, value: unknown, server: string): SourceCheckpoint {
  const record = value as { position?: unknown; state?: JsonValue } | null;
  const position = record?.position as { kind?: unknown; token?: unknown } | null | undefined;
  if (record === null || typeof record !== "object" || position === undefined || (position !== null && (typeof position.kind !== "string" || typeof position.token !== "string"))) {
    throw new ConnectorError(
      `the checkpoint of source "${source}" in ${CHECKPOINT_TABLE} on ${server} is malformed; delete its row to start from the beginning`,
      false,
    );
  }
  return {
    position: position === null ? null : { kind: position.kind as string, token: position.token as string },
    ...(record.state !== undefined ? { state: record.state } : {}),
  };
}

export function checkpointJson(checkpoint: SourceCheckpoint): JsonValue {
  const out: { [key: string]: JsonValue } = {
    position: checkpoint.position === null ? null : { kind: checkpoint.position.kind, token: checkpoint.position.token },
  };
  if (checkpoint.state !== undefined) out.state = checkpoint.state;
  return out;
}
