/**
 * PostgreSQL to DuckDB end to end, through the built `dts-run`: a snapshot, then changes streamed
 * from the slot, and every table compared value by value with its source.
 *
 * The changes are the ones a DuckDB copy gets wrong when absent is taken for null: large values
 * stored out of line (TOASTed, `STORAGE EXTERNAL` so that PostgreSQL cannot compress them back
 * inline) that updates do not touch, key changes, an insert and an update of it in one
 * transaction, deletes — under both replica identities (DEFAULT, where PostgreSQL leaves the
 * unchanged large values out of the change, and FULL, where the old row carries them), and a
 * column dropped at the source, whose values the DuckDB table keeps. Then JSON values of every
 * kind, and two source tables the old naming gave one DuckDB table. Each scenario is one pipeline
 * run twice with `--until-caught-up`: once for the snapshot, once for the changes after it.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DuckDBInstance, type DuckDBValue } from "@duckdb/node-api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { canonicalJson, decodeJson } from "../../src/model/json.js";
import { createDatabase, requireLogicalReplication, type ThrowawayDatabase } from "./pg-helpers.js";
import { requireBuild, runDtsRun } from "../cli-process.js";
import { unique } from "./postgres-e2e-helpers.js";

let db: ThrowawayDatabase;
let folder: string;

beforeAll(async () => {
  requireBuild();
  await requireLogicalReplication();
  db = await createDatabase("duck_e2e");
  folder = await mkdtemp(join(tmpdir(), "dts-duck-e2e-"));
});

afterAll(async () => {
  await db?.drop();
  if (folder !== undefined) await rm(folder, { recursive: true, force: true });
});

/** A pipeline copying `tables` from the test database to `NAME.duckdb`, upsert mode; returns how to run it and read the file. */
async function pipeline(name: string, tables: readonly string[]) {
  const file = join(folder, `${name}.dts`);
  const duckdb = join(folder, `${name}.duckdb`);
  await writeFile(
    file,
    `pipeline ${unique(name)}

source pg = postgres {
  url: env("PG_URL")
  tables: [${tables.map((table) => JSON.stringify(table)).join(", ")}]
  snapshot: "initial"
  slot: "${unique(`dts_${name}`)}"
}

sink warehouse = duckdb { path: "${name}.duckdb" }

flow pg -> warehouse
`,
  );
  return {
    async run(): Promise<void> {
      const finished = await runDtsRun([file, "--until-caught-up"], { env: { PG_URL: db.url } });
      expect(finished.code, finished.stderr.slice(-3000)).toBe(0);
    },
    /** The rows of a query against the DuckDB file, opened once the run has closed it. */
    async query(sql: string): Promise<Record<string, DuckDBValue>[]> {
      const instance = await DuckDBInstance.create(duckdb);
      try {
        const connection = await instance.connect();
        try {
          return (await connection.runAndReadAll(sql)).getRowObjects();
        } finally {
          connection.closeSync();
        }
      } finally {
        instance.closeSync();
      }
    },
  };
}

/** A value as plain data for comparing a DuckDB row with a PostgreSQL one (integers as numbers). */
function plain(value: unknown): unknown {
  if (typeof value === "bigint") return Number(value);
  return value;
}

