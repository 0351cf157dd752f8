/**
 * PostgreSQL end to end, through the built CLIs: the disaster-recovery and fan-out examples
 * (snapshot, then ten thousand streamed changes of every kind, then `dts verify`), a runner
 * killed with SIGKILL again and again during the snapshot and during streaming that still ends
 * with an equal copy, and the failures a user meets first (a server that does not answer, a
 * table that does not exist) as clear messages and non-zero exits.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { requireBuild, runDts, runDtsRun, startDtsRun, waitFor, type Running } from "../cli-process.js";
import { copyPipeline, unique } from "./postgres-e2e-helpers.js";
import { createDatabase, type TestDatabase } from "./postgres-sink-helpers.js";

beforeAll(() => requireBuild());

const DR_SCHEMA = `
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE customers (
  id bigint PRIMARY KEY, name varchar(40) NOT NULL, email text, mood mood, created_at timestamptz NOT NULL,
  birthday date, tags text[], profile jsonb, photo bytea, score double precision, ratio real, active boolean
);
CREATE TABLE orders (
  id integer PRIMARY KEY, customer_id bigint NOT NULL, amount numeric(12,2) NOT NULL, currency char(3),
  note text, placed_at timestamp, items integer[], ref uuid, ip inet, duration interval, at_time time, doc json
);
CREATE TABLE order_lines (order_id integer, line smallint, sku text, qty integer, price numeric(10,3), PRIMARY KEY (order_id, line));
`;

const customersRows = (from: number, to: number) => `
INSERT INTO customers
SELECT i, 'name ' || i, CASE WHEN i % 5 = 0 THEN NULL ELSE 'c' || i || '@example.org' END,
       (ARRAY['sad','ok','happy'])[1 + i % 3]::mood, timestamptz '2024-01-01 00:00:00+00' + i * interval '1 minute 0.000123 s',
       date '1980-01-01' + i, ARRAY['t' || i % 7, 'x,y "q"', NULL], jsonb_build_object('n', i, 'f', round(i / 7.0, 3), 'list', jsonb_build_array(1, 'a', NULL)),
       decode(md5(i::text), 'hex'), i * 0.37 + 0.001, (i % 8) / 4.0, i % 2 = 0
FROM generate_series(${from}, ${to}) AS i`;

const ordersRows = (from: number, to: number) => `
INSERT INTO orders
SELECT i, 1 + i % 3000, round((i * 7.31)::numeric, 2), (ARRAY['EUR','USD','GB'])[1 + i % 3],
       CASE WHEN i % 3 = 0 THEN NULL ELSE E'note\\t' || i || E'\\n' END, timestamp '2023-06-01 12:00:00' + i * interval '37 seconds',
       ARRAY[i, i + 1, NULL], md5(i::text)::uuid, ('10.0.' || i % 250 || '.' || i % 200)::inet, i * interval '90 minutes', time '08:00' + i * interval '1 second',
       json_build_object('i', i, 'x', 1.50)
FROM generate_series(${from}, ${to}) AS i`;

const linesRows = (from: number, to: number) => `
INSERT INTO order_lines
SELECT o, l, 'SKU-' || (o * l) % 997, 1 + (o + l) % 5, round(((o * l) % 1000) / 7.0, 3)
FROM generate_series(${from}, ${to}) AS o, generate_series(1, 2) AS l`;

/**
 * One round of changes of every kind, in a few transactions, touching a bounded set of rows
 * however big the tables are; returns the rows changed. `scale` 1 changes about 800 rows.
 */
