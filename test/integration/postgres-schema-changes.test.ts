/**
 * ALTER TABLE on a captured table while the pipeline streams, PostgreSQL → PostgreSQL against
 * the real server, through the real source (pgoutput's Relation messages), runtime and sink:
 * columns added (with and without create_tables, with a DEFAULT existing rows take), renamed,
 * retyped wider and narrower, dropped, the table renamed, and a column a routed flow's rows
 * carry that no schema change announced. Source and target are compared value by value before
 * and after each change.
 */
import { cp } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PostgresSource } from "../../src/connectors/postgres/source.js";
import { BatchPuller, createDatabase, currentLsn, eventually, recordingLogger, requireLogicalReplication, slotName, sourceContext, type ThrowawayDatabase } from "./pg-helpers.js";
import { columnsOf, pgToPg, rowsOf, type PgToPg } from "./pg-to-pg-helpers.js";

let source: ThrowawayDatabase;
let target: ThrowawayDatabase;
const pipelines: PgToPg[] = [];

beforeAll(async () => {
  await requireLogicalReplication();
  source = await createDatabase("ddl_src");
  target = await createDatabase("ddl_dst");
});

afterAll(async () => {
  for (const pipeline of pipelines) await pipeline.remove();
  await source?.drop();
  await target?.drop();
});

/** A table of `rows` rows in the source, and a pipeline capturing it alone. */
async function captured(name: string, definition: string, fill: string): Promise<PgToPg> {
  await source.sql(`CREATE TABLE ${name} (${definition})`);
  await source.sql(fill);
  const pipeline = await pgToPg(name, source, target, [`public.${name}`]);
  pipelines.push(pipeline);
  return pipeline;
}

const same = async (table: string, columns?: readonly string[], targetTable = table): Promise<void> => {
  expect(await rowsOf(target, targetTable, "id", columns)).toEqual(await rowsOf(source, table, "id", columns));
};

