import { describe, expect, it } from "vitest";
import { compileExpr, evaluateAtStart, eventContext, type CompileScope } from "../../src/expr/compile.js";
import { ExpressionError, type ExpressionErrorCode } from "../../src/expr/errors.js";
import type { BinaryOperator } from "../../src/expr/operators.js";
import { Decimal } from "../../src/model/decimal.js";
import type { ChangeEvent } from "../../src/model/event.js";
import { binlogPosition, pgLsnPosition } from "../../src/model/position.js";
import { Timestamp } from "../../src/model/timestamp.js";
import { JSON_NULL, typeOf, type Row, type Value } from "../../src/model/value.js";
import type { PlanExpr, PlanRecordEntry } from "../../src/plan/types.js";

// ---------------------------------------------------------------- plan expressions by hand

// Each builder makes a fresh node, so an error's node can be checked by identity.
const num = (text: string): PlanExpr => ({ kind: "number", text, fractional: /[.eE]/.test(text) });
const str = (value: string): PlanExpr => ({ kind: "string", value });
const bool = (value: boolean): PlanExpr => ({ kind: "boolean", value });
const nil = (): PlanExpr => ({ kind: "null" });
const id = (name: string): PlanExpr => ({ kind: "identifier", name });
/** `path("row.amount")`: an identifier and its members. */
const path = (dotted: string): PlanExpr =>
  dotted
    .split(".")
    .slice(1)
    .reduce<PlanExpr>((object, name) => ({ kind: "member", object, property: name }), id(dotted.split(".")[0]!));
const member = (object: PlanExpr, name: string): PlanExpr => ({ kind: "member", object, property: name });
const index = (object: PlanExpr, i: PlanExpr): PlanExpr => ({ kind: "index", object, index: i });
const bin = (left: PlanExpr, operator: BinaryOperator, right: PlanExpr): PlanExpr => ({ kind: "binary", operator, left, right });
const neg = (operand: PlanExpr): PlanExpr => ({ kind: "unary", operator: "-", operand });
const not = (operand: PlanExpr): PlanExpr => ({ kind: "unary", operator: "not", operand });
const isNull = (operand: PlanExpr, negated = false): PlanExpr => ({ kind: "isNull", operand, negated });
const call = (name: string, ...args: PlanExpr[]): PlanExpr => ({ kind: "call", callee: name, args });
const tpl = (...parts: (string | PlanExpr)[]): PlanExpr => ({ kind: "template", parts });
const list = (...items: PlanExpr[]): PlanExpr => ({ kind: "list", items });
/** `rec(["a", x], ["...", y], ["-b"])`: a field, a spread, a drop. */
const rec = (...entries: ([string, PlanExpr] | [string])[]): PlanExpr => ({
  kind: "record",
  entries: entries.map(([name, value]): PlanRecordEntry => {
    if (name === "...") return { kind: "spread", value: value! };
    if (value === undefined) return { kind: "drop", name: name.slice(1) };
    return { kind: "field", name, value };
  }),
});

// ---------------------------------------------------------------- an event

const commit = Timestamp.parse("2024-03-01T10:00:00.123456Z");
const event: ChangeEvent = {
  op: "update",
  before: { id: 7, amount: new Decimal("9.50"), status: "draft" },
  after: {
    id: 7,
    amount: new Decimal("10.00"),
    status: "paid",
    name: "Zoë",
    qty: 3,
    ratio: 0.5,
    big: 9223372036854775807n,
    tags: ["a", "b", "c"],
    meta: { "odd name": 1, nested: { deep: true } },
    note: null,
    created: Timestamp.parse("2024-02-01T00:00:00Z"),
  },
  key: { id: 7 },
  source: { connector: "postgres", db: "shop", schema: "public", table: "orders", position: pgLsnPosition("0/16B3748"), ts: commit, txid: "771" },
};

interface Options {
  event?: ChangeEvent;
  row?: Row | null;
  target?: string;
  lets?: Record<string, Value>;
  env?: Record<string, string>;
}

