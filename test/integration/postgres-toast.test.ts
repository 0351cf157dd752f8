/**
 * Absent is not null, PostgreSQL → PostgreSQL against the real server: with the default replica
 * identity an UPDATE leaves a large (TOASTed) value it did not touch out of the change, and no
 * write of the sink may put NULL in its place — not a key change (the row moves), not a change of
 * the same key several times in one write, not an update of a row the target lacks (which is
 * rejected, naming REPLICA IDENTITY FULL), whichever way rows are sent (COPY staging, unnest,
 * careful mode). Every value of source and target is compared.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PostgresSink, type UpsertMethod } from "../../src/connectors/postgres/sink.js";
import type { SinkEvent } from "../../src/runtime/contracts.js";
import { createDatabase, requireLogicalReplication, type ThrowawayDatabase } from "./pg-helpers.js";
import { pgToPg, rowsOf, type PgToPg } from "./pg-to-pg-helpers.js";
import { event, silentLog, sinkEvents } from "./postgres-sink-helpers.js";

/** 9,600 characters of hex, which pglz does not compress: stored out of line (TOAST), beyond 2 kB. */
const big = (seed: string): string => `(SELECT string_agg(md5(${seed} || '-' || g), '') FROM generate_series(1, 300) AS g)`;

const TABLES = ["docs_default", "docs_full"];

