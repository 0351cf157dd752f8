/**
 * The canonical text of a value, by neutral kind: what `dts verify` compares when a table and
 * its copy live in different engines (PostgreSQL and DuckDB today, MySQL next) or in columns
 * of different types. Each engine produces these texts in its own SQL (its verify reader);
 * this module defines them once, with a reference implementation over dts values that the
 * engines' SQL is tested against.
 *
 *   boolean      true | false
 *   integer      decimal digits, "-" for negatives: 9223372036854775807
 *   decimal      the exact value with the fraction's trailing zeros (and a bare point) removed:
 *                12.30 → 12.3, 1500 → 1500, -0.50 → -0.5. The scale is not compared, because
 *                engines keep it differently (a DuckDB DECIMAL has one scale per column)
 *   float64      17 significant digits in scientific notation, "d.dddddddddddddddde±XX" —
 *                enough to tell every two doubles apart, so this is exact; NaN, Infinity,
 *                -Infinity as such
 *   float32      the same with 9 significant digits, of the value rounded to single precision:
 *                a `real` copied into a double column is compared as the real it was
 *   string       the text itself (a char(n) value with its padding, as its engine prints it)
 *   bytes        lower-case hex, no prefix
 *   instant      the UTC time, "YYYY-MM-DDTHH:MM:SS.ffffffZ" (`Timestamp.toISOString`)
 *   local-time   a time without zone (and a date, at midnight), the same without the "Z"
 *   json         dts's lossless JSON of the value (`encodeJson`, src/model/json.ts): what the
 *                duckdb and jsonl sinks store for a list or a record
 *
 * Two columns of different kinds are compared in a kind both can print exactly (`commonKind`):
 * integers with decimals as decimals, integers or doubles with reals at single precision, an
 * instant with a time without zone as UTC wall-clock time; a column of any kind with a string
 * column as the text each engine prints. What is not exact is said, per column, in the report.
 *
 * A row is hashed from the texts of its values, in the order of the column names: each value
 * as its UTF-8 length in bytes, ":", and the text, or "-" for NULL, with nothing between them
 * (so no text can forge a boundary, and NULL differs from every string). The row hash is the
 * first 16 hex digits of the MD5 of that text, as an unsigned 64-bit integer; a table's
 * checksum is the exact sum of its rows' hashes (order-independent), and its bucket of a key
 * the first 8 hex digits of the MD5 of the key's row text, modulo the bucket count.
 */
import { createHash } from "node:crypto";
import { Decimal } from "./decimal.js";
import { encodeJson } from "./json.js";
import { Timestamp } from "./timestamp.js";
import type { Value } from "./value.js";

export type CanonicalKind = "boolean" | "integer" | "decimal" | "float64" | "float32" | "string" | "bytes" | "instant" | "local-time" | "json";

/** How two columns are compared when their engines or kinds differ. */
export type CommonForm =
  /** Both print the canonical text of `kind`; `note` says what is not compared, if anything. */
  | { readonly kind: CanonicalKind; readonly note?: string }
  /** Each side prints its engine's own text of the value. */
  | { readonly kind: "text"; readonly note: string }
  | { readonly kind: "none"; readonly reason: string };

/** The kind two columns are compared in: see the file comment. `undefined` kind: the engine has no canonical kind for the column's type. */
export function commonKind(a: CanonicalKind | undefined, b: CanonicalKind | undefined): CommonForm {
  if (a !== undefined && a === b) {
    if (a === "decimal") return { kind: "decimal", note: "by value: trailing zeros of the fraction are not compared" };
    if (a === "float32") return { kind: "float32", note: "at single precision" };
    return { kind: a };
  }
  const pair = new Set([a, b]);
  const has = (x: CanonicalKind, y: CanonicalKind): boolean => pair.has(x) && pair.has(y);
  if (has("integer", "decimal")) return { kind: "decimal", note: "by value: trailing zeros of the fraction are not compared" };
  if (has("float64", "float32") || has("integer", "float32")) return { kind: "float32", note: "at single precision" };
  if (has("integer", "float64")) return { kind: "float64", note: "integers compared as doubles" };
  if (has("instant", "local-time")) return { kind: "local-time", note: "as UTC wall-clock times: the time zone is not compared" };
  if (a === "string" || b === "string" || a === undefined || b === undefined) {
    return { kind: "text", note: "as the text each engine prints" };
  }
  return { kind: "none", reason: `${a} and ${b} columns have no exact common form` };
}

