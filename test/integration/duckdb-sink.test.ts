/**
 * The duckdb sink against a real DuckDB file in a temporary folder: append and upsert semantics
 * across batches, replay, exact types, rejections, schema growth, and reopening the file.
 * Every check reads the file after the sink closed it, so each one also proves durability.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  DuckDBBlobValue,
  DuckDBDecimalValue,
  DuckDBInstance,
  DuckDBTimestampTZValue,
  DuckDBTimestampValue,
  type DuckDBValue,
} from "@duckdb/node-api";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createSink } from "../../src/connectors/duckdb/sink.js";
import { Decimal } from "../../src/model/decimal.js";
import type { ChangeEvent, Op } from "../../src/model/event.js";
import { decodeJson } from "../../src/model/json.js";
import { seqPosition } from "../../src/model/position.js";
import { Timestamp } from "../../src/model/timestamp.js";
import type { Row, Value } from "../../src/model/value.js";
import { tableFor } from "../../src/connectors/duckdb/names.js";
import type { Logger, Rejection, SchemaChange, SinkContext, SinkEvent, SinkWriter, TableSchema } from "../../src/runtime/contracts.js";

let folder: string;
let file: string;
let sequence = 0;

beforeEach(async () => {
  folder = await mkdtemp(join(tmpdir(), "dts-duckdb-"));
  file = join(folder, "test.duckdb");
  sequence = 0;
});

afterEach(async () => {
  await rm(folder, { recursive: true, force: true });
});

interface Logged {
  readonly level: string;
  readonly message: string;
}

function logger(into: Logged[] = []): Logger {
  const log = (level: string) => (message: string) => void into.push({ level, message });
  return { debug: log("debug"), info: log("info"), warn: log("warn"), error: log("error") };
}

async function openSink(options: Record<string, Value>, logged: Logged[] = [], extra: Partial<SinkContext> = {}): Promise<SinkWriter> {
  const sink = createSink({ pipeline: "test", name: "warehouse", options: { path: file, ...options }, eventOptions: {}, log: logger(logged), ...extra });
  await sink.start();
  return sink;
}

const commitTime = Timestamp.parse("2024-03-01T10:00:00.123456Z");

function change(op: Op, image: { before?: Row | null; after?: Row | null }, key: Row, target = "shop.orders"): SinkEvent {
  sequence++;
  const event: ChangeEvent = {
    op,
    before: image.before ?? null,
    after: image.after ?? null,
    key,
    source: {
      connector: "test",
      db: "shop",
      schema: "shop",
      table: target.split(".").pop()!,
      position: seqPosition(sequence),
      ts: new Timestamp(commitTime.epochMicros + BigInt(sequence), true),
    },
  };
  return { event, target };
}

const insert = (row: Row, target?: string) => change("insert", { after: row }, { id: row["id"]! }, target);
const read = (row: Row) => change("read", { after: row }, { id: row["id"]! });
const update = (before: Row | null, after: Row) => change("update", { before, after }, { id: after["id"]! });
const remove = (row: Row) => change("delete", { before: row }, { id: row["id"]! });

async function writeBatches(options: Record<string, Value>, ...batches: SinkEvent[][]): Promise<Rejection[][]> {
  return writeBatchesWith({}, [], options, ...batches);
}

async function writeBatchesWith(extra: Partial<SinkContext>, logged: Logged[], options: Record<string, Value>, ...batches: SinkEvent[][]): Promise<Rejection[][]> {
  const sink = await openSink(options, logged, extra);
  const rejections: Rejection[][] = [];
  try {
    for (const events of batches) rejections.push([...(await sink.write({ events }))]);
  } finally {
    await sink.close();
  }
  return rejections;
}

/** Opens the file on its own (no sink holds it) and returns the rows of a query. */
async function query(sql: string): Promise<Record<string, DuckDBValue>[]> {
  const instance = await DuckDBInstance.create(file);
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

/** The columns of a table (`schema.table`, or a table in `main`) and their types. */
async function columnTypes(name: string): Promise<Record<string, string>> {
  const [schema, table] = name.includes(".") ? name.split(".") : ["main", name];
  const rows = await query(`SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = '${schema}' AND table_name = '${table}' ORDER BY column_index`);
  return Object.fromEntries(rows.map((row) => [String(row["column_name"]), String(row["data_type"])]));
}

/** Rows as plain text per column, for comparing whole tables. */
async function dump(sql: string): Promise<string[][]> {
  const rows = await query(sql);
  return rows.map((row) => Object.values(row).map((value) => (value === null ? "NULL" : String(value))));
}

describe("duckdb sink, append mode", () => {
  it("keeps every change as a row with its operation, commit time and position", async () => {
    const first = [insert({ id: 1, status: "new" }), insert({ id: 2, status: "new" }), read({ id: 3, status: "old" })];
    const second = [update({ id: 1, status: "new" }, { id: 1, status: "paid" }), remove({ id: 2, status: "new" })];
    const rejections = await writeBatches({ mode: "append", table: "order_changes" }, first, second);
    expect(rejections).toEqual([[], []]);

    expect(await columnTypes("order_changes")).toEqual({
      id: "BIGINT",
      status: "VARCHAR",
      _op: "VARCHAR",
      _committed_at: "TIMESTAMP WITH TIME ZONE",
      _position: "VARCHAR",
      _absent: "VARCHAR[]",
    });
    const rows = await query(`SELECT * FROM order_changes ORDER BY CAST(_position AS INTEGER)`);
    expect(rows.map((row) => [row["id"], row["status"], row["_op"], row["_position"]])).toEqual([
      [1n, "new", "insert", "1"],
      [2n, "new", "insert", "2"],
      [3n, "old", "read", "3"],
      [1n, "paid", "update", "4"],
      [2n, "new", "delete", "5"],
    ]);
    expect((rows[4]!["_committed_at"] as DuckDBTimestampTZValue).micros).toBe(commitTime.epochMicros + 5n);
  });

  it("rejects a row that has a column of its own named like a change column", async () => {
    const rejections = await writeBatches({ mode: "append" }, [insert({ id: 1, _OP: "x" }), insert({ id: 2 })]);
    expect(rejections[0]).toEqual([
      { index: 0, reason: 'table "shop"."orders": the row has a column named "_op", which append mode adds itself' },
    ]);
    expect(await dump(`SELECT id, _op FROM shop.orders`)).toEqual([["2", "insert"]]);
  });

  it("names each table after the event's target when no table is set, and adds columns that appear later", async () => {
    await writeBatches(
      { mode: "append" },
      [insert({ id: 1 }, "shop.orders"), insert({ id: 7, name: "Ada" }, "shop.customers")],
      [insert({ id: 2, note: "gift" }, "shop.orders")],
    );
    expect(Object.keys(await columnTypes("shop.orders"))).toEqual(["id", "_op", "_committed_at", "_position", "_absent", "note"]);
    expect(await dump(`SELECT id, note FROM shop.orders ORDER BY id`)).toEqual([
      ["1", "NULL"],
      ["2", "gift"],
    ]);
    expect(await dump(`SELECT id, name FROM shop.customers`)).toEqual([["7", "Ada"]]);
  });
});

describe("duckdb sink, upsert mode", () => {
  const first = [insert({ id: 1, status: "new" }), insert({ id: 2, status: "new" }), insert({ id: 3, status: "new" })];
  const second = [
    update({ id: 1, status: "new" }, { id: 1, status: "paid" }),
    remove({ id: 2, status: "new" }),
    insert({ id: 4, status: "new" }),
    update({ id: 4, status: "new" }, { id: 4, status: "shipped" }),
    // Changed and then deleted within one batch: ends deleted.
    insert({ id: 5, status: "new" }),
    update({ id: 5, status: "new" }, { id: 5, status: "paid" }),
    remove({ id: 5, status: "paid" }),
    // Deleted and inserted again within one batch: ends present.
    remove({ id: 3, status: "new" }),
    insert({ id: 3, status: "again" }),
  ];
  const expected = [
    ["1", "paid"],
    ["3", "again"],
    ["4", "shipped"],
  ];

  it("keeps the latest row per key and applies deletes, in order within a batch", async () => {
    expect(await writeBatches({}, first, second)).toEqual([[], []]);
    expect(await dump(`SELECT id, status FROM shop.orders ORDER BY id`)).toEqual(expected);
    const key = await query(`SELECT constraint_column_names FROM duckdb_constraints() WHERE schema_name = 'shop' AND table_name = 'orders' AND constraint_type = 'PRIMARY KEY'`);
    expect(String(key[0]!["constraint_column_names"])).toBe("['id']");
  });

  it("leaves the same state when batches are replayed (at-least-once delivery)", async () => {
    await writeBatches({}, first, second, second, first, second);
    expect(await dump(`SELECT id, status FROM shop.orders ORDER BY id`)).toEqual(expected);
  });

  it("moves a row whose key an update changed", async () => {
    await writeBatches({}, [insert({ id: 1, status: "new" })], [update({ id: 1, status: "new" }, { id: 10, status: "new" })]);
    expect(await dump(`SELECT id, status FROM shop.orders ORDER BY id`)).toEqual([["10", "new"]]);
  });

  it("uses every key column and fills key columns the row lacks", async () => {
    const event = (op: Op, row: Row | null, key: Row) => change(op, op === "delete" ? { before: row } : { after: row }, key, "shop.lines");
    await writeBatches(
      {},
      [event("insert", { qty: 1 }, { order_id: 1, line: 1 }), event("insert", { qty: 2 }, { order_id: 1, line: 2 })],
      [event("update", { qty: 5 }, { order_id: 1, line: 2 }), event("delete", null, { order_id: 1, line: 1 })],
    );
    expect(await dump(`SELECT order_id, line, qty FROM shop.lines`)).toEqual([["1", "2", "5"]]);
  });

  it("rejects events without a key", async () => {
    const rejections = await writeBatches({}, [change("insert", { after: { a: 1 } }, {}), insert({ id: 1 })]);
    expect(rejections[0]).toEqual([{ index: 0, reason: expect.stringContaining("has no key") }]);
    expect(await dump(`SELECT id FROM shop.orders`)).toEqual([["1"]]);
  });
});

describe("duckdb sink types", () => {
  it("round-trips exact values", async () => {
    const row: Row = {
      id: 1,
      amount: new Decimal("12345678901234567890.12"),
      small: new Decimal("12.30"),
      big: 9223372036854775807n,
      huge: 170141183460469231731687303715884105727n,
      at: Timestamp.parse("2024-03-01T10:00:00.123456Z"),
      local: Timestamp.parse("1999-12-31T23:59:59.999999"),
      bytes: Buffer.from([0, 1, 2, 254, 255]),
      doc: { a: 1, big: 9007199254740993n, price: new Decimal("1.50"), tags: ["x", null, true] },
      ratio: 0.1,
      flag: true,
      name: "naïve ☃ \u0000 end",
      nothing: null,
    };
    await writeBatches({}, [insert(row)]);
    expect(await columnTypes("shop.orders")).toEqual({
      id: "BIGINT",
      amount: "DECIMAL(38,2)",
      small: "DECIMAL(38,2)",
      big: "BIGINT",
      huge: "HUGEINT",
      at: "TIMESTAMP WITH TIME ZONE",
      local: "TIMESTAMP",
      bytes: "BLOB",
      doc: "JSON",
      ratio: "DOUBLE",
      flag: "BOOLEAN",
      name: "VARCHAR",
      nothing: "VARCHAR",
    });
    const [stored] = await query(`SELECT * FROM shop.orders`);
    expect((stored!["amount"] as DuckDBDecimalValue).toString()).toBe("12345678901234567890.12");
    expect((stored!["small"] as DuckDBDecimalValue).toString()).toBe("12.30");
    expect(stored!["big"]).toBe(9223372036854775807n);
    expect(stored!["huge"]).toBe(170141183460469231731687303715884105727n);
    expect((stored!["at"] as DuckDBTimestampTZValue).micros).toBe((row["at"] as Timestamp).epochMicros);
    expect((stored!["local"] as DuckDBTimestampValue).micros).toBe((row["local"] as Timestamp).epochMicros);
    expect(Buffer.from((stored!["bytes"] as DuckDBBlobValue).bytes)).toEqual(row["bytes"]);
    expect(stored!["doc"]).toBe('{"a":1,"big":9007199254740993,"price":1.50,"tags":["x",null,true]}');
    expect(decodeJson(stored!["doc"] as string)).toEqual(row["doc"]);
    expect(stored!["ratio"]).toBe(0.1);
    expect(stored!["flag"]).toBe(true);
    expect(stored!["name"]).toBe(row["name"]);
    expect(stored!["nothing"]).toBeNull();
  });

  it("keeps decimals wider than DECIMAL(38) as exact text, with a warning", async () => {
    const logged: Logged[] = [];
    const sink = await openSink({}, logged);
    const wide = new Decimal("1234567890123456789012345678901234567890.5");
    await sink.write({ events: [insert({ id: 1, wide })] });
    await sink.close();
    expect((await columnTypes("shop.orders"))["wide"]).toBe("VARCHAR");
    expect(await dump(`SELECT wide FROM shop.orders`)).toEqual([[wide.toString()]]);
    expect(logged.filter((entry) => entry.level === "warn").map((entry) => entry.message)).toEqual([
      expect.stringContaining(`column "wide": a decimal wider than DuckDB's DECIMAL(38)`),
    ]);
  });

  it("rejects a value its column cannot hold and writes the batch's other events", async () => {
    const rejections = await writeBatches(
      {},
      [insert({ id: 1, amount: new Decimal("10.50") })],
      [
        insert({ id: 2, amount: new Decimal("2.25") }),
        insert({ id: 3, amount: "abc" }),
        insert({ id: 4, amount: new Decimal("4.00") }),
        insert({ id: 5, amount: Timestamp.parse("2024-01-01T00:00:00Z") }),
        insert({ id: 6, amount: null }),
      ],
    );
    expect(rejections).toEqual([
      [],
      [
        { index: 1, reason: 'table "shop"."orders", column "amount" (DECIMAL(38,2)) cannot hold string "abc"' },
        { index: 3, reason: 'table "shop"."orders", column "amount" (DECIMAL(38,2)) cannot hold timestamp "2024-01-01T00:00:00.000000Z"' },
      ],
    ]);
    expect(await dump(`SELECT id, amount FROM shop.orders ORDER BY id`)).toEqual([
      ["1", "10.50"],
      ["2", "2.25"],
      ["4", "4.00"],
      ["6", "NULL"],
    ]);
  });

  it("rejects what would lose exactness: an instant into a wall-clock column, a lone surrogate", async () => {
    const rejections = await writeBatches({}, [
      insert({ id: 1, at: Timestamp.parse("2024-01-01T00:00:00"), name: "ok" }),
      insert({ id: 2, at: Timestamp.parse("2024-01-01T00:00:00Z") }),
      insert({ id: 3, name: "bad \ud800" }),
      // A key column never widens: its type is the primary key's.
      insert({ id: new Decimal("4.5") }),
    ]);
    expect(rejections[0]!.map((rejection) => rejection.index)).toEqual([1, 2, 3]);
    expect(rejections[0]![0]!.reason).toContain("it is an instant (with a zone), the column a wall-clock time");
    expect(rejections[0]![1]!.reason).toContain("lone surrogate");
    expect(rejections[0]![2]!.reason).toBe('table "shop"."orders", column "id" (BIGINT) cannot hold decimal 4.5');
    expect(await dump(`SELECT id FROM shop.orders`)).toEqual([["1"]]);
  });

  it("widens a column when a later value needs it and the stored values still fit", async () => {
    const rejections = await writeBatches(
      {},
      [insert({ id: 1, price: 3, later: null, scaled: new Decimal("1.5"), count: 1, ratio: 1 })],
      [
        insert({ id: 2, price: new Decimal("3.25"), later: Timestamp.parse("2024-01-01T00:00:00Z"), scaled: new Decimal("1.125"), ratio: 0.5 }),
        insert({ id: 3, count: 18446744073709551615n }),
      ],
    );
    expect(rejections).toEqual([[], []]);
    expect(await columnTypes("shop.orders")).toMatchObject({
      price: "DECIMAL(38,2)",
      later: "TIMESTAMP WITH TIME ZONE",
      scaled: "DECIMAL(38,3)",
      count: "HUGEINT",
      ratio: "DOUBLE",
    });
    expect(await dump(`SELECT id, price, scaled, count FROM shop.orders ORDER BY id`)).toEqual([
      ["1", "3.00", "1.500", "1"],
      ["2", "3.25", "1.125", "NULL"],
      ["3", "NULL", "NULL", "18446744073709551615"],
    ]);
  });

  it("does not widen a column whose stored text would not fit", async () => {
    const rejections = await writeBatches({}, [insert({ id: 1, code: "A1" })], [insert({ id: 2, code: 7 })]);
    expect(rejections[1]).toEqual([{ index: 0, reason: 'table "shop"."orders", column "code" (VARCHAR) cannot hold integer 7' }]);
  });
});

describe("duckdb sink, absent columns (upsert mode)", () => {
  const big = (id: number) => `big value of row ${id} `.repeat(50);
  const stored = [insert({ id: 1, n: 0, big: big(1) }), insert({ id: 2, n: 0, big: big(2) }), insert({ id: 3, n: 0, big: big(3) })];
  /** An update that moved the row from `from` to `row.id`, sending only the old key (PostgreSQL's default replica identity). */
  const move = (from: number, row: Row) => change("update", { before: { id: from }, after: row }, { id: row["id"]! });
  const rows = () => dump(`SELECT id, n, big IS NULL, big FROM shop.orders ORDER BY id`);
  const row = (id: number, n: number, bigOf: number | null) => [String(id), String(n), String(bigOf === null), bigOf === null ? "NULL" : big(bigOf)];

  it("keeps the stored value of a column an update left out, also when the update moved the row", async () => {
    const rejections = await writeBatches({}, stored, [update(null, { id: 1, n: 1 }), move(2, { id: 20, n: 0 })]);
    expect(rejections).toEqual([[], []]);
    expect(await rows()).toEqual([row(1, 1, 1), row(3, 0, 3), row(20, 0, 2)]);
  });

  it("merges an insert and updates of it in one batch, and carries values along key changes within the batch", async () => {
    const rejections = await writeBatches({}, stored, [
      insert({ id: 5, n: 0, big: big(5) }),
      update(null, { id: 5, n: 1 }),
      move(5, { id: 50, n: 2 }),
      // A stored row: updated, moved, moved again and updated, all in one batch.
      update(null, { id: 1, n: 5 }),
      move(1, { id: 10, n: 5 }),
      move(10, { id: 11, n: 6 }),
      update(null, { id: 11, n: 7 }),
    ]);
    expect(rejections).toEqual([[], []]);
    expect(await rows()).toEqual([row(2, 0, 2), row(3, 0, 3), row(11, 7, 1), row(50, 2, 5)]);
  });

  it("moves a row as it was before the batch, even when its old key gets a new row in the same batch", async () => {
    const rejections = await writeBatches({}, stored, [move(1, { id: 10, n: 1 }), insert({ id: 1, n: 9, big: big(9) })]);
    expect(rejections).toEqual([[], []]);
    expect(await rows()).toEqual([row(1, 9, 9), row(2, 0, 2), row(3, 0, 3), row(10, 1, 1)]);
  });

  it("moves a row onto a key the batch deleted, replacing the stored row of that key whole", async () => {
    const rejections = await writeBatches({}, stored, [remove({ id: 2 }), move(1, { id: 2, n: 7 })]);
    expect(rejections).toEqual([[], []]);
    expect(await rows()).toEqual([row(2, 7, 1), row(3, 0, 3)]);
  });

  it("rejects an update that left a column out when there is no stored row to keep it from, and writes nothing for it", async () => {
    const rejections = await writeBatchesWith({ mayReplay: false }, [], {}, stored, [
      update(null, { id: 99, n: 1 }),
      move(98, { id: 97, n: 1 }),
      remove({ id: 3 }),
      update(null, { id: 3, n: 1 }),
      update(null, { id: 2, n: 2 }),
    ]);
    expect(rejections[1]!.map((rejection) => rejection.index)).toEqual([0, 1, 3]);
    for (const { reason } of rejections[1]!) {
      expect(reason).toContain(`leaves out column "big"`);
      expect(reason).toContain("ALTER TABLE shop.orders REPLICA IDENTITY FULL");
    }
    expect(rejections[1]![0]!.reason).toMatch(/^table "shop"."orders": the update of key \(id\)=\(99\) .* the row is not in the table/);
    expect(rejections[1]![1]!.reason).toContain("the row with its old key (id)=(98) is not in the table");
    expect(rejections[1]![2]!.reason).toContain("the row was deleted earlier in the same batch");
    expect(await rows()).toEqual([row(1, 0, 1), row(2, 2, 2)]);
  });

  it("skips such an update with a warning where writes may be replayed (a later change deleted the row), and writes nothing for it", async () => {
    const logged: Logged[] = [];
    const rejections = await writeBatchesWith({}, logged, {}, stored, [update(null, { id: 99, n: 1 }), move(98, { id: 97, n: 1 }), update(null, { id: 2, n: 2 })]);
    expect(rejections).toEqual([[], []]);
    const warnings = logged.filter((entry) => entry.level === "warn" && entry.message.startsWith("skipped an update that cannot be applied"));
    expect(warnings.map((entry) => entry.message)).toEqual([
      expect.stringMatching(/the update of key \(id\)=\(99\) .* the row is not in the table/),
      expect.stringContaining("the row with its old key (id)=(98) is not in the table"),
    ]);
    expect(await rows()).toEqual([row(1, 0, 1), row(2, 2, 2), row(3, 0, 3)]);
  });

  it("takes a complete update as the whole row, stored or not", async () => {
    const rejections = await writeBatches({}, stored, [update(null, { id: 1, n: 1, big: null }), update(null, { id: 4, n: 4, big: big(4) }), move(3, { id: 30, n: 3, big: big(30) })]);
    expect(rejections).toEqual([[], []]);
    expect(await rows()).toEqual([row(1, 1, null), row(2, 0, 2), row(4, 4, 4), row(30, 3, 30)]);
  });

  it("leaves the same rows when a batch of partial updates and key changes is replayed", async () => {
    const changes = [update(null, { id: 1, n: 1 }), move(2, { id: 20, n: 0 }), update(null, { id: 20, n: 2 })];
    expect(await writeBatches({}, stored, changes, changes)).toEqual([[], [], []]);
    expect(await rows()).toEqual([row(1, 1, 1), row(3, 0, 3), row(20, 2, 2)]);
  });

  it("keeps stored values of columns an insert lacks, unless the batch deleted the row first", async () => {
    await writeBatches({}, stored, [insert({ id: 1, n: 1 }), remove({ id: 2 }), insert({ id: 2, n: 2 })]);
    expect(await rows()).toEqual([row(1, 1, 1), row(2, 2, null), row(3, 0, 3)]);
  });
});

describe("duckdb sink, absent columns (append mode)", () => {
  it("names the columns a change left out in _absent, apart from real NULLs", async () => {
    await writeBatches({ mode: "append" }, [
      insert({ id: 1, n: 0, note: null, big: "large" }),
      update(null, { id: 1, n: 1, note: null }),
      change("delete", { before: { id: 1 } }, { id: 1 }),
    ]);
    expect(await dump(`SELECT _op, n, note, big, _absent FROM shop.orders ORDER BY CAST(_position AS INTEGER)`)).toEqual([
      ["insert", "0", "NULL", "large", "[]"],
      ["update", "1", "NULL", "NULL", "['big']"],
      ["delete", "NULL", "NULL", "NULL", "['n', 'note', 'big']"],
    ]);
  });

  it("adds _absent to a table written before it existed", async () => {
    const instance = await DuckDBInstance.create(file);
    const connection = await instance.connect();
    await connection.run(`CREATE TABLE changes (id BIGINT, _op VARCHAR, _committed_at TIMESTAMPTZ, _position VARCHAR)`);
    await connection.run(`INSERT INTO changes VALUES (1, 'insert', now(), '0')`);
    connection.closeSync();
    instance.closeSync();
    await writeBatches({ mode: "append", table: "changes" }, [update(null, { id: 1 })]);
    expect(await dump(`SELECT id, _absent FROM changes ORDER BY _position`)).toEqual([
      ["1", "NULL"],
      ["1", "[]"],
    ]);
  });
});

describe("duckdb sink, JSON", () => {
  /** A source that declares `doc` jsonb and `body` json, as the PostgreSQL source's describe does. */
  const describeSource = async (): Promise<TableSchema> => ({
    dialect: "postgres",
    columns: [
      { name: "id", type: "integer", nullable: false },
      { name: "doc", type: "jsonb", nullable: true },
      { name: "body", type: "json", nullable: true },
      { name: "title", type: "text", nullable: true },
    ],
    primaryKey: ["id"],
  });
  const documents: Value[] = ["just a string", 42, true, false, new Decimal("1.50"), 12345678901234567890n, [1, "a", null], { a: { b: [] } }, null, ""];

  it("puts every JSON value, scalars included, into a JSON column when the source declares json or jsonb", async () => {
    const events = documents.map((doc, i) => insert({ id: i + 1, doc, body: doc, title: "just a string" }));
    const sink = await openSink({}, [], { describeSource });
    expect(await sink.write({ events })).toEqual([]);
    await sink.close();
    expect(await columnTypes("shop.orders")).toEqual({ id: "BIGINT", doc: "JSON", body: "JSON", title: "VARCHAR" });
    const stored = await query(`SELECT id, doc, body, title, json_type(doc) AS kind FROM shop.orders ORDER BY id`);
    expect(stored.map((row) => row["doc"])).toEqual(['"just a string"', "42", "true", "false", "1.50", "12345678901234567890", '[1,"a",null]', '{"a":{"b":[]}}', null, '""']);
    expect(stored.map((row) => (row["doc"] === null ? null : decodeJson(row["doc"] as string)))).toEqual(documents);
    expect(stored.map((row) => row["body"])).toEqual(stored.map((row) => row["doc"]));
    expect(stored.map((row) => row["kind"])).toEqual(["VARCHAR", "UBIGINT", "BOOLEAN", "BOOLEAN", "DOUBLE", "UBIGINT", "ARRAY", "OBJECT", null, "VARCHAR"]);
    expect(stored.every((row) => row["title"] === "just a string")).toBe(true);
  });

  it("takes JSON scalars into a JSON column made by an earlier document, and rejects what JSON cannot hold", async () => {
    const rejections = await writeBatches({}, [insert({ id: 1, doc: { a: 1 } })], [
      insert({ id: 2, doc: "text" }),
      insert({ id: 3, doc: 7 }),
      insert({ id: 4, doc: Number.NaN }),
      insert({ id: 5, doc: Timestamp.parse("2024-01-01T00:00:00Z") }),
    ]);
    expect(rejections[1]!.map((rejection) => [rejection.index, rejection.reason])).toEqual([
      [2, 'table "shop"."orders", column "doc" (JSON) cannot hold float "NaN": JSON has no NaN or Infinity'],
      [3, 'table "shop"."orders", column "doc" (JSON) cannot hold timestamp "2024-01-01T00:00:00.000000Z"'],
    ]);
    expect(await dump(`SELECT id, doc FROM shop.orders ORDER BY id`)).toEqual([
      ["1", '{"a":1}'],
      ["2", '"text"'],
      ["3", "7"],
    ]);
  });
});

describe("duckdb sink table names", () => {
  it("maps each source table to its own DuckDB table, a schema per source schema", async () => {
    expect(tableFor("a.b_c")).toEqual({ schema: "a", table: "b_c" });
    expect(tableFor("a_b.c")).toEqual({ schema: "a_b", table: "c" });
    expect(tableFor("db.t.x")).toEqual({ schema: "db", table: "t.x" });
    expect(tableFor("orders")).toEqual({ schema: "main", table: "orders" });
    expect(tableFor("a.b_c", "everything")).toEqual({ schema: "main", table: "everything" });
    for (const mode of ["upsert", "append"]) {
      await rm(file, { force: true });
      const rejections = await writeBatches({ mode }, [insert({ id: 1, from: "a.b_c" }, "a.b_c"), insert({ id: 1, from: "a_b.c" }, "a_b.c")]);
      expect(rejections).toEqual([[]]);
      expect(await dump(`SELECT id, "from" FROM a.b_c UNION ALL SELECT id, "from" FROM a_b.c`)).toEqual([
        ["1", "a.b_c"],
        ["1", "a_b.c"],
      ]);
    }
  });

  it("refuses a second target for a table DuckDB takes as the same, such as one differing only in case", async () => {
    const rejections = await writeBatches({}, [insert({ id: 1 }, "Shop.Orders"), insert({ id: 2 }, "shop.orders"), insert({ id: 3 }, "Shop.Orders")]);
    expect(rejections[0]).toEqual([
      {
        index: 1,
        reason:
          'the targets "Shop.Orders" and "shop.orders" both name DuckDB table "shop"."orders" (DuckDB ignores case in names, and a target without a schema is in "main"); send one of them to another table with a route step',
      },
    ]);
    expect(await dump(`SELECT id FROM shop.orders ORDER BY id`)).toEqual([["1"], ["3"]]);
  });

  it("stops at a table the naming before schemas wrote, saying how to move it, and goes on once it is moved", async () => {
    const instance = await DuckDBInstance.create(file);
    const connection = await instance.connect();
    await connection.run(`CREATE TABLE shop_orders (id BIGINT PRIMARY KEY, status VARCHAR)`);
    await connection.run(`INSERT INTO shop_orders VALUES (1, 'old')`);
    connection.closeSync();
    instance.closeSync();
    const sink = await openSink({});
    let message = "";
    try {
      await sink.write({ events: [insert({ id: 2, status: "new" })] });
    } catch (error) {
      message = (error as Error).message;
    } finally {
      await sink.close();
    }
    expect(message).toContain(`the events of shop.orders now go to DuckDB table "shop"."orders"`);
    expect(message).toContain(`has table "main"."shop_orders", where earlier versions wrote them`);
    const move = /Move it with: (.*) Or,/.exec(message)![1]!;
    expect(move).toBe(
      `CREATE SCHEMA IF NOT EXISTS "shop"; CREATE TABLE "shop"."orders" AS FROM "main"."shop_orders"; ALTER TABLE "shop"."orders" ADD PRIMARY KEY ("id"); DROP TABLE "main"."shop_orders";`,
    );
    expect(await dump(`SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'shop'`)).toEqual([["0"]]);
    await query(move);
    expect(await writeBatches({}, [insert({ id: 2, status: "new" }), update(null, { id: 1 })])).toEqual([[]]);
    expect(await dump(`SELECT id, status FROM shop.orders ORDER BY id`)).toEqual([
      ["1", "old"],
      ["2", "new"],
    ]);
  });
});

describe("duckdb sink, schema changes", () => {
  const columns = (...list: [string, string][]) => list.map(([name, type]) => ({ name, type, nullable: true }));
  const schemaChange = (change: Omit<SchemaChange, "table" | "schema"> & { columns: SchemaChange["columns"]; schema: [string, string][]; table?: string }) => ({
    change: { ...change, table: change.table ?? "shop.orders", schema: { dialect: "postgres" as const, columns: columns(...change.schema), primaryKey: ["id"] } },
    target: change.table ?? "shop.orders",
  });

  it("adds the columns a source table gained before the rows that have them, typed from their declared types", async () => {
    const logged: Logged[] = [];
    const sink = await openSink({}, logged);
    await sink.write({ events: [insert({ id: 1, n: 1 })] });
    const added: [string, string][] = [
      ["note", "text"],
      ["amount", "numeric(12,2)"],
      ["doc", "jsonb"],
      ["at", "timestamp with time zone"],
      ["qty", "integer"],
      ["flags", "text[]"],
      ["mood", "mood"],
    ];
    const change = schemaChange({ schema: [["id", "integer"], ["n", "integer"], ...added], columns: added.map(([column, type]) => ({ kind: "added" as const, column, type })) });
    // A batch may carry changes and no events.
    expect(await sink.write({ events: [], schemaChanges: [change] })).toEqual([]);
    expect(await sink.write({ events: [insert({ id: 2, n: 2, note: null, amount: null, doc: "scalar", at: null, qty: null, flags: null, mood: "ok" })] })).toEqual([]);
    await sink.close();
    expect(await columnTypes("shop.orders")).toEqual({
      id: "BIGINT",
      n: "BIGINT",
      note: "VARCHAR",
      amount: "DECIMAL(38,2)",
      doc: "JSON",
      at: "TIMESTAMP WITH TIME ZONE",
      qty: "BIGINT",
      flags: "JSON",
      // No declared mapping (an enum): typed by its first value.
      mood: "VARCHAR",
    });
    expect(await dump(`SELECT id, doc, mood FROM shop.orders ORDER BY id`)).toEqual([
      ["1", "NULL", "NULL"],
      ["2", '"scalar"', "ok"],
    ]);
    expect(logged.filter((entry) => entry.level === "info").map((entry) => entry.message)).toContain('duckdb sink: table "shop"."orders": column "mood" will be added with the first value');
  });

  it("widens a column whose source type widened, and needs nothing for a narrower one", async () => {
    const sink = await openSink({});
    await sink.write({ events: [insert({ id: 1, amount: new Decimal("12.50"), qty: 3, code: 7 })] });
    const change = schemaChange({
      schema: [["id", "integer"], ["amount", "numeric(14,4)"], ["qty", "numeric(10,2)"], ["code", "smallint"]],
      columns: [
        { kind: "retyped", column: "amount", from: "numeric(12,2)", to: "numeric(14,4)" },
        { kind: "retyped", column: "qty", from: "integer", to: "numeric(10,2)" },
        { kind: "retyped", column: "code", from: "bigint", to: "smallint" },
      ],
    });
    // Before any row needs it: a batch of the change alone.
    expect(await sink.write({ events: [], schemaChanges: [change] })).toEqual([]);
    await sink.close();
    expect(await columnTypes("shop.orders")).toEqual({ id: "BIGINT", amount: "DECIMAL(38,4)", qty: "DECIMAL(38,2)", code: "BIGINT" });
    expect(await writeBatches({}, [insert({ id: 2, amount: new Decimal("1.1234"), qty: new Decimal("0.25"), code: 1 })])).toEqual([[]]);
    expect(await dump(`SELECT id, amount, qty, code FROM shop.orders ORDER BY id`)).toEqual([
      ["1", "12.5000", "3.00", "7"],
      ["2", "1.1234", "0.25", "1"],
    ]);
  });

  it("stops with the table, the column, both types and the fix when a column cannot follow its source type", async () => {
    const sink = await openSink({});
    await sink.write({ events: [insert({ id: 1, qty: 3, at: Timestamp.parse("2024-01-01T00:00:00") })] });
    const change = schemaChange({
      schema: [["id", "integer"], ["qty", "text"], ["at", "timestamp with time zone"]],
      columns: [
        { kind: "retyped", column: "qty", from: "integer", to: "text" },
        { kind: "retyped", column: "at", from: "timestamp without time zone", to: "timestamp with time zone" },
      ],
    });
    const failed = await sink.write({ events: [insert({ id: 2, qty: "three" })], schemaChanges: [change] }).then(
      () => undefined,
      (error: unknown) => error as Error & { retriable: boolean },
    );
    await sink.close();
    expect(failed?.retriable).toBe(false);
    expect(failed?.message).toBe(
      'duckdb sink "warehouse": source table shop.orders changed in a way table "shop"."orders" cannot follow: ' +
        'column "qty" of DuckDB table "shop"."orders" is BIGINT, and its source column changed type from integer to text: BIGINT does not hold all its values; ' +
        'change the column (DuckDB converts its values, or says which one it cannot): ALTER TABLE "shop"."orders" ALTER COLUMN "qty" TYPE VARCHAR; ' +
        'column "at" of DuckDB table "shop"."orders" is TIMESTAMP, and its source column changed type from timestamp without time zone to timestamp with time zone: TIMESTAMP does not hold all its values; ' +
        'change the column (DuckDB converts its values, or says which one it cannot): ALTER TABLE "shop"."orders" ALTER COLUMN "at" TYPE TIMESTAMPTZ; then run the pipeline again',
    );
    expect(await dump(`SELECT id, qty FROM shop.orders`)).toEqual([["1", "3"]]);
  });

  it("keeps a dropped or renamed column with its values, with a warning naming what changed", async () => {
    const logged: Logged[] = [];
    const sink = await openSink({}, logged);
    await sink.write({ events: [insert({ id: 1, old_name: "kept", gone: "kept too" })] });
    const change = schemaChange({
      schema: [["id", "integer"], ["new_name", "text"]],
      columns: [
        { kind: "renamed", from: "old_name", to: "new_name" },
        { kind: "dropped", column: "gone", type: "text" },
      ],
    });
    expect(await sink.write({ events: [update(null, { id: 1, new_name: "renamed" }), insert({ id: 2, new_name: "fresh" })], schemaChanges: [change] })).toEqual([]);
    await sink.close();
    expect(await dump(`SELECT id, old_name, gone, new_name FROM shop.orders ORDER BY id`)).toEqual([
      ["1", "kept", "kept too", "renamed"],
      ["2", "NULL", "NULL", "fresh"],
    ]);
    expect(logged.filter((entry) => entry.level === "warn").map((entry) => entry.message)).toEqual([
      'duckdb sink: source table shop.orders: column "old_name" was renamed to "new_name"; DuckDB table "shop"."orders" keeps column "old_name" with the values written so far, and column "new_name" holds the values from now on',
      'duckdb sink: source table shop.orders: column "gone" (text) was dropped; DuckDB table "shop"."orders" keeps its column "gone" with the values written so far (updates from now on leave it as it is, new rows leave it NULL)',
    ]);
  });

  it("says what a drop and an add may be, since a rename can arrive as both", async () => {
    const logged: Logged[] = [];
    const sink = await openSink({}, logged);
    await sink.write({ events: [insert({ id: 1, a: "x" })] });
    const change = schemaChange({ schema: [["id", "integer"], ["b", "text"]], columns: [{ kind: "dropped", column: "a", type: "text" }, { kind: "added", column: "b", type: "text" }] });
    await sink.write({ events: [], schemaChanges: [change] });
    await sink.close();
    expect(logged.filter((entry) => entry.level === "warn").map((entry) => entry.message)).toEqual([
      expect.stringContaining('column "a" (text) was dropped; DuckDB table "shop"."orders" keeps its column "a" with the values written so far (updates from now on leave it as it is, new rows leave it NULL); if it was renamed to "b" (a rename arrives as a drop and an add), the values so far stay in "a"'),
    ]);
    expect(Object.keys(await columnTypes("shop.orders"))).toEqual(["id", "a", "b"]);
  });

  it("warns that the table of a renamed source table is stale", async () => {
    const logged: Logged[] = [];
    const sink = await openSink({}, logged);
    await sink.write({ events: [insert({ id: 1 }, "shop.orders")] });
    const change = schemaChange({ table: "shop.purchases", renamedFrom: "shop.orders", schema: [["id", "integer"]], columns: [] });
    await sink.write({ events: [insert({ id: 2 }, "shop.purchases")], schemaChanges: [change] });
    await sink.close();
    expect(logged.filter((entry) => entry.level === "warn").map((entry) => entry.message)).toEqual([
      expect.stringContaining(
        'source table shop.orders was renamed to shop.purchases: its changes now go to DuckDB table "shop"."purchases", and table "shop"."orders" is stale',
      ),
    ]);
    expect(await dump(`SELECT (SELECT count(*) FROM shop.orders), (SELECT count(*) FROM shop.purchases)`)).toEqual([["1", "1"]]);
  });
});

describe("duckdb sink durability", () => {
  it("finds its data and tables again after the file is closed and reopened", async () => {
    await writeBatches({}, [insert({ id: 1, amount: new Decimal("1.10") })]);
    await writeBatches({}, [insert({ id: 2, amount: new Decimal("2.20") }), update({ id: 1 }, { id: 1, amount: new Decimal("1.11") })]);
    expect(await dump(`SELECT id, amount FROM shop.orders ORDER BY id`)).toEqual([
      ["1", "1.11"],
      ["2", "2.20"],
    ]);
  });

  it("resolves a relative path against the pipeline file's folder", async () => {
    const sink = createSink({ pipeline: "test", name: "warehouse", options: { path: "test.duckdb" }, eventOptions: {}, log: logger(), baseDir: folder });
    await sink.start();
    await sink.write({ events: [insert({ id: 1 })] });
    await sink.close();
    expect(await dump(`SELECT id FROM shop.orders`)).toEqual([["1"]]);
  });

  it("lets two sinks of one process share a file", async () => {
    const orders = await openSink({ mode: "append", table: "a" });
    const copies = await openSink({ mode: "upsert", table: "b" });
    await Promise.all([orders.write({ events: [insert({ id: 1 })] }), copies.write({ events: [insert({ id: 1 })] })]);
    await orders.close();
    await copies.write({ events: [insert({ id: 2 })] });
    await copies.close();
    expect(await dump(`SELECT (SELECT count(*) FROM a), (SELECT count(*) FROM b)`)).toEqual([["1", "2"]]);
  });

  it("refuses an upsert into an existing table without a primary key", async () => {
    await writeBatches({ mode: "append", table: "t" }, [insert({ id: 1 })]);
    const sink = await openSink({ mode: "upsert", table: "t" });
    await expect(sink.write({ events: [insert({ id: 2 })] })).rejects.toThrow(/has no primary key, which upsert mode needs/);
    await sink.close();
  });
});

describe("duckdb sink throughput", () => {
  const events = 100_000;
  const batchSize = 10_000;

  function shopRow(id: number, version: number): Row {
    return {
      id,
      customer_id: id % 997,
      amount: new Decimal(`${id % 100000}.${String(version % 100).padStart(2, "0")}`),
      status: version === 0 ? "new" : "paid",
      created_at: new Timestamp(1_700_000_000_000_000n + BigInt(id), true),
    };
  }

  async function measure(mode: "append" | "upsert", make: (i: number) => SinkEvent): Promise<number> {
    const batches: SinkEvent[][] = [];
    for (let start = 0; start < events; start += batchSize) {
      batches.push(Array.from({ length: batchSize }, (_, i) => make(start + i)));
    }
    const sink = await openSink({ mode, table: "bench" });
    const began = performance.now();
    for (const batch of batches) expect(await sink.write({ events: batch })).toEqual([]);
    const seconds = (performance.now() - began) / 1000;
    await sink.close();
    const rate = Math.round(events / seconds);
    console.log(`duckdb sink ${mode}: ${events} events in ${seconds.toFixed(2)} s = ${rate} rows/s`);
    return rate;
  }

  it("appends 100k events", async () => {
    await measure("append", (i) => insert(shopRow(i, 0)));
    expect(await dump(`SELECT count(*) FROM bench`)).toEqual([[String(events)]]);
  });

  it("upserts 100k events (inserts, then updates and deletes of the same keys)", async () => {
    const keys = events / 2;
    await measure("upsert", (i) => {
      if (i < keys) return insert(shopRow(i, 0));
      const id = i - keys;
      return id % 10 === 0 ? remove(shopRow(id, 0)) : update(shopRow(id, 0), shopRow(id, 1));
    });
    expect(await dump(`SELECT count(*), count(*) FILTER (WHERE status = 'paid') FROM bench`)).toEqual([[String(keys * 0.9), String(keys * 0.9)]]);
  });
});
