/**
 * What the mysql source needs from its server, checked in one place for the source's start
 * (source.ts stops on an error finding, logs the warnings) and `dts check --live` (the
 * `preflight` capability). Both get the same findings, with the same codes:
 *
 *   DTS6030 error    log_bin OFF, binlog_format not ROW, binlog_row_image not FULL,
 *                    binlog_row_metadata not FULL (MySQL 8.0.1+, MariaDB 10.5+: without it the
 *                    binlog's row images carry no column names, and rows written before an
 *                    ALTER would be read with the columns after it)
 *   DTS6031 error    the user lacks SELECT, REPLICATION SLAVE, BINLOG MONITOR (MariaDB) /
 *                    REPLICATION CLIENT (MySQL), or RELOAD for a snapshot on MySQL (MariaDB
 *                    takes the snapshot's point without the lock RELOAD allows)
 *   DTS6004/6005     a `tables` pattern names no table
 *   DTS6006 error    a table without a primary key (dts applies changes by key)
 *
 * The binlog checks apply only when the source streams (`snapshot: "only"` copies once).
 */
import type mysql from "mysql2/promise";
import type { Describe, Finding, Preflight } from "../capabilities.js";
import { connect, connectorError, serverLabel } from "./connection.js";
import { readSourceSettings } from "./source-settings.js";
import { describeTables, isGlob, matchTables, staticTypeOf, type MysqlTable } from "./tables.js";

export interface ServerDescription {
  readonly version: string;
  readonly mariadb: boolean;
  readonly user: string;
  readonly settings: Readonly<Record<string, string | null>>;
  /** Global privileges of the user (upper case); "ALL PRIVILEGES" when it has them all. */
  readonly privileges: ReadonlySet<string>;
}

type Connection = Pick<mysql.Connection, "query">;

export async function readServer(connection: Connection, server: string): Promise<ServerDescription> {
  try {
    const [rows] = (await connection.query("SELECT VERSION() AS version, CURRENT_USER() AS user")) as unknown as [Record<string, unknown>[]];
    const version = String(rows[0]!.version);
    const [variables] = (await connection.query(
      "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('log_bin', 'binlog_format', 'binlog_row_image', 'binlog_row_metadata', 'gtid_mode', 'binlog_expire_logs_seconds', 'expire_logs_days')",
    )) as unknown as [Record<string, unknown>[]];
    const settings: Record<string, string | null> = { binlog_row_metadata: null };
    for (const row of variables) settings[String(row.Variable_name).toLowerCase()] = String(row.Value);
    const [grants] = (await connection.query("SHOW GRANTS FOR CURRENT_USER()")) as unknown as [Record<string, unknown>[]];
    const privileges = new Set<string>();
    for (const row of grants) {
      const text = String(Object.values(row)[0]);
      const m = /^GRANT\s+(.*?)\s+ON\s+(\S+)\s+TO\b/i.exec(text);
      if (m === null) continue;
      const global = m[2] === "*.*";
      for (const privilege of m[1]!.split(",")) {
        const name = privilege.trim().toUpperCase();
        privileges.add(global ? name : `${name} ON ${m[2]}`);
      }
    }
    return { version, mariadb: /mariadb/i.test(version), user: String(rows[0]!.user), settings, privileges };
  } catch (error) {
    throw connectorError(error, server, "reading server settings");
  }
}

function has(server: ServerDescription, privilege: string): boolean {
  const all = server.privileges.has("ALL PRIVILEGES") || server.privileges.has("ALL");
  if (all || server.privileges.has(privilege)) return true;
  // MariaDB 10.5+ renamed REPLICATION CLIENT to BINLOG MONITOR (the old name is an alias).
  if (privilege === "BINLOG MONITOR") return server.privileges.has("REPLICATION CLIENT");
  if (privilege === "REPLICATION CLIENT") return server.privileges.has("BINLOG MONITOR");
  return false;
}

