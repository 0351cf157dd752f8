/**
 * Every type the PostgreSQL source promises, value by value: a table with each type, its
 * array, an enum and a domain, holding ordinary values, edge values (NaN, infinities, BC dates,
 * years past 9999, the 64-bit limits, empty arrays, quoting) and NULL in every column. The same
 * rows are read by the snapshot and by the stream, and both must equal the expected values
 * exactly — kind included: a bigint stays a bigint, a Decimal keeps its scale.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Decimal } from "../../src/model/decimal.js";
import type { ChangeEvent } from "../../src/model/event.js";
import { Timestamp } from "../../src/model/timestamp.js";
import { JsonNull, type Row, type Value } from "../../src/model/value.js";
import { PostgresSource } from "../../src/connectors/postgres/source.js";
import { describeTables } from "../../src/connectors/postgres/tables.js";
import { typesRows, typesSchema } from "./types-fixture.js";
import { BatchPuller, createDatabase, currentLsn, recordingLogger, requireLogicalReplication, slotName, sourceContext, type ThrowawayDatabase } from "./pg-helpers.js";

/** A value with its kind spelled out, so that 1 and 1n, or 1.5 and 1.50, differ. */
function tagged(value: Value | undefined): unknown {
  if (value === undefined) return "<absent>";
  if (value === null) return null;
  if (typeof value === "number") return `number:${Object.is(value, -0) ? "-0" : String(value)}`;
  if (typeof value === "bigint") return `bigint:${value}`;
  if (typeof value === "string") return value;
  if (typeof value === "boolean") return value;
  if (value instanceof Decimal) return `decimal:${value.toString()}`;
  if (value instanceof Timestamp) return `timestamp:${value.toISOString()}`;
  if (Buffer.isBuffer(value)) return `bytes:${value.toString("hex")}`;
  if (value instanceof JsonNull) return "json-null";
  if (Array.isArray(value)) return value.map(tagged);
  return Object.fromEntries(Object.keys(value).sort().map((key) => [key, tagged(value[key])]));
}

const wall = (iso: string): Timestamp => Timestamp.parse(iso);
const dec = (text: string): Decimal => new Decimal(text);





const fullRow: Row = {
  id: 1,
  c_smallint: -32768,
  c_integer: 2147483647,
  c_bigint: 9223372036854775807n,
  c_numeric: dec("12345678901234.5670"),
  c_numeric_free: dec("-0.000000000000000000000000000001"),
  c_real: 1.1,
  c_double: 3.141592653589793,
  c_boolean: true,
  c_text: 'héllo "wörld" \\ tab\t nl\n 😀',
  c_varchar: "varchar",
  c_char: "ab   ",
  c_bytea: Buffer.from([0x00, 0xff, 0x10]),
  c_date: wall("2024-02-29T00:00:00"),
  c_time: "23:59:59.999999",
  c_timetz: "12:00:00.123456+05:30",
  c_timestamp: wall("2024-03-01T10:00:00.123456"),
  c_timestamptz: Timestamp.parse("2024-03-01T08:00:00.123456Z"),
  c_interval: "P1Y2M3DT4H5M6.789S",
  c_uuid: "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
  c_json: { b: 1, a: [1, dec("2.50")] },
  c_jsonb: { s: "x", big: 12345678901234567890n, dec: dec("1.10") },
  c_inet: "192.168.0.1/24",
  c_cidr: "10.0.0.0/8",
  c_macaddr: "08:00:2b:01:02:03",
  c_mood: "happy",
  c_amount: dec("12.30"),
  a_smallint: [1, -2, null],
  a_integer: [],
  a_bigint: [9223372036854775807n, -9223372036854775808n, 1],
  a_numeric: [dec("1.50"), null, dec("-0.01")],
  a_numeric_special: [NaN, Infinity, -Infinity, dec("1.000")],
  a_real: [NaN, Infinity, -Infinity, 0.5],
  a_double: [1e300, -0],
  a_boolean: [true, false, null],
  a_text: ["a b", null, "NULL", 'x"y', "", "back\\slash", "comma,brace}{"],
  a_varchar: ["x"],
  a_char: ["a "],
  a_bytea: [Buffer.from([1]), null],
  a_date: [wall("2000-01-01T00:00:00"), "infinity"],
  a_time: ["00:00:00"],
  a_timetz: ["01:02:03-08"],
  a_timestamp: [wall("1999-12-31T23:59:59.5")],
  a_timestamptz: [Timestamp.parse("2020-01-01T00:00:00Z"), "-infinity"],
  a_interval: ["P-1D"],
  a_uuid: ["00000000-0000-0000-0000-000000000000"],
  a_json: [{ k: [1] }],
  a_jsonb: [{ n: dec("1.0") }],
  a_inet: ["::1"],
  a_cidr: ["192.168.1.0/24"],
  a_macaddr: ["ff:ff:ff:ff:ff:ff"],
  a_mood: ["sad", "ok"],
  a_nested: [
    [1, 2],
    [3, null],
  ],
};

