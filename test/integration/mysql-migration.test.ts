/**
 * MariaDB → PostgreSQL end to end, through the built CLIs, with pipelines/zero-downtime-migration.dts:
 * a snapshot of several tables while changes keep coming, more than ten thousand changes of
 * every kind during and after it, then the cut-over steps — stop, catch up, verify — ending
 * with `dts verify` equal and an independent checksum computed in SQL on both servers.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireBuild, runDts, runDtsRun, startDtsRun, waitFor, type Running } from "../cli-process.js";
import { copyPipeline, unique } from "./postgres-e2e-helpers.js";
import { createDatabase, type TestDatabase } from "./postgres-sink-helpers.js";
import { createMysqlDatabase, type MysqlDatabase } from "./mysql-source-helpers.js";

beforeAll(() => requireBuild());

export const SHOP_SCHEMA = `
CREATE TABLE customers (
  id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(40) NOT NULL, email VARCHAR(100) NULL, balance DECIMAL(12,2) NOT NULL,
  created DATETIME(6) NOT NULL, active TINYINT(1) NOT NULL, big BIGINT UNSIGNED, doc JSON, kind ENUM('a','b','c'), photo BLOB,
  seen TIMESTAMP(6) NULL, ratio FLOAT, score DOUBLE, t TIME(3), y YEAR
) CHARSET utf8mb4;
CREATE TABLE orders (id BIGINT PRIMARY KEY, customer_id INT NOT NULL, amount DECIMAL(10,2) NOT NULL, placed TIMESTAMP(6) NOT NULL DEFAULT '2020-01-01 00:00:00', note TEXT, tags SET('x','y','z')) CHARSET utf8mb4;
CREATE TABLE order_lines (order_id BIGINT, line SMALLINT UNSIGNED, sku VARCHAR(20) CHARACTER SET latin1, qty INT, PRIMARY KEY (order_id, line));
`;

export const customers = (from: number, to: number): string => `
INSERT INTO customers (id, name, email, balance, created, active, big, doc, kind, photo, seen, ratio, score, t, y)
SELECT seq, CONCAT('name ', seq, ' 😀'), IF(seq % 5 = 0, NULL, CONCAT('c', seq, '@example.org')), seq * 1.25 - 100,
       '2024-01-01 00:00:00' + INTERVAL seq MINUTE + INTERVAL seq MICROSECOND, seq % 2, 18446744073709551615 - seq,
       JSON_OBJECT('n', seq, 'f', seq / 7, 'l', JSON_ARRAY(1, 'a', NULL)), ELT(1 + seq % 3, 'a', 'b', 'c'), UNHEX(MD5(seq)),
       '2030-01-01 00:00:00' + INTERVAL seq SECOND, seq / 3, seq / 7, SEC_TO_TIME(CAST(seq AS SIGNED) * 61 - 5000), 1901 + seq % 255
  FROM seq_${from}_to_${to}`;

export const orders = (from: number, to: number): string =>
  `INSERT INTO orders (id, customer_id, amount, placed, note, tags) SELECT seq, 1 + seq % 3000, ROUND(seq * 7.31, 2), '2023-06-01 12:00:00' + INTERVAL seq SECOND,
     IF(seq % 3 = 0, NULL, CONCAT('note\\t', seq, '\\n')), ELT(1 + seq % 4, '', 'x', 'x,y', 'x,y,z') FROM seq_${from}_to_${to}`;

export const lines = (from: number, to: number): string =>
  `INSERT INTO order_lines SELECT o.seq, l.seq, CONCAT('SKU-é', (o.seq * l.seq) % 997), 1 + (o.seq + l.seq) % 5 FROM seq_${from}_to_${to} o, seq_1_to_2 l`;

/** One round of changes of every kind in a few transactions; returns rows changed. */
export async function changeRound(db: MysqlDatabase, round: number, base: number): Promise<number> {
  let changed = 0;
  const run = async (sql: string): Promise<void> => {
    changed += await db.exec(sql);
  };
  await db.sql("START TRANSACTION");
  await run(orders(base + round * 100 + 1, base + round * 100 + 100));
  await run(`UPDATE orders SET amount = amount + 1, note = 'round ${round}' WHERE id <= 20000 AND id % 97 = ${round % 97}`);
  await run(`DELETE FROM order_lines WHERE order_id BETWEEN ${(round * 37) % 9000} AND ${((round * 37) % 9000) + 10}`);
  await db.sql("COMMIT");
  await db.sql("START TRANSACTION");
  await run(`UPDATE customers SET id = id + 1000000 * ${round} WHERE id < 1000000 AND id % 300 = ${round % 300}`);
  await run(`UPDATE customers SET doc = JSON_SET(doc, '$.round', ${round}), balance = balance + 0.01, active = 1 - active, seen = NULL WHERE id % 40 = ${round % 40}`);
  await run(`DELETE FROM orders WHERE id BETWEEN ${((round * 53) % 19000) + 1} AND ${((round * 53) % 19000) + 5}`);
  await run(`UPDATE order_lines SET qty = qty + 1 WHERE (order_id + line) % 61 = ${round % 61}`);
  await db.sql("COMMIT");
  return changed;
}

