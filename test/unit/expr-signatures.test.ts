import { describe, expect, it } from "vitest";
import { arg, event } from "./expr-fixtures.js";
import { compileExpr, eventContext } from "../../src/expr/compile.js";
import { ExpressionError } from "../../src/expr/errors.js";
import type { BinaryOperator, UnaryOperator } from "../../src/expr/operators.js";
import {
  binaryResultType,
  callResultType,
  EVENT_NAMES,
  FUNCTIONS,
  isAssignable,
  joinTypes,
  parameterTypes,
  SOURCE_FIELDS,
  unaryResultType,
  type StaticType,
} from "../../src/expr/signatures.js";
import { Decimal } from "../../src/model/decimal.js";
import { Timestamp } from "../../src/model/timestamp.js";
import { isIntegerValue, isNumeric, typeOf, type Row, type Value } from "../../src/model/value.js";
import type { PlanExpr } from "../../src/plan/types.js";

// The checker decides with these tables before anything runs; the runtime decides with
// values. This file checks that the two agree on a sample of every kind.

const samples: Record<Exclude<StaticType, "any" | "number">, Value[]> = {
  null: [null],
  boolean: [true, false],
  integer: [3, 9223372036854775807n],
  float: [0.3],
  decimal: [new Decimal("1.50")],
  string: ["12"],
  timestamp: [Timestamp.parse("2024-01-01T00:00:00Z")],
  bytes: [Buffer.from("ab")],
  list: [["12", 3]],
  record: [{ a: 1 }],
};
const kinds = Object.keys(samples) as (keyof typeof samples)[];

/** Whether a runtime value fits a static type. A float may come out integral: see value.ts. */
function fits(type: StaticType, value: Value): boolean {
  if (value === null || type === "any") return true;
  switch (type) {
    case "number":
      return isNumeric(value);
    case "float":
      return typeof value === "number";
    case "integer":
      return isIntegerValue(value);
    default:
      return typeOf(value) === type;
  }
}


type Outcome = { value: Value } | { error: ExpressionError };

function run(expr: PlanExpr, args: Value[]): Outcome {
  const row: Row = {};
  args.forEach((v, i) => (row[`a${i}`] = v));
  try {
    return { value: compileExpr(expr, { lets: new Map() })({ ...eventContext(event), row }) };
  } catch (error) {
    if (error instanceof ExpressionError) return { error };
    throw error;
  }
}

function* combinations(n: number): Generator<(keyof typeof samples)[]> {
  if (n === 0) {
    yield [];
    return;
  }
  for (const rest of combinations(n - 1)) for (const k of kinds) yield [...rest, k];
}

function* valueTuples(types: (keyof typeof samples)[]): Generator<Value[]> {
  if (types.length === 0) {
    yield [];
    return;
  }
  for (const rest of valueTuples(types.slice(1))) for (const v of samples[types[0]!]) yield [v, ...rest];
}

describe("operators: static types agree with the runtime", () => {
  const binary: BinaryOperator[] = ["??", "or", "and", "==", "!=", "<", "<=", ">", ">=", "in", "matches", "+", "-", "*", "/", "%"];

  it.each(binary)("%s", (operator) => {
    for (const [l, r] of combinations(2)) {
      const expected = binaryResultType(operator, l!, r!);
      for (const [a, b] of valueTuples([l!, r!])) {
        const expr: PlanExpr = { kind: "binary", operator, left: arg(0), right: arg(1) };
        const outcome = run(expr, [a!, b!]);
        const label = `${typeOf(a!)} ${operator} ${typeOf(b!)}`;
        if ("error" in expected) {
          // A null operand, or the left side of and/or, may settle the result before the other
          // is looked at.
          const shortCircuit = (operator === "and" && a === false) || (operator === "or" && a === true);
          if ("error" in outcome) expect(outcome.error.kind, label).toBe("type");
          else if (!shortCircuit) expect(outcome.value, `${label}: static error, runtime value`).toBe(null);
        } else {
          expect("value" in outcome, `${label}: static ${expected.type}, runtime ${"error" in outcome ? outcome.error.message : ""}`).toBe(true);
          if ("value" in outcome) expect(fits(expected.type, outcome.value), `${label} gave ${typeOf(outcome.value)}, static ${expected.type}`).toBe(true);
        }
      }
    }
  });

  it.each(["-", "not"] as UnaryOperator[])("unary %s", (operator) => {
    for (const [k] of combinations(1)) {
      const expected = unaryResultType(operator, k!);
      for (const [v] of valueTuples([k!])) {
        const outcome = run({ kind: "unary", operator, operand: arg(0) }, [v!]);
        if ("error" in expected) expect("error" in outcome && outcome.error.kind, `${operator} ${k}`).toBe("type");
        else expect("value" in outcome && fits(expected.type, outcome.value), `${operator} ${k}`).toBe(true);
      }
    }
  });

  it("explains refusals like the catalogue", () => {
    expect(binaryResultType("+", "string", "integer")).toEqual({ error: 'operator "+" cannot apply to string and integer' });
    expect(binaryResultType("*", "string", "any")).toEqual({ error: 'operator "*" cannot apply to string and a value' });
    expect(unaryResultType("not", "integer")).toEqual({ error: 'operator "not" cannot apply to integer' });
    expect(binaryResultType("+", "integer", "integer")).toEqual({ type: "integer" });
    expect(binaryResultType("/", "integer", "integer")).toEqual({ type: "decimal" });
    expect(binaryResultType("*", "decimal", "integer")).toEqual({ type: "decimal" });
    expect(binaryResultType("*", "decimal", "float")).toEqual({ type: "float" });
    expect(binaryResultType("+", "any", "integer")).toEqual({ type: "number" });
    expect(binaryResultType("+", "any", "string")).toEqual({ type: "string" });
    expect(binaryResultType("??", "null", "string")).toEqual({ type: "string" });
    expect(binaryResultType("??", "integer", "decimal")).toEqual({ type: "number" });
  });
});