const columnNames = Object.keys(fullRow);
const nullRow = (id: number): Row => Object.fromEntries(columnNames.map((name) => [name, name === "id" ? id : null]));

const edgeRow: Row = {
  ...nullRow(2),
  c_smallint: 0,
  c_bigint: -9223372036854775808n,
  c_numeric: dec("0.0000"),
  c_numeric_free: NaN,
  c_real: NaN,
  c_double: -Infinity,
  c_boolean: false,
  c_text: "",
  c_char: "     ",
  c_bytea: Buffer.alloc(0),
  c_date: Timestamp.parse("-000043-03-15T00:00:00"),
  c_timestamp: Timestamp.parse("+010000-01-01T00:00:00"),
  c_timestamptz: "infinity",
  c_json: [],
  c_jsonb: "str",
  c_amount: dec("0.10"),
};

const expected: Row[] = [fullRow, edgeRow, nullRow(3)];
const withId = (row: Row, id: number): Row => ({ ...row, id });

let db: ThrowawayDatabase;
const sources: PostgresSource[] = [];

beforeAll(async () => {
  await requireLogicalReplication();
  db = await createDatabase("types");
  await db.sql(typesSchema);
  // Rows 1, 2 and 3: ordinary values, edge values, NULL everywhere.
  await db.sql(typesRows(0));
});

afterAll(async () => {
  for (const source of sources) await source.close();
  await db?.drop();
});

function open(options: Record<string, unknown>): PostgresSource {
  const source = new PostgresSource(
    sourceContext({ url: db.url, snapshot: "initial", chunk_size: 2, heartbeat_seconds: 10, ...options } as never, { log: recordingLogger() }),
    { slotWaitMillis: 500, stream: { idleProbeMs: 20 } },
  );
  sources.push(source);
  return source;
}

