import { describe, expect, it } from "vitest";
import { Decimal } from "../../src/model/decimal.js";
import { Timestamp } from "../../src/model/timestamp.js";
import {
  compareNumeric,
  compareStrings,
  compareValues,
  getField,
  isRecord,
  normalizeInteger,
  setField,
  typeOf,
  valuesEqual,
  type Row,
  type Value,
} from "../../src/model/value.js";

describe("Decimal", () => {
  it("keeps the written scale", () => {
    expect(new Decimal("12.30").toString()).toBe("12.30");
    expect(new Decimal("12.30").scale).toBe(2);
    expect(new Decimal("-0.001").toString()).toBe("-0.001");
    expect(new Decimal("1.5e3").toString()).toBe("1500");
    expect(new Decimal("1.5e-3").toString()).toBe("0.0015");
    expect(new Decimal("-0.00").toString()).toBe("0.00");
    expect(new Decimal(".5").toString()).toBe("0.5");
    expect(new Decimal(0.1).toString()).toBe("0.1");
    expect(new Decimal(9223372036854775807n).toString()).toBe("9223372036854775807");
  });

  it("is exact beyond doubles", () => {
    const a = new Decimal("12345678901234567890.123456789012345678901");
    expect(a.plus(new Decimal("0.000000000000000000001")).toString()).toBe("12345678901234567890.123456789012345678902");
  });

  it("follows SQL scale rules", () => {
    expect(new Decimal("0.1").plus(new Decimal("0.20")).toString()).toBe("0.30");
    expect(new Decimal("10.00").times(new Decimal("1.1")).toString()).toBe("11.000");
    expect(new Decimal("1").minus(new Decimal("0.001")).toString()).toBe("0.999");
    expect(new Decimal("10.00").divide(new Decimal("4"), 34).toString()).toBe("2.50");
    expect(new Decimal("1").divide(new Decimal("3"), 34).toString()).toBe("0.3333333333333333333333333333333333");
    expect(new Decimal("7.5").remainder(new Decimal("2")).toString()).toBe("1.5");
    expect(new Decimal("-7.5").remainder(new Decimal("2")).toString()).toBe("-1.5");
    expect(() => new Decimal("1").divide(new Decimal("0.0"), 34)).toThrow(RangeError);
  });

  it("rounds", () => {
    expect(new Decimal("2.345").round(2, "half-up").toString()).toBe("2.35");
    expect(new Decimal("2.345").round(2, "half-even").toString()).toBe("2.34");
    expect(new Decimal("-2.5").round(0, "half-up").toString()).toBe("-3");
    expect(new Decimal("12.3").round(2, "half-up").toString()).toBe("12.30");
    expect(new Decimal("1250").round(-2, "half-up").toString()).toBe("1300");
    expect(new Decimal("-1.5").round(0, "floor").toString()).toBe("-2");
    expect(new Decimal("-1.5").round(0, "ceil").toString()).toBe("-1");
  });

  it("rejects what is not a finite decimal", () => {
    for (const bad of ["", "abc", "1.2.3", "NaN", "Infinity", "0x10", "1e", "--1", " 1"]) {
      expect(() => new Decimal(bad), bad).toThrow();
    }
    expect(() => new Decimal("1e999999999")).toThrow(RangeError);
    expect(() => new Decimal("0e-999999999")).toThrow(RangeError);
    expect(() => new Decimal(NaN)).toThrow(RangeError);
  });

  it("converts", () => {
    expect(new Decimal("-12.99").toBigInt()).toBe(-12n);
    expect(new Decimal("12.30").unscaled()).toBe(1230n);
    expect(new Decimal("0.5").toNumber()).toBe(0.5);
  });
});

describe("normalizeInteger and typeOf", () => {
  it("keeps safe integers as numbers", () => {
    expect(normalizeInteger(5n)).toBe(5);
    expect(normalizeInteger(9007199254740991n)).toBe(9007199254740991);
    expect(normalizeInteger(9007199254740992n)).toBe(9007199254740992n);
    expect(normalizeInteger(-9007199254740992n)).toBe(-9007199254740992n);
  });

  it("names runtime types", () => {
    const cases: [Value, string][] = [
      [null, "null"],
      [true, "boolean"],
      [3, "integer"],
      [3n ** 40n, "integer"],
      [3.5, "float"],
      [NaN, "float"],
      [2 ** 60, "float"],
      [new Decimal("1.0"), "decimal"],
      ["x", "string"],
      [Timestamp.parse("2024-01-01T00:00:00Z"), "timestamp"],
      [Buffer.from("ab"), "bytes"],
      [[1], "list"],
      [{ a: 1 }, "record"],
    ];
    for (const [value, type] of cases) expect(typeOf(value)).toBe(type);
    expect(isRecord({})).toBe(true);
    expect(isRecord(new Decimal("1"))).toBe(false);
  });
});

