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
import type { Logger, Rejection, SinkEvent, SinkWriter } from "../../src/runtime/contracts.js";

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

async function openSink(options: Record<string, Value>, logged: Logged[] = []): Promise<SinkWriter> {
  const sink = createSink({ pipeline: "test", name: "warehouse", options: { path: file, ...options }, eventOptions: {}, log: logger(logged) });
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
  const sink = await openSink(options);
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

async function columnTypes(table: string): Promise<Record<string, string>> {
  const rows = await query(`SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = '${table}' ORDER BY column_index`);
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
      { index: 0, reason: 'table "shop_orders": the row has a column named "_op", which append mode adds itself' },
    ]);
    expect(await dump(`SELECT id, _op FROM shop_orders`)).toEqual([["2", "insert"]]);
  });

  it("names each table after the event's target when no table is set, and adds columns that appear later", async () => {
    await writeBatches(
      { mode: "append" },
      [insert({ id: 1 }, "shop.orders"), insert({ id: 7, name: "Ada" }, "shop.customers")],
      [insert({ id: 2, note: "gift" }, "shop.orders")],
    );
    expect(Object.keys(await columnTypes("shop_orders"))).toEqual(["id", "_op", "_committed_at", "_position", "note"]);
    expect(await dump(`SELECT id, note FROM shop_orders ORDER BY id`)).toEqual([
      ["1", "NULL"],
      ["2", "gift"],
    ]);
    expect(await dump(`SELECT id, name FROM shop_customers`)).toEqual([["7", "Ada"]]);
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
    expect(await dump(`SELECT id, status FROM shop_orders ORDER BY id`)).toEqual(expected);
    const key = await query(`SELECT constraint_column_names FROM duckdb_constraints() WHERE table_name = 'shop_orders' AND constraint_type = 'PRIMARY KEY'`);
    expect(String(key[0]!["constraint_column_names"])).toBe("['id']");
  });

  it("leaves the same state when batches are replayed (at-least-once delivery)", async () => {
    await writeBatches({}, first, second, second, first, second);
    expect(await dump(`SELECT id, status FROM shop_orders ORDER BY id`)).toEqual(expected);
  });

  it("moves a row whose key an update changed", async () => {
    await writeBatches({}, [insert({ id: 1, status: "new" })], [update({ id: 1, status: "new" }, { id: 10, status: "new" })]);
    expect(await dump(`SELECT id, status FROM shop_orders ORDER BY id`)).toEqual([["10", "new"]]);
  });

  it("uses every key column and fills key columns the row lacks", async () => {
    const event = (op: Op, row: Row | null, key: Row) => change(op, op === "delete" ? { before: row } : { after: row }, key, "shop.lines");
    await writeBatches(
      {},
      [event("insert", { qty: 1 }, { order_id: 1, line: 1 }), event("insert", { qty: 2 }, { order_id: 1, line: 2 })],
      [event("update", { qty: 5 }, { order_id: 1, line: 2 }), event("delete", null, { order_id: 1, line: 1 })],
    );
    expect(await dump(`SELECT order_id, line, qty FROM shop_lines`)).toEqual([["1", "2", "5"]]);
  });

  it("rejects events without a key", async () => {
    const rejections = await writeBatches({}, [change("insert", { after: { a: 1 } }, {}), insert({ id: 1 })]);
    expect(rejections[0]).toEqual([{ index: 0, reason: expect.stringContaining("has no key") }]);
    expect(await dump(`SELECT id FROM shop_orders`)).toEqual([["1"]]);
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
    expect(await columnTypes("shop_orders")).toEqual({
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
    const [stored] = await query(`SELECT * FROM shop_orders`);
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
    expect((await columnTypes("shop_orders"))["wide"]).toBe("VARCHAR");
    expect(await dump(`SELECT wide FROM shop_orders`)).toEqual([[wide.toString()]]);
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
        { index: 1, reason: 'table "shop_orders", column "amount" (DECIMAL(38,2)) cannot hold string "abc"' },
        { index: 3, reason: 'table "shop_orders", column "amount" (DECIMAL(38,2)) cannot hold timestamp "2024-01-01T00:00:00.000000Z"' },
      ],
    ]);
    expect(await dump(`SELECT id, amount FROM shop_orders ORDER BY id`)).toEqual([
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
    expect(rejections[0]![2]!.reason).toBe('table "shop_orders", column "id" (BIGINT) cannot hold decimal 4.5');
    expect(await dump(`SELECT id FROM shop_orders`)).toEqual([["1"]]);
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
    expect(await columnTypes("shop_orders")).toMatchObject({
      price: "DECIMAL(38,2)",
      later: "TIMESTAMP WITH TIME ZONE",
      scaled: "DECIMAL(38,3)",
      count: "HUGEINT",
      ratio: "DOUBLE",
    });
    expect(await dump(`SELECT id, price, scaled, count FROM shop_orders ORDER BY id`)).toEqual([
      ["1", "3.00", "1.500", "1"],
      ["2", "3.25", "1.125", "NULL"],
      ["3", "NULL", "NULL", "18446744073709551615"],
    ]);
  });

  it("does not widen a column whose stored text would not fit", async () => {
    const rejections = await writeBatches({}, [insert({ id: 1, code: "A1" })], [insert({ id: 2, code: 7 })]);
    expect(rejections[1]).toEqual([{ index: 0, reason: 'table "shop_orders", column "code" (VARCHAR) cannot hold integer 7' }]);
  });
});

describe("duckdb sink durability", () => {
  it("finds its data and tables again after the file is closed and reopened", async () => {
    await writeBatches({}, [insert({ id: 1, amount: new Decimal("1.10") })]);
    await writeBatches({}, [insert({ id: 2, amount: new Decimal("2.20") }), update({ id: 1 }, { id: 1, amount: new Decimal("1.11") })]);
    expect(await dump(`SELECT id, amount FROM shop_orders ORDER BY id`)).toEqual([
      ["1", "1.11"],
      ["2", "2.20"],
    ]);
  });

  it("resolves a relative path against the pipeline file's folder", async () => {
    const sink = createSink({ pipeline: "test", name: "warehouse", options: { path: "test.duckdb" }, eventOptions: {}, log: logger(), baseDir: folder });
    await sink.start();
    await sink.write({ events: [insert({ id: 1 })] });
    await sink.close();
    expect(await dump(`SELECT id FROM shop_orders`)).toEqual([["1"]]);
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
