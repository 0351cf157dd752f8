/** A cache kept in step with a database: one Redis key per row, removed when the row is deleted. */
import { defineConnector, field } from "../spec.js";

export const sinkSpec = defineConnector({
  name: "redis",
  role: "sink",
  summary: "Keeps one Redis key per row: set on insert and update, deleted on delete.",
  description: `Keeps a Redis key per row, named by \`key\`, which is evaluated for every event
(\`"product:\${key.id}"\`). An insert, an update or a snapshot row writes the row: with
\`format: "json"\` it is \`SET\` as JSON text; with \`"hash"\` each column is a field of a
hash (\`HSET\`). A delete \`DEL\`s the key in either format. With \`ttl\` every write also
sets the key to expire after that many seconds.

Writes are idempotent by key, so a replay after a crash leaves the same keys: delivery is
at-least-once and the result effectively-once. Changes to one key are applied in order.`,
  example: `sink cache = redis {
  url: env("REDIS_URL", "redis://127.0.0.1:6379")
  key: "product:\${key.id}"
  format: "hash"
  ttl: 3600
}`,
  options: {
    url: field.string("The server and credentials, as redis://user:pass@host:port/db.", {
      required: true,
      secret: true,
      example: `"redis://127.0.0.1:6379"`,
    }),
    key: field.string("The Redis key of each row; it may use the event's fields.", {
      required: true,
      timing: "event",
      example: `"product:\${key.id}"`,
    }),
    format: field.enumeration(
      ["json", "hash"],
      "json: SET the row as JSON text; hash: HSET each column as a field. A delete DELs the key either way.",
      { default: "json", example: `"hash"` },
    ),
    ttl: field.integer("Seconds until a written key expires; without it, keys never expire.", {
      minimum: 1,
      example: "3600",
    }),
  },
});
