/**
 * The mysql sink against the real MariaDB, fed by the real PostgreSQL source through the
 * runtime: every type value by value (snapshot and stream), the tables create_tables makes,
 * updates without their TOASTed columns and key changes under both replica identities, refused
 * values to the dead-letter sink with their reasons, and an ADD COLUMN while streaming.
 */
import { isJsonNull } from "../../src/model/value.js";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { trimDecimal } from "../../src/model/canonical.js";
import { Decimal } from "../../src/model/decimal.js";
import { decodeJson, encodeJson } from "../../src/model/json.js";
import { Timestamp } from "../../src/model/timestamp.js";
import type { Value } from "../../src/model/value.js";
import { createDatabase, eventually, requireLogicalReplication, type ThrowawayDatabase } from "./pg-helpers.js";
import { createMysqlDatabase, pgToMysql, type MysqlDatabase } from "./mysql-sink-helpers.js";
import { typesRows, typesSchema } from "./types-fixture.js";

let pg: ThrowawayDatabase;
let my: MysqlDatabase;

beforeAll(async () => {
  await requireLogicalReplication();
  pg = await createDatabase("mysink");
  my = await createMysqlDatabase("sink");
});

afterAll(async () => {
  await pg?.drop();
  await my?.drop();
});

// ---------------------------------------------------------------- every type

/** Every column of `types` in PostgreSQL, as text in the form the comparisons below take. */
async function pgTypes(): Promise<Record<string, string | null>[]> {
  const columns = await pg.sql<{ name: string; type: string }>(
    "SELECT attname AS name, format_type(atttypid, atttypmod) AS type FROM pg_attribute WHERE attrelid = 'types'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
  );
  const list = columns.map(({ name, type }) => {
    const c = `"${name}"`;
    if (type.endsWith("[]")) return `to_jsonb(${c})::text AS ${c}`;
    if (type === "timestamp with time zone") return `to_char(${c} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS ${c}`;
    if (type === "timestamp without time zone") return `to_char(${c}, 'YYYY-MM-DD HH24:MI:SS.US') AS ${c}`;
    if (type === "bytea") return `encode(${c}, 'hex') AS ${c}`;
    if (type === "boolean") return `CASE WHEN ${c} THEN '1' WHEN NOT ${c} THEN '0' END AS ${c}`;
    // format() keeps a char(n)'s padding, which a cast to text drops.
    return `CASE WHEN ${c} IS NOT NULL THEN format('%s', ${c}) END AS ${c}`;
  });
  await pg.sql("SET TimeZone = 'UTC'; SET IntervalStyle = 'iso_8601'; SET extra_float_digits = 3");
  return pg.sql(`SELECT ${list.join(", ")} FROM types ORDER BY id`);
}

async function mysqlTypes(): Promise<Record<string, string | null>[]> {
  const columns = await my.sql<{ name: string; type: string }>(
    "SELECT COLUMN_NAME AS name, DATA_TYPE AS type FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'types' ORDER BY ORDINAL_POSITION",
    [my.name],
  );
  const list = columns.map(({ name, type }) => (/blob|binary/.test(type) ? `LOWER(HEX(\`${name}\`)) AS \`${name}\`` : `CAST(\`${name}\` AS CHAR) AS \`${name}\``));
  const rows = await my.sql<Record<string, string | null>>(`SELECT ${list.join(", ")} FROM types`);
  return rows.sort((a, b) => Number(a.id) - Number(b.id));
}

