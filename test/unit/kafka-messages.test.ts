/**
 * The kafka connector's message forms without a broker: what the sink makes of each kind of
 * event (messages.ts) and that the source reads the sink's envelopes back (envelope.ts) —
 * exact values, the key, key changes split into delete, tombstone and create — and Debezium's
 * own shapes: the JSON converter with schemas on, truncate events, tombstones, and input that
 * is not an envelope.
 */
import { describe, expect, it } from "vitest";
import { decodeEnvelope, EnvelopeError } from "../../src/connectors/kafka/envelope.js";
import { encodeMessages, EncodeError, type EncodeOptions } from "../../src/connectors/kafka/messages.js";
import { Decimal } from "../../src/model/decimal.js";
import type { ChangeEvent } from "../../src/model/event.js";
import { canonicalJson } from "../../src/model/json.js";
import { pgLsnPosition } from "../../src/model/position.js";
import { Timestamp } from "../../src/model/timestamp.js";
import type { Row } from "../../src/model/value.js";

function event(op: ChangeEvent["op"], before: Row | null, after: Row | null, key: Row): ChangeEvent {
  return { op, before, after, key, source: { connector: "postgres", db: "shop", schema: "public", table: "orders", position: pgLsnPosition("0/10"), ts: Timestamp.fromEpochMillis(1_700_000_000_000), txid: "77" } };
}

const options = (overrides: Partial<EncodeOptions> = {}): EncodeOptions => ({
  format: "debezium",
  tombstones: true,
  name: "p",
  processedAtMs: 1,
  topic: (e) => `shop.${e.event.source.table}`,
  key: undefined,
  ...overrides,
});

const row: Row = { id: 7, amount: new Decimal("12.30"), big: 9007199254740993n, note: "é" };

describe("kafka sink messages", () => {
  it("sends an insert as one envelope under the primary key", () => {
    const [message, ...rest] = encodeMessages({ event: event("insert", null, row, { id: 7 }), target: "public.orders" }, options());
    expect(rest).toEqual([]);
    expect(message!.topic).toBe("shop.orders");
    expect(message!.key).toBe('{"id":7}');
    expect(message!.value).toContain('"after":{"id":7,"amount":12.30,"big":9007199254740993,"note":"é"}');
  });

  it("follows a delete with a tombstone unless told not to; json sends a tombstone alone", () => {
    const del = { event: event("delete", row, null, { id: 7 }), target: "public.orders" };
    expect(encodeMessages(del, options()).map((m) => m.value === null)).toEqual([false, true]);
    expect(encodeMessages(del, options({ tombstones: false })).map((m) => m.value === null)).toEqual([false]);
    expect(encodeMessages(del, options({ format: "json" }))).toEqual([{ topic: "shop.orders", key: '{"id":7}', value: null }]);
  });

  it("splits a key change into a delete and tombstone under the old key and a create under the new", () => {
    const moved = { event: event("update", { ...row }, { ...row, id: 8 }, { id: 8 }), target: "public.orders" };
    const messages = encodeMessages(moved, options());
    expect(messages.map((m) => [m.key, m.value === null ? null : JSON.parse(m.value).op])).toEqual([
      ['{"id":7}', "d"],
      ['{"id":7}', null],
      ['{"id":8}', "c"],
    ]);
    expect(encodeMessages(moved, options({ format: "json" })).map((m) => [m.key, m.value])).toEqual([
      ['{"id":7}', null],
      ['{"id":8}', '{"id":8,"amount":12.30,"big":9007199254740993,"note":"é"}'],
    ]);
  });

  it("leaves an absent column out of after, never null", () => {
    const [message] = encodeMessages({ event: event("update", null, { id: 7, note: "x" }, { id: 7 }), target: "public.orders" }, options());
    expect(JSON.parse(message!.value!).after).toEqual({ id: 7, note: "x" });
  });

  it("takes the key option as text, JSON or no key, and refuses a topic that is not text", () => {
    const e = { event: event("insert", null, row, { id: 7 }), target: "public.orders" };
    expect(encodeMessages(e, options({ key: () => "k-7" }))[0]!.key).toBe("k-7");
    expect(encodeMessages(e, options({ key: () => ({ a: 1n }) }))[0]!.key).toBe('{"a":1}');
    expect(encodeMessages(e, options({ key: () => null }))[0]!.key).toBeNull();
    expect(() => encodeMessages(e, options({ topic: () => 5 }))).toThrow(EncodeError);
  });
});

describe("kafka source envelopes", () => {
  const record = (value: string | null, key: string | null = '{"id":7}') => ({
    topic: "shop.orders",
    partition: 2,
    offset: "41",
    key: key === null ? null : Buffer.from(key),
    value: value === null ? null : Buffer.from(value),
  });

  it("reads the sink's envelope back exactly", () => {
    const original = event("update", row, { ...row, note: "x" }, { id: 7 });
    const [message] = encodeMessages({ event: original, target: "public.orders" }, options());
    const read = decodeEnvelope(record(message!.value))!;
    expect(read.op).toBe("update");
    expect(canonicalJson(read.before!)).toBe(canonicalJson(row));
    expect(canonicalJson(read.after!)).toBe(canonicalJson({ ...row, note: "x" }));
    expect(read.key).toEqual({ id: 7 });
    expect(read.source).toMatchObject({ connector: "postgres", db: "shop", schema: "public", table: "orders", txid: "77", position: { kind: "kafka", token: "shop.orders/2/41" } });
    expect(read.source.ts.toEpochMillis()).toBe(1_700_000_000_000);
  });

  it("reads Debezium with schemas on, skips tombstones and truncates, refuses what is not an envelope", () => {
    const payload = { before: null, after: { id: 1 }, source: { connector: "postgresql", db: "d", schema: "s", table: "t", ts_ms: 5 }, op: "c", ts_ms: 6 };
    const read = decodeEnvelope(record(JSON.stringify({ schema: {}, payload }), JSON.stringify({ schema: {}, payload: { id: 1 } })))!;
    expect([read.op, read.after, read.key]).toEqual(["insert", { id: 1 }, { id: 1 }]);
    expect(decodeEnvelope(record(null))).toBeUndefined();
    expect(decodeEnvelope(record(JSON.stringify({ ...payload, op: "t", after: null })))).toBeUndefined();
    expect(() => decodeEnvelope(record("not json"))).toThrow(EnvelopeError);
    expect(() => decodeEnvelope(record('{"op":"x"}'))).toThrow(/not one of c, u, d, r/);
    expect(() => decodeEnvelope(record(JSON.stringify({ ...payload, op: "u", after: null })))).toThrow(/without after/);
  });
});
