/**
 * MySQL and MariaDB: captured from the binlog as a replica would, and written to with
 * idempotent upserts so that a replay after a crash changes nothing.
 */
import { defineConnector, field } from "../spec.js";

export const sourceSpec = defineConnector({
  name: "mysql",
  role: "source",
  summary: "Captures MySQL 5.7/8 and MariaDB tables: a snapshot, then every change from the binlog.",
  description: `Copies the existing rows of the chosen tables (\`op: "read"\`), then streams every
committed insert, update and delete from the binary log, connected as a replica. Table names
are \`database.table\`; \`tables\` takes names or globs such as \`"shop.*"\`.

The server needs \`binlog_format = ROW\` and \`binlog_row_image = FULL\`, and a user with
\`SELECT\`, \`REPLICATION SLAVE\` and \`REPLICATION CLIENT\`, plus \`RELOAD\` for a snapshot.
Each pipeline connects with its own replica id, \`server_id\`, which must differ from every
other replica of the server; by default it is derived from the pipeline's name.

The snapshot is consistent and taken at a known binlog position, so the stream that follows
it has no gap and no duplicate. It reads each table in primary-key chunks of \`chunk_size\`
rows and resumes after a crash from the last finished chunk. A position is a binlog file and
offset, with the GTID set when the server has GTIDs on; the binlog must still hold that
position when the pipeline restarts, so keep binlogs longer than the longest stop.

Positions move only at transaction boundaries, after every sink has made the transaction
durable. Delivery is at-least-once: changes after the last checkpoint may be sent again.`,
  example: `source shop = mysql {
  url: env("SHOP_MYSQL_URL", "mysql://root@127.0.0.1:3306/shop")
  tables: ["shop.*"]
  snapshot: "initial"
  server_id: 5401
}`,
  options: {
    url: field.string("The server and credentials, as mysql://user:pass@host:port/db.", {
      required: true,
      secret: true,
      example: `"mysql://root@127.0.0.1:3306/shop"`,
    }),
    tables: field.strings("The tables to capture, as \"db.table\" names or globs such as \"shop.*\".", {
      required: true,
      example: `["shop.*"]`,
    }),
    snapshot: field.enumeration(
      ["initial", "never", "only"],
      "initial: copy the existing rows, then stream changes; never: stream changes only; only: copy the rows, then stop.",
      { default: "initial", example: `"never"` },
    ),
    server_id: field.integer(
      "The replica id of the binlog connection, unique among the server's replicas; by default derived from the pipeline's name.",
      { minimum: 1, example: "5401" },
    ),
    chunk_size: field.integer("Rows per primary-key chunk when copying a table in the snapshot.", {
      default: 10000,
      minimum: 1,
      example: "50000",
    }),
  },
});

export const sinkSpec = defineConnector({
  name: "mysql",
  role: "sink",
  summary: "Applies each change to MySQL or MariaDB tables as an idempotent upsert or delete.",
  description: `Applies every change to the table named by \`target\` (\`database.table\`): the
source table, unless a \`route\` step set another. Inserts, updates and snapshot rows become
upserts by primary key (\`INSERT ... ON DUPLICATE KEY UPDATE\`); deletes delete by key.

A source transaction is applied in one target transaction, whole or not at all, and is never
split; small ones are grouped up to \`batch_size\` rows. Writes are idempotent, so a replay
after a crash leaves the same rows: delivery is at-least-once and the result
effectively-once. With the pipeline setting \`checkpoint: "mysql"\` the position is stored in
the same target transaction as the data.

The user needs \`INSERT\`, \`UPDATE\` and \`DELETE\` on the target tables, and \`CREATE\` with
\`create_tables: true\`, which creates a missing table (and database) from the source
table's columns and primary key. Without it, a missing table is an error.`,
  example: `sink replica = mysql {
  url: env("REPLICA_URL", "mysql://root@127.0.0.1:3306/shop_copy")
  create_tables: true
  batch_size: 1000
}`,
  options: {
    url: field.string("The server and credentials, as mysql://user:pass@host:port/db.", {
      required: true,
      secret: true,
      example: `"mysql://root@127.0.0.1:3306/shop_copy"`,
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
