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
and snapshot reads replace the row with that key (a column the row lacks becomes null),
deletes remove it, and an update that changes the key moves the row. Within a batch the
last change of a key wins, so a row inserted and deleted in one batch ends deleted; an
event without a key is rejected. \`append\` adds every change as a new row — the row
after the change, or before it for a delete — with three more columns, so the table is
the history:

- \`_op\` (VARCHAR): \`insert\`, \`update\`, \`delete\` or \`read\` (a snapshot row);
- \`_committed_at\` (TIMESTAMPTZ): the source transaction's commit time;
- \`_position\` (VARCHAR): the source position's token (an LSN, a binlog file:offset, a sequence number).

The table is \`table\` when it is set; otherwise each event goes to its \`target\` with "."
replaced by "_" (\`public.orders\` becomes \`public_orders\`). Names match as DuckDB
matches them, ignoring ASCII case.

Column types come from the first non-null value, exactly: integers are BIGINT (HUGEINT
beyond 64 bits); decimals DECIMAL(38, their scale); floats DOUBLE; strings VARCHAR;
timestamps TIMESTAMPTZ, or TIMESTAMP without a zone, to the microsecond; bytes BLOB;
lists and records JSON, as lossless JSON text; booleans BOOLEAN. A column that has only
seen nulls is VARCHAR until its first value. A number no DuckDB type holds exactly (a
decimal of more than 38 digits, an integer beyond 128 bits) makes a VARCHAR column of exact
text, with a warning in the log — never a rounded DOUBLE. A column that appears later is
added; a column widens when a later value needs it and every stored value still fits
(BIGINT to HUGEINT or to DECIMAL, a DECIMAL to a larger scale, BIGINT to DOUBLE while every
stored integer is within 2^53). A value its column cannot hold exactly (text in a DECIMAL
column, a fraction in a BIGINT key column, an instant in a TIMESTAMP column) rejects that
event, with the table, column and value in the reason, to the
dead-letter sink; the batch's other events are written.

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
    table: field.string("The table to write to; by default the event's target table name with \".\" replaced by \"_\".", {
      example: `"order_changes"`,
    }),
    mode: field.enumeration(
      ["append", "upsert"],
      "append: every change as a new row, with _op, _committed_at and _position columns; upsert: the latest row per key (the table's primary key), deletes applied.",
      { default: "upsert", example: `"append"` },
    ),
  },
});