function scopeOf(options: Options): CompileScope {
  const env = options.env ?? {};
  return { lets: new Map(Object.entries(options.lets ?? {})), env: (name) => env[name] };
}

function ev(expr: PlanExpr, options: Options = {}): Value {
  const e = options.event ?? event;
  const ctx = eventContext(e, options.target);
  return compileExpr(expr, scopeOf(options))(options.row === undefined ? ctx : { ...ctx, row: options.row });
}

function failure(f: () => unknown): ExpressionError {
  try {
    f();
  } catch (error) {
    if (error instanceof ExpressionError) return error;
    throw error;
  }
  throw new Error("expected an ExpressionError");
}

function expectError(expr: PlanExpr, code: ExpressionErrorCode, message: RegExp, options: Options = {}): ExpressionError {
  const error = failure(() => ev(expr, options));
  expect(error.kind).toBe(code);
  expect(error.message).toMatch(message);
  return error;
}

const dec = (text: string): Decimal => new Decimal(text);
/** Compares decimals by text, so the scale counts. */
const shown = (v: Value): unknown => (v instanceof Decimal ? `decimal ${v.toString()}` : v);

// ---------------------------------------------------------------- tests

describe("literals", () => {
  it("numbers keep their kind and every digit", () => {
    expect(ev(num("42"))).toBe(42);
    expect(ev(num("9223372036854775807"))).toBe(9223372036854775807n);
    expect(shown(ev(num("3.50")))).toBe("decimal 3.50");
    expect(shown(ev(num("1e3")))).toBe("decimal 1000");
    expect(shown(ev(num("0.1000000000000000000000000001")))).toBe("decimal 0.1000000000000000000000000001");
  });

  it("strings, booleans, null, lists", () => {
    expect(ev(str("text"))).toBe("text");
    expect(ev(bool(false))).toBe(false);
    expect(ev(nil())).toBe(null);
    expect(ev(list(num("1"), str("a"), path("row.id")))).toEqual([1, "a", 7]);
  });

  it("records apply fields, spreads and drops in order", () => {
    const r = ev(rec(["...", id("row")], ["total", bin(path("row.amount"), "*", num("1.1"))], ["-note"], ["-tags"], ["-meta"], ["-created"])) as Row;
    expect(Object.keys(r)).toEqual(["id", "amount", "status", "name", "qty", "ratio", "big", "total"]);
    expect(shown(r["total"]!)).toBe("decimal 11.000");
    // A field set again keeps its place; set after a drop, it moves to the end.
    expect(Object.keys(ev(rec(["a", num("1")], ["b", num("2")], ["a", num("3")])) as Row)).toEqual(["a", "b"]);
    expect(ev(rec(["a", num("1")], ["b", num("2")], ["-a"], ["a", num("3")]))).toEqual({ b: 2, a: 3 });
    // Spreading null adds nothing: `...before` on an insert.
    expect(ev(rec(["...", nil()], ["x", num("1")]))).toEqual({ x: 1 });
    expectError(rec(["...", str("no")]), "type", /only a record can be spread, found string/);
  });

  it("a field named __proto__ is an ordinary field", () => {
    const r = ev(rec(["__proto__", num("1")])) as Row;
    expect(Object.getPrototypeOf(r)).toBe(Object.prototype);
    expect(Object.keys(r)).toEqual(["__proto__"]);
  });

  it("templates print each part with string(); a null part prints nothing", () => {
    expect(ev(tpl("order:", path("row.id")))).toBe("order:7");
    expect(ev(tpl("[", path("row.amount"), "|", path("row.note"), "|", path("row.created"), "|", path("row.big"), "]"))).toBe(
      "[10.00||2024-02-01T00:00:00.000000Z|9223372036854775807]",
    );
    expect(ev(tpl(path("row.tags"), " ", bool(true)))).toBe('["a","b","c"] true');
  });
});

