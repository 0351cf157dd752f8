/**
 * Throwaway databases on the test PostgreSQL server (127.0.0.1:5432, user postgres, trust;
 * override with DTS_TEST_PG_HOST / DTS_TEST_PG_PORT), for any integration test.
 *
 * Each database gets a unique name, so test files and repeated runs never meet; `drop()`
 * removes it together with the replication slots on it (a slot keeps WAL forever, so a test
 * that left one behind would slowly fill the disk). A server that does not answer fails the
 * test loudly with its address and the fix — integration tests are never skipped.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import type { ChangeEvent } from "../../src/model/event.js";
import { lsnToBigInt } from "../../src/model/position.js";
import type { Value } from "../../src/model/value.js";
import type { Logger, SourceBatch, SourceCheckpoint, SourceContext, SourceReader } from "../../src/runtime/contracts.js";

/** Replication slots are server-wide: a fixed name would meet the same test run in parallel elsewhere. */
const RUN = randomBytes(3).toString("hex");
export const slotName = (name: string): string => `${name}_${RUN}`;

export const PG_HOST = process.env.DTS_TEST_PG_HOST ?? "127.0.0.1";
export const PG_PORT = Number(process.env.DTS_TEST_PG_PORT ?? 5432);
export const PG_USER = process.env.DTS_TEST_PG_USER ?? "postgres";

export function pgUrl(database: string): string {
  return `postgres://${PG_USER}@${PG_HOST}:${PG_PORT}/${database}`;
}

/** A connected client; throws naming the server and `run: bash scripts/services.sh` when it does not answer. */
export async function connectTo(database: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: pgUrl(database), connectionTimeoutMillis: 5000 });
  client.on("error", () => {});
  try {
    await client.connect();
  } catch (error) {
    throw new Error(
      `the test PostgreSQL server at ${PG_HOST}:${PG_PORT} is unreachable (${(error as Error).message}); run: bash scripts/services.sh`,
    );
  }
  return client;
}

/** Fails unless the server can do logical replication (the source's tests need it). */
export async function requireLogicalReplication(): Promise<void> {
  const client = await connectTo("postgres");
  try {
    const { rows } = await client.query<{ wal_level: string }>("SHOW wal_level");
    if (rows[0]!.wal_level !== "logical") {
      throw new Error(`the test PostgreSQL server at ${PG_HOST}:${PG_PORT} has wal_level=${rows[0]!.wal_level}, not logical; run: bash scripts/services.sh`);
    }
  } finally {
    await client.end();
  }
}

export interface ThrowawayDatabase {
  readonly name: string;
  readonly url: string;
  /** Runs SQL on the database (one shared client, opened on first use). */
  sql<Row extends pg.QueryResultRow = Record<string, unknown>>(text: string, values?: unknown[]): Promise<Row[]>;
  /** A separate client, closed by drop() if the test did not close it. */
  client(): Promise<pg.Client>;
  /** Drops the database and every replication slot on it. */
  drop(): Promise<void>;
}

/** Creates an empty database named `dts_test_<label>_<random>`. */
export async function createDatabase(label: string): Promise<ThrowawayDatabase> {
  const name = `dts_test_${label.toLowerCase().replace(/[^a-z0-9_]+/g, "_").slice(0, 30)}_${randomBytes(4).toString("hex")}`;
  const admin = await connectTo("postgres");
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const clients: pg.Client[] = [];
  let shared: pg.Client | undefined;
  return {
    name,
    url: pgUrl(name),
    async sql(text, values) {
      shared ??= await connectTo(name);
      return (await shared.query(text, values)).rows;
    },
    async client() {
      const client = await connectTo(name);
      clients.push(client);
      return client;
    },
    async drop() {
      for (const client of [...clients, ...(shared !== undefined ? [shared] : [])]) await client.end().catch(() => {});
      await dropDatabase(name);
    },
  };
}

