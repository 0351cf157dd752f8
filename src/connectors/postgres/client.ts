/**
 * Opening a plain (non-replication) connection, and telling PostgreSQL's errors apart.
 *
 * Every message names the server as `postgres://user@host:port/db` — the URL without its
 * password — because "connection refused" alone does not say which of a pipeline's servers
 * refused. Errors fall in three kinds, which decide what the runtime does:
 *   - the connection is gone or the server cannot serve now (class 08, 57P01–57P03, 53, a
 *     socket error, a serialization failure or deadlock, class 40): retriable;
 *   - the value or the row is wrong (classes 21, 22, 23, and 42804): the event is rejected;
 *   - anything else (no permission, no table, a syntax error): fatal.
 */
import pg from "pg";
import { ConnectorError } from "../../runtime/contracts.js";

/** The URL without its password, for messages. */
export function serverLabel(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.password = "";
    parsed.search = "";
    return parsed.toString();
  } catch {
    return "the PostgreSQL server (unparsable URL)";
  }
}

export interface PgError extends Error {
  code?: string;
  detail?: string;
  column?: string;
  constraint?: string;
  where?: string;
  table?: string;
}

export type ErrorKind = "connection" | "data" | "fatal";

export function errorKind(error: unknown): ErrorKind {
  const code = (error as PgError).code;
  if (code === undefined || code.length !== 5 || !/^[0-9A-Z]{5}$/.test(code)) {
    // Not a server error: a socket error (ECONNRESET…) or the client noticing the socket died.
    return "connection";
  }
  const cls = code.slice(0, 2);
  if (cls === "08" || cls === "40" || cls === "53" || code === "57P01" || code === "57P02" || code === "57P03") return "connection";
  if (cls === "21" || cls === "22" || cls === "23" || code === "42804") return "data";
  return "fatal";
}

/** A ConnectorError for `error`, retriable when the connection is to blame. */
export function connectorError(error: unknown, server: string, doing: string): ConnectorError {
  if (error instanceof ConnectorError) return error;
  const pgError = error as PgError;
  const kind = errorKind(error);
  const code = pgError.code !== undefined && pgError.code.length === 5 ? ` [${pgError.code}]` : "";
  const detail = pgError.detail ? ` (${pgError.detail})` : "";
  const hint = pgError.code === "42501" ? "; grant the user the privilege, or use another user" : "";
  return new ConnectorError(`${doing} on ${server}: ${pgError.message}${code}${detail}${hint}`, kind === "connection", { cause: error });
}

/**
 * A connected client with dts's session settings: UTC, ISO dates, exact floats, hex bytea, so
 * that text read from or written to the server means the same thing on every machine.
 */
export async function connect(url: string, applicationName: string, connectTimeoutMs = 10_000): Promise<pg.Client> {
  const client = new pg.Client({
    connectionString: url,
    application_name: applicationName,
    connectionTimeoutMillis: connectTimeoutMs,
    keepAlive: true,
  });
  // An idle client whose server goes away emits 'error'; without a listener that is an
  // uncaught exception. The next query fails and reports it properly.
  client.on("error", () => {});
  try {
    await client.connect();
    await client.query("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'iso_8601'; SET extra_float_digits = 1; SET bytea_output = 'hex'");
  } catch (error) {
    await client.end().catch(() => {});
    const converted = connectorError(error, serverLabel(url), "cannot connect");
    throw new ConnectorError(converted.message.replace(/^cannot connect on /, "cannot connect to "), converted.retriable, { cause: error });
  }
  return client;
}

/**
 * A connection refused, or a host name that does not resolve. At start that is almost always a
 * wrong URL or a stopped server, and is said at once rather than after a minute of retries;
 * mid-run the same error is a server restarting, and is retried.
 */
export function isUnreachable(error: unknown): boolean {
  const errors = error instanceof AggregateError ? error.errors : [error];
  return errors.some((e: unknown) => {
    const code = (e as { code?: unknown } | null)?.code;
    return code === "ECONNREFUSED" || code === "ENOTFOUND";
  });
}
