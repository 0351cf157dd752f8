/** RabbitMQ (AMQP 0-9-1): events routed through an exchange, confirmed by the broker. */
import { defineConnector, field } from "../spec.js";

export const sinkSpec = defineConnector({
  name: "rabbitmq",
  role: "sink",
  summary: "Publishes each event to a RabbitMQ exchange with a per-event routing key.",
  description: `Publishes one message per event to \`exchange\` with \`routing_key\`, which is
evaluated for every event (\`"\${source.table}.\${op}"\`), so consumers bind queues to the
changes they care about. \`format\` chooses the message body: \`event\`, the whole change
event as JSON; \`row\`, only the row after the steps; \`debezium\`, the Debezium envelope.

A named exchange is declared at start, durable and of type \`exchange_type\`; an existing
exchange of another type is an error. The default exchange (\`""\`) routes straight to the
queue named by the routing key.

With \`persistent: true\` (the default) messages are persistent and the sink waits for
publisher confirms before acknowledging events. Delivery is at-least-once: after a crash,
messages after the last checkpoint are published again. With \`persistent: false\` a broker
restart can lose messages.`,
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
  },
});