describe("records", () => {
  it("reads only own fields", () => {
    const row: Row = { a: 1 };
    expect(getField(row, "a")).toBe(1);
    expect(getField(row, "constructor")).toBe(null);
    expect(getField(row, "toString")).toBe(null);
    expect(getField(row, "__proto__")).toBe(null);
  });

  it("sets __proto__ as an ordinary field", () => {
    const row: Row = {};
    setField(row, "__proto__", 5);
    expect(Object.getPrototypeOf(row)).toBe(Object.prototype);
    expect(getField(row, "__proto__")).toBe(5);
    expect(Object.keys(row)).toEqual(["__proto__"]);
  });
});

describe("comparison", () => {
  it("compares numbers of mixed kinds exactly", () => {
    const big = 9007199254740993n; // 2^53 + 1: no double holds it
    expect(compareNumeric(big, 9007199254740992)).toBe(1);
    expect(compareNumeric(9007199254740992, big)).toBe(-1);
    expect(compareNumeric(new Decimal("9007199254740993"), 9007199254740992)).toBe(1);
    expect(compareNumeric(new Decimal("9007199254740993.0"), big)).toBe(0);
    // 0.1 as a double is 0.1000000000000000055511151231257827...
    expect(compareNumeric(new Decimal("0.1"), 0.1)).toBe(-1);
    expect(compareNumeric(new Decimal("0.1000000000000000055"), 0.1)).toBe(-1);
    expect(compareNumeric(new Decimal("0.10000000000000001"), 0.1)).toBe(1);
    expect(compareNumeric(new Decimal("0.1000000000000000056"), 0.1)).toBe(1);
    expect(compareNumeric(0.5, new Decimal("0.50"))).toBe(0);
    expect(compareNumeric(2.5, 2n)).toBe(1);
    expect(compareNumeric(-2.5, -2n)).toBe(-1);
    expect(compareNumeric(5e-324, 0n)).toBe(1);
    expect(compareNumeric(Infinity, 10n ** 400n)).toBe(1);
    expect(compareNumeric(-Infinity, new Decimal("-1e1000"))).toBe(-1);
    expect(compareNumeric(NaN, Infinity)).toBe(1);
    expect(compareNumeric(NaN, NaN)).toBe(0);
    expect(compareNumeric(-0, 0)).toBe(0);
  });

  it("orders strings by code point", () => {
    expect(compareStrings("a", "b")).toBe(-1);
    expect(compareStrings("ab", "a")).toBe(1);
    expect(compareStrings("\uFF61", "😀")).toBe(-1); // U+FF61 < U+1F600, though its UTF-16 unit is larger
    expect(compareStrings("😀", "\uFF61")).toBe(1);
    expect(["b", "😀", "\uFF61", "a"].sort(compareStrings)).toEqual(["a", "b", "\uFF61", "😀"]);
  });

  it("is a total order across kinds", () => {
    const values: Value[] = [
      { b: 1 },
      [1, 2],
      Buffer.from([1]),
      Timestamp.parse("2024-01-01T00:00:00Z"),
      "a",
      new Decimal("2.5"),
      1,
      false,
      null,
    ];
    const sorted = [...values].sort(compareValues);
    expect(sorted.map(typeOf)).toEqual(["null", "boolean", "integer", "decimal", "string", "timestamp", "bytes", "list", "record"]);
    expect(compareValues([1, 2], [1, 3])).toBe(-1);
    expect(compareValues([1, 2], [1])).toBe(1);
    expect(compareValues({ a: 1, b: 2 }, { b: 2, a: 1 })).toBe(0);
    expect(compareValues({ a: 1 }, { b: 1 })).toBe(-1);
    expect(compareValues(Timestamp.parse("2024-01-01T00:00:00.000001Z"), Timestamp.parse("2024-01-01T00:00:00Z"))).toBe(1);
  });

  it("tests deep equality", () => {
    expect(valuesEqual(1, 1n)).toBe(true);
    expect(valuesEqual(1, new Decimal("1.00"))).toBe(true);
    expect(valuesEqual(new Decimal("12.30"), new Decimal("12.3"))).toBe(true);
    expect(valuesEqual(NaN, NaN)).toBe(true);
    expect(valuesEqual("1", 1)).toBe(false);
    expect(valuesEqual(null, 0)).toBe(false);
    expect(valuesEqual(null, null)).toBe(true);
    expect(valuesEqual({ a: [1, { b: Buffer.from("x") }] }, { a: [1n, { b: Buffer.from("x") }] })).toBe(true);
    expect(valuesEqual({ a: 1 }, { a: 1, b: null })).toBe(false);
    expect(valuesEqual([1], { 0: 1 })).toBe(false);
    expect(valuesEqual(Buffer.from("x"), Buffer.from("y"))).toBe(false);
    expect(valuesEqual(Timestamp.parse("2024-01-01T00:00:00Z"), Timestamp.parse("2024-01-01T02:00:00+02:00"))).toBe(true);
    expect(valuesEqual(Timestamp.parse("2024-01-01T00:00:00Z"), Timestamp.parse("2024-01-01T00:00:00"))).toBe(false);
  });
});
