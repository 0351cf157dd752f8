/**
 * The replication slot and the publication: created on the first run, reused after.
 *
 * The slot is what makes the stream resumable: the server keeps WAL from the slot's
 * `restart_lsn` and will not re-send transactions that committed before its
 * `confirmed_flush_lsn`, which moves only when we acknowledge (replication.ts). It is created
 * over a replication connection because only there can it export a snapshot: the exact
 * database state at the slot's consistent point, which the snapshot reads so that the stream
 * that starts at that point has no gap and no duplicate. The export lives only as long as that
 * connection stays idle, so the caller imports it at once and then closes the connection.
 *
 * The publication names the tables pgoutput sends changes of. It is made to match `tables`
 * (`ALTER PUBLICATION ... SET TABLE`) when the list changed since the last run, and the tables
 * it did not hold before are returned so that the source can copy them.
 */
import { createHash } from "node:crypto";
import type pg from "pg";
import { ConnectorError, type Logger } from "../../runtime/contracts.js";
import { lsnToBigInt } from "../../model/position.js";
import { connect, describeAddress, endQuietly, messageOf, queryError, quoteIdentifier, quoteTable, type ServerAddress } from "./connection.js";
import type { TableDescription } from "./tables.js";

type Query = (sql: string, params?: unknown[]) => Promise<{ rows: Record<string, unknown>[] }>;

/**
 * `dts_<pipeline>_<source>`: lower-case, `[a-z0-9_]`, at most 63 characters (PostgreSQL's
 * limit; a longer name is cut and given a hash of the whole so that two long names stay apart).
 * The source's name is part of it so that two sources of one pipeline never share a slot.
 */
export function deriveName(pipeline: string, source: string): string {
  const clean = (text: string): string => text.toLowerCase().replace(/[^a-z0-9_]+/g, "_").replace(/^_+|_+$/g, "");
  const name = ["dts", clean(pipeline), clean(source)].filter((part) => part !== "").join("_");
  if (name.length <= 63) return name;
  const hash = createHash("sha256").update(name).digest("hex").slice(0, 8);
  return `${name.slice(0, 54)}_${hash}`;
}

export interface SlotInfo {
  readonly name: string;
  readonly plugin: string | null;
  readonly type: string;
  readonly database: string | null;
  readonly activePid: number | null;
  readonly confirmedFlush: bigint | null;
}

export async function readSlot(query: Query, name: string, address: ServerAddress): Promise<SlotInfo | undefined> {
  try {
    const { rows } = await query(
      `SELECT slot_name, plugin, slot_type, database, active_pid, confirmed_flush_lsn::text AS confirmed
         FROM pg_catalog.pg_replication_slots WHERE slot_name = $1`,
      [name],
    );
    const row = rows[0];
    if (row === undefined) return undefined;
    return {
      name,
      plugin: row.plugin === null ? null : String(row.plugin),
      type: String(row.slot_type),
      database: row.database === null ? null : String(row.database),
      activePid: row.active_pid === null ? null : Number(row.active_pid),
      confirmedFlush: row.confirmed === null ? null : lsnToBigInt(String(row.confirmed)),
    };
  } catch (error) {
    throw queryError(error, address, `reading replication slot ${name}`);
  }
}

/**
 * The slot, checked to be a pgoutput slot of this database and not in use. A process that was
 * just killed may still hold it for a moment (its walsender notices the closed socket soon),
 * so an active slot is polled for `waitMillis` before it is an error naming the holder.
 */
