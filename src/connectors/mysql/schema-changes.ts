/**
 * DDL in the binlog → the captured tables' new definitions and `SchemaChange`s for the sinks.
 *
 * The binlog carries a DDL statement as its text. After one, the captured tables are matched
 * and described again from information_schema and compared with what the stream knew, so that
 * every form of the statement is covered without parsing SQL: ALTER TABLE ADD/DROP/MODIFY/CHANGE
 * COLUMN (a column renamed by CHANGE or RENAME COLUMN is a drop and an add, as for PostgreSQL),
 * CREATE TABLE of a name `tables` matches (reported with every column added; its rows follow in
 * the stream), DROP TABLE (no longer captured), and RENAME TABLE / ALTER TABLE … RENAME, taken
 * from the statement (`renamedFrom`).
 *
 * information_schema shows the tables as they are now, not as they were at the statement: when
 * the stream runs behind and a table changed twice since, the first statement reports both
 * changes at once. Rows are still decoded right — binlog_row_metadata=FULL names every row
 * image's columns as they were written.
 *
 * A column added with a constant DEFAULT gives existing rows that value without any row event;
 * the change says so (`existing`), and `computed` for a DEFAULT the server evaluates per row
 * (CURRENT_TIMESTAMP, an expression).
 */
import type { ColumnChange, Logger, SchemaChange } from "../../runtime/contracts.js";
import { splitName, tableSchema, type MysqlTable } from "./tables.js";

/** `RENAME TABLE a TO b, c TO d` and `ALTER TABLE a RENAME [TO|AS] b`: new name → old name, qualified with `database`. */
export function renamesIn(statement: string, database: string): Map<string, string> {
  const renames = new Map<string, string>();
  const name = "((?:`(?:[^`]|``)+`|[\\w$]+)(?:\\s*\\.\\s*(?:`(?:[^`]|``)+`|[\\w$]+))?)";
  const qualify = (text: string): string => {
    const parts = text.match(/`(?:[^`]|``)+`|[\w$]+/g)!.map((part) => (part.startsWith("`") ? part.slice(1, -1).replaceAll("``", "`") : part));
    return parts.length === 2 ? `${parts[0]}.${parts[1]}` : `${database}.${parts[0]}`;
  };
  const rename = new RegExp(`^\\s*RENAME\\s+TABLES?\\s+(.*)$`, "is").exec(statement);
  if (rename !== null) {
    const pair = new RegExp(`${name}\\s+TO\\s+${name}`, "gi");
    for (let m = pair.exec(rename[1]!); m !== null; m = pair.exec(rename[1]!)) renames.set(qualify(m[2]!), qualify(m[1]!));
    return renames;
  }
  const alter = new RegExp(`^\\s*ALTER\\s+(?:ONLINE\\s+|IGNORE\\s+)*TABLE\\s+${name}.*?\\bRENAME\\s+(?:TO\\s+|AS\\s+)?${name}\\s*$`, "is").exec(statement);
  if (alter !== null && !/\bRENAME\s+(COLUMN|INDEX|KEY)\b/i.test(statement)) renames.set(qualify(alter[2]!), qualify(alter[1]!));
  return renames;
}

/** A DEFAULT as information_schema prints it → what existing rows hold, when the column is added. */
export function existingFromDefault(defaultText: unknown, nullable: boolean): { value: string } | "computed" | undefined {
  if (defaultText === null || defaultText === undefined) return nullable ? undefined : undefined;
  const text = String(defaultText);
  if (text === "NULL") return undefined;
  // MariaDB quotes string literals ('abc'); MySQL prints them bare; numbers are bare in both.
  if (/^'.*'$/s.test(text)) return { value: text.slice(1, -1).replaceAll("''", "'").replaceAll("\\\\", "\\") };
  if (/^-?\d+(\.\d+)?(e[-+]?\d+)?$/i.test(text)) return { value: text };
  if (/^(current_timestamp|now|uuid|rand|curdate|curtime)\b/i.test(text) || /\(/.test(text)) return "computed";
  return { value: text };
}

export interface SchemaDiffOptions {
  readonly before: ReadonlyMap<string, MysqlTable>;
  readonly after: readonly MysqlTable[];
  readonly renames: ReadonlyMap<string, string>;
  readonly log: Logger;
}

/** `DROP TABLE [IF EXISTS] a, db.b`: the tables it drops, qualified with `database`. */
export function droppedIn(statement: string, database: string): Set<string> {
  const dropped = new Set<string>();
  const drop = /^\s*DROP\s+(?:TEMPORARY\s+)?TABLES?\s+(?:IF\s+EXISTS\s+)?(.*?)(?:\s+(?:RESTRICT|CASCADE))?\s*$/is.exec(statement);
  if (drop === null) return dropped;
  for (const item of drop[1]!.split(",")) {
    const parts = item.match(/`(?:[^`]|``)+`|[\w$]+/g)?.map((part) => (part.startsWith("`") ? part.slice(1, -1).replaceAll("``", "`") : part)) ?? [];
    if (parts.length === 1) dropped.add(`${database}.${parts[0]}`);
    else if (parts.length === 2) dropped.add(`${parts[0]}.${parts[1]}`);
  }
  return dropped;
}

