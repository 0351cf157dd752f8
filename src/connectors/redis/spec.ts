/** A cache kept in step with a database: one Redis key per row, removed when the row is deleted. */
import { defineConnector, field } from "../spec.js";

export const sinkSpec = defineConnector({
  name: "redis",
  role: "sink",
  summary: "Keeps one Redis key per row: set on insert and update, deleted on delete.",
  description: `Keeps a Redis key per row, named by \`key\`, which is evaluated for every event
(\`"product:\${key.id}"\`); without it the key is the event's target table and its primary key
values, joined by colons (\`public.products:42\`). An insert, an update or a snapshot row writes
the row; a delete \`DEL\`s the key.

With \`format: "json"\` the row is \`SET\` as one JSON document, its values exactly as the
\`jsonl\` sink writes them (integers with every digit, decimals with their scale, timestamps as
ISO 8601 text with microseconds, bytes as \`{"$bytes": "<base64>"}\`). With \`"hash"\` each column
is a field of a hash: text as it is, numbers as their exact digits, booleans \`true\`/\`false\`,
timestamps as ISO 8601 text, bytes as the raw bytes, lists and records as JSON; a NULL column is
no field at all. An insert replaces the whole key; an update changes only the columns it has.

**Absent is not null.** PostgreSQL leaves a large (TOASTed) value an update did not touch out of
the change. Such a column is kept as the cache has it: in a hash it is simply not written; in a
JSON document the sink reads the stored document and merges the update into it, inside the
same \`WATCH\`/\`MULTI\` as the write, so the value is never dropped or set to null. An update that
changes the row's key moves the row: the old key is deleted and the new one written, taking
the columns the update lacks from the old key. Whether an update lacks columns is told by the
columns the sink has seen for its table (in inserts, snapshot rows and stored keys). An update
that lacks columns while its key is not in the cache (it expired, or was evicted) is not written
(a partial row would be wrong, a missing key is only a miss), with a warning.

Each write is pipelined in one round trip. It runs as one \`MULTI\`/\`EXEC\` transaction when it
must be atomic: when it stores the pipeline's checkpoint (\`checkpoint: "redis"\`), merges a
stored document, or moves a key; otherwise it is a plain pipeline. With \`publish\`, every
change also \`PUBLISH\`es \`{"op", "key", "table"}\` (and \`"from"\`, the old key, when a key
moved) on that channel, in the same transaction as the write, so a subscriber that reads the
key finds the new value. With \`ttl\` every write also sets the key to expire after that many
seconds.

With \`checkpoint: "redis"\` the pipeline's position is kept in the hash
\`dts:checkpoints:<pipeline>\`, written in the same \`MULTI\` as the data it covers; the lock that
keeps a second run of the pipeline out is the key \`dts:lock:<pipeline>\`, naming the connection
that holds it, and is taken over when that connection is gone. Redis makes a write durable only
as far as its persistence is set up: keep \`appendonly yes\` with \`appendfsync always\` for a
checkpoint that survives a crash of the server, since a checkpoint the server loses sends the
source back to a position it may no longer have.

Writes are idempotent by key, so a replay after a crash leaves the same keys: delivery is
at-least-once and the result effectively-once. Changes to one key are applied in order. A
source transaction larger than one write is applied in parts. While Redis is unreachable,
nothing is queued in the client: the write fails, is retried with backoff within
\`retry_for\`, and the source waits. Redis Cluster is not supported (a transaction spans keys
of many slots).

\`dts verify\` reports a redis sink as not verifiable (exit 4 unless
\`--skip-unverifiable\`): a key is computed from each event by an expression that cannot be
turned back into the set of keys holding one table, and a stored value carries no type (a
hash field \`12.30\` may have been a decimal or a text), so there are neither the tables nor the
canonical kinds that the comparison of counts, checksums and rows needs. The sink's tests
compare every key with its source row instead.`,
  example: `sink cache = redis {
  url: env("REDIS_URL", "redis://127.0.0.1:6379")
  key: "product:\${key.id}"
  format: "hash"
  ttl: 3600
}`,
  options: {
    url: field.string("The server and credentials, as redis://user:pass@host:port/db (rediss:// for TLS).", {
      required: true,
      secret: true,
      example: `"redis://127.0.0.1:6379"`,
    }),
    key: field.string(
      "The Redis key of each row; it may use the event's fields. Default: the target table and the primary key values, joined by colons (`public.products:42`).",
      {
        timing: "event",
        example: `"product:\${key.id}"`,
      },
    ),
    format: field.enumeration(
      ["json", "hash"],
      "json: SET the row as JSON text; hash: HSET each column as a field. A delete DELs the key either way.",
      { default: "json", example: `"hash"` },
    ),
    ttl: field.integer("Seconds until a written key expires; without it, keys never expire.", {
      minimum: 1,
      example: "3600",
    }),
    publish: field.string(
      'A channel to PUBLISH every change on, as {"op","key","table"} JSON, in the same transaction as the write; it may use the event\'s fields. Without it, nothing is published.',
      {
        timing: "event",
        example: `"cache-changes"`,
      },
    ),
  },
});
