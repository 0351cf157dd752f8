/**
 * Lossless JSON for values and change events — a public format: the jsonl sink writes it, the
 * jsonl source reads it back, `json()` and `hash()` print it.
 *
 *   null, booleans   as JSON; JSON_NULL (a json column's JSON null, src/model/value.ts) is
 *                    `null` too: in JSON text a JSON null and an SQL NULL column are one
 *   integers         JSON numbers with every digit: `9223372036854775807`, never rounded
 *   floats           JSON numbers in the shortest text that reads back as the same double;
 *                    an integral float beyond 2^53 gets `.0` so it still reads as non-integer;
 *                    NaN and ±Infinity, which JSON lacks, as the strings "NaN", "Infinity",
 *                    "-Infinity"
 *   decimals         JSON numbers, exactly, with their scale: `12.30`; a decimal of scale 0
 *                    is written with `e0` (`1500e0`) so that it reads back as a decimal, not
 *                    as an integer (any JSON reader takes it as 1500)
 *   strings          JSON strings (lone surrogates escaped as `\udXXX`)
 *   timestamps       ISO 8601 strings with six fractional digits: "2024-03-01T10:00:00.123456Z"
 *   bytes            {"$bytes": "<standard base64, padded>"}
 *   lists, records   arrays and objects; `encodeJson` keeps a record's field order,
 *                    `canonicalJson` sorts fields by UTF-16 code units (as RFC 8785 does) and
 *                    is what `json()` prints and `hash()` digests. No whitespace in either.
 *   a record whose only field is named `$bytes` or `$record` is wrapped as {"$record": {...}},
 *   so that no record reads back as bytes.
 *
 * A JSON column's document is read with `decodeJsonDocument`, which gives JSON_NULL for the
 * document `null` so that it stays apart from SQL NULL (`decodeJson` gives null: in a change
 * event or a record, null is the absence of a value).
 *
 * Reading (`decodeJson`) is a small hand-written parser, because JSON.parse turns every number
 * into a double: an integer reads as an integer (a bigint beyond 2^53−1), and a number with a
 * fraction or exponent as an exact Decimal with the written scale. So a float reads back as
 * the decimal of its shortest text (0.1 as exactly 0.1, not as the double's binary value);
 * converting that decimal to a float gives the same double again.
 * Timestamps read back as the strings they were written as (JSON has no timestamp), and so do
 * the float strings "NaN", "Infinity", "-Infinity"; a reader with a schema converts them. Everything else reads as JSON.parse would, duplicate keys
 * included (the last wins). Malformed input throws a `JsonSyntaxError` carrying the offset.
 *
 * A limitation of JavaScript objects: fields whose names are array indices ("0", "42") are
 * enumerated first, in numeric order, whatever order they were set in.
 */
import { Decimal } from "./decimal.js";
import { isOp, type ChangeEvent, type Op, type SourceInfo } from "./event.js";
import type { Position } from "./position.js";
import { Timestamp } from "./timestamp.js";
import { DtsError } from "../diagnostics/errors.js";
import { isRecord, JSON_NULL, JsonNull, normalizeInteger, setField, type Row, type Value } from "./value.js";

const BYTES_KEY = "$bytes";
const RECORD_KEY = "$record";
/** Deeper nesting is rejected rather than allowed to exhaust the stack. */
export const MAX_JSON_DEPTH = 1000;

// ---------------------------------------------------------------- writing

/** The value as JSON, fields in insertion order. */
export function encodeJson(value: Value): string {
  return write(value, false);
}

/** The value as canonical JSON: fields sorted, so equal records print the same text. */
export function canonicalJson(value: Value): string {
  return write(value, true);
}

function write(value: Value, sorted: boolean): string {
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false";
    case "number":
      return writeNumber(value);
    case "bigint":
      return value.toString();
    case "string":
      return JSON.stringify(value);
    default:
      if (value === null || value instanceof JsonNull) return "null";
      if (value instanceof Decimal) return value.scale === 0 ? `${value.toString()}e0` : value.toString();
      if (value instanceof Timestamp) return `"${value.toISOString()}"`;
      if (value instanceof Uint8Array) return `{"${BYTES_KEY}":"${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64")}"}`;
      if (Array.isArray(value)) {
        let out = "[";
        for (let i = 0; i < value.length; i++) out += (i === 0 ? "" : ",") + write(value[i]!, sorted);
        return out + "]";
      }
      return writeRecord(value, sorted);
  }
}