/** Per table: row count and a sum of row hashes, computed by each server from its own text of the values. */
export async function mysqlChecksums(db: MysqlDatabase): Promise<Record<string, string>> {
  const sums: Record<string, string> = {};
  const tables: Record<string, string> = {
    customers: `id, name, IFNULL(email, '~'), balance, DATE_FORMAT(created, '%Y-%m-%d %H:%i:%s.%f'), active, big, kind, HEX(photo), IFNULL(DATE_FORMAT(seen, '%Y-%m-%d %H:%i:%s.%f'), '~'), y`,
    orders: `id, customer_id, amount, DATE_FORMAT(placed, '%Y-%m-%d %H:%i:%s.%f'), IFNULL(note, '~'), tags`,
    order_lines: `order_id, line, CONVERT(sku USING utf8mb4), qty`,
  };
  for (const [table, columns] of Object.entries(tables)) {
    const [row] = await db.sql<{ n: string; s: string }>(
      `SELECT COUNT(*) AS n, COALESCE(SUM(CAST(CONV(SUBSTR(MD5(CONVERT(CONCAT_WS('|', ${columns}) USING utf8mb4)), 1, 12), 16, 10) AS UNSIGNED)), 0) AS s FROM ${table}`,
    );
    sums[table] = `${row!.n}:${row!.s}`;
  }
  return sums;
}

export async function postgresChecksums(db: TestDatabase, schema: string): Promise<Record<string, string>> {
  const sums: Record<string, string> = {};
  const tables: Record<string, string> = {
    customers: `id, name, coalesce(email, '~'), balance, to_char(created, 'YYYY-MM-DD HH24:MI:SS.US'), active, big, kind, upper(encode(photo, 'hex')), coalesce(to_char(seen AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), '~'), y`,
    orders: `id, customer_id, amount, to_char(placed AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), coalesce(note, '~'), tags`,
    order_lines: `order_id, line, sku, qty`,
  };
  for (const [table, columns] of Object.entries(tables)) {
    const [row] = await db.sql<{ n: string; s: string }>(
      `SELECT count(*)::text AS n, coalesce(sum(('x' || lpad(substr(md5(concat_ws('|', ${columns})), 1, 12), 16, '0'))::bit(64)::bigint), 0)::text AS s FROM "${schema}".${table}`,
    );
    sums[table] = `${row!.n}:${row!.s}`;
  }
  return sums;
}

async function count(db: TestDatabase, table: string): Promise<number> {
  try {
    const [row] = await db.sql<{ n: string }>(`SELECT count(*) AS n FROM ${table}`);
    return Number(row!.n);
  } catch {
    return -1;
  }
}