/** Drops a database and its replication slots, ending whatever still uses them. */
export async function dropDatabase(name: string): Promise<void> {
  const admin = await connectTo("postgres");
  try {
    for (let attempt = 0; attempt < 50; attempt++) {
      await admin.query(
        `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL`,
        [name],
      );
      const { rows } = await admin.query<{ slot_name: string; active: boolean }>(
        `SELECT slot_name, active FROM pg_replication_slots WHERE database = $1`,
        [name],
      );
      if (rows.length === 0) break;
      for (const row of rows) {
        if (!row.active) await admin.query(`SELECT pg_drop_replication_slot($1)`, [row.slot_name]).catch(() => {});
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

/** Log lines kept for assertions; silent unless DTS_TEST_LOG is set. */
export interface RecordingLogger extends Logger {
  readonly lines: { level: string; message: string; fields?: Record<string, unknown> }[];
}

export function recordingLogger(): RecordingLogger {
  const lines: RecordingLogger["lines"] = [];
  const record =
    (level: string) =>
    (message: string, fields?: Record<string, unknown>): void => {
      lines.push({ level, message, ...(fields !== undefined ? { fields } : {}) });
      if (process.env.DTS_TEST_LOG) console.error(level, message, fields ?? "");
    };
  return { lines, debug: record("debug"), info: record("info"), warn: record("warn"), error: record("error") };
}

/** A SourceContext for calling a source factory directly, without the runtime. */
export function sourceContext(
  options: Record<string, Value>,
  extra: { pipeline?: string; name?: string; resume?: SourceCheckpoint | null; log?: Logger; signal?: AbortSignal } = {},
): SourceContext {
  return {
    pipeline: extra.pipeline ?? "test",
    name: extra.name ?? "pg",
    options,
    resume: extra.resume ?? null,
    log: extra.log ?? recordingLogger(),
    signal: extra.signal ?? new AbortController().signal,
  };
}

/**
 * Pulls a source's batches as the runtime would, one at a time, acknowledging each checkpoint
 * at once (as if every sink were instantly durable) unless told not to.
 */
export class BatchPuller {
  private readonly iterator: AsyncIterator<SourceBatch>;
  readonly events: ChangeEvent[] = [];
  readonly batches: SourceBatch[] = [];
  lastCheckpoint: SourceCheckpoint | undefined;

  constructor(
    private readonly source: SourceReader,
    private readonly options: { acknowledge?: boolean; keepBatches?: boolean; keepEvents?: boolean } = {},
  ) {
    this.iterator = source.batches()[Symbol.asyncIterator]();
  }

  /** The next batch, or null when the source ended; fails after `timeoutMs`. */
  async next(timeoutMs = 15_000): Promise<SourceBatch | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no batch from the source within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const result = await Promise.race([this.iterator.next(), timeout]);
      if (result.done === true) return null;
      const batch = result.value;
      if (this.options.keepEvents !== false) for (const event of batch.events) this.events.push(event);
      if (this.options.keepBatches === true) this.batches.push(batch);
      if (batch.checkpoint !== undefined) {
        this.lastCheckpoint = batch.checkpoint;
        if (this.options.acknowledge !== false) await this.source.acknowledge(batch.checkpoint);
      }
      return batch;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Pulls until `done(batch)` holds (or the source ends); returns the last batch. */
  async until(done: (batch: SourceBatch) => boolean, timeoutMs = 15_000): Promise<SourceBatch | null> {
    for (;;) {
      const batch = await this.next(timeoutMs);
      if (batch === null || done(batch)) return batch;
    }
  }

  /** Pulls until a caught-up batch positioned at or after `lsn` (text `X/Y`). */
  async untilCaughtUpPast(lsn: string, timeoutMs = 15_000): Promise<void> {
    const target = lsnToBigInt(lsn);
    await this.until(
      (batch) => batch.caughtUp === true && batch.checkpoint?.position != null && lsnToBigInt(batch.checkpoint.position.token) >= target,
      timeoutMs,
    );
  }
}

/** The server's current WAL position, `X/Y`. */
export async function currentLsn(db: ThrowawayDatabase): Promise<string> {
  return (await db.sql<{ lsn: string }>("SELECT pg_current_wal_lsn()::text AS lsn"))[0]!.lsn;
}

export async function confirmedFlush(db: ThrowawayDatabase, slot: string): Promise<string | null> {
  const rows = await db.sql<{ lsn: string | null }>("SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1", [slot]);
  return rows[0]?.lsn ?? null;
}

/** Polls `check` until it returns true, or fails with `what` after `timeoutMs`. */
export async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