describe("functions: static types agree with the runtime", () => {
  const names = [...FUNCTIONS.keys()].filter((n) => n !== "env" && n !== "now");

  it.each(names)("%s", (name) => {
    const signature = FUNCTIONS.get(name)!;
    for (let n = signature.minArgs; n <= Math.min(signature.maxArgs, 3); n++) {
      for (const types of combinations(n)) {
        const accepted = types.every((t, i) => isAssignable(t, parameterTypes(signature, i)));
        const resultType = callResultType(signature, types);
        for (const values of valueTuples(types)) {
          const call: PlanExpr = { kind: "call", callee: name, args: values.map((_, i) => arg(i)) };
          const outcome = run(call, values);
          const label = `${name}(${types.join(", ")})`;
          if (accepted) {
            // The right kinds may still hold unusable values (int("12") is fine, a regex may not be).
            if ("error" in outcome) expect(outcome.error.kind, `${label}: ${outcome.error.message}`).toBe("invalid-value");
            else expect(fits(resultType, outcome.value), `${label} gave ${typeOf(outcome.value)}, static ${resultType}`).toBe(true);
          } else if ("value" in outcome) {
            expect(outcome.value, `${label}: static refusal, runtime value`).toBe(null);
          } else {
            expect(outcome.error.kind, label).toBe("type");
          }
        }
      }
    }
  });

  it("describes env and now", () => {
    const env = FUNCTIONS.get("env")!;
    expect(env.startOnly).toBe(true);
    expect(callResultType(env, ["string"])).toBe("string");
    expect(callResultType(env, ["string", "integer"])).toBe("integer");
    expect(FUNCTIONS.get("now")!.volatile).toBe(true);
    expect(FUNCTIONS.get("concat")!.maxArgs).toBe(Infinity);
    expect(callResultType(FUNCTIONS.get("lower")!, ["null"])).toBe("null");
    expect(callResultType(FUNCTIONS.get("json")!, ["null"])).toBe("string");
    expect(callResultType(FUNCTIONS.get("round")!, ["decimal", "integer"])).toBe("decimal");
    expect(callResultType(FUNCTIONS.get("abs")!, ["integer"])).toBe("integer");
    expect(callResultType(FUNCTIONS.get("coalesce")!, ["null", "string", "string"])).toBe("string");
  });
});

describe("type vocabulary", () => {
  it("assignability treats unknowns leniently", () => {
    expect(isAssignable("any", ["string"])).toBe(true);
    expect(isAssignable("null", ["string"])).toBe(true);
    expect(isAssignable("integer", ["number"])).toBe(true);
    expect(isAssignable("number", ["integer"])).toBe(true);
    expect(isAssignable("string", ["number"])).toBe(false);
    expect(isAssignable("decimal", ["integer"])).toBe(false);
  });

  it("joins", () => {
    expect(joinTypes("integer", "integer")).toBe("integer");
    expect(joinTypes("integer", "null")).toBe("integer");
    expect(joinTypes("integer", "float")).toBe("number");
    expect(joinTypes("string", "integer")).toBe("any");
  });

  it("names what an expression sees", () => {
    expect(Object.keys(EVENT_NAMES).sort()).toEqual(["after", "before", "key", "op", "row", "source", "table", "target"]);
    expect(Object.keys(SOURCE_FIELDS).sort()).toEqual(["connector", "db", "position", "schema", "table", "ts", "txid"]);
  });
});
