/**
 * The plan: everything the runtime needs, and nothing of the syntax. It is plain JSON
 * (printed canonically by `dts plan`, pinned by golden files), so it can be stored, diffed
 * and reviewed. Expressions appear as `PlanExpr` trees — the AST without spans — to be
 * compiled into closures by the runtime; `env()` stays a call in those trees, never resolved
 * at compile time, so a plan holds no secret that lives in the environment.
 */
import type { BinaryOperator, UnaryOperator } from "../expr/operators.js";
import type { JsonValue } from "../model/json-value.js";

export const PLAN_VERSION = 1;

export interface Plan {
  readonly dts_plan: typeof PLAN_VERSION;
  readonly pipeline: PipelinePlan;
  /** In an order where each let comes after the lets it uses. */
  readonly lets: readonly LetPlan[];
  readonly sources: readonly SourcePlan[];
  readonly sinks: readonly SinkPlan[];
  readonly flows: readonly FlowPlan[];
}

export interface PipelinePlan {
  readonly name: string;
  readonly checkpoint: CheckpointPlan;
  /** The sink that receives rejected events, or null: a rejected event stops the pipeline. */
  readonly dead_letter: string | null;
  /**
   * How long a connector may stay unreachable before the run stops, as written ("10m",
   * "forever"; model/duration.ts); a connector's own `retry_for` option wins over it.
   */
  readonly retry_for: string;
  /**
   * How a sink that falls behind the others of its source spools (sink-spool.ts); absent when
   * the file writes neither setting: `DEFAULT_SPOOL_MAX`, waiting when full.
   */
  readonly spool?: SpoolPlan;
}

/** `spool_max` as written ("0": never spool, hold the source back), and what to do at it. */
export interface SpoolPlan {
  readonly max: string;
  readonly on_full: "wait" | "stop";
}

/** A sink's spool holds at most this much unless `spool_max` says otherwise. */
export const DEFAULT_SPOOL_MAX = "1GB";

/** `file`: a path relative to the pipeline file's folder; the others live in the named sink's store. */
export type CheckpointPlan =
  | { readonly kind: "file"; readonly path: string }
  | { readonly kind: "postgres" | "mysql" | "redis"; readonly sink: string };

export interface LetPlan {
  readonly name: string;
  readonly value: OptionPlan;
  /** The let feeds an option its connector marks secret: printed plans hide its value. */
  readonly secret?: true;
}

/**
 * An option's value: a constant (validated against the connector's schema at compile time),
 * or an expression evaluated once at start or for every event.
 */
export type OptionPlan =
  | { readonly constant: JsonValue; readonly secret?: true }
  | { readonly expr: PlanExpr; readonly timing: "start" | "event"; readonly text: string; readonly secret?: true };

export interface SourcePlan {
  /** `source:NAME` */
  readonly id: string;
  readonly name: string;
  readonly connector: string;
  /**
   * Every option of the connector that has a value: the ones written, then defaults. An option
   * its spec marks secret says so (`secret: true`): a printed plan hides its value, and nothing
   * needs the spec to know.
   */
  readonly options: Readonly<Record<string, OptionPlan>>;
}

export interface SinkPlan {
  /** `sink:NAME` */
  readonly id: string;
  readonly name: string;
  readonly connector: string;
  readonly options: Readonly<Record<string, OptionPlan>>;
}

export interface FlowPlan {
  /** `flow:N`, numbered from 1 in file order. */
  readonly id: string;
  readonly source: string;
  readonly steps: readonly StepPlan[];
  readonly sinks: readonly string[];
}

export type StepPlan =
  | { readonly id: string; readonly kind: "filter"; readonly condition: PlanExpr; readonly text: string }
  | { readonly id: string; readonly kind: "map"; readonly record: PlanExpr; readonly text: string }
  | { readonly id: string; readonly kind: "route"; readonly target: PlanExpr; readonly text: string }
  /** `schema`: the path as written, relative to the pipeline file's folder. */
  | { readonly id: string; readonly kind: "validate"; readonly schema: string; readonly text: string };

/** The AST's expression tree without spans. */
export type PlanExpr =
  | { readonly kind: "number"; readonly text: string; readonly fractional: boolean }
  | { readonly kind: "string"; readonly value: string }
  | { readonly kind: "template"; readonly parts: readonly (string | PlanExpr)[] }
  | { readonly kind: "boolean"; readonly value: boolean }
  | { readonly kind: "null" }
  | { readonly kind: "list"; readonly items: readonly PlanExpr[] }
  | { readonly kind: "record"; readonly entries: readonly PlanRecordEntry[] }
  | { readonly kind: "identifier"; readonly name: string }
  | { readonly kind: "member"; readonly object: PlanExpr; readonly property: string }
  | { readonly kind: "index"; readonly object: PlanExpr; readonly index: PlanExpr }
  | { readonly kind: "unary"; readonly operator: UnaryOperator; readonly operand: PlanExpr }
  | { readonly kind: "binary"; readonly operator: BinaryOperator; readonly left: PlanExpr; readonly right: PlanExpr }
  | { readonly kind: "isNull"; readonly operand: PlanExpr; readonly negated: boolean }
  | { readonly kind: "call"; readonly callee: string; readonly args: readonly PlanExpr[] };

export type PlanRecordEntry =
  | { readonly kind: "field"; readonly name: string; readonly value: PlanExpr }
  | { readonly kind: "spread"; readonly value: PlanExpr }
  | { readonly kind: "drop"; readonly name: string };