export async function inspectSlot(
  query: Query,
  name: string,
  database: string,
  address: ServerAddress,
  waitMillis: number,
  ownApplication: string,
): Promise<SlotInfo | undefined> {
  const deadline = Date.now() + waitMillis;
  for (;;) {
    const slot = await readSlot(query, name, address);
    if (slot === undefined) return undefined;
    if (slot.type !== "logical" || slot.plugin !== "pgoutput") {
      throw new ConnectorError(
        `replication slot ${name} at ${describeAddress(address)} is a ${slot.type} slot${slot.plugin !== null ? ` of plugin ${slot.plugin}` : ""}, not a logical pgoutput slot; choose another \`slot\` name`,
        false,
      );
    }
    if (slot.database !== database) {
      throw new ConnectorError(`replication slot ${name} at ${describeAddress(address)} belongs to database ${slot.database}, not ${database}; choose another \`slot\` name`, false);
    }
    if (slot.activePid === null) return slot;
    if (Date.now() >= deadline) {
      let holder = "";
      let application: string | undefined;
      try {
        const { rows } = await query(
          `SELECT application_name, client_addr::text AS addr FROM pg_catalog.pg_stat_activity WHERE pid = $1`,
          [slot.activePid],
        );
        if (rows[0] !== undefined) {
          application = String(rows[0].application_name);
          holder = ` (${application || "no application name"}${rows[0].addr !== null ? ` from ${String(rows[0].addr)}` : ""})`;
        }
      } catch {
        // the holder's name is a courtesy
      }
      // Held under this pipeline's own name: another dts-run of it, or this one's previous
      // connection, which the server has not yet found dead (it may take wal_sender_timeout).
      // Retrying tells the two apart, and the runtime bounds the retries.
      const ours = application === ownApplication;
      throw new ConnectorError(
        `replication slot ${name} at ${describeAddress(address)} is in use by process ${slot.activePid}${holder}: ` +
          (ours ? "another dts-run of this pipeline, or its previous connection not yet closed by the server" : "a slot has one reader at a time; is another program reading it?"),
        ours,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

export interface CreatedSlot {
  readonly consistentPoint: bigint;
  /** The exported snapshot's name, valid while `connection` stays open and idle. */
  readonly snapshotName: string | null;
  /** The replication connection that created the slot; the caller ends it (after importing the snapshot). */
  readonly connection: pg.Client;
}

/** Creates the slot; with `exportSnapshot`, its consistent snapshot is exported for the copy. */
export async function createSlot(
  url: string,
  address: ServerAddress,
  name: string,
  exportSnapshot: boolean,
  serverVersion: number,
  application: string,
  log: Logger,
): Promise<CreatedSlot> {
  const connection = await connect(url, { role: "replication", application, resuming: false });
  const option =
    serverVersion >= 150000
      ? `(SNAPSHOT '${exportSnapshot ? "export" : "nothing"}')`
      : exportSnapshot
        ? "EXPORT_SNAPSHOT"
        : "NOEXPORT_SNAPSHOT";
  log.info("creating replication slot (waits for transactions running now to end)", { slot: name, snapshot: exportSnapshot ? "export" : "none" });
  try {
    const result = await connection.query(`CREATE_REPLICATION_SLOT ${quoteIdentifier(name)} LOGICAL pgoutput ${option}`);
    const row = result.rows[0] as Record<string, unknown>;
    return {
      consistentPoint: lsnToBigInt(String(row.consistent_point)),
      snapshotName: row.snapshot_name === null || row.snapshot_name === undefined ? null : String(row.snapshot_name),
      connection,
    };
  } catch (error) {
    await endQuietly(connection);
    const code = (error as { code?: string }).code;
    if (code === "42710") {
      throw new ConnectorError(`replication slot ${name} at ${describeAddress(address)} was created by someone else at the same moment; is another dts-run of this pipeline starting?`, true, { cause: error });
    }
    if (code === "53400") {
      throw new ConnectorError(
        `cannot create replication slot ${name} at ${describeAddress(address)}: ${messageOf(error)}; raise max_replication_slots or drop an unused slot (SELECT pg_drop_replication_slot('...'))`,
        false,
        { cause: error },
      );
    }
    throw queryError(error, address, `creating replication slot ${name}`);
  }
}

/**
 * Makes the publication hold exactly `tables` (creating it when missing) and returns the tables
 * it did not hold before. A publication FOR ALL TABLES is left alone.
 */
export async function ensurePublication(
  query: Query,
  name: string,
  tables: readonly TableDescription[],
  address: ServerAddress,
  log: Logger,
): Promise<{ readonly created: boolean; readonly added: readonly string[] }> {
  const list = tables.map((table) => quoteTable(table.schema, table.name)).join(", ");
  const wanted = tables.map((table) => table.qualifiedName);
  let rows: Record<string, unknown>[];
  try {
    rows = (
      await query(
        `SELECT puballtables, pubinsert, pubupdate, pubdelete FROM pg_catalog.pg_publication WHERE pubname = $1`,
        [name],
      )
    ).rows;
  } catch (error) {
    throw queryError(error, address, `reading publication ${name}`);
  }
  const fix = (error: unknown, what: string): ConnectorError => {
    if ((error as { code?: string }).code === "42501") {
      return new ConnectorError(
        `cannot ${what} publication ${name} at ${describeAddress(address)}: ${messageOf(error)}. It needs ownership of the tables; ` +
          `or create it beforehand as their owner: CREATE PUBLICATION ${quoteIdentifier(name)} FOR TABLE ${list}`,
        false,
        { cause: error },
      );
    }
    return queryError(error, address, `${what === "create" ? "creating" : "altering"} publication ${name}`);
  };
  const existing = rows[0];
  if (existing === undefined) {
    try {
      await query(`CREATE PUBLICATION ${quoteIdentifier(name)} FOR TABLE ${list} WITH (publish_via_partition_root = true)`);
    } catch (error) {
      throw fix(error, "create");
    }
    log.info("created publication", { publication: name, tables: wanted });
    return { created: true, added: wanted };
  }
  if (existing.pubinsert !== true || existing.pubupdate !== true || existing.pubdelete !== true) {
    log.warn("the publication does not publish every operation: missing ones are not captured", {
      publication: name,
      insert: existing.pubinsert,
      update: existing.pubupdate,
      delete: existing.pubdelete,
    });
  }
  if (existing.puballtables === true) return { created: false, added: [] };
  let current: Set<string>;
  try {
    const result = await query(`SELECT schemaname || '.' || tablename AS name FROM pg_catalog.pg_publication_tables WHERE pubname = $1`, [name]);
    current = new Set(result.rows.map((row) => String(row.name)));
  } catch (error) {
    throw queryError(error, address, `reading publication ${name}`);
  }
  const added = wanted.filter((table) => !current.has(table));
  const removed = [...current].filter((table) => !wanted.includes(table));
  if (added.length > 0 || removed.length > 0) {
    try {
      await query(`ALTER PUBLICATION ${quoteIdentifier(name)} SET TABLE ${list}`);
    } catch (error) {
      throw fix(error, "alter");
    }
    log.info("updated publication to the table list", { publication: name, added, removed });
  }
  return { created: false, added };
}
