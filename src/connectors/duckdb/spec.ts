/** An embedded analytics store: changes land in a DuckDB file, queried without touching production. */
import { defineConnector, field } from "../spec.js";

export const sinkSpec = defineConnector({
  name: "duckdb",
  role: "sink",
  summary: "Writes changes into an embedded DuckDB database file for analytics.",
  description: `Writes events into tables of a DuckDB database file, which analytics tools then
query without a single query against the production database. No server is needed; the
file is created when it does not exist, and so are its tables, from the rows' columns.

\`mode\` chooses what a table holds. \`upsert\` keeps the latest row per primary key and
applies deletes, so the table mirrors the source. \`append\` adds every change as a new row,
with two more columns for the operation and the commit time, so the table is the history.

The table is \`table\` when it is set; otherwise each event goes to its \`target\` with "."
replaced by "_" (\`public.orders\` becomes \`public_orders\`). Delivery is at-least-once: in
\`upsert\` mode a replay after a crash leaves the same rows, while in \`append\` mode the
changes after the last checkpoint can be appended twice.`,
  example: `sink warehouse = duckdb {
  path: "analytics.duckdb"
  table: "order_changes"
  mode: "append"
}`,
  options: {
    path: field.string("The database file; created when it does not exist.", {
      required: true,
      example: `"analytics.duckdb"`,
    }),
    table: field.string("The table to write to; by default the event's target table name with \".\" replaced by \"_\".", {
      example: `"order_changes"`,
    }),
    mode: field.enumeration(
      ["append", "upsert"],
      "append: every change as a new row, with its operation and commit time; upsert: the latest row per key, deletes applied.",
      { default: "upsert", example: `"append"` },
    ),
  },
});