describe("PostgreSQL to DuckDB: large unchanged values, key changes and deletes", () => {
  const columns = "id, n, title, big";
  const tables = ["docs_default", "docs_full"] as const;

  /** Both tables' rows, PostgreSQL's and DuckDB's, in key order. */
  async function both(copy: Awaited<ReturnType<typeof pipeline>>, table: string, select = columns) {
    const source = (await db.sql(`SELECT ${select} FROM public.${table} ORDER BY id`)).map((row) => Object.values(row).map(plain));
    const target = (await copy.query(`SELECT ${select} FROM public.${table} ORDER BY id`)).map((row) => Object.values(row).map(plain));
    return { source, target };
  }

  it("keeps every value an update did not send, under both replica identities, and a column dropped at the source", async () => {
    for (const table of tables) {
      await db.sql(`
        CREATE TABLE ${table} (id int PRIMARY KEY, n int NOT NULL, title text, big text);
        ALTER TABLE ${table} ALTER COLUMN big SET STORAGE EXTERNAL;
        INSERT INTO ${table} SELECT i, 0, 'title ' || i, repeat(md5(i::text), 300) FROM generate_series(1, 200) i;
      `);
    }
    await db.sql(`
      ALTER TABLE docs_full REPLICA IDENTITY FULL;
      CREATE TABLE columns_default (id int PRIMARY KEY, n int NOT NULL, big text, gone text);
      ALTER TABLE columns_default ALTER COLUMN big SET STORAGE EXTERNAL;
      INSERT INTO columns_default SELECT i, 0, repeat(md5(i::text), 300), 'gone ' || i FROM generate_series(1, 20) i;
    `);
    // 9,600 characters stored out of line: what PostgreSQL leaves out of an update that does not touch it.
    const [stored] = await db.sql<{ length: number; external: boolean }>(
      `SELECT length(big) AS length, pg_column_size(big) >= length(big) AS external FROM docs_default WHERE id = 1`,
    );
    expect(stored).toEqual({ length: 9600, external: true });

    const copy = await pipeline("toast", [...tables, "columns_default"].map((table) => `public.${table}`));
    await copy.run();
    for (const table of tables) {
      const { source, target } = await both(copy, table);
      expect(target).toHaveLength(200);
      expect(target).toEqual(source);
    }

    for (const table of tables) {
      await db.sql(`
        UPDATE ${table} SET n = 1 WHERE id = 1;
        UPDATE ${table} SET id = 20 WHERE id = 2 AND NOT EXISTS (SELECT 1 FROM ${table} WHERE id = 20);
        UPDATE ${table} SET n = n + 1 WHERE id % 5 = 0;
        UPDATE ${table} SET title = 'retitled ' || id WHERE id % 7 = 0;
        UPDATE ${table} SET id = id + 1000 WHERE id % 25 = 3;
        UPDATE ${table} SET big = 'changed ' || id WHERE id % 40 = 4;
        UPDATE ${table} SET big = NULL WHERE id = 6;
        DELETE FROM ${table} WHERE id % 50 = 7;
      `);
      // An insert and an update of it, and a key change followed by an update of the moved row, each in one transaction.
      await db.sql(`BEGIN; INSERT INTO ${table} VALUES (500, 0, 'new', repeat(md5('500'), 300)); UPDATE ${table} SET n = 5 WHERE id = 500; COMMIT`);
      await db.sql(`BEGIN; UPDATE ${table} SET id = 2000 WHERE id = 8; UPDATE ${table} SET n = 8, title = 'moved' WHERE id = 2000; COMMIT`);
      await db.sql(`BEGIN; UPDATE ${table} SET n = 9 WHERE id = 9; UPDATE ${table} SET id = 3000 WHERE id = 9; DELETE FROM ${table} WHERE id = 10; COMMIT`);
    }
    // A column dropped and one added: the rows after them lack the one and have the other.
    await db.sql(`
      ALTER TABLE columns_default DROP COLUMN gone;
      ALTER TABLE columns_default ADD COLUMN note text;
      UPDATE columns_default SET n = 1, note = 'noted ' || id WHERE id % 2 = 0;
      INSERT INTO columns_default VALUES (21, 0, 'small', 'new row');
    `);
    await copy.run();
    for (const table of tables) {
      const { source, target } = await both(copy, table);
      expect(target.length).toBe(source.length);
      expect(target).toEqual(source);
      // The only NULL is the one the source has.
      expect((await copy.query(`SELECT id FROM public.${table} WHERE big IS NULL`)).map((row) => plain(row["id"]))).toEqual([6]);
    }
    const { source, target } = await both(copy, "columns_default", "id, n, big, note");
    expect(target).toEqual(source);
    // The DuckDB table keeps the dropped column's values; the row inserted after the drop has none.
    const kept = await copy.query(`SELECT id, gone FROM public.columns_default ORDER BY id`);
    expect(kept.map((row) => [plain(row["id"]), row["gone"]])).toEqual([...Array.from({ length: 20 }, (_, i) => [i + 1, `gone ${i + 1}`]), [21, null]]);
  });
});

