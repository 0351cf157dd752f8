import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { arg, event } from "./expr-fixtures.js";
import { BUILTINS, stringOf } from "../../src/expr/builtins.js";
import { compileExpr, eventContext } from "../../src/expr/compile.js";
import { ExpressionError, type ExpressionErrorCode } from "../../src/expr/errors.js";
import { FUNCTIONS } from "../../src/expr/signatures.js";
import { Decimal } from "../../src/model/decimal.js";
import { Timestamp } from "../../src/model/timestamp.js";
import { typeOf, type Row, type Value } from "../../src/model/value.js";
import type { PlanExpr } from "../../src/plan/types.js";

// Arguments are given as values through `row`, so that every kind (bytes, timestamps, nulls)
// can be passed without a literal syntax for it: f(row.a0, row.a1, ...).

function callExpr(name: string, arity: number): PlanExpr {
  return { kind: "call", callee: name, args: Array.from({ length: arity }, (_, i) => arg(i)) };
}

function fn(name: string, ...args: Value[]): Value {
  const row: Row = {};
  args.forEach((v, i) => (row[`a${i}`] = v));
  return compileExpr(callExpr(name, args.length), { lets: new Map() })({ ...eventContext(event), row });
}

function fails(code: ExpressionErrorCode, message: RegExp, name: string, ...args: Value[]): ExpressionError {
  try {
    fn(name, ...args);
  } catch (error) {
    expect(error).toBeInstanceOf(ExpressionError);
    expect((error as ExpressionError).kind).toBe(code);
    expect((error as ExpressionError).message).toMatch(message);
    return error as ExpressionError;
  }
  throw new Error(`${name}() did not fail`);
}

const dec = (text: string): Decimal => new Decimal(text);
const shown = (v: Value): unknown => (v instanceof Decimal ? `decimal ${v.toString()}` : v);
const ts = Timestamp.parse("2024-03-01T10:00:00.123456Z");

describe("the function table", () => {
  it("has an implementation for every signature but env (read at compile time)", () => {
    const names = [...FUNCTIONS.keys()].sort();
    expect(names).toEqual(
      ["abs", "ceil", "coalesce", "concat", "env", "float", "floor", "hash", "int", "json", "length", "lower", "now", "parse_json", "replace", "round", "string", "substr", "trim", "upper"].sort(),
    );
    expect([...BUILTINS.keys()].sort()).toEqual(names.filter((n) => n !== "env"));
  });

  it("returns null for a null argument, except coalesce, concat and json", () => {
    const sample: Record<string, Value[]> = {
      lower: ["A"],
      upper: ["a"],
      trim: [" a "],
      length: ["abc"],
      substr: ["abc", 1, 1],
      replace: ["abc", "b", "x"],
      string: [1],
      int: ["1"],
      float: [1],
      round: [1.5, 0],
      floor: [1.5],
      ceil: [1.5],
      abs: [-1],
      hash: [1],
      parse_json: ["1"],
    };
    for (const [name, args] of Object.entries(sample)) {
      expect(fn(name, ...args), name).not.toBe(null);
      for (let i = 0; i < args.length; i++) {
        const withNull = args.map((v, j) => (j === i ? null : v));
        expect(fn(name, ...withNull), `${name} with null argument ${i + 1}`).toBe(null);
      }
    }
    expect(fn("coalesce", null, null, 3)).toBe(3);
    expect(fn("concat", "a", null, "b")).toBe("ab");
    expect(fn("json", null)).toBe("null");
  });
});

