/**
 * Throwaway databases on the test MariaDB server (127.0.0.1:3306, root without a password;
 * override with DTS_TEST_MYSQL_HOST / DTS_TEST_MYSQL_PORT) for the mysql source's tests, each
 * with a unique name so that parallel runs never meet. A server that does not answer fails the
 * test loudly with the fix — integration tests are never skipped.
 */
import { randomBytes } from "node:crypto";
import mysql from "mysql2/promise";

export const MYSQL_HOST = process.env.DTS_TEST_MYSQL_HOST ?? "127.0.0.1";
export const MYSQL_PORT = Number(process.env.DTS_TEST_MYSQL_PORT ?? 3306);

export function mysqlUrl(database = "", port = MYSQL_PORT): string {
  return `mysql://root@${MYSQL_HOST}:${port}/${database}`;
}

export async function mysqlConnection(database = "", port = MYSQL_PORT): Promise<mysql.Connection> {
  try {
    const connection = await mysql.createConnection({
      host: MYSQL_HOST,
      port,
      user: "root",
      ...(database !== "" ? { database } : {}),
      multipleStatements: true,
      supportBigNumbers: true,
      bigNumberStrings: true,
      dateStrings: true,
      timezone: "Z",
      charset: "utf8mb4_bin",
    });
    connection.on("error", () => {});
    await connection.query("SET time_zone = '+00:00'");
    return connection;
  } catch (error) {
    throw new Error(`the test MariaDB server at ${MYSQL_HOST}:${port} is unreachable (${(error as Error).message}); run: bash scripts/services.sh`);
  }
}

export interface MysqlDatabase {
  readonly name: string;
  readonly url: string;
  sql<Row = Record<string, unknown>>(text: string, values?: unknown[]): Promise<Row[]>;
  /** A statement that changes rows: how many it changed. */
  exec(text: string, values?: unknown[]): Promise<number>;
  drop(): Promise<void>;
}

/** A new database with a unique name (`label_xxxxxx`), dropped by `drop()`. */
export async function createMysqlDatabase(label: string, port = MYSQL_PORT): Promise<MysqlDatabase> {
  const name = `${label}_${randomBytes(4).toString("hex")}`;
  const admin = await mysqlConnection("", port);
  await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`);
  await admin.end();
  let connection: mysql.Connection | undefined;
  return {
    name,
    url: mysqlUrl(name, port),
    async sql<Row>(text: string, values?: unknown[]): Promise<Row[]> {
      connection ??= await mysqlConnection(name, port);
      const [rows] = await connection.query(text, values);
      return (Array.isArray(rows) ? rows : []) as Row[];
    },
    async exec(text: string, values?: unknown[]): Promise<number> {
      connection ??= await mysqlConnection(name, port);
      const [result] = await connection.query(text, values);
      return Number((result as { affectedRows?: number }).affectedRows ?? 0);
    },
    async drop(): Promise<void> {
      await connection?.end().catch(() => {});
      const again = await mysqlConnection("", port);
      await again.query(`DROP DATABASE IF EXISTS \`${name}\``);
      await again.end();
    },
  };
}

/** The server's binlog end, `file:offset`. */
export async function binlogEnd(db: MysqlDatabase): Promise<{ file: string; offset: number }> {
  const rows = await db.sql<{ File: string; Position: number }>("SHOW MASTER STATUS");
  return { file: rows[0]!.File, offset: Number(rows[0]!.Position) };
}
