/** NATS subjects, acknowledged by JetStream when durability matters, fire-and-forget when not. */
import { defineConnector, field } from "../spec.js";

export const sinkSpec = defineConnector({
  name: "nats",
  role: "sink",
  summary: "Publishes each event to a NATS subject, with JetStream acknowledgements by default.",
  description: `Publishes one message per event to \`subject\`, which is evaluated for every event
(\`"shop.\${source.table}.\${op}"\`). \`format\` chooses the message body: \`event\`, the
whole change event as JSON; \`row\`, only the row after the steps (a column the source did not
send — an unchanged TOASTed PostgreSQL value — is left out, never null); \`debezium\`, the
Debezium envelope.

With \`jetstream: true\` (the default) every message is published to JetStream and a write
resolves — so the checkpoint may move past its events — only when the stream that holds its
subject has acknowledged every message of it. A stream must hold the subjects: name it in
\`stream\` to have it checked at start (a missing stream stops the start), and add
\`create_stream: true\` with \`stream_subjects\` to have it created when missing, with
\`duplicate_window\`. A subject no stream holds stops the pipeline with its name.

**What a consumer receives.** Each message has the body above and these headers:

| header | value |
|---|---|
| \`Nats-Msg-Id\` | the event's id: \`PIPELINE/KIND:POSITION/N\` (\`shop/pg-lsn:0/1A2B3C8/0\`): the source position of the event's transaction and the event's ordinal within it; for a snapshot row \`PIPELINE/KIND:POSITION/r/HASH\`, a hash of its table and key |
| \`dts-event-id\` | the same id |
| \`dts-op\` | \`insert\`, \`update\`, \`delete\` or \`read\` (a snapshot row) |
| \`dts-table\` | the source table, \`schema.table\` |
| \`dts-position\` | the source position, \`KIND:TOKEN\` (\`pg-lsn:0/1A2B3C8\`) |

**Delivery: at-least-once, deduplicated by JetStream on \`Nats-Msg-Id\`.** After a crash, a
lost connection or a server restart, the messages after the last checkpoint are published
again with the same \`Nats-Msg-Id\`, and the stream drops each one it has stored within its
duplicate window (\`duplicate_window\`, 2 minutes by default in NATS): a restart within the
window stores every event exactly once. A re-send after the window is stored again, so a
consumer that must see each event once still keys on \`Nats-Msg-Id\`. A server that cannot be
reached is retried, with backoff, within \`retry_for\`; each retry logs how long it has been
down.

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
    stream: field.string("The JetStream stream that holds the subjects, checked at start (created with create_stream).", {
      example: `"SHOP"`,
    }),
    create_stream: field.boolean("Create `stream` at start when it does not exist, holding `stream_subjects`, file-stored.", {
      default: false,
      example: "true",
    }),
    stream_subjects: field.strings("The subjects a stream created by create_stream holds.", {
      example: `["shop.>"]`,
    }),
    duplicate_window: field.duration(
      "The duplicate window of a stream created by create_stream: a message re-sent within it with the same Nats-Msg-Id is dropped.",
      { default: "2m", example: `"10m"` },
    ),
    format: field.enumeration(
      ["event", "row", "debezium"],
      "The message body: event, the whole change event; row, only the row after the steps; debezium, the Debezium envelope.",
      { default: "event", example: `"row"` },
    ),
  },
});