describe("postgres → postgres: unchanged TOASTed columns", () => {
  let source: ThrowawayDatabase;
  let target: ThrowawayDatabase;
  let pipeline: PgToPg;

  beforeAll(async () => {
    await requireLogicalReplication();
    source = await createDatabase("toast_src");
    target = await createDatabase("toast_dst");
    for (const table of TABLES) {
      await source.sql(`CREATE TABLE ${table} (id int PRIMARY KEY, n int, big text, note text)`);
      await source.sql(`INSERT INTO ${table} SELECT i, 0, ${big("i::text")}, 'note ' || i FROM generate_series(1, 12) AS i`);
    }
    await source.sql(`ALTER TABLE docs_full REPLICA IDENTITY FULL`);
    pipeline = await pgToPg("toast", source, target, TABLES.map((t) => `public.${t}`));
  });

  afterAll(async () => {
    await pipeline?.remove();
    await source?.drop();
    await target?.drop();
  });

  const same = async (): Promise<void> => {
    for (const table of TABLES) {
      const expected = await rowsOf(source, table, "id");
      expect(await rowsOf(target, table, "id"), table).toEqual(expected);
      // Every row still has its large value: nothing was NULLed on either side.
      expect(expected.every((row) => typeof row.big === "string" && row.big.length === 9600), table).toBe(true);
    }
  };

  it("keeps every large value through updates that do not touch it, key changes, moves within one batch and deletes", async () => {
    const first = await pipeline.runOnce();
    expect(first.error).toBeUndefined();
    await same();
    // The values are stored out of line, so updates that leave them alone do not send them.
    const [{ external }] = await source.sql<{ external: boolean }>(
      `SELECT pg_relation_size(reltoastrelid) >= 12 * 9600 AS external FROM pg_class WHERE relname = 'docs_default'`,
    );
    expect(external).toBe(true);

    for (const table of TABLES) {
      await source.sql(`UPDATE ${table} SET n = 1 WHERE id = 1`);
      await source.sql(`UPDATE ${table} SET id = 20 WHERE id = 2`);
      // A key changed twice in one transaction, after other changes of the same key.
      await source.sql(`BEGIN; UPDATE ${table} SET n = 3 WHERE id = 3; UPDATE ${table} SET id = 30 WHERE id = 3; UPDATE ${table} SET n = 4, id = 31 WHERE id = 30; COMMIT`);
      // A row inserted and moved in one transaction.
      await source.sql(`BEGIN; INSERT INTO ${table} VALUES (13, 0, ${big("'thirteen'")}, 'new'); UPDATE ${table} SET id = 130 WHERE id = 13; COMMIT`);
      await source.sql(`UPDATE ${table} SET big = ${big("'four'")} WHERE id = 4`);
      await source.sql(`BEGIN; UPDATE ${table} SET n = 5 WHERE id = 5; DELETE FROM ${table} WHERE id = 5; COMMIT`);
      await source.sql(`DELETE FROM ${table} WHERE id = 6`);
      await source.sql(`UPDATE ${table} SET id = 70, note = NULL WHERE id = 7`);
      // There and back, and a swap through a free key.
      await source.sql(`BEGIN; UPDATE ${table} SET id = 80 WHERE id = 8; UPDATE ${table} SET id = 8 WHERE id = 80; COMMIT`);
      await source.sql(`BEGIN; UPDATE ${table} SET id = 100 WHERE id = 9; UPDATE ${table} SET id = 9 WHERE id = 10; UPDATE ${table} SET id = 10 WHERE id = 100; COMMIT`);
    }
    const second = await pipeline.runOnce();
    expect(second.error).toBeUndefined();
    await same();

    // Changes across runs: a row moved, then changed again, in separate transactions.
    for (const table of TABLES) {
      await source.sql(`UPDATE ${table} SET id = 21 WHERE id = 20`);
      await source.sql(`UPDATE ${table} SET n = 21 WHERE id = 21`);
      await source.sql(`UPDATE ${table} SET id = 22, n = 22 WHERE id = 21`);
    }
    const third = await pipeline.runOnce();
    expect(third.error).toBeUndefined();
    await same();
  });

  it("skips, with a warning, an update whose row the target lacks when writes may be replayed, and never writes a partial row", async () => {
    await pipeline.runOnce();
    // The target lost two rows (someone deleted them there), as a replay meets a row a later change deleted.
    await target.sql(`DELETE FROM docs_default WHERE id IN (11, 12)`);
    await source.sql(`UPDATE docs_default SET id = 110 WHERE id = 11`); // a key change: the old row is not there to take big from
    await source.sql(`UPDATE docs_default SET n = 12 WHERE id = 12`); // the same key: not there to update
    await source.sql(`UPDATE docs_full SET id = 110 WHERE id = 11`); // whole rows need nothing from the target
    const run = await pipeline.runOnce({ deadLetter: true });
    expect(run.error).toBeUndefined();
    expect(await pipeline.rejections()).toEqual([]);
    const warnings = run.log.lines.filter((record) => record.message.startsWith("skipped an update that cannot be applied"));
    expect(warnings.map((record) => record.message)).toEqual([
      expect.stringContaining(
        "public.docs_default (id=110): the update has no value for column big (unchanged, so left out of the change: PostgreSQL does so with large " +
          "TOASTed values) and the target has no row id=110 or id=11 to take it from; writing the row would put NULL in it. Have the source send " +
          "whole rows: ALTER TABLE public.docs_default REPLICA IDENTITY FULL, and copy the table again to bring the target's rows back",
      ),
      expect.stringMatching(/public\.docs_default \(id=12\): the update has no value for column big .* the target has no row id=12 to take it from; .*REPLICA IDENTITY FULL/),
    ]);
    expect(await target.sql(`SELECT id FROM docs_default WHERE id IN (11, 12, 110) OR big IS NULL`)).toEqual([]);
    expect(await rowsOf(target, "docs_full", "id")).toEqual(await rowsOf(source, "docs_full", "id"));
  });

  it("rejects such an update where no write is replayed (the position is kept in the target): the target lost the row", async () => {
    await source.sql(`INSERT INTO docs_default VALUES (50, 0, ${big("'50'")}, 'note 50')`);
    expect((await pipeline.runOnce({ checkpointInTarget: true })).error).toBeUndefined();
    await target.sql(`DELETE FROM docs_default WHERE id = 50`);
    await source.sql(`UPDATE docs_default SET n = 50 WHERE id = 50`);
    const run = await pipeline.runOnce({ checkpointInTarget: true });
    expect(run.error?.message).toMatch(/rejected the update on public\.docs_default key \{"id":50\}.*the target has no row id=50 to take it from; .*REPLICA IDENTITY FULL/);
    expect(await target.sql(`SELECT id FROM docs_default WHERE id = 50 OR big IS NULL`)).toEqual([]);
  });
});