/** A JSON value with every number as its exact decimal text and every timestamp and bytes in one form, for comparing documents. */
function normal(value: Value): unknown {
  if (value === null || typeof value === "boolean") return value;
  if (typeof value === "number" || typeof value === "bigint" || value instanceof Decimal) {
    if (typeof value === "number" && !Number.isFinite(value)) return String(value);
    return `n:${trimDecimal(new Decimal(value).toString())}`;
  }
  if (typeof value === "string") {
    if (/^\\x[0-9a-f]*$/.test(value)) return `bytes:${value.slice(2)}`;
    if (/^\d{4}-\d\d-\d\d([T ][\d:.]+)?(Z|[+-]\d\d(:\d\d)?)?$/.test(value)) return `ts:${Timestamp.parse(value).epochMicros}`;
    return value;
  }
  if (Array.isArray(value)) return value.map(normal);
  if (value instanceof Timestamp) return `ts:${value.epochMicros}`;
  if (value instanceof Uint8Array) return `bytes:${Buffer.from(value).toString("hex")}`;
  if (isJsonNull(value)) return "json-null";
  if (typeof value === "object" && Object.keys(value).length === 1 && typeof value.$bytes === "string") return `bytes:${Buffer.from(value.$bytes, "base64").toString("hex")}`;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normal(v)]));
}

/** Whether MySQL's text of a column equals PostgreSQL's, by the column's type mapping. */
function sameValue(column: string, pgText: string | null, myText: string | null): boolean {
  if (pgText === null || myText === null) return pgText === myText;
  if (column.startsWith("a_") || column === "c_json" || column === "c_jsonb") {
    return JSON.stringify(normal(decodeJson(pgText))) === JSON.stringify(normal(decodeJson(myText)));
  }
  if (column.startsWith("c_numeric")) return trimDecimal(pgText) === trimDecimal(myText);
  if (column === "c_real") return Math.fround(Number(pgText)) === Math.fround(Number(myText));
  if (column === "c_double") return Number(pgText) === Number(myText);
  return pgText === myText;
}

function compareTypes(pgRows: Record<string, string | null>[], myRows: Record<string, string | null>[], ids: readonly string[]): void {
  for (const id of ids) {
    const source = pgRows.find((row) => row.id === id)!;
    const copy = myRows.find((row) => row.id === id);
    expect(copy, `row ${id} in MySQL`).toBeDefined();
    for (const column of Object.keys(source)) {
      expect(sameValue(column, source[column]!, copy![column] ?? null), `row ${id} column ${column}: PostgreSQL ${source[column]} MySQL ${copy![column]}`).toBe(true);
    }
  }
}

describe("PostgreSQL to MySQL, every type", () => {
  it("copies each value exactly, from the snapshot and the stream; values MySQL cannot hold go to the dead-letter sink with the reason", async () => {
    await pg.sql(typesSchema);
    await pg.sql(typesRows(0));
    const pipeline = await pgToMysql("mysink_types", pg, my, ["public.types"]);
    try {
      const snapshot = await pipeline.runOnce({ deadLetter: true });
      expect(snapshot.error).toBeUndefined();
      await pg.sql(typesRows(10));
      await pg.sql("UPDATE types SET c_text = c_text || '!', a_nested = '{{5,6},{7,8}}' WHERE id IN (1, 11)");
      const stream = await pipeline.runOnce({ deadLetter: true });
      expect(stream.error).toBeUndefined();

      const pgRows = await pgTypes();
      const myRows = await mysqlTypes();
      // Rows 2 and 12 hold NaN, infinities, a BC date and a year past 9999: MySQL has none of them.
      expect(myRows.map((row) => row.id)).toEqual(["1", "3", "11", "13"]);
      compareTypes(pgRows, myRows, ["1", "3", "11", "13"]);
      expect(myRows.find((row) => row.id === "11")!.c_text).toMatch(/!$/);

      const rejected = await pipeline.rejections();
      expect(rejected.map((r) => r.key.id)).toEqual([2, 12]);
      for (const { reason } of rejected) expect(reason).toBe(`${my.name}.types: column c_numeric_free (decimal(65,30)) cannot hold NaN: MySQL's DECIMAL has no NaN or infinity`);
    } finally {
      await pipeline.remove();
    }
  }, 120_000);

  it("creates the table from the neutral column model by the documented mapping", async () => {
    const columns = await my.sql<{ name: string; type: string; collation: string | null }>(
      "SELECT COLUMN_NAME AS name, COLUMN_TYPE AS type, COLLATION_NAME AS collation FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'types'",
      [my.name],
    );
    const type = (name: string): string => columns.find((c) => c.name === name)!.type;
    expect(type("id")).toBe("int(11)");
    expect(type("c_smallint")).toBe("smallint(6)");
    expect(type("c_bigint")).toBe("bigint(20)");
    expect(type("c_numeric")).toBe("decimal(20,4)");
    expect(type("c_numeric_free")).toBe("decimal(65,30)");
    expect(type("c_real")).toBe("float");
    expect(type("c_double")).toBe("double");
    expect(type("c_boolean")).toBe("tinyint(1)");
    expect(type("c_text")).toBe("longtext");
    expect(type("c_varchar")).toBe("varchar(20)");
    expect(type("c_char")).toBe("varchar(5)");
    expect(type("c_bytea")).toBe("longblob");
    expect(type("c_date")).toBe("date");
    expect(type("c_time")).toBe("time(6)");
    expect(type("c_timetz")).toBe("varchar(64)");
    expect(type("c_timestamp")).toBe("datetime(6)");
    expect(type("c_timestamptz")).toBe("datetime(6)");
    expect(type("c_interval")).toBe("varchar(64)");
    expect(type("c_uuid")).toBe("char(36)");
    expect(type("c_mood")).toBe("longtext");
    // MariaDB's JSON: LONGTEXT with a JSON_VALID check.
    const checks = await my.sql<{ clause: string }>("SELECT CHECK_CLAUSE AS clause FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = 'types'", [my.name]);
    const json = checks.map((c) => /json_valid\(`(\w+)`\)/.exec(c.clause)?.[1]).filter((c) => c !== undefined);
    expect(json).toEqual(expect.arrayContaining(["c_json", "c_jsonb", "a_integer", "a_nested", "a_bytea"]));
    // Text columns other than JSON ones (MariaDB gives those its own utf8mb4_bin) tell case and trailing spaces apart.
    expect(new Set(columns.filter((c) => c.collation !== null && !json.includes(c.name)).map((c) => c.collation))).toEqual(new Set(["utf8mb4_nopad_bin"]));
  });
});