function writeNumber(value: number): string {
  if (Number.isSafeInteger(value)) return value === 0 ? "0" : String(value);
  if (Number.isNaN(value)) return '"NaN"';
  if (!Number.isFinite(value)) return value > 0 ? '"Infinity"' : '"-Infinity"';
  const text = String(value);
  return /[.e]/.test(text) ? text : `${text}.0`;
}

function writeRecord(record: Row, sorted: boolean): string {
  const keys = Object.keys(record);
  if (sorted) keys.sort();
  let out = "{";
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    out += `${i === 0 ? "" : ","}${JSON.stringify(key)}:${write(record[key]!, sorted)}`;
  }
  out += "}";
  if (keys.length === 1 && (keys[0] === BYTES_KEY || keys[0] === RECORD_KEY)) return `{"${RECORD_KEY}":${out}}`;
  return out;
}

// ---------------------------------------------------------------- reading

export class JsonSyntaxError extends SyntaxError {
  /** Offset (UTF-16 code units) in the text where the problem was found. */
  readonly offset: number;

  constructor(message: string, offset: number) {
    super(`${message} at offset ${offset}`);
    this.name = "JsonSyntaxError";
    this.offset = offset;
  }
}

/** Reads one JSON value (surrounding whitespace allowed), keeping numbers exact. */
export function decodeJson(text: string): Value {
  const reader = new JsonReader(text);
  reader.skipWhitespace();
  const value = reader.readValue(0);
  reader.skipWhitespace();
  if (reader.offset < text.length) reader.fail(`unexpected ${describe(text, reader.offset)} after the value`);
  return value;
}

/** A JSON column's value from its document: JSON_NULL for the document `null`, never null. */
export function jsonDocument(value: Value): Value {
  return value === null ? JSON_NULL : value;
}

/** A JSON column's document text → its value (`decodeJson`, with JSON_NULL for `null`). */
export function decodeJsonDocument(text: string): Value {
  return jsonDocument(decodeJson(text));
}

const numberPattern = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;
const base64Pattern = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function describe(text: string, offset: number): string {
  if (offset >= text.length) return "end of input";
  const c = text.codePointAt(offset)!;
  return c < 0x20 ? `character U+${c.toString(16).toUpperCase().padStart(4, "0")}` : JSON.stringify(String.fromCodePoint(c));
}

class JsonReader {
  offset = 0;

  constructor(private readonly text: string) {}

  fail(message: string, at = this.offset): never {
    throw new JsonSyntaxError(message, at);
  }

  skipWhitespace(): void {
    const text = this.text;
    let i = this.offset;
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
    this.offset = i;
  }

  readValue(depth: number): Value {
    const text = this.text;
    const c = text.charCodeAt(this.offset);
    switch (c) {
      case 0x7b /* { */:
        return this.readObject(depth + 1, false);
      case 0x5b /* [ */:
        return this.readArray(depth + 1);
      case 0x22 /* " */:
        return this.readString();
      case 0x74 /* t */:
        return this.readWord("true", true);
      case 0x66 /* f */:
        return this.readWord("false", false);
      case 0x6e /* n */:
        return this.readWord("null", null);
      default:
        if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.readNumber();
        return this.fail(`expected a JSON value, found ${describe(text, this.offset)}`);
    }
  }

  private readWord(word: string, value: Value): Value {
    if (!this.text.startsWith(word, this.offset)) this.fail(`expected a JSON value, found ${describe(this.text, this.offset)}`);
    this.offset += word.length;
    return value;
  }

  private readNumber(): Value {
    const start = this.offset;
    numberPattern.lastIndex = start;
    const m = numberPattern.exec(this.text);
    if (m === null) return this.fail("malformed number");
    const literal = m[0];
    this.offset = start + literal.length;
    if (m[1] !== undefined || m[2] !== undefined) {
      try {
        return new Decimal(literal);
      } catch (error) {
        return this.fail((error as Error).message, start);
      }
    }
    // 15 digits always fit a double exactly; longer ones may not.
    return literal.length <= 15 ? Number(literal) + 0 : normalizeInteger(BigInt(literal)); // + 0: "-0" is 0
  }

