/** NATS subjects, acknowledged by JetStream when durability matters, fire-and-forget when not. */
import { defineConnector, field } from "../spec.js";

export const sinkSpec = defineConnector({
  name: "nats",
  role: "sink",
  summary: "Publishes each event to a NATS subject, with JetStream acknowledgements by default.",
  description: `Publishes one message per event to \`subject\`, which is evaluated for every event
(\`"shop.\${source.table}.\${op}"\`). \`format\` chooses the message body: \`event\`, the
whole change event as JSON; \`row\`, only the row after the steps; \`debezium\`, the Debezium
envelope.

With \`jetstream: true\` (the default) every message is acknowledged by the JetStream stream
that holds its subject, and events are acknowledged only then; a stream must exist for the
subjects. Delivery is at-least-once: after a crash, messages after the last checkpoint are
published again.

With \`jetstream: false\` messages go to core NATS, which keeps nothing and acknowledges
nothing: a message with no subscriber listening is lost. Use it only where that is
acceptable.`,
  example: `sink bus = nats {
  url: env("NATS_URL", "nats://127.0.0.1:4222")
  subject: "shop.\${source.table}.\${op}"
  jetstream: true
}`,
  options: {
    url: field.string("The server, as nats://host:port, with user:pass@ when it asks for them.", {
      default: "nats://127.0.0.1:4222",
      secret: true,
      example: `"nats://127.0.0.1:4222"`,
    }),
    subject: field.string("The subject of each message; it may use the event's fields.", {
      required: true,
      timing: "event",
      example: `"shop.\${source.table}.\${op}"`,
    }),
    jetstream: field.boolean("Publish with an acknowledgement from the JetStream stream that holds the subject.", {
      default: true,
      example: "false",
    }),
    format: field.enumeration(
      ["event", "row", "debezium"],
      "The message body: event, the whole change event; row, only the row after the steps; debezium, the Debezium envelope.",
      { default: "event", example: `"row"` },
    ),
  },
});