export function serverFindings(server: ServerDescription, streaming: boolean, snapshot = true): Finding[] {
  const findings: Finding[] = [];
  const user = server.user;
  if (!has(server, "SELECT") && ![...server.privileges].some((p) => p.startsWith("SELECT ON") || p.startsWith("ALL PRIVILEGES ON"))) {
    findings.push({ code: "DTS6031", args: { user, privilege: "SELECT", purpose: "read the tables" }, fix: `GRANT SELECT ON db.* TO ${user}` });
  }
  if (snapshot && !server.mariadb && !has(server, "RELOAD")) {
    findings.push({ code: "DTS6031", args: { user, privilege: "RELOAD", purpose: "take a consistent snapshot at a known binlog position" }, fix: `GRANT RELOAD ON *.* TO ${user}` });
  }
  if (!streaming) return findings;
  const settings = server.settings;
  const check = (setting: string, wanted: string, fix: string): void => {
    const value = settings[setting];
    if (value === undefined || value === null || value.toUpperCase() === wanted) return;
    findings.push({ code: "DTS6030", args: { setting, value, wanted }, fix });
  };
  check("log_bin", "ON", "start the server with log_bin (and a server_id); on a dts development machine: bash scripts/services.sh");
  check("binlog_format", "ROW", "SET GLOBAL binlog_format = 'ROW', and set it in the server's configuration");
  check("binlog_row_image", "FULL", "SET GLOBAL binlog_row_image = 'FULL', and set it in the server's configuration");
  check("binlog_row_metadata", "FULL", "SET GLOBAL binlog_row_metadata = 'FULL', and set it in the server's configuration");
  if (!has(server, "REPLICATION SLAVE")) {
    findings.push({ code: "DTS6031", args: { user, privilege: "REPLICATION SLAVE", purpose: "read the binlog" }, fix: `GRANT REPLICATION SLAVE ON *.* TO ${user}` });
  }
  const monitor = server.mariadb ? "BINLOG MONITOR" : "REPLICATION CLIENT";
  if (!has(server, monitor)) {
    findings.push({ code: "DTS6031", args: { user, privilege: monitor, purpose: "read the binlog position (SHOW MASTER STATUS)" }, fix: `GRANT ${monitor} ON *.* TO ${user}` });
  }
  return findings;
}

export function tableFindings(tables: readonly MysqlTable[]): Finding[] {
  return tables
    .filter((table) => table.primaryKey.length === 0)
    .map((table) => ({
      code: "DTS6006" as const,
      args: { table: table.qualifiedName },
      fix: `add one: ALTER TABLE ${table.qualifiedName} ADD PRIMARY KEY (...)`,
      about: { option: "tables" },
    }));
}

async function withCatalog<T>(url: string, tool: string, body: (connection: mysql.Connection) => Promise<T>): Promise<T> {
  const connection = await connect(url, { purpose: tool });
  try {
    return await body(connection);
  } finally {
    await connection.end().catch(() => {});
  }
}

export const preflight: Preflight = async (context) => {
  const settings = readSourceSettings(context);
  const server = serverLabel(settings.url);
  return withCatalog(settings.url, context.tool, async (connection) => {
    const findings = serverFindings(await readServer(connection, server), settings.snapshot !== "only", settings.snapshot !== "never");
    const { names, unmatched } = await matchTables(connection, settings.tables, server);
    for (const pattern of unmatched) {
      findings.push(
        isGlob(pattern)
          ? { code: "DTS6005", args: { pattern, where: server }, about: { option: "tables" } }
          : { code: "DTS6004", args: { table: pattern, where: server }, about: { option: "tables" } },
      );
    }
    findings.push(...tableFindings(await describeTables(connection, names, server)));
    return findings;
  });
};

export const describe: Describe = async (context) => {
  const settings = readSourceSettings(context);
  const server = serverLabel(settings.url);
  return withCatalog(settings.url, context.tool, async (connection) => {
    const { names } = await matchTables(connection, settings.tables, server);
    const tables = await describeTables(connection, names, server);
    return tables.map((table) => ({
      name: table.qualifiedName,
      columns: table.columns.map((column) => ({ name: column.name, type: column.type, valueType: staticTypeOf(column) })),
    }));
  });
};
