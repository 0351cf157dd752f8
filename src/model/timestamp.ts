/**
 * Microsecond timestamps.
 *
 * A JavaScript `Date` keeps milliseconds, but PostgreSQL and MySQL keep microseconds, and a
 * value must reach a sink exactly as the source had it; so a timestamp is a count of
 * microseconds since 1970-01-01T00:00:00 in a `bigint`, which also covers PostgreSQL's whole
 * range (4713 BC to 294276 AD) where a `Date` does not. `withZone` says what the count means:
 * true for an instant (`timestamptz`, a commit time), printed with `Z`; false for a wall-clock
 * reading without a zone (`timestamp`), printed without one. The calendar is the proleptic
 * Gregorian one, computed with integer arithmetic rather than through `Date`, so that years
 * before 1 or after 9999 print correctly (ISO 8601 expanded years, `+010000-01-01T...`).
 */

const MICROS_PER_SECOND = 1_000_000n;
const MICROS_PER_DAY = 86_400n * MICROS_PER_SECOND;

const isoPattern =
  /^([+-]\d{6}|\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$/;

export class Timestamp {
  /** Microseconds since 1970-01-01T00:00:00 (UTC when `withZone`). */
  readonly epochMicros: bigint;
  /** true for an instant (timestamptz), false for a wall-clock timestamp without a zone. */
  readonly withZone: boolean;

  constructor(epochMicros: bigint, withZone = true) {
    this.epochMicros = epochMicros;
    this.withZone = withZone;
  }

  static fromEpochMicros(micros: bigint | number, withZone = true): Timestamp {
    return new Timestamp(BigInt(micros), withZone);
  }

  static fromEpochMillis(millis: number, withZone = true): Timestamp {
    if (!Number.isFinite(millis)) throw new RangeError(`not a time: ${millis}`);
    // Sub-millisecond digits of the number are kept down to the microsecond; the whole
    // milliseconds go through BigInt, as millis * 1000 would exceed 2^53 for far dates.
    const whole = Math.floor(millis);
    return new Timestamp(BigInt(whole) * 1000n + BigInt(Math.round((millis - whole) * 1000)), withZone);
  }

  static fromDate(date: Date, withZone = true): Timestamp {
    const millis = date.getTime();
    if (Number.isNaN(millis)) throw new RangeError("invalid Date");
    return new Timestamp(BigInt(millis) * 1000n, withZone);
  }

  /**
   * Parses ISO 8601 (`2024-03-01T10:00:00.123456Z`; a space may replace the `T`; a date alone
   * is midnight). With `Z` or an offset the result is an instant (`withZone`), converted to UTC;
   * without, a wall-clock timestamp. Digits beyond the microsecond are rounded half-up.
   */
  static parse(text: string): Timestamp {
    const m = isoPattern.exec(text.trim());
    if (m === null) throw new SyntaxError(`not an ISO 8601 timestamp: ${JSON.stringify(text.slice(0, 64))}`);
    const year = Number(m[1]);
    const month = Number(m[2]);
    const day = Number(m[3]);
    const hour = Number(m[4] ?? 0);
    const minute = Number(m[5] ?? 0);
    const second = Number(m[6] ?? 0);
    if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month) || hour > 23 || minute > 59 || second > 59) {
      throw new RangeError(`timestamp out of range: ${JSON.stringify(text.slice(0, 64))}`);
    }
    const fraction = (m[7] ?? "").padEnd(9, "0");
    let micros = BigInt(fraction.slice(0, 6));
    if (Number(fraction[6]) >= 5) micros += 1n;
    let epochMicros =
      BigInt(daysFromCivil(year, month, day)) * MICROS_PER_DAY +
      BigInt(hour * 3600 + minute * 60 + second) * MICROS_PER_SECOND +
      micros;
    const zone = m[8];
    if (zone !== undefined && zone !== "Z" && zone !== "z") {
      const sign = zone[0] === "-" ? -1 : 1;
      const digits = zone.slice(1).replace(":", "");
      const offsetHours = Number(digits.slice(0, 2));
      const offsetMinutes = Number(digits.slice(2) || "0");
      if (offsetHours > 23 || offsetMinutes > 59) throw new RangeError(`bad zone offset in ${JSON.stringify(text.slice(0, 64))}`);
      epochMicros -= BigInt(sign * (offsetHours * 3600 + offsetMinutes * 60)) * MICROS_PER_SECOND;
    }
    return new Timestamp(epochMicros, zone !== undefined);
  }

  /** The current instant, to the microsecond where the platform's clock has it. */
  static now(): Timestamp {
    return new Timestamp(BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)), true);
  }

  /** `2024-03-01T10:00:00.123456Z`: always six fractional digits; no `Z` for a wall-clock timestamp. */
  toISOString(): string {
    let days = this.epochMicros / MICROS_PER_DAY;
    let micros = this.epochMicros % MICROS_PER_DAY;
    if (micros < 0n) {
      micros += MICROS_PER_DAY;
      days -= 1n;
    }
    const { year, month, day } = civilFromDays(Number(days));
    const seconds = Number(micros / MICROS_PER_SECOND);
    const fraction = Number(micros % MICROS_PER_SECOND);
    const yearText =
      year >= 0 && year <= 9999 ? pad(year, 4) : (year < 0 ? "-" : "+") + pad(Math.abs(year), 6);
    return (
      `${yearText}-${pad(month, 2)}-${pad(day, 2)}T` +
      `${pad(Math.floor(seconds / 3600), 2)}:${pad(Math.floor(seconds / 60) % 60, 2)}:${pad(seconds % 60, 2)}` +
      `.${pad(fraction, 6)}${this.withZone ? "Z" : ""}`
    );
  }

  /** Milliseconds since the epoch, floored (a `Date` cannot hold the microseconds). */
  toEpochMillis(): number {
    const millis = this.epochMicros / 1000n;
    return Number(this.epochMicros < 0n && this.epochMicros % 1000n !== 0n ? millis - 1n : millis);
  }

  toDate(): Date {
    return new Date(this.toEpochMillis());
  }

  /** Orders by the microsecond count; at the same count a wall-clock timestamp sorts first. */
  compare(other: Timestamp): -1 | 0 | 1 {
    if (this.epochMicros !== other.epochMicros) return this.epochMicros < other.epochMicros ? -1 : 1;
    if (this.withZone === other.withZone) return 0;
    return this.withZone ? 1 : -1;
  }

  equals(other: Timestamp): boolean {
    return this.epochMicros === other.epochMicros && this.withZone === other.withZone;
  }

  toString(): string {
    return this.toISOString();
  }

  toJSON(): string {
    return this.toISOString();
  }
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, "0");
}

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

function daysInMonth(year: number, month: number): number {
  return month === 2 ? (isLeapYear(year) ? 29 : 28) : [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]!;
}

// Howard Hinnant's days_from_civil / civil_from_days: exact for every proleptic Gregorian date.
/** Days since 1970-01-01 of a proleptic Gregorian date (year 0 is 1 BC). */
export function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function civilFromDays(days: number): { year: number; month: number; day: number } {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  return { year: yoe + era * 400 + (month <= 2 ? 1 : 0), month, day };
}
