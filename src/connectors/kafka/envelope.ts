/**
 * Reading a Debezium change message back into a `ChangeEvent`: dts's own envelope (the kafka
 * sink's `format: "debezium"`) or Debezium's, with the JSON converter's schemas on
 * (`{"schema":…,"payload":…}`) or off.
 *
 * Values are read with dts's exact JSON reader (model/json.ts): an integer keeps every digit, a
 * decimal its scale. What JSON cannot say stays as the envelope wrote it: a timestamp is its
 * ISO text, bytes their base64 text, a Debezium date its day number — a step or the target
 * column converts them. The key row is the message key's object (the primary key, as both dts
 * and Debezium write it). The event's position is where the message is in Kafka,
 * `TOPIC/PARTITION/OFFSET`; the database's own position stays in the envelope's `source`, which
 * the event does not carry on.
 *
 * A tombstone (null value) and Debezium's truncate (`op: "t"`) and message (`op: "m"`) events
 * are not row changes and give no event.
 */
import type { ChangeEvent, Op } from "../../model/event.js";
import { decodeJson } from "../../model/json.js";
import { position } from "../../model/position.js";
import { Timestamp } from "../../model/timestamp.js";
import { isRecord, type Row, type Value } from "../../model/value.js";

const OPS: Readonly<Record<string, Op>> = { c: "insert", u: "update", d: "delete", r: "read" };

export class EnvelopeError extends Error {}

export interface KafkaRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
}

export function decodeEnvelope(record: KafkaRecord): ChangeEvent | undefined {
  if (record.value === null) return undefined;
  let value: Value;
  try {
    value = payload(decodeJson(record.value.toString("utf8")));
  } catch (error) {
    throw new EnvelopeError(`the value is not JSON: ${(error as Error).message}`);
  }
  if (!isRecord(value)) throw new EnvelopeError("the value is not a JSON object, so not a Debezium envelope");
  const opCode = value["op"];
  if (opCode === "t" || opCode === "m") return undefined;
  const op = typeof opCode === "string" ? OPS[opCode] : undefined;
  if (op === undefined) throw new EnvelopeError(`the envelope's op is ${JSON.stringify(opCode ?? null)}, not one of c, u, d, r`);
  const before = rowOrNull(value["before"], "before");
  const after = rowOrNull(value["after"], "after");
  if (op === "delete" ? before === null : after === null) {
    throw new EnvelopeError(`a ${op} envelope without ${op === "delete" ? "before" : "after"}`);
  }
  const source = value["source"];
  if (!isRecord(source)) throw new EnvelopeError("the envelope has no source object");
  const key = keyRow(record.key);
  return {
    op,
    before,
    after,
    key,
    source: {
      connector: text(source["connector"]) ?? "kafka",
      db: text(source["db"]) ?? "",
      schema: text(source["schema"]) ?? "",
      table: text(source["table"]) ?? record.topic,
      position: position("kafka", `${record.topic}/${record.partition}/${record.offset}`),
      ts: timestamp(source),
      txid: source["txId"] === null || source["txId"] === undefined ? undefined : String(source["txId"]),
    },
  };
}

/** The JSON converter with schemas on wraps everything in `{"schema":…,"payload":…}`. */
function payload(value: Value): Value {
  if (isRecord(value) && Object.hasOwn(value, "payload") && Object.hasOwn(value, "schema")) return value["payload"]!;
  return value;
}

function rowOrNull(value: Value | undefined, field: string): Row | null {
  if (value === undefined || value === null) return null;
  if (!isRecord(value)) throw new EnvelopeError(`the envelope's ${field} is not an object`);
  return value;
}

function keyRow(key: Buffer | null): Row {
  if (key === null) return {};
  try {
    const value = payload(decodeJson(key.toString("utf8")));
    return isRecord(value) ? value : {};
  } catch {
    return {};
  }
}

function text(value: Value | undefined): string | undefined {
  return typeof value === "string" ? value : undefined;
}

function timestamp(source: Row): Timestamp {
  const us = source["ts_us"];
  if (typeof us === "number" || typeof us === "bigint") return Timestamp.fromEpochMicros(us);
  const ms = source["ts_ms"];
  if (typeof ms === "number") return Timestamp.fromEpochMillis(ms);
  if (typeof ms === "bigint") return Timestamp.fromEpochMillis(Number(ms));
  return Timestamp.fromEpochMillis(0);
}
