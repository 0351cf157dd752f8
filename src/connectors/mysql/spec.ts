/**
 * MySQL and MariaDB: captured from the binlog as a replica would, and written to with
 * idempotent upserts so that a replay after a crash changes nothing.
 */
import { defineConnector, field } from "../spec.js";
import { MAPPING_DOC } from "./sink-types.js";

export const sourceSpec = defineConnector({
  name: "mysql",
  role: "source",
  summary: "Captures MySQL 5.7/8 and MariaDB tables: a snapshot, then every change from the binlog.",
  description: `Copies the existing rows of the chosen tables (\`op: "read"\`), then streams every
committed insert, update and delete from the binary log, connected as a replica. Table names
are \`database.table\`; \`tables\` takes names or globs such as \`"shop.*"\`.

The server needs \`log_bin\`, \`binlog_format = ROW\`, \`binlog_row_image = FULL\` and
\`binlog_row_metadata = FULL\`, and a user with \`SELECT\`, \`REPLICATION SLAVE\`, \`BINLOG
MONITOR\` (MariaDB) or \`REPLICATION CLIENT\` (MySQL), and \`RELOAD\` for a snapshot;
\`dts check --live\` and the start say what is missing (DTS6030, DTS6031). Each pipeline connects
with its own replica id, \`server_id\`, which must differ from every other replica of the
server; by default it is derived from the pipeline's name.

The snapshot is consistent and taken at a known binlog position (file and offset, and the GTID
state): \`FLUSH TABLES WITH READ LOCK\` is held only while the snapshot's transaction starts and
the position is read, never for the copy (MariaDB without \`RELOAD\`: no lock at all). The stream
then starts at exactly that position, so there is no gap and no duplicate. Each table is read in
primary-key order, in chunks of \`chunk_size\` rows; a crash resumes after the last chunk.

Positions move only at transaction ends (the XID event), after every sink has made the
transaction durable; a restart resumes by GTID (by file and offset where GTIDs are off).
Delivery is at-least-once. A position whose binlog the server has purged is an error saying to
copy the tables again: keep binlogs longer than the longest stop.

Values are exact and the same from the snapshot and the binlog: BIGINT UNSIGNED as an integer up
to 2^64-1, DECIMAL as a decimal, DATETIME as a wall-clock timestamp, TIMESTAMP as the UTC
instant (sessions run with time_zone '+00:00'), TIME as text (it may be negative or beyond a
day), JSON as the parsed document, BIT as an integer; a zero date is NULL. DDL in the binlog
(ALTER, CREATE and RENAME TABLE) is followed: sinks receive the schema change before the rows
that need it. The type mapping into PostgreSQL: docs/guides/mysql-to-postgres.md.`,
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
source table, unless a \`route\` step set another; a target without a database is a table of
the URL's database. Inserts, updates and snapshot rows become upserts by primary key
(\`INSERT ... ON DUPLICATE KEY UPDATE\`, many rows per statement); deletes delete by key. Values
are always parameters of prepared statements and identifiers are quoted.

**Delivery.** A source transaction is applied in one target transaction, whole or not at all,
and is never split (one larger than \`batch_size\` stays open across writes and commits with its
last part); small ones are grouped up to \`batch_size\` rows. Writes are idempotent, so a replay
after a crash leaves the same rows: delivery is at-least-once and the result effectively-once.
With the pipeline setting \`checkpoint: "mysql"\` the position is stored in the same target
transaction as the data (table \`dts_checkpoints\` in the URL's database, \`dts\` when it names
none), so after a crash the target is exactly at its stored position. A lost connection is
retried within \`retry_for\`. In MySQL every DDL statement commits: tables are created and
altered before a write's transaction begins, and DDL in the middle of a source transaction
larger than one write commits its part so far (a crash then replays it, idempotently).

**Absent columns.** An update without some of its source table's columns (PostgreSQL leaves
unchanged TOASTed values out) updates only the columns it has; they are never set to NULL. An
update that also changed the key takes the absent values from the old row in the same
transaction. Where that row is not in the target, the update is skipped with a warning when the
write may be a replay, and otherwise rejected with a reason naming \`REPLICA IDENTITY FULL\`.

**Refused values.** The session's sql_mode is strict, so a value a column cannot hold (out of
range, too long, a bad date, invalid JSON) is an error, never a truncation; a decimal with more
fractional digits than the column's scale, NaN and infinities are refused before they are sent.
The write then finds the refused events by bisection and sends each, with the table, the key
and the server's reason, to the dead-letter sink (or stops, without one); the rest is applied.

**Tables.** The user needs \`INSERT\`, \`UPDATE\`, \`DELETE\` and \`SELECT\` on the target tables,
and \`CREATE\` and \`ALTER\` with \`create_tables: true\`, which creates a missing table (and
database) from the source table's columns and primary key, adds the columns a source's
\`ALTER TABLE\` adds (with its constant DEFAULT for the rows that existed) and widens columns it
widens; a narrowing is refused with the statement to run. Without it, a missing table or column
is an error with the statements to run. Types map through dts's neutral column model:

${MAPPING_DOC}

\`dts verify\` reads the target's tables in canonical texts (computed by dts from the rows it
streams, since MySQL cannot print a double exactly), so a MySQL copy compares value by value
with a PostgreSQL or MySQL source.`,
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
