/**
 * The mysql sink's tables: which table a target names, what the server says the table is
 * (information_schema: columns, primary key, JSON columns), and the DDL that creates a table
 * or adds and widens columns.
 *
 * A target is `database.table`; a target without a database (a `route` to `"orders"`) is a
 * table of the URL's database. MariaDB's JSON is a LONGTEXT with a JSON_VALID check: the
 * check tells a JSON column from a text one, so that its values are written as documents.
 */
import type mysql from "mysql2/promise";
import type { ColumnType } from "../../model/column-type.js";
import { ConnectorError } from "../../runtime/contracts.js";
import { quoteIdentifier } from "./connection.js";
import { columnTypeOf, encoderFor, mysqlDeclaration, type ColumnShape, type Encoder } from "./sink-types.js";

export interface TargetColumn extends ColumnShape {
  readonly encode: Encoder;
  readonly generated: boolean;
}

export interface TargetTable {
  readonly database: string;
  readonly table: string;
  /** `` `db`.`table` ``. */
  readonly sql: string;
  /** `db.table`, for messages. */
  readonly display: string;
  /** Every column, generated ones included, in table order. */
  readonly columns: ReadonlyMap<string, TargetColumn>;
  readonly primaryKey: readonly string[];
}

export function parseTarget(target: string, defaultDatabase: string | undefined): { database: string; table: string } {
  const dot = target.indexOf(".");
  if (dot === -1) {
    if (defaultDatabase === undefined) {
      throw new ConnectorError(`mysql sink: target ${JSON.stringify(target)} names no database, and the sink's url has none: route to "database.${target}", or add the database to the url`, false);
    }
    return { database: defaultDatabase, table: target };
  }
  return { database: target.slice(0, dot), table: target.slice(dot + 1) };
}

export function tableSql(database: string, table: string): string {
  return `${quoteIdentifier(database)}.${quoteIdentifier(table)}`;
}

type Row = Record<string, unknown>;

/** The table as the server has it now; undefined when it does not exist. */
export async function loadTable(connection: mysql.Connection, database: string, table: string): Promise<TargetTable | undefined> {
  const [columns] = await connection.query<mysql.RowDataPacket[]>(
    `SELECT COLUMN_NAME AS name, LOWER(DATA_TYPE) AS dataType, COLUMN_TYPE AS columnType, EXTRA AS extra
       FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
    [database, table],
  );
  if (columns.length === 0) return undefined;
  const [keys] = await connection.query<mysql.RowDataPacket[]>(
    `SELECT COLUMN_NAME AS name FROM information_schema.STATISTICS
      WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX`,
    [database, table],
  );
  const json = await jsonColumns(connection, database, table);
  const map = new Map<string, TargetColumn>();
  for (const row of columns as Row[]) {
    const name = String(row.name);
    const dataType = String(row.dataType);
    const shape: ColumnShape = { name, dataType, columnType: String(row.columnType), json: dataType === "json" || json.has(name) };
    const extra = String(row.extra ?? "").toUpperCase();
    map.set(name, { ...shape, encode: encoderFor(shape), generated: /GENERATED|VIRTUAL|PERSISTENT|STORED/.test(extra) });
  }
  return {
    database,
    table,
    sql: tableSql(database, table),
    display: `${database}.${table}`,
    columns: map,
    primaryKey: (keys as Row[]).map((row) => String(row.name)),
  };
}

/** MariaDB's JSON columns: those with a `json_valid(col)` check. MySQL has none of these (its DATA_TYPE says json). */
async function jsonColumns(connection: mysql.Connection, database: string, table: string): Promise<Set<string>> {
  try {
    const [rows] = await connection.query<mysql.RowDataPacket[]>(
      `SELECT CHECK_CLAUSE AS clause FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?`,
      [database, table],
    );
    const names = new Set<string>();
    for (const row of rows as Row[]) {
      const m = /^json_valid\(`((?:[^`]|``)+)`\)$/i.exec(String(row.clause).trim());
      if (m !== null) names.add(m[1]!.replaceAll("``", "`"));
    }
    return names;
  } catch {
    // MySQL 5.7 has no CHECK_CONSTRAINTS (nor MariaDB's JSON alias).
    return new Set();
  }
}

/** The text columns' collation: binary and no-pad, so keys PostgreSQL tells apart stay apart. */
export async function textCollation(connection: mysql.Connection): Promise<string> {
  const [rows] = await connection.query<mysql.RowDataPacket[]>(
    "SELECT COLLATION_NAME AS name FROM information_schema.COLLATIONS WHERE COLLATION_NAME IN ('utf8mb4_nopad_bin', 'utf8mb4_0900_bin')",
  );
  const names = (rows as Row[]).map((row) => String(row.name));
  return names.includes("utf8mb4_nopad_bin") ? "utf8mb4_nopad_bin" : names.includes("utf8mb4_0900_bin") ? "utf8mb4_0900_bin" : "utf8mb4_bin";
}

export interface ColumnDefinition {
  readonly name: string;
  readonly type: ColumnType;
  /** The MySQL declaration. */
  readonly sql: string;
}

/** Definitions for a neutral column list: key columns indexable, text columns with the collation. */
export function definitions(columns: readonly { name: string; type: ColumnType }[], primaryKey: readonly string[], collation: string): ColumnDefinition[] {
  return columns.map(({ name, type }) => ({ name, type, sql: withCollation(mysqlDeclaration(type, primaryKey.includes(name)), collation) }));
}

function withCollation(declaration: string, collation: string): string {
  return /^(VARCHAR|CHAR|LONGTEXT|ENUM|SET)\b/.test(declaration) ? `${declaration} CHARACTER SET utf8mb4 COLLATE ${collation}` : declaration;
}

export function createTableStatements(database: string, table: string, columns: readonly ColumnDefinition[], primaryKey: readonly string[], collation: string): string[] {
  const body = [...columns.map((c) => `${quoteIdentifier(c.name)} ${c.sql}${primaryKey.includes(c.name) ? " NOT NULL" : ""}`)];
  if (primaryKey.length > 0) body.push(`PRIMARY KEY (${primaryKey.map(quoteIdentifier).join(", ")})`);
  return [
    `CREATE DATABASE IF NOT EXISTS ${quoteIdentifier(database)} CHARACTER SET utf8mb4`,
    `CREATE TABLE IF NOT EXISTS ${tableSql(database, table)} (\n  ${body.join(",\n  ")}\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=${collation}`,
  ];
}

/** A source table's declared columns in the neutral model. */
export function neutralColumns(schema: { readonly dialect: "postgres" | "mysql"; readonly columns: readonly { name: string; type: string }[] }): { name: string; type: ColumnType }[] {
  return schema.columns.map((column) => ({ name: column.name, type: columnTypeOf(schema.dialect, column.type) }));
}
