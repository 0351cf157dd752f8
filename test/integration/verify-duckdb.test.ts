/**
 * `dts verify` across engines: a PostgreSQL source copied by a real `dts-run` into a DuckDB
 * file (and a PostgreSQL database beside it), then compared value by value in the canonical
 * texts of src/model/canonical.ts — equal after the run, and every kind of difference found
 * once the DuckDB copy is changed behind the pipeline's back: a NULL where a value was, a
 * changed value, a missing row, an extra row. A file held by a running pipeline is said to be
 * in use, not reported as different.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireBuild, runDts, runDtsRun, startDtsRun, waitFor } from "../cli-process.js";
import { unique } from "./postgres-e2e-helpers.js";
import { createDatabase, type TestDatabase } from "./postgres-sink-helpers.js";

let source: TestDatabase;
let target: TestDatabase;
let dir: string;
let file: string;
let duckFile: string;

/** A row of every kind of value the canonical texts define, and NULLs of each. */
const SCHEMA = `
  CREATE TABLE items (
    id int PRIMARY KEY, name text, price numeric(10,2), amount numeric, qty bigint, ratio float8, small real,
    flag boolean, at timestamptz, day date, local timestamp, doc jsonb, tags text[], nums int[], amounts numeric[],
    data bytea, uid uuid, code char(4), nothing text);
  CREATE TABLE pairs (a int, b text, v float8, PRIMARY KEY (a, b));`;

const ROWS = `
  INSERT INTO items SELECT i, 'item ' || i || ' é "q"', i * 1.10, CASE WHEN i % 7 = 0 THEN 1500 ELSE i / 8.0 END, i::bigint * 1000000007, i / 3.0 + 0.5, (i / 7.0)::real,
         i % 2 = 0, timestamptz '2024-01-01 00:00:00+00' + i * interval '1.000001 s', date '2024-01-01' + i, timestamp '2020-02-29 23:59:59.999999' + i * interval '1 minute',
         jsonb_build_object('k', i, 'b', i % 3 = 0, 'list', jsonb_build_array(1.10, 'x', NULL), 'nested', jsonb_build_object('z', 'é')),
         ARRAY['a', NULL, 'b,"c"'], ARRAY[i, -i], ARRAY[1.10, 1500, NULL]::numeric[],
         decode(lpad(to_hex(i), 8, '0'), 'hex'), md5(i::text)::uuid, 'c' || i % 10, NULL
    FROM generate_series(1, 300) i;
  INSERT INTO items (id) VALUES (1000);
  INSERT INTO pairs SELECT i, 'x', i / 3.0 FROM generate_series(1, 50) i;`;

beforeAll(async () => {
  requireBuild();
  source = await createDatabase("verify_duck_src");
  target = await createDatabase("verify_duck_dst");
  dir = await mkdtemp(join(tmpdir(), "dts-verify-duckdb-"));
  duckFile = join(dir, "copy.duckdb");
  await source.sql(SCHEMA);
  await source.sql(ROWS);
  file = join(dir, "copy.dts");
  await writeFile(
    file,
    `pipeline ${unique("verify_duck")}
source src = postgres { url: "${source.url}", tables: ["public.items", "public.pairs"] }
sink pg = postgres { url: "${target.url}", create_tables: true }
sink duck = duckdb { path: "copy.duckdb" }
flow src -> pg, duck
`,
  );
  const run = await runDtsRun([file, "--until-caught-up"]);
  expect(run.code, run.stderr.slice(-3000)).toBe(0);
});

