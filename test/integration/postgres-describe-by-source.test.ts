/**
 * `create_tables` takes its columns from the source that read the events — the flow's own
 * source — not from the first source of the same connector: two PostgreSQL sources on two
 * databases each have a table `public.items`, with different columns, and each sink's created
 * table must have the columns and types of its own source's table, and its rows, value by value.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runPipeline } from "../../src/runtime/run.js";
import { planOf } from "../unit/runtime-fixtures.js";
import { createDatabase, recordingLogger, requireLogicalReplication, slotName, type ThrowawayDatabase } from "./pg-helpers.js";

let sourceA: ThrowawayDatabase;
let sourceB: ThrowawayDatabase;
let targetA: ThrowawayDatabase;
let targetB: ThrowawayDatabase;
let dir: string;

beforeAll(async () => {
  await requireLogicalReplication();
  [sourceA, sourceB, targetA, targetB] = await Promise.all([createDatabase("describe_src_a"), createDatabase("describe_src_b"), createDatabase("describe_dst_a"), createDatabase("describe_dst_b")]);
  dir = await mkdtemp(join(tmpdir(), "dts-describe-"));
  await sourceA.sql(`CREATE TABLE public.items (id integer PRIMARY KEY, name text NOT NULL, tags text[])`);
  await sourceA.sql(`INSERT INTO public.items VALUES (1, 'bolt', '{m4,steel}'), (2, 'nut', NULL)`);
  await sourceB.sql(`CREATE TABLE public.items (id bigint PRIMARY KEY, amount numeric(10,2), at timestamp(3) with time zone, note varchar(20))`);
  await sourceB.sql(`INSERT INTO public.items VALUES (10, 12.30, '2024-05-01 10:00:00.123+00', 'first'), (11, NULL, NULL, 'second')`);
});

afterAll(async () => {
  await Promise.all([sourceA, sourceB, targetA, targetB].filter((db) => db !== undefined).map((db) => db.drop()));
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** Each column's name and declared type, in order. */
async function columnsOf(db: ThrowawayDatabase): Promise<string[]> {
  const rows = await db.sql<{ column: string }>(
    `SELECT a.attname || ' ' || format_type(a.atttypid, a.atttypmod) AS column
       FROM pg_attribute a WHERE a.attrelid = 'public.items'::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
  );
  return rows.map((row) => row.column);
}

/** Every row as JSON text, by key: the same text on both sides is the same value. */
async function rowsOf(db: ThrowawayDatabase): Promise<string[]> {
  return (await db.sql<{ row: string }>(`SELECT row_to_json(t)::text AS row FROM public.items t ORDER BY id`)).map((row) => row.row);
}

describe("create_tables with two sources of one connector", () => {
  it("creates each sink's table from its own flow's source", async () => {
    const text = `
pipeline describe_by_source {}
source a = postgres { url: "${sourceA.url}"  tables: ["public.items"]  slot: "${slotName("describe_a")}"  heartbeat_seconds: 0 }
source b = postgres { url: "${sourceB.url}"  tables: ["public.items"]  slot: "${slotName("describe_b")}"  heartbeat_seconds: 0 }
sink ta = postgres { url: "${targetA.url}"  create_tables: true }
sink tb = postgres { url: "${targetB.url}"  create_tables: true }
flow a -> ta
flow b -> tb
`;
    const plan = planOf(text, join(dir, "describe.dts"));
    await runPipeline(plan, { baseDir: dir, untilCaughtUp: true, log: recordingLogger(), retry: { retryForMs: 0, initialDelayMs: 10, maxDelayMs: 10 } });

    expect(await columnsOf(targetA)).toEqual(await columnsOf(sourceA));
    expect(await columnsOf(targetB)).toEqual(await columnsOf(sourceB));
    expect(await columnsOf(targetB)).toEqual(["id bigint", "amount numeric(10,2)", "at timestamp(3) with time zone", "note character varying(20)"]);
    expect(await rowsOf(targetA)).toEqual(await rowsOf(sourceA));
    expect(await rowsOf(targetB)).toEqual(await rowsOf(sourceB));
    expect(await rowsOf(targetB)).toHaveLength(2);
  });
});
