import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Decimal } from "../../src/model/decimal.js";
import type { ChangeEvent } from "../../src/model/event.js";
import {
  canonicalJson,
  decodeEvent,
  decodeJson,
  decodeJsonDocument,
  encodeEvent,
  encodeJson,
  EventDecodeError,
  JsonSyntaxError,
  MAX_JSON_DEPTH,
} from "../../src/model/json.js";
import { pgLsnPosition } from "../../src/model/position.js";
import { Timestamp } from "../../src/model/timestamp.js";
import { canonicalText, rowText } from "../../src/model/canonical.js";
import { compareValues, isRecord, JSON_NULL, normalizeInteger, setField, typeOf, valuesEqual, type Row, type Value } from "../../src/model/value.js";

// ---------------------------------------------------------------- generators

const integer = fc.oneof(
  fc.integer(),
  fc.maxSafeInteger(),
  fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }).map(normalizeInteger),
  fc.constantFrom(9223372036854775807n, -9223372036854775808n, 9007199254740992n, 9007199254740991),
);

const decimal = fc
  .tuple(fc.bigInt({ min: -(10n ** 40n), max: 10n ** 40n }), fc.nat({ max: 30 }))
  .map(([unscaled, scale]) => {
    const digits = (unscaled < 0n ? -unscaled : unscaled).toString().padStart(scale + 1, "0");
    const text = `${unscaled < 0n ? "-" : ""}${digits.slice(0, digits.length - scale)}${scale > 0 ? "." + digits.slice(digits.length - scale) : ""}`;
    return new Decimal(text);
  });

// Any UTF-16 code units, lone surrogates included, and full Unicode text.
const text = fc.oneof(
  fc.string({ unit: "binary" }),
  fc.array(fc.integer({ min: 0, max: 0xffff })).map((units) => String.fromCharCode(...units)),
  fc.constantFrom("", "\u0000", '"\\/\b\f\n\r\t', "\u2028\u2029", "😀", "\uD800", "\uDFFFx"),
);

const fieldName = fc.oneof(text, fc.constantFrom("$bytes", "$record", "__proto__", "constructor", "0", "10"));

const bytes = fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a));

/** Values that read back as themselves (no floats, no timestamps). */
const { value: exactValue } = fc.letrec<{ value: Value; list: Value[]; record: Row }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    integer,
    decimal,
    text,
    bytes,
    tie("list"),
    tie("record"),
  ),
  list: fc.array(tie("value"), { maxLength: 5 }),
  record: fc.array(fc.tuple(fieldName, tie("value")), { maxLength: 5 }).map((entries) => {
    const record: Row = {};
    for (const [k, v] of entries) setField(record, k, v);
    return record;
  }),
}));

/** The same kinds and values, decimals with the same scale. */
function identical(a: Value, b: Value): boolean {
  if (typeOf(a) !== typeOf(b)) return false;
  if (a instanceof Decimal) return b instanceof Decimal && a.scale === b.scale && a.equals(b);
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => identical(x, b[i]!));
  if (typeOf(a) === "record") {
    const ra = a as Row;
    const rb = b as Row;
    const keys = Object.keys(ra);
    return (
      keys.join("\u0000") === Object.keys(rb).join("\u0000") && keys.every((k) => identical(ra[k]!, rb[k]!))
    );
  }
  return valuesEqual(a, b);
}

// ---------------------------------------------------------------- properties