describe("names", () => {
  it("see the change event", () => {
    expect(ev(id("op"))).toBe("update");
    expect(ev(path("before.status"))).toBe("draft");
    expect(ev(path("after.status"))).toBe("paid");
    expect(ev(path("row.status"))).toBe("paid");
    expect(ev(id("key"))).toEqual({ id: 7 });
    expect(ev(id("table"))).toBe("public.orders");
    expect(ev(id("target"))).toBe("public.orders");
    expect(ev(id("target"), { target: "archive.orders" })).toBe("archive.orders");
  });

  it("row is after, before on delete, or the image a map step binds", () => {
    const deleted: ChangeEvent = { ...event, op: "delete", after: null };
    expect(ev(path("row.status"), { event: deleted })).toBe("draft");
    expect(ev(path("after.status"), { event: deleted })).toBe(null);
    expect(ev(path("row.status"), { row: event.before })).toBe("draft");
  });

  it("table uses the database where there are no schemas", () => {
    const mysql: ChangeEvent = {
      ...event,
      source: { connector: "mysql", db: "shop", schema: "", table: "orders", position: binlogPosition("mysql-bin.000003", 4567), ts: commit },
    };
    expect(ev(id("table"), { event: mysql })).toBe("shop.orders");
    expect(ev(path("source.position"), { event: mysql })).toBe("mysql-bin.000003:4567");
    expect(ev(path("source.txid"), { event: mysql })).toBe(null);
  });

  it("source is a record of the source metadata", () => {
    expect(ev(id("source"))).toEqual({
      connector: "postgres",
      db: "shop",
      schema: "public",
      table: "orders",
      position: "0/16B3748",
      ts: commit,
      txid: "771",
    });
    expect(ev(path("source.table"))).toBe("orders");
    expect(ev(path("source.ts"))).toBe(commit);
    expect(ev(index(id("source"), str("connector")))).toBe("postgres");
    expect(failure(() => compileExpr(path("source.lsn"), scopeOf({}))).kind).toBe("unknown-name");
  });

  it("lets are constants; unknown names fail at compile time", () => {
    expect(ev(bin(id("rate"), "*", num("2")), { lets: { rate: dec("1.5") } })).toEqual(dec("3.0"));
    const name = id("amout");
    const error = failure(() => compileExpr(name, scopeOf({})));
    expect(error.kind).toBe("unknown-name");
    expect(error.message).toBe('unknown name "amout"');
    expect(error.node).toBe(name);
  });

  it("an expression fixed at start cannot read the event", () => {
    const scope = scopeOf({ lets: { base: "x" }, env: { HOST: "db" } });
    expect(evaluateAtStart(tpl(id("base"), "-", call("env", str("HOST"))), scope)).toBe("x-db");
    const row = id("row");
    const error = failure(() => evaluateAtStart(member(row, "id"), scope));
    expect(error.kind).toBe("not-at-start");
    expect(error.node).toBe(row);
    expect(failure(() => evaluateAtStart(path("source.table"), scope)).kind).toBe("not-at-start");
  });
});

describe("members and indexes", () => {
  it("read fields; a missing field or a member of null is null", () => {
    expect(ev(path("row.meta.nested.deep"))).toBe(true);
    expect(ev(path("row.missing"))).toBe(null);
    expect(ev(path("row.note.anything"))).toBe(null);
    expect(ev(path("before.missing.deeper"))).toBe(null);
    // Object.prototype is not part of a row.
    expect(ev(path("row.constructor"))).toBe(null);
    expect(ev(path("row.toString"))).toBe(null);
  });

  it("a member of a non-record is a type error at the member", () => {
    const e = path("row.status.length");
    const error = expectError(e, "type", /string has no fields; length cannot be read from it/);
    expect(error.node).toBe(e);
  });

  it("index records by string and lists by integer, from the end when negative", () => {
    expect(ev(index(path("row.meta"), str("odd name")))).toBe(1);
    expect(ev(index(id("row"), str("missing")))).toBe(null);
    expect(ev(index(path("row.tags"), num("0")))).toBe("a");
    expect(ev(index(path("row.tags"), num("-1")))).toBe("c");
    expect(ev(index(path("row.tags"), num("3")))).toBe(null);
    expect(ev(index(path("row.tags"), num("-4")))).toBe(null);
    expect(ev(index(path("row.tags"), num("99999999999999999999")))).toBe(null);
    expect(ev(index(path("row.tags"), nil()))).toBe(null);
    expect(ev(index(path("row.note"), num("0")))).toBe(null);
    expectError(index(path("row.tags"), str("0")), "type", /list index must be an integer, found string/);
    expectError(index(path("row.tags"), num("1.0")), "type", /list index must be an integer, found decimal/);
    expectError(index(id("row"), num("1")), "type", /record index must be a string, found integer/);
    expectError(index(path("row.qty"), num("1")), "type", /cannot index integer/);
  });
});

