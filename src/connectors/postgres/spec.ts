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
\`schema.table\`; \`tables\` takes names or globs such as \`"public.*"\` or \`"*.orders"\` (a name
without a schema is in \`public\`), resolved when the pipeline starts; a name or glob that
matches nothing stops it with an error naming it. A partitioned table is captured through its
parent. Generated columns are not captured (pgoutput does not send them).

The server needs PostgreSQL 14 or later, \`wal_level = logical\`, a free replication slot and
WAL sender (\`max_replication_slots\`, \`max_wal_senders\`), and a user with the \`REPLICATION\`
attribute and \`SELECT\` on the tables; each is checked at start, and by \`dts check --live\`, with the same
code (DTS6001-DTS6009) and the fix in the message.
The slot and the publication are created on the first run (named \`dts_<pipeline>_<source>\`
unless \`slot\` and \`publication\` say otherwise) and reused after; the publication is made to
match \`tables\` (\`ALTER PUBLICATION ... SET TABLE\`), which needs ownership of the tables;
otherwise create it beforehand (\`CREATE PUBLICATION ... FOR TABLE ...\`). A table added to
\`tables\` later is copied (with \`snapshot: "initial"\`) before streaming resumes.

Changes are applied by key: the primary key, else the replica identity index. A table with
neither is an error unless it is \`REPLICA IDENTITY FULL\`, which makes every column the key.
\`REPLICA IDENTITY NOTHING\` is an error, because the server rejects UPDATE and DELETE on such
a table once it is in a publication. With the default replica identity (a warning at start), an
update's \`before\` is null and a delete's holds only the key, and a large (TOASTed) value an
update did not change is left out of \`after\` — absent, meaning unchanged, never NULL;
\`ALTER TABLE ... REPLICA IDENTITY FULL\` gives whole before images and complete \`after\` rows.
TRUNCATE is not captured (a change event has no truncate operation): it is logged as a warning
and the sinks keep the rows.

An \`ALTER TABLE\` on a captured table reaches the sinks as a schema change, at the point where it
happened, before the changes after it: columns added (with what existing rows hold, when a
constant \`DEFAULT\` gave them a value), dropped, or of another type, and the table renamed (its
changes then carry the new name). pgoutput sends only the new column list, so a renamed column
is a dropped and an added one. Each change is logged once, saying what changed. A change made
while the pipeline is stopped, before any change to that table after its checkpoint, is not
seen as such: the rows after it show it.

The slot is created with an exported snapshot and the tables are copied inside it, so the
stream that follows has no gap and no duplicate. Tables are read in primary-key chunks of
\`chunk_size\` rows; after a crash the copy resumes after the last chunk made durable, in a new
snapshot, and the stream then replays the changes since the slot's consistent point, which the
sinks' idempotent writes make converge. \`snapshot: "only"\` creates neither slot nor publication: it
copies the tables in one transaction and stops.

Values are exact: \`bigint\` beyond 2^53 as a 64-bit integer, \`numeric\` as a decimal with its
scale (\`NaN\` and infinities as floats), \`timestamp\`, \`timestamptz\` and \`date\` as
microsecond timestamps (\`infinity\` as the string), \`bytea\` as bytes, \`json\`/\`jsonb\` parsed
with big integers and decimals intact (a JSON \`null\` document as JSON null, apart from SQL
NULL: a PostgreSQL or DuckDB sink writes it back as JSON \`null\`), arrays as lists; \`time\`, \`timetz\`, \`interval\` (ISO
8601), \`uuid\`, network types, enums and other types as the text PostgreSQL prints.

A position is a WAL position (LSN): every event of a transaction carries its commit LSN, and a
checkpoint is the LSN just after a commit. The slot's confirmed position moves only at
transaction boundaries, after every sink has made the transaction durable. Delivery is
at-least-once: changes after the last checkpoint may be sent again. The slot keeps WAL on the
server while the pipeline is stopped (\`dts status\` shows how much), without bound when the
server's \`max_slot_wal_keep_size\` is -1 (the default; a warning at start says so, and how to
bound it); \`dts drop FILE.dts\` removes the slot, the publication and the checkpoint when the
pipeline is retired. The source writes small logical messages (\`pg_logical_emit_message\`, prefix
\`dts_heartbeat\`) to learn when it has caught up, and as a heartbeat when the captured tables
have been quiet for \`heartbeat_seconds\`, so that the slot moves and WAL does not pile up.
A server that refuses the connection on a first run stops the pipeline at once; once the
pipeline has a checkpoint, a refused or lost connection is retried.`,
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
    slot: field.string("The replication slot's name; by default dts_<pipeline>_<source>, lower-cased, other characters as _.", {
      pattern: { regex: "^[a-z0-9_]{1,63}$", meaning: "lower-case letters, digits and _ (at most 63)" },
      example: `"dts_shop"`,
    }),
    publication: field.string("The publication's name; by default the same as the slot's default name.", {
      example: `"dts_shop"`,
    }),
    chunk_size: field.integer("Rows per primary-key chunk when copying a table in the snapshot; fewer when rows are wide (a chunk holds at most about 32 MB). A table keyed only by REPLICA IDENTITY FULL is read in one pass.", {
      default: 10000,
      minimum: 1,
      example: "50000",
    }),
    heartbeat_seconds: field.integer(
      "Seconds without captured changes before a heartbeat, which keeps the slot moving on a quiet database so that WAL does not pile up; 0 turns them off.",
      { default: 10, minimum: 0, example: "30" },
    ),
  },
});

