/**
 * What a postgres source leaves on its server, for `dts drop`: the replication slot (which
 * makes the server keep WAL for as long as it exists) and the publication, under the names
 * the source uses (source-settings.ts). Only a slot of the source's own database is taken to
 * be the pipeline's: a slot of that name elsewhere on the server belongs to something else.
 *
 * `dts drop` holds the pipeline's lock while it calls this, so no run of the pipeline reads
 * the slot meanwhile; a slot that is active anyway is read by some other program, and is not
 * dropped: the error names the process.
 */
import type pg from "pg";
import type { Drop, DropItem } from "../capabilities.js";
import { connect, connectorError, serverLabel } from "./client.js";
import { quoteIdent } from "./ddl.js";
import { readSourceSettings } from "./source-settings.js";
import { bytes } from "./status.js";
import { ConnectorError } from "../../runtime/contracts.js";
import { lsnToBigInt } from "../../model/position.js";

export const drop: Drop = async (context) => {
  const settings = readSourceSettings(context);
  const server = serverLabel(settings.url);
  const found = await withClient(settings.url, context.tool, server, "looking for the slot and the publication", async (client) => {
    const { rows } = await client.query<{ current: string; restart: string | null; active_pid: number | null; slot: boolean; publication: boolean }>(
      `SELECT pg_current_wal_lsn()::text AS current, s.restart_lsn::text AS restart, s.active_pid,
              s.slot_name IS NOT NULL AS slot,
              EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = $2) AS publication
         FROM (SELECT 1) AS one
         LEFT JOIN pg_catalog.pg_replication_slots s ON s.slot_name = $1 AND s.database = current_database()`,
      [settings.slot, settings.publication],
    );
    return rows[0]!;
  });
  const items: DropItem[] = [];
  if (found.slot) {
    const retains = found.restart === null ? "" : `, retains ${bytes(lsnToBigInt(found.current) - lsnToBigInt(found.restart))} of WAL`;
    const active = found.active_pid === null ? "inactive" : `in use by process ${found.active_pid}`;
    items.push({
      what: `replication slot ${settings.slot} on ${server} (${active}${retains})`,
      remove: () =>
        withClient(settings.url, context.tool, server, `dropping replication slot ${settings.slot}`, async (client) => {
          try {
            await client.query(
              "SELECT pg_catalog.pg_drop_replication_slot(slot_name) FROM pg_catalog.pg_replication_slots WHERE slot_name = $1 AND database = current_database()",
              [settings.slot],
            );
          } catch (error) {
            if ((error as { code?: string }).code !== "55006") throw error;
            throw new ConnectorError(
              `replication slot ${settings.slot} on ${server} is in use by another program (${(error as Error).message}); stop it, or end its session with SELECT pg_terminate_backend(PID), then run dts drop again`,
              false,
            );
          }
        }),
    });
  }
  if (found.publication) {
    items.push({
      what: `publication ${settings.publication} on ${server}`,
      remove: () =>
        withClient(settings.url, context.tool, server, `dropping publication ${settings.publication}`, async (client) => {
          await client.query(`DROP PUBLICATION IF EXISTS ${quoteIdent(settings.publication)}`);
        }),
    });
  }
  return items;
};

async function withClient<T>(url: string, application: string, server: string, doing: string, body: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = await connect(url, application);
  try {
    return await body(client);
  } catch (error) {
    throw connectorError(error, server, doing);
  } finally {
    await client.end().catch(() => {});
  }
}