describe("arithmetic", () => {
  it("is exact with decimals", () => {
    expect(ev(bin(bin(num("0.1"), "+", num("0.2")), "==", num("0.3")))).toBe(true);
    expect(shown(ev(bin(path("row.amount"), "*", num("1.1"))))).toBe("decimal 11.000");
    expect(shown(ev(bin(path("row.amount"), "+", num("1"))))).toBe("decimal 11.00");
    expect(shown(ev(bin(path("row.amount"), "-", path("before.amount"))))).toBe("decimal 0.50");
    expect(shown(ev(bin(path("row.amount"), "/", num("3"))))).toBe("decimal 3.333333333333333333333333333333333");
    expect(shown(ev(bin(path("row.amount"), "%", num("3"))))).toBe("decimal 1.00");
  });

  it("keeps 64-bit integers exact", () => {
    expect(ev(bin(num("9223372036854775807"), "-", num("1")))).toBe(9223372036854775806n);
    expect(ev(bin(path("row.big"), "-", num("9223372036854775800")))).toBe(7);
    expect(ev(bin(num("9007199254740991"), "+", num("2")))).toBe(9007199254740993n);
    expect(ev(bin(num("4294967296"), "*", num("4294967296")))).toBe(18446744073709551616n);
    expect(ev(bin(path("row.big"), "%", num("10")))).toBe(7);
    expect(ev(bin(num("-7"), "%", num("2")))).toBe(-1);
    expect(ev(neg(num("9223372036854775808")))).toBe(-9223372036854775808n);
  });

  it("divides integers into decimals", () => {
    expect(shown(ev(bin(num("7"), "/", num("2"))))).toBe("decimal 3.5");
    expect(shown(ev(bin(num("10"), "/", num("2"))))).toBe("decimal 5");
    expect(shown(ev(bin(num("1"), "/", num("3"))))).toBe("decimal 0.3333333333333333333333333333333333");
    expect(shown(ev(bin(num("-2"), "/", num("3"))))).toBe("decimal -0.6666666666666666666666666666666667");
  });

  it("goes to float when a float is involved", () => {
    expect(ev(bin(path("row.ratio"), "*", num("3")))).toBe(1.5);
    expect(ev(bin(path("row.ratio"), "+", path("row.amount")))).toBe(10.5);
    expect(typeOf(ev(bin(path("row.ratio"), "/", num("3"))))).toBe("float");
  });

  it("divides by zero into an error, for every kind", () => {
    for (const [l, r] of [
      ["1", "0"],
      ["1.5", "0.00"],
      ["9223372036854775807", "0"],
    ] as const) {
      expectError(bin(num(l), "/", num(r)), "division-by-zero", /division by zero/);
      expectError(bin(num(l), "%", num(r)), "division-by-zero", /division by zero/);
    }
    const e = bin(path("row.ratio"), "/", num("0"));
    const error = expectError(e, "division-by-zero", /division by zero/);
    expect(error.node).toBe(e);
  });

  it("gives null with a null operand", () => {
    for (const op of ["+", "-", "*", "/", "%"] as const) {
      expect(ev(bin(path("row.note"), op, num("1")))).toBe(null);
      expect(ev(bin(num("1"), op, nil()))).toBe(null);
    }
    expect(ev(bin(num("1"), "/", nil()))).toBe(null);
    expect(ev(neg(nil()))).toBe(null);
  });

  it("negates each kind", () => {
    expect(ev(neg(num("3")))).toBe(-3);
    expect(ev(neg(num("0")))).toBe(0);
    expect(shown(ev(neg(path("row.amount"))))).toBe("decimal -10.00");
    expect(ev(neg(path("row.ratio")))).toBe(-0.5);
    expectError(neg(str("x")), "type", /operator "-" cannot apply to string/);
  });

  it("joins strings with + and refuses to mix", () => {
    expect(ev(bin(str("public."), "+", path("source.table")))).toBe("public.orders");
    expect(ev(bin(str("a"), "+", nil()))).toBe(null);
    expectError(bin(str("n="), "+", num("1")), "type", /operator "\+" cannot apply to string and integer/);
    expectError(bin(num("1"), "+", str("x")), "type", /cannot apply to integer and string/);
    expectError(bin(path("row.status"), "*", num("2")), "type", /operator "\*" cannot apply to string and integer/);
    expectError(bin(bool(true), "-", num("2")), "type", /boolean and integer/);
  });
});