describe.each<UpsertMethod>(["copy", "unnest"])("postgres sink (%s): rows without some of their columns", (method) => {
  let db: ThrowawayDatabase;
  let sink: PostgresSink;
  const schema = { dialect: "postgres" as const, columns: ["id", "name", "qty", "body"].map((name) => ({ name, type: "text", nullable: true })), primaryKey: ["id"] };

  beforeAll(async () => {
    db = await createDatabase(`absent_${method}`);
    // `extra` is the target's own column: the source has none, so a row without it is whole.
    await db.sql(`CREATE TABLE items (id int PRIMARY KEY, name varchar(3), qty int, body text, extra text DEFAULT 'own')`);
    sink = new PostgresSink({
      url: db.url,
      mayReplay: false,
      createTables: false,
      batchSize: 3,
      pipeline: "test",
      name: "target",
      log: silentLog,
      method,
      describeSource: async () => schema,
    });
    await sink.start();
  });

  afterAll(async () => {
    await sink?.close();
    await db?.drop();
  });

  const rows = () => db.sql(`SELECT id, name, qty, body, extra FROM items ORDER BY id`);
  const update = (after: Record<string, unknown>, before?: Record<string, unknown>): SinkEvent =>
    sinkEvents([event("update", "public.items", { after: after as never, ...(before !== undefined ? { before: before as never } : {}), key: { id: after.id as number } })])[0]!;
  const insert = (after: Record<string, unknown>): SinkEvent => sinkEvents([event("insert", "public.items", { after: after as never, key: { id: after.id as number } })])[0]!;

  it("completes moved rows from the target and from earlier images, keeps same-key ones as updates, in careful mode too", async () => {
    await db.sql(`TRUNCATE items`);
    await sink.write({ events: [1, 2, 3, 4, 5].map((id) => insert({ id, name: `n${id}`, qty: id, body: `body ${id}` })) });
    await db.sql(`UPDATE items SET extra = 'kept' WHERE id = 2`);
    const rejections = await sink.write({
      events: [
        update({ id: 1, qty: 10 }), // kept: an UPDATE of qty
        update({ id: 20, qty: 20 }, { id: 2 }), // moved: name and body from the target's row 2
        insert({ id: 6, name: "toolong", qty: 6, body: "x" }), // refused by the server: careful mode
        update({ id: 3, qty: 30 }),
        update({ id: 31, name: "m" }, { id: 3 }), // moved after a change of the same key
        insert({ id: 7, name: "n7", qty: 7, body: "body 7" }),
        update({ id: 70, qty: 70 }, { id: 7 }), // moved: from the insert in this write
        update({ id: 4, body: null }), // a real NULL is a value
        update({ id: 50, qty: 50 }, { id: 5 }),
        update({ id: 5, qty: 51 }, { id: 50 }), // and back
      ],
    });
    expect(rejections.map((r) => r.index)).toEqual([2]);
    expect(await rows()).toEqual([
      { id: 1, name: "n1", qty: 10, body: "body 1", extra: "own" },
      { id: 4, name: "n4", qty: 4, body: null, extra: "own" },
      { id: 5, name: "n5", qty: 51, body: "body 5", extra: "own" },
      { id: 20, name: "n2", qty: 20, body: "body 2", extra: "kept" },
      { id: 31, name: "m", qty: 30, body: "body 3", extra: "own" },
      { id: 70, name: "n7", qty: 70, body: "body 7", extra: "own" },
    ]);
  });

  it("rejects an update the target has no row for, and applies one that lacks only the target's own columns", async () => {
    await db.sql(`TRUNCATE items`);
    const rejections = await sink.write({
      events: [
        update({ id: 8, qty: 8 }), // nothing to update: rejected
        update({ id: 9, name: "n9", qty: 9, body: "b" }), // whole for the source: inserted
        update({ id: 10, qty: 10 }, { id: 11 }), // nothing to move: rejected
        update({ id: 10, name: "x" }), // its row was never written: rejected too
      ],
    });
    expect(rejections.map((r) => [r.index, r.reason.replace(/ \(unchanged.*/, "")])).toEqual([
      [0, "public.items (id=8): the update has no value for columns name, body"],
      [2, "public.items (id=10): the update has no value for columns name, body"],
      [3, "public.items (id=10): the update has no value for columns qty, body"],
    ]);
    expect(await rows()).toEqual([{ id: 9, name: "n9", qty: 9, body: "b", extra: "own" }]);
  });
});