describe("PostgreSQL to DuckDB: JSON values and table names", () => {
  it("copies JSON values of every kind into JSON columns, and gives a.b_c and a_b.c a DuckDB table each", async () => {
    const documents = [`'"just a string"'`, `'42'`, `'-1.50'`, `'12345678901234567890'`, `'true'`, `'false'`, `'null'`, `'[1, "a", null, {"b": []}]'`, `'{"a": {"b": 1.0}, "s": "x"}'`, `'""'`, `NULL`];
    await db.sql(`
      CREATE TABLE json_values (id int PRIMARY KEY, doc jsonb, body json, title text);
      INSERT INTO json_values VALUES ${documents.map((doc, i) => `(${i + 1}, ${doc}, ${doc}, 'just a string')`).join(", ")};
    `);
    await db.sql(`
      CREATE SCHEMA a; CREATE SCHEMA a_b;
      CREATE TABLE a.b_c (id int PRIMARY KEY, origin text);
      CREATE TABLE a_b.c (id int PRIMARY KEY, origin text);
      INSERT INTO a.b_c SELECT i, 'a.b_c ' || i FROM generate_series(1, 3) i;
      INSERT INTO a_b.c SELECT i, 'a_b.c ' || i FROM generate_series(1, 3) i;
    `);
    const copy = await pipeline("json", ["public.json_values", "a.b_c", "a_b.c"]);
    await copy.run();
    // And the same values streamed, in rows the snapshot did not see, and as updates.
    await db.sql(`
      INSERT INTO json_values SELECT id + 100, doc, body, title FROM json_values;
      UPDATE json_values SET doc = '"now a string"', body = '7' WHERE id = 9;
      UPDATE json_values SET doc = '{"now": "an object"}' WHERE id = 1;
      UPDATE a.b_c SET origin = 'a.b_c changed' WHERE id = 1;
      DELETE FROM a_b.c WHERE id = 2;
    `);
    await copy.run();
    const types = await copy.query(`SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = 'public' AND table_name = 'json_values' ORDER BY column_index`);
    expect(types.map((row) => `${String(row["column_name"])} ${String(row["data_type"])}`)).toEqual(["id BIGINT", "doc JSON", "body JSON", "title VARCHAR"]);
    const source = await db.sql<{ id: number; doc: string | null; body: string | null; title: string; is_json_null: boolean }>(
      `SELECT id, doc::text AS doc, body::text AS body, title, jsonb_typeof(doc) = 'null' AS is_json_null FROM json_values ORDER BY id`,
    );
    const target = await copy.query(`SELECT id, doc, body, title FROM public.json_values ORDER BY id`);
    expect(target).toHaveLength(source.length);
    const canonical = (text: unknown) => (text === null ? null : canonicalJson(decodeJson(text as string)));
    for (let i = 0; i < source.length; i++) {
      const want = source[i]!;
      const got = target[i]!;
      expect(plain(got["id"])).toBe(want.id);
      expect(got["title"]).toBe("just a string");
      if (want.is_json_null) {
        // A JSON null document stays JSON null, apart from SQL NULL (src/model/value.ts).
        expect([got["doc"], got["body"]]).toEqual(["null", "null"]);
      }
      expect([canonical(got["doc"]), canonical(got["body"])], `row ${want.id}`).toEqual([canonical(want.doc), canonical(want.body)]);
    }
    expect(target.find((row) => plain(row["id"]) === 1)!["doc"]).toBe('{"now":"an object"}');
    expect(target.find((row) => plain(row["id"]) === 101)!["doc"]).toBe('"just a string"');

    for (const [schema, table] of [["a", "b_c"], ["a_b", "c"]] as const) {
      const names = (rows: Record<string, unknown>[]) => rows.map((row) => [plain(row["id"]), row["origin"]]);
      expect(names(await copy.query(`SELECT id, origin FROM ${schema}.${table} ORDER BY id`))).toEqual(names(await db.sql(`SELECT id, origin FROM ${schema}.${table} ORDER BY id`)));
    }
    expect(await copy.query(`SELECT count(*) AS n FROM duckdb_tables() WHERE table_name = 'a_b_c'`)).toEqual([{ n: 0n }]);
  });
});