/** Rows of a target table, or -1 before it exists. */
const countOf = async (db: ThrowawayDatabase, table: string): Promise<number> =>
  db.sql<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`).then(
    (rows) => rows[0]!.n,
    () => -1,
  );

const messages = (log: { lines: { level: string; message: string }[] }, level: string): string[] => log.lines.filter((l) => l.level === level).map((l) => l.message);

describe("postgres source: Relation messages become schema changes", () => {
  it("puts each change before the events after it, splitting a transaction there, with the new schema and what changed", async () => {
    await source.sql(`CREATE TABLE relations (id int PRIMARY KEY, n int, label varchar(5) NOT NULL)`);
    const log = recordingLogger();
    const reader = new PostgresSource(sourceContext({ url: source.url, tables: ["public.relations"], snapshot: "never", slot: slotName("dts_relations"), heartbeat_seconds: 0 }, { log }), {
      slotWaitMillis: 500,
      stream: { idleProbeMs: 20 },
    });
    try {
      await reader.start();
      const puller = new BatchPuller(reader, { keepBatches: true });
      await source.sql(`INSERT INTO relations VALUES (1, 1, 'a')`); // the first Relation of the session: as described, no change
      await source.sql(
        // (The type change rewrites the table, which would lose the record of a DEFAULT added before it.)
        `BEGIN; INSERT INTO relations VALUES (2, 2, 'b'); ALTER TABLE relations ALTER COLUMN n TYPE bigint, DROP COLUMN label; ` +
          `ALTER TABLE relations ADD COLUMN c numeric(6,2) NOT NULL DEFAULT 1.25; INSERT INTO relations VALUES (3, 3, 4.5); COMMIT`,
      );
      await source.sql(`ALTER TABLE relations RENAME TO relations_renamed`);
      await source.sql(`UPDATE relations_renamed SET n = 9000000000 WHERE id = 3`);
      await puller.untilCaughtUpPast(await currentLsn(source));
      const batches = puller.batches.filter((batch) => batch.events.length > 0 || batch.schemaChanges !== undefined);
      expect(batches.map((batch) => [batch.events.map((e) => `${e.op} ${e.source.table} ${JSON.stringify(e.after)}`), batch.checkpoint !== undefined, batch.schemaChanges?.length ?? 0])).toEqual([
        [['insert relations {"id":1,"n":1,"label":"a"}'], true, 0],
        [['insert relations {"id":2,"n":2,"label":"b"}'], false, 0],
        [['insert relations {"id":3,"n":3,"c":"4.50"}'], true, 1],
        [['update relations_renamed {"id":3,"n":9000000000,"c":"4.50"}'], true, 1],
      ].map(([events, checkpoint, changes]) => [events, checkpoint, changes]));
      const [, , added, renamed] = batches;
      expect(added!.schemaChanges).toEqual([
        {
          table: "public.relations",
          schema: {
            dialect: "postgres",
            columns: [
              { name: "id", type: "integer", nullable: false },
              { name: "n", type: "bigint", nullable: true },
              { name: "c", type: "numeric(6,2)", nullable: false },
            ],
            primaryKey: ["id"],
          },
          columns: [
            { kind: "retyped", column: "n", from: "integer", to: "bigint" },
            { kind: "added", column: "c", type: "numeric(6,2)", existing: { value: "1.25" } },
            { kind: "dropped", column: "label", type: "character varying(5)" },
          ],
        },
      ]);
      expect(renamed!.schemaChanges).toEqual([{ table: "public.relations_renamed", schema: added!.schemaChanges![0]!.schema, columns: [], renamedFrom: "public.relations" }]);
      // Said once each, with what changed; and the source describes the table as it is now.
      expect(log.lines.filter((l) => /^a captured table/.test(l.message)).map((l) => [l.level, l.message, l.fields])).toEqual([
        ["warn", "a captured table's columns changed", { table: "public.relations", added: "c numeric(6,2)", dropped: "label character varying(5)", type_changed: "n integer -> bigint", note: "a renamed column shows as dropped and added: pgoutput sends only the new column list" }],
        ["warn", "a captured table was renamed", { table: "public.relations_renamed", renamed_from: "public.relations" }],
      ]);
      expect(await reader.describe({ schema: "public", table: "relations_renamed" })).toEqual(added!.schemaChanges![0]!.schema);
    } finally {
      await reader.close();
    }
  });
});

describe("postgres → postgres: schema changes while streaming", () => {
  it("adds columns the source added while the run streams, existing rows taking a constant DEFAULT", async () => {
    const pipeline = await captured("add_live", "id int PRIMARY KEY, n int", "INSERT INTO add_live SELECT i, i FROM generate_series(1, 5) AS i");
    const run = pipeline.start();
    await eventually("the snapshot to reach the target", async () => (await countOf(target, "add_live")) === 5, 20_000);
    await source.sql(`ALTER TABLE add_live ADD COLUMN c bigint, ADD COLUMN d text NOT NULL DEFAULT 'as before', ADD COLUMN e numeric(8,2) DEFAULT 1.5`);
    await source.sql(`INSERT INTO add_live VALUES (6, 6, 9000000000, 'new', 2.25), (7, 7, NULL, 'newer', NULL)`);
    await source.sql(`UPDATE add_live SET c = 42, d = 'changed' WHERE id = 2`);
    // (A rewrite of the table, as the next ALTER makes, also drops the constant DEFAULTs' record
    // of what existing rows hold: the source reads it when the change reaches it, so it waits.)
    await eventually("the first change to reach the target", async () => (await countOf(target, "add_live")) === 7, 20_000);
    // In one transaction: a row before the change takes the DEFAULT, one after has its own value.
    await source.sql(`BEGIN; INSERT INTO add_live (id, n) VALUES (8, 8); ALTER TABLE add_live ADD COLUMN g int DEFAULT 7; INSERT INTO add_live (id, n, g) VALUES (9, 9, 1); COMMIT`);
    await eventually("the transaction to reach the target", async () => (await countOf(target, "add_live")) === 9, 20_000);
    await source.sql(`ALTER TABLE add_live ADD COLUMN f double precision DEFAULT random()`);
    await source.sql(`UPDATE add_live SET f = 0.5 WHERE id = 3`);
    await eventually("the changes to reach the target", async () => (await target.sql(`SELECT f FROM add_live WHERE id = 3`).catch(() => []))[0]?.f === 0.5, 20_000);
    expect(await run.stop()).toBeUndefined();
    expect(await columnsOf(target, "add_live")).toEqual(["id integer", "n integer", "c bigint", "d text", "e numeric(8,2)", "g integer", "f double precision"]);
    await same("add_live", ["id", "n", "c", "d", "e", "g"]);
    expect(await target.sql(`SELECT id, g FROM add_live WHERE id >= 7 ORDER BY id`)).toEqual([
      { id: 7, g: 7 },
      { id: 8, g: 7 },
      { id: 9, g: 1 },
    ]);
    // f's existing values were computed by the source server row by row: never streamed.
    expect(await target.sql(`SELECT id FROM add_live WHERE f IS NOT NULL`)).toEqual([{ id: 3 }]);
    expect(messages(run.log, "warn").join("\n")).toContain(
      "column f was added to source table public.add_live with a DEFAULT the server computed for each existing row (or that the catalog no longer shows), " +
        "which no change event carries: in target table public.add_live those rows have NULL in f; copy the table again to fill them",
    );
    const info = run.log.lines.find((l) => l.message === "a captured table's columns changed");
    expect(info?.fields).toMatchObject({ table: "public.add_live", added: "c bigint, d text, e numeric(8,2)" });
  });

  it("without create_tables, stops naming the table, the column and the ALTER TABLE to run; goes on once it ran", async () => {
    const pipeline = await captured("add_manual", "id int PRIMARY KEY, n int", "INSERT INTO add_manual VALUES (1, 1)");
    await target.sql(`CREATE TABLE add_manual (id int PRIMARY KEY, n int)`);
    expect((await pipeline.runOnce({ createTables: false })).error).toBeUndefined();
    await source.sql(`INSERT INTO add_manual VALUES (2, 2)`);
    await source.sql(`ALTER TABLE add_manual ADD COLUMN note varchar(20)`);
    await source.sql(`INSERT INTO add_manual VALUES (3, 3, 'three')`);
    const stopped = await pipeline.runOnce({ createTables: false });
    expect(stopped.error?.message).toContain(
      "sink dst: source table public.add_manual changed (added note character varying(20)) and target table public.add_manual must follow before " +
        'the rows that need it; with create_tables: false the sink changes no table: run ALTER TABLE "public"."add_manual" ADD COLUMN IF NOT EXISTS "note" ' +
        "character varying(20); and start the pipeline again, or set create_tables: true",
    );
    // The transaction before the change was written; the one after it was not.
    expect(await rowsOf(target, "add_manual", "id")).toEqual([
      { id: 1, n: 1 },
      { id: 2, n: 2 },
    ]);
    await target.sql(`ALTER TABLE "public"."add_manual" ADD COLUMN IF NOT EXISTS "note" character varying(20)`);
    expect((await pipeline.runOnce({ createTables: false })).error).toBeUndefined();
    await same("add_manual");
  });

  it("a renamed column: the target keeps the old one and adds the new one, with a warning saying which rows hold what", async () => {
    const pipeline = await captured("rename_col", "id int PRIMARY KEY, note text", "INSERT INTO rename_col SELECT i, 'note ' || i FROM generate_series(1, 4) AS i");
    expect((await pipeline.runOnce()).error).toBeUndefined();
    await source.sql(`UPDATE rename_col SET note = 'before' WHERE id = 1`);
    await source.sql(`ALTER TABLE rename_col RENAME COLUMN note TO remark`);
    await source.sql(`UPDATE rename_col SET remark = 'after' WHERE id = 2`);
    await source.sql(`INSERT INTO rename_col VALUES (5, 'five')`);
    const run = await pipeline.runOnce();
    expect(run.error).toBeUndefined();
    expect(await columnsOf(target, "rename_col")).toEqual(["id integer", "note text", "remark text"]);
    expect(await rowsOf(target, "rename_col", "id")).toEqual([
      { id: 1, note: "before", remark: null },
      { id: 2, note: "note 2", remark: "after" },
      { id: 3, note: "note 3", remark: null },
      { id: 4, note: "note 4", remark: null },
      { id: 5, note: null, remark: "five" },
    ]);
    // Every source value is in the target: in remark where the row changed since, else in note.
    const targetRows = await rowsOf(target, "rename_col", "id");
    expect(targetRows.map((row) => ({ id: row.id, remark: row.remark ?? row.note }))).toEqual(await rowsOf(source, "rename_col", "id"));
    expect(messages(run.log, "warn")).toContain(
      "column note was dropped from source table public.rename_col (or renamed: pgoutput cannot tell a rename from a drop and an add); target table " +
        "public.rename_col keeps it and its values, and rows written from now on have NULL there. If it was renamed to remark, the rows not changed " +
        "since have their value only in note: copy the table again to move them",
    );
    expect(run.log.lines.find((l) => l.message === "a captured table's columns changed")?.fields).toMatchObject({
      table: "public.rename_col",
      added: "remark text",
      dropped: "note text",
      note: "a renamed column shows as dropped and added: pgoutput sends only the new column list",
    });
  });

  it("widens a column whose type the source widened (integer to bigint), before the rows that need it", async () => {
    const pipeline = await captured("widen", "id int PRIMARY KEY, n int, label varchar(3)", "INSERT INTO widen SELECT i, i * 1000, 'ab' FROM generate_series(1, 3) AS i");
    expect((await pipeline.runOnce()).error).toBeUndefined();
    await source.sql(`UPDATE widen SET n = -5 WHERE id = 1`);
    await source.sql(`ALTER TABLE widen ALTER COLUMN n TYPE bigint, ALTER COLUMN label TYPE varchar(10)`);
    await source.sql(`UPDATE widen SET n = 9000000000, label = 'abcdefghij' WHERE id = 2`);
    await source.sql(`INSERT INTO widen VALUES (4, -9000000000, 'long label')`);
    const run = await pipeline.runOnce();
    expect(run.error).toBeUndefined();
    expect(await columnsOf(target, "widen")).toEqual(["id integer", "n bigint", "label character varying(10)"]);
    await same("widen");
  });

  it("refuses a narrowing type change, naming table, column and both types; goes on once the target follows", async () => {
    const pipeline = await captured("narrow", "id int PRIMARY KEY, amount numeric(12,4)", "INSERT INTO narrow VALUES (1, 1.2345), (2, 2.5)");
    expect((await pipeline.runOnce()).error).toBeUndefined();
    await source.sql(`UPDATE narrow SET amount = 3.3333 WHERE id = 2`);
    await source.sql(`ALTER TABLE narrow ALTER COLUMN amount TYPE numeric(10,2)`); // rounds the stored values, without change events
    await source.sql(`INSERT INTO narrow VALUES (3, 3.14)`);
    const stopped = await pipeline.runOnce();
    expect(stopped.error?.message).toContain(
      "sink dst: column amount went from numeric(12,4) to numeric(10,2) in source table public.narrow, a narrowing: the source's ALTER rewrote its " +
        "rows (numeric and time values may be rounded), and no change event carries them; target table public.narrow has numeric(12,4). The sink " +
        'changes a column\'s type only to a wider one: bring the target in line (ALTER TABLE "public"."narrow" ALTER COLUMN "amount" TYPE numeric(10,2) ' +
        'USING "amount"::numeric(10,2);) and start the pipeline again',
    );
    expect(await rowsOf(target, "narrow", "id")).toEqual([
      { id: 1, amount: 1.2345 },
      { id: 2, amount: 3.3333 },
    ]);
    await target.sql(`ALTER TABLE "public"."narrow" ALTER COLUMN "amount" TYPE numeric(10,2) USING "amount"::numeric(10,2)`);
    expect((await pipeline.runOnce()).error).toBeUndefined();
    await same("narrow");
  });

  it("keeps a dropped column and its values in the target, with a warning", async () => {
    const pipeline = await captured("dropping", "id int PRIMARY KEY, n int, gone text", "INSERT INTO dropping SELECT i, i, 'gone ' || i FROM generate_series(1, 3) AS i");
    expect((await pipeline.runOnce()).error).toBeUndefined();
    await source.sql(`UPDATE dropping SET n = 10 WHERE id = 1`);
    await source.sql(`ALTER TABLE dropping DROP COLUMN gone`);
    await source.sql(`UPDATE dropping SET n = 20 WHERE id = 2`);
    await source.sql(`INSERT INTO dropping VALUES (4, 4)`);
    const run = await pipeline.runOnce();
    expect(run.error).toBeUndefined();
    await same("dropping", ["id", "n"]);
    expect(await target.sql(`SELECT id, gone FROM dropping ORDER BY id`)).toEqual([
      { id: 1, gone: "gone 1" },
      { id: 2, gone: "gone 2" },
      { id: 3, gone: "gone 3" },
      { id: 4, gone: null },
    ]);
    expect(messages(run.log, "warn")).toContain(
      "column gone was dropped from source table public.dropping (or renamed: pgoutput cannot tell a rename from a drop and an add); target table " +
        "public.dropping keeps it and its values, and rows written from now on have NULL there",
    );
  });

  it("follows a renamed table under its new name, naming the stale target table; a restart with the new name copies it whole", async () => {
    const pipeline = await captured("old_name", "id int PRIMARY KEY, n int", "INSERT INTO old_name SELECT i, i FROM generate_series(1, 4) AS i");
    const run = pipeline.start();
    await eventually("the snapshot to reach the target", async () => (await countOf(target, "old_name")) === 4, 20_000);
    await source.sql(`ALTER TABLE old_name RENAME TO new_name`);
    await source.sql(`UPDATE new_name SET n = 30 WHERE id = 3`);
    await source.sql(`INSERT INTO new_name VALUES (5, 5)`);
    await eventually("the changes to reach the target", async () => (await countOf(target, "new_name")) === 2, 20_000);
    expect(await run.stop()).toBeUndefined();
    expect(messages(run.log, "warn")).toContain(
      "source table public.old_name was renamed to public.new_name: its changes go to target table public.new_name from now on, and target table " +
        "public.old_name is stale (it keeps the rows as they were). To have every row in public.new_name, restart the pipeline with public.new_name in " +
        "its tables (a table new to the pipeline is copied first), then drop public.old_name in the target",
    );
    expect(await rowsOf(target, "old_name", "id")).toEqual([1, 2, 3, 4].map((id) => ({ id, n: id })));
    expect(await rowsOf(target, "new_name", "id")).toEqual([
      { id: 3, n: 30 },
      { id: 5, n: 5 },
    ]);
    // As the warning says: the same pipeline with the new name in `tables` copies the table whole.
    const renamed = await pgToPg("old_name", source, target, ["public.new_name"]);
    pipelines.push(renamed);
    await cp(pipeline.dir, renamed.dir, { recursive: true });
    expect((await renamed.runOnce()).error).toBeUndefined();
    await same("new_name");
  });

  it("adds a column that rows of a routed flow carry, with the type the source declares; without create_tables, says what to run", async () => {
    const pipeline = await captured("routed", "id int PRIMARY KEY, n int", "INSERT INTO routed VALUES (1, 1)");
    const flow = `| route "public.routed_copy"`;
    expect((await pipeline.runOnce({ flow })).error).toBeUndefined();
    await source.sql(`ALTER TABLE routed ADD COLUMN amount numeric(10,3)`);
    await source.sql(`INSERT INTO routed VALUES (2, 2, 12.345)`);
    const stopped = await pipeline.runOnce({ flow, createTables: false });
    expect(stopped.error?.message).toContain(
      "sink dst: target table public.routed_copy has no column amount, which rows of public.routed carry (added to the source since, or made by a step); " +
        'with create_tables: false the sink changes no table: run ALTER TABLE "public"."routed_copy" ADD COLUMN IF NOT EXISTS "amount" numeric(10,3); ' +
        "and start the pipeline again, or set create_tables: true",
    );
    const run = await pipeline.runOnce({ flow });
    expect(run.error).toBeUndefined();
    expect(await columnsOf(target, "routed_copy")).toEqual(["id integer", "n integer", "amount numeric(10,3)"]);
    await same("routed", undefined, "routed_copy");
  });
});