async function changeRound(client: pg.Client, round: number, base: number, scale = 1): Promise<number> {
  let changed = 0;
  const run = async (sql: string) => {
    changed += (await client.query(sql)).rowCount ?? 0;
  };
  const n = (rows: number) => Math.max(1, Math.round(rows * scale));
  /** A modulus picking about `rows` of `of` rows. */
  const modulo = (rows: number, of = 5000) => Math.max(1, Math.round(of / n(rows)));
  await client.query("BEGIN");
  await run(ordersRows(base + round * 100 + 1, base + round * 100 + n(100)));
  await run(`UPDATE orders SET amount = amount + 1, note = 'round ${round}', items = items || ${round} WHERE id <= 5000 AND id % ${modulo(200)} = ${round % modulo(200)}`);
  await run(`UPDATE orders SET doc = json_build_object('twice', ${round}) WHERE id <= 5000 AND id % ${modulo(200)} = ${round % modulo(200)}`);
  const lines = (round * 37) % 4000;
  await run(`DELETE FROM order_lines WHERE order_id BETWEEN ${lines} AND ${lines + n(10)}`);
  await client.query("COMMIT");
  await client.query("BEGIN");
  // A key change, and a delete followed by a new row with the same key, in one transaction.
  await run(`UPDATE customers SET id = id + 1000000 WHERE id < 1000000 AND id % ${modulo(30, 3000)} = ${round % modulo(30, 3000)}`);
  const gone = ((round * 53) % 5000) + 1;
  await run(`DELETE FROM orders WHERE id BETWEEN ${gone} AND ${gone + n(5)}`);
  const again = ((round * 7) % 5000) + 1;
  await run(`DELETE FROM orders WHERE id = ${again}`);
  await run(ordersRows(again, again));
  await run(`UPDATE customers SET score = score * 2, profile = profile || '{"round": ${round}}', tags = tags || 'r${round}'::text WHERE id % ${modulo(75, 3000)} = ${round % modulo(75, 3000)}`);
  await run(`UPDATE order_lines SET qty = qty + 1 WHERE order_id <= 4000 AND (order_id + line) % ${modulo(130, 8000)} = ${round % modulo(130, 8000)}`);
  await client.query("COMMIT");
  for (let i = 0; i < 5; i++) await run(`UPDATE customers SET active = NOT active WHERE id = ${1 + ((round * 5 + i) % 2000)}`);
  return changed;
}

async function connectTo(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return client;
}

async function count(db: TestDatabase, table: string): Promise<number> {
  try {
    const [row] = await db.sql<{ n: string }>(`SELECT count(*) AS n FROM ${table}`);
    return Number(row!.n);
  } catch {
    return -1; // not created yet
  }
}

describe("disaster recovery (pipelines/disaster-recovery.dts)", () => {
  let primary: TestDatabase;
  let standby: TestDatabase;
  let pipeline: Awaited<ReturnType<typeof copyPipeline>>;
  let running: Running | undefined;

  beforeAll(async () => {
    primary = await createDatabase("dr_primary");
    standby = await createDatabase("dr_standby");
    await primary.sql(DR_SCHEMA);
    await primary.sql(customersRows(1, 3000));
    await primary.sql(ordersRows(1, 5000));
    await primary.sql(linesRows(1, 4000));
    pipeline = await copyPipeline("disaster-recovery.dts", [['slot: "dts_standby"', `slot: "${unique("dts_standby")}"`]]);
  });

  afterAll(async () => {
    running?.child.kill("SIGKILL");
    await running?.done;
    await primary?.drop();
    await standby?.drop();
    await pipeline?.remove();
  });

  it("copies the tables, streams 10k changes of every kind, and verify finds the copy equal", async () => {
    const env = { PRIMARY_URL: primary.url, STANDBY_URL: standby.url };
    running = startDtsRun([pipeline.file], { env });
    await waitFor("the snapshot to reach the standby", async () => (await count(standby, "public.order_lines")) === 8000, 30_000);

    const writer = await connectTo(primary.url);
    let changes = 0;
    for (let round = 1; changes < 10_000; round++) changes += await changeRound(writer, round, 100_000);
    await writer.end();
    expect(changes).toBeGreaterThanOrEqual(10_000);

    running.child.kill("SIGTERM");
    const stopped = await running.done;
    running = undefined;
    expect(stopped.code, stopped.stderr.slice(-3000)).toBe(0);

    const caughtUp = await runDtsRun([pipeline.file, "--until-caught-up"], { env });
    expect(caughtUp.code, caughtUp.stderr.slice(-3000)).toBe(0);

    const verify = await runDts(["verify", pipeline.file], { env });
    expect(verify.stdout).toContain("ok: 3 equal, 0 different");
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);

    // create_tables copied the declared types (integer stays integer, char(3) stays char(3)),
    // because the runtime lets the sink ask the source to describe its tables. An enum
    // becomes text: its type does not exist in the standby, and its values are its labels.
    const columnTypes = async (db: TestDatabase) =>
      (await db.sql<{ table_name: string; column_name: string; type: string }>(
        `SELECT table_name, column_name, format_type(atttypid, atttypmod) AS type
           FROM information_schema.columns c
           JOIN pg_attribute a ON a.attrelid = (quote_ident(c.table_schema) || '.' || quote_ident(c.table_name))::regclass AND a.attname = c.column_name
          WHERE table_schema = 'public' ORDER BY table_name, ordinal_position`,
      )).map((row) => `${row.table_name}.${row.column_name} ${row.type}`);
    expect(await columnTypes(standby)).toEqual((await columnTypes(primary)).map((column) => column.replace(/ mood$/, " text")));

    const status = await runDts(["status", pipeline.file], { env });
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/checkpoints in dts\.checkpoints of sink standby/);
    expect(status.stdout).toMatch(/lag\s+\d+(\.\d)? (B|kB|MB|GB), 0 s/);

    // The checkpoint lives in the standby, next to the data.
    const [checkpoint] = await standby.sql<{ source: string }>("SELECT source FROM dts.checkpoints");
    expect(checkpoint!.source).toBe("primary");
  });
});