describe("comparison", () => {
  it("compares numbers of any kinds exactly", () => {
    expect(ev(bin(num("1"), "==", num("1.00")))).toBe(true);
    expect(ev(bin(path("row.amount"), "==", num("10")))).toBe(true);
    expect(ev(bin(path("row.amount"), ">", path("before.amount")))).toBe(true);
    expect(ev(bin(path("row.big"), ">", num("9223372036854775806")))).toBe(true);
    expect(ev(bin(path("row.big"), "<", num("9223372036854775806.5")))).toBe(false);
    expect(ev(bin(path("row.ratio"), "<", num("0.50001")))).toBe(true);
    expect(ev(bin(num("2"), "<=", num("2.0")))).toBe(true);
    expect(ev(bin(num("2"), ">=", num("2.01")))).toBe(false);
  });

  it("compares strings, timestamps, booleans", () => {
    expect(ev(bin(str("a"), "<", str("b")))).toBe(true);
    expect(ev(bin(str("b"), "<", str("B")))).toBe(false);
    expect(ev(bin(path("row.created"), "<", path("source.ts")))).toBe(true);
    expect(ev(bin(path("source.ts"), "==", path("source.ts")))).toBe(true);
    expect(ev(bin(path("source.ts"), "!=", path("row.created")))).toBe(true);
    expect(ev(bin(bool(false), "<", bool(true)))).toBe(true);
  });

  it("== and != compare anything, nulls included; ordering with null is null", () => {
    expect(ev(bin(nil(), "==", nil()))).toBe(true);
    expect(ev(bin(path("row.note"), "==", nil()))).toBe(true);
    expect(ev(bin(path("row.note"), "!=", num("0")))).toBe(true);
    expect(ev(bin(str("1"), "==", num("1")))).toBe(false);
    expect(ev(bin(id("key"), "==", rec(["id", num("7")])))).toBe(true);
    expect(ev(bin(path("row.tags"), "==", list(str("a"), str("b"), str("c"))))).toBe(true);
    for (const op of ["<", "<=", ">", ">="] as const) {
      expect(ev(bin(nil(), op, num("1")))).toBe(null);
      expect(ev(bin(str("a"), op, path("row.note")))).toBe(null);
    }
  });

  it("refuses to order unlike kinds", () => {
    expectError(bin(str("10"), "<", num("9")), "type", /operator "<" cannot apply to string and integer/);
    expectError(bin(path("row.tags"), ">", list()), "type", /list and list/);
    expectError(bin(path("row.created"), ">=", str("2024-01-01")), "type", /timestamp and string/);
  });
});

