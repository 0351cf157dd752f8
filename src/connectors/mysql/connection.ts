/**
 * Opening a connection to MySQL or MariaDB, and telling their errors apart: shared by the
 * source (snapshot reads, the binlog reader's control connection), the sink and the tools.
 *
 * Every session is set up so that text read from or written to the server means the same on
 * every machine and loses nothing: the time zone is UTC (a TIMESTAMP is read and written as
 * UTC), the character set utf8mb4 (emoji survive), and strict SQL mode with NO_ZERO_IN_DATE off
 * only where a source must read what an application stored. The driver hands back every value
 * as the server printed it or as bytes — DECIMAL and BIGINT as strings, dates as strings —
 * so nothing passes through a JavaScript double on its way to an exact `Value`.
 *
 * Errors fall in three kinds, which decide what the runtime does:
 *   - the connection is gone or the server cannot serve now (a socket error, the server
 *     shutting down or gone away, too many connections, a deadlock or lock wait timeout,
 *     a read-only server during a failover): retriable;
 *   - the value or the row is wrong (out of range, too long, an incorrect value, NULL in a
 *     NOT NULL column, a duplicate or foreign key): the event is rejected;
 *   - anything else (no privilege, no table, a syntax error, a wrong password): fatal.
 */
import mysql from "mysql2/promise";
import { ConnectorError } from "../../runtime/contracts.js";

/** The URL without its password, for messages: `mysql://root@127.0.0.1:3306/shop`. */
export function serverLabel(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.password = "";
    parsed.search = "";
    return parsed.toString();
  } catch {
    return "the MySQL server (unparsable URL)";
  }
}

export interface MysqlError extends Error {
  /** The driver's or the server's symbolic code: `ECONNREFUSED`, `ER_DUP_ENTRY`. */
  code?: string;
  /** The server's numeric error code, for server errors. */
  errno?: number;
  sqlState?: string;
  sqlMessage?: string;
  fatal?: boolean;
}

export type ErrorKind = "connection" | "data" | "fatal";

/** Server error numbers that mean "try again": the server is going or busy, or a lock conflict. */
const RETRIABLE = new Set([
  1040, // ER_CON_COUNT_ERROR: too many connections
  1053, // ER_SERVER_SHUTDOWN
  1205, // ER_LOCK_WAIT_TIMEOUT
  1213, // ER_LOCK_DEADLOCK
  1290, // ER_OPTION_PREVENTS_STATEMENT (--read-only: a replica during a failover)
  1836, // ER_READ_ONLY_MODE
  1927, // ER_CONNECTION_KILLED (MariaDB)
  2002, // CR_CONNECTION_ERROR
  2003, // CR_CONN_HOST_ERROR
  2006, // CR_SERVER_GONE_ERROR
  2013, // CR_SERVER_LOST
  3169, // ER_SESSION_WAS_KILLED (MySQL)
]);

/** Server error numbers that blame the value or the row: the event is rejected, not retried. */
const DATA = new Set([
  1048, // ER_BAD_NULL_ERROR
  1062, // ER_DUP_ENTRY
  1136, // ER_WRONG_VALUE_COUNT_ON_ROW
  1264, // ER_WARN_DATA_OUT_OF_RANGE
  1265, // WARN_DATA_TRUNCATED
  1292, // ER_TRUNCATED_WRONG_VALUE
  1366, // ER_TRUNCATED_WRONG_VALUE_FOR_FIELD
  1367, // ER_ILLEGAL_VALUE_FOR_TYPE
  1406, // ER_DATA_TOO_LONG
  1411, // ER_WRONG_VALUE_FOR_TYPE
  1416, // ER_CANT_CREATE_GEOMETRY_OBJECT
  1451, // ER_ROW_IS_REFERENCED_2
  1452, // ER_NO_REFERENCED_ROW_2
  1690, // ER_DATA_OUT_OF_RANGE
  3140, // ER_INVALID_JSON_TEXT
  3156, // ER_INVALID_JSON_VALUE_FOR_CAST
  4025, // ER_CONSTRAINT_FAILED (MariaDB CHECK)
  3819, // ER_CHECK_CONSTRAINT_VIOLATED (MySQL)
]);

