/**
 * The Debezium change event envelope, as JSON text: what the jsonl sink writes with
 * `format: "debezium"` and the Kafka sink puts in a message value, so that consumers written
 * for Debezium read dts's events unchanged.
 *
 *   {"before":{...}|null,"after":{...}|null,
 *    "source":{"version","connector","name","ts_ms","ts_us","snapshot","db","schema","table",
 *              "txId", ...position fields},
 *    "op":"c"|"u"|"d"|"r","ts_ms":<when dts processed it>}
 *
 * Position fields by kind, named as Debezium's connectors name them where they exist:
 *   pg-lsn        "lsn": the LSN as an integer (Debezium's PostgreSQL connector)
 *   mysql-binlog  "file", "pos", and "gtid" (null without one) (Debezium's MySQL connector)
 *   seq           "seq": the sequence number (datagen, jsonl line numbers, Kafka offsets)
 *   other kinds   "position": the token
 *
 * Values are written as Debezium's JSON converter writes them without schemas, except where
 * that would lose precision: a 64-bit integer is a JSON number with all its digits (never a
 * rounded double), a decimal a JSON number with its exact digits and scale (as with
 * `decimal.handling.mode=string`, but unquoted: a consumer with an exact-number parser reads it
 * exactly), a timestamp ISO 8601 text with microseconds (as Debezium's ZonedTimestamp), bytes
 * base64 text (as `binary.handling.mode=base64`). `txId` is an integer when the source's
 * transaction id is one (PostgreSQL), text otherwise.
 */
import { opToDebezium, type ChangeEvent } from "./event.js";
import { encodeJson } from "./json.js";
import { lsnToBigInt, parseBinlogToken, type Position } from "./position.js";
import { isRecord, type Row, type Value } from "./value.js";

/** `source.version`: the dts release writing the envelope (kept equal to package.json's by a test). */
export const DTS_VERSION = "0.1.0";

export interface DebeziumOptions {
  /** `source.name`, Debezium's logical server name (topic prefix); dts uses the pipeline's name. */
  readonly name: string;
  /** The envelope's `ts_ms`: when dts processed the event, in milliseconds since the epoch. */
  readonly processedAtMs: number;
}

export function encodeDebezium(event: ChangeEvent, options: DebeziumOptions): string {
  const s = event.source;
  const txid = s.txid === undefined ? "null" : /^\d{1,30}$/.test(s.txid) ? BigInt(s.txid).toString() : JSON.stringify(s.txid);
  return (
    `{"before":${event.before === null ? "null" : encodeJson(withBase64Bytes(event.before))}` +
    `,"after":${event.after === null ? "null" : encodeJson(withBase64Bytes(event.after))}` +
    `,"source":{"version":${JSON.stringify(DTS_VERSION)},"connector":${JSON.stringify(s.connector)}` +
    `,"name":${JSON.stringify(options.name)},"ts_ms":${s.ts.toEpochMillis()},"ts_us":${s.ts.epochMicros}` +
    `,"snapshot":${event.op === "read" ? '"true"' : '"false"'}` +
    `,"db":${JSON.stringify(s.db)},"schema":${JSON.stringify(s.schema)},"table":${JSON.stringify(s.table)}` +
    `,"txId":${txid}${positionFields(s.position)}}` +
    `,"op":"${opToDebezium(event.op)}","ts_ms":${Math.trunc(options.processedAtMs)}}`
  );
}

/** `,"lsn":123` and the like: the position as Debezium's connector of that kind writes it. */
function positionFields(position: Position): string {
  try {
    switch (position.kind) {
      case "pg-lsn":
        return `,"lsn":${lsnToBigInt(position.token)}`;
      case "mysql-binlog": {
        const binlog = parseBinlogToken(position.token);
        const file = `${binlog.base}.${position.token.slice(binlog.base.length + 1).split(":")[0]}`;
        const gtid = binlog.rest.startsWith(";") && binlog.rest.length > 1 ? JSON.stringify(binlog.rest.slice(1)) : "null";
        return `,"file":${JSON.stringify(file)},"pos":${binlog.offset},"gtid":${gtid}`;
      }
      case "seq":
        if (/^-?\d+$/.test(position.token)) return `,"seq":${BigInt(position.token)}`;
        break;
    }
  } catch {
    // A malformed token of a known kind is still written, as text, rather than lost.
  }
  return `,"position":${JSON.stringify(position.token)}`;
}

/** The row with every byte string as base64 text; the row itself when it holds none. */
export function withBase64Bytes(row: Row): Row {
  return hasBytes(row) ? (convert(row) as Row) : row;
}

function hasBytes(value: Value): boolean {
  if (value instanceof Uint8Array) return true;
  if (Array.isArray(value)) return value.some(hasBytes);
  if (isRecord(value)) {
    for (const key of Object.keys(value)) if (hasBytes(value[key]!)) return true;
  }
  return false;
}

function convert(value: Value): Value {
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64");
  if (Array.isArray(value)) return value.map(convert);
  if (isRecord(value)) {
    const out: Row = {};
    for (const key of Object.keys(value)) {
      Object.defineProperty(out, key, { value: convert(value[key]!), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return value;
}
