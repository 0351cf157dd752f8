/**
 * Exact decimals that remember their scale.
 *
 * decimal.js does the arithmetic, through a clone configured for this project (1000
 * significant digits — PostgreSQL's largest declared `numeric` precision — and ROUND_HALF_EVEN),
 * so no value ever passes through a double. decimal.js forgets trailing zeros (`12.30` prints
 * `12.3`), but a `numeric(10,2)` column must reach a sink as `12.30`, so `Decimal` wraps a
 * decimal.js value together with its scale (digits after the point, never negative) and prints
 * with exactly that many. The scale follows SQL: a sum or difference keeps the larger scale, a
 * product the sum of the scales, `round(x, n)` has scale n. Division is not defined here: its
 * precision is a language decision (see `src/expr/numeric.ts`), made with `divide()`.
 *
 * Decimals are finite: there is no decimal NaN or Infinity (a connector maps PostgreSQL's
 * `numeric 'NaN'` to a float). Exponents and scales are bounded like PostgreSQL's numeric so
 * that an input such as `1e999999999` is rejected instead of printing a billion zeros.
 */
import { Decimal as DecimalJs } from "decimal.js";

/** Largest power of ten a decimal may reach (PostgreSQL: 131072 digits before the point). */
export const MAX_DECIMAL_EXPONENT = 131071;
/** Most digits after the point (PostgreSQL's largest display scale). */
export const MAX_DECIMAL_SCALE = 16383;
/** Significant digits kept by every operation but division. */
export const DECIMAL_PRECISION = 1000;

/** The configured decimal.js constructor; arithmetic on raw decimal.js values goes through it. */
export const DecimalMath = DecimalJs.clone({
  precision: DECIMAL_PRECISION,
  rounding: DecimalJs.ROUND_HALF_EVEN,
  // Truncated modulo: the result has the sign of the dividend, like SQL and JavaScript.
  modulo: DecimalJs.ROUND_DOWN,
  toExpNeg: -7,
  toExpPos: 21,
  maxE: MAX_DECIMAL_EXPONENT,
  minE: -MAX_DECIMAL_SCALE - DECIMAL_PRECISION,
});
export type DecimalMath = DecimalJs;

/** Rounding modes the language uses: SQL's `round` is half-up; internal rounding is half-even. */
export type DecimalRounding = "half-up" | "half-even" | "down" | "floor" | "ceil";

const roundingModes: Record<DecimalRounding, DecimalJs.Rounding> = {
  "half-up": DecimalJs.ROUND_HALF_UP,
  "half-even": DecimalJs.ROUND_HALF_EVEN,
  down: DecimalJs.ROUND_DOWN,
  floor: DecimalJs.ROUND_FLOOR,
  ceil: DecimalJs.ROUND_CEIL,
};

const decimalSyntax = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

export class Decimal {
  /** The exact value; it never has more digits after the point than `scale`. */
  readonly value: DecimalMath;
  /** Digits printed after the point. */
  readonly scale: number;

  /**
   * From decimal text (`"12.30"`, `"-1.5e-3"`; the scale is the written one, so `"12.30"` has
   * scale 2 and `"1.5e3"` scale 0), an integer, a number (through its shortest round-trip
   * text: `0.1` becomes exactly `0.1`), or a decimal.js value with the scale to give it (the
   * value is rounded half-even when it has more digits than that).
   */
  constructor(input: string | number | bigint | Decimal | DecimalMath, scale?: number) {
    if (input instanceof Decimal) {
      this.value = input.value;
      this.scale = input.scale;
    } else if (typeof input === "bigint") {
      this.value = new DecimalMath(input.toString());
      this.scale = 0;
      checkRange(this.value, input.toString());
    } else if (typeof input === "number" || typeof input === "string") {
      if (typeof input === "number" && !Number.isFinite(input)) throw new RangeError(`a decimal cannot be ${input}`);
      const parsed = parseDecimalText(String(input));
      this.value = parsed.value;
      this.scale = parsed.scale;
    } else {
      const s = Math.min(Math.max(0, Math.trunc(scale ?? input.decimalPlaces())), MAX_DECIMAL_SCALE);
      let v = input;
      if (!v.isFinite()) throw new RangeError(`decimal overflow: ${v.toString()}`);
      if (v.decimalPlaces() > s) v = v.toDecimalPlaces(s, DecimalJs.ROUND_HALF_EVEN);
      checkRange(v, v.toString());
      this.value = v;
      this.scale = s;
    }
  }

  /** A decimal from a decimal.js value and a scale; the value is rounded (half-even) to fit the scale. */
  static of(value: DecimalMath, scale: number): Decimal {
    return new Decimal(value, scale);
  }

  /** A decimal whose scale is the fewest digits that print it exactly (`2.50` → `2.5`). */
  static natural(value: DecimalMath): Decimal {
    return new Decimal(value);
  }

  /** Whether `text` is decimal number syntax this class accepts (digits, optional point and exponent). */
  static isDecimalText(text: string): boolean {
    const m = decimalSyntax.exec(text);
    return m !== null && ((m[2] ?? "") !== "" || (m[3] ?? "") !== "");
  }

