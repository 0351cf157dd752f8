/**
 * A JSON null is a value, SQL NULL its absence (issue 8, "nothing lost, ever"): a json/jsonb
 * column holding `'null'` must arrive as `'null'`, and one holding NULL as NULL, in PostgreSQL
 * and in DuckDB, whether the row was copied by the snapshot or streamed from the slot, and
 * `dts verify` must see a SQL NULL where a JSON null was as a difference.
 *
 * Every row is compared value by value with its source: PostgreSQL's `IS NULL` and
 * `= 'null'::jsonb` on both sides, and the document itself. The PostgreSQL target is written
 * twice: by a flow without steps (the snapshot goes as COPY rows, the bulk path) and by one with
 * a filter (every row made into an event and encoded again), since the two paths encode apart.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DuckDBInstance, type DuckDBValue } from "@duckdb/node-api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { canonicalJson, decodeJson } from "../../src/model/json.js";
import { requireBuild, runDts, runDtsRun } from "../cli-process.js";
import { createDatabase, requireLogicalReplication, type ThrowawayDatabase } from "./pg-helpers.js";
import { pgToPg, type PgToPg } from "./pg-to-pg-helpers.js";
import { unique } from "./postgres-e2e-helpers.js";

/** The documents of rows 1..n: SQL NULL first, JSON null second, then every other kind. */
const DOCUMENTS = [
  "NULL",
  "'null'",
  `'"str"'`,
  `'"null"'`,
  "'42'",
  "'-1.50'",
  "'true'",
  "'false'",
  "'[]'",
  "'{}'",
  "'[null, 1, \"a\"]'",
  `'{"a": null, "b": {"c": [null, {"d": null}]}, "e": "x"}'`,
] as const;
const SQL_NULL_ID = 1;
const JSON_NULL_ID = 2;

/** The table and its rows; `arrays`: with a jsonb[] column (PostgreSQL targets), else a text one. */
function tableSql(arrays: boolean): string {
  // A JSON array inside a jsonb[] reads as a nested list, which the sink takes for a dimension
  // of the PostgreSQL array (a limit of the model, not of JSON null): the elements here are not arrays.
  const last = (i: number): string => (!arrays || i === 0 ? "NULL" : `ARRAY['null', NULL, '"str"', '{"a": null}', '${i}']::jsonb[]`);
  return `
    CREATE TABLE docs (id int PRIMARY KEY, doc jsonb, body json, docs ${arrays ? "jsonb[]" : "text"});
    INSERT INTO docs VALUES ${DOCUMENTS.map((d, i) => `(${i + 1}, ${d}, ${d}, ${last(i)})`).join(", ")};`;
}

/** After the snapshot: the same documents in new rows, and updates that turn NULL into JSON null and back. */
function changesSql(arrays: boolean): string {
  return `
    INSERT INTO docs SELECT id + 100, doc, body, docs FROM docs;
    UPDATE docs SET doc = 'null', body = 'null' WHERE id = ${SQL_NULL_ID + 100};
    UPDATE docs SET doc = NULL, body = NULL WHERE id = ${JSON_NULL_ID + 100};
    UPDATE docs SET doc = 'null' WHERE id = 103;
    INSERT INTO docs VALUES (200, 'null', 'null', ${arrays ? "ARRAY['null'::jsonb]" : "NULL"}), (201, NULL, NULL, ${arrays ? "ARRAY[NULL::jsonb]" : "NULL"});`;
}

/** What PostgreSQL says of each row: which document is SQL NULL, which JSON null, and the rest. */
const FACTS = `
  SELECT id, doc IS NULL AS doc_sql_null, doc = 'null'::jsonb AS doc_json_null, doc::text AS doc,
         body IS NULL AS body_sql_null, json_typeof(body) AS body_type, body::jsonb::text AS body,
         docs::text AS docs
  FROM docs ORDER BY id`;

interface Facts {
  id: number;
  doc_sql_null: boolean;
  doc_json_null: boolean | null;
  doc: string | null;
  body_sql_null: boolean;
  body_type: string | null;
  body: string | null;
  docs: string | null;
}

let source: ThrowawayDatabase;
let folder: string;

