/**
 * Why a run stopped before its end, as the CLI needs it: one kind per exit code, and a message
 * that names what to look at (the connector, the event, the variable) in one line.
 *
 *   start     a value fixed at start cannot be computed (unset env variable, unreadable
 *             schema file): the pipeline as configured is invalid; or another run of
 *             the pipeline holds its lock (run-lock.ts): it cannot start     → exit 1
 *   connector a connector (or the checkpoint store) failed for good, or is specified but
 *             not built yet                                                  → exit 3
 *   rejected  an event was rejected (by a step or by a sink) and the pipeline has no
 *             dead_letter sink                                               → exit 4
 */
import { encodeJson } from "../model/json.js";
import type { ChangeEvent } from "../model/event.js";
import { qualifiedTableName } from "../model/event.js";
import type { SourceCheckpoint } from "./contracts.js";

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

/** The run stopped on an error; `summary` holds the last durable position of each source. */
export class PipelineFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
    readonly summary: RunSummary | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "PipelineFailure";
  }
}

/** An event was rejected and there is no dead-letter sink to take it. */
export class RejectedEventError extends Error {
  constructor(
    readonly event: ChangeEvent,
    readonly reason: string,
    readonly where: string,
  ) {
    super(`${where} rejected ${describeEvent(event)}: ${reason}`);
    this.name = "RejectedEventError";
  }
}

/** `insert on shop.orders key {"id":7} at seq 123`: enough to find the event again. */
export function describeEvent(event: ChangeEvent): string {
  const position = event.source.position;
  return `the ${event.op} on ${qualifiedTableName(event.source)} key ${encodeJson(event.key)} at ${position.kind} ${position.token}`;
}
