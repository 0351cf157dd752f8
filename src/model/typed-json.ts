/**
 * A lossless, typed JSON for the runtime's own files (a sink's spool, sink-spool.ts): every
 * value reads back as the same JavaScript value of the same type, which the public format of
 * json.ts does not promise (there a timestamp reads back as its text and a float as a decimal).
 *
 *   null, booleans, strings   as JSON
 *   numbers                   JSON numbers (JSON.stringify prints the shortest text that reads
 *                             back as the same double); NaN, ±Infinity and -0 as {"$f": "NaN"}
 *   bigint                    {"$i": "9223372036854775807"}
 *   Decimal                   {"$d": "12.30"}: its digits with its scale
 *   Timestamp                 {"$t": ["<epoch micros>", withZone]}
 *   Buffer                    {"$b": "<base64>"}
 *   JSON_NULL                 {"$n": true}: a JSON column's document null, not SQL NULL
 *   lists                     arrays
 *   records                   {"$r": {field: value, ...}}, so no record reads as a tag
 *
 * A column absent from a row (an unchanged TOASTed value) is absent from the object, and stays
 * absent: never null.
 */
import { Decimal } from "./decimal.js";
import type { ChangeEvent } from "./event.js";
import { Timestamp } from "./timestamp.js";
import { isJsonNull, JSON_NULL, setField, type Row, type Value } from "./value.js";

export type Tagged = null | boolean | number | string | Tagged[] | { [key: string]: Tagged };

export function toTagged(value: Value): Tagged {
  if (value === null || typeof value === "boolean" || typeof value === "string") return value;
  if (typeof value === "number") {
    if (Number.isFinite(value) && !Object.is(value, -0)) return value;
    return { $f: Object.is(value, -0) ? "-0" : String(value) };
  }
  if (typeof value === "bigint") return { $i: value.toString() };
  if (value instanceof Decimal) return { $d: value.toString() };
  if (value instanceof Timestamp) return { $t: [value.epochMicros.toString(), value.withZone] };
  if (Buffer.isBuffer(value)) return { $b: value.toString("base64") };
  if (isJsonNull(value)) return { $n: true };
  if (Array.isArray(value)) return value.map(toTagged);
  return { $r: rowToTagged(value) };
}

function rowToTagged(row: Row): { [key: string]: Tagged } {
  const out: { [key: string]: Tagged } = {};
  for (const key of Object.keys(row)) {
    const field = row[key];
    if (field !== undefined) out[key] = toTagged(field);
  }
  return out;
}

export class TaggedDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TaggedDecodeError";
  }
}

export function fromTagged(tagged: Tagged): Value {
  if (tagged === null || typeof tagged === "boolean" || typeof tagged === "string" || typeof tagged === "number") return tagged;
  if (Array.isArray(tagged)) return tagged.map(fromTagged);
  const keys = Object.keys(tagged);
  if (keys.length !== 1) throw new TaggedDecodeError(`a tagged value has one key, found ${keys.length}`);
  const tag = keys[0]!;
  const body = tagged[tag]!;
  switch (tag) {
    case "$f":
      return body === "-0" ? -0 : Number(body as string);
    case "$i":
      return BigInt(body as string);
    case "$d":
      return new Decimal(body as string);
    case "$t": {
      const [micros, withZone] = body as [string, boolean];
      return new Timestamp(BigInt(micros), withZone);
    }
    case "$b":
      return Buffer.from(body as string, "base64");
    case "$r":
      return rowFromTagged(body);
    case "$n":
      return JSON_NULL;
    default:
      throw new TaggedDecodeError(`unknown tag ${JSON.stringify(tag)}`);
  }
}

function rowFromTagged(body: Tagged): Row {
  if (body === null || typeof body !== "object" || Array.isArray(body)) throw new TaggedDecodeError("a record's body must be an object");
  const row: Row = {};
  for (const key of Object.keys(body)) setField(row, key, fromTagged(body[key]!));
  return row;
}

/** A change event as tagged JSON: rows as records, positions and texts as they are. */
export function eventToTagged(event: ChangeEvent): Tagged {
  const s = event.source;
  return {
    op: event.op,
    before: event.before === null ? null : rowToTagged(event.before),
    after: event.after === null ? null : rowToTagged(event.after),
    key: rowToTagged(event.key),
    source: {
      connector: s.connector,
      db: s.db,
      schema: s.schema,
      table: s.table,
      position: { kind: s.position.kind, token: s.position.token },
      ts: toTagged(s.ts),
      ...(s.txid !== undefined ? { txid: s.txid } : {}),
    },
  };
}

export function eventFromTagged(tagged: Tagged): ChangeEvent {
  const record = tagged as { [key: string]: Tagged };
  const source = record["source"] as { [key: string]: Tagged };
  const position = source["position"] as { kind: string; token: string };
  const ts = fromTagged(source["ts"]!);
  if (!(ts instanceof Timestamp)) throw new TaggedDecodeError("an event's source.ts must be a timestamp");
  return {
    op: record["op"] as ChangeEvent["op"],
    before: record["before"] === null ? null : rowFromTagged(record["before"]!),
    after: record["after"] === null ? null : rowFromTagged(record["after"]!),
    key: rowFromTagged(record["key"]!),
    source: {
      connector: source["connector"] as string,
      db: source["db"] as string,
      schema: source["schema"] as string,
      table: source["table"] as string,
      position: { kind: position.kind, token: position.token },
      ts,
      ...(typeof source["txid"] === "string" ? { txid: source["txid"] } : {}),
    },
  };
}
