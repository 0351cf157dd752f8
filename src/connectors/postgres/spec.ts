/**
 * PostgreSQL: captured by logical replication with the built-in pgoutput plugin, and written
 * to with idempotent upserts so that a replay after a crash changes nothing.
 */
import { defineConnector, field } from "../spec.js";

export const sourceSpec = defineConnector({
  name: "postgres",
  role: "source",
  summary: "Captures PostgreSQL tables: a snapshot, then every change by logical replication (pgoutput).",
  description: `Copies the existing rows of the chosen tables (\`op: "read"\`), then streams every
committed insert, update and delete through a logical replication slot with the built-in
\`pgoutput\` plugin, so nothing needs installing on the server. Table names are
\`schema.table\`; \`tables\` takes names or globs such as \`"public.*"\`.

The server needs \`wal_level = logical\`, a free replication slot and WAL sender
(\`max_replication_slots\`, \`max_wal_senders\`), and a user with the \`REPLICATION\`
attribute and \`SELECT\` on the tables. The source creates its publication when it does not
exist, which needs ownership of the tables; otherwise create it beforehand
(\`CREATE PUBLICATION ... FOR TABLE ...\`). With a table's default replica identity, an
update's \`before\` is null and a delete's holds only the key; \`ALTER TABLE ... REPLICA
IDENTITY FULL\` gives whole before images.

The slot is created with an exported snapshot and the tables are copied inside it, so the
stream that follows has no gap and no duplicate. Tables are read in primary-key chunks of
\`chunk_size\` rows, resumable after a crash. A position is a WAL position (LSN).

The slot's confirmed position moves only at transaction boundaries, after every sink has made
the transaction durable. Delivery is at-least-once: changes after the last checkpoint may be
sent again. The slot keeps WAL on the server while the pipeline is stopped; drop it
(\`pg_drop_replication_slot\`) when the pipeline is retired. The heartbeat keeps the slot
moving when the captured tables are quiet, so that WAL does not pile up.`,
  example: `source shop = postgres {
  url: env("SHOP_PG_URL", "postgres://postgres@127.0.0.1:5432/shop")
  tables: ["public.orders", "public.customers"]
  snapshot: "initial"
  slot: "dts_shop"
}`,
  options: {
    url: field.string("The server and credentials, as postgres://user:pass@host:port/db.", {
      required: true,
      secret: true,
      example: `"postgres://postgres@127.0.0.1:5432/shop"`,
    }),
    tables: field.strings("The tables to capture, as \"schema.table\" names or globs such as \"public.*\".", {
      required: true,
      example: `["public.*"]`,
    }),
    snapshot: field.enumeration(
      ["initial", "never", "only"],
      "initial: copy the existing rows, then stream changes; never: stream changes only; only: copy the rows, then stop.",
      { default: "initial", example: `"never"` },
    ),
    slot: field.string("The replication slot's name; by default derived from the pipeline's name.", {
      pattern: { regex: "^[a-z0-9_]{1,63}$", meaning: "lower-case letters, digits and _ (at most 63)" },
      example: `"dts_shop"`,
    }),
    publication: field.string("The publication's name; by default derived from the pipeline's name.", {
      example: `"dts_shop"`,
    }),
    chunk_size: field.integer("Rows per primary-key chunk when copying a table in the snapshot.", {
      default: 10000,
      minimum: 1,
      example: "50000",
    }),
    heartbeat_seconds: field.integer(
      "Seconds between heartbeats, which keep the slot moving on a quiet database so that WAL does not pile up; 0 turns them off.",
      { default: 10, minimum: 0, example: "30" },
    ),
  },
});

export const sinkSpec = defineConnector({
  name: "postgres",
  role: "sink",
  summary: "Applies each change to PostgreSQL tables as an idempotent upsert or delete.",
  description: `Applies every change to the table named by \`target\` (\`schema.table\`): the
source table, unless a \`route\` step set another. Inserts, updates and snapshot rows become
upserts by primary key (\`INSERT ... ON CONFLICT ... DO UPDATE\`); deletes delete by key.

A source transaction is applied in one target transaction, whole or not at all, and is never
split; small ones are grouped up to \`batch_size\` rows. Writes are idempotent, so a replay
after a crash leaves the same rows: delivery is at-least-once and the result
effectively-once. With the pipeline setting \`checkpoint: "postgres"\` the position is stored
in the same target transaction as the data.

The user needs \`INSERT\`, \`UPDATE\` and \`DELETE\` on the target tables, and \`CREATE\` with
\`create_tables: true\`, which creates a missing table (and schema) from the source table's
columns and primary key. Without it, a missing table is an error.`,
  example: `sink standby = postgres {
  url: env("STANDBY_URL", "postgres://postgres@127.0.0.1:5432/shop_standby")
  create_tables: true
  batch_size: 1000
}`,
  options: {
    url: field.string("The server and credentials, as postgres://user:pass@host:port/db.", {
      required: true,
      secret: true,
      example: `"postgres://postgres@127.0.0.1:5432/shop_standby"`,
    }),
    create_tables: field.boolean("Create a missing target table from the source table's columns and primary key.", {
      default: false,
      example: "true",
    }),
    batch_size: field.integer("Rows per target transaction, at most; a source transaction is never split.", {
      default: 1000,
      minimum: 1,
      example: "5000",
    }),
  },
});
