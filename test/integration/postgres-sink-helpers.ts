/**
 * Throwaway databases on the test server (PostgreSQL at 127.0.0.1:5432, user postgres, trust),
 * and events to feed the sink. A server that does not answer fails the test with its address:
 * these tests are never skipped.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import type { ChangeEvent, Op } from "../../src/model/event.js";
import { pgLsnPosition } from "../../src/model/position.js";
import { Timestamp } from "../../src/model/timestamp.js";
import type { Row } from "../../src/model/value.js";
import type { Logger, SinkEvent } from "../../src/runtime/contracts.js";

export const PG_HOST = process.env.DTS_TEST_PG_HOST ?? "127.0.0.1";
export const PG_PORT = Number(process.env.DTS_TEST_PG_PORT ?? 5432);
export const ADMIN_URL = `postgres://postgres@${PG_HOST}:${PG_PORT}/postgres`;

export function urlOf(database: string): string {
  return `postgres://postgres@${PG_HOST}:${PG_PORT}/${database}`;
}

async function admin(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
  } catch (error) {
    throw new Error(`the test PostgreSQL server at ${PG_HOST}:${PG_PORT} does not answer (${(error as Error).message}); run scripts/services.sh`);
  }
  return client;
}

export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  /** A client on the database, opened on first use and closed by drop(). */
  sql<T extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<T[]>;
  drop(): Promise<void>;
}

/** A new empty database with a unique name; drop() removes it and any replication slot on it. */
export async function createDatabase(prefix: string): Promise<TestDatabase> {
  const name = `dts_t_${prefix}_${randomBytes(4).toString("hex")}`;
  const client = await admin();
  try {
    await client.query(`CREATE DATABASE "${name}"`);
  } finally {
    await client.end();
  }
  const url = urlOf(name);
  let session: pg.Client | undefined;
  return {
    name,
    url,
    async sql(text, values) {
      if (session === undefined) {
        session = new pg.Client({ connectionString: url });
        session.on("error", () => {});
        await session.connect();
        await session.query("SET TimeZone = 'UTC'");
      }
      return (await session.query(text, values)).rows;
    },
    async drop() {
      await session?.end().catch(() => {});
      await dropDatabase(name);
    },
  };
}

export async function dropDatabase(name: string): Promise<void> {
  const client = await admin();
  try {
    // Slots pin WAL on the server forever; a test leaves none behind.
    for (let attempt = 0; attempt < 20; attempt++) {
      await client.query("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL", [name]);
      try {
        await client.query("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1", [name]);
        break;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await client.end();
  }
}

export const silentLog: Logger = { debug() {}, info() {}, warn() {}, error() {} };

let lsn = 1000n;

/** A change event as the PostgreSQL source would send it, for `schema.table`. */
export function event(op: Op, table: string, row: { before?: Row | null; after?: Row | null; key: Row }): ChangeEvent {
  const [schema, name] = table.split(".") as [string, string];
  return {
    op,
    before: row.before ?? null,
    after: row.after ?? null,
    key: row.key,
    source: { connector: "postgres", db: "src", schema, table: name, position: pgLsnPosition(lsn++), ts: Timestamp.fromEpochMillis(0) },
  };
}

export function sinkEvents(events: readonly ChangeEvent[], target?: string): SinkEvent[] {
  return events.map((e) => ({ event: e, target: target ?? `${e.source.schema}.${e.source.table}` }));
}