describe("zero-downtime migration MariaDB → PostgreSQL (pipelines/zero-downtime-migration.dts)", () => {
  let legacy: MysqlDatabase;
  let target: TestDatabase;
  let pipeline: Awaited<ReturnType<typeof copyPipeline>>;
  let running: Running | undefined;

  beforeAll(async () => {
    legacy = await createMysqlDatabase("dts_mig");
    target = await createDatabase("mig_target");
    for (const statement of SHOP_SCHEMA.split(";").filter((s) => s.trim() !== "")) await legacy.sql(statement);
    await legacy.sql(customers(1, 3000));
    await legacy.sql(orders(1, 20000));
    await legacy.sql(lines(1, 10000));
    pipeline = await copyPipeline("zero-downtime-migration.dts", [
      ["pipeline shop_migration", `pipeline ${unique("shop_migration")}`],
      ['tables: ["shop.*"]', `tables: ["${legacy.name}.*"]\n  chunk_size: 2000`],
    ]);
  });

  afterAll(async () => {
    running?.child.kill("SIGKILL");
    await running?.done;
    await legacy?.drop();
    await target?.drop();
    await pipeline?.remove();
  });

  it("copies the tables while they change, streams 10k changes, and the copy verifies equal", async () => {
    const env = { LEGACY_URL: legacy.url, TARGET_URL: target.url };
    running = startDtsRun([pipeline.file], { env });
    let changes = 0;
    let round = 0;
    // Changes during the snapshot.
    while (!running.stderr().includes("snapshot done")) {
      changes += await changeRound(legacy, ++round, 100_000);
      if (running.child.exitCode !== null) break;
      if (round > 400) throw new Error(`the snapshot did not finish: ${running.stderr().slice(-3000)}`);
    }
    // And after it.
    while (changes < 10_000) {
      changes += await changeRound(legacy, ++round, 100_000);
      if (round > 2000) throw new Error(`only ${changes} changes after ${round} rounds`);
    }
    expect(changes).toBeGreaterThanOrEqual(10_000);

    // Cut-over: stop writes (done), stop the runner, catch up, verify.
    running.child.kill("SIGTERM");
    const stopped = await running.done;
    running = undefined;
    expect(stopped.code, stopped.stderr.slice(-3000)).toBe(0);
    const caughtUp = await runDtsRun([pipeline.file, "--until-caught-up"], { env });
    expect(caughtUp.code, caughtUp.stderr.slice(-3000)).toBe(0);

    expect(await postgresChecksums(target, legacy.name)).toEqual(await mysqlChecksums(legacy));
    const verify = await runDts(["verify", pipeline.file], { env });
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(verify.stdout).toContain("ok: 3 equal, 0 different");

    const status = await runDts(["status", pipeline.file], { env });
    expect(status.code, status.stdout + status.stderr).toBe(0);
    expect(status.stdout).toMatch(/lag\s+\d+(\.\d)? (B|kB|MB), [\d.]+ s/);
    expect(status.stdout).toMatch(/binlogs\s+\d+ files/);

    const check = await runDts(["check", "--live", pipeline.file], { env });
    expect(check.code, check.stdout + check.stderr).toBe(0);

    // A difference is found, by key.
    await legacy.sql("UPDATE orders SET note = 'drifted' WHERE id = 7");
    const drifted = await runDts(["verify", pipeline.file], { env });
    expect(drifted.code).not.toBe(0);
    expect(drifted.stdout).toMatch(/orders[\s\S]*7/);
  }, 240_000);
});

describe("kill -9 during the snapshot and during streaming (MariaDB → PostgreSQL)", () => {
  let legacy: MysqlDatabase;
  let target: TestDatabase;
  let pipeline: Awaited<ReturnType<typeof copyPipeline>>;

  beforeAll(async () => {
    legacy = await createMysqlDatabase("dts_kill");
    target = await createDatabase("kill_target");
    for (const statement of SHOP_SCHEMA.split(";").filter((s) => s.trim() !== "")) await legacy.sql(statement);
    await legacy.sql(customers(1, 3000));
    await legacy.sql(orders(1, 20000));
    await legacy.sql(lines(1, 10000));
    pipeline = await copyPipeline("zero-downtime-migration.dts", [
      ["pipeline shop_migration", `pipeline ${unique("kill_migration")}`],
      ['tables: ["shop.*"]', `tables: ["${legacy.name}.*"]\n  chunk_size: 500`],
    ]);
  });

  afterAll(async () => {
    await legacy?.drop();
    await target?.drop();
    await pipeline?.remove();
  });

  it("ends with an equal copy after six SIGKILLs", async () => {
    const env = { LEGACY_URL: legacy.url, TARGET_URL: target.url };
    let writing = true;
    let round = 0;
    const writes = (async () => {
      while (writing) {
        await changeRound(legacy, ++round, 500_000);
        await new Promise((resolve) => setTimeout(resolve, 30));
      }
    })();
    const killedAt: string[] = [];
    try {
      for (let kill = 0; kill < 6; kill++) {
        const running = startDtsRun([pipeline.file], { env });
        // Three kills at times that land in the copy, three once the run streams.
        if (kill >= 3) await running.stderrContains("streaming the binlog");
        await new Promise((resolve) => setTimeout(resolve, kill >= 3 ? 1000 : 1500 + kill * 500));
        killedAt.push(running.stderr().includes("streaming the binlog") ? "streaming" : "snapshot");
        running.child.kill("SIGKILL");
        const result = await running.done;
        expect(result.signal, result.stderr.slice(-2000)).toBe("SIGKILL");
      }
    } finally {
      writing = false;
      await writes;
    }
    expect(killedAt).toContain("snapshot");
    expect(killedAt).toContain("streaming");
    const last = await runDtsRun([pipeline.file, "--until-caught-up"], { env, timeoutMs: 120_000 });
    expect(last.code, last.stderr.slice(-3000)).toBe(0);
    expect(await postgresChecksums(target, legacy.name)).toEqual(await mysqlChecksums(legacy));
    const verify = await runDts(["verify", pipeline.file], { env });
    expect(verify.stdout).toContain("ok: 3 equal, 0 different");
  }, 300_000);
});
