/**
 * The message sinks' event ids (src/connectors/message.ts): the dedup key of JetStream's
 * Nats-Msg-Id, RabbitMQ's message_id and the http sink's Idempotency-Key must be the same
 * every time the same event is sent — after a retried write and after a replay from a
 * checkpoint — and differ between any two events.
 */
import { describe, expect, it } from "vitest";
import { EventIds } from "../../src/connectors/message.js";
import type { ChangeEvent, Op } from "../../src/model/event.js";
import { pgLsnPosition } from "../../src/model/position.js";
import { Timestamp } from "../../src/model/timestamp.js";
import type { SinkEvent } from "../../src/runtime/contracts.js";

function event(op: Op, lsn: string, id: number, table = "orders"): SinkEvent {
  const row = { id };
  const change: ChangeEvent = {
    op,
    before: null,
    after: row,
    key: row,
    source: { connector: "postgres", db: "shop", schema: "public", table, position: pgLsnPosition(lsn), ts: Timestamp.fromEpochMicros(0n) },
  };
  return { event: change, target: `public.${table}` };
}

describe("event ids", () => {
  it("number the events of one position, and start again at the next", () => {
    const ids = new EventIds("p");
    const got = ids.ids([event("insert", "0/10", 1), event("update", "0/10", 1), event("delete", "0/20", 2)]);
    expect(got).toEqual(["p/pg-lsn:0/10/0", "p/pg-lsn:0/10/1", "p/pg-lsn:0/20/0"]);
  });

  it("give a retried write the same ids, and go on from a committed one", () => {
    const ids = new EventIds("p");
    const batch = [event("insert", "0/10", 1), event("insert", "0/10", 2)];
    const first = ids.ids(batch);
    expect(ids.ids(batch)).toEqual(first);
    ids.commit();
    // A transaction split across writes goes on counting.
    expect(ids.ids([event("insert", "0/10", 3)])).toEqual(["p/pg-lsn:0/10/2"]);
  });

  it("name a snapshot row by its table and key, so a resumed snapshot keeps the ids", () => {
    const a = new EventIds("p").ids([event("read", "0/5", 1), event("read", "0/5", 2)]);
    const resumed = new EventIds("p").ids([event("read", "0/5", 2)]);
    expect(resumed[0]).toBe(a[1]);
    expect(a[0]).not.toBe(a[1]);
    expect(new EventIds("p").ids([event("read", "0/5", 1, "customers")])[0]).not.toBe(a[0]);
  });
});