describe("distributed access (pipelines/distributed-access.dts)", () => {
  const dbs: Record<string, TestDatabase> = {};
  let pipeline: Awaited<ReturnType<typeof copyPipeline>>;

  beforeAll(async () => {
    for (const name of ["central", "eu", "us", "ap"]) dbs[name] = await createDatabase(`fan_${name}`);
    await dbs.central!.sql(`
      CREATE TABLE products (id bigint PRIMARY KEY, name text NOT NULL, description text, tags text[], attrs jsonb, price numeric(10,2), updated_at timestamptz NOT NULL);
      CREATE TABLE prices (product_id bigint, region char(2), amount numeric(10,2) NOT NULL, valid_from date, PRIMARY KEY (product_id, region));
      CREATE TABLE orders (id int PRIMARY KEY, note text);
      INSERT INTO products SELECT i, 'product ' || i, repeat('desc ', i % 20), ARRAY['a' || i % 3, 'b'], jsonb_build_object('w', i % 100, 'c', 'red'), i * 1.25, now() FROM generate_series(1, 4000) i;
      INSERT INTO prices SELECT p, r, p * 0.5 + length(r), date '2024-01-01' + p % 300 FROM generate_series(1, 4000) p, unnest(ARRAY['eu', 'us', 'ap']) r;
      INSERT INTO orders SELECT i, 'not captured' FROM generate_series(1, 100) i;
    `);
    pipeline = await copyPipeline("distributed-access.dts", [["pipeline catalogue_fanout", `pipeline ${unique("catalogue_fanout")}`]]);
  });

  afterAll(async () => {
    for (const db of Object.values(dbs)) await db.drop();
    await pipeline?.remove();
  });

  it("copies the catalogue to three regional units, then streams changes to all three", async () => {
    const env = { CENTRAL_URL: dbs.central!.url, EU_URL: dbs.eu!.url, US_URL: dbs.us!.url, AP_URL: dbs.ap!.url };
    const first = await runDtsRun([pipeline.file, "--until-caught-up"], { env });
    expect(first.code, first.stderr.slice(-3000)).toBe(0);
    for (const unit of ["eu", "us", "ap"]) {
      expect(await count(dbs[unit]!, "public.products")).toBe(4000);
      expect(await count(dbs[unit]!, "public.orders")).toBe(-1); // not captured
    }

    const writer = await connectTo(dbs.central!.url);
    let changes = 0;
    for (let round = 1; changes < 10_000; round++) {
      await writer.query("BEGIN");
      changes += (await writer.query(`INSERT INTO products SELECT i, 'new ' || i, NULL, '{}', '{}', 9.99, now() FROM generate_series(${100_000 + round * 200}, ${100_000 + round * 200 + 199}) i`)).rowCount!;
      changes += (await writer.query(`INSERT INTO prices SELECT i, 'eu', 1.00, NULL FROM generate_series(${100_000 + round * 200}, ${100_000 + round * 200 + 99}) i`)).rowCount!;
      changes += (await writer.query(`UPDATE products SET price = price + 0.01, attrs = attrs || '{"r": ${round}}', updated_at = now() WHERE id % 20 = ${round % 20}`)).rowCount!;
      changes += (await writer.query(`DELETE FROM prices WHERE product_id % 40 = ${round % 40} AND region = 'ap'`)).rowCount!;
      changes += (await writer.query(`UPDATE prices SET region = 'as' WHERE product_id % 90 = ${round % 90} AND region = 'us'`)).rowCount!;
      await writer.query("COMMIT");
      changes += (await writer.query(`DELETE FROM products WHERE id % 150 = ${round % 150} AND id < 4000`)).rowCount!;
      await writer.query("UPDATE orders SET note = 'still not captured'");
    }
    await writer.end();
    expect(changes).toBeGreaterThanOrEqual(10_000);

    const second = await runDtsRun([pipeline.file, "--until-caught-up"], { env });
    expect(second.code, second.stderr.slice(-3000)).toBe(0);
    const verify = await runDts(["verify", pipeline.file], { env });
    expect(verify.stdout).toContain("ok: 6 equal, 0 different");
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  });
});

