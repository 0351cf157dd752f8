/**
 * MySQL values → dts `Value`s, one rule for the snapshot (mysql2's text results, with BIGINT and
 * DECIMAL as strings, dates as strings, JSON as its text) and for the binlog (zongji's row
 * images, decoded with the same driver settings), so that a row copied by the snapshot and the
 * same row seen in the binlog are equal values:
 *
 *   TINYINT..BIGINT, YEAR   an integer: a number while safe, a bigint beyond (BIGINT UNSIGNED max)
 *   DECIMAL                 Decimal, exact, with the column's scale
 *   FLOAT                   the shortest decimal that reads back as the same single-precision
 *                           value (the binlog holds the 4 bytes; the server prints them so)
 *   DOUBLE                  the double
 *   BIT(n)                  the bits as an unsigned integer
 *   DATE                    Timestamp without zone at midnight
 *   DATETIME(p)             Timestamp without zone (wall-clock), to the microsecond
 *   TIMESTAMP(p)            Timestamp with zone: the server stores UTC, and every session of
 *                           dts runs with time_zone '+00:00', so the value is the UTC instant
 *                           whatever the server's or the application's zone
 *   zero dates              '0000-00-00', and dates with a zero month or day (allowed outside
 *                           strict mode): NULL — no calendar has them — logged once per column
 *   TIME                    the server's text, `-838:59:59.000000` (negative, beyond 24 h: an
 *                           interval, not a time of day)
 *   CHAR, VARCHAR, TEXT,    strings, whatever the column's character set (latin1 is converted
 *   ENUM, SET               by the server or the binlog reader); SET as its comma list
 *   BINARY, VARBINARY, BLOB Buffer (BINARY(n) with its zero padding)
 *   JSON                    the parsed document, big integers and decimals exact (decodeJson)
 *   other types             the server's text, or bytes (spatial types)
 */
import { Decimal } from "../../model/decimal.js";
import { decodeJson } from "../../model/json.js";
import { daysFromCivil, Timestamp } from "../../model/timestamp.js";
import { normalizeInteger, type Value } from "../../model/value.js";

export type ValueKind =
  | "integer"
  | "decimal"
  | "float32"
  | "float64"
  | "bit"
  | "date"
  | "datetime"
  | "timestamp"
  | "time"
  | "string"
  | "bytes"
  | "json"
  | "other";

export class ValueDecodeError extends Error {}

const MICROS_PER_DAY = 86_400_000_000n;

const dateTimePattern = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?)?$/;

/** `YYYY-MM-DD[ HH:MM:SS[.ffffff]]` → Timestamp, or null for a zero date. */
function parseDateTime(text: string, withZone: boolean): Timestamp | null {
  const m = dateTimePattern.exec(text);
  if (m === null) throw new ValueDecodeError(`not a MySQL date or time: ${JSON.stringify(text)}`);
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  if (month === 0 || day === 0) return null;
  const seconds = Number(m[4] ?? 0) * 3600 + Number(m[5] ?? 0) * 60 + Number(m[6] ?? 0);
  const micros = m[7] === undefined ? 0 : Number(m[7].padEnd(6, "0"));
  return new Timestamp(BigInt(daysFromCivil(year, month, day)) * MICROS_PER_DAY + BigInt(seconds) * 1_000_000n + BigInt(micros), withZone);
}

/** A single-precision value as the shortest decimal that reads back as it. */
export function float32(value: number): number {
  if (!Number.isFinite(value)) return value;
  const single = Math.fround(value);
  for (let digits = 1; digits <= 9; digits++) {
    const candidate = Number(single.toPrecision(digits));
    if (Math.fround(candidate) === single) return candidate;
  }
  return single;
}

function bitsOf(bytes: Buffer): number | bigint {
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  return normalizeInteger(value);
}

function text(raw: unknown): string {
  if (typeof raw === "string") return raw;
  if (Buffer.isBuffer(raw)) return raw.toString("utf8");
  return String(raw);
}

/** Decodes one raw value (from mysql2 or zongji) of a column of `kind`. Zero dates give `zeroDate`'s call and null. */
export function decodeValue(kind: ValueKind, raw: unknown, zeroDate?: () => void): Value {
  if (raw === null || raw === undefined) return null;
  switch (kind) {
    case "integer":
      if (typeof raw === "number") return raw;
      return normalizeInteger(BigInt(text(raw)));
    case "decimal":
      return new Decimal(text(raw));
    case "float32":
      return float32(typeof raw === "number" ? raw : Number(text(raw)));
    case "float64":
      return typeof raw === "number" ? raw : Number(text(raw));
    case "bit":
      if (Buffer.isBuffer(raw)) return bitsOf(raw);
      return normalizeInteger(BigInt(text(raw)));
    case "date":
    case "datetime":
    case "timestamp": {
      const value = parseDateTime(text(raw), kind === "timestamp");
      if (value === null) zeroDate?.();
      return value;
    }
    case "time":
      return text(raw);
    case "string":
      return text(raw);
    case "bytes":
      return Buffer.isBuffer(raw) ? raw : Buffer.from(text(raw), "utf8");
    case "json":
      if (typeof raw === "string" || Buffer.isBuffer(raw)) return decodeJson(text(raw));
      throw new ValueDecodeError("a JSON value arrived parsed (precision may be lost): the reader must ask for JSON as text");
    default:
      if (Buffer.isBuffer(raw)) return raw;
      if (typeof raw === "number" || typeof raw === "string") return raw;
      return String(raw);
  }
}

/**
 * zongji 0.9 decodes a negative TIME whose fraction is zero from its bits one short and then
 * adds a second to the seconds field alone, so -01:03:00 comes out as "-01:02:64": the fields
 * are those of (h:m:s − 1 packed as h<<12|m<<6|s). This undoes it, carrying as the packing does.
 * (A negative TIME with a non-zero fraction comes out right.)
 */
export function fixBinlogNegativeTime(text: string): string {
  const m = /^-(\d+):(\d{2}):(\d{2})(\.(\d+))?$/.exec(text);
  if (m === null) return text;
  if (m[5] !== undefined && /[1-9]/.test(m[5])) return text;
  const packed = ((Number(m[1]) << 12) | (Number(m[2]) << 6) | (Number(m[3]) - 1)) + 1;
  const hours = packed >> 12;
  const minutes = (packed >> 6) & 63;
  const seconds = packed & 63;
  return `-${String(hours).padStart(2, "0")}:${String(minutes).padStart(2, "0")}:${String(seconds).padStart(2, "0")}${m[4] ?? ""}`;
}

