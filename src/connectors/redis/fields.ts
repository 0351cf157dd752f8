/**
 * A row as the Redis sink stores it: a map of column → stored text, in column order, one map
 * type for both formats so that merging and moving keys is the same code for each.
 *
 *   json   each value is its JSON text as the jsonl sink writes it (encodeJson), NULL included
 *          (`null`); the document is `{` the fields `}`, exactly what encodeJson prints for
 *          the row. A stored document is split back into its fields as raw text, never decoded
 *          and printed again, so a value the sink did not change keeps every character.
 *   hash   each value is the field's text: strings as they are, numbers in their exact digits
 *          (a decimal with its scale, without the `e0` JSON needs), timestamps in ISO 8601,
 *          bytes as the raw bytes, lists and records as JSON. NULL is no field.
 */
import { Decimal } from "../../model/decimal.js";
import { encodeJson } from "../../model/json.js";
import { Timestamp } from "../../model/timestamp.js";
import type { Row, Value } from "../../model/value.js";

export type Format = "json" | "hash";

/** A stored value: text, or raw bytes in a hash. */
export type Stored = string | Buffer;

/** Column → stored value, in column order. In a hash, a NULL column maps to null (HDEL). */
export type Fields = Map<string, Stored | null>;

export function fieldsOf(row: Row, format: Format): Fields {
  const fields: Fields = new Map();
  for (const name of Object.keys(row)) {
    const value = row[name]!;
    fields.set(name, format === "json" ? encodeJson(value) : hashText(value));
  }
  return fields;
}

/** A value as a hash field holds it; null for NULL (the field is removed). */
export function hashText(value: Value): Stored | null {
  if (value === null) return null;
  if (typeof value === "string") return value;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (value instanceof Decimal) return value.toString();
  if (value instanceof Timestamp) return value.toISOString();
  if (typeof value === "number" && !Number.isFinite(value)) return Number.isNaN(value) ? "NaN" : value > 0 ? "Infinity" : "-Infinity";
  return encodeJson(value);
}

/** A key part as text: what the default key and a message print for a value. */
export function keyText(value: Value): string {
  const text = hashText(value);
  if (text === null) return "null";
  return typeof text === "string" ? text : text.toString("base64");
}

/** The JSON document of stored json fields. */
export function documentOf(fields: Fields): string {
  let out = "{";
  let first = true;
  for (const [name, text] of fields) {
    out += `${first ? "" : ","}${JSON.stringify(name)}:${text as string}`;
    first = false;
  }
  return out + "}";
}

/**
 * A stored JSON document's top-level fields as raw text, in document order; undefined when the
 * text is not a JSON object (another writer's value).
 */
export function splitDocument(text: string): Fields | undefined {
  const fields: Fields = new Map();
  let at = skipSpace(text, 0);
  if (text[at] !== "{") return undefined;
  at = skipSpace(text, at + 1);
  if (text[at] === "}") return skipSpace(text, at + 1) === text.length ? fields : undefined;
  for (;;) {
    if (text[at] !== '"') return undefined;
    const nameEnd = stringEnd(text, at);
    if (nameEnd < 0) return undefined;
    let name: string;
    try {
      name = JSON.parse(text.slice(at, nameEnd)) as string;
    } catch {
      return undefined;
    }
    at = skipSpace(text, nameEnd);
    if (text[at] !== ":") return undefined;
    const start = skipSpace(text, at + 1);
    const end = valueEnd(text, start);
    if (end < 0) return undefined;
    fields.set(name, text.slice(start, end).trimEnd());
    at = skipSpace(text, end);
    if (text[at] === ",") {
      at = skipSpace(text, at + 1);
      continue;
    }
    if (text[at] === "}") return skipSpace(text, at + 1) === text.length ? fields : undefined;
    return undefined;
  }
}

function skipSpace(text: string, at: number): number {
  while (at < text.length && (text[at] === " " || text[at] === "\n" || text[at] === "\t" || text[at] === "\r")) at++;
  return at;
}

/** The offset after the JSON string starting at `at` (a quote), or -1. */
function stringEnd(text: string, at: number): number {
  for (let i = at + 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5c) i++;
    else if (c === 0x22) return i + 1;
  }
  return -1;
}

/** The offset after the JSON value starting at `at`: a string, or anything up to the comma or brace closing its level; -1 when unbalanced. */
function valueEnd(text: string, at: number): number {
  let depth = 0;
  for (let i = at; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      const end = stringEnd(text, i);
      if (end < 0) return -1;
      i = end - 1;
      if (depth === 0) return end;
    } else if (c === "{" || c === "[") {
      depth++;
    } else if (c === "}" || c === "]") {
      if (depth === 0) return i;
      depth--;
      if (depth === 0) return i + 1;
    } else if (c === "," && depth === 0) {
      return i;
    }
  }
  return depth === 0 ? text.length : -1;
}