/**
 * The canonical text of `value` as `kind` (the reference the engines' SQL is tested against);
 * null for null. Throws when the value is not of the kind.
 */
export function canonicalText(kind: CanonicalKind, value: Value): string | null {
  if (value === null) return null;
  const wrong = (): never => {
    throw new TypeError(`canonicalText: ${String(value)} is not a value of kind ${kind}`);
  };
  switch (kind) {
    case "boolean":
      return typeof value === "boolean" ? String(value) : wrong();
    case "integer":
      return typeof value === "bigint" || (typeof value === "number" && Number.isInteger(value)) ? BigInt(value).toString() : wrong();
    case "decimal":
      if (value instanceof Decimal) return trimDecimal(value.toString());
      return typeof value === "bigint" || (typeof value === "number" && Number.isInteger(value)) ? BigInt(value).toString() : wrong();
    case "float64":
      return typeof value === "number" ? scientific(value, 16) : wrong();
    case "float32":
      return typeof value === "number" ? scientific(Math.fround(value), 8) : wrong();
    case "string":
      return typeof value === "string" ? value : wrong();
    case "bytes":
      return value instanceof Uint8Array ? Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("hex") : wrong();
    case "instant":
    case "local-time":
      return value instanceof Timestamp ? value.toISOString() : wrong();
    case "json":
      return encodeJson(value);
  }
}

/** `12.300` → `12.3`, `-0.0` → `0`, `1500` → `1500`. */
export function trimDecimal(text: string): string {
  if (!text.includes(".")) return text === "-0" ? "0" : text;
  const trimmed = text.replace(/0+$/, "").replace(/\.$/, "");
  return trimmed === "-0" ? "0" : trimmed;
}

/** `digits` digits after the point, a signed exponent of at least two digits (as C's printf %e). */
function scientific(value: number, digits: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (!Number.isFinite(value)) return value > 0 ? "Infinity" : "-Infinity";
  const text = (Object.is(value, -0) ? "-" : "") + value.toExponential(digits);
  return text.replace(/e([+-])(\d)$/, "e$10$2");
}

/** The row text of a row's value texts (see the file comment). */
export function rowText(values: readonly (string | null)[]): string {
  let text = "";
  for (const value of values) text += value === null ? "-" : `${Buffer.byteLength(value, "utf8")}:${value}`;
  return text;
}

/** The value texts back from a row text; undefined when it is not one. */
export function parseRowText(text: string): (string | null)[] | undefined {
  const bytes = Buffer.from(text, "utf8");
  const values: (string | null)[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (bytes[at] === 0x2d /* - */) {
      values.push(null);
      at++;
      continue;
    }
    const colon = bytes.indexOf(0x3a /* : */, at);
    if (colon === -1) return undefined;
    const length = Number(bytes.subarray(at, colon).toString("latin1"));
    if (!Number.isSafeInteger(length) || colon + 1 + length > bytes.length) return undefined;
    values.push(bytes.subarray(colon + 1, colon + 1 + length).toString("utf8"));
    at = colon + 1 + length;
  }
  return values;
}

/** The row hash: the first 64 bits of MD5(row text), unsigned. */
export function rowHash(text: string): bigint {
  return BigInt(`0x${createHash("md5").update(text, "utf8").digest("hex").slice(0, 16)}`);
}

/** The bucket of a key's row text among `buckets` (a power of two). */
export function bucketOf(keyText: string, buckets: number): number {
  return Number(BigInt(`0x${createHash("md5").update(keyText, "utf8").digest("hex").slice(0, 8)}`) & BigInt(buckets - 1));
}