describe("logic", () => {
  const values: [string, () => PlanExpr, boolean | null][] = [
    ["true", () => bool(true), true],
    ["false", () => bool(false), false],
    ["null", () => nil(), null],
  ];

  it("and / or are three-valued", () => {
    const and = (a: boolean | null, b: boolean | null): boolean | null => (a === false || b === false ? false : a === null || b === null ? null : true);
    const or = (a: boolean | null, b: boolean | null): boolean | null => (a === true || b === true ? true : a === null || b === null ? null : false);
    for (const [, l, a] of values) {
      for (const [, r, b] of values) {
        expect(ev(bin(l(), "and", r())), `${a} and ${b}`).toBe(and(a, b));
        expect(ev(bin(l(), "or", r())), `${a} or ${b}`).toBe(or(a, b));
      }
    }
  });

  it("short-circuits", () => {
    const boom = bin(num("1"), "/", num("0"));
    const boomIsBig = bin(boom, ">", num("1"));
    expect(ev(bin(bool(false), "and", boomIsBig))).toBe(false);
    expect(ev(bin(bool(true), "or", boomIsBig))).toBe(true);
    expectError(bin(bool(true), "and", boomIsBig), "division-by-zero", /division by zero/);
  });

  it("not, and type errors", () => {
    expect(ev(not(bool(true)))).toBe(false);
    expect(ev(not(nil()))).toBe(null);
    expect(ev(not(bin(path("row.status"), "==", str("paid"))))).toBe(false);
    expectError(not(num("1")), "type", /operator "not" cannot apply to integer/);
    expectError(bin(num("1"), "and", bool(true)), "type", /operator "and" needs booleans, found integer/);
    expectError(bin(bool(false), "or", str("x")), "type", /operator "or" needs booleans, found string/);
  });

  it("the filter of LANGUAGE.md", () => {
    const filter = bin(bin(id("table"), "==", str("public.orders")), "and", bin(path("row.status"), "!=", str("draft")));
    expect(ev(filter)).toBe(true);
    expect(ev(filter, { row: event.before })).toBe(false);
  });
});

describe("??, is null, in, matches", () => {
  it("?? takes the right side only when the left is null", () => {
    expect(ev(bin(path("row.note"), "??", str("none")))).toBe("none");
    expect(ev(bin(path("row.status"), "??", bin(num("1"), "/", num("0"))))).toBe("paid");
    expect(ev(bin(nil(), "??", nil()))).toBe(null);
    expect(ev(bin(bool(false), "??", bool(true)))).toBe(false);
  });

  it("is null / is not null", () => {
    expect(ev(isNull(path("row.note")))).toBe(true);
    expect(ev(isNull(path("row.missing")))).toBe(true);
    expect(ev(isNull(path("row.id")))).toBe(false);
    expect(ev(isNull(path("row.id"), true))).toBe(true);
    expect(ev(isNull(nil(), true))).toBe(false);
  });

  it("in tests list membership with == and substrings", () => {
    expect(ev(bin(path("row.status"), "in", list(str("paid"), str("shipped"))))).toBe(true);
    expect(ev(bin(path("row.status"), "in", list()))).toBe(false);
    expect(ev(bin(num("10"), "in", list(num("1"), path("row.amount"))))).toBe(true);
    expect(ev(bin(str("b"), "in", path("row.tags")))).toBe(true);
    expect(ev(bin(nil(), "in", list(num("1"), nil())))).toBe(true);
    expect(ev(bin(nil(), "in", list(num("1"))))).toBe(false);
    expect(ev(bin(str("a"), "in", nil()))).toBe(null);
    expect(ev(bin(str("ai"), "in", path("row.status")))).toBe(true);
    expect(ev(bin(str("x"), "in", path("row.status")))).toBe(false);
    expect(ev(bin(str(""), "in", str("")))).toBe(true);
    expect(ev(bin(nil(), "in", str("abc")))).toBe(null);
    expectError(bin(num("1"), "in", str("123")), "type", /operator "in" cannot apply to integer and string/);
    expectError(bin(num("1"), "in", num("1")), "type", /integer and integer/);
  });

  it("in reads a constant list without copying it per event", () => {
    const f = compileExpr(bin(path("row.id"), "in", list(num("7"), num("8"))), scopeOf({}));
    expect(f(eventContext(event))).toBe(true);
    expect(f(eventContext({ ...event, after: { id: 9 } }))).toBe(false);
  });

  it("matches searches with a regex compiled once", () => {
    expect(ev(bin(path("row.status"), "matches", str("^pa")))).toBe(true);
    expect(ev(bin(path("row.status"), "matches", str("ai")))).toBe(true);
    expect(ev(bin(path("row.status"), "matches", str("^ai")))).toBe(false);
    expect(ev(bin(path("row.name"), "matches", str("^Zo.$")))).toBe(true);
    expect(ev(bin(str("😀"), "matches", str("^.$")))).toBe(true); // code points, not UTF-16 units
    expect(ev(bin(path("row.note"), "matches", str("x")))).toBe(null);
    expectError(bin(path("row.qty"), "matches", str("3")), "type", /operator "matches" cannot apply to integer/);
    // An invalid literal pattern fails at compile time, not per event.
    const bad = bin(path("row.status"), "matches", str("(unclosed"));
    const error = failure(() => compileExpr(bad, scopeOf({})));
    expect(error.kind).toBe("invalid-value");
    expect(error.message).toMatch(/invalid regular expression/);
    expect(error.node).toBe(bad);
  });

  it("matches accepts a pattern computed per event", () => {
    const e = bin(path("row.status"), "matches", bin(str("^"), "+", path("before.status")));
    expect(ev(e)).toBe(false);
    expect(ev(e, { row: { status: "drafty" } })).toBe(true);
    expect(ev(bin(str("x"), "matches", path("row.note")))).toBe(null);
  });
});

