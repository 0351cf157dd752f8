/**
 * Every type, PostgreSQL to PostgreSQL through dts-run: the source decodes each value, the sink
 * encodes it again, and the copy must print exactly what the original prints — for ordinary
 * values, edge values (NaN, infinities, BC dates, years past 9999, 64-bit limits, empty and
 * nested arrays, quoting) and NULL, read by the snapshot and by the stream.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireBuild, runDts, runDtsRun } from "../cli-process.js";
import { copyPipeline, unique } from "./postgres-e2e-helpers.js";
import { createDatabase, type TestDatabase } from "./postgres-sink-helpers.js";
import { typesRows, typesSchema } from "./types-fixture.js";

/** Every column as PostgreSQL prints it (json's spacing is the writer's, so it is compared as jsonb). */
async function printed(db: TestDatabase): Promise<Record<string, unknown>[]> {
  const [{ list }] = await db.sql<{ list: string }>(
    `SELECT string_agg(CASE WHEN atttypid = 'json'::regtype THEN format('%I::jsonb::text AS %I', attname, attname)
                            WHEN atttypid = 'json[]'::regtype THEN format('(SELECT array_agg(e::jsonb) FROM unnest(%I) AS e)::text AS %I', attname, attname)
                            ELSE format('%I::text AS %I', attname, attname) END, ', ' ORDER BY attnum) AS list
       FROM pg_attribute WHERE attrelid = 'public.types'::regclass AND attnum > 0 AND NOT attisdropped`,
  );
  await db.sql("SET extra_float_digits = 1; SET IntervalStyle = 'postgres'");
  return db.sql(`SELECT ${list} FROM public.types ORDER BY id`);
}

describe("every type, PostgreSQL to PostgreSQL", () => {
  let primary: TestDatabase;
  let standby: TestDatabase;
  let pipeline: Awaited<ReturnType<typeof copyPipeline>>;

  beforeAll(async () => {
    requireBuild();
    primary = await createDatabase("types_primary");
    standby = await createDatabase("types_standby");
    await primary.sql(typesSchema);
    await primary.sql(typesRows(0));
    // The standby has the same tables already, so the copy is compared type for type.
    await standby.sql(typesSchema);
    pipeline = await copyPipeline("disaster-recovery.dts", [['slot: "dts_standby"', `slot: "${unique("dts_types")}"`]]);
  });

  afterAll(async () => {
    await primary?.drop();
    await standby?.drop();
    await pipeline?.remove();
  });

  it("copies every value exactly, from the snapshot and from the stream", async () => {
    const env = { PRIMARY_URL: primary.url, STANDBY_URL: standby.url };
    const snapshot = await runDtsRun([pipeline.file, "--until-caught-up"], { env });
    expect(snapshot.code, snapshot.stderr.slice(-3000)).toBe(0);
    await primary.sql(typesRows(10));
    await primary.sql("UPDATE types SET c_text = c_text || '!', a_nested = '{{5,6},{7,8}}' WHERE id IN (1, 12)");
    const stream = await runDtsRun([pipeline.file, "--until-caught-up"], { env });
    expect(stream.code, stream.stderr.slice(-3000)).toBe(0);

    const original = await printed(primary);
    const copy = await printed(standby);
    expect(copy).toHaveLength(6);
    for (let i = 0; i < original.length; i++) expect(copy[i], `row ${String(original[i]!.id)}`).toEqual(original[i]);

    const verify = await runDts(["verify", pipeline.file], { env });
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  });
});

describe("awkward text keys, read in many chunks", () => {
  let primary: TestDatabase;
  let standby: TestDatabase;
  let pipeline: Awaited<ReturnType<typeof copyPipeline>>;

  beforeAll(async () => {
    requireBuild();
    primary = await createDatabase("keys_primary");
    standby = await createDatabase("keys_standby");
    // Keys the snapshot must carry through a COPY-read chunk boundary and into the next
    // chunk's "WHERE key > literal": quotes, backslashes, tabs, newlines, the text \N, the
    // empty string, non-ASCII letters. The table is copied through the raw COPY-line path
    // (no steps, same columns), so the lines must reach the target byte for byte.
    await primary.sql("CREATE TABLE awkward (k text PRIMARY KEY, v text, n numeric(6,2))");
    await primary.sql(
      `INSERT INTO awkward VALUES ('a''b', 'quote', 1.10), (E'back\\\\slash', E'\\\\', 2), (E'tab\\there', E'x\\ty', NULL),
         (E'new\\nline', E'multi\\nline', 3.5), ('comma,{brace}', NULL, 0), ('\\N', '\\N', -1), ('', 'empty key', 9.99),
         ('ünïcödé', 'ß', 4), (' space', ' ', 5), ('z', 'last', 6), ('"dq"', '"', 7), ('semi;colon', ';', 8)`,
    );
    pipeline = await copyPipeline("disaster-recovery.dts", [['slot: "dts_standby"', `slot: "${unique("dts_keys")}"\n  chunk_size: 3`]]);
  });

  afterAll(async () => {
    await primary?.drop();
    await standby?.drop();
    await pipeline?.remove();
  });

  it("copies every row exactly", async () => {
    const env = { PRIMARY_URL: primary.url, STANDBY_URL: standby.url };
    const run = await runDtsRun([pipeline.file, "--until-caught-up"], { env });
    expect(run.code, run.stderr.slice(-3000)).toBe(0);
    const rows = (db: TestDatabase) => db.sql("SELECT k, v, n::text AS n FROM awkward ORDER BY k COLLATE \"C\"");
    const original = await rows(primary);
    expect(original).toHaveLength(12);
    expect(await rows(standby)).toEqual(original);
    const verify = await runDts(["verify", pipeline.file], { env });
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  });
});
