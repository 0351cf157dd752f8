/**
 * The kafkajs client as the kafka sink and source (and the subscription SDK) open it, and how
 * its errors become `ConnectorError`s.
 *
 * kafkajs retries on its own, and for the idempotent producer by default forever: a broker
 * that is down would then hang a write with nothing in the log. So its own retries are kept
 * short (a leader moving, a request timing out once) and anything longer fails the call as a
 * retriable `ConnectorError`, which the runner retries with its backoff and `retry_for` budget
 * and logs. kafkajs's own log goes to the run's debug level: during an outage it says the same
 * thing many times a second, and the runner's retry messages already say what happened.
 */
import { Kafka, logLevel, type KafkaConfig, type LogEntry } from "kafkajs";
import { ConnectorError, type Logger } from "../../runtime/contracts.js";

export interface ClientOptions {
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly log: Logger;
}

/** kafkajs's own retries, per call: about 5 s before a call fails and the runner takes over. */
const CLIENT_RETRY = { retries: 5, initialRetryTime: 100, maxRetryTime: 2_000 };

export function createKafka(options: ClientOptions): Kafka {
  const config: KafkaConfig = {
    clientId: options.clientId,
    brokers: [...options.brokers],
    connectionTimeout: 3_000,
    requestTimeout: 30_000,
    retry: CLIENT_RETRY,
    logLevel: logLevel.WARN,
    logCreator:
      () =>
      ({ namespace, label, log }: LogEntry) => {
        const { message, ...fields } = log;
        options.log.debug(`kafkajs ${label} ${namespace}: ${message}`, fields);
      },
  };
  return new Kafka(config);
}

interface KafkaJsError extends Error {
  readonly retriable?: boolean;
  readonly type?: string;
  readonly originalError?: unknown;
}

/**
 * Whether a kafkajs failure may pass: a broker unreachable or restarting, a leader moving, a
 * rebalance. A protocol error the broker marks final (an invalid topic name, a record too
 * large, no authorization) is not, also when kafkajs wrapped it in "retries exceeded".
 */
export function isRetriableKafkaError(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const e = current as KafkaJsError;
    if (e.name === "KafkaJSProtocolError" && e.retriable === false) return false;
    if (e.name === "KafkaJSInvalidTopic") return false;
    if (e.originalError === undefined) break;
    current = e.originalError;
  }
  return true;
}

/** The innermost kafkajs message: "retries exceeded" says less than what was retried. */
export function kafkaErrorMessage(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const e = current as KafkaJsError;
    if (!parts.includes(e.message)) parts.push(e.type !== undefined && !e.message.includes(e.type) ? `${e.message} (${e.type})` : e.message);
    current = e.originalError;
  }
  return parts.join(": ") || String(error);
}

export function kafkaError(what: string, error: unknown): ConnectorError {
  if (error instanceof ConnectorError) return error;
  return new ConnectorError(`kafka: ${what}: ${kafkaErrorMessage(error)}`, isRetriableKafkaError(error), { cause: error });
}