describe("compile-time work", () => {
  it("folds constants but leaves failing ones to run per event", () => {
    // coalesce(row.id, 1/0) must not fail a pipeline whose rows all have an id.
    const f = compileExpr(call("coalesce", path("row.id"), bin(num("1"), "/", num("0"))), scopeOf({}));
    expect(f(eventContext(event))).toBe(7);
    const g = compileExpr(bin(num("1"), "/", num("0")), scopeOf({}));
    expect(failure(() => g(eventContext(event))).kind).toBe("division-by-zero");
  });

  it("gives each evaluation its own copy of a constant list or record", () => {
    const f = compileExpr(rec(["tags", list(str("a"))]), scopeOf({}));
    const first = f(eventContext(event)) as Row;
    (first["tags"] as Value[]).push("mutated");
    first["extra"] = 1;
    expect(f(eventContext(event))).toEqual({ tags: ["a"] });
  });

  it("does not fold now()", async () => {
    const f = compileExpr(call("now"), scopeOf({}));
    const a = f(eventContext(event)) as Timestamp;
    await new Promise((resolve) => setTimeout(resolve, 5));
    const b = f(eventContext(event)) as Timestamp;
    expect(b.epochMicros > a.epochMicros).toBe(true);
  });

  it("rejects unknown functions and wrong argument counts", () => {
    const unknown = call("lowercase", str("A"));
    const error = failure(() => compileExpr(unknown, scopeOf({})));
    expect(error.kind).toBe("unknown-function");
    expect(error.message).toBe('unknown function "lowercase"');
    expect(failure(() => compileExpr(call("lower"), scopeOf({}))).message).toBe("lower() takes 1 argument, found 0");
    expect(failure(() => compileExpr(call("substr", str("a")), scopeOf({}))).message).toBe("substr() takes 2 to 3 arguments, found 1");
    expect(failure(() => compileExpr(call("coalesce"), scopeOf({}))).message).toBe("coalesce() takes at least 1 argument, found 0");
    expect(failure(() => compileExpr(call("now", num("1")), scopeOf({}))).kind).toBe("arity");
  });
});