  plus(other: Decimal): Decimal {
    return Decimal.of(this.value.plus(other.value), Math.max(this.scale, other.scale));
  }

  minus(other: Decimal): Decimal {
    return Decimal.of(this.value.minus(other.value), Math.max(this.scale, other.scale));
  }

  times(other: Decimal): Decimal {
    return Decimal.of(this.value.times(other.value), this.scale + other.scale);
  }

  /**
   * The quotient rounded half-even to `significantDigits`; its scale is the larger of the
   * dividend's scale and the fewest digits that print the quotient. Throws on a zero divisor.
   */
  divide(other: Decimal, significantDigits: number): Decimal {
    if (other.value.isZero()) throw new RangeError("division by zero");
    const quotient = divisionContext(significantDigits).div(this.value, other.value);
    return Decimal.of(new DecimalMath(quotient), Math.max(this.scale, quotient.decimalPlaces()));
  }

  /** The truncated remainder (sign of the dividend); scale is the larger of the two. Throws on zero. */
  remainder(other: Decimal): Decimal {
    if (other.value.isZero()) throw new RangeError("division by zero");
    return Decimal.of(this.value.mod(other.value), Math.max(this.scale, other.scale));
  }

  negated(): Decimal {
    return Decimal.of(this.value.negated(), this.scale);
  }

  abs(): Decimal {
    return Decimal.of(this.value.abs(), this.scale);
  }

  /** Rounded to `digits` after the point (negative: to tens, hundreds...); the scale becomes max(digits, 0). */
  round(digits: number, mode: DecimalRounding): Decimal {
    const rm = roundingModes[mode];
    if (digits >= 0) return Decimal.of(this.value.toDecimalPlaces(digits, rm), digits);
    const unit = new DecimalMath(10).pow(-digits);
    return Decimal.of(this.value.div(unit).toDecimalPlaces(0, rm).times(unit), 0);
  }

  compare(other: Decimal): -1 | 0 | 1 {
    return this.value.comparedTo(other.value) as -1 | 0 | 1;
  }

  /** Numeric equality: `12.30` equals `12.3`. */
  equals(other: Decimal): boolean {
    return this.value.equals(other.value);
  }

  isZero(): boolean {
    return this.value.isZero();
  }

  isInteger(): boolean {
    return this.value.isInteger();
  }

  isNegative(): boolean {
    return this.value.isNegative() && !this.value.isZero();
  }

  /** The integer part (truncated toward zero), exact. */
  toBigInt(): bigint {
    return BigInt(this.value.trunc().toFixed(0));
  }

  /** The nearest double: lossy, by design. */
  toNumber(): number {
    return this.value.toNumber();
  }

  /** The value times 10^scale, exact: `12.30` → 1230n. */
  unscaled(): bigint {
    return BigInt(this.value.toFixed(this.scale).replace(".", ""));
  }

  /** Plain notation with exactly `scale` digits after the point: `12.30`, `-0.001`, `1500`. */
  toString(): string {
    const text = this.value.toFixed(this.scale);
    // decimal.js prints negative zero as "0"; keep that, but never "-0.00".
    return text.startsWith("-") && this.value.isZero() ? text.slice(1) : text;
  }

  toJSON(): string {
    return this.toString();
  }
}

function parseDecimalText(text: string): { value: DecimalMath; scale: number } {
  const m = decimalSyntax.exec(text);
  const whole = m?.[2] ?? "";
  const fraction = m?.[3] ?? "";
  if (m === null || (whole === "" && fraction === "")) {
    throw new SyntaxError(`not a decimal number: ${JSON.stringify(text.length > 40 ? text.slice(0, 40) + "…" : text)}`);
  }
  const exponentText = m[4];
  // Checked before decimal.js sees it: a huge exponent is an error, not an Infinity or a zero.
  const exponent = exponentText === undefined ? 0 : Number(exponentText);
  if (!Number.isSafeInteger(exponent) || Math.abs(exponent) > MAX_DECIMAL_EXPONENT + MAX_DECIMAL_SCALE + text.length) {
    throw new RangeError(`decimal exponent out of range: ${text.slice(0, 40)}`);
  }
  const scale = Math.max(0, fraction.length - exponent);
  if (scale > MAX_DECIMAL_SCALE) {
    throw new RangeError(`decimal has more than ${MAX_DECIMAL_SCALE} digits after the point: ${text.slice(0, 40)}`);
  }
  const value = new DecimalMath(text);
  checkRange(value, text);
  return { value, scale };
}

function checkRange(value: DecimalMath, text: string): void {
  if (!value.isFinite() || (!value.isZero() && value.e > MAX_DECIMAL_EXPONENT)) {
    throw new RangeError(`decimal out of range: ${text.slice(0, 40)}`);
  }
}

const divisionContexts = new Map<number, typeof DecimalMath>();

function divisionContext(significantDigits: number): typeof DecimalMath {
  let ctor = divisionContexts.get(significantDigits);
  if (ctor === undefined) {
    ctor = DecimalMath.clone({ precision: significantDigits });
    divisionContexts.set(significantDigits, ctor);
  }
  return ctor;
}