afterAll(async () => {
  await source?.drop();
  await target?.drop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** Runs SQL on the DuckDB file (closed again before dts verify opens it). */
async function duck(sql: string): Promise<void> {
  const instance = await DuckDBInstance.create(duckFile);
  const connection = await instance.connect();
  try {
    await connection.run(sql);
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

describe("dts verify, PostgreSQL to DuckDB", () => {
  it("finds both copies equal: every table of every sink, with the normalisations named", async () => {
    const result = await runDts(["verify", file]);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain("src public.items -> pg public.items");
    expect(result.stdout).toContain('src public.items -> duck "public"."items"');
    expect(result.stdout).toContain('src public.pairs -> duck "public"."pairs"');
    // Cross-engine normalisations are said, per column; exact ones are not.
    expect(result.stdout).toMatch(/normalised: amount: numeric -> DECIMAL\(38,\d+\): by value: trailing zeros of the fraction are not compared/);
    expect(result.stdout).toMatch(/normalised: small: real -> DOUBLE: at single precision/);
    expect(result.stdout).not.toMatch(/normalised: (id|name|ratio|at|doc|tags|data|uid|code):/);
    expect(result.stdout).toMatch(/source\s+301\s+\d+\n\s+target\s+301\s+\d+\n\s+equal/);
    expect(result.stdout).toContain("ok: 4 equal, 0 different");
  });

  it("lists a NULL where a value was, a changed value, a missing row and an extra row", async () => {
    await duck(`
      UPDATE public.items SET amount = NULL WHERE id BETWEEN 10 AND 12;
      UPDATE public.items SET price = 12.31 WHERE id = 20;
      UPDATE public.items SET doc = '{"k":21}' WHERE id = 21;
      UPDATE public.items SET "at" = "at" + INTERVAL 1 MICROSECOND WHERE id = 22;
      DELETE FROM public.items WHERE id = 30;
      INSERT INTO public.items (id, name) VALUES (5000, 'extra');
      UPDATE public.pairs SET v = v + 1e-15 WHERE a = 3;`);
    const result = await runDts(["verify", file]);
    expect(result.code, result.stdout + result.stderr).toBe(1);
    expect(result.stdout).toMatch(
      /src public\.items -> duck "public"."items"\n[^]*?DIFFERENT: 8 differing keys\n\s+id=10\s+differs\n\s+id=11\s+differs\n\s+id=12\s+differs\n\s+id=20\s+differs\n\s+id=21\s+differs\n\s+id=22\s+differs\n\s+id=30\s+missing in target\n\s+id=5000\s+extra in target/,
    );
    expect(result.stdout).toMatch(/src public\.pairs -> duck "public"."pairs"\n[^]*?DIFFERENT: 1 differing key\n\s+a=3, b=x\s+differs/);
    // The PostgreSQL copy is still equal: each sink is checked on its own.
    expect(result.stdout).toMatch(/src public\.items -> pg public\.items\n[^]*?\n\s+equal\n/);
    expect(result.stdout).toContain("DIFFERENT: 2 equal, 2 different");
  });

  it("says that a file in use by a running pipeline cannot be read (exit 3)", async () => {
    const running = startDtsRun([file]);
    try {
      await waitFor("the pipeline to open its DuckDB file", async () => running.stderr().includes("duckdb sink opened"));
      const result = await runDts(["verify", file]);
      expect(result.code).toBe(3);
      expect(result.stderr).toMatch(
        /^dts verify: duckdb sink duck: the file .*copy\.duckdb is in use by process \d+ \(.*\), most likely the running pipeline: .*stop the pipeline, or wait until it stops, then run dts verify again\n$/,
      );
    } finally {
      running.child.kill("SIGTERM");
      await running.done;
    }
  });
});

describe("dts verify, sinks it cannot read", () => {
  it("names a sink with no verify capability and exits 4, or 0 with --skip-unverifiable", async () => {
    const jsonl = join(dir, "jsonl.dts");
    await writeFile(
      jsonl,
      `pipeline ${unique("verify_jsonl")}
source src = postgres { url: "${source.url}", tables: ["public.pairs"] }
sink pg = postgres { url: "${target.url}" }
sink out = jsonl { path: "out.jsonl" }
flow src -> pg, out
`,
    );
    const result = await runDts(["verify", jsonl]);
    expect(result.stdout).toContain("src -> out: not verifiable: sink out (jsonl) cannot be checked: the jsonl connector has no verify capability");
    expect(result.stdout).toContain("NOT VERIFIED: 1 equal, 0 different, 1 not verifiable: src -> out; --skip-unverifiable accepts that");
    expect(result.code).toBe(4);
    const skipped = await runDts(["verify", jsonl, "--skip-unverifiable"]);
    expect(skipped.stdout).toContain("ok: 1 equal, 0 different, 1 not verifiable (skipped)");
    expect(skipped.code).toBe(0);
  });

  it('does not take an "append" DuckDB table, a history, for a copy', async () => {
    const append = join(dir, "append.dts");
    await writeFile(
      append,
      `pipeline ${unique("verify_append")}
source src = postgres { url: "${source.url}", tables: ["public.pairs"] }
sink history = duckdb { path: "copy.duckdb", mode: "append" }
flow src -> history
`,
    );
    const result = await runDts(["verify", append]);
    expect(result.stdout).toContain('src -> history: not verifiable: sink history (duckdb): mode "append" keeps every change as a row: the table is a history, not a copy');
    expect(result.code).toBe(4);
  });
});
