/**
 * What the kafka sink publishes for one event: zero or more messages, each a topic, a key and
 * a value (null for a tombstone).
 *
 * `debezium`, as Debezium's PostgreSQL connector publishes the same change:
 *   insert/read/update   one envelope (op c, r, u) under the row's key;
 *   delete               an envelope (op d), then a tombstone under the same key (when
 *                        `tombstones`), so that a compacted topic forgets the row;
 *   update of the key    the row moves: a delete (op d, `before`) under the old key, its
 *                        tombstone, then a create (op c, `after`) under the new key — as
 *                        Debezium does, so that each key's partition sees its row's whole story.
 * `json`, the row after the steps under its key; a delete (and the old key of a key change) is
 * a tombstone, so a compacted topic holds exactly the current rows.
 *
 * Absent columns (an unchanged TOASTed value) are left out of `after` and of the row, never
 * written as null: a consumer must read a missing field as "unchanged".
 *
 * The key: the sink's `key` option when given (a string as it is, null as no key, bytes as
 * base64, any other value as JSON),
 * else the event's primary key as a JSON object, which is Debezium's key with schemas off.
 * For the delete half of a key change, the option is evaluated on that delete (`key` is then
 * the old key, `after` null).
 */
import { encodeDebezium, withBase64Bytes } from "../../model/debezium.js";
import type { ChangeEvent } from "../../model/event.js";
import { canonicalJson, encodeJson } from "../../model/json.js";
import { isRecord, typeOf, type Row, type Value } from "../../model/value.js";
import type { SinkEvent } from "../../runtime/contracts.js";

export type Format = "debezium" | "json";

export interface OutMessage {
  readonly topic: string;
  /** null: no key (the producer spreads such messages over the partitions). */
  readonly key: string | null;
  readonly value: string | null;
}

export interface EncodeOptions {
  readonly format: Format;
  readonly tombstones: boolean;
  /** `source.name` in the envelope: the pipeline's name. */
  readonly name: string;
  readonly processedAtMs: number;
  readonly topic: (event: SinkEvent) => Value;
  readonly key: ((event: SinkEvent) => Value) | undefined;
}

/** An event that cannot become a message: a topic that is not text, say. */
export class EncodeError extends Error {}

export function encodeMessages(sinkEvent: SinkEvent, options: EncodeOptions): OutMessage[] {
  const event = sinkEvent.event;
  const topic = options.topic(sinkEvent);
  if (typeof topic !== "string" || topic === "") {
    throw new EncodeError(`the topic option gave ${typeof topic === "string" ? "an empty string" : typeOf(topic)}, not a topic name`);
  }
  const key = keyText(sinkEvent, options);
  const movedFrom = movedKey(event);
  if (movedFrom !== undefined) {
    // The row moved to a new key: its old key's story ends with a delete.
    const deleted: ChangeEvent = { ...event, op: "delete", after: null, key: movedFrom };
    const created: ChangeEvent = { ...event, op: "insert", before: null };
    const oldKey = keyText({ ...sinkEvent, event: deleted }, options);
    return [...deleteMessages(deleted, topic, oldKey, options), { topic, key, value: value(created, options) }];
  }
  if (event.op === "delete") return deleteMessages(event, topic, key, options);
  return [{ topic, key, value: value(event, options) }];
}

function deleteMessages(event: ChangeEvent, topic: string, key: string | null, options: EncodeOptions): OutMessage[] {
  if (options.format === "json") return [{ topic, key, value: null }];
  const envelope = { topic, key, value: value(event, options) };
  return options.tombstones ? [envelope, { topic, key, value: null }] : [envelope];
}

function value(event: ChangeEvent, options: EncodeOptions): string {
  if (options.format === "debezium") return encodeDebezium(event, { name: options.name, processedAtMs: options.processedAtMs });
  return encodeJson(withBase64Bytes(event.after ?? event.before ?? {}));
}

function keyText(sinkEvent: SinkEvent, options: EncodeOptions): string | null {
  if (options.key === undefined) return encodeJson(withBase64Bytes(sinkEvent.event.key));
  const key = options.key(sinkEvent);
  if (typeof key === "string" || key === null) return key;
  if (key instanceof Uint8Array) return Buffer.from(key).toString("base64");
  return encodeJson(isRecord(key) ? withBase64Bytes(key) : key);
}

/**
 * The old key of an update that changed the row's primary key; undefined for any other event.
 * `before` holds at least the key columns on such an update (PostgreSQL sends the old key).
 */
function movedKey(event: ChangeEvent): Row | undefined {
  if (event.op !== "update" || event.before === null) return undefined;
  const columns = Object.keys(event.key);
  if (columns.length === 0 || !columns.every((column) => Object.hasOwn(event.before!, column))) return undefined;
  const old: Row = {};
  for (const column of columns) {
    Object.defineProperty(old, column, { value: event.before[column]!, enumerable: true, writable: true, configurable: true });
  }
  return canonicalJson(old) === canonicalJson(event.key) ? undefined : old;
}
