/**
 * The PostgreSQL sink's text encoding: the fast decimal and timestamp printers agree with the
 * model's exact ones, and literals quote what they must.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { inferType } from "../../src/connectors/postgres/ddl.js";
import { arrayLiteral, copyField, decimalText, encoderFor, EncodeError, LARGE_BYTES, largeCopyValues, textArrayLiteral, timestampText } from "../../src/connectors/postgres/encode.js";
import { Decimal, DecimalMath } from "../../src/model/decimal.js";
import { Timestamp } from "../../src/model/timestamp.js";

describe("decimalText", () => {
  it("prints as Decimal.toString does", () => {
    for (const text of ["0", "0.00", "-0.00", "1.5", "-0.001", "12345678.1234567", "100", "1e20", "-123456789.125", "0.0000001", "1500e0", "9999999.9999999"]) {
      expect(decimalText(new Decimal(text))).toBe(new Decimal(text).toString());
    }
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 40n), max: 10n ** 40n }), fc.integer({ min: 0, max: 30 }), fc.integer({ min: 0, max: 5 }), (unscaled, scale, extra) => {
        // unscaled / 10^scale, printed with `extra` more digits than it needs.
        const decimal = Decimal.of(new DecimalMath(unscaled.toString()).div(new DecimalMath(10).pow(scale)), scale + extra);
        expect(decimalText(decimal)).toBe(decimal.toString());
      }),
    );
  });
});

describe("timestampText", () => {
  const reference = (value: Timestamp): string => {
    const iso = value.toISOString();
    const dash = iso.indexOf("-", 1);
    const year = Number(iso.slice(0, dash));
    const bc = year <= 0;
    return `${String(bc ? 1 - year : year).padStart(4, "0")}${iso.slice(dash, dash + 6)} ${iso.slice(dash + 7, dash + 22)}${value.withZone ? "+00" : ""}${bc ? " BC" : ""}`;
  };

  it("prints PostgreSQL's input format for every year", () => {
    expect(timestampText(Timestamp.parse("2024-03-01T10:00:00.123456Z"))).toBe("2024-03-01 10:00:00.123456+00");
    expect(timestampText(Timestamp.parse("1969-12-31T23:59:59.999999"))).toBe("1969-12-31 23:59:59.999999");
    expect(timestampText(Timestamp.parse("-000043-03-15T12:00:00Z"))).toBe("0044-03-15 12:00:00.000000+00 BC");
    expect(timestampText(Timestamp.parse("+012345-01-01T00:00:00Z"))).toBe("12345-01-01 00:00:00.000000+00");
    fc.assert(
      fc.property(fc.bigInt({ min: -210_000_000_000_000_000n, max: 9_000_000_000_000_000_000n }), fc.boolean(), (micros, withZone) => {
        const value = new Timestamp(micros, withZone);
        expect(timestampText(value)).toBe(reference(value));
      }),
    );
  });
});

describe("encoders", () => {
  it("spell values for their column", () => {
    expect(encoderFor({ kind: "bytea", typeName: "bytea" })(Buffer.from([0, 255]))).toBe("\\x00ff");
    expect(encoderFor({ kind: "date", typeName: "date" })(Timestamp.parse("2024-02-29T00:00:00"))).toBe("2024-02-29");
    expect(encoderFor({ kind: "time", typeName: "time" })(Timestamp.parse("2024-02-29T10:11:12.5"))).toBe("10:11:12.500000");
    expect(encoderFor({ kind: "json", typeName: "jsonb" })("text")).toBe('"text"');
    expect(encoderFor({ kind: "json", typeName: "jsonb" })({ a: [1n, new Decimal("2.50")] })).toBe('{"a":[1,2.50]}');
    expect(encoderFor({ kind: "number", typeName: "numeric" })(NaN)).toBe("NaN");
    expect(encoderFor({ kind: "number", typeName: "float8" })(-0)).toBe("-0");
    expect(encoderFor({ kind: "number", typeName: "int8" })(2n ** 63n - 1n)).toBe("9223372036854775807");
    expect(() => encoderFor({ kind: "number", typeName: "integer" })({ a: 1 })).toThrow(EncodeError);
    expect(() => encoderFor({ kind: "text", typeName: "text" })(Buffer.from("x"))).toThrow(/bytes cannot go into a column of type text/);
    const array = { kind: "array", typeName: "text[]", element: { kind: "text", typeName: "text" } } as const;
    expect(encoderFor(array)(["a,b", 'q"u\\ote', null, "NULL", ""])).toBe('{"a,b","q\\"u\\\\ote",NULL,"NULL",""}');
    expect(arrayLiteral([[1, 2], [3, null]], encoderFor({ kind: "number", typeName: "int4" }))).toBe('{{"1","2"},{"3",NULL}}');
  });

  it("quote COPY fields and text arrays", () => {
    expect(copyField(null)).toBe("\\N");
    expect(copyField("a\tb\nc\\d\re")).toBe("a\\tb\\nc\\\\d\\re");
    expect(textArrayLiteral(["x", null, '"'])).toBe('{"x",NULL,"\\""}');
  });
});

describe("inferType (create_tables without a source description)", () => {
  it("takes every value of the batch into account", () => {
    expect(inferType([null, 1, 2])).toBe("bigint");
    expect(inferType([1, 2.5])).toBe("double precision");
    expect(inferType([1, new Decimal("2.50"), NaN])).toBe("numeric");
    expect(inferType([2n ** 64n])).toBe("numeric");
    expect(inferType(["infinity", Timestamp.parse("2024-01-01T00:00:00Z")])).toBe("timestamp with time zone");
    expect(inferType([Timestamp.parse("2024-01-01T00:00:00")])).toBe("timestamp without time zone");
    expect(inferType(["a", 1])).toBe("text");
    expect(inferType([{ a: 1 }])).toBe("jsonb");
    expect(inferType([[NaN, Infinity, new Decimal("1.000")]])).toBe("numeric[]");
    expect(inferType([[1e300, -0]])).toBe("double precision[]");
    expect(inferType([[Timestamp.parse("2000-01-01T00:00:00"), "infinity"]])).toBe("timestamp without time zone[]");
    expect(inferType([[1, "a"]])).toBe("jsonb");
    expect(inferType([[[1, 2], [3, 4]]])).toBe("jsonb");
    expect(inferType([[], null])).toBe("text[]");
    expect(inferType([null])).toBe("text");
  });
});

describe("large bytes into COPY", () => {
  const bytea = encoderFor({ kind: "bytea", typeName: "bytea" });
  const text = encoderFor({ kind: "text", typeName: "text" });

  it("are sent as slices of escaped hex, only for a bytea column and only when large", () => {
    const value = Buffer.from(Array.from({ length: LARGE_BYTES + 12_345 }, (_, i) => i % 251));
    const large = largeCopyValues(["id", "data", "other"], [text, bytea, text], { id: "1", data: value, other: value });
    expect([...large!.keys()]).toEqual([1]);
    const slices = [...large!.get(1)!];
    expect(slices.length).toBeGreaterThan(2);
    expect(slices.every((slice) => slice.length <= 1 << 16)).toBe(true);
    expect(slices.join("")).toBe(copyField(bytea(value)));
    expect(largeCopyValues(["data"], [bytea], { data: Buffer.alloc(10) })).toBeUndefined();
  });
});
