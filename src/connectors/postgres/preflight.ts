/**
 * What the postgres source needs from its server, checked in one place for two callers: the
 * source's start (source.ts stops on an error finding and logs the warnings) and
 * `dts check --live` (the `preflight` capability, which prints every finding with its code
 * and a caret at the option it is about). Both get the same findings, worded the same:
 *
 *   DTS6003 error    PostgreSQL older than 14 (pgoutput's `messages` option carries the heartbeat)
 *   DTS6001 error    wal_level is not logical
 *   DTS6002 error    the user lacks the REPLICATION attribute
 *   DTS6004/6005     a `tables` pattern names no table
 *   DTS6006 error    a table without a key (dts applies changes by key)
 *   DTS6007 error    REPLICA IDENTITY NOTHING: in a publication the server would reject the
 *                    table's UPDATEs and DELETEs, which we will not do to an application
 *   DTS6008 warning  a flow reads `before`, but the table's replica identity does not give it
 *   DTS6009 warning  (at start, where it is not known whether a flow reads `before`) updates
 *                    carry no before image
 *
 * The server and replica identity checks apply only when the source streams (`snapshot:
 * "only"` copies the tables once, in one transaction); the key check always applies, because
 * the sinks apply rows by key.
 *
 * `describe` lists the captured tables with their columns, for `dts check --live` to check
 * column names against; a pattern that matches nothing is left to `preflight` to report.
 */
import type { Describe, Finding, Preflight } from "../capabilities.js";
import { connect, endQuietly, serverAddress } from "./connection.js";
import { TypeRegistry } from "./decode.js";
import { readSourceSettings } from "./source-settings.js";
import { NoTableError, readServer, resolveTables, type ServerDescription, type TableDescription } from "./tables.js";

type Query = (sql: string, params?: unknown[]) => Promise<{ rows: Record<string, unknown>[] }>;

/** The server's settings and the user's attributes. */
export function serverFindings(server: ServerDescription, user: string, streaming: boolean): Finding[] {
  if (!streaming) return [];
  const findings: Finding[] = [];
  if (server.version < 140000) {
    findings.push({ code: "DTS6003", args: { version: Math.floor(server.version / 10000) }, fix: "upgrade the server, or copy the tables once with snapshot: \"only\"" });
  }
  if (server.walLevel !== "logical") {
    findings.push({
      code: "DTS6001",
      args: { level: server.walLevel },
      fix: "ALTER SYSTEM SET wal_level = logical; then restart the server (on a dts development machine: bash scripts/services.sh)",
    });
  }
  if (!server.replication) findings.push({ code: "DTS6002", args: { user }, fix: `ALTER ROLE ${user} REPLICATION` });
  return findings;
}

/** A `tables` pattern that names no table. */
export function missingTableFinding(error: NoTableError): Finding {
  const about = { option: "tables" };
  const fix = error.hint !== undefined ? { fix: error.hint } : {};
  if (error.table !== undefined) return { code: "DTS6004", args: { table: error.table, where: error.where }, ...fix, about };
  return { code: "DTS6005", args: { pattern: error.pattern, where: error.where }, ...fix, about };
}

/**
 * Keys and replica identities. `readsBefore`: whether a flow reads `before` (undefined at
 * start, where it is not known: every table whose updates carry no before image is said).
 */
export function tableFindings(tables: readonly TableDescription[], streaming: boolean, readsBefore: boolean | undefined): Finding[] {
  const findings: Finding[] = [];
  for (const table of tables) {
    const name = table.qualifiedName;
    if (table.keyColumns.length === 0) {
      findings.push({
        code: "DTS6006",
        args: { table: name },
        fix: `add one (ALTER TABLE ${name} ADD PRIMARY KEY (...)) or make every column the key: ALTER TABLE ${name} REPLICA IDENTITY FULL`,
        about: { option: "tables" },
      });
      continue;
    }
    if (!streaming) continue;
    if (table.replicaIdentity === "nothing") {
      findings.push({ code: "DTS6007", args: { table: name }, fix: `ALTER TABLE ${name} REPLICA IDENTITY DEFAULT (or FULL)`, about: { option: "tables" } });
      continue;
    }
    const problem = beforeProblem(table);
    if (problem === undefined || readsBefore === false) continue;
    const fix = `ALTER TABLE ${name} REPLICA IDENTITY FULL`;
    findings.push(readsBefore === true ? { code: "DTS6008", args: { table: name, problem }, fix, about: "before" } : { code: "DTS6009", args: { table: name, problem }, fix, about: { option: "tables" } });
  }
  return findings;
}

function beforeProblem(table: TableDescription): string | undefined {
  switch (table.replicaIdentity) {
    case "full":
    case "nothing":
      return undefined;
    case "default":
      return "REPLICA IDENTITY DEFAULT: updates carry no before image and deletes only the key";
    case "index":
      return "REPLICA IDENTITY USING INDEX: updates carry no before image and deletes only the index's columns";
  }
}

/** Every pattern resolved on its own, so that one that names nothing does not hide the others. */
async function resolveEach(query: Query, patterns: readonly string[], url: string): Promise<{ tables: TableDescription[]; missing: NoTableError[] }> {
  const address = serverAddress(url);
  const types = new TypeRegistry();
  const tables = new Map<string, TableDescription>();
  const missing: NoTableError[] = [];
  for (const pattern of patterns) {
    try {
      for (const table of await resolveTables(query, [pattern], address, types)) tables.set(table.qualifiedName, table);
    } catch (error) {
      if (!(error instanceof NoTableError)) throw error;
      missing.push(error);
    }
  }
  return { tables: [...tables.values()], missing };
}

async function withCatalog<T>(url: string, application: string, body: (query: Query) => Promise<T>): Promise<T> {
  const client = await connect(url, { role: "catalog", application, resuming: false });
  try {
    return await body((sql, params) => client.query(sql, params));
  } finally {
    await endQuietly(client);
  }
}

export const preflight: Preflight = async (context) => {
  const settings = readSourceSettings(context);
  const address = serverAddress(settings.url);
  const streaming = settings.snapshot !== "only";
  return withCatalog(settings.url, context.tool, async (query) => {
    const findings = serverFindings(await readServer(query, address), address.user, streaming);
    const { tables, missing } = await resolveEach(query, settings.tables, settings.url);
    findings.push(...missing.map(missingTableFinding), ...tableFindings(tables, streaming, context.readsBefore ?? false));
    return findings;
  });
};

export const describe: Describe = async (context) => {
  const settings = readSourceSettings(context);
  return withCatalog(settings.url, context.tool, async (query) => {
    const { tables } = await resolveEach(query, settings.tables, settings.url);
    return tables.map((table) => ({
      name: table.qualifiedName,
      columns: table.columns.filter((column) => !column.generated).map((column) => ({ name: column.name, type: column.type, valueType: column.staticType })),
    }));
  });
};
