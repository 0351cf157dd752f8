import { describe, expect, it } from "vitest";
import { ExpressionError } from "../../src/expr/errors.js";
import { arithmetic, DIVISION_DIGITS, negate, numericKind, toDecimal, toFloat, type ArithmeticOperator } from "../../src/expr/numeric.js";
import { Decimal } from "../../src/model/decimal.js";
import type { NumericValue, Value } from "../../src/model/value.js";
import type { PlanExpr } from "../../src/plan/types.js";
import fc from "fast-check";

/** The node errors point at (in a compiled expression, the binary node of the operator). */
const node: PlanExpr = { kind: "binary", operator: "/", left: { kind: "null" }, right: { kind: "null" } };
const op = (o: ArithmeticOperator, a: NumericValue, b: NumericValue): NumericValue => arithmetic(o, a, b, node);
const shown = (v: Value): unknown => (v instanceof Decimal ? `decimal ${v.toString()}` : v);
const dec = (t: string): Decimal => new Decimal(t);

describe("numeric kinds", () => {
  it("classifies", () => {
    expect(numericKind(1)).toBe("integer");
    expect(numericKind(1n << 70n)).toBe("integer");
    expect(numericKind(1.5)).toBe("float");
    expect(numericKind(2 ** 60)).toBe("float");
    expect(numericKind(dec("1"))).toBe("decimal");
    expect(shown(toDecimal(12n))).toBe("decimal 12");
    expect(toFloat(dec("0.25"))).toBe(0.25);
  });
});

describe("integer arithmetic", () => {
  it("matches bigint arithmetic and normalizes", () => {
    const int = fc.oneof(fc.maxSafeInteger(), fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n }).map((b) => (b >= -(2n ** 53n) + 1n && b <= 2n ** 53n - 1n ? Number(b) : b)));
    fc.assert(
      fc.property(int, int, (a, b) => {
        const x = BigInt(a);
        const y = BigInt(b);
        const normal = (r: bigint): number | bigint => (r >= -(2n ** 53n) + 1n && r <= 2n ** 53n - 1n ? Number(r) : r);
        expect(op("+", a, b)).toBe(normal(x + y));
        expect(op("-", a, b)).toBe(normal(x - y));
        expect(op("*", a, b)).toBe(normal(x * y));
        if (y !== 0n) expect(op("%", a, b)).toBe(normal(x % y));
      }),
      { numRuns: 2000 },
    );
  });

  it("divides into a decimal of at most 34 significant digits", () => {
    expect(DIVISION_DIGITS).toBe(34);
    expect(shown(op("/", 1, 8))).toBe("decimal 0.125");
    expect(shown(op("/", 2n ** 80n, 2n))).toBe("decimal 604462909807314587353088");
    expect(shown(op("/", 2, 3))).toBe("decimal 0.6666666666666666666666666666666667");
    expect(shown(op("/", 10n ** 40n + 1n, 3))).toBe("decimal 3333333333333333333333333333333333000000");
    expect(op("%", -0 + 0, 5)).toBe(0);
    expect(Object.is(op("%", -4, 2), -0)).toBe(false);
    expect(Object.is(op("*", -3, 0), -0)).toBe(false);
  });
});

describe("decimal arithmetic", () => {
  it("is exact and follows SQL scales", () => {
    expect(shown(op("+", dec("0.1"), dec("0.2")))).toBe("decimal 0.3");
    expect(shown(op("+", dec("0.10"), 1))).toBe("decimal 1.10");
    expect(shown(op("*", dec("10.00"), dec("1.1")))).toBe("decimal 11.000");
    expect(shown(op("*", 3, dec("0.5")))).toBe("decimal 1.5");
    expect(shown(op("-", 9223372036854775807n, dec("0.5")))).toBe("decimal 9223372036854775806.5");
    expect(shown(op("/", dec("10.00"), 4))).toBe("decimal 2.50");
    expect(shown(op("/", dec("10.00"), dec("3")))).toBe("decimal 3.333333333333333333333333333333333");
    expect(shown(op("%", dec("10.5"), 3))).toBe("decimal 1.5");
    expect(shown(negate(dec("1.50")))).toBe("decimal -1.50");
  });

  it("turns into float when a float is involved", () => {
    expect(op("*", dec("0.1"), 0.5)).toBe(0.05);
    expect(op("+", 0.5, 9007199254740993n)).toBe(9007199254740992);
  });
});

describe("division by zero", () => {
  it("is an ExpressionError for every kind and for %", () => {
    const zeros: NumericValue[] = [0, 0n, dec("0.00"), -0];
    for (const dividend of [1, 2n ** 70n, dec("1.5"), 0.5]) {
      for (const zero of zeros) {
        for (const o of ["/", "%"] as const) {
          let error: unknown;
          try {
            op(o, dividend, zero);
          } catch (e) {
            error = e;
          }
          expect(error).toBeInstanceOf(ExpressionError);
          expect((error as ExpressionError).kind).toBe("division-by-zero");
          expect((error as ExpressionError).node).toBe(node);
        }
      }
    }
  });
});

describe("floats", () => {
  it("behave as IEEE doubles otherwise", () => {
    expect(op("+", 0.1, 0.2)).toBe(0.30000000000000004);
    expect(op("-", 1.5, 2)).toBe(-0.5);
    expect(op("%", 5.5, 2)).toBe(1.5);
    expect(op("*", 1e308, 10)).toBe(Infinity);
    expect(negate(0.5)).toBe(-0.5);
    expect(negate(9007199254740992n)).toBe(-9007199254740992n);
    expect(negate(-9007199254740991)).toBe(9007199254740991);
  });
});