describe("env()", () => {
  it("reads a variable at compile time", () => {
    let reads = 0;
    const scope: CompileScope = {
      lets: new Map(),
      env: (name) => {
        reads++;
        return name === "SHOP_PG_URL" ? "postgres://db/shop" : undefined;
      },
    };
    const f = compileExpr(call("env", str("SHOP_PG_URL"), str("postgres://localhost")), scope);
    expect(reads).toBe(1);
    expect(f(eventContext(event))).toBe("postgres://db/shop");
    f(eventContext(event));
    expect(reads).toBe(1);
  });

  it("falls back to the default, or fails naming the variable", () => {
    expect(ev(call("env", str("REDIS_URL"), str("redis://127.0.0.1:6379")))).toBe("redis://127.0.0.1:6379");
    expect(ev(call("env", str("EMPTY"), str("default")), { env: { EMPTY: "" } })).toBe("");
    const e = call("env", str("MISSING_VAR"));
    const error = failure(() => compileExpr(e, scopeOf({})));
    expect(error.kind).toBe("env-unset");
    expect(error.message).toBe('environment variable "MISSING_VAR" is not set and env() has no default');
    expect(error.node).toBe(e);
  });

  it("converts the variable to the type of its default", () => {
    expect(ev(call("env", str("TTL"), num("3600")), { env: { TTL: " 60 " } })).toBe(60);
    expect(ev(call("env", str("TTL"), num("3600")))).toBe(3600);
    expect(ev(call("env", str("ON"), bool(false)), { env: { ON: "TRUE" } })).toBe(true);
    expect(shown(ev(call("env", str("RATE"), num("1.10")), { env: { RATE: "1.25" } }))).toBe("decimal 1.25");
    expect(ev(call("env", str("TABLES"), list()), { env: { TABLES: '["a","b"]' } })).toEqual(["a", "b"]);
    expect(ev(call("env", str("X"), nil()), { env: { X: "text" } })).toBe("text");
    expect(ev(call("env", str("X"), nil()))).toBe(null);
    const error = failure(() => ev(call("env", str("TTL"), num("3600")), { env: { TTL: "soon" } }));
    expect(error.kind).toBe("invalid-value");
    expect(error.message).toBe('environment variable "TTL" must be an integer (like its default), found "soon"');
  });

  it("takes its name at start, never from the event", () => {
    expect(ev(call("env", bin(str("A"), "+", str("B"))), { env: { AB: "yes" } })).toBe("yes");
    expect(ev(call("env", id("name")), { env: { N: "n" }, lets: { name: "N" } })).toBe("n");
    const error = failure(() => compileExpr(call("env", path("row.status")), scopeOf({})));
    expect(error.kind).toBe("not-at-start");
    expect(failure(() => compileExpr(call("env", num("1")), scopeOf({}))).kind).toBe("type");
  });

  it("uses process.env by default", () => {
    process.env["DTS_TEST_ENV_VALUE"] = "from process";
    try {
      expect(compileExpr(call("env", str("DTS_TEST_ENV_VALUE")), { lets: new Map() })(eventContext(event))).toBe("from process");
    } finally {
      delete process.env["DTS_TEST_ENV_VALUE"];
    }
  });
});

describe("a JSON null column value", () => {
  const row: Row = { id: 1, doc: JSON_NULL, gone: null };

  it("is a value, not null: is null is false, == tells it from null, ?? and coalesce keep it", () => {
    expect(ev(isNull(path("row.doc")), { row })).toBe(false);
    expect(ev(isNull(path("row.gone")), { row })).toBe(true);
    expect(ev(bin(path("row.doc"), "==", nil()), { row })).toBe(false);
    expect(ev(bin(path("row.doc"), "==", path("row.doc")), { row })).toBe(true);
    expect(ev(bin(path("row.doc"), "??", num("1")), { row })).toBe(JSON_NULL);
    expect(ev(call("coalesce", path("row.doc"), num("1")), { row })).toBe(JSON_NULL);
    expect(typeOf(ev(path("row.doc"), { row }))).toBe("json-null");
  });

  it("prints as JSON null, has no members, and a map copying it keeps it", () => {
    expect(ev(call("json", path("row.doc")), { row })).toBe("null");
    expect(ev(tpl("[", path("row.doc"), "]"), { row })).toBe("[null]");
    expect(ev(member(path("row.doc"), "a"), { row })).toBe(null);
    expect(ev(index(path("row.doc"), num("0")), { row })).toBe(null);
    expect(ev(rec(["...", id("row")], ["copy", path("row.doc")]), { row })).toEqual({ id: 1, doc: JSON_NULL, gone: null, copy: JSON_NULL });
  });

  it("is refused where a number is needed, as a record is", () => {
    expectError(bin(path("row.doc"), "+", num("1")), "type", /json-null/, { row });
  });
});