// ---------------------------------------------------------------- absent columns and key changes

describe("updates without their TOASTed columns", () => {
  const big = (): string => randomBytes(30_000).toString("base64");

  it("leave the absent columns unchanged, and move them with a changed key (REPLICA IDENTITY DEFAULT and FULL)", async () => {
    const bigs = [big(), big(), big(), big()];
    await pg.sql("CREATE TABLE docs (id int PRIMARY KEY, small text, body text)");
    await pg.sql("INSERT INTO docs VALUES (1, 'a', $1), (2, 'b', $2), (3, 'c', $3), (4, 'd', $4)", bigs);
    const pipeline = await pgToMysql("mysink_toast", pg, my, ["public.docs"]);
    try {
      expect((await pipeline.runOnce()).error).toBeUndefined();
      // Default identity: the updates carry no body (unchanged, TOASTed).
      await pg.sql("UPDATE docs SET small = 'a2' WHERE id = 1");
      await pg.sql("UPDATE docs SET id = 20, small = 'b2' WHERE id = 2");
      // In one transaction: a key change, then an update of the moved row.
      await pg.sql("BEGIN; UPDATE docs SET id = 30 WHERE id = 3; UPDATE docs SET small = 'c2' WHERE id = 30; COMMIT");
      expect((await pipeline.runOnce()).error).toBeUndefined();
      await pg.sql("ALTER TABLE docs REPLICA IDENTITY FULL");
      await pg.sql("UPDATE docs SET id = 40, small = 'd2' WHERE id = 4");
      await pg.sql("UPDATE docs SET small = 'a3' WHERE id = 1");
      expect((await pipeline.runOnce()).error).toBeUndefined();

      const rows = await my.sql<{ id: number; small: string; body: string }>("SELECT id, small, body FROM docs ORDER BY id");
      expect(rows.map((r) => [r.id, r.small])).toEqual([
        [1, "a3"],
        [20, "b2"],
        [30, "c2"],
        [40, "d2"],
      ]);
      expect(rows.map((r) => r.body)).toEqual([bigs[0], bigs[1], bigs[2], bigs[3]]);
    } finally {
      await pipeline.remove();
    }
  }, 120_000);

  it("skips, where a write may be a replay, and otherwise rejects naming REPLICA IDENTITY FULL, an update whose row the target lost", async () => {
    await pg.sql("CREATE TABLE lost (id int PRIMARY KEY, small text, body text)");
    await pg.sql("INSERT INTO lost VALUES (1, 'a', $1), (2, 'b', $2), (3, 'c', $3)", [big(), big(), big()]);
    const pipeline = await pgToMysql("mysink_lost", pg, my, ["public.lost"]);
    try {
      expect((await pipeline.runOnce({ deadLetter: true })).error).toBeUndefined();
      await my.sql("DELETE FROM lost WHERE id IN (1, 2, 3)");
      await pg.sql("UPDATE lost SET small = 'a2' WHERE id = 1");
      await pg.sql("UPDATE lost SET id = 22 WHERE id = 2");
      // The position is kept in a file: after a crash these could be replays of updates a later change deleted.
      const replayable = await pipeline.runOnce({ deadLetter: true });
      expect(replayable.error).toBeUndefined();
      const skipped = replayable.log.lines.filter((line) => line.message.startsWith("skipped an update")).map((line) => line.message);
      expect(skipped).toEqual([
        expect.stringMatching(/lost \(id=1\): the update has no value for column body .*the target has no such row; writing the row would put NULL in it\. Have the source send whole rows: ALTER TABLE public\.lost REPLICA IDENTITY FULL/),
        expect.stringMatching(/lost \(id=22\): the update has no value for column body .*the target has no row id=2 \(the old key\) to take it from; .*REPLICA IDENTITY FULL/),
      ]);
      // The position kept in the target, in the same transaction (a first run copies the table again, having no
      // position there): no write is ever replayed, so the target lost the row.
      expect((await pipeline.runOnce({ checkpointInTarget: true })).error).toBeUndefined();
      await my.sql("DELETE FROM lost WHERE id = 3");
      await pg.sql("UPDATE lost SET small = 'c2' WHERE id = 3");
      const strict = await pipeline.runOnce({ checkpointInTarget: true });
      expect(strict.error?.message).toMatch(/lost \(id=3\): the update has no value for column body .*REPLICA IDENTITY FULL/);
      expect(await my.sql("SELECT id FROM lost WHERE id = 3 OR body IS NULL")).toEqual([]);
    } finally {
      await pipeline.remove();
    }
  }, 120_000);
});