describe("postgres source types", () => {
  it("reads every type exactly, in the snapshot and in the stream, NULL included", async () => {
    const source = open({ tables: ["public.types"] });
    await source.start();
    const puller = new BatchPuller(source);
    await puller.until((batch) => batch.caughtUp === true);
    const reads = puller.events.filter((event) => event.op === "read");
    expect(reads.map((event) => tagged(event.after))).toEqual(expected.map(tagged));
    expect(reads.map((event) => event.key)).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }]);

    // The same values through pgoutput, then a REPLICA IDENTITY FULL update: its before image
    // is the whole old row, exactly.
    const copy = columnNames.filter((name) => name !== "id").join(", ");
    await db.sql(`INSERT INTO types (id, ${copy}) SELECT id + 10, ${copy} FROM types WHERE id <= 3`);
    await db.sql("ALTER TABLE types REPLICA IDENTITY FULL");
    await db.sql("UPDATE types SET c_integer = 0 WHERE id = 11");
    await db.sql("DELETE FROM types WHERE id = 12");
    await puller.untilCaughtUpPast(await currentLsn(db));
    const changes = puller.events.filter((event) => event.op !== "read");
    expect(changes.map((event) => event.op)).toEqual(["insert", "insert", "insert", "update", "delete"]);
    expect(changes.slice(0, 3).map((event) => tagged(event.after))).toEqual(expected.map((row, i) => tagged(withId(row, 11 + i))));
    const update = changes[3]!;
    expect(tagged(update.before)).toEqual(tagged(withId(fullRow, 11)));
    expect(tagged(update.after)).toEqual(tagged({ ...withId(fullRow, 11), c_integer: 0 }));
    expect(tagged(changes[4]!.before)).toEqual(tagged(withId(edgeRow, 12)));
  });

  it("leaves unchanged TOASTed values out of `after`, and fills them from `before` with REPLICA IDENTITY FULL", async () => {
    await db.sql("CREATE TABLE docs (id int PRIMARY KEY, title text, body text)");
    // Random (incompressible) text of 100 kB is stored out of line.
    await db.sql("INSERT INTO docs SELECT 1, 'one', string_agg(md5(random()::text), '') FROM generate_series(1, 3200)");
    const body = (await db.sql("SELECT body FROM docs WHERE id = 1"))[0]!.body as string;
    const source = open({ tables: ["public.docs"], snapshot: "never", slot: slotName("dts_types_toast") });
    await source.start();
    const puller = new BatchPuller(source);
    await puller.until((batch) => batch.caughtUp === true);
    await db.sql("UPDATE docs SET title = 'default identity' WHERE id = 1");
    await db.sql("ALTER TABLE docs REPLICA IDENTITY FULL");
    await db.sql("UPDATE docs SET title = 'full identity' WHERE id = 1");
    await puller.untilCaughtUpPast(await currentLsn(db));
    const [withDefault, withFull] = puller.events as [ChangeEvent, ChangeEvent];
    expect(withDefault.before).toBeNull();
    expect(withDefault.after).toEqual({ id: 1, title: "default identity" });
    expect(withFull.before).toEqual({ id: 1, title: "default identity", body });
    expect(withFull.after).toEqual({ id: 1, title: "full identity", body });
  });

  it("decodes a column whose type was created after the stream started (enum, domain and their arrays)", async () => {
    await db.sql("CREATE TABLE later (id int PRIMARY KEY)");
    const source = open({ tables: ["public.later"], snapshot: "never", slot: slotName("dts_types_later") });
    await source.start();
    const puller = new BatchPuller(source);
    await puller.until((batch) => batch.caughtUp === true);
    await db.sql("CREATE TYPE size AS ENUM ('s', 'm', 'l'); CREATE DOMAIN weight AS numeric(8,3)");
    await db.sql("ALTER TABLE later ADD COLUMN s size, ADD COLUMN w weight, ADD COLUMN ws weight[], ADD COLUMN ss size[]");
    await db.sql("INSERT INTO later VALUES (1, 'm', 1.5, '{2,NULL}', '{l,s}')");
    await puller.untilCaughtUpPast(await currentLsn(db));
    expect(tagged(puller.events[0]!.after)).toEqual(tagged({ id: 1, s: "m", w: dec("1.500"), ws: [dec("2.000"), null], ss: ["l", "s"] }));
  });

  it("describes tables for the checker: PostgreSQL types, static types, key and replica identity", async () => {
    const [table] = await describeTables(db.url, ["public.types"]);
    const byName = new Map(table!.columns.map((column) => [column.name, column]));
    expect(table!.primaryKey).toEqual(["id"]);
    expect(table!.replicaIdentity).toBe("full");
    const summary = (name: string): [string, string] => [byName.get(name)!.type, byName.get(name)!.staticType];
    expect(summary("c_bigint")).toEqual(["bigint", "integer"]);
    expect(summary("c_numeric")).toEqual(["numeric(20,4)", "decimal"]);
    expect(summary("c_double")).toEqual(["double precision", "float"]);
    expect(summary("c_varchar")).toEqual(["character varying(20)", "string"]);
    expect(summary("c_boolean")).toEqual(["boolean", "boolean"]);
    expect(summary("c_timestamptz")).toEqual(["timestamp with time zone", "timestamp"]);
    expect(summary("c_date")).toEqual(["date", "timestamp"]);
    expect(summary("c_bytea")).toEqual(["bytea", "bytes"]);
    expect(summary("c_jsonb")).toEqual(["jsonb", "any"]);
    expect(summary("c_mood")).toEqual(["mood", "string"]);
    expect(summary("c_amount")).toEqual(["amount", "decimal"]);
    expect(summary("a_text")).toEqual(["text[]", "list"]);
    expect(summary("c_interval")).toEqual(["interval", "string"]);
  });
});