  private readString(): string {
    const text = this.text;
    const start = this.offset;
    let i = start + 1;
    let out = "";
    let chunk = i;
    for (;;) {
      if (i >= text.length) return this.fail("unterminated string", start);
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        out += text.slice(chunk, i);
        this.offset = i + 1;
        return out;
      }
      if (c < 0x20) return this.fail(`unescaped ${describe(text, i)} in a string`, i);
      if (c !== 0x5c) {
        i++;
        continue;
      }
      out += text.slice(chunk, i);
      const e = text[i + 1];
      switch (e) {
        case '"':
          out += '"';
          break;
        case "\\":
          out += "\\";
          break;
        case "/":
          out += "/";
          break;
        case "b":
          out += "\b";
          break;
        case "f":
          out += "\f";
          break;
        case "n":
          out += "\n";
          break;
        case "r":
          out += "\r";
          break;
        case "t":
          out += "\t";
          break;
        case "u": {
          const hex = text.slice(i + 2, i + 6);
          if (!/^[0-9A-Fa-f]{4}$/.test(hex)) return this.fail("bad \\u escape", i);
          out += String.fromCharCode(parseInt(hex, 16));
          i += 4;
          break;
        }
        default:
          return this.fail(`bad escape ${e === undefined ? "at end of input" : JSON.stringify("\\" + e)}`, i);
      }
      i += 2;
      chunk = i;
    }
  }

  private readArray(depth: number): Value[] {
    if (depth > MAX_JSON_DEPTH) this.fail(`nesting deeper than ${MAX_JSON_DEPTH}`);
    this.offset++;
    const items: Value[] = [];
    this.skipWhitespace();
    if (this.text.charCodeAt(this.offset) === 0x5d) {
      this.offset++;
      return items;
    }
    for (;;) {
      this.skipWhitespace();
      items.push(this.readValue(depth));
      this.skipWhitespace();
      const c = this.text.charCodeAt(this.offset);
      this.offset++;
      if (c === 0x5d) return items;
      if (c !== 0x2c) this.fail(`expected "," or "]", found ${describe(this.text, this.offset - 1)}`, this.offset - 1);
    }
  }

  /**
   * An object; unless `raw`, one holding only a `$bytes` string is bytes, and one holding only
   * a `$record` object is that object taken as it is.
   */
  private readObject(depth: number, raw: boolean): Value {
    if (depth > MAX_JSON_DEPTH) this.fail(`nesting deeper than ${MAX_JSON_DEPTH}`);
    const start = this.offset;
    this.offset++;
    const record: Row = {};
    let wrapped: Row | undefined;
    this.skipWhitespace();
    if (this.text.charCodeAt(this.offset) === 0x7d) {
      this.offset++;
      return record;
    }
    for (;;) {
      this.skipWhitespace();
      if (this.text.charCodeAt(this.offset) !== 0x22) this.fail(`expected a field name in quotes, found ${describe(this.text, this.offset)}`);
      const key = this.readString();
      this.skipWhitespace();
      if (this.text.charCodeAt(this.offset) !== 0x3a) this.fail(`expected ":", found ${describe(this.text, this.offset)}`);
      this.offset++;
      this.skipWhitespace();
      let value: Value;
      if (key === RECORD_KEY && !raw && this.text.charCodeAt(this.offset) === 0x7b) {
        wrapped = this.readObject(depth + 1, true) as Row;
        value = interpret(wrapped);
      } else {
        value = this.readValue(depth);
        if (key === RECORD_KEY) wrapped = undefined;
      }
      setField(record, key, value);
      this.skipWhitespace();
      const c = this.text.charCodeAt(this.offset);
      this.offset++;
      if (c === 0x7d) break;
      if (c !== 0x2c) this.fail(`expected "," or "}", found ${describe(this.text, this.offset - 1)}`, this.offset - 1);
    }
    if (raw) return record;
    const keys = Object.keys(record);
    if (keys.length !== 1) return record;
    if (keys[0] === RECORD_KEY && wrapped !== undefined) return wrapped;
    const bytes = record[BYTES_KEY];
    if (keys[0] === BYTES_KEY && typeof bytes === "string") {
      if (!base64Pattern.test(bytes)) this.fail('"$bytes" holds invalid base64', start);
      return Buffer.from(bytes, "base64");
    }
    return record;
  }
}

