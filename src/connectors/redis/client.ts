/**
 * Opening an ioredis connection for dts, and telling Redis's errors apart.
 *
 * The client never queues a command while it is disconnected (`enableOfflineQueue: false`) and
 * never resends one after a reconnect (`maxRetriesPerRequest: 0`): a write then fails at once
 * with a retriable ConnectorError, the runner retries it with backoff within `retry_for`, and
 * the source waits — so an outage holds no growing queue of commands in memory, and a write is
 * only ever applied by the attempt that the runner knows about. ioredis reconnects by itself in
 * the background, at most a second apart; its ready check waits out a server still loading its
 * data after a restart.
 *
 * Errors: a dropped or refused connection, and a server that cannot serve now (LOADING,
 * BUSY, OOM, READONLY, MASTERDOWN, TRYAGAIN), are retriable; anything else (NOAUTH, NOPERM,
 * WRONGTYPE) is fatal. Messages name the server as its URL without the password.
 */
import { Redis } from "ioredis";
import { ConnectorError, type Logger } from "../../runtime/contracts.js";

/** The URL without its password, for messages. */
export function serverLabel(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.password = "";
    return parsed.toString().replace(/\/$/, "");
  } catch {
    return "the Redis server (unparsable URL)";
  }
}

const RETRIABLE_REPLIES = /^(LOADING|BUSY|OOM|READONLY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN|NOREPLICAS)\b/;

export function isRetriable(error: unknown): boolean {
  const message = (error as Error | undefined)?.message ?? "";
  if ((error as { name?: string } | undefined)?.name === "ReplyError") return RETRIABLE_REPLIES.test(message);
  // Not a reply: the socket (ECONNREFUSED, ECONNRESET, "Connection is closed.", "Stream isn't
  // writeable…", a command timeout).
  return true;
}

/** ioredis's words for "the connection is down", which name its options rather than the problem. */
const CONNECTION_DOWN = /^(Connection is closed|Stream isn't writeable|Reached the max retries per request limit)/;

/** A ConnectorError for `error`, retriable when the connection or the server's state is to blame. */
export function connectorError(error: unknown, server: string, doing: string, lastSocketError?: Error): ConnectorError {
  if (error instanceof ConnectorError) return error;
  let message = (error as Error | undefined)?.message ?? String(error);
  if (CONNECTION_DOWN.test(message)) message = `the connection is down${lastSocketError !== undefined ? ` (${lastSocketError.message})` : ""}`;
  const hint = /^(NOAUTH|WRONGPASS)/.test(message)
    ? "; put the user and password in the url: redis://user:password@host:port"
    : /^NOPERM/.test(message)
      ? "; give the user the command and the keys in its ACL"
      : "";
  return new ConnectorError(`${doing} on ${server}: ${message}${hint}`, isRetriable(error), { cause: error });
}

export interface ConnectOptions {
  /** `CLIENT SETNAME`: how the connection shows in CLIENT LIST. */
  readonly name: string;
  readonly log?: Logger;
}

/**
 * A connected client. Connecting is retried by the caller (a retriable error); once connected,
 * losing the connection is logged once, and its return.
 */
export async function connect(url: string, options: ConnectOptions): Promise<Redis> {
  const server = serverLabel(url);
  const client = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectionName: options.name.replace(/[^\x21-\x7e]/g, "_"),
    connectTimeout: 10_000,
    commandTimeout: 120_000,
    retryStrategy: (times) => Math.min(100 * times, 1000),
  });
  let down = false;
  let lastError: Error | undefined;
  client.on("error", (error: Error) => {
    lastError = error;
    if (down) return;
    down = true;
    options.log?.warn(`lost the connection to ${server}; reconnecting in the background`, { error: error.message });
  });
  client.on("ready", () => {
    if (!down) return;
    down = false;
    options.log?.info(`connected to ${server} again`);
  });
  try {
    await client.connect();
  } catch (error) {
    client.disconnect();
    const converted = connectorError(error, server, "cannot connect", lastError);
    throw new ConnectorError(converted.message.replace(/^cannot connect on /, "cannot connect to "), converted.retriable, { cause: error });
  }
  return client;
}
