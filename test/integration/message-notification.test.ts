/**
 * pipelines/message-notification.dts's payment flow end to end: PostgreSQL → filter → validate
 * (payment-change.schema.json) → map → RabbitMQ, with the pipeline's dead-letter jsonl sink.
 * The copy keeps only that flow (the Kafka sink belongs to another test), on a database,
 * slot and exchange of its own.
 *
 * Every change the test makes is counted into exactly one place: a message in the bound queue
 * (value by value: the mapped row the flow must make of it), a line in the dead-letter file
 * with the reason and the schema path that failed, or the filter's (a change that is not a
 * payment's state changing), computed from what the test did.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type Channel, type ChannelModel, type ConsumeMessage } from "amqplib";
import { requireBuild, runDtsRun, waitFor } from "../cli-process.js";
import { copyPipeline, unique } from "./postgres-e2e-helpers.js";
import { createDatabase, requireLogicalReplication, slotName, type ThrowawayDatabase } from "./pg-helpers.js";
import { readLines } from "./queue-helpers.js";

const AMQP_URL = process.env.AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672";

const KAFKA_SINK = `sink events = kafka {
  brokers: [env("KAFKA_BROKERS", "127.0.0.1:9092")]
  topic: "shop.\${source.table}"
  key: key
  format: "debezium"
}`;

describe("message notification: validate and dead_letter with the rabbitmq sink", () => {
  let db: ThrowawayDatabase;
  let model: ChannelModel;
  let channel: Channel;
  let pipeline: Awaited<ReturnType<typeof copyPipeline>>;
  const exchange = unique("dts_test_shop");
  const queue = unique("dts_test_payments");

  beforeAll(async () => {
    requireBuild();
    await requireLogicalReplication();
    try {
      model = await connect(AMQP_URL);
    } catch (error) {
      throw new Error(`RabbitMQ is not reachable at ${AMQP_URL} (${(error as Error).message}): run scripts/services.sh`);
    }
    channel = await model.createChannel();
    await channel.assertExchange(exchange, "topic", { durable: true });
    await channel.assertQueue(queue, { durable: true });
    await channel.bindQueue(queue, exchange, "payments.#");
    db = await createDatabase("notify");
    await db.sql(`
      CREATE TABLE orders (id int PRIMARY KEY, total numeric(10,2) NOT NULL);
      CREATE TABLE payments (id int PRIMARY KEY, order_id int, state text NOT NULL, amount numeric(10,2));
      ALTER TABLE payments REPLICA IDENTITY FULL;
    `);
    pipeline = await copyPipeline("message-notification.dts", [
      [KAFKA_SINK, ""],
      ["flow shop -> events\n", ""],
      ['snapshot: "never"', `snapshot: "never"\n  slot: "${slotName("dts_notify")}"`],
      ['exchange: "shop"', `exchange: "${exchange}"`],
    ]);
    // The schema the validate step names, beside the copy.
    const { copyFile } = await import("node:fs/promises");
    const { ROOT } = await import("../cli-process.js");
    await copyFile(join(ROOT, "pipelines/payment-change.schema.json"), join(pipeline.dir, "payment-change.schema.json"));
  });

  afterAll(async () => {
    await channel?.deleteQueue(queue).catch(() => undefined);
    await channel?.deleteExchange(exchange).catch(() => undefined);
    await model?.close().catch(() => undefined);
    await db?.drop();
    await pipeline?.remove();
  });

  it("sends valid state changes to the queue and invalid ones to the dead-letter sink, each change to exactly one place", async () => {
    const env = { SHOP_PG_URL: db.url, AMQP_URL };
    // The first run creates the slot (snapshot "never": only changes after it are captured).
    const first = await runDtsRun([pipeline.file, "--until-caught-up"], { cwd: pipeline.dir, env });
    expect(first.code, first.stderr).toBe(0);

    const n = 300;
    await db.sql(`INSERT INTO orders SELECT i, i * 10 FROM generate_series(1, ${n}) i`);
    await db.sql(`INSERT INTO payments SELECT i, i, 'pending', i * 10 FROM generate_series(1, ${n}) i`);
    // In one transaction each: a valid new state, an invalid one, a null order, an amount only.
    await db.sql(`UPDATE payments SET state = CASE WHEN id % 2 = 0 THEN 'authorized' ELSE 'captured' END WHERE id % 5 IN (0, 1, 2)`);
    await db.sql(`UPDATE payments SET state = 'lost' WHERE id % 5 = 3`);
    await db.sql(`UPDATE payments SET state = 'failed', order_id = NULL WHERE id % 5 = 4`);
    await db.sql(`UPDATE payments SET amount = amount + 1 WHERE id % 10 = 0`);
    await db.sql(`UPDATE orders SET total = total + 1 WHERE id <= 50`);
    await db.sql(`UPDATE payments SET state = 'refunded' WHERE id % 5 = 0 AND id <= 100`);

    const second = await runDtsRun([pipeline.file, "--until-caught-up"], { cwd: pipeline.dir, env });
    expect(second.code, second.stderr).toBe(0);

    // What the flow must make of the changes, in commit order.
    const ids = Array.from({ length: n }, (_, i) => i + 1);
    const delivered: { payment_id: number; state: string; order_id: number }[] = [];
    const invalid: { id: number; rule: string }[] = [];
    for (const id of ids.filter((id) => id % 5 <= 2)) delivered.push({ payment_id: id, state: id % 2 === 0 ? "authorized" : "captured", order_id: id });
    for (const id of ids.filter((id) => id % 5 === 3)) invalid.push({ id, rule: "#/properties/state/enum" });
    for (const id of ids.filter((id) => id % 5 === 4)) invalid.push({ id, rule: "#/properties/order_id/type" });
    for (const id of ids.filter((id) => id % 5 === 0 && id <= 100)) delivered.push({ payment_id: id, state: "refunded", order_id: id });
    // Filtered: the inserts of both tables, the amount-only updates, the orders' updates.
    const filtered = n + n + n / 10 + 50;
    const changes = n * 2 + (n * 3) / 5 + n / 5 + n / 5 + n / 10 + 50 + 20;
    expect(delivered.length + invalid.length + filtered).toBe(changes);

    const messages: ConsumeMessage[] = [];
    let last = Date.now();
    await channel.consume(queue, (message) => {
      if (message === null) return;
      messages.push(message);
      last = Date.now();
      channel.ack(message);
    });
    await waitFor("the queue to be drained", () => messages.length >= delivered.length && Date.now() - last > 1000, 30_000);
    const rows = messages.map((message) => {
      const event = JSON.parse(message.content.toString("utf8")) as { op: string; after: Record<string, unknown> };
      expect(event.op).toBe("update");
      expect(message.fields.routingKey).toBe("payments.update");
      expect(message.properties.headers!["dts-table"]).toBe("public.payments");
      return event.after;
    });
    // Per key in commit order (an UPDATE's own row order follows the heap, not the id): a
    // stable sort by key keeps each payment's messages in the order they came.
    const byKey = <T extends { payment_id: unknown }>(list: readonly T[]): T[] => [...list].sort((a, b) => Number(a.payment_id) - Number(b.payment_id));
    expect(byKey(rows as { payment_id: number }[])).toEqual(byKey(delivered));

    const rejected = readLines(join(pipeline.dir, "rejected.jsonl")).map(
      (line) => JSON.parse(line) as { op: string; after: { id: number; state: string; order_id: number | null }; rejection: { reason: string; where: string } },
    );
    expect(rejected).toHaveLength(invalid.length);
    const ruleOf = new Map(invalid.map((entry) => [entry.id, entry.rule]));
    expect(new Set(rejected.map((line) => line.after.id))).toEqual(new Set(ruleOf.keys()));
    rejected.forEach((line) => {
      const expected = { id: line.after.id, rule: ruleOf.get(line.after.id)! };
      // The event as it entered the flow: the whole payments row.
      expect(line.after.id).toBe(expected.id);
      expect(line.rejection.where).toMatch(/validate "payment-change.schema.json"/);
      expect(line.rejection.reason).toContain(`(schema ${expected.rule})`);
    });
    expect(rejected.find((line) => line.after.id === 3)!.rejection.reason).toBe(
      "the row does not match payment-change.schema.json: row/state must be equal to one of the allowed values (schema #/properties/state/enum)",
    );
  }, 120_000);
});