/**
 * information_schema shows the tables as they are now, so a captured table missing from it was
 * dropped or renamed either by this statement or by a later one the stream has not reached yet.
 * In the second case its row events up to that statement are still to come, under its name:
 * it stays captured with the definition the stream knew, or those rows would be lost.
 */
export function stillCaptured(before: ReadonlyMap<string, MysqlTable>, after: readonly MysqlTable[], statement: string, database: string): MysqlTable[] {
  const leaving = new Set([...renamesIn(statement, database).values(), ...droppedIn(statement, database)]);
  const now = new Set(after.map((table) => table.qualifiedName));
  return [...before.values()].filter((table) => !now.has(table.qualifiedName) && !leaving.has(table.qualifiedName));
}

/** The changes between the tables the stream knew and the tables described now. */
export function diffTables(options: SchemaDiffOptions): SchemaChange[] {
  const changes: SchemaChange[] = [];
  const seen = new Set<string>();
  for (const table of options.after) {
    const renamedFrom = options.renames.get(table.qualifiedName);
    const previous = options.before.get(table.qualifiedName) ?? (renamedFrom !== undefined ? options.before.get(renamedFrom) : undefined);
    if (previous !== undefined) seen.add(previous.qualifiedName);
    const columns: ColumnChange[] = [];
    const old = new Map((previous?.columns ?? []).map((column) => [column.name, column]));
    for (const column of table.columns) {
      const was = old.get(column.name);
      if (was === undefined) {
        const existing = previous === undefined ? undefined : existingFromDefault(column.defaultText, column.nullable);
        columns.push({ kind: "added", column: column.name, type: column.type, ...(existing !== undefined ? { existing } : {}) });
      } else if (was.type !== column.type) {
        columns.push({ kind: "retyped", column: column.name, from: was.type, to: column.type });
      }
    }
    for (const was of previous?.columns ?? []) {
      if (!table.columns.some((column) => column.name === was.name)) columns.push({ kind: "dropped", column: was.name, type: was.type });
    }
    const renamed = previous !== undefined && previous.qualifiedName !== table.qualifiedName;
    const keyChanged = previous !== undefined && previous.primaryKey.join("\0") !== table.primaryKey.join("\0");
    if (columns.length === 0 && !renamed && !keyChanged) continue;
    changes.push({ table: table.qualifiedName, schema: tableSchema(table), columns, ...(renamed ? { renamedFrom: previous.qualifiedName } : {}) });
  }
  for (const name of options.before.keys()) {
    if (!seen.has(name) && !options.after.some((table) => table.qualifiedName === name)) {
      options.log.warn("a captured table was dropped or renamed to a name `tables` does not match: it is no longer captured", { table: name });
    }
  }
  return changes;
}

export { splitName };
