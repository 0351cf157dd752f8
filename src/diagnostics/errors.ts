/**
 * The errors of a run and of the tools, as one hierarchy: every error dts throws on purpose is
 * a `DtsError` with a stable code, whether trying again may help (`retriable`), the error it
 * wraps (`cause`), and the exit code it ends a process with. The exit code is decided here, by
 * the code, and nowhere else: `dts-run`, `dts` and its tools call `exitCodeOf`, and a new
 * error is a new line of `runtimeErrors` rather than a new branch in each command.
 *
 * The codes share the numbering of the diagnostics catalogue (catalogue.ts, DTS1xxx–DTS6xxx,
 * what a compile or a preflight reports) and go on from it:
 *
 *   DTS70xx  the pipeline cannot start or the command cannot run     exit 1 or 2
 *   DTS71xx  a connector (or the checkpoint store) failed            exit 3
 *   DTS72xx  an event was rejected                                   exit 4
 *
 * This module imports nothing, so every layer may use it (the value model's decoders, the
 * expression evaluator, the runtime, the connectors, the CLI). Plain value parsers stay plain:
 * `JsonSyntaxError` is the analogue of `JSON.parse`'s SyntaxError, and whoever reads data
 * wraps it in the error of its place (a connector in a `ConnectorError`).
 */

/** What a process ends with; docs/running.md lists them. */
export const EXIT = {
  ok: 0,
  /** The pipeline is invalid or cannot start; a tool found a difference or was refused. */
  invalid: 1,
  /** Bad usage: an unknown option, no file, a file that cannot be read. */
  usage: 2,
  /** A connector, its server or the checkpoint store failed for good. */
  connector: 3,
  /** An event was rejected and there is no dead_letter sink. */
  rejected: 4,
  /** A bug in dts: an error that is not a DtsError. */
  internal: 70,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

interface ErrorEntry {
  readonly exit: ExitCode;
  /** What the code means, for docs/running.md and for someone grepping a log. */
  readonly meaning: string;
}

const entries = {
  DTS7001: { exit: EXIT.invalid, meaning: "a value fixed at start cannot be computed (an unset env() variable, a bad duration, an unreadable schema)" },
  DTS7002: { exit: EXIT.invalid, meaning: "another run of the pipeline holds its lock" },
  DTS7003: { exit: EXIT.invalid, meaning: "the pipeline file has errors (a tool was given a file that does not compile)" },
  DTS7004: { exit: EXIT.usage, meaning: "the pipeline file cannot be read" },
  DTS7005: { exit: EXIT.invalid, meaning: "an expression cannot be compiled or evaluated at start (per event it is a rejection, DTS7201)" },
  DTS7006: { exit: EXIT.invalid, meaning: "a tool was refused: the pipeline runs, or the user did not confirm" },
  DTS7101: { exit: EXIT.connector, meaning: "a connector failed, and trying again would not help (a bad password, a missing privilege)" },
  DTS7102: { exit: EXIT.connector, meaning: "a connector failed in a way that may pass (a dropped connection, a deadlock); retried, and fatal only unretried" },
  DTS7103: { exit: EXIT.connector, meaning: "an outage outlasted its retry_for" },
  DTS7104: { exit: EXIT.connector, meaning: "the connector is specified but not built yet" },
  DTS7105: { exit: EXIT.connector, meaning: "a table the connector needs does not exist" },
  DTS7106: { exit: EXIT.connector, meaning: "the source's change stream cannot be read (a protocol message dts does not understand)" },
  DTS7107: { exit: EXIT.connector, meaning: "a value the source sent cannot be decoded" },
  DTS7108: { exit: EXIT.connector, meaning: "a change event read back (a jsonl line) is not a valid event" },
  DTS7109: { exit: EXIT.connector, meaning: "the run lost the pipeline's lock and another run took it" },
  DTS7201: { exit: EXIT.rejected, meaning: "an event was rejected (by a step or by a sink) and there is no dead_letter sink" },
  DTS7202: { exit: EXIT.rejected, meaning: "a step refused an event (a non-boolean filter, a map that gives no record, a failed validate)" },
  DTS7203: { exit: EXIT.rejected, meaning: "a value cannot be written into its sink column" },
  DTS7204: { exit: EXIT.rejected, meaning: "an event has a column its sink table does not have" },
} satisfies Record<string, ErrorEntry>;

export type ErrorCode = keyof typeof entries;

/** Every runtime error code, its exit code and its meaning: the one place exit codes are decided. */
export const runtimeErrors: Readonly<Record<ErrorCode, ErrorEntry>> = entries;

export interface DtsErrorOptions {
  readonly cause?: unknown;
  /** Whether trying again may succeed; false unless said. */
  readonly retriable?: boolean;
}

/** The base of every error dts throws on purpose. */
export class DtsError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;

  constructor(code: ErrorCode, message: string, options: DtsErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "DtsError";
    this.code = code;
    this.retriable = options.retriable ?? false;
  }

  /** What a process that ends on this error exits with. */
  get exitCode(): ExitCode {
    return runtimeErrors[this.code].exit;
  }
}

/**
 * Errors a connector throws. `retriable` errors (a dropped connection, a deadlock) are retried
 * with backoff; the others stop the pipeline with the message and the last durable position.
 * The code defaults by `retriable` (DTS7102 or DTS7101); a connector may name a closer one of
 * the DTS71xx codes.
 */
export class ConnectorError extends DtsError {
  /**
   * The least time the server asked to be left alone before the next attempt (an HTTP
   * `Retry-After`): the retry waits at least this long, within the retry budget.
   */
  readonly retryAfterMs: number | undefined;

  constructor(message: string, retriable: boolean, options?: { cause?: unknown; code?: ErrorCode; retryAfterMs?: number }) {
    super(options?.code ?? (retriable ? "DTS7102" : "DTS7101"), message, { cause: options?.cause, retriable });
    this.name = "ConnectorError";
    this.retryAfterMs = options?.retryAfterMs;
  }
}

/**
 * The exit code a process ends with when `error` stops it: a DtsError's own; an error that
 * wraps one (a run's failure, whose cause is the first error) that one's; anything else is a
 * bug in dts.
 */
export function exitCodeOf(error: unknown): ExitCode {
  return error instanceof DtsError ? error.exitCode : EXIT.internal;
}

/** The code `error` carries, or undefined for an error that is not a DtsError. */
export function errorCodeOf(error: unknown): ErrorCode | undefined {
  return error instanceof DtsError ? error.code : undefined;
}