beforeAll(async () => {
  requireBuild();
  await requireLogicalReplication();
  source = await createDatabase("json_null_src");
  folder = await mkdtemp(join(tmpdir(), "dts-json-null-"));
  await source.sql(tableSql(true));
});

afterAll(async () => {
  await source?.drop();
  if (folder !== undefined) await rm(folder, { recursive: true, force: true });
});

/** The source's facts, checked to hold what the test is about (so that no comparison is vacuous). */
async function sourceFacts(): Promise<Facts[]> {
  const facts = await source.sql<Facts>(FACTS);
  expect(facts.find((row) => row.id === SQL_NULL_ID)).toMatchObject({ doc_sql_null: true, body_sql_null: true });
  expect(facts.find((row) => row.id === JSON_NULL_ID)).toMatchObject({ doc_sql_null: false, doc_json_null: true, body_type: "null" });
  return facts;
}

describe("PostgreSQL to PostgreSQL: JSON null stays JSON null, SQL NULL stays NULL", () => {
  const targets: ThrowawayDatabase[] = [];
  const pipelines: PgToPg[] = [];

  afterAll(async () => {
    for (const pipeline of pipelines) await pipeline.remove();
    for (const target of targets) await target.drop();
  });

  it("in the snapshot (COPY rows and events) and in the stream, value by value", async () => {
    const bulk = await createDatabase("json_null_bulk");
    const events = await createDatabase("json_null_events");
    targets.push(bulk, events);
    const copies = [
      { target: bulk, pipeline: await pgToPg("json_null_bulk", source, bulk, ["public.docs"]), flow: "" },
      { target: events, pipeline: await pgToPg("json_null_events", source, events, ["public.docs"]), flow: "| filter row.id > 0" },
    ];
    pipelines.push(...copies.map((copy) => copy.pipeline));

    for (const { pipeline, flow } of copies) {
      const { error } = await pipeline.runOnce({ flow });
      expect(error).toBeUndefined();
    }
    const snapshot = await sourceFacts();
    for (const { target } of copies) {
      expect(await target.sql(`SELECT format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = 'docs'::regclass AND attname IN ('doc', 'body', 'docs') ORDER BY attnum`)).toEqual([
        { t: "jsonb" },
        { t: "json" },
        { t: "jsonb[]" },
      ]);
      expect(await target.sql<Facts>(FACTS)).toEqual(snapshot);
    }

    await source.sql(changesSql(true));
    for (const { pipeline, flow } of copies) {
      const { error } = await pipeline.runOnce({ flow });
      expect(error).toBeUndefined();
    }
    const streamed = await sourceFacts();
    expect(streamed.find((row) => row.id === SQL_NULL_ID + 100)).toMatchObject({ doc_json_null: true, body_type: "null" });
    expect(streamed.find((row) => row.id === JSON_NULL_ID + 100)).toMatchObject({ doc_sql_null: true, body_sql_null: true });
    for (const { target } of copies) {
      expect(await target.sql<Facts>(FACTS)).toEqual(streamed);
      // Spelled out: the target's NULLs are exactly the source's NULLs.
      expect(await target.sql(`SELECT id FROM docs WHERE doc IS NULL ORDER BY id`)).toEqual(await source.sql(`SELECT id FROM docs WHERE doc IS NULL ORDER BY id`));
      expect(await target.sql(`SELECT id FROM docs WHERE doc = 'null'::jsonb ORDER BY id`)).toEqual([{ id: 2 }, { id: 101 }, { id: 103 }, { id: 200 }]);
    }
  });

  it("dts verify reports a SQL NULL where a JSON null was as a difference, and the reverse", async () => {
    const copy = copiesFile(pipelines[0]!);
    const equal = await runDts(["verify", await copy]);
    expect(equal.code, equal.stdout + equal.stderr).toBe(0);
    const target = targets[0]!;
    await target.sql(`UPDATE docs SET doc = NULL WHERE id = ${JSON_NULL_ID}; UPDATE docs SET body = 'null' WHERE id = ${SQL_NULL_ID}`);
    const different = await runDts(["verify", await copy]);
    expect(different.code, different.stdout + different.stderr).toBe(1);
    expect(different.stdout).toMatch(new RegExp(`DIFFERENT: 2 differing keys\\n\\s+id=${SQL_NULL_ID}\\s+differs\\n\\s+id=${JSON_NULL_ID}\\s+differs`));
  });
});

