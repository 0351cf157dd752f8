/**
 * Retrying connector calls. Only a `ConnectorError` with `retriable: true` is retried: the
 * connector is the one that knows a dropped connection from a bad password. Delays grow
 * exponentially from `initialDelayMs`, capped at `maxDelayMs`, with "full jitter" (a random
 * delay between 0 and the current bound, as in the AWS architecture blog's analysis), so that
 * many pipelines that lost the same server do not reconnect in lockstep. Attempts are bounded:
 * a server that stays away turns into a fatal error carrying the last cause, instead of a
 * pipeline that looks alive and does nothing.
 */
import { ConnectorError, type Logger } from "./contracts.js";

export interface RetryPolicy {
  /** Attempts in all, the first included; 1 means no retry. */
  readonly attempts: number;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { attempts: 10, initialDelayMs: 200, maxDelayMs: 30_000 };

export function isRetriable(error: unknown): boolean {
  return error instanceof ConnectorError && error.retriable;
}

/** The delay before retry number `retry` (1 for the first retry), jittered. */
export function backoffDelay(policy: RetryPolicy, retry: number, random: () => number = Math.random): number {
  const bound = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.min(retry - 1, 30));
  return Math.round(bound * random());
}

/** Thrown when the retries are used up; `cause` is the last error. */
export class RetriesExhaustedError extends ConnectorError {
  constructor(
    readonly what: string,
    readonly attempts: number,
    cause: unknown,
  ) {
    super(`${what} failed ${attempts} times; last error: ${messageOf(cause)}`, false, { cause });
    this.name = "RetriesExhaustedError";
  }
}

/**
 * Calls `operation` until it succeeds, a non-retriable error is thrown (rethrown as is), the
 * attempts are used up (`RetriesExhaustedError`), or `signal` aborts (the last error is
 * rethrown: the caller is stopping anyway). `onRetry` is told of each retry, e.g. to count it.
 */
export async function withRetry<T>(
  what: string,
  operation: () => Promise<T>,
  options: { policy: RetryPolicy; log: Logger; signal?: AbortSignal; onRetry?: (error: unknown) => void },
): Promise<T> {
  const { policy, log, signal } = options;
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation();
    } catch (error) {
      if (!isRetriable(error)) throw error;
      if (attempt >= policy.attempts) throw new RetriesExhaustedError(what, attempt, error);
      if (signal?.aborted) throw error;
      const delay = backoffDelay(policy, attempt);
      log.warn(`${what} failed; retrying`, { attempt, of: policy.attempts, delay_ms: delay, error: messageOf(error) });
      options.onRetry?.(error);
      await sleep(delay, signal);
    }
  }
}

/** Resolves after `ms`, or at once when `signal` aborts (it never rejects). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