/** What an object read raw means when read normally (for a `$record` that was not alone). */
function interpret(record: Row): Value {
  const keys = Object.keys(record);
  if (keys.length !== 1) return record;
  const only = record[keys[0]!]!;
  if (keys[0] === BYTES_KEY && typeof only === "string" && base64Pattern.test(only)) return Buffer.from(only, "base64");
  if (keys[0] === RECORD_KEY && isRecord(only)) return only;
  return record;
}

// ---------------------------------------------------------------- change events

export class EventDecodeError extends DtsError {
  constructor(message: string) {
    super("DTS7108", message);
    this.name = "EventDecodeError";
  }
}

/**
 * One change event as one JSON line (no newline):
 * `{"op","before","after","key","source":{"connector","db","schema","table",
 * "position":{"kind","token"},"ts","txid"}}`; an absent txid is written as null.
 */
export function encodeEvent(event: ChangeEvent): string {
  const s = event.source;
  return (
    `{"op":${JSON.stringify(event.op)}` +
    `,"before":${event.before === null ? "null" : encodeJson(event.before)}` +
    `,"after":${event.after === null ? "null" : encodeJson(event.after)}` +
    `,"key":${encodeJson(event.key)}` +
    `,"source":{"connector":${JSON.stringify(s.connector)},"db":${JSON.stringify(s.db)}` +
    `,"schema":${JSON.stringify(s.schema)},"table":${JSON.stringify(s.table)}` +
    `,"position":{"kind":${JSON.stringify(s.position.kind)},"token":${JSON.stringify(s.position.token)}}` +
    `,"ts":"${s.ts.toISOString()}","txid":${s.txid === undefined ? "null" : JSON.stringify(s.txid)}}}`
  );
}

/** Reads a line written by `encodeEvent`; throws `JsonSyntaxError` or `EventDecodeError`. */
export function decodeEvent(line: string): ChangeEvent {
  const value = decodeJson(line);
  if (!isRecord(value)) throw new EventDecodeError("a change event must be a JSON object");
  const op = value["op"];
  if (typeof op !== "string" || !isOp(op)) {
    throw new EventDecodeError(`"op" must be "insert", "update", "delete" or "read", found ${encodeJson(op ?? null)}`);
  }
  const source = value["source"];
  if (!isRecord(source)) throw new EventDecodeError('"source" must be an object');
  const position = source["position"];
  if (!isRecord(position)) throw new EventDecodeError('"source.position" must be an object');
  const ts = requireString(source, "ts", "source.");
  let timestamp: Timestamp;
  try {
    timestamp = Timestamp.parse(ts);
  } catch (error) {
    throw new EventDecodeError(`"source.ts": ${(error as Error).message}`);
  }
  const txid = source["txid"];
  if (txid !== undefined && txid !== null && typeof txid !== "string") throw new EventDecodeError('"source.txid" must be a string or null');
  const pos: Position = { kind: requireString(position, "kind", "source.position."), token: requireString(position, "token", "source.position.") };
  const info: SourceInfo = {
    connector: requireString(source, "connector", "source."),
    db: requireString(source, "db", "source."),
    schema: requireString(source, "schema", "source."),
    table: requireString(source, "table", "source."),
    position: pos,
    ts: timestamp,
    ...(typeof txid === "string" ? { txid } : {}),
  };
  return {
    op: op as Op,
    before: optionalRow(value, "before"),
    after: optionalRow(value, "after"),
    key: optionalRow(value, "key") ?? {},
    source: info,
  };
}

function requireString(record: Row, field: string, prefix: string): string {
  const value = Object.hasOwn(record, field) ? record[field] : undefined;
  if (typeof value !== "string") throw new EventDecodeError(`"${prefix}${field}" must be a string`);
  return value;
}

function optionalRow(record: Row, field: string): Row | null {
  const value = Object.hasOwn(record, field) ? record[field]! : null;
  if (value !== null && !isRecord(value)) throw new EventDecodeError(`"${field}" must be an object or null`);
  return value;
}