export const sinkSpec = defineConnector({
  name: "postgres",
  role: "sink",
  summary: "Applies each change to PostgreSQL tables as an idempotent upsert or delete.",
  description: `Applies every change to the table named by \`target\`: the source table
(\`schema.table\`; for a MySQL source \`db.table\`, which becomes schema \`db\`), unless a
\`route\` step set another; a name without a schema is in \`public\`. Inserts, updates and
snapshot rows become upserts by primary key (\`INSERT ... ON CONFLICT ... DO UPDATE\`); deletes
delete by key; an update that changes the key deletes the old row and upserts the new one.

Absent is not null: an update without some of the source table's columns (PostgreSQL's
unchanged TOASTed values) updates only the columns it has, of the row the target has. An update
that changes the key takes the values it lacks from the row it replaces — an earlier change of
the key in the same write, or the target's row, read in the same transaction. Where the target
has no such row, the update is never written with NULL in place of a value. When writes may be
replayed after a crash (the position is kept in a file, or beside another sink), that is the
replay of a row a later change deleted: the update is skipped with a warning, and the replay
goes on to that change. With \`checkpoint: "postgres"\` and this sink the only one, no write is
replayed, so the target lost the row: the update is rejected (the pipeline stops) with a reason
naming \`REPLICA IDENTITY FULL\`.

A schema change of a source table (flows that only filter or validate pass them on) is applied
to its target table before the rows after it: a column added on the source is added (rows that
existed take a constant \`DEFAULT\` the source gave them), a column whose type the source widened
is widened (integers, \`numeric\` digits, \`varchar\` length or \`text\`, \`real\` to
\`double precision\`, time precision). A narrowing or other type change stops the pipeline,
naming table, column, both types and the statement to run; a dropped column stays in the target
with its values (a warning), as does the old column of a renamed one; a renamed table gets a
warning naming the stale target table, and its changes go to a table of the new name. A row with
a column the target lacks adds the column too, with the source's type (or one inferred from the
values). All of this needs \`create_tables: true\`; without it the sink changes no table and
stops with the exact \`ALTER TABLE\` to run.

Each batch the runner hands over (whole source transactions; the runner groups consecutive
ones up to 10,000 events) is applied in one target transaction, whole or not at all, and
changes to one key keep their order. A source transaction larger than one batch (the
PostgreSQL source: 2,000 changes) reaches the sink in several writes and is still applied in
one target transaction, committed with its last part: a reader of the target never sees part
of it. If the connection is lost between its parts, the pipeline stops (exit 3) rather than
commit the rest alone, and the next run applies it again from the last checkpoint. (When a
second source's changes come in between its parts, what is applied commits first, so that
neither waits for the other's locks.) Writes are idempotent, so a replay leaves the same rows: delivery
is at-least-once and the result effectively-once. With the pipeline setting
\`checkpoint: "postgres"\` the position is stored in \`dts.checkpoints\` in the same target
transaction as the data.

Rows are sent with COPY into a temporary staging table and upserted from it (a snapshot's rows
go straight into the table with COPY), at most \`batch_size\` rows per statement. A PostgreSQL
source's snapshot chunks reach this sink as the COPY text the source printed; when the target
table has the source's columns and types, that text is loaded as it is, never decoded in
between, and \`snapshot_writers\` chunks are loaded at once on as many connections. A value a
column cannot hold ('abc' into an integer, too long for a varchar(3)) rejects that event with
the table, key, column and the server's reason, and the rest of the batch is applied.

The user needs \`INSERT\`, \`UPDATE\` and \`DELETE\` on the target tables, and \`CREATE\` with
\`create_tables: true\`, which creates a missing table (and schema) with the source table's
column types and primary key (a type the target lacks, such as an enum, becomes text; a source
that cannot describe its tables gets types inferred from the values). Without it, a missing
table is an error.`,
  example: `sink standby = postgres {
  url: env("STANDBY_URL", "postgres://postgres@127.0.0.1:5432/shop_standby")
  create_tables: true
}`,
  options: {
    url: field.string("The server and credentials, as postgres://user:pass@host:port/db.", {
      required: true,
      secret: true,
      example: `"postgres://postgres@127.0.0.1:5432/shop_standby"`,
    }),
    create_tables: field.boolean("Create a missing target table (and schema) with the source table's column types and primary key, and follow the source's schema changes: add columns, widen types.", {
      default: false,
      example: "true",
    }),
    batch_size: field.integer("Rows per statement, at most: a larger batch is written in several statements of one transaction.", {
      default: 10000,
      minimum: 1,
      example: "5000",
    }),
    snapshot_writers: field.integer(
      "Snapshot chunks loaded at once, each in its own transaction on its own connection, so that the target server works on several cores. Only a snapshot's rows go in parallel (their keys are distinct); changes are applied one transaction at a time, in order, after every chunk before them. With checkpoint \"postgres\" each chunk's transaction stores the position only once every chunk started before it has committed.",
      { default: 2, minimum: 1, example: "4" },
    ),
  },
});