export function errorKind(error: unknown): ErrorKind {
  const e = error as MysqlError | null;
  const errno = e?.errno;
  if (errno === undefined || e?.sqlState === undefined) {
    // Not a server error: a socket error (ECONNRESET, ECONNREFUSED, ETIMEDOUT) or the driver
    // noticing the connection closed (PROTOCOL_CONNECTION_LOST).
    return e?.code === "ER_ACCESS_DENIED_ERROR" ? "fatal" : "connection";
  }
  if (RETRIABLE.has(errno)) return "connection";
  if (DATA.has(errno) || e?.sqlState?.startsWith("22") === true || e?.sqlState?.startsWith("23") === true) return "data";
  return "fatal";
}

/** A ConnectorError for `error`, retriable when the connection is to blame. */
export function connectorError(error: unknown, server: string, doing: string): ConnectorError {
  if (error instanceof ConnectorError) return error;
  const e = error as MysqlError;
  const kind = errorKind(error);
  const code = e.code !== undefined ? ` [${e.code}${e.errno !== undefined && e.sqlState !== undefined ? ` ${e.errno}` : ""}]` : "";
  const hint =
    e.errno === 1044 || e.errno === 1142 || e.errno === 1227 || e.errno === 1045
      ? "; grant the user the privilege, or use another user (see the connector's page for the privileges it needs)"
      : "";
  return new ConnectorError(`${doing} on ${server}: ${e.sqlMessage ?? e.message}${code}${hint}`, kind === "connection", { cause: error });
}

export interface ConnectOptions {
  /** Shown in the server's process list (`SHOW PROCESSLIST`), with the pipeline's name in it. */
  readonly purpose: string;
  readonly connectTimeoutMs?: number;
  /** Multiple statements in one query (the sink's batches); off by default. */
  readonly multipleStatements?: boolean;
}

/**
 * A connection with dts's session settings. `url`: `mysql://user:password@host:port/database`
 * (the database may be absent). Values come back as text or bytes (see the file comment).
 */
export async function connect(url: string, options: ConnectOptions): Promise<mysql.Connection> {
  const server = serverLabel(url);
  let connection: mysql.Connection | undefined;
  try {
    const parsed = new URL(url);
    connection = await mysql.createConnection({
      host: parsed.hostname,
      port: parsed.port === "" ? 3306 : Number(parsed.port),
      user: decodeURIComponent(parsed.username),
      password: decodeURIComponent(parsed.password),
      ...(parsed.pathname.length > 1 ? { database: decodeURIComponent(parsed.pathname.slice(1)) } : {}),
      charset: "utf8mb4_bin",
      timezone: "Z",
      connectTimeout: options.connectTimeoutMs ?? 10_000,
      supportBigNumbers: true,
      bigNumberStrings: true,
      decimalNumbers: false,
      dateStrings: true,
      multipleStatements: options.multipleStatements ?? false,
      enableKeepAlive: true,
      connectAttributes: { program_name: options.purpose },
    });
    // An idle connection whose server goes away emits 'error'; without a listener that is an
    // uncaught exception. The next query fails and reports it properly.
    connection.on("error", () => {});
    await connection.query("SET time_zone = '+00:00', NAMES utf8mb4 COLLATE utf8mb4_bin");
    return connection;
  } catch (error) {
    await connection?.end().catch(() => {});
    if (error instanceof TypeError) throw new ConnectorError(`cannot connect to ${server}: the URL is not valid (${error.message})`, false);
    const converted = connectorError(error, server, "cannot connect");
    throw new ConnectorError(converted.message.replace(/^cannot connect on /, "cannot connect to "), converted.retriable, { cause: error });
  }
}

/**
 * A connection refused, or a host name that does not resolve. At start that is almost always a
 * wrong URL or a stopped server, and is said at once rather than after minutes of retries;
 * mid-run the same error is a server restarting, and is retried.
 */
export function isUnreachable(error: unknown): boolean {
  const errors = error instanceof AggregateError ? error.errors : [error];
  return errors.some((e: unknown) => {
    const code = (e as { code?: unknown } | null)?.code;
    return code === "ECONNREFUSED" || code === "ENOTFOUND";
  });
}

/** Backquotes an identifier, as MySQL reads it whatever characters it holds. */
export function quoteIdentifier(name: string): string {
  return `\`${name.replaceAll("`", "``")}\``;
}
