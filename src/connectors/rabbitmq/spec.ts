/** RabbitMQ (AMQP 0-9-1): events routed through an exchange, confirmed by the broker. */
import { defineConnector, field } from "../spec.js";

export const sinkSpec = defineConnector({
  name: "rabbitmq",
  role: "sink",
  summary: "Publishes each event to a RabbitMQ exchange with a per-event routing key.",
  description: `Publishes one message per event to \`exchange\` with \`routing_key\`, which is
evaluated for every event (\`"\${source.table}.\${op}"\`), so consumers bind queues to the
changes they care about. \`format\` chooses the message body: \`event\`, the whole change
event as JSON; \`row\`, only the row after the steps (a column an update left unchanged and
the source did not send — an unchanged TOASTed PostgreSQL value — is left out, never null);
\`debezium\`, the Debezium envelope.

With \`declare_exchange: true\` (the default) a named exchange is declared at start, durable
and of type \`exchange_type\`; an existing exchange of another type is an error. With
\`false\` it is only checked: a missing exchange stops the start. The default exchange
(\`""\`) routes straight to the queue named by the routing key.

**What a consumer receives.** Each message has the body above (\`content_type\`
\`application/json\`), \`message_id\` set to the event's id, \`app_id\` \`dts\`,
\`timestamp\` the time it was sent (seconds), \`delivery_mode\` 2 (persistent) unless
\`persistent: false\`, and these headers:

| header | value |
|---|---|
| \`dts-event-id\` | the event's id, as \`message_id\`: \`PIPELINE/KIND:POSITION/N\` (\`shop/pg-lsn:0/1A2B3C8/0\`): the source position of the event's transaction and the event's ordinal within it; for a snapshot row \`PIPELINE/KIND:POSITION/r/HASH\`, a hash of its table and key |
| \`dts-op\` | \`insert\`, \`update\`, \`delete\` or \`read\` (a snapshot row) |
| \`dts-table\` | the source table, \`schema.table\` |
| \`dts-position\` | the source position, \`KIND:TOKEN\` (\`pg-lsn:0/1A2B3C8\`) |

**Delivery: at-least-once, deduplicated by \`message_id\`.** With \`persistent: true\` (the
default) the sink publishes on a channel in confirm mode and a write resolves — so the
checkpoint may move past its events — only when the broker has confirmed every message of it,
and of every write before it. After a crash or a lost connection, the messages after the last
checkpoint are published again with the same \`message_id\`, in the same order: a consumer
that must see each event once keeps the ids it has processed since the last few minutes.
Messages of one routing key reach a queue in source order (one channel, one publisher).

Messages are published \`mandatory\` (unless \`mandatory: false\`): one that no queue is
bound to take is returned by the broker instead of being dropped. A returned message, or one
the broker refuses (a \`nack\`: a full queue with \`overflow: reject-publish\`), stops the
pipeline with the routing key and the reason (\`on_refused: "error"\`), or goes to the
pipeline's dead-letter sink with the reason (\`on_refused: "dead_letter"\`), and the pipeline
goes on. A lost connection is retried, with backoff, within \`retry_for\`; each retry logs
how long the broker has been unreachable.

With \`persistent: false\` messages are transient and not confirmed: a broker restart, or a
connection lost with messages in flight, can lose them.`,
  example: `sink notify = rabbitmq {
  url: env("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672")
  exchange: "shop"
  exchange_type: "topic"
  routing_key: "\${source.table}.\${op}"
}`,
  options: {
    url: field.string("The broker and credentials, as amqp://user:pass@host:port/vhost.", {
      required: true,
      secret: true,
      example: `"amqp://guest:guest@127.0.0.1:5672"`,
    }),
    exchange: field.string("The exchange to publish to; \"\" is the default exchange.", {
      default: "",
      example: `"shop"`,
    }),
    exchange_type: field.enumeration(
      ["topic", "direct", "fanout", "headers"],
      "The type the exchange is declared with.",
      { default: "topic", example: `"fanout"` },
    ),
    routing_key: field.string("The routing key of each message; it may use the event's fields.", {
      required: true,
      timing: "event",
      example: `"\${source.table}.\${op}"`,
    }),
    format: field.enumeration(
      ["event", "row", "debezium"],
      "The message body: event, the whole change event; row, only the row after the steps; debezium, the Debezium envelope.",
      { default: "event", example: `"row"` },
    ),
    persistent: field.boolean("Send persistent messages and wait for publisher confirms.", {
      default: true,
      example: "false",
    }),
    declare_exchange: field.boolean(
      "Declare the exchange at start (durable, of exchange_type); false only checks that it exists.",
      { default: true, example: "false" },
    ),
    mandatory: field.boolean("Publish mandatory: a message no queue takes comes back from the broker instead of being dropped.", {
      default: true,
      example: "false",
    }),
    on_refused: field.enumeration(
      ["error", "dead_letter"],
      "What a message the broker returns (unroutable) or refuses (nack) does: error stops the pipeline; dead_letter sends its event to the pipeline's dead-letter sink with the reason.",
      { default: "error", example: `"dead_letter"` },
    ),
  },
});
