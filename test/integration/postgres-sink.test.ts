/**
 * The PostgreSQL sink against the real server, with both upsert methods: what a write does to
 * the target table (upserts, deletes, key changes, per-key order within a batch), that a
 * replayed batch changes nothing, that a value the column refuses rejects that event alone,
 * that create_tables copies types and primary key, and that checkpoints commit with the data.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Decimal } from "../../src/model/decimal.js";
import { Timestamp } from "../../src/model/timestamp.js";
import { framesOf } from "../../src/connectors/postgres/copy-wire.js";
import { PostgresSink, type UpsertMethod } from "../../src/connectors/postgres/sink.js";
import { ConnectorError, type BulkRows, type SinkBatch, type SinkEvent, type SinkSchemaChange, type TableSchema } from "../../src/runtime/contracts.js";
import { createDatabase, event, silentLog, sinkEvents, type TestDatabase } from "./postgres-sink-helpers.js";

function sinkFor(db: TestDatabase, options: Partial<ConstructorParameters<typeof PostgresSink>[0]> = {}): PostgresSink {
  return new PostgresSink({ url: db.url, createTables: false, batchSize: 1000, pipeline: "test", name: "target", log: silentLog, ...options });
}

async function rows(db: TestDatabase, table: string, order = "id"): Promise<Record<string, unknown>[]> {
  return db.sql(`SELECT * FROM ${table} ORDER BY ${order}`);
}

describe.each<UpsertMethod>(["unnest", "copy"])("postgres sink (%s)", (method) => {
  let db: TestDatabase;
  let sink: PostgresSink;

  beforeAll(async () => {
    db = await createDatabase(`sink_${method}`);
    await db.sql(`CREATE TABLE public.items (id integer PRIMARY KEY, name varchar(3), qty integer NOT NULL DEFAULT 0, price numeric(10,2))`);
    await db.sql(`CREATE SCHEMA other; CREATE TABLE other.pairs (a int, b text, v text, PRIMARY KEY (a, b))`);
    sink = sinkFor(db, { method });
    await sink.start();
  });

  afterAll(async () => {
    await sink?.close();
    await db?.drop();
  });

  const item = (id: number, name: string, qty = 1, price: Decimal | null = null) => ({ id, name, qty, price });

  it("upserts inserts, reads and updates by primary key, and deletes by key", async () => {
    await db.sql("TRUNCATE public.items");
    const rejections = await sink.write({
      events: sinkEvents([
        event("read", "public.items", { after: item(1, "a"), key: { id: 1 } }),
        event("insert", "public.items", { after: item(2, "b", 2, new Decimal("12.30")), key: { id: 2 } }),
        event("insert", "public.items", { after: item(3, "c"), key: { id: 3 } }),
      ]),
    });
    expect(rejections).toEqual([]);
    await sink.write({
      events: sinkEvents([
        event("update", "public.items", { after: item(1, "A", 10), key: { id: 1 } }),
        event("delete", "public.items", { before: { id: 3 }, key: { id: 3 } }),
        event("insert", "public.items", { after: item(4, "d"), key: { id: 4 } }),
      ]),
    });
    expect(await rows(db, "public.items")).toEqual([
      { id: 1, name: "A", qty: 10, price: null },
      { id: 2, name: "b", qty: 2, price: "12.30" },
      { id: 4, name: "d", qty: 1, price: null },
    ]);
  });

  it("turns an update that changes the key into a delete of the old key and an insert", async () => {
    await db.sql("TRUNCATE public.items");
    await sink.write({ events: sinkEvents([event("insert", "public.items", { after: item(1, "a"), key: { id: 1 } })]) });
    await sink.write({
      events: sinkEvents([event("update", "public.items", { before: item(1, "a"), after: item(5, "a", 7), key: { id: 5 } })]),
    });
    expect(await rows(db, "public.items")).toEqual([{ id: 5, name: "a", qty: 7, price: null }]);
  });

  it("keeps per-key order within a batch: last write wins, delete then insert, key swaps", async () => {
    await db.sql("TRUNCATE public.items");
    await sink.write({
      events: sinkEvents([
        event("insert", "public.items", { after: item(1, "a"), key: { id: 1 } }),
        event("update", "public.items", { after: item(1, "b"), key: { id: 1 } }),
        event("update", "public.items", { after: item(1, "c"), key: { id: 1 } }),
        event("insert", "public.items", { after: item(2, "x"), key: { id: 2 } }),
        event("delete", "public.items", { before: { id: 2 }, key: { id: 2 } }),
        event("insert", "public.items", { after: item(2, "y"), key: { id: 2 } }),
        event("insert", "public.items", { after: item(3, "z"), key: { id: 3 } }),
        event("delete", "public.items", { before: { id: 3 }, key: { id: 3 } }),
        // 4 moves to 6, and a new 4 arrives after it.
        event("insert", "public.items", { after: item(4, "p"), key: { id: 4 } }),
        event("update", "public.items", { before: item(4, "p"), after: item(6, "p"), key: { id: 6 } }),
        event("insert", "public.items", { after: item(4, "q"), key: { id: 4 } }),
      ]),
    });
    expect(await rows(db, "public.items")).toEqual([
      { id: 1, name: "c", qty: 1, price: null },
      { id: 2, name: "y", qty: 1, price: null },
      { id: 4, name: "q", qty: 1, price: null },
      { id: 6, name: "p", qty: 1, price: null },
    ]);
  });

  it("merges an update without some columns (unchanged TOAST) into the row", async () => {
    await db.sql("TRUNCATE public.items");
    await sink.write({
      events: sinkEvents([
        event("insert", "public.items", { after: item(1, "a", 5, new Decimal("1.00")), key: { id: 1 } }),
        event("update", "public.items", { after: { id: 1, qty: 6 }, key: { id: 1 } }),
      ]),
    });
    await sink.write({ events: sinkEvents([event("update", "public.items", { after: { id: 1, qty: 7 }, key: { id: 1 } })]) });
    expect(await rows(db, "public.items")).toEqual([{ id: 1, name: "a", qty: 7, price: "1.00" }]);
  });

  it("leaves the same rows when a batch is replayed (idempotent)", async () => {
    await db.sql("TRUNCATE public.items");
    const batch = {
      events: sinkEvents([
        event("insert", "public.items", { after: item(1, "a"), key: { id: 1 } }),
        event("insert", "public.items", { after: item(2, "b"), key: { id: 2 } }),
        event("update", "public.items", { after: item(1, "c", 3), key: { id: 1 } }),
        event("delete", "public.items", { before: { id: 2 }, key: { id: 2 } }),
      ]),
    };
    await sink.write(batch);
    const once = await rows(db, "public.items");
    await sink.write(batch);
    await sink.write(batch);
    expect(await rows(db, "public.items")).toEqual(once);
    expect(once).toEqual([{ id: 1, name: "c", qty: 3, price: null }]);
  });

  it("upserts snapshot rows whose keys exist already (a chunk replayed after a crash)", async () => {
    await db.sql("TRUNCATE public.items");
    const reads = (from: number, to: number, name: string) => {
      const events = [];
      for (let id = from; id <= to; id++) events.push(event("read", "public.items", { after: item(id, name), key: { id } }));
      return sinkEvents(events);
    };
    await sink.write({ events: reads(1, 100, "a") });
    await sink.write({ events: reads(50, 150, "b") });
    await sink.write({ events: reads(151, 200, "c") });
    const names = await db.sql<{ name: string; n: string }>("SELECT name, count(*) AS n FROM public.items GROUP BY name ORDER BY name");
    expect(names).toEqual([
      { name: "a", n: "49" },
      { name: "b", n: "101" },
      { name: "c", n: "50" },
    ]);
  });

  it("rejects only the events whose values the columns refuse, naming table, column and value", async () => {
    await db.sql("TRUNCATE public.items");
    const events: SinkEvent[] = [];
    for (let id = 1; id <= 200; id++) events.push(...sinkEvents([event("insert", "public.items", { after: item(id, "ok"), key: { id } })]));
    events[17] = sinkEvents([event("insert", "public.items", { after: { id: 18, name: "abcd", qty: 1, price: null }, key: { id: 18 } })])[0]!;
    events[101] = sinkEvents([event("insert", "public.items", { after: { id: 102, name: "x", qty: "abc", price: null }, key: { id: 102 } })])[0]!;
    events[150] = sinkEvents([event("insert", "public.items", { after: { id: 151, name: "x", qty: null, price: null }, key: { id: 151 } })])[0]!;
    events[170] = sinkEvents([event("insert", "public.items", { after: { id: 171, name: "x", price: new Decimal("123456789.5") }, key: { id: 171 } })])[0]!;
    events[180] = sinkEvents([event("insert", "public.items", { after: { id: 181, name: "x", qty: { a: 1 } }, key: { id: 181 } })])[0]!;
    const rejections = await sink.write({ events });
    expect(rejections.map((r) => r.index)).toEqual([17, 101, 150, 170, 180]);
    expect(rejections[0]!.reason).toMatch(/^public\.items \(id=18\), column name: value too long for type character varying\(3\) \(value "abcd"\)/);
    expect(rejections[1]!.reason).toMatch(/^public\.items \(id=102\), column qty: invalid input syntax for type integer: "abc"/);
    expect(rejections[2]!.reason).toMatch(/^public\.items \(id=151\), column qty: null value in column "qty"/);
    expect(rejections[3]!.reason).toMatch(/^public\.items \(id=171\), column price: numeric field overflow/);
    expect(rejections[4]!.reason).toBe("public.items: column qty: a record cannot go into a column of type integer");
    const [{ count }] = await db.sql<{ count: string }>("SELECT count(*) FROM public.items");
    expect(Number(count)).toBe(195);
    // The same among updates (encoded while planning) is rejected before anything is sent.
    const updates = await sink.write({
      events: sinkEvents([
        event("update", "public.items", { after: item(1, "u"), key: { id: 1 } }),
        event("update", "public.items", { after: { id: 2, qty: [1] }, key: { id: 2 } }),
      ]),
    });
    expect(updates).toEqual([{ index: 1, reason: "public.items: column qty: a list cannot go into a column of type integer" }]);
  });

  it("stops on a row with a column the table lacks (create_tables off), naming the statement to run, and writes nothing", async () => {
    await db.sql("TRUNCATE public.items");
    const error = await sink
      .write({
        events: sinkEvents([
          event("insert", "public.items", { after: item(1, "a"), key: { id: 1 } }),
          event("insert", "public.items", { after: { id: 2, name: "x", nope: 1, also: "y" }, key: { id: 2 } }),
        ]),
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectorError);
    expect((error as ConnectorError).retriable).toBe(false);
    expect((error as Error).message).toBe(
      "sink target: target table public.items has no columns nope, also, which rows of public.items carry (added to the source since, or made by a step); " +
        'with create_tables: false the sink changes no table: run ALTER TABLE "public"."items" ADD COLUMN IF NOT EXISTS "nope" bigint; ' +
        'ALTER TABLE "public"."items" ADD COLUMN IF NOT EXISTS "also" text; and start the pipeline again, or set create_tables: true',
    );
    expect(await rows(db, "public.items")).toEqual([]);
  });

  it("applies a write larger than batch_size in several statements of one transaction", async () => {
    await db.sql("TRUNCATE public.items");
    const small = sinkFor(db, { method, batchSize: 7 });
    await small.start();
    const events = [];
    for (let id = 1; id <= 50; id++) events.push(event("insert", "public.items", { after: item(id, "a"), key: { id } }));
    await small.write({ events: sinkEvents(events) });
    const updates = [];
    for (let id = 1; id <= 50; id++) {
      updates.push(event(id % 5 === 0 ? "delete" : "update", "public.items", id % 5 === 0 ? { before: { id }, key: { id } } : { after: item(id, "b", id), key: { id } }));
    }
    const rejections = await small.write({ events: sinkEvents(updates), checkpoints: { src: { position: { kind: "pg-lsn", token: "0/1" } } } });
    await small.close();
    expect(rejections).toEqual([]);
    const result = await rows(db, "public.items");
    expect(result).toHaveLength(40);
    expect(result.every((r) => r.name === "b" && r.qty === r.id)).toBe(true);
  });

  it("writes composite keys and other schemas, routed by target", async () => {
    const events = [
      event("insert", "x.y", { after: { a: 1, b: "x", v: "1" }, key: { a: 1, b: "x" } }),
      event("insert", "x.y", { after: { a: 1, b: "y", v: "2" }, key: { a: 1, b: "y" } }),
      event("update", "x.y", { after: { a: 1, b: "x", v: "3" }, key: { a: 1, b: "x" } }),
      event("delete", "x.y", { before: { a: 1, b: "y" }, key: { a: 1, b: "y" } }),
    ];
    await sink.write({ events: sinkEvents(events, "other.pairs") });
    expect(await rows(db, "other.pairs", "a, b")).toEqual([{ a: 1, b: "x", v: "3" }]);
  });

  it("stores checkpoints in the same transaction, and not when an event was rejected", async () => {
    await db.sql("TRUNCATE public.items");
    const checkpoint = { position: { kind: "pg-lsn", token: "0/16B3748" }, state: { snapshot: { table: "public.items", lastKey: [5] } } };
    await sink.write({ events: sinkEvents([event("insert", "public.items", { after: item(1, "a"), key: { id: 1 } })]), checkpoints: { src: checkpoint } });
    expect(await sink.checkpoints.load()).toEqual({ src: checkpoint });
    // An empty batch still moves the position.
    const later = { position: { kind: "pg-lsn", token: "0/16B4000" } };
    await sink.write({ events: [], checkpoints: { src: later } });
    expect(await sink.checkpoints.load()).toEqual({ src: later });
    const rejected = await sink.write({
      events: sinkEvents([event("insert", "public.items", { after: { id: 2, name: "toolong" }, key: { id: 2 } })]),
      checkpoints: { src: { position: { kind: "pg-lsn", token: "0/17000000" } } },
    });
    expect(rejected).toHaveLength(1);
    expect(await sink.checkpoints.load()).toEqual({ src: later });
    const [{ pipeline, updated_at }] = await db.sql("SELECT pipeline, updated_at FROM dts.checkpoints");
    expect(pipeline).toBe("test");
    expect(updated_at).toBeInstanceOf(Date);
  });

  it("rolls back the data with the checkpoint when the transaction fails", async () => {
    await db.sql("TRUNCATE public.items");
    await db.sql("CREATE OR REPLACE FUNCTION public.refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused' USING ERRCODE = '42501'; END $$");
    await db.sql("CREATE CONSTRAINT TRIGGER refuse_999 AFTER INSERT ON public.items DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.id = 999) EXECUTE FUNCTION public.refuse()");
    const before = await sink.checkpoints.load();
    await expect(
      sink.write({
        events: sinkEvents([
          event("insert", "public.items", { after: item(998, "a"), key: { id: 998 } }),
          event("insert", "public.items", { after: item(999, "b"), key: { id: 999 } }),
        ]),
        checkpoints: { src: { position: { kind: "pg-lsn", token: "1/0" } } },
      }),
    ).rejects.toThrow(/refused/);
    await db.sql("DROP TRIGGER refuse_999 ON public.items");
    expect(await rows(db, "public.items")).toEqual([]);
    expect(await sink.checkpoints.load()).toEqual(before);
    // The session is still usable after the failure.
    await sink.write({ events: sinkEvents([event("insert", "public.items", { after: item(1, "a"), key: { id: 1 } })]) });
    expect(await rows(db, "public.items")).toHaveLength(1);
  });

  it("fails (not retriable) on a missing table when create_tables is off, naming table and server", async () => {
    const error = await sink
      .write({ events: sinkEvents([event("insert", "public.nowhere", { after: { id: 1 }, key: { id: 1 } })]) })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectorError);
    expect((error as ConnectorError).retriable).toBe(false);
    expect((error as Error).message).toContain(`table public.nowhere does not exist on postgres://postgres@127.0.0.1:5432/${db.name}`);
  });

  it("fails (not retriable) when the user lacks a privilege, saying so", async () => {
    const role = `${db.name}_reader`;
    await db.sql(`CREATE ROLE "${role}" LOGIN`);
    const reader = sinkFor({ ...db, url: db.url.replace("postgres://postgres@", `postgres://${role}@`) }, { method });
    try {
      await reader.start();
      const error = await reader.write({ events: sinkEvents([event("insert", "public.items", { after: item(1, "a"), key: { id: 1 } })]) }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConnectorError);
      expect((error as ConnectorError).retriable).toBe(false);
      expect((error as Error).message).toMatch(/permission denied for table items \[42501\]; grant the user the privilege/);
    } finally {
      await reader.close();
      await db.sql(`DROP OWNED BY "${role}"; DROP ROLE "${role}"`);
    }
  });

  it("reports a connection lost during a write as retriable, and reconnects", async () => {
    await db.sql("TRUNCATE public.items");
    await db.sql("CREATE OR REPLACE FUNCTION public.die() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END $$");
    await db.sql("CREATE TRIGGER die_777 BEFORE INSERT ON public.items FOR EACH ROW WHEN (NEW.id = 777) EXECUTE FUNCTION public.die()");
    const error = await sink.write({ events: sinkEvents([event("insert", "public.items", { after: item(777, "a"), key: { id: 777 } })]) }).catch((e: unknown) => e);
    await db.sql("DROP TRIGGER die_777 ON public.items");
    expect(error).toBeInstanceOf(ConnectorError);
    expect((error as ConnectorError).retriable).toBe(true);
    expect((error as Error).message).toContain(db.name);
    // The runner retries the same batch; the sink opens a new session for it.
    await sink.write({ events: sinkEvents([event("insert", "public.items", { after: item(777, "a"), key: { id: 777 } })]) });
    expect(await rows(db, "public.items")).toHaveLength(1);
    // A session closed while idle is noticed, and replaced, before the next write.
    await db.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'dts sink target' AND datname = current_database()");
    await new Promise((resolve) => setTimeout(resolve, 200));
    await sink.write({ events: sinkEvents([event("insert", "public.items", { after: item(778, "a"), key: { id: 778 } })]) });
    expect(await rows(db, "public.items")).toHaveLength(2);
  });
});

describe("postgres sink: create_tables", () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createDatabase("sink_ddl");
  });
  afterAll(async () => {
    await db?.drop();
  });

  const columnTypes = async (schema: string, table: string) =>
    db.sql<{ name: string; type: string }>(
      `SELECT attname AS name, format_type(atttypid, atttypmod) AS type FROM pg_attribute
       WHERE attrelid = format('%I.%I', $1::text, $2::text)::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
      [schema, table],
    );
  const primaryKey = async (schema: string, table: string) =>
    (
      await db.sql<{ name: string }>(
        `SELECT a.attname AS name FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
         WHERE i.indrelid = format('%I.%I', $1::text, $2::text)::regclass AND i.indisprimary ORDER BY array_position(i.indkey::int2[], a.attnum)`,
        [schema, table],
      )
    ).map((r) => r.name);

  const every: [string, string, unknown][] = [
    ["c_smallint", "smallint", -32768],
    ["c_integer", "integer", 2147483647],
    ["c_bigint", "bigint", 9223372036854775807n],
    ["c_numeric", "numeric(12,3)", new Decimal("-123456789.125")],
    ["c_real", "real", 1.5],
    ["c_double", "double precision", 0.1],
    ["c_boolean", "boolean", true],
    ["c_text", "text", "tab\there \"quoted\" back\\slash\nnewline é 😀"],
    ["c_varchar", "character varying(5)", "abcde"],
    ["c_char", "character(3)", "ab "],
    ["c_bytea", "bytea", Buffer.from([0, 1, 2, 255, 92])],
    ["c_date", "date", Timestamp.parse("2024-02-29T00:00:00")],
    ["c_time", "time without time zone", "23:59:59.999999"],
    ["c_timetz", "time with time zone", "10:00:00+02"],
    ["c_timestamp", "timestamp without time zone", Timestamp.parse("2024-03-01T10:00:00.123456")],
    ["c_timestamptz", "timestamp with time zone", Timestamp.parse("-000043-03-15T12:00:00Z")],
    ["c_interval", "interval", "P1Y2M3DT4H5M6.789S"],
    ["c_uuid", "uuid", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"],
    ["c_json", "json", { b: 1, a: [1, new Decimal("2.50")], s: "text" }],
    ["c_jsonb", "jsonb", { a: 1, b: [true, null, "x"], c: new Decimal("2.50") }],
    ["c_inet", "inet", "192.168.0.1/24"],
    ["c_cidr", "cidr", "10.0.0.0/8"],
    ["c_macaddr", "macaddr", "08:00:2b:01:02:03"],
    ["c_int_array", "integer[]", [1, null, 3]],
    ["c_text_array", "text[]", ["a,b", 'q"uote', null, "NULL", ""]],
    ["c_numeric_array", "numeric[]", [[new Decimal("1.10")], [new Decimal("2.20")]]],
    ["c_timestamptz_array", "timestamp with time zone[]", [Timestamp.parse("2024-01-01T00:00:00Z")]],
    ["c_enum", "public.mood", "happy"],
  ];

  it("copies the source's types and primary key when the source describes its table", async () => {
    const schema: TableSchema = {
      dialect: "postgres",
      columns: [{ name: "id", type: "bigint", nullable: false }, ...every.map(([name, type]) => ({ name, type, nullable: true }))],
      primaryKey: ["id"],
    };
    const sink = sinkFor(db, { createTables: true, describeSource: async () => schema });
    await sink.start();
    const after = Object.fromEntries([["id", 1], ...every.map(([name, , value]) => [name, value])]);
    const nulls = Object.fromEntries([["id", 2], ...every.map(([name]) => [name, null])]);
    const rejections = await sink.write({
      events: sinkEvents([
        event("read", "copied.every_type", { after: after as never, key: { id: 1 } }),
        event("read", "copied.every_type", { after: nulls as never, key: { id: 2 } }),
      ]),
    });
    await sink.close();
    expect(rejections).toEqual([]);
    const types = await columnTypes("copied", "every_type");
    // The enum does not exist in the target: it becomes text.
    expect(types).toEqual([{ name: "id", type: "bigint" }, ...every.map(([name, type]) => ({ name, type: type === "public.mood" ? "text" : type }))]);
    expect(await primaryKey("copied", "every_type")).toEqual(["id"]);
    const [row] = await db.sql(`SELECT ${every.map(([name]) => `${name}::text`).join(", ")} FROM copied.every_type WHERE id = 1`);
    expect(row).toEqual({
      c_smallint: "-32768",
      c_integer: "2147483647",
      c_bigint: "9223372036854775807",
      c_numeric: "-123456789.125",
      c_real: "1.5",
      c_double: "0.1",
      c_boolean: "true",
      c_text: "tab\there \"quoted\" back\\slash\nnewline é 😀",
      c_varchar: "abcde",
      c_char: "ab",
      c_bytea: "\\x000102ff5c",
      c_date: "2024-02-29",
      c_time: "23:59:59.999999",
      c_timetz: "10:00:00+02",
      c_timestamp: "2024-03-01 10:00:00.123456",
      c_timestamptz: "0044-03-15 12:00:00+00 BC",
      c_interval: "1 year 2 mons 3 days 04:05:06.789",
      c_uuid: "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
      c_json: '{"b":1,"a":[1,2.50],"s":"text"}',
      c_jsonb: '{"a": 1, "b": [true, null, "x"], "c": 2.50}',
      c_inet: "192.168.0.1/24",
      c_cidr: "10.0.0.0/8",
      c_macaddr: "08:00:2b:01:02:03",
      c_int_array: "{1,NULL,3}",
      c_text_array: '{"a,b","q\\"uote",NULL,"NULL",""}',
      c_numeric_array: "{{1.10},{2.20}}",
      c_timestamptz_array: '{"2024-01-01 00:00:00+00"}',
      c_enum: "happy",
    });
    const [empty] = await db.sql(`SELECT count(*) FILTER (WHERE ${every.map(([name]) => `${name} IS NULL`).join(" AND ")}) AS n FROM copied.every_type`);
    expect(Number(empty!.n)).toBe(1);
  });

  it("infers types from values when the source cannot describe its table", async () => {
    const sink = sinkFor(db, { createTables: true });
    await sink.start();
    await sink.write({
      events: sinkEvents([
        event("insert", "public.inferred", {
          after: {
            k1: 1,
            k2: "a",
            big: 2n ** 70n,
            flag: false,
            ratio: 0.25,
            amount: new Decimal("1.50"),
            at: Timestamp.parse("2024-01-01T00:00:00Z"),
            local: Timestamp.parse("2024-01-01T00:00:00"),
            blob: Buffer.from("x"),
            tags: ["a", "b"],
            doc: { a: [1, { b: 2 }] },
            mixed: [1, "a"],
            nothing: null,
          },
          key: { k1: 1, k2: "a" },
        }),
      ]),
    });
    await sink.close();
    expect(await columnTypes("public", "inferred")).toEqual([
      { name: "k1", type: "bigint" },
      { name: "k2", type: "text" },
      { name: "big", type: "numeric" },
      { name: "flag", type: "boolean" },
      { name: "ratio", type: "double precision" },
      { name: "amount", type: "numeric" },
      { name: "at", type: "timestamp with time zone" },
      { name: "local", type: "timestamp without time zone" },
      { name: "blob", type: "bytea" },
      { name: "tags", type: "text[]" },
      { name: "doc", type: "jsonb" },
      { name: "mixed", type: "jsonb" },
      { name: "nothing", type: "text" },
    ]);
    expect(await primaryKey("public", "inferred")).toEqual(["k1", "k2"]);
    const [row] = await db.sql("SELECT big::text, amount::text, doc::text, tags::text FROM public.inferred");
    expect(row).toEqual({ big: "1180591620717411303424", amount: "1.50", doc: '{"a": [1, {"b": 2}]}', tags: "{a,b}" });
  });

  it("translates MySQL column types", async () => {
    const schema: TableSchema = {
      dialect: "mysql",
      columns: [
        { name: "id", type: "int(11) unsigned", nullable: false },
        { name: "flag", type: "tinyint(1)", nullable: true },
        { name: "amount", type: "decimal(10,2)", nullable: true },
        { name: "name", type: "varchar(20)", nullable: true },
        { name: "at", type: "datetime(6)", nullable: true },
        { name: "doc", type: "json", nullable: true },
        { name: "blob", type: "longblob", nullable: true },
        { name: "kind", type: "enum('a','b')", nullable: true },
      ],
      primaryKey: ["id"],
    };
    const sink = sinkFor(db, { createTables: true, describeSource: async () => schema });
    await sink.start();
    await sink.write({ events: sinkEvents([event("insert", "shop.orders", { after: { id: 1, flag: 1, amount: new Decimal("1.00") }, key: { id: 1 } })]) });
    await sink.close();
    expect(await columnTypes("shop", "orders")).toEqual([
      { name: "id", type: "bigint" },
      { name: "flag", type: "smallint" },
      { name: "amount", type: "numeric(10,2)" },
      { name: "name", type: "character varying(20)" },
      { name: "at", type: "timestamp(6) without time zone" },
      { name: "doc", type: "jsonb" },
      { name: "blob", type: "bytea" },
      { name: "kind", type: "text" },
    ]);
  });
});

/**
 * Snapshot chunks as COPY text (`SinkBatch.bulk`): loaded as they are when the target's columns
 * match the source's, else — other types, a refused row — through the events, which are then
 * read; and several at once on the sink's connections.
 */