// ---------------------------------------------------------------- refused values

describe("values the target refuses", () => {
  it("go to the dead-letter sink with the table, key and the server's reason; every other row is written", async () => {
    await pg.sql("CREATE TABLE narrow (id int PRIMARY KEY, code text, n int, d date, price numeric(12,4))");
    await pg.sql("INSERT INTO narrow SELECT g, 'c' || (g % 10), g % 100, date '2024-01-01' + g, g / 4.0 FROM generate_series(1, 500) AS g");
    await pg.sql("UPDATE narrow SET code = 'toolong' WHERE id = 7; UPDATE narrow SET n = 1000 WHERE id = 250; UPDATE narrow SET price = 1.2345 WHERE id = 499");
    await my.sql("CREATE TABLE narrow (id INT PRIMARY KEY, code VARCHAR(3), n TINYINT, d DATE, price DECIMAL(12,2))");
    const pipeline = await pgToMysql("mysink_refused", pg, my, ["public.narrow"]);
    try {
      expect((await pipeline.runOnce({ deadLetter: true, createTables: false, batchSize: 200 })).error).toBeUndefined();
      await pg.sql("INSERT INTO narrow VALUES (501, 'ok', 1, 'infinity', 1), (502, 'ok', 2, '2024-01-01', 2)");
      expect((await pipeline.runOnce({ deadLetter: true, createTables: false, batchSize: 200 })).error).toBeUndefined();
      const rejected = await pipeline.rejections();
      expect(rejected.map((r) => r.key.id)).toEqual([7, 250, 499, 501]);
      expect(rejected[0]!.reason).toMatch(/narrow \(id=7\): Data too long for column 'code'/);
      expect(rejected[1]!.reason).toMatch(/narrow \(id=250\): Out of range value for column 'n'/);
      expect(rejected[2]!.reason).toMatch(/column price \(decimal\(12,2\)\) cannot hold 1\.2345: it has more than 2 digits after the point/);
      expect(rejected[3]!.reason).toMatch(/narrow \(id=501\): Incorrect date value: 'infinity' for column .*`d`/);
      const rows = await my.sql<{ id: number; code: string; n: number; d: string; price: string }>("SELECT id, code, n, d, price FROM narrow ORDER BY id");
      expect(rows).toHaveLength(498);
      const source = await pg.sql<{ id: number; code: string; n: number; d: string; price: string }>(
        "SELECT id, code, n, to_char(d, 'YYYY-MM-DD') AS d, price::numeric(12,2)::text AS price FROM narrow WHERE id NOT IN (7, 250, 499, 501) ORDER BY id",
      );
      expect(rows.map((r) => ({ ...r }))).toEqual(source);
    } finally {
      await pipeline.remove();
    }
  }, 120_000);
});

