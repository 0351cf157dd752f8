/**
 * dts as a library: compile a pipeline to a plan, and run a plan.
 *
 * ```ts
 * import { compileFile, runPipeline } from "dts";
 * const { plan, rendered } = await compileFile("pipelines/quickstart.dts");
 * if (plan === undefined) throw new Error(rendered);
 * const summary = await runPipeline(plan, { baseDir: "pipelines", untilCaughtUp: true });
 * ```
 */
export { compileFile, compileText, type CompileResult } from "./compile.js";
export { runPipeline, PipelineFailure, type RunOptions, type RunSummary } from "./runtime/run.js";
export { PipelineLockedError } from "./runtime/run-lock.js";
export type { Plan } from "./plan/types.js";
export type { Diagnostic } from "./diagnostics/diagnostic.js";
export { printPlanJson, printPlanDot, printPlanMermaid } from "./plan/print.js";
export type { ChangeEvent, Op, SourceInfo } from "./model/event.js";
export type { Value, Row } from "./model/value.js";
export { Decimal } from "./model/decimal.js";
export { Timestamp } from "./model/timestamp.js";
export type { Position } from "./model/position.js";
export type {
  SourceReader,
  SinkWriter,
  SourceBatch,
  SinkBatch,
  SourceContext,
  SinkContext,
  CheckpointStore,
  SourceFactory,
  SinkFactory,
  SourceCheckpoint,
  SinkEvent,
  Rejection,
  BulkRows,
  SourceTransaction,
  SnapshotProgress,
  TableSchema,
  Logger,
} from "./runtime/contracts.js";
export { ConnectorError } from "./runtime/contracts.js";
export { subscribe, type ChangeMessage, type SubscribeOptions, type Subscription } from "./sdk/index.js";