describe("kill -9 and resume", () => {
  let primary: TestDatabase;
  let standby: TestDatabase;
  let pipeline: Awaited<ReturnType<typeof copyPipeline>>;

  beforeAll(async () => {
    primary = await createDatabase("kill_primary");
    standby = await createDatabase("kill_standby");
    await primary.sql(DR_SCHEMA);
    await primary.sql(customersRows(1, 3000));
    await primary.sql(ordersRows(1, 60_000));
    await primary.sql(linesRows(1, 15_000));
    pipeline = await copyPipeline("disaster-recovery.dts", [
      ['slot: "dts_standby"', `slot: "${unique("dts_kill")}"`],
      // Small chunks, so that kills land while several are loaded at once and commit out of order.
      ['snapshot: "initial"', 'snapshot: "initial"\n  chunk_size: 2000'],
    ]);
  });

  afterAll(async () => {
    await primary?.drop();
    await standby?.drop();
    await pipeline?.remove();
  });

  it("ends with an equal copy after SIGKILLs during the snapshot and during streaming", async () => {
    const env = { PRIMARY_URL: primary.url, STANDBY_URL: standby.url };
    // Changes keep coming the whole time, in small transactions of every kind.
    const writer = await connectTo(primary.url);
    let writing = true;
    let rounds = 0;
    const writes = (async () => {
      while (writing) {
        rounds++;
        await changeRound(writer, rounds, 1_000_000, 0.05);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();

    const snapshotInProgress = async (): Promise<boolean | undefined> => {
      try {
        // Between two tables the stored state names no table, so count the tables done.
        const [row] = await standby.sql<{ copying: boolean }>(
          `SELECT coalesce(jsonb_array_length(checkpoint->'state'->'snapshot'->'tablesDone') < jsonb_array_length(checkpoint->'state'->'snapshot'->'tables'), false) AS copying FROM dts.checkpoints`,
        );
        return row === undefined ? undefined : row.copying;
      } catch {
        return undefined; // no checkpoint table yet
      }
    };
    const phases: string[] = [];
    try {
      for (let kill = 0; kill < 6; kill++) {
        const run = startDtsRun([pipeline.file], { env });
        if (kill === 0) {
          // Tables are copied in name order: customers, order_lines, orders.
          await waitFor("the copy of order_lines to start", async () => (await count(standby, "public.order_lines")) > 0, 30_000, 20);
        } else if (kill === 1) {
          await waitFor("the copy of orders to start", async () => (await count(standby, "public.orders")) > 0, 30_000, 20);
        } else {
          if (kill === 2) await waitFor("the snapshot to finish", async () => (await snapshotInProgress()) === false, 60_000, 50);
          await new Promise((resolve) => setTimeout(resolve, 200 + Math.random() * 1500));
        }
        // No checkpoint stored yet means the snapshot has not stored its first chunk's yet.
        const phase = (await snapshotInProgress()) !== false ? "snapshot" : "streaming";
        run.child.kill("SIGKILL");
        const ended = await run.done;
        expect(ended.signal, ended.stderr.slice(-2000)).toBe("SIGKILL");
        phases.push(phase);
      }
    } finally {
      writing = false;
      await writes;
      await writer.end();
    }
    expect(phases.slice(0, 2), phases.join(", ")).toEqual(["snapshot", "snapshot"]);
    expect(phases.slice(2), phases.join(", ")).toEqual(["streaming", "streaming", "streaming", "streaming"]);

    const final = await runDtsRun([pipeline.file, "--until-caught-up"], { env });
    expect(final.code, final.stderr.slice(-3000)).toBe(0);
    const verify = await runDts(["verify", pipeline.file], { env });
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(verify.stdout).toContain("ok: 3 equal, 0 different");
  });
});

describe("failures a user meets first", () => {
  let primary: TestDatabase;
  let standby: TestDatabase;
  let pipeline: Awaited<ReturnType<typeof copyPipeline>>;

  beforeAll(async () => {
    primary = await createDatabase("fail_primary");
    standby = await createDatabase("fail_standby");
    await primary.sql("CREATE TABLE orders (id int PRIMARY KEY, amount numeric)");
    pipeline = await copyPipeline("disaster-recovery.dts", [['slot: "dts_standby"', `slot: "${unique("dts_fail")}"`]]);
  });

  afterAll(async () => {
    await primary?.drop();
    await standby?.drop();
    await pipeline?.remove();
  });

  it("names the source server that does not answer, and exits non-zero", async () => {
    const result = await runDtsRun([pipeline.file, "--until-caught-up"], { env: { PRIMARY_URL: "postgres://postgres@127.0.0.1:1/shop", STANDBY_URL: standby.url }, timeoutMs: 30_000 });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/127\.0\.0\.1:1\b.*(refused|ECONNREFUSED)/);
  });

  it("names the sink server that does not answer, and exits non-zero", async () => {
    const result = await runDtsRun([pipeline.file, "--until-caught-up"], { env: { PRIMARY_URL: primary.url, STANDBY_URL: "postgres://postgres@127.0.0.1:1/standby" }, timeoutMs: 30_000 });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/127\.0\.0\.1:1\b.*(refused|ECONNREFUSED)/);
  });

  it("names a source table that does not exist", async () => {
    const missing = await copyPipeline("disaster-recovery.dts", [
      ['slot: "dts_standby"', `slot: "${unique("dts_fail")}"`],
      ['tables: ["public.*"]', 'tables: ["public.ordrs"]'],
    ]);
    try {
      const result = await runDtsRun([missing.file, "--until-caught-up"], { env: { PRIMARY_URL: primary.url, STANDBY_URL: standby.url }, timeoutMs: 30_000 });
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain("public.ordrs does not exist");
    } finally {
      await missing.remove();
    }
  });

  it("names a target table that does not exist when create_tables is off", async () => {
    const noCreate = await copyPipeline("disaster-recovery.dts", [
      ['slot: "dts_standby"', `slot: "${unique("dts_fail")}"`],
      ["create_tables: true", "create_tables: false"],
    ]);
    await primary.sql("INSERT INTO orders VALUES (1, 1.5)");
    try {
      const result = await runDtsRun([noCreate.file, "--until-caught-up"], { env: { PRIMARY_URL: primary.url, STANDBY_URL: standby.url }, timeoutMs: 30_000 });
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain(`table public.orders does not exist on postgres://postgres@127.0.0.1:5432/${standby.name}`);
    } finally {
      await noCreate.remove();
    }
  });
});
