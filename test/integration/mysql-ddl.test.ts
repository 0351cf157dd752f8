/**
 * DDL in the binlog while the migration pipeline streams into PostgreSQL: every ALTER reaches
 * the postgres sink as a schema change before the rows that need it, and the run never stops —
 * ADD COLUMN with a DEFAULT (existing rows get it without a row event), MODIFY widening a
 * VARCHAR and an INT, DROP COLUMN, CREATE TABLE of a captured name, RENAME TABLE.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireBuild, runDtsRun, startDtsRun, waitFor, type Running } from "../cli-process.js";
import { copyPipeline, unique } from "./postgres-e2e-helpers.js";
import { createDatabase, type TestDatabase } from "./postgres-sink-helpers.js";
import { createMysqlDatabase, type MysqlDatabase } from "./mysql-source-helpers.js";

beforeAll(() => requireBuild());

describe("DDL mid-stream, MariaDB → PostgreSQL", () => {
  let legacy: MysqlDatabase;
  let target: TestDatabase;
  let pipeline: Awaited<ReturnType<typeof copyPipeline>>;
  let running: Running | undefined;

  beforeAll(async () => {
    legacy = await createMysqlDatabase("dts_ddl");
    target = await createDatabase("ddl_target");
    await legacy.sql("CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(20), qty INT, note VARCHAR(10))");
    await legacy.sql("INSERT INTO items SELECT seq, CONCAT('item ', seq), seq, 'n' FROM seq_1_to_100");
    pipeline = await copyPipeline("zero-downtime-migration.dts", [
      ["pipeline shop_migration", `pipeline ${unique("ddl_migration")}`],
      ['tables: ["shop.*"]', `tables: ["${legacy.name}.*"]`],
    ]);
  });

  afterAll(async () => {
    running?.child.kill("SIGKILL");
    await running?.done;
    await legacy?.drop();
    await target?.drop();
    await pipeline?.remove();
  });

  const rows = async (sql: string): Promise<Record<string, unknown>[]> => {
    try {
      return await target.sql(sql);
    } catch {
      return [];
    }
  };

  it("follows ADD, MODIFY, DROP COLUMN, CREATE TABLE and RENAME TABLE without stopping", async () => {
    const env = { LEGACY_URL: legacy.url, TARGET_URL: target.url };
    const schema = `"${legacy.name}"`;
    running = startDtsRun([pipeline.file], { env });
    await waitFor("the snapshot", async () => (await rows(`SELECT count(*)::int AS n FROM ${schema}.items`))[0]?.n === 100, 60_000);

    await legacy.sql("ALTER TABLE items ADD COLUMN price DECIMAL(10,2) NOT NULL DEFAULT 1.50");
    await legacy.sql("INSERT INTO items (id, name, qty, note, price) VALUES (101, 'priced', 1, 'p', 2.25)");
    await legacy.sql("UPDATE items SET price = 3.00 WHERE id = 5");
    await waitFor("the added column", async () => (await rows(`SELECT price::text AS p FROM ${schema}.items WHERE id = 101`))[0]?.p === "2.25", 30_000);

    await legacy.sql("ALTER TABLE items MODIFY name VARCHAR(50)");
    await legacy.sql("ALTER TABLE items MODIFY qty BIGINT");
    await legacy.sql("INSERT INTO items (id, name, qty, note) VALUES (102, 'a name longer than twenty characters', 9000000000, 'x')");
    await legacy.sql("ALTER TABLE items DROP COLUMN note");
    await legacy.sql("INSERT INTO items (id, name, qty) VALUES (103, 'no note', 3)");
    await legacy.sql("CREATE TABLE extra (id INT PRIMARY KEY, v TEXT)");
    await legacy.sql("INSERT INTO extra VALUES (1, 'created mid-stream')");
    await legacy.sql("RENAME TABLE items TO goods");
    await legacy.sql("INSERT INTO goods (id, name, qty) VALUES (104, 'renamed', 4)");
    await waitFor("the renamed table's row", async () => (await rows(`SELECT name FROM ${schema}.goods WHERE id = 104`))[0]?.name === "renamed", 30_000);
    expect(running.child.exitCode).toBe(null);

    running.child.kill("SIGTERM");
    const stopped = await running.done;
    running = undefined;
    expect(stopped.code, stopped.stderr.slice(-3000)).toBe(0);
    const again = await runDtsRun([pipeline.file, "--until-caught-up"], { env });
    expect(again.code, again.stderr.slice(-3000)).toBe(0);

    const columns = await target.sql<{ table_name: string; column_name: string; type: string }>(
      `SELECT table_name, column_name, format_type(atttypid, atttypmod) AS type FROM information_schema.columns c
         JOIN pg_attribute a ON a.attrelid = (quote_ident(c.table_schema) || '.' || quote_ident(c.table_name))::regclass AND a.attname = c.column_name
        WHERE table_schema = $1 ORDER BY table_name, ordinal_position`,
      [legacy.name],
    );
    const typeOf = (table: string, column: string): string | undefined => columns.find((c) => c.table_name === table && c.column_name === column)?.type;
    expect(typeOf("items", "price")).toBe("numeric(10,2)");
    expect(typeOf("items", "name")).toBe("character varying(50)");
    expect(typeOf("items", "qty")).toBe("bigint");
    // A dropped column stays in the target with its values (rows written since hold NULL there).
    expect(typeOf("items", "note")).toBe("character varying(10)");
    expect(await target.sql(`SELECT id, price::text AS price, qty::text AS qty, note FROM ${schema}.items WHERE id IN (1, 5, 101, 102, 103) ORDER BY id`)).toEqual([
      { id: 1, price: "1.50", qty: "1", note: "n" },
      { id: 5, price: "3.00", qty: "5", note: "n" },
      { id: 101, price: "2.25", qty: "1", note: "p" },
      { id: 102, price: "1.50", qty: "9000000000", note: "x" },
      { id: 103, price: "1.50", qty: "3", note: null },
    ]);
    expect(await target.sql(`SELECT id, v FROM ${schema}.extra`)).toEqual([{ id: 1, v: "created mid-stream" }]);
    expect(await target.sql(`SELECT id, name, qty::text AS qty, price::text AS price FROM ${schema}.goods`)).toEqual([{ id: 104, name: "renamed", qty: "4", price: "1.50" }]);
  }, 180_000);
});