describe("text functions", () => {
  it("lower, upper, trim", () => {
    expect(fn("lower", "ÀBC")).toBe("àbc");
    expect(fn("upper", "straße")).toBe("STRASSE");
    expect(fn("trim", " \t a b \n")).toBe("a b");
    const error = fails("type", /argument 1 of lower\(\) must be a string, found integer/, "lower", 5);
    // The error points at the argument, not at the whole call.
    expect(error.node).toEqual(arg(0));
  });

  it("length counts code points, items and bytes", () => {
    expect(fn("length", "Zoë")).toBe(3);
    expect(fn("length", "a😀b")).toBe(3);
    expect(fn("length", "")).toBe(0);
    expect(fn("length", [1, 2, null])).toBe(3);
    expect(fn("length", Buffer.from([1, 2]))).toBe(2);
    fails("type", /argument 1 of length\(\) must be a string, a list or bytes, found integer/, "length", 12);
  });

  it("substr is 0-based on code points", () => {
    expect(fn("substr", "abcdef", 2)).toBe("cdef");
    expect(fn("substr", "abcdef", 2, 3)).toBe("cde");
    expect(fn("substr", "abcdef", 0, 0)).toBe("");
    expect(fn("substr", "abcdef", 10)).toBe("");
    expect(fn("substr", "abcdef", 4, 10)).toBe("ef");
    expect(fn("substr", "abcdef", -2)).toBe("ef");
    expect(fn("substr", "abcdef", -10, 2)).toBe("ab");
    expect(fn("substr", "a😀b😀c", 1, 3)).toBe("😀b😀");
    expect(fn("substr", "a😀b", 9007199254740993n)).toBe("");
    fails("invalid-value", /count must not be negative/, "substr", "abc", 0, -1);
    fails("type", /argument 2 of substr\(\) must be an integer, found decimal/, "substr", "abc", dec("1.5"));
  });

  it("replace replaces every occurrence of plain text", () => {
    expect(fn("replace", "a-b-c", "-", "+")).toBe("a+b+c");
    expect(fn("replace", "a.b", ".", "$&$&")).toBe("a$&$&b");
    expect(fn("replace", "abc", "", "x")).toBe("abc");
    expect(fn("replace", "aaa", "aa", "b")).toBe("ba");
  });

  it("concat joins string() of each argument, skipping nulls", () => {
    expect(fn("concat", "id:", 7, "/", dec("1.50"), "/", true)).toBe("id:7/1.50/true");
    expect(fn("concat", null, null)).toBe("");
  });
});

describe("string()", () => {
  it("prints every kind", () => {
    const cases: [Value, string][] = [
      [true, "true"],
      [42, "42"],
      [-9223372036854775808n, "-9223372036854775808"],
      [0.1, "0.1"],
      [1e21, "1e+21"],
      [NaN, "NaN"],
      [-Infinity, "-Infinity"],
      [dec("12.30"), "12.30"],
      [dec("1e-8"), "0.00000001"],
      ["text", "text"],
      [ts, "2024-03-01T10:00:00.123456Z"],
      [Timestamp.parse("2024-03-01 10:00:00"), "2024-03-01T10:00:00.000000"],
      [Buffer.from([0, 1, 255]), "AAH/"],
      [[1, "a", null], '[1,"a",null]'],
      [{ b: dec("1.0"), a: [true] }, '{"a":[true],"b":1.0}'],
    ];
    for (const [value, text] of cases) {
      expect(fn("string", value)).toBe(text);
      expect(stringOf(value)).toBe(text);
    }
    expect(fn("string", null)).toBe(null);
    expect(stringOf(null)).toBe("");
  });
});

describe("int() and float()", () => {
  it("int parses text and truncates toward zero", () => {
    expect(fn("int", "12")).toBe(12);
    expect(fn("int", " -12 ")).toBe(-12);
    expect(fn("int", "+7")).toBe(7);
    expect(fn("int", "9223372036854775807")).toBe(9223372036854775807n);
    expect(fn("int", "12.9")).toBe(12);
    expect(fn("int", "-1.5e2")).toBe(-150);
    expect(fn("int", 3.7)).toBe(3);
    expect(fn("int", -3.7)).toBe(-3);
    expect(fn("int", 1e20)).toBe(100000000000000000000n);
    expect(fn("int", dec("-12.99"))).toBe(-12);
    expect(fn("int", dec("92233720368547758070.5"))).toBe(92233720368547758070n);
    expect(fn("int", 5n)).toBe(5n);
    expect(fn("int", true)).toBe(1);
    fails("invalid-value", /int\(\): cannot read "abc" as a number/, "int", "abc");
    fails("invalid-value", /int\(\): cannot read "" as a number/, "int", "");
    fails("invalid-value", /NaN has no integer value/, "int", NaN);
    fails("type", /argument 1 of int\(\) must be a number, found timestamp/, "int", ts);
  });

  it("float converts, possibly losing digits", () => {
    expect(fn("float", dec("0.1"))).toBe(0.1);
    expect(fn("float", 9007199254740993n)).toBe(9007199254740992);
    expect(fn("float", "2.5")).toBe(2.5);
    expect(fn("float", " 1e3 ")).toBe(1000);
    expect(fn("float", "NaN")).toBeNaN();
    expect(fn("float", "-Infinity")).toBe(-Infinity);
    expect(fn("float", 0.25)).toBe(0.25);
    expect(fn("float", false)).toBe(0);
    fails("invalid-value", /cannot read "1,5" as a number/, "float", "1,5");
    fails("type", /must be a number, found list/, "float", []);
  });
});