// ---------------------------------------------------------------- schema changes

describe("a schema change while streaming", () => {
  it("adds the column (with the DEFAULT the existing rows hold) before the rows that carry it", async () => {
    // A flow that routes gets no schema changes: the PostgreSQL schema is named after the MySQL database instead.
    await pg.sql(`CREATE SCHEMA "${my.name}"; SET search_path = "${my.name}", public`);
    await pg.sql("CREATE TABLE growing (id int PRIMARY KEY, name text)");
    await pg.sql("INSERT INTO growing SELECT g, 'n' || g FROM generate_series(1, 10) AS g");
    const pipeline = await pgToMysql("mysink_growing", pg, my, [`${my.name}.growing`], { route: false });
    const run = pipeline.start();
    try {
      await eventually("the snapshot in MySQL", async () => run.failed() !== undefined || (await my.sql<{ n: string | number }>("SELECT COUNT(*) AS n FROM growing").catch(() => [{ n: 0 }]))[0]!.n.toString() === "10", 60_000);
      await pg.sql("ALTER TABLE growing ADD COLUMN note varchar(40) DEFAULT 'none', ADD COLUMN amount numeric(10,2)");
      await pg.sql("INSERT INTO growing VALUES (11, 'n11', 'hello', 12.50)");
      await pg.sql("UPDATE growing SET amount = 1.25 WHERE id = 2");
      await eventually("the new rows in MySQL", async () => run.failed() !== undefined || (await my.sql<{ n: string | number }>("SELECT COUNT(*) AS n FROM growing WHERE id = 11 OR amount IS NOT NULL").catch(() => [{ n: 0 }]))[0]!.n.toString() === "2", 60_000);
      expect(run.failed()).toBeUndefined();
      expect(await my.sql("SELECT id, name, note, amount FROM growing WHERE id IN (1, 2, 11) ORDER BY id")).toEqual([
        { id: 1, name: "n1", note: "none", amount: null },
        { id: 2, name: "n2", note: "none", amount: "1.25" },
        { id: 11, name: "n11", note: "hello", amount: "12.50" },
      ]);
      const types = await my.sql("SELECT COLUMN_NAME AS name, COLUMN_TYPE AS type, COLUMN_DEFAULT AS d FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'growing' AND COLUMN_NAME IN ('note', 'amount') ORDER BY ORDINAL_POSITION", [my.name]);
      expect(types).toEqual([
        { name: "note", type: "varchar(40)", d: "NULL" },
        { name: "amount", type: "decimal(10,2)", d: "NULL" },
      ]);
      expect(run.log.lines.some((line) => line.message === "added a column to a target table, as its source table did")).toBe(true);
    } finally {
      const failure = await run.stop();
      if (process.env.DTS_DEBUG) console.log(run.log.lines);
      expect(failure).toBeUndefined();
      await pipeline.remove();
    }
  }, 120_000);
});
