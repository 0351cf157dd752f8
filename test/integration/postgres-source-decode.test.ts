/**
 * The PostgreSQL source's pure parts, without a server: PostgreSQL's text output (arrays,
 * timestamps), pgoutput messages and status updates, slot names and table globs.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Timestamp } from "../../src/model/timestamp.js";
import { parseArray, parseBigInteger, parseBytea, parsePgDateTime, parsePgDateTimeSlowly } from "../../src/connectors/postgres/decode.js";
import { parsePgOutput, standbyStatusUpdate, UNCHANGED_TOAST, PG_EPOCH_OFFSET_MICROS } from "../../src/connectors/postgres/pgoutput.js";
import { deriveName } from "../../src/connectors/postgres/slot.js";
import { patternToRegExp } from "../../src/connectors/postgres/tables.js";

const text = (value: string): string => value;

describe("PostgreSQL array literals", () => {
  it("reads quoting, escapes, NULL and the string NULL, nesting, bounds and empty arrays", () => {
    expect(parseArray(`{"a b",NULL,"NULL",null,"x\\"y","back\\\\slash",""}`, ",", text)).toEqual(["a b", null, "NULL", null, 'x"y', "back\\slash", ""]);
    expect(parseArray("{{1,2},{3,NULL}}", ",", Number)).toEqual([
      [1, 2],
      [3, null],
    ]);
    expect(parseArray("[0:1]={7,8}", ",", Number)).toEqual([7, 8]);
    expect(parseArray("{}", ",", text)).toEqual([]);
    expect(parseArray("{{},{}}", ",", text)).toEqual([[], []]);
    expect(parseArray(`{"(1,2),(0,0)";"(3,3),(1,1)"}`, ";", text)).toEqual(["(1,2),(0,0)", "(3,3),(1,1)"]);
    expect(parseArray(`{a\\,b,"}{"}`, ",", text)).toEqual(["a,b", "}{"]);
  });

  it("rejects what is not an array", () => {
    expect(() => parseArray("{1,2", ",", Number)).toThrow(/not a PostgreSQL array/);
    expect(() => parseArray("1,2}", ",", Number)).toThrow(/not a PostgreSQL array/);
    expect(() => parseArray("{1}x", ",", Number)).toThrow(/not a PostgreSQL array/);
  });
});

describe("PostgreSQL scalars", () => {
  it("keeps 64-bit integers exact", () => {
    expect(parseBigInteger("9007199254740991")).toBe(9007199254740991);
    expect(parseBigInteger("9007199254740992")).toBe(9007199254740992n);
    expect(parseBigInteger("-9223372036854775808")).toBe(-9223372036854775808n);
    expect(parseBigInteger("-42")).toBe(-42);
  });

  it("reads bytea in hex and in the old escape format", () => {
    expect(parseBytea("\\x00ff")).toEqual(Buffer.from([0, 255]));
    expect(parseBytea("a\\\\b\\001")).toEqual(Buffer.from([0x61, 0x5c, 0x62, 1]));
  });

  it("reads timestamps in every shape PostgreSQL prints, BC and year 10000 included", () => {
    expect(parsePgDateTime("2024-03-01 10:00:00.123456+00", true)).toEqual(Timestamp.parse("2024-03-01T10:00:00.123456Z"));
    expect(parsePgDateTime("2024-03-01 10:00:00.5", false)).toEqual(Timestamp.parse("2024-03-01T10:00:00.5"));
    expect(parsePgDateTime("2024-03-01", false)).toEqual(Timestamp.parse("2024-03-01T00:00:00"));
    expect(parsePgDateTime("0001-01-01 00:00:00 BC", false)).toEqual(Timestamp.parse("+000000-01-01T00:00:00"));
    expect(parsePgDateTime("0044-03-15 12:00:00+00 BC", true)).toEqual(Timestamp.parse("-000043-03-15T12:00:00Z"));
    expect(parsePgDateTime("10000-01-01 00:00:00", false)).toEqual(Timestamp.parse("+010000-01-01T00:00:00"));
    expect(parsePgDateTime("2024-03-01 10:00:00+05:30", true)).toEqual(Timestamp.parse("2024-03-01T04:30:00Z"));
    expect(parsePgDateTime("1900-01-01 00:00:00-00:09:21", true)).toEqual(new Timestamp(Timestamp.parse("1900-01-01T00:09:21Z").epochMicros, true));
    expect(parsePgDateTime("infinity", true)).toBe("infinity");
    expect(parsePgDateTime("-infinity", false)).toBe("-infinity");
  });

  it("reads common timestamps on the fast path exactly as the general path does", () => {
    const pad = (n: number, width: number): string => String(n).padStart(width, "0");
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 9999 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 28 }),
        fc.integer({ min: 0, max: 86399 }),
        fc.option(fc.integer({ min: 0, max: 999999 })),
        fc.boolean(),
        (year, month, day, second, micros, zoned) => {
          let printed = `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)} ${pad(Math.floor(second / 3600), 2)}:${pad(Math.floor(second / 60) % 60, 2)}:${pad(second % 60, 2)}`;
          if (micros !== null && micros > 0) printed += `.${pad(micros, 6).replace(/0+$/, "")}`;
          if (zoned) printed += "+00";
          expect(parsePgDateTime(printed, zoned)).toEqual(parsePgDateTimeSlowly(printed, zoned));
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe("pgoutput", () => {
  const frame = (...parts: (number[] | string | Buffer)[]): Buffer =>
    Buffer.concat(parts.map((part) => (typeof part === "string" ? Buffer.from(part + "\0") : Buffer.isBuffer(part) ? part : Buffer.from(part))));
  const int16 = (n: number): number[] => [(n >> 8) & 255, n & 255];
  const int32 = (n: number): number[] => [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
  const int64 = (n: bigint): Buffer => {
    const buffer = Buffer.alloc(8);
    buffer.writeBigInt64BE(n);
    return buffer;
  };
  const value = (text: string): Buffer => Buffer.concat([Buffer.from("t"), Buffer.from(int32(Buffer.byteLength(text))), Buffer.from(text)]);

  it("decodes relations, begin/commit and an update with an old key and an unchanged TOAST value", () => {
    const relation = parsePgOutput(frame([0x52], int32(16385), "", "orders", [0x64], int16(2), [1], "id", int32(23), int32(-1), [0], "body", int32(25), int32(-1)));
    expect(relation).toEqual({
      tag: "relation",
      relationId: 16385,
      schema: "pg_catalog",
      table: "orders",
      replicaIdentity: "d",
      columns: [
        { name: "id", typeOid: 23, typeModifier: -1, isKey: true },
        { name: "body", typeOid: 25, typeModifier: -1, isKey: false },
      ],
    });
    const update = parsePgOutput(frame([0x55], int32(16385), [0x4b], int16(2), value("1"), [0x6e], [0x4e], int16(2), value("2"), [0x75]));
    expect(update).toEqual({ tag: "update", relationId: 16385, oldKind: "K", old: ["1", null], tuple: ["2", UNCHANGED_TOAST] });
    expect(parsePgOutput(frame([0x42], int64(0x16b3748n), int64(5n), int32(0xfffffffe)))).toEqual({ tag: "begin", finalLsn: 0x16b3748n, commitTime: 5n, xid: 0xfffffffe });
    expect(parsePgOutput(frame([0x43], [0], int64(10n), int64(20n), int64(30n)))).toEqual({ tag: "commit", commitLsn: 10n, endLsn: 20n, commitTime: 30n });
    expect(parsePgOutput(frame([0x4d], [0], int64(99n), "dts_heartbeat", int32(3), Buffer.from("abc")))).toMatchObject({ tag: "message", transactional: false, lsn: 99n, prefix: "dts_heartbeat", content: Buffer.from("abc") });
    expect(parsePgOutput(frame([0x54], int32(2), [1], int32(5), int32(6)))).toEqual({ tag: "truncate", relationIds: [5, 6], cascade: true, restartIdentity: false });
    expect(() => parsePgOutput(frame([0x49], int32(1), [0x4e], int16(1)))).toThrow(/ends early/);
  });

  it("writes standby status updates with the flush position and PostgreSQL's clock", () => {
    const status = standbyStatusUpdate(30n, 20n, 20n, true, PG_EPOCH_OFFSET_MICROS + 7n);
    expect(status[0]).toBe(0x72);
    expect([status.readBigUInt64BE(1), status.readBigUInt64BE(9), status.readBigUInt64BE(17), status.readBigInt64BE(25), status[33]]).toEqual([30n, 20n, 20n, 7n, 1]);
  });
});

describe("names and globs", () => {
  it("derives slot names: dts_, lower case, [a-z0-9_], at most 63 characters, distinct when cut", () => {
    expect(deriveName("Shop Standby", "primary")).toBe("dts_shop_standby_primary");
    const long = deriveName("x".repeat(80), "a");
    expect(long).toMatch(/^dts_x+_[0-9a-f]{8}$/);
    expect(long.length).toBe(63);
    expect(deriveName("x".repeat(80), "b")).not.toBe(long);
  });

  it("matches schema.table globs, a bare name being in public", () => {
    expect(patternToRegExp("public.*").test("public.orders")).toBe(true);
    expect(patternToRegExp("public.*").test("sales.orders")).toBe(false);
    expect(patternToRegExp("*.orders").test("sales.orders")).toBe(true);
    expect(patternToRegExp("ord?rs").test("public.orders")).toBe(true);
    expect(patternToRegExp("public.a+b").test("public.aab")).toBe(false);
  });
});
