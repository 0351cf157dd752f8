/**
 * A lane item as a spool record (sink-spool.ts): the sink's events in the typed JSON of
 * model/typed-json.ts (every value reads back as the same value and type: decimals with their
 * scale, 64-bit integers, timestamps, bytes; an absent column stays absent), with the item's
 * place in its source's stream, its checkpoint, and what the write must carry besides the
 * events (checkpoints stored by the sink, the transaction it belongs to, schema changes).
 *
 * Bulk rows are not kept: a spooled item holds its events, which are authoritative, so a
 * snapshot chunk that waited in the spool is written as events. A rejected event of a spooled
 * item reaches the dead-letter sink as the sink saw it (after the flow's steps), since the
 * event as it entered the flow is not spooled beside it.
 */
import type { JsonValue } from "../model/json-value.js";
import { eventFromTagged, eventToTagged, type Tagged } from "../model/typed-json.js";
import type { SinkEvent, SinkSchemaChange, SourceCheckpoint, SourceTransaction } from "./contracts.js";
import type { LaneItem } from "./sink-lane.js";

interface Record_ {
  s: string;
  q: number;
  a: number;
  c?: JsonValue;
  k?: JsonValue;
  t?: JsonValue;
  x?: JsonValue;
  e: Tagged[];
}

export function encodeItem(item: LaneItem): Buffer {
  const record: Record_ = {
    s: item.source,
    q: item.seq,
    a: item.at,
    ...(item.checkpoint !== undefined ? { c: item.checkpoint as unknown as JsonValue } : {}),
    ...(item.checkpoints !== undefined ? { k: item.checkpoints as unknown as JsonValue } : {}),
    ...(item.transaction !== undefined ? { t: item.transaction as unknown as JsonValue } : {}),
    ...(item.schemaChanges !== undefined ? { x: item.schemaChanges as unknown as JsonValue } : {}),
    e: item.events.map((event) => {
      const entry: Tagged[] = [eventToTagged(event.event), event.target];
      if (event.rejection !== undefined) entry.push(event.rejection.reason, event.rejection.where);
      return entry;
    }),
  };
  return Buffer.from(JSON.stringify(record), "utf8");
}

export function decodeItem(payload: Buffer): LaneItem {
  const record = JSON.parse(payload.toString("utf8")) as Record_;
  const events: SinkEvent[] = record.e.map((entry) => {
    const [event, target, reason, where] = entry as [Tagged, string, string?, string?];
    return {
      event: eventFromTagged(event),
      target,
      ...(reason !== undefined && where !== undefined ? { rejection: { reason, where } } : {}),
    };
  });
  return {
    source: record.s,
    seq: record.q,
    at: record.a,
    events,
    ...(record.c !== undefined ? { checkpoint: record.c as unknown as SourceCheckpoint } : {}),
    ...(record.k !== undefined ? { checkpoints: record.k as unknown as Record<string, SourceCheckpoint> } : {}),
    ...(record.t !== undefined ? { transaction: record.t as unknown as SourceTransaction } : {}),
    ...(record.x !== undefined ? { schemaChanges: record.x as unknown as SinkSchemaChange[] } : {}),
  };
}
