/**
 * Arithmetic on mixed numeric kinds, exact wherever the operands are.
 *
 *   integer op integer   integer, exact: a bigint when the result leaves the safe range,
 *                        a number again when it comes back (`normalizeInteger`)
 *   integer / integer    a decimal, as SQL's numeric division (`7 / 2` is `3.5`), rounded
 *                        half-even to 34 significant digits (IEEE decimal128's precision)
 *                        when it does not terminate (`1 / 3`)
 *   decimal with integer or decimal
 *                        decimal, exact; scales as SQL: + - keep the larger scale, * adds the
 *                        scales (`10.00 * 1.1` is `11.000`), / as above but keeping at least
 *                        the dividend's scale, % the larger scale
 *   anything with a float
 *                        float: the other operand is converted to the nearest double. A float
 *                        is already inexact; a decimal that meets one becomes inexact too,
 *                        rather than a float pretending to be exact.
 *   / or % by zero       an ExpressionError (division-by-zero) for every kind: an event that
 *                        divides by zero goes to the dead-letter sink instead of carrying an
 *                        Infinity or NaN to the sinks
 *   %                    the truncated remainder: its sign is the dividend's (as in SQL and JS)
 *
 * The float case includes integral numbers beyond 2^53 that are not bigints: they can only
 * have come from float arithmetic.
 */
import { Decimal } from "../model/decimal.js";
import { normalizeInteger, type NumericValue } from "../model/value.js";
import type { PlanExpr } from "../plan/types.js";
import { ExpressionError } from "./errors.js";

export type ArithmeticOperator = "+" | "-" | "*" | "/" | "%";

/** Significant digits of a quotient that does not terminate. */
export const DIVISION_DIGITS = 34;

export type NumericKind = "integer" | "float" | "decimal";

export function numericKind(value: NumericValue): NumericKind {
  if (typeof value === "bigint") return "integer";
  if (typeof value === "number") return Number.isSafeInteger(value) ? "integer" : "float";
  return "decimal";
}

/** An integer or decimal as an exact Decimal. */
export function toDecimal(value: number | bigint | Decimal): Decimal {
  return value instanceof Decimal ? value : new Decimal(value);
}

/** The nearest double (lossy for big integers and most decimals). */
export function toFloat(value: NumericValue): number {
  return typeof value === "number" ? value : typeof value === "bigint" ? Number(value) : value.toNumber();
}

function divisionByZero(operator: ArithmeticOperator, node: PlanExpr): never {
  throw new ExpressionError("division-by-zero", operator === "/" ? "division by zero" : "remainder of division by zero", node);
}

/** `left operator right`; `node` (the binary expression) is where errors point. */
export function arithmetic(operator: ArithmeticOperator, left: NumericValue, right: NumericValue, node: PlanExpr): NumericValue {
  const lk = numericKind(left);
  const rk = numericKind(right);
  if (lk === "integer" && rk === "integer") return integerArithmetic(operator, left as number | bigint, right as number | bigint, node);
  if (lk === "float" || rk === "float") return floatArithmetic(operator, toFloat(left), toFloat(right), node);
  return decimalArithmetic(operator, toDecimal(left as number | bigint | Decimal), toDecimal(right as number | bigint | Decimal), node);
}

function integerArithmetic(operator: ArithmeticOperator, a: number | bigint, b: number | bigint, node: PlanExpr): NumericValue {
  if (typeof a === "number" && typeof b === "number") {
    // Safe operands: the double result is exact whenever it is itself a safe integer.
    let r: number;
    switch (operator) {
      case "+":
        r = a + b;
        break;
      case "-":
        r = a - b;
        break;
      case "*":
        r = a * b;
        break;
      case "/":
        if (b === 0) divisionByZero(operator, node);
        return new Decimal(a).divide(new Decimal(b), DIVISION_DIGITS);
      case "%":
        if (b === 0) divisionByZero(operator, node);
        return (a % b) + 0; // + 0 turns -0 into 0
      default: {
        const unreachable: never = operator;
        return unreachable;
      }
    }
    if (Number.isSafeInteger(r)) return r + 0;
  }
  const x = BigInt(a);
  const y = BigInt(b);
  switch (operator) {
    case "+":
      return normalizeInteger(x + y);
    case "-":
      return normalizeInteger(x - y);
    case "*":
      return normalizeInteger(x * y);
    case "/":
      if (y === 0n) divisionByZero(operator, node);
      return new Decimal(x).divide(new Decimal(y), DIVISION_DIGITS);
    case "%":
      if (y === 0n) divisionByZero(operator, node);
      return normalizeInteger(x % y);
    default: {
      const unreachable: never = operator;
      return unreachable;
    }
  }
}

function floatArithmetic(operator: ArithmeticOperator, a: number, b: number, node: PlanExpr): number {
  switch (operator) {
    case "+":
      return a + b;
    case "-":
      return a - b;
    case "*":
      return a * b;
    case "/":
      if (b === 0) divisionByZero(operator, node);
      return a / b;
    case "%":
      if (b === 0) divisionByZero(operator, node);
      return a % b;
    default: {
      const unreachable: never = operator;
      return unreachable;
    }
  }
}

function decimalArithmetic(operator: ArithmeticOperator, a: Decimal, b: Decimal, node: PlanExpr): Decimal {
  try {
    switch (operator) {
      case "+":
        return a.plus(b);
      case "-":
        return a.minus(b);
      case "*":
        return a.times(b);
      case "/":
        if (b.isZero()) divisionByZero(operator, node);
        return a.divide(b, DIVISION_DIGITS);
      case "%":
        if (b.isZero()) divisionByZero(operator, node);
        return a.remainder(b);
      default: {
        const unreachable: never = operator;
        return unreachable;
      }
    }
  } catch (error) {
    if (error instanceof RangeError) throw new ExpressionError("invalid-value", `decimal ${error.message}`, node);
    throw error;
  }
}

/** `-value`, of the same kind. */
export function negate(value: NumericValue): NumericValue {
  if (typeof value === "number") return value === 0 ? 0 : -value;
  if (typeof value === "bigint") return normalizeInteger(-value);
  return value.negated();
}
