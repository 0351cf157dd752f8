/**
 * Every type, PostgreSQL to PostgreSQL through dts-run: the source decodes each value, the sink
 * encodes it again, and the copy must print exactly what the original prints — for ordinary
 * values, edge values (NaN, infinities, BC dates, years past 9999, 64-bit limits, empty and
 * nested arrays, quoting) and NULL, read by the snapshot and by the stream.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { copyPipeline, requireBuild, runDts, runDtsRun, unique } from "./postgres-e2e-helpers.js";
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
    const snapshot = await runDtsRun(pipeline.file, env, ["--until-caught-up"]);
    expect(snapshot.code, snapshot.stderr.slice(-3000)).toBe(0);
    await primary.sql(typesRows(10));
    await primary.sql("UPDATE types SET c_text = c_text || '!', a_nested = '{{5,6},{7,8}}' WHERE id IN (1, 12)");
    const stream = await runDtsRun(pipeline.file, env, ["--until-caught-up"]);
    expect(stream.code, stream.stderr.slice(-3000)).toBe(0);

    const original = await printed(primary);
    const copy = await printed(standby);
    expect(copy).toHaveLength(6);
    for (let i = 0; i < original.length; i++) expect(copy[i], `row ${String(original[i]!.id)}`).toEqual(original[i]);

    const verify = await runDts(["verify", pipeline.file], env);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  });
});
