/**
 * The canonical texts `dts verify` compares across engines (src/model/canonical.ts): the
 * reference printing of each kind, the row text (injective: no value can forge a boundary,
 * NULL differs from every string), and the kinds two column kinds are compared in.
 */
import { describe, expect, it } from "vitest";
import { bucketOf, canonicalText, commonKind, parseRowText, rowHash, rowText, trimDecimal } from "../../src/model/canonical.js";
import { Decimal } from "../../src/model/decimal.js";
import { Timestamp } from "../../src/model/timestamp.js";

describe("canonical texts", () => {
  it("print each kind one way", () => {
    expect(canonicalText("integer", 9223372036854775807n)).toBe("9223372036854775807");
    expect(canonicalText("decimal", new Decimal("12.30"))).toBe("12.3");
    expect(canonicalText("decimal", new Decimal("1500"))).toBe("1500");
    expect(canonicalText("decimal", new Decimal("-0.50"))).toBe("-0.5");
    expect(canonicalText("decimal", new Decimal("0.00"))).toBe("0");
    expect(canonicalText("float64", 0.1)).toBe("1.0000000000000001e-01");
    expect(canonicalText("float64", 1e20)).toBe("1.0000000000000000e+20");
    expect(canonicalText("float64", 5e-324)).toBe("4.9406564584124654e-324");
    expect(canonicalText("float64", -0)).toBe("-0.0000000000000000e+00");
    expect(canonicalText("float64", NaN)).toBe("NaN");
    expect(canonicalText("float64", -Infinity)).toBe("-Infinity");
    // A real read as the double 1.1 is the real 1.10000002.
    expect(canonicalText("float32", 1.1)).toBe("1.10000002e+00");
    expect(canonicalText("bytes", Buffer.from([1, 0xab]))).toBe("01ab");
    expect(canonicalText("instant", Timestamp.parse("2024-01-01T10:00:01.5Z"))).toBe("2024-01-01T10:00:01.500000Z");
    expect(canonicalText("json", { b: 1, a: [new Decimal("2.50"), null, new Decimal("1500")] })).toBe('{"b":1,"a":[2.50,null,1500e0]}');
    expect(canonicalText("string", null)).toBeNull();
    expect(() => canonicalText("integer", "5")).toThrow(/not a value of kind integer/);
  });

  it("trim a decimal's text without touching its integer digits", () => {
    expect(["100", "100.00", "0.000", "-0.0", "10.500", "-0"].map(trimDecimal)).toEqual(["100", "100", "0", "0", "10.5", "0"]);
  });
});

describe("row texts", () => {
  it("are injective: lengths in UTF-8 bytes, NULL apart from every string", () => {
    const rows: (string | null)[][] = [[null], [""], ["-"], ["1:a"], ["a", "b"], ["a-", null], ["é", "x:y"], []];
    const texts = rows.map(rowText);
    expect(new Set(texts).size).toBe(rows.length);
    expect(rowText(["é", null, ""])).toBe("2:é-0:");
    for (const row of rows) expect(parseRowText(rowText(row))).toEqual(row);
    expect(parseRowText("3:ab")).toBeUndefined();
  });

  it("hash and bucket as the engines do (MD5's first 64 and 32 bits)", () => {
    // md5("abc") = 900150983cd24fb0d6963f7d28e17f72
    expect(rowHash("abc")).toBe(0x900150983cd24fb0n);
    expect(bucketOf("abc", 16)).toBe(0x8);
    expect(bucketOf("abc", 1)).toBe(0);
  });
});

describe("commonKind", () => {
  it("compares equal kinds as themselves, saying what is not compared", () => {
    expect(commonKind("integer", "integer")).toEqual({ kind: "integer" });
    expect(commonKind("decimal", "decimal")).toEqual({ kind: "decimal", note: expect.stringContaining("trailing zeros") });
    expect(commonKind("integer", "decimal")).toEqual({ kind: "decimal", note: expect.stringContaining("by value") });
    expect(commonKind("float64", "float32")).toEqual({ kind: "float32", note: "at single precision" });
    expect(commonKind("integer", "float64")).toEqual({ kind: "float64", note: "integers compared as doubles" });
    expect(commonKind("instant", "local-time").kind).toBe("local-time");
    expect(commonKind("json", "string").kind).toBe("text");
    expect(commonKind(undefined, "integer").kind).toBe("text");
    expect(commonKind("boolean", "integer")).toEqual({ kind: "none", reason: "boolean and integer columns have no exact common form" });
  });
});
