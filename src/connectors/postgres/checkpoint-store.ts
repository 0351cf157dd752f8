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
 */
import type pg from "pg";
import type { JsonValue } from "../../model/json-value.js";
import type { CheckpointStore, SourceCheckpoint } from "../../runtime/contracts.js";
import { ConnectorError } from "../../runtime/contracts.js";
import { connect, connectorError, serverLabel } from "./client.js";

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

  private failure(error: unknown, doing: string): ConnectorError {
    const converted = connectorError(error, this.server, doing);
    if (converted.retriable) void this.close();
    return converted;
  }
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
