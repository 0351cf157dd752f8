import { describe, expect, it } from "vitest";
import { describeColumnType, fitsIn, integerRange, type ColumnType } from "../../src/model/column-type.js";

const int = (bits: 8 | 16 | 24 | 32 | 64, signed = true): ColumnType => ({ kind: "integer", bits, signed });
const dec = (precision?: number, scale?: number): ColumnType => ({ kind: "decimal", ...(precision !== undefined ? { precision } : {}), ...(scale !== undefined ? { scale } : {}) });

describe("column types", () => {
  it("knows each integer's range, unsigned 64 bits included", () => {
    expect(integerRange({ kind: "integer", bits: 64, signed: false })).toEqual({ min: 0n, max: 18446744073709551615n });
    expect(integerRange({ kind: "integer", bits: 24, signed: true })).toEqual({ min: -8388608n, max: 8388607n });
  });

  it("widens only where every value fits exactly", () => {
    expect(fitsIn(int(32), int(64))).toBe(true);
    expect(fitsIn(int(64), int(32))).toBe(false);
    expect(fitsIn(int(32, false), int(32))).toBe(false);
    expect(fitsIn(int(32, false), int(64))).toBe(true);
    expect(fitsIn(int(64, false), int(64))).toBe(false);
    expect(fitsIn(int(64, false), dec(20, 0))).toBe(true);
    expect(fitsIn(int(64, false), dec(19, 0))).toBe(false);
    expect(fitsIn(int(32), { kind: "float", bits: 64 })).toBe(true);
    expect(fitsIn(int(64), { kind: "float", bits: 64 })).toBe(false);
    expect(fitsIn(dec(12, 2), dec(14, 2))).toBe(true);
    expect(fitsIn(dec(12, 2), dec(13, 3))).toBe(true);
    expect(fitsIn(dec(12, 2), dec(12, 3))).toBe(false);
    expect(fitsIn(dec(12, 2), dec())).toBe(true);
    expect(fitsIn(dec(), dec(38, 10))).toBe(false);
    expect(fitsIn({ kind: "text", length: 3 }, { kind: "text" })).toBe(true);
    expect(fitsIn({ kind: "text" }, { kind: "text", length: 300 })).toBe(false);
    expect(fitsIn({ kind: "timestamp", precision: 3, zone: true }, { kind: "timestamp", zone: true })).toBe(true);
    expect(fitsIn({ kind: "timestamp", zone: false }, { kind: "timestamp", zone: true })).toBe(false);
    expect(fitsIn({ kind: "enum", values: ["a"] }, { kind: "enum", values: ["a", "b"] })).toBe(true);
    expect(fitsIn({ kind: "array", element: int(16) }, { kind: "array", element: int(32) })).toBe(true);
    expect(fitsIn({ kind: "other", name: "inet" }, { kind: "other", name: "inet" })).toBe(true);
    expect(fitsIn({ kind: "other", name: "inet" }, { kind: "text" })).toBe(false);
  });

  it("spells each type neutrally for messages", () => {
    expect(describeColumnType(int(64, false))).toBe("integer(64, unsigned)");
    expect(describeColumnType(dec(12, 2))).toBe("decimal(12,2)");
    expect(describeColumnType({ kind: "timestamp", precision: 6, zone: true })).toBe("timestamp(6, zone)");
    expect(describeColumnType({ kind: "text", length: 3, fixed: true })).toBe("text-fixed(3)");
    expect(describeColumnType({ kind: "array", element: { kind: "uuid" } })).toBe("array(uuid)");
  });
});