/** A pipeline's text as a file for `dts verify`. */
async function copiesFile(pipeline: PgToPg): Promise<string> {
  const file = join(pipeline.dir, "verify.dts");
  await writeFile(file, pipeline.text());
  return file;
}

describe("PostgreSQL to DuckDB: JSON null stays JSON null, SQL NULL stays NULL", () => {
  it("in the snapshot and in the stream, value by value; dts verify tells them apart", async () => {
    const db = await createDatabase("json_null_duck");
    try {
      await db.sql(tableSql(false));
      const file = join(folder, "duck.dts");
      const duckdb = join(folder, "duck.duckdb");
      await writeFile(
        file,
        `pipeline ${unique("json_null_duck")}
source pg = postgres {
  url: env("PG_URL")
  tables: ["public.docs"]
  slot: "${unique("dts_json_null_duck")}"
}
sink warehouse = duckdb { path: "duck.duckdb" }
flow pg -> warehouse
`,
      );
      const run = async (): Promise<void> => {
        const finished = await runDtsRun([file, "--until-caught-up"], { env: { PG_URL: db.url } });
        expect(finished.code, finished.stderr.slice(-3000)).toBe(0);
      };
      const compare = async (): Promise<Record<string, DuckDBValue>[]> => {
        const want = await db.sql<Facts>(FACTS.replace("docs::text AS docs", "NULL AS docs"));
        const got = await queryDuckDB(duckdb, `SELECT id, doc, body, doc IS NULL AS doc_sql_null, json_type(doc) AS doc_type FROM public.docs ORDER BY id`);
        expect(got.map((row) => Number(row["id"]))).toEqual(want.map((row) => row.id));
        const canonical = (text: unknown) => (text === null ? null : canonicalJson(decodeJson(String(text))));
        for (let i = 0; i < want.length; i++) {
          const w = want[i]!;
          const g = got[i]!;
          expect({ id: w.id, docNull: g["doc_sql_null"], doc: canonical(g["doc"]), body: canonical(g["body"]) }).toEqual({
            id: w.id,
            docNull: w.doc_sql_null,
            doc: canonical(w.doc),
            body: canonical(w.body),
          });
          if (w.doc_json_null === true) expect([g["doc"], g["doc_type"]]).toEqual(["null", "NULL"]);
        }
        return got;
      };
      await run();
      await sourceFactsOf(db);
      await compare();
      await db.sql(changesSql(false));
      await run();
      const got = await compare();
      expect(got.filter((row) => row["doc"] === "null").map((row) => Number(row["id"]))).toEqual([2, 101, 103, 200]);

      const equal = await runDts(["verify", file], { env: { PG_URL: db.url } });
      expect(equal.code, equal.stdout + equal.stderr).toBe(0);
      await runDuckDB(duckdb, `UPDATE public.docs SET doc = NULL WHERE id = ${JSON_NULL_ID}`);
      const different = await runDts(["verify", file], { env: { PG_URL: db.url } });
      expect(different.code, different.stdout + different.stderr).toBe(1);
      expect(different.stdout).toMatch(new RegExp(`DIFFERENT: 1 differing key\\n\\s+id=${JSON_NULL_ID}\\s+differs`));
    } finally {
      await db.drop();
    }
  });
});

async function sourceFactsOf(db: ThrowawayDatabase): Promise<void> {
  const facts = await db.sql<Facts>(FACTS.replace("docs::text AS docs", "NULL AS docs"));
  expect(facts.find((row) => row.id === JSON_NULL_ID)).toMatchObject({ doc_json_null: true, body_type: "null" });
  expect(facts.find((row) => row.id === SQL_NULL_ID)).toMatchObject({ doc_sql_null: true });
}

async function queryDuckDB(path: string, sql: string): Promise<Record<string, DuckDBValue>[]> {
  const instance = await DuckDBInstance.create(path);
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
}

async function runDuckDB(path: string, sql: string): Promise<void> {
  await queryDuckDB(path, sql);
}
