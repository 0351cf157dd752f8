/**
 * Retrying connector calls. Only an error with `retriable: true` (a `ConnectorError`, in
 * practice) is retried: the connector is the one that knows a dropped connection from a bad
 * password.
 *
 * The budget is a time, not a count: an outage — from the first failure to the next success —
 * may last `retryForMs` (a connector's `retry_for`, else the pipeline's; 10 minutes unless
 * set; `Infinity` for "forever"), and then it is fatal, with an error saying how long it
 * lasted and the last cause, instead of a pipeline that looks alive and does nothing. A count
 * would not do: the same ten attempts are used up in seconds or in minutes depending on how
 * each one fails (a refused connection at once, a timeout after ten seconds), and a server's
 * restart takes the same time however often one knocks.
 *
 * Delays grow exponentially from `initialDelayMs`, capped at `maxDelayMs`, with "full jitter"
 * (a random delay between 0 and the current bound, as in the AWS architecture blog's analysis),
 * so that many pipelines that lost the same server do not reconnect in lockstep; the last
 * delay is cut so that the last attempt falls on the end of the budget, not after it. A server
 * that said when to come back (an HTTP 429's `Retry-After`, as `ConnectorError.retryAfterMs`)
 * is waited for at least that long, within the budget. Every
 * retry logs how long the connector has been down and how much of its budget is left.
 */
import { formatDuration } from "../model/duration.js";
import { ConnectorError, type Logger } from "./contracts.js";
import { DtsError } from "../diagnostics/errors.js";

export interface RetryPolicy {
  /** How long an outage may last, from its first failure, before it is fatal; `Infinity`: forever. */
  readonly retryForMs: number;
  /** The bound of the first delay; each next bound is twice the last, up to `maxDelayMs`. */
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
}

export const DEFAULT_RETRY_FOR_MS = 10 * 60_000;

/** A restored server is found within 10 s at most, and a lost one is not knocked at more than five times a second. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = { retryForMs: DEFAULT_RETRY_FOR_MS, initialDelayMs: 200, maxDelayMs: 10_000 };

/** Only dts's own errors say whether trying again may help; any other error is not retried. */
export function isRetriable(error: unknown): boolean {
  return error instanceof DtsError && error.retriable;
}

/** The delay before retry number `retry` (1 for the first retry), jittered. */
export function backoffDelay(policy: Pick<RetryPolicy, "initialDelayMs" | "maxDelayMs">, retry: number, random: () => number = Math.random): number {
  const bound = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.min(retry - 1, 30));
  return Math.round(bound * random());
}

/** What one failure in an outage means: wait and try again, or give up. */
export interface OutageStep {
  /** Failures in this outage so far, this one included. */
  readonly attempts: number;
  /** Since the first failure of the outage. */
  readonly downMs: number;
  /** Of the budget; `Infinity` for "forever"; 0 or less when it is used up. */
  readonly leftMs: number;
  /** Before the next attempt. */
  readonly delayMs: number;
  readonly giveUp: boolean;
}

/** One connector's outages: each from its first failure to the next success. */
export class Outage {
  private since: number | undefined;
  private attempts = 0;

  constructor(
    readonly policy: RetryPolicy,
    private readonly now: () => number = () => performance.now(),
    private readonly random: () => number = Math.random,
  ) {}

  /** A failure happened: how long the outage has lasted, and whether to try again. */
  failed(): OutageStep {
    const now = this.now();
    this.since ??= now;
    this.attempts++;
    const downMs = now - this.since;
    const leftMs = this.policy.retryForMs - downMs;
    const giveUp = leftMs <= 0;
    const delayMs = giveUp ? 0 : Math.min(backoffDelay(this.policy, this.attempts, this.random), leftMs);
    return { attempts: this.attempts, downMs, leftMs, delayMs, giveUp };
  }

  /** A success: the outage, if any, is over. */
  recovered(): void {
    this.since = undefined;
    this.attempts = 0;
  }

  get active(): boolean {
    return this.since !== undefined;
  }
}

/** Thrown when an outage outlasted its budget; `cause` is the last error. */
export class RetriesExhaustedError extends ConnectorError {
  constructor(
    readonly what: string,
    readonly step: OutageStep,
    readonly retryForMs: number,
    cause: unknown,
  ) {
    super(
      retryForMs === 0
        ? `${what} failed, and retry_for is 0 (no retries); last error: ${messageOf(cause)}`
        : `${what} failed for ${formatDuration(step.downMs)} (${step.attempts} attempts), longer than its retry_for of ` +
            `${formatDuration(retryForMs)}; last error: ${messageOf(cause)}`,
      false,
      { cause, code: "DTS7103" },
    );
    this.name = "RetriesExhaustedError";
  }
}

/** The fields of a retry's log record: how long it has been down, how long is left. */
export function retryFields(step: OutageStep, error: unknown): Record<string, unknown> {
  return {
    attempt: step.attempts,
    down_for: formatDuration(step.downMs),
    left: formatDuration(step.leftMs),
    delay_ms: step.delayMs,
    error: messageOf(error),
  };
}

/**
 * Calls `operation` until it succeeds, a non-retriable error is thrown (rethrown as is), the
 * outage outlasts the policy's budget (`RetriesExhaustedError`), or `signal` aborts (the last
 * error is rethrown: the caller is stopping anyway). `onRetry` is told of each retry, e.g. to
 * count it. With `outage`, failures count towards that outage, which its owner ends (a sink's
 * next successful write, a source's next batch); without, the outage is this call's own.
 */
export async function withRetry<T>(
  what: string,
  operation: () => Promise<T>,
  options: { policy: RetryPolicy; log: Logger; signal?: AbortSignal; onRetry?: (error: unknown) => void; outage?: Outage },
): Promise<T> {
  const { policy, log, signal } = options;
  const outage = options.outage ?? new Outage(policy);
  for (;;) {
    try {
      const result = await operation();
      if (options.outage === undefined) outage.recovered();
      return result;
    } catch (error) {
      if (!isRetriable(error)) throw error;
      if (signal?.aborted) throw error;
      const failed = outage.failed();
      if (failed.giveUp) throw new RetriesExhaustedError(what, failed, outage.policy.retryForMs, error);
      const step = honourRetryAfter(failed, error);
      log.warn(`${what} failed; retrying`, retryFields(step, error));
      options.onRetry?.(error);
      await sleep(step.delayMs, signal);
    }
  }
}

/** A server that said when to come back (`retryAfterMs`) is not knocked at before, budget permitting. */
function honourRetryAfter(step: OutageStep, error: unknown): OutageStep {
  const after = error instanceof ConnectorError ? error.retryAfterMs : undefined;
  if (after === undefined || after <= step.delayMs) return step;
  return { ...step, delayMs: Math.min(after, step.leftMs) };
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
