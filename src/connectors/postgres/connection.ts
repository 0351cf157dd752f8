/**
 * Connections of the PostgreSQL source, and what their failures mean to a user.
 *
 * Every connection (catalog, snapshot, replication) is opened with the same session settings,
 * because values are read from the text PostgreSQL prints and that text depends on them
 * (decode.ts). Replication connections are ordinary node-postgres clients started with
 * `replication=database`, which accept both replication commands and SQL.
 *
 * Failures become `ConnectorError`s that name the server (`host:port`, never the password) and
 * say whether retrying can help:
 *   - refused or unknown host: retriable only when resuming (the server served this pipeline
 *     before, so it is probably restarting); on a first run it is almost always a wrong URL
 *     or a stopped server, and the pipeline stops at once with the message instead of
 *     retrying for a minute;
 *   - timeouts, resets, "the database system is starting up / shutting down", too many
 *     connections, a connection lost mid-stream: retriable (the runtime bounds the retries);
 *   - authentication, a missing database, missing privileges: not retriable.
 */
import pg from "pg";
import { ConnectorError } from "../../runtime/contracts.js";

/** The settings under which decode.ts reads values; passed in the start-up packet. */
export const SESSION_OPTIONS = [
  "-c DateStyle=ISO",
  "-c TimeZone=UTC",
  "-c IntervalStyle=iso_8601",
  "-c extra_float_digits=3",
  "-c bytea_output=hex",
  "-c client_encoding=UTF8",
  // A long snapshot idles in its transaction while sinks catch up; a server-wide timeout must not end it.
  "-c idle_in_transaction_session_timeout=0",
  "-c statement_timeout=0",
].join(" ");

export interface ServerAddress {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
}

/** Where a URL points, for messages: never the password. */
export function serverAddress(url: string): ServerAddress {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConnectorError(`postgres: url is not a URL such as postgres://user@host:5432/db`, false);
  }
  if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
    throw new ConnectorError(`postgres: url must start with postgres:// (got ${parsed.protocol}//...)`, false);
  }
  const user = decodeURIComponent(parsed.username) || process.env.PGUSER || process.env.USER || "postgres";
  const host = parsed.searchParams.get("host") ?? (parsed.hostname.replace(/^\[(.*)\]$/, "$1") || "localhost");
  return {
    host,
    port: parsed.port === "" ? 5432 : Number(parsed.port),
    database: decodeURIComponent(parsed.pathname.replace(/^\//, "")) || user,
    user,
  };
}

export function describeAddress(address: ServerAddress): string {
  return `${address.host.includes(":") ? `[${address.host}]` : address.host}:${address.port}`;
}

export type ConnectionRole = "catalog" | "snapshot" | "replication";

export interface ConnectOptions {
  readonly role: ConnectionRole;
  /** `application_name`, so that pg_stat_activity and pg_replication_slots show who holds what. */
  readonly application: string;
  /** Whether a refused connection may be retried (see the file comment). */
  readonly resuming: boolean;
  readonly connectTimeoutMillis?: number;
}

/** A connected client with the session settings; its errors are logged, not thrown at the process. */
export async function connect(url: string, options: ConnectOptions): Promise<pg.Client> {
  const address = serverAddress(url);
  const config: pg.ClientConfig & { replication?: string } = {
    connectionString: url,
    application_name: options.application.slice(0, 63),
    options: SESSION_OPTIONS,
    connectionTimeoutMillis: options.connectTimeoutMillis ?? 10_000,
    keepAlive: true,
    ...(options.role === "replication" ? { replication: "database" } : {}),
  };
  const client = new pg.Client(config);
  // Until the owner attaches its own handler, a dropped connection must not crash the process.
  client.on("error", () => {});
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => {});
    throw connectionError(error, address, options);
  }
  return client;
}

const transientCodes = new Set(["ETIMEDOUT", "ECONNRESET", "EPIPE", "EHOSTUNREACH", "ENETUNREACH", "ENETDOWN", "EAI_AGAIN"]);
const transientStates = new Set([
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now: starting up, shutting down, in recovery
  "53300", // too_many_connections
  "53400", // configuration_limit_exceeded (max_wal_senders)
  "08000",
  "08001",
  "08003",
  "08006",
  "40001", // serialization_failure
  "40P01", // deadlock_detected
]);

function errorCode(error: unknown): string | undefined {
  if (error instanceof AggregateError) {
    for (const inner of error.errors) {
      const code = errorCode(inner);
      if (code !== undefined) return code;
    }
  }
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

export function messageOf(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return messageOf(error.errors[0]);
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}

/** A failure to connect, as a user reads it. */
export function connectionError(error: unknown, address: ServerAddress, options: Pick<ConnectOptions, "resuming" | "role">): ConnectorError {
  const where = `PostgreSQL at ${describeAddress(address)}`;
  const code = errorCode(error);
  const cause = messageOf(error);
  if (error instanceof ConnectorError) return error;
  switch (code) {
    case "ECONNREFUSED":
      return new ConnectorError(
        `cannot connect to ${where}: connection refused (is the server running? locally: bash scripts/services.sh)`,
        options.resuming,
        { cause: error },
      );
    case "ENOTFOUND":
      return new ConnectorError(`cannot connect to ${where}: unknown host ${address.host}`, options.resuming, { cause: error });
    case "28P01":
    case "28000":
      return new ConnectorError(`cannot connect to ${where} as ${address.user}: ${cause}`, false, { cause: error });
    case "3D000":
      return new ConnectorError(`cannot connect to ${where}: database "${address.database}" does not exist`, false, { cause: error });
    case "42501":
      return new ConnectorError(
        options.role === "replication"
          ? `${where}: user ${address.user} may not open a replication connection (${cause}); it needs the REPLICATION attribute (ALTER ROLE ${address.user} REPLICATION) and a pg_hba.conf line allowing "replication" connections`
          : `${where}: ${cause}`,
        false,
        { cause: error },
      );
    default: {
      const transient =
        (code !== undefined && (transientCodes.has(code) || transientStates.has(code))) ||
        /timeout|terminated|ended unexpectedly|Connection terminated/i.test(cause);
      return new ConnectorError(`cannot connect to ${where}: ${cause}`, transient, { cause: error });
    }
  }
}

/** A failure of a statement or of the stream on an open connection. */
export function queryError(error: unknown, address: ServerAddress, what: string): ConnectorError {
  if (error instanceof ConnectorError) return error;
  const code = errorCode(error);
  const cause = messageOf(error);
  const transient =
    (code !== undefined && (transientCodes.has(code) || transientStates.has(code))) ||
    /Connection terminated|ended unexpectedly|ECONNRESET|socket hang up/i.test(cause);
  return new ConnectorError(`PostgreSQL at ${describeAddress(address)}: ${what}: ${cause}`, transient, { cause: error });
}

export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function quoteLiteral(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

/** `"schema"."table"`. */
export function quoteTable(schema: string, table: string): string {
  return `${quoteIdentifier(schema)}.${quoteIdentifier(table)}`;
}

/** Ends a client, ignoring a connection that is already gone. */
export async function endQuietly(client: pg.Client | undefined): Promise<void> {
  if (client === undefined) return;
  try {
    await client.end();
  } catch {
    // already closed
  }
}
