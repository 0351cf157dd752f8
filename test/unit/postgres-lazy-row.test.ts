/**
 * A lazy snapshot row must be indistinguishable from the plain row `decodeRow` builds from the
 * same COPY line: reads, `in`, key order, spread, JSON, writes — and it must decode a column
 * only when something reads it.
 */
import { describe, expect, it } from "vitest";
import { copyUnescape, decodeCopyRow, LazyRows } from "../../src/connectors/postgres/lazy-row.js";
import { decodeRow, hexBytes, parseBytea, parseValue, rowShape, type ValueParser } from "../../src/connectors/postgres/decode.js";
import { Decimal } from "../../src/model/decimal.js";
import { encodeJson } from "../../src/model/json.js";
import type { Row, Value } from "../../src/model/value.js";

const decoded: string[] = [];
const counting = (name: string, parse: ValueParser): ValueParser => (text) => {
  decoded.push(name);
  return parse(text);
};
const names = ["id", "note", "amount", "2"];
const shape = rowShape("public.t", names, [
  counting("id", (text) => Number(text)),
  counting("note", (text) => text),
  counting("amount", (text) => new Decimal(text)),
  counting("2", (text) => text),
]);
const escaped = [false, true, false, true];
const lines = ["7\ttab\\there \\\\ back\\nslash\t12.30\tx", "8\t\\N\t0.10\t\\N"];

function plain(line: string): Row {
  return decodeRow(shape, line.split("\t").map((field, i) => (field === "\\N" ? null : escaped[i] ? copyUnescape(field) : field)));
}

function lazy(line: string): Row {
  const rows = new LazyRows(shape, escaped, (error) => error);
  return rows.row(line, [0], new Array<Value>(1));
}

describe("lazy snapshot rows", () => {
  it("decode only the key at once, and each other column on its first read", () => {
    decoded.length = 0;
    const row = lazy(lines[0]!);
    expect(decoded).toEqual(["id"]);
    expect(row["amount"]).toEqual(new Decimal("12.30"));
    expect(row["amount"]).toBe(row["amount"]);
    expect(decoded).toEqual(["id", "amount"]);
  });

  it("look like the plain row to every way of reading it", () => {
    for (const line of lines) {
      const expected = plain(line);
      const row = lazy(line);
      expect(Object.keys(row)).toEqual(Object.keys(expected));
      expect({ ...row }).toEqual(expected);
      expect(encodeJson(row)).toBe(encodeJson(expected));
      expect(JSON.stringify(Object.entries(row).map(([k, v]) => [k, String(v)]))).toBe(JSON.stringify(Object.entries(expected).map(([k, v]) => [k, String(v)])));
      expect("note" in row).toBe(true);
      expect("missing" in row).toBe(false);
      expect(Object.hasOwn(row, "amount")).toBe(true);
      expect(row["missing"]).toBeUndefined();
      const seen: string[] = [];
      for (const key in row) seen.push(key);
      expect(seen).toEqual(Object.keys(expected));
    }
  });

  it("become a plain object when written to", () => {
    const row = lazy(lines[0]!);
    row["note"] = "changed";
    delete row["2"];
    expect({ ...row }).toEqual({ id: 7, note: "changed", amount: new Decimal("12.30") });
  });
});

describe("large rows decoded from their COPY bytes", () => {
  const byteaShape = rowShape("public.big", ["id", "data", "note"], [(text) => Number(text), parseBytea, (text) => text]);
  const payload = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) % 256));

  it("reads a bytea's hex straight into its bytes, and the other fields as decodeRow would", () => {
    const line = Buffer.from(`42\t\\\\x${payload.toString("hex")}\ttab\\there`);
    const row = decodeCopyRow(byteaShape, [false, true, true], line);
    expect(row).toEqual({ id: 42, data: payload, note: "tab\there" });
    expect(Buffer.isBuffer(row["data"])).toBe(true);
    expect(decodeCopyRow(byteaShape, [false, true, true], Buffer.from("43\t\\N\t\\N"))).toEqual({ id: 43, data: null, note: null });
  });

  it("says which column does not parse", () => {
    expect(() => decodeCopyRow(byteaShape, [false, true, true], Buffer.from("44\t\\\\x0g\tx"))).toThrow(/cannot read column data of public\.big .*not a hex digit/);
  });

  it("decodes a large streamed bytea in place, into the memory of its text", () => {
    const text = Buffer.from(`\\x${payload.toString("hex")}`);
    const value = parseValue(parseBytea, text) as Buffer;
    expect(value.equals(payload)).toBe(true);
    expect(value.buffer).toBe(text.buffer);
    expect(parseValue((t) => t.toUpperCase(), Buffer.from("é"))).toBe("É");
    expect(hexBytes(Buffer.from("xx0aff"), 2, 6)).toEqual(Buffer.from([0x0a, 0xff]));
    expect(() => hexBytes(Buffer.from("abc"), 0, 3)).toThrow("odd number");
  });
});