describe("postgres sink: bulk COPY text", () => {
  let db: TestDatabase;
  const columns = ["id", "name", "qty", "price"] as const;
  const types = ["integer", "character varying(3)", "integer", "numeric(10,2)"] as const;

  beforeAll(async () => {
    db = await createDatabase("sink_bulk");
  });

  afterAll(async () => {
    await db?.drop();
  });

  interface Item {
    readonly id: number;
    readonly name: string | null;
    readonly qty: number;
    readonly price: string | null;
  }

  const items = (from: number, to: number, name: string): Item[] => Array.from({ length: to - from + 1 }, (_, i) => ({ id: from + i, name, qty: i % 7, price: i % 3 === 0 ? null : `${i}.25` }));

  /** The rows as the PostgreSQL source's server sends them, cut into pieces anywhere (even inside a message). */
  function bulkOf(rows: readonly Item[], table = "public.items", pieces = 3): BulkRows {
    const text = rows.map((r) => [r.id, r.name ?? "\\N", r.qty, r.price ?? "\\N"].join("\t") + "\n").join("");
    const bytes = Buffer.concat(framesOf(text).data);
    const data: Buffer[] = [];
    const step = Math.max(1, Math.ceil(bytes.length / pieces));
    for (let at = 0; at < bytes.length; at += step) data.push(bytes.subarray(at, at + step));
    return { format: "pg-copy-data", table, columns: columnsArray, types: typesArray, data, count: rows.length };
  }
  const columnsArray = [...columns];
  const typesArray = [...types];

  /** A batch whose events count their reads: the bulk path must never need them. */
  function batchOf(rows: readonly Item[], table = "public.items"): { batch: SinkBatch; reads: () => number } {
    let reads = 0;
    const events = sinkEvents(
      rows.map((r) =>
        event("read", table, { after: { id: r.id, name: r.name, qty: r.qty, price: r.price === null ? null : new Decimal(r.price) }, key: { id: r.id } }),
      ),
    );
    const batch: SinkBatch = {
      bulk: bulkOf(rows, table),
      get events() {
        reads++;
        return events;
      },
    };
    return { batch, reads: () => reads };
  }

  async function contents(table = "public.items"): Promise<string[]> {
    const found = await db.sql<{ line: string }>(`SELECT concat_ws('|', id, coalesce(name, 'null'), qty, coalesce(price::text, 'null')) AS line FROM ${table} ORDER BY id`);
    return found.map((r) => r.line);
  }
  const expected = (rows: readonly Item[]) => [...rows].sort((a, b) => a.id - b.id).map((r) => `${r.id}|${r.name ?? "null"}|${r.qty}|${r.price ?? "null"}`);

  it("loads the text as it is, without reading the events, and upserts a replayed chunk", async () => {
    await db.sql("CREATE TABLE public.items (id integer PRIMARY KEY, name varchar(3), qty integer NOT NULL, price numeric(10,2))");
    const sink = sinkFor(db);
    await sink.start();
    try {
      const first = batchOf(items(1, 500, "a"));
      expect(await sink.write(first.batch)).toEqual([]);
      expect(first.reads()).toBe(0);
      expect(await contents()).toEqual(expected(items(1, 500, "a")));
      // Keys 400..500 exist (a chunk read again after a crash): the same text goes through staging.
      const replayed = batchOf(items(400, 700, "b"));
      expect(await sink.write(replayed.batch)).toEqual([]);
      expect(replayed.reads()).toBe(0);
      expect(await contents()).toEqual(expected([...items(1, 399, "a"), ...items(400, 700, "b")]));
    } finally {
      await sink.close();
    }
  });

  it("goes through the events when the target's types differ from the source's", async () => {
    await db.sql("CREATE TABLE public.wider (id bigint PRIMARY KEY, name text, qty integer NOT NULL, price numeric(12,3))");
    const sink = sinkFor(db);
    await sink.start();
    try {
      const rows = items(1, 50, "w");
      const { batch, reads } = batchOf(rows, "public.wider");
      expect(await sink.write(batch)).toEqual([]);
      expect(reads()).toBeGreaterThan(0);
      const found = await db.sql<{ line: string }>("SELECT concat_ws('|', id, name, qty, coalesce(price::text, 'null')) AS line FROM public.wider ORDER BY id");
      expect(found.map((r) => r.line)).toEqual(rows.map((r) => `${r.id}|w|${r.qty}|${r.price === null ? "null" : `${r.price}0`}`));
    } finally {
      await sink.close();
    }
  });

  it("rejects only the row the server refuses, naming it, and applies the rest of the chunk", async () => {
    await db.sql("CREATE TABLE public.checked (id integer PRIMARY KEY, name varchar(3), qty integer NOT NULL CHECK (qty < 6), price numeric(10,2))");
    const sink = sinkFor(db);
    await sink.start();
    try {
      const rows = items(1, 300, "c").map((r) => ({ ...r, qty: r.id === 77 ? 9 : 1 }));
      const { batch } = batchOf(rows, "public.checked");
      const rejections = await sink.write(batch);
      expect(rejections.map((r) => r.index)).toEqual([76]);
      expect(rejections[0]!.reason).toMatch(/^public\.checked \(id=77\).*violates check constraint/);
      const [{ count }] = await db.sql<{ count: string }>("SELECT count(*) FROM public.checked");
      expect(Number(count)).toBe(299);
    } finally {
      await sink.close();
    }
  });

  it("reports a connection lost during a load as retriable, and loads the chunk again on a new one", async () => {
    await db.sql("CREATE TABLE public.cut (id integer PRIMARY KEY, name varchar(3), qty integer NOT NULL, price numeric(10,2))");
    const sink = sinkFor(db);
    await sink.start();
    try {
      // The table is known after a first write, so the next one's first statements are its load.
      expect(await sink.write(batchOf(items(0, 0, "k"), "public.cut").batch)).toEqual([]);
      const rows = items(1, 200_000, "k");
      const writing = sink.write(batchOf(rows, "public.cut").batch);
      const outcome = writing.then(
        () => "done" as const,
        (error: unknown) => error,
      );
      // End the sink's session while the COPY streams (or just after, if it was that fast).
      let settled = false;
      void outcome.finally(() => (settled = true));
      while (!settled) {
        await db.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'dts sink target%' AND state = 'active'");
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      const result = await outcome;
      if (result !== "done") {
        expect(result).toBeInstanceOf(ConnectorError);
        expect((result as ConnectorError).retriable).toBe(true);
        expect(await contents("public.cut")).toEqual(expected(items(0, 0, "k")));
        // The runner retries the write: a new connection loads the whole chunk.
        expect(await sink.write(batchOf(rows, "public.cut").batch)).toEqual([]);
      }
      const [{ n }] = await db.sql<{ n: string }>("SELECT count(*) AS n FROM public.cut");
      expect(Number(n)).toBe(200_001);
    } finally {
      await sink.close();
    }
  });

  it("stores the chunks' positions in the order they started, whichever commits first", async () => {
    await db.sql("CREATE TABLE public.kept (id integer PRIMARY KEY, name varchar(3), qty integer NOT NULL, price numeric(10,2))");
    const sink = sinkFor(db, { snapshotWriters: 2 });
    await sink.start();
    try {
      const checkpointAfter = (key: number) => ({ src: { position: { kind: "pg-lsn", token: "0/1000" }, state: { snapshot: { table: "public.kept", lastKey: [String(key)] } } } });
      const big = batchOf(items(1, 150_000, "a"), "public.kept").batch;
      const small = batchOf(items(150_001, 150_010, "b"), "public.kept").batch;
      // The second, small chunk commits long before the first: it must not store its position
      // (a crash then would resume after rows not yet committed).
      const first = sink.write({ ...big, get events() { return big.events; }, checkpoints: checkpointAfter(150_000) });
      const second = sink.write({ ...small, get events() { return small.events; }, checkpoints: checkpointAfter(150_010) });
      await second;
      const [{ n }] = await db.sql<{ n: string }>("SELECT count(*) AS n FROM public.kept");
      if (Number(n) === 10) expect(await sink.checkpoints.load()).toEqual({});
      await first;
      // Once the first commits, the newest position of the two is stored.
      expect(await sink.checkpoints.load()).toEqual(checkpointAfter(150_010));
      expect(await contents("public.kept")).toHaveLength(150_010);
    } finally {
      await sink.close();
    }
  });

  it("writes chunks at once on its connections, and creates a missing table once", async () => {
    const sink = sinkFor(db, { createTables: true, snapshotWriters: 3 });
    expect(sink.parallelBulkWrites).toBe(3);
    await sink.start();
    try {
      const chunks = [items(1, 1000, "p"), items(1001, 2000, "q"), items(2001, 3000, "r")];
      const results = await Promise.all(chunks.map((rows) => sink.write(batchOf(rows, "public.made").batch)));
      expect(results).toEqual([[], [], []]);
      expect(await contents("public.made")).toEqual(expected(chunks.flat()));
      const sessions = await db.sql<{ n: string }>(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'dts sink target%'",
      );
      expect(Number(sessions[0]!.n)).toBe(3);
    } finally {
      await sink.close();
    }
  });
});

/**
 * A source transaction larger than one batch (`SinkBatch.transaction`): applied in one target
 * transaction across the writes of its parts, invisible until its last part, and never
 * committed in part when the connection is lost between parts.
 */
describe("postgres sink: a source transaction over several writes", () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createDatabase("sink_tx");
    await db.sql("CREATE TABLE public.items (id integer PRIMARY KEY, name varchar(3), qty integer NOT NULL DEFAULT 0, price numeric(10,2))");
  });

  afterAll(async () => {
    await db?.drop();
  });

  const inserts = (from: number, to: number) =>
    sinkEvents(Array.from({ length: to - from + 1 }, (_, i) => event("insert", "public.items", { after: { id: from + i, name: "t", qty: 1, price: null }, key: { id: from + i } })));
  const count = async () => Number((await db.sql<{ n: string }>("SELECT count(*) AS n FROM public.items"))[0]!.n);
  const part = (continues: boolean, open: boolean) => ({ source: "pg", continues, open });

  it("commits the parts together at the last one; nothing shows before", async () => {
    await db.sql("TRUNCATE public.items");
    const sink = sinkFor(db);
    await sink.start();
    try {
      expect(await sink.write({ events: inserts(1, 100), transaction: part(false, true) })).toEqual([]);
      expect(await count()).toBe(0);
      // A refused row in a middle part is rejected alone; the earlier part stays.
      const middle = inserts(101, 200);
      middle[5] = sinkEvents([event("insert", "public.items", { after: { id: 106, name: "toolong", qty: 1, price: null }, key: { id: 106 } })])[0]!;
      const rejections = await sink.write({ events: middle, transaction: part(true, true) });
      expect(rejections.map((r) => r.index)).toEqual([5]);
      expect(await count()).toBe(0);
      // The last part may bring no events of its own (its flows left this sink nothing).
      expect(await sink.write({ events: [], transaction: part(true, false) })).toEqual([]);
      expect(await count()).toBe(199);
    } finally {
      await sink.close();
    }
  });

  it("stops, rather than commit the rest alone, when the connection is lost between parts", async () => {
    await db.sql("TRUNCATE public.items");
    const sink = sinkFor(db);
    await sink.start();
    try {
      await sink.write({ events: inserts(1, 50), transaction: part(false, true) });
      await db.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'dts sink target%'");
      await new Promise((resolve) => setTimeout(resolve, 100));
      let failure: unknown;
      for (let attempt = 0; attempt < 3 && failure === undefined; attempt++) {
        // The runner retries a retriable error; the retry must refuse to go on alone.
        failure = await sink.write({ events: inserts(51, 100), transaction: part(true, false) }).then(
          () => undefined,
          (error: unknown) => (error instanceof ConnectorError && error.retriable ? undefined : error),
        );
      }
      expect(failure).toBeInstanceOf(ConnectorError);
      expect((failure as ConnectorError).message).toMatch(/lost in the middle of a transaction of source pg/);
      expect(await count()).toBe(0);
      // The next run replays the whole transaction from the start.
      await sink.write({ events: inserts(1, 50), transaction: part(false, true) });
      await sink.write({ events: inserts(51, 100), transaction: part(true, false) });
      expect(await count()).toBe(100);
    } finally {
      await sink.close();
    }
  });

  it("applies a schema change inside the open transaction, committed with it; lost with it, applies it again", async () => {
    await db.sql("CREATE TABLE public.grows (id integer PRIMARY KEY, n integer)");
    const change: SinkSchemaChange = {
      target: "public.grows",
      change: {
        table: "public.grows",
        schema: {
          dialect: "postgres",
          columns: [
            { name: "id", type: "integer", nullable: false },
            { name: "n", type: "integer", nullable: true },
            { name: "c", type: "text", nullable: true },
          ],
          primaryKey: ["id"],
        },
        columns: [{ kind: "added", column: "c", type: "text", existing: { value: "as before" } }],
      },
    };
    const grows = (from: number, to: number, c?: string) =>
      sinkEvents(Array.from({ length: to - from + 1 }, (_, i) => event("insert", "public.grows", { after: { id: from + i, n: i, ...(c !== undefined ? { c } : {}) }, key: { id: from + i } })));
    const columns = async () => (await db.sql<{ c: string }>(`SELECT attname AS c FROM pg_attribute WHERE attrelid = 'public.grows'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`)).map((r) => r.c);
    const sink = sinkFor(db, { createTables: true });
    await sink.start();
    try {
      await sink.write({ events: grows(1, 3), transaction: part(false, true) });
      await sink.write({ events: grows(4, 5, "new"), transaction: part(true, true), schemaChanges: [change] });
      // Neither the column nor a row shows before the transaction's end.
      expect(await columns()).toEqual(["id", "n"]);
      await db.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'dts sink target%'");
      await new Promise((resolve) => setTimeout(resolve, 100));
      const lost = await sink.write({ events: grows(6, 6, "new"), transaction: part(true, false) }).catch((e: unknown) => e);
      expect((lost as Error).message).toMatch(/lost in the middle of a transaction of source pg/);
      expect(await columns()).toEqual(["id", "n"]);
      // The next run replays it all: the column is added again, in the transaction, before rows 4-6.
      await sink.write({ events: grows(1, 3), transaction: part(false, true) });
      await sink.write({ events: grows(4, 5, "new"), transaction: part(true, true), schemaChanges: [change] });
      await sink.write({ events: grows(6, 6, "new"), transaction: part(true, false) });
      expect(await db.sql("SELECT id, c FROM public.grows ORDER BY id")).toEqual([
        { id: 1, c: "as before" },
        { id: 2, c: "as before" },
        { id: 3, c: "as before" },
        { id: 4, c: "new" },
        { id: 5, c: "new" },
        { id: 6, c: "new" },
      ]);
      expect(await db.sql("SELECT column_default FROM information_schema.columns WHERE table_name = 'grows' AND column_name = 'c'")).toEqual([{ column_default: null }]);
    } finally {
      await sink.close();
    }
  });

  it("commits an open transaction before another source's write, so the two cannot wait on each other", async () => {
    await db.sql("TRUNCATE public.items");
    const sink = sinkFor(db);
    await sink.start();
    try {
      await sink.write({ events: inserts(1, 10), transaction: part(false, true) });
      await sink.write({ events: inserts(11, 20) });
      expect(await count()).toBe(20);
      // The rest of the first source's transaction goes in a transaction of its own.
      await sink.write({ events: inserts(21, 30), transaction: part(true, false) });
      expect(await count()).toBe(30);
    } finally {
      await sink.close();
    }
  });
});
