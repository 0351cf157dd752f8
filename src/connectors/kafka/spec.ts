/**
 * Kafka in both directions, in the Debezium envelope: the sink publishes a change stream, the
 * source consumes one. Together they spread a pipeline over many machines with Kafka doing
 * the partitioning and rebalancing.
 */
import { defineConnector, field } from "../spec.js";

export const sourceSpec = defineConnector({
  name: "kafka",
  role: "source",
  summary: "Consumes Debezium-format change topics in a consumer group.",
  description: `Reads change events from Kafka topics in the Debezium JSON envelope, as the
\`kafka\` sink writes them with \`format: "debezium"\` or as Debezium itself does. This is how
dts grows past one machine: one pipeline captures a database into topics partitioned by
primary key, and any number of \`dts-run\` workers read those topics in one consumer group
and write to the sinks; Kafka shares out the partitions.

The consumer group is \`group\`, and by default the pipeline's name. A group with committed
offsets resumes from them; \`start\` only matters for a group that has none. A position is a
topic, partition and offset.

Offsets are committed only after every sink has made the events durable (and the checkpoint
is saved, about once a second). A partition's batch is held until then, so a worker never has
more than one batch per partition in memory, and a rebalance waits for the batches in flight
to be committed: a partition's new owner starts exactly where its old one stopped, and never
writes a key while the old owner still holds an older change of it. A worker that dies
(SIGKILL, a lost machine) leaves the group after 10 s without heartbeats; its partitions move
to the others, which read again from the last commit. Delivery is at-least-once, order holds
per partition, hence per key when the producer partitions by key (the kafka sink and
Debezium do). Each worker keeps its own checkpoint file for \`dts status\`; it resumes from
the group's committed offsets, wherever it runs.

Values are read exactly (an integer keeps every digit, a decimal its scale); a timestamp stays
its ISO text and bytes their base64 text, which a database sink's column converts. The key is
the message key's object (the primary key). Tombstones, and Debezium's truncate and message
events, are skipped. A message that is not an envelope stops the pipeline with its topic,
partition and offset. The event's position is \`TOPIC/PARTITION/OFFSET\`.`,
  example: `source changes = kafka {
  brokers: ["127.0.0.1:9092"]
  topics: ["shop.orders", "shop.customers"]
  group: "orders-to-warehouse"
  start: "earliest"
}`,
  options: {
    brokers: field.strings("The bootstrap brokers, as host:port.", {
      required: true,
      example: `["127.0.0.1:9092"]`,
    }),
    topics: field.strings("The topics to consume.", {
      required: true,
      example: `["shop.orders", "shop.customers"]`,
    }),
    group: field.string("The consumer group; by default the pipeline's name.", {
      example: `"orders-to-warehouse"`,
    }),
    format: field.enumeration(["debezium"], "The message format: debezium, the Debezium JSON envelope.", {
      default: "debezium",
      example: `"debezium"`,
    }),
    start: field.enumeration(
      ["earliest", "latest"],
      "Where a consumer group with no committed offsets starts: the oldest retained message, or only new ones.",
      { default: "earliest", example: `"latest"` },
    ),
    client_id: field.string("The client id the brokers see, in their logs and quotas.", {
      default: "dts",
      example: `"dts-orders"`,
    }),
  },
});

export const sinkSpec = defineConnector({
  name: "kafka",
  role: "sink",
  summary: "Publishes each event to a Kafka topic, by default in the Debezium envelope.",
  description: `Publishes one message per event. \`topic\` and \`key\` are evaluated for every
event, so one sink can spread tables over topics (\`"shop.\${source.table}"\`). The key is by
default the event's primary key as a JSON object (\`{"id":42}\`, Debezium's key), so all
changes of a row go to one partition and keep their order.

With \`format: "debezium"\` the value is the standard Debezium envelope (\`op\` c, u, d or r,
\`before\`, \`after\`, \`source\`, \`ts_ms\`; see src/model/debezium.ts for how values and
\`source\` are written), which existing Debezium consumers and the \`kafka\` source read
unchanged. As Debezium does, a delete is followed by a tombstone (the same key, a null value)
so that a compacted topic forgets the row (\`tombstones: false\` leaves it out), and an update
that changes the primary key is published as a delete under the old key, its tombstone, and
a create under the new key. With \`json\` the value is the row after the steps as a JSON object,
and a delete (and the old key of a key change) is a tombstone: a compacted topic then holds
exactly the current rows.

**Absent columns.** A column an event does not carry (a PostgreSQL TOASTed value an UPDATE
left unchanged) is left out of \`after\` and of the \`json\` row — never written as null. So a
Debezium \`after\` from dts need not name every column: a consumer must read a missing field
as "unchanged" (Debezium itself writes the placeholder \`__debezium_unavailable_value\`
there). Give the table \`REPLICA IDENTITY FULL\` for rows that are always whole.

Each write is published with the idempotent producer and \`acks: all\`, in requests under
the broker's 1 MB record batch limit, optionally compressed; it resolves only once the broker
acknowledged every message, and writes go one at a time, so the checkpoint never moves past a
message the broker does not have. A message over \`max_message_bytes\` is dead-lettered with
the reason. A broker that cannot be reached fails the write as retriable: the runner retries
with backoff for \`retry_for\`. Delivery is at-least-once: after a crash or a failed write,
messages after the last acknowledged write are published again (in order, so per key a
consumer sees a repeat, never a reordering). Topics must exist, unless the brokers create
topics on first use.`,
  example: `sink events = kafka {
  brokers: [env("KAFKA_BROKERS", "127.0.0.1:9092")]
  topic: "shop.\${source.table}"
  key: key
  format: "debezium"
}`,
  options: {
    brokers: field.strings("The bootstrap brokers, as host:port.", {
      required: true,
      example: `["127.0.0.1:9092"]`,
    }),
    topic: field.string("The topic of each message; it may use the event's fields.", {
      required: true,
      timing: "event",
      example: `"shop.\${source.table}"`,
    }),
    key: field.any("The message key: a string is sent as it is, any other value as JSON; by default the event's primary key as JSON.", {
      timing: "event",
      example: `"\${row.customer_id}"`,
    }),
    format: field.enumeration(
      ["debezium", "json"],
      "The message value: debezium, the Debezium envelope; json, the row after the steps.",
      { default: "debezium", example: `"json"` },
    ),
    tombstones: field.boolean("With format debezium: after each delete, a message with the same key and a null value (Debezium's tombstone), so that log compaction removes the row.", {
      default: true,
      example: "false",
    }),
    compression: field.enumeration(["none", "gzip"], "How each request's record batches are compressed (the codecs built into kafkajs).", {
      default: "none",
      example: `"gzip"`,
    }),
    max_message_bytes: field.integer("The largest message (key and value) to publish; a larger one is dead-lettered. Keep it at or under the topic's max.message.bytes.", {
      default: 1000000,
      minimum: 1,
      example: "5000000",
    }),
    client_id: field.string("The client id the brokers see, in their logs and quotas.", {
      default: "dts",
      example: `"dts-orders"`,
    }),
  },
});