describe("JSON round trip", () => {
  it("decodeJson(encodeJson(v)) is v, for integers, decimals, text, bytes, lists and records", () => {
    fc.assert(
      fc.property(exactValue, (v) => {
        const encoded = encodeJson(v);
        const decoded = decodeJson(encoded);
        expect(identical(decoded, v)).toBe(true);
        expect(encodeJson(decoded)).toBe(encoded);
      }),
      { numRuns: 2000 },
    );
  });

  it("canonical JSON reads back equal too, and does not depend on field order", () => {
    fc.assert(
      fc.property(exactValue, (v) => {
        expect(valuesEqual(decodeJson(canonicalJson(v)), v)).toBe(true);
      }),
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.string(), integer), { maxLength: 8 }), (entries) => {
        const forward: Row = {};
        const backward: Row = {};
        for (const [k, v] of entries) setField(forward, k, v);
        for (const [k] of [...entries].reverse()) setField(backward, k, forward[k]!);
        expect(canonicalJson(forward)).toBe(canonicalJson(backward));
      }),
    );
  });

  // Floats read back as the exact decimal of their shortest text (or an integer, when integral
  // and safe), which converts back to the same double.
  it("floats read back as decimals that convert to the same double", () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (f) => {
        const decoded = decodeJson(encodeJson(f));
        expect(typeof decoded === "number" || decoded instanceof Decimal).toBe(true);
        expect(Number(String(decoded))).toBe(f === 0 ? 0 : f);
      }),
      { numRuns: 2000 },
    );
  });

  it("reads any JSON as JSON.parse does, apart from number types", () => {
    const plain = (v: Value): unknown => {
      if (v instanceof Decimal || typeof v === "bigint") return Number(v.toString()) + 0;
      if (typeof v === "number") return v + 0;
      if (Array.isArray(v)) return v.map(plain);
      if (v !== null && typeof v === "object") {
        const out: Record<string, unknown> = {};
        for (const k of Object.keys(v)) Object.defineProperty(out, k, { value: plain((v as Row)[k]!), enumerable: true });
        return out;
      }
      return v;
    };
    const parsed = (t: string): unknown => plain(JSON.parse(t) as Value);
    fc.assert(
      fc.property(fc.json(), (t) => {
        expect(plain(decodeJson(t))).toEqual(parsed(t));
      }),
      { numRuns: 1000 },
    );
  });

  it("fails exactly where JSON.parse fails, with a JsonSyntaxError", () => {
    const fails = (f: () => unknown): boolean => {
      try {
        f();
        return false;
      } catch {
        return true;
      }
    };
    const mangled = fc
      .tuple(fc.json(), fc.nat(), fc.constantFrom("", "{", "}", "[", "]", ",", ":", '"', "\\", "-", ".", "e", "0", " ", "\n", "x", "\u0001"))
      .map(([t, at, insert]) => t.slice(0, at % (t.length + 1)) + insert + t.slice(at % (t.length + 1) + (at % 2)));
    fc.assert(
      fc.property(fc.oneof(mangled, fc.string()), (t) => {
        let ours: unknown;
        try {
          decodeJson(t);
        } catch (error) {
          ours = error;
        }
        if (ours === undefined) {
          expect(fails(() => JSON.parse(t))).toBe(false);
        } else {
          expect(ours).toBeInstanceOf(JsonSyntaxError);
          // Numbers beyond the decimal range are rejected, where JSON.parse gives Infinity or 0.
          if (!fails(() => JSON.parse(t))) expect((ours as Error).message).toMatch(/out of range|digits after the point/);
        }
      }),
      { numRuns: 3000 },
    );
  });
});

// ---------------------------------------------------------------- the format, by example

