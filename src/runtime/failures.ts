/**
 * Why a run stopped before its end, as the CLI needs it: the first error, whose code decides
 * the exit code (src/diagnostics/errors.ts, the one place that does), and a message that names
 * what to look at (the connector, the event, the variable) in one line. `kind` names the
 * exit code's family for a caller that does not want the number:
 *
 *   start     the pipeline as configured cannot start (DTS70xx)                 → exit 1
 *   connector a connector or the checkpoint store failed for good, or is
 *             specified but not built yet (DTS71xx; also any error that is not
 *             a DtsError: it came from a connector's or the runner's code)      → exit 3
 *   rejected  an event was rejected and there is no dead_letter sink (DTS72xx)  → exit 4
 */
import { encodeJson } from "../model/json.js";
import type { ChangeEvent } from "../model/event.js";
import { qualifiedTableName } from "../model/event.js";
import type { SourceCheckpoint } from "./contracts.js";
import { DtsError, EXIT, errorCodeOf } from "../diagnostics/errors.js";

export type FailureKind = "start" | "connector" | "rejected";

export interface SourceSummary {
  /** Events received from the source in this run. */
  readonly events: number;
  readonly batches: number;
  /** The last durable checkpoint: where the next run resumes. */
  readonly checkpoint: SourceCheckpoint | null;
}

export interface SinkSummary {
  /** Events made durable in this run (rejected ones not included). */
  readonly events: number;
  readonly writes: number;
  readonly rejected: number;
  readonly retries: number;
  /**
   * The sink's own last stored position in each source that feeds it: where it resumes. A
   * sink ahead of its source skips what it already has on the next run.
   */
  readonly positions: Readonly<Record<string, SourceCheckpoint | null>>;
}

export interface RunSummary {
  readonly pipeline: string;
  /** `end`: every source ended; `caught-up`: --until-caught-up; `signal`: stopped from outside; `failed`. */
  readonly stoppedBy: "end" | "caught-up" | "signal" | "failed";
  readonly sources: Readonly<Record<string, SourceSummary>>;
  readonly sinks: Readonly<Record<string, SinkSummary>>;
  /** Events sent to the dead-letter sink. */
  readonly deadLettered: number;
  readonly seconds: number;
}

/**
 * The run stopped on an error; `summary` holds the last durable position of each source. Its
 * code is its cause's; an error that is not a DtsError counts as a connector's failure
 * (DTS7101), as everything the runner calls outside dts's own modules is a connector.
 */
export class PipelineFailure extends DtsError {
  constructor(
    message: string,
    readonly summary: RunSummary | undefined,
    options: { cause: unknown },
  ) {
    super(errorCodeOf(options.cause) ?? "DTS7101", message, { cause: options.cause });
    this.name = "PipelineFailure";
  }

  get kind(): FailureKind {
    const exit = this.exitCode;
    return exit === EXIT.rejected ? "rejected" : exit === EXIT.connector ? "connector" : "start";
  }
}

/** An event was rejected and there is no dead-letter sink to take it. */
export class RejectedEventError extends DtsError {
  constructor(
    readonly event: ChangeEvent,
    readonly reason: string,
    readonly where: string,
    options?: { cause?: unknown },
  ) {
    super("DTS7201", `${where} rejected ${describeEvent(event)}: ${reason}`, options);
    this.name = "RejectedEventError";
  }
}

/** `insert on shop.orders key {"id":7} at seq 123`: enough to find the event again. */
export function describeEvent(event: ChangeEvent): string {
  const position = event.source.position;
  return `the ${event.op} on ${qualifiedTableName(event.source)} key ${encodeJson(event.key)} at ${position.kind} ${position.token}`;
}
