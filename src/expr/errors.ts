/**
 * The one error an expression raises, at compile time or per event.
 *
 * Per event it is data, not a crash: the runtime catches it and sends the event to the
 * pipeline's dead-letter sink with `message` as the reason (or stops with it). The checker
 * reports the same problems statically where it can, so at compile time this error normally
 * means the checker was bypassed (an API caller, a plan from elsewhere).
 *
 * Expressions are compiled from the plan, which has no source positions (a plan must not
 * change when a comment moves): the error points at the plan node that failed, and whoever
 * compiled the expression names the place for the user with what the plan has — the step's
 * id and text, or the option's name and text.
 */
import type { PlanExpr } from "../plan/types.js";
import { DtsError } from "../diagnostics/errors.js";

export type ExpressionErrorCode =
  /** An operand or argument of the wrong runtime type: `"a" * 2`, `lower(5)`. */
  | "type"
  /** `/` or `%` by zero (of any numeric kind; floats do not give Infinity). */
  | "division-by-zero"
  /** The right type but an unusable value: `int("abc")`, `parse_json("{")`, a bad regex. */
  | "invalid-value"
  /** A name that is neither an event field nor a `let` (compile time). */
  | "unknown-name"
  /** A call to a function the language does not have (compile time). */
  | "unknown-function"
  /** A call with too few or too many arguments (compile time). */
  | "arity"
  /** `env(NAME)` without a default, and NAME is not set. */
  | "env-unset"
  /** An expression fixed at start reads the change event, or env() arguments do. */
  | "not-at-start";

/**
 * Its DTS code is DTS7005, the exit code of an expression that fails at start: per event the
 * runtime turns it into a rejection (DTS7201), so it reaches the top unwrapped only from a
 * start. `kind` says what went wrong.
 */
export class ExpressionError extends DtsError {
  readonly kind: ExpressionErrorCode;
  /** The node that failed: for an operator, its unary or binary node; for a bad argument, the argument. */
  readonly node: PlanExpr;

  constructor(kind: ExpressionErrorCode, message: string, node: PlanExpr) {
    super("DTS7005", message);
    this.name = "ExpressionError";
    this.kind = kind;
    this.node = node;
  }
}