describe("rounding and abs", () => {
  it("round is half away from zero and keeps the numeric kind", () => {
    expect(shown(fn("round", dec("2.345"), 2))).toBe("decimal 2.35");
    expect(shown(fn("round", dec("2.5")))).toBe("decimal 3");
    expect(shown(fn("round", dec("-2.5")))).toBe("decimal -3");
    expect(shown(fn("round", dec("12.3"), 2))).toBe("decimal 12.30");
    expect(shown(fn("round", dec("1250.75"), -2))).toBe("decimal 1300");
    expect(fn("round", 2.5)).toBe(3);
    expect(fn("round", -2.5)).toBe(-3);
    expect(fn("round", 2.675, 2)).toBe(2.68); // the decimal the user sees, not the binary value below it
    expect(fn("round", 1.005, 2)).toBe(1.01);
    expect(fn("round", NaN)).toBeNaN();
    expect(fn("round", 1234, -2)).toBe(1200);
    expect(fn("round", -1250, -2)).toBe(-1300);
    expect(fn("round", 1234, 2)).toBe(1234);
    expect(fn("round", 9223372036854775807n, -3)).toBe(9223372036854776000n);
    fails("type", /argument 2 of round\(\) must be an integer, found string/, "round", 1.5, "2");
    fails("type", /argument 1 of round\(\) must be a number, found string/, "round", "1.5");
  });

  it("floor and ceil", () => {
    expect(shown(fn("floor", dec("-1.5")))).toBe("decimal -2");
    expect(shown(fn("ceil", dec("-1.5")))).toBe("decimal -1");
    expect(shown(fn("ceil", dec("1.000")))).toBe("decimal 1");
    expect(fn("floor", 2.7)).toBe(2);
    expect(fn("ceil", 2.1)).toBe(3);
    expect(fn("floor", 7)).toBe(7);
    expect(fn("ceil", -9223372036854775807n)).toBe(-9223372036854775807n);
  });

  it("abs keeps the kind", () => {
    expect(fn("abs", -3)).toBe(3);
    expect(fn("abs", -2.5)).toBe(2.5);
    expect(shown(fn("abs", dec("-0.50")))).toBe("decimal 0.50");
    expect(fn("abs", -9223372036854775808n)).toBe(9223372036854775808n);
    fails("type", /must be a number, found boolean/, "abs", true);
  });
});

describe("json, hash, parse_json, now", () => {
  it("json is canonical JSON", () => {
    expect(fn("json", { b: 1, a: [dec("1.50"), "x", Buffer.from("hi")] })).toBe('{"a":[1.50,"x",{"$bytes":"aGk="}],"b":1}');
    expect(fn("json", 9223372036854775807n)).toBe("9223372036854775807");
    expect(fn("json", "a\"b")).toBe('"a\\"b"');
    expect(fn("json", ts)).toBe('"2024-03-01T10:00:00.123456Z"');
  });

  it("hash is the hex SHA-256 of json()", () => {
    const value = { id: 7, name: "Zoë" };
    const expected = createHash("sha256").update('{"id":7,"name":"Zoë"}', "utf8").digest("hex");
    expect(fn("hash", value)).toBe(expected);
    expect(fn("hash", { name: "Zoë", id: 7 })).toBe(expected);
    expect(fn("hash", "")).toBe(createHash("sha256").update('""').digest("hex"));
  });

  it("parse_json keeps numbers exact", () => {
    const v = fn("parse_json", '{"id": 9223372036854775807, "price": 12.30, "tags": ["a"]}') as Row;
    expect(v["id"]).toBe(9223372036854775807n);
    expect(shown(v["price"]!)).toBe("decimal 12.30");
    expect(v["tags"]).toEqual(["a"]);
    expect(fn("parse_json", "null")).toBe(null);
    fails("invalid-value", /parse_json\(\): .*at offset 1/, "parse_json", "{");
    fails("type", /must be a string/, "parse_json", 5);
  });

  it("now is a timestamp with a zone", () => {
    const before = BigInt(Date.now()) * 1000n;
    const t = fn("now") as Timestamp;
    expect(typeOf(t)).toBe("timestamp");
    expect(t.withZone).toBe(true);
    expect(t.epochMicros >= before - 2000n).toBe(true);
  });
});
