/**
 * What the benchmarks share: throwaway databases on the local server, the table they copy, and
 * a row generator that gives the same rows to every contender.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { Decimal } from "../src/model/decimal.js";
import { Timestamp } from "../src/model/timestamp.js";
import type { Row } from "../src/model/value.js";
import type { Logger } from "../src/runtime/contracts.js";

export const PG_HOST = process.env.DTS_BENCH_PG_HOST ?? "127.0.0.1";
export const PG_PORT = Number(process.env.DTS_BENCH_PG_PORT ?? 5432);

export function urlOf(database: string): string {
  return `postgres://postgres@${PG_HOST}:${PG_PORT}/${database}`;
}

export const quietLog: Logger = { debug() {}, info() {}, warn() {}, error() {} };

export interface BenchDatabase {
  readonly name: string;
  readonly url: string;
  drop(): Promise<void>;
}

export async function adminQuery<T extends pg.QueryResultRow = pg.QueryResultRow>(url: string, text: string, values?: unknown[]): Promise<T[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
  } catch (error) {
    throw new Error(`PostgreSQL at ${PG_HOST}:${PG_PORT} does not answer (${(error as Error).message}); run scripts/services.sh`);
  }
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

export async function createBenchDatabase(prefix: string): Promise<BenchDatabase> {
  const name = `dts_bench_${prefix}_${randomBytes(3).toString("hex")}`;
  await adminQuery(urlOf("postgres"), `CREATE DATABASE "${name}"`);
  return {
    name,
    url: urlOf(name),
    async drop() {
      await adminQuery(urlOf("postgres"), "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active", [name]).catch(() => {});
      await adminQuery(urlOf("postgres"), `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    },
  };
}

/** A realistic order: ten columns of the common types, about 150 bytes a row. */
export function ordersTableSql(table: string): string {
  return `CREATE TABLE ${table} (
  id bigint PRIMARY KEY,
  customer_id integer NOT NULL,
  status text NOT NULL,
  amount numeric(12,2) NOT NULL,
  currency character(3) NOT NULL,
  quantity integer NOT NULL,
  paid boolean NOT NULL,
  note text,
  created_at timestamp with time zone NOT NULL,
  updated_at timestamp with time zone NOT NULL
)`;
}

/** The same table filled server-side: `n` rows, the same values `orderRow` makes. */
export function fillOrdersSql(table: string, n: number): string {
  return `INSERT INTO ${table}
SELECT i, (i::bigint * 7919) % 100000, (ARRAY['new','paid','shipped','delivered','cancelled'])[1 + i % 5],
       ((i::bigint * 104729) % 10000000) / 100.0, (ARRAY['EUR','USD','GBP'])[1 + i % 3], 1 + i % 9, i % 2 = 0,
       CASE WHEN i % 4 = 0 THEN NULL ELSE 'order note ' || i END,
       timestamptz '2024-01-01 00:00:00+00' + make_interval(secs => i),
       timestamptz '2024-01-01 00:00:00+00' + make_interval(secs => i * 2)
FROM generate_series(1, ${n}) AS i`;
}

const statuses = ["new", "paid", "shipped", "delivered", "cancelled"];
const currencies = ["EUR", "USD", "GBP"];
const base = 1704067200000000n; // 2024-01-01T00:00:00Z in microseconds

/** Row `id` as the PostgreSQL source would decode it; `version` changes the mutable columns. */
export function orderRow(id: number, version = 0): Row {
  return {
    id,
    customer_id: (id * 7919) % 100000,
    status: statuses[(id + version) % 5]!,
    amount: Decimal.of(new Decimal(((id * 104729) % 10000000) + version).value.div(100), 2),
    currency: currencies[id % 3]!,
    quantity: 1 + ((id + version) % 9),
    paid: id % 2 === 0,
    note: id % 4 === 0 ? null : `order note ${id}`,
    created_at: new Timestamp(base + BigInt(id) * 1_000_000n, true),
    updated_at: new Timestamp(base + BigInt(id) * 2_000_000n + BigInt(version), true),
  };
}