describe("JSON format", () => {
  it("writes each kind as documented", () => {
    const row: Row = {
      id: 9223372036854775807n,
      n: 42,
      f: 0.1,
      huge: 2 ** 60,
      nan: NaN,
      inf: -Infinity,
      price: new Decimal("12.30"),
      at: Timestamp.parse("2024-03-01T10:00:00.123456Z"),
      wall: Timestamp.parse("2024-03-01T10:00:00"),
      bin: Buffer.from([0, 1, 255]),
      tags: ["a", null, true],
      nested: { z: 1, a: 2 },
    };
    expect(encodeJson(row)).toBe(
      '{"id":9223372036854775807,"n":42,"f":0.1,"huge":1152921504606847000.0,"nan":"NaN","inf":"-Infinity",' +
        '"price":12.30,"at":"2024-03-01T10:00:00.123456Z","wall":"2024-03-01T10:00:00.000000",' +
        '"bin":{"$bytes":"AAH/"},"tags":["a",null,true],"nested":{"z":1,"a":2}}',
    );
    expect(canonicalJson({ b: 1, a: { d: 1, c: 2 }, B: 0 })).toBe('{"B":0,"a":{"c":2,"d":1},"b":1}');
    expect(encodeJson(-0)).toBe("0");
    expect(encodeJson(1e21)).toBe("1e+21");
  });

  it("escapes records that would read back as bytes", () => {
    expect(encodeJson({ $bytes: "AAH/" })).toBe('{"$record":{"$bytes":"AAH/"}}');
    expect(encodeJson({ $record: 1 })).toBe('{"$record":{"$record":1}}');
    expect(decodeJson('{"$record":{"$bytes":"AAH/"}}')).toEqual({ $bytes: "AAH/" });
    expect(decodeJson('{"$bytes":"AAH/"}')).toEqual(Buffer.from([0, 1, 255]));
    expect(decodeJson('{"$bytes":5}')).toEqual({ $bytes: 5 });
    expect(decodeJson('{"$bytes":"AAH/","x":1}')).toEqual({ $bytes: "AAH/", x: 1 });
    expect(decodeJson('{"$record":{"$bytes":"AAH/"},"x":1}')).toEqual({ $record: Buffer.from([0, 1, 255]), x: 1 });
  });

  it("reads numbers exactly", () => {
    expect(decodeJson("9223372036854775807")).toBe(9223372036854775807n);
    expect(decodeJson("-9007199254740991")).toBe(-9007199254740991);
    expect(decodeJson("123456789012345")).toBe(123456789012345);
    expect(decodeJson("-0")).toBe(0);
    const d = decodeJson("12.30");
    expect(d).toBeInstanceOf(Decimal);
    expect(String(d)).toBe("12.30");
    expect(String(decodeJson("1E2"))).toBe("100");
    expect(encodeJson(new Decimal("1500"))).toBe("1500e0");
    expect(decodeJson("1500e0")).toEqual(new Decimal("1500"));
    expect(String(decodeJson("0.1000000000000000000000000001"))).toBe("0.1000000000000000000000000001");
  });

  it("reads strings, escapes and duplicate keys as JSON.parse does", () => {
    expect(decodeJson(String.raw`"a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00\ud800"`)).toBe(JSON.parse(String.raw`"a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00\ud800"`));
    expect(decodeJson(' { "a" : [ 1 , { } , [ ] ] , "a" : 2 } ')).toEqual({ a: 2 });
    const proto = decodeJson('{"__proto__": {"x": 1}}') as Row;
    expect(Object.getPrototypeOf(proto)).toBe(Object.prototype);
    expect(Object.keys(proto)).toEqual(["__proto__"]);
  });

  it("rejects malformed input with the offset", () => {
    const cases: [string, number][] = [
      ["", 0],
      ["{", 1],
      ['{"a" 1}', 5],
      ["[1,]", 3],
      ["[1 2]", 3],
      ["01", 1],
      ["1.", 1],
      ["+1", 0],
      ['"abc', 0],
      ['"a\nb"', 2],
      ['"\\x"', 1],
      ['"\\u12"', 1],
      ["tru", 0],
      ["nul", 0],
      ["1 2", 2],
      ["{'a':1}", 1],
      ['{"$bytes":"***"}', 0],
      ["1e999999999", 0],
    ];
    for (const [input, offset] of cases) {
      let error: unknown;
      try {
        decodeJson(input);
      } catch (e) {
        error = e;
      }
      expect(error, input).toBeInstanceOf(JsonSyntaxError);
      expect((error as JsonSyntaxError).offset, input).toBe(offset);
      expect((error as Error).message).toMatch(/at offset \d+$/);
    }
  });

  it("rejects nesting too deep for the stack instead of overflowing", () => {
    const deep = "[".repeat(MAX_JSON_DEPTH + 1) + "]".repeat(MAX_JSON_DEPTH + 1);
    expect(() => decodeJson(deep)).toThrow(JsonSyntaxError);
    const ok = "[".repeat(MAX_JSON_DEPTH) + "]".repeat(MAX_JSON_DEPTH);
    expect(() => decodeJson(ok)).not.toThrow();
    expect(() => decodeJson('{"a":'.repeat(100_000))).toThrow(JsonSyntaxError);
  });
});

// ---------------------------------------------------------------- events

