/** An embedded analytics store: changes land in a DuckDB file, queried without touching production. */
import { defineConnector, field } from "../spec.js";

export const sinkSpec = defineConnector({
  name: "duckdb",
  role: "sink",
  summary: "Writes changes into an embedded DuckDB database file for analytics.",
  description: `Writes events into tables of a DuckDB database file, which analytics tools then
query without a single query against the production database. No server is needed; the
file is created when it does not exist (its folder must exist), and so are its tables, from
the first row's columns. A relative \`path\` is relative to the pipeline file's folder.
Sinks of one pipeline may share a file.

\`mode\` chooses what a table holds. \`upsert\` keeps the latest row per key and applies
deletes, so the table mirrors the source: the event's key columns are the table's
\`PRIMARY KEY\` (a table that exists already must have that primary key); inserts, updates
and snapshot reads write the row with that key, deletes remove it, and an update that
changes the key moves the row. Within a batch the changes of a key are applied in order, so
a row inserted and deleted in one batch ends deleted; an event without a key is rejected.
\`append\` adds every change as a new row — the row after the change, or before it for a
delete — with four more columns, so the table is the history:

- \`_op\` (VARCHAR): \`insert\`, \`update\`, \`delete\` or \`read\` (a snapshot row);
- \`_committed_at\` (TIMESTAMPTZ): the source transaction's commit time;
- \`_position\` (VARCHAR): the source position's token (an LSN, a binlog file:offset, a sequence number);
- \`_absent\` (VARCHAR[]): the columns the change left out (see below), \`[]\` when none.

**Absent is not null.** A change may leave columns out: PostgreSQL does not send a large
(TOASTed) value an update did not touch, unless the table has \`REPLICA IDENTITY FULL\`, and a
delete under the default replica identity carries only the key. Such a column is unchanged,
never NULL. In \`upsert\` mode an update writes only the columns it has, and the stored row
keeps the others; an insert and later updates of it in one batch are merged; an insert or
snapshot row writes its columns and leaves a column it lacks NULL in a new row (as it is in a
stored one). An update that changed the key takes the columns it left out from the row with
the old key — from an earlier change of that key in the same batch, else from the table, in
the same transaction. Where the row an update needs is not in the table, nothing is written
for it, as NULL would lose the values: after a crash this is the replay of a row a later change
deleted, so the update is skipped with a warning (naming \`REPLICA IDENTITY FULL\` for the case
where the table lost the row; \`dts verify\` finds that). An update after a delete of its key in
the same batch cannot come from a source's stream and is rejected with that reason. In \`append\` mode a left-out column is NULL in the row and named in
\`_absent\`, which tells it from a real NULL; rows appended before \`_absent\` existed have
NULL there.

Tables are named after the event's \`target\`: \`schema.table\` is the table \`table\` in the
DuckDB schema \`schema\` (\`public.orders\` is \`"public"."orders"\`, created with its schema), so
two source tables never share a DuckDB table; a target without a schema is a table in
\`main\`. With \`table\` set, every event goes to that table in \`main\`. DuckDB ignores
ASCII case in names, and so does the sink: an event whose target differs from an earlier
one's only in case (or \`x\` and \`main.x\`) is rejected rather than mixed into its table.
Earlier versions named the table \`schema_table\` in \`main\` (\`public_orders\`), which gave
\`a.b_c\` and \`a_b.c\` one table; a file with such a table stops the sink before it writes a
second table beside it, with the SQL that moves the rows to the new table (or renames the old
one to start afresh).

Column types come from the first non-null value, exactly: integers are BIGINT (HUGEINT
beyond 64 bits); decimals DECIMAL(38, their scale); floats DOUBLE; strings VARCHAR;
timestamps TIMESTAMPTZ, or TIMESTAMP without a zone, to the microsecond; bytes BLOB;
lists and records JSON, as lossless JSON text; booleans BOOLEAN. A column that has only
seen nulls is VARCHAR until its first value. A column the source declares \`json\` or
\`jsonb\` is JSON from the start, and a JSON column holds every JSON value: objects, arrays,
and strings, numbers and booleans as JSON scalars (\`"just a string"\`, \`42\`), so a JSON
string stays apart from text, and a JSON \`null\` document stays JSON \`null\`, apart from
SQL NULL. A number no DuckDB type holds exactly (a
decimal of more than 38 digits, an integer beyond 128 bits) makes a VARCHAR column of exact
text, with a warning in the log — never a rounded DOUBLE. A column that appears later is
added; a column widens when a later value needs it and every stored value still fits
(BIGINT to HUGEINT or to DECIMAL, a DECIMAL to a larger scale, BIGINT to DOUBLE while every
stored integer is within 2^53). A value its column cannot hold exactly (text in a DECIMAL
column, a fraction in a BIGINT key column, an instant in a TIMESTAMP column) rejects that
event, with the table, column and value in the reason, to the
dead-letter sink; the batch's other events are written.

Schema changes of a source table (an ALTER TABLE the source reports, in flows that pass its
columns through) are applied before the rows that follow them. A new column is added with
the type its declared type maps to (\`integer\` BIGINT, \`numeric(12,2)\` DECIMAL(38,2),
\`text\` VARCHAR, \`jsonb\` JSON, \`timestamp with time zone\` TIMESTAMPTZ; a type without a
mapping, such as an enum, waits for its first value). A column whose type changed is
widened when it does not hold the new type and every stored value fits the wider one; a
type it still holds (\`bigint\` to \`integer\`) needs nothing. A change the column cannot
follow (\`integer\` to \`text\`, \`timestamp\` to \`timestamptz\`, stored values that do not
fit) stops the sink with the table, the column, both types and the ALTER TABLE that changes
the column. Nothing is dropped: a dropped column stays with its values (updates leave it as
it is, new rows NULL), a renamed one stays under its old name beside the new one, and the
table of a renamed source table stays as it was, stale — each with a warning naming it.

Each batch is written in one DuckDB transaction and is durable (in DuckDB's write-ahead log)
when the sink reports it. Delivery is at-least-once: in \`upsert\` mode a replay after a
crash leaves the same rows, while in \`append\` mode the changes after the last checkpoint
can be appended twice (\`_position\` tells the copies apart).

\`dts verify\` compares an \`upsert\` table with its source table value by value (an \`append\`
table is a history, not a copy, and is named as not verifiable). It opens the file
read-only, which DuckDB allows only while no pipeline writes it: stop the pipeline first.`,
  example: `sink warehouse = duckdb {
  path: "analytics.duckdb"
  table: "order_changes"
  mode: "append"
}`,
  options: {
    path: field.string("The database file, relative to the pipeline file's folder; created when it does not exist.", {
      required: true,
      example: `"analytics.duckdb"`,
    }),
    table: field.string("The table (in schema main) to write every event to; by default each event's target, schema.table, is that table in the DuckDB schema of that name.", {
      example: `"order_changes"`,
    }),
    mode: field.enumeration(
      ["append", "upsert"],
      "append: every change as a new row, with _op, _committed_at, _position and _absent columns; upsert: the latest row per key (the table's primary key), deletes applied.",
      { default: "upsert", example: `"append"` },
    ),
  },
});
