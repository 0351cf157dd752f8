/**
 * `dts drop` on a mysql sink: besides the pipeline's checkpoint rows (which the checkpoint
 * store forgets), the sink keeps one thing on its server, the `dts_checkpoints` table it
 * created. It is offered for removal only when no other pipeline has rows in it.
 */
import type mysql from "mysql2/promise";
import { ConnectorError } from "../../runtime/contracts.js";
import type { Drop } from "../capabilities.js";
import { CHECKPOINT_TABLE, checkpointDatabase } from "./checkpoint-store.js";
import { connect, connectorError, quoteIdentifier, serverLabel } from "./connection.js";

export const drop: Drop = async (context) => {
  const url = context.options.url;
  if (typeof url !== "string" || url === "") throw new ConnectorError(`mysql sink ${context.name}: option url is required`, false);
  const server = serverLabel(url);
  const database = checkpointDatabase(url);
  const table = `${quoteIdentifier(database)}.${quoteIdentifier(CHECKPOINT_TABLE)}`;
  let connection: mysql.Connection | undefined;
  try {
    connection = await connect(url, { purpose: context.tool });
    const [exists] = await connection.query<mysql.RowDataPacket[]>(
      "SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
      [database, CHECKPOINT_TABLE],
    );
    if (Number(exists[0]!.n) === 0) return [];
    const [others] = await connection.query<mysql.RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${table} WHERE pipeline <> ?`, [context.pipeline]);
    if (Number(others[0]!.n) > 0) return [];
    return [
      {
        what: `table ${database}.${CHECKPOINT_TABLE} on ${server} (it holds no other pipeline's checkpoints)`,
        async remove() {
          let own: mysql.Connection | undefined;
          try {
            own = await connect(url, { purpose: context.tool });
            // Only if still no other pipeline's: one may have started meanwhile.
            const [rows] = await own.query<mysql.RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${table} WHERE pipeline <> ?`, [context.pipeline]).catch(() => [[{ n: 0 }]] as never);
            if (Number((rows as mysql.RowDataPacket[])[0]!.n) === 0) await own.query(`DROP TABLE IF EXISTS ${table}`);
          } catch (error) {
            throw connectorError(error, server, `dropping ${database}.${CHECKPOINT_TABLE}`);
          } finally {
            await own?.end().catch(() => {});
          }
        },
      },
    ];
  } catch (error) {
    throw connectorError(error, server, `looking for ${database}.${CHECKPOINT_TABLE}`);
  } finally {
    await connection?.end().catch(() => {});
  }
};