describe("change events as JSON lines", () => {
  const event: ChangeEvent = {
    op: "update",
    before: { id: 1, amount: new Decimal("10.00"), note: null },
    after: { id: 1, amount: new Decimal("12.30"), note: "line\nbreak", photo: Buffer.from("png") },
    key: { id: 1 },
    source: {
      connector: "postgres",
      db: "shop",
      schema: "public",
      table: "orders",
      position: pgLsnPosition("0/16B3748"),
      ts: Timestamp.parse("2024-03-01T10:00:00.123456Z"),
      txid: "771",
    },
  };

  it("writes one line in the documented shape", () => {
    const line = encodeEvent(event);
    expect(line).not.toContain("\n");
    expect(line).toBe(
      '{"op":"update","before":{"id":1,"amount":10.00,"note":null},' +
        '"after":{"id":1,"amount":12.30,"note":"line\\nbreak","photo":{"$bytes":"cG5n"}},"key":{"id":1},' +
        '"source":{"connector":"postgres","db":"shop","schema":"public","table":"orders",' +
        '"position":{"kind":"pg-lsn","token":"0/16B3748"},"ts":"2024-03-01T10:00:00.123456Z","txid":"771"}}',
    );
  });

  it("reads back what it wrote", () => {
    const decoded = decodeEvent(encodeEvent(event));
    expect(decoded.op).toBe("update");
    expect(identical(decoded.after, event.after)).toBe(true);
    expect(identical(decoded.before, event.before)).toBe(true);
    expect(decoded.key).toEqual({ id: 1 });
    expect(decoded.source.position).toEqual(event.source.position);
    expect(decoded.source.ts.equals(event.source.ts)).toBe(true);
    expect(decoded.source.txid).toBe("771");
    expect(encodeEvent(decoded)).toBe(encodeEvent(event));
  });

  it("writes a missing txid as null and reads it back as absent", () => {
    const { txid: _, ...source } = event.source;
    const insert: ChangeEvent = { ...event, op: "insert", before: null, source };
    const line = encodeEvent(insert);
    expect(line).toContain('"txid":null');
    expect(line).toContain('"before":null');
    const decoded = decodeEvent(line);
    expect(decoded.before).toBe(null);
    expect("txid" in decoded.source).toBe(false);
  });

  it("rejects lines that are not change events", () => {
    const good = JSON.parse(encodeEvent(event)) as Record<string, unknown>;
    const variants: unknown[] = [
      [],
      { ...good, op: "upsert" },
      { ...good, before: 5 },
      { ...good, source: { ...(good["source"] as object), ts: "yesterday" } },
      { ...good, source: { ...(good["source"] as object), position: "0/1" } },
      { ...good, source: { ...(good["source"] as object), db: 1 } },
      { ...good, source: null },
    ];
    for (const v of variants) expect(() => decodeEvent(JSON.stringify(v)), JSON.stringify(v)).toThrow(EventDecodeError);
    expect(() => decodeEvent("{")).toThrow(JsonSyntaxError);
  });
});

describe("JSON null, a json column's value", () => {
  it("is apart from SQL NULL: its own type, equal only to itself, ordered just after null", () => {
    expect(typeOf(JSON_NULL)).toBe("json-null");
    expect(valuesEqual(JSON_NULL, null)).toBe(false);
    expect(valuesEqual(null, JSON_NULL)).toBe(false);
    expect(valuesEqual(JSON_NULL, JSON_NULL)).toBe(true);
    expect(valuesEqual(JSON_NULL, {})).toBe(false);
    expect(isRecord(JSON_NULL)).toBe(false);
    expect([true, JSON_NULL, null, 0].sort(compareValues)).toEqual([null, JSON_NULL, true, 0]);
  });

  it("reads from a document `null` with decodeJsonDocument, and prints as null", () => {
    expect(decodeJsonDocument("null")).toBe(JSON_NULL);
    expect(decodeJsonDocument(" [null] ")).toEqual([null]);
    expect(decodeJsonDocument('{"a":null}')).toEqual({ a: null });
    expect(decodeJson("null")).toBe(null);
    expect(encodeJson(JSON_NULL)).toBe("null");
    expect(canonicalJson({ b: JSON_NULL, a: 1 })).toBe('{"a":1,"b":null}');
  });

  it("has the canonical json text null, which SQL NULL (no text) never equals", () => {
    expect(canonicalText("json", JSON_NULL)).toBe("null");
    expect(canonicalText("json", null)).toBe(null);
    expect(rowText([canonicalText("json", JSON_NULL)])).not.toBe(rowText([canonicalText("json", null)]));
  });
});
