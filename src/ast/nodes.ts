/**
 * The abstract syntax tree of a `.dts` file.
 *
 * Every node carries a `span` of character offsets into the file's text; line and column are
 * computed only when a diagnostic is printed, so nodes stay cheap and spans survive the
 * re-parsing of string interpolations (their tokens are shifted to the enclosing offset).
 * Nodes are discriminated unions on `kind`, so every consumer can `never`-check its switch.
 */

import type { BinaryOperator, UnaryOperator } from "../expr/operators.js";

export type { Span } from "../diagnostics/span.js";
import type { Span } from "../diagnostics/span.js";

export interface Name {
  readonly text: string;
  readonly span: Span;
}

// ---------------------------------------------------------------- expressions

// The operators are the language's, shared with the plan and the evaluator.
export type { BinaryOperator, UnaryOperator };

export type Expr =
  | NumberLiteral
  | StringLiteral
  | TemplateLiteral
  | BooleanLiteral
  | NullLiteral
  | ListExpr
  | RecordExpr
  | IdentifierExpr
  | MemberExpr
  | IndexExpr
  | UnaryExpr
  | BinaryExpr
  | IsNullExpr
  | CallExpr;

/** The digits are kept as written so that `0.1` stays an exact decimal and `2^63-1` stays exact. */
export interface NumberLiteral {
  readonly kind: "number";
  readonly text: string;
  /** true when written with a fraction or exponent: the value is a decimal, not an integer. */
  readonly fractional: boolean;
  readonly span: Span;
}

export interface StringLiteral {
  readonly kind: "string";
  /** The value, escapes resolved. */
  readonly value: string;
  readonly span: Span;
}

/** `"order:${row.id}"`: literal text and embedded expressions, in order. */
export interface TemplateLiteral {
  readonly kind: "template";
  readonly parts: readonly (string | Expr)[];
  readonly span: Span;
}

export interface BooleanLiteral {
  readonly kind: "boolean";
  readonly value: boolean;
  readonly span: Span;
}

export interface NullLiteral {
  readonly kind: "null";
  readonly span: Span;
}

export interface ListExpr {
  readonly kind: "list";
  readonly items: readonly Expr[];
  readonly span: Span;
}

/**
 * `{ a: 1, ...row, -b }`. Entries apply in order: a spread copies every field of a record,
 * a field sets one, a drop removes one set earlier.
 */
export interface RecordExpr {
  readonly kind: "record";
  readonly entries: readonly RecordEntry[];
  readonly span: Span;
}

export type RecordEntry = RecordField | RecordSpread | RecordDrop;

export interface RecordField {
  readonly kind: "field";
  readonly name: Name;
  readonly value: Expr;
  readonly span: Span;
}

export interface RecordSpread {
  readonly kind: "spread";
  readonly value: Expr;
  readonly span: Span;
}

export interface RecordDrop {
  readonly kind: "drop";
  readonly name: Name;
  readonly span: Span;
}

/** A bare name: an event field (`op`, `row`, `source`, ...) or a `let`. */
export interface IdentifierExpr {
  readonly kind: "identifier";
  readonly name: string;
  readonly span: Span;
}

export interface MemberExpr {
  readonly kind: "member";
  readonly object: Expr;
  readonly property: Name;
  readonly span: Span;
}

export interface IndexExpr {
  readonly kind: "index";
  readonly object: Expr;
  readonly index: Expr;
  readonly span: Span;
}

export interface UnaryExpr {
  readonly kind: "unary";
  readonly operator: UnaryOperator;
  readonly operand: Expr;
  readonly span: Span;
}

export interface BinaryExpr {
  readonly kind: "binary";
  readonly operator: BinaryOperator;
  readonly left: Expr;
  readonly right: Expr;
  /** Where the operator itself is written, for "cannot apply" diagnostics. */
  readonly operatorSpan: Span;
  readonly span: Span;
}

/** `x is null` / `x is not null`. */
export interface IsNullExpr {
  readonly kind: "isNull";
  readonly operand: Expr;
  readonly negated: boolean;
  readonly span: Span;
}

export interface CallExpr {
  readonly kind: "call";
  readonly callee: Name;
  readonly args: readonly Expr[];
  readonly span: Span;
}

// ---------------------------------------------------------------- declarations

export interface PipelineFile {
  readonly kind: "file";
  readonly declarations: readonly Declaration[];
  readonly span: Span;
}

export type Declaration = PipelineDecl | SourceDecl | SinkDecl | LetDecl | FlowDecl;

export interface PipelineDecl {
  readonly kind: "pipeline";
  readonly name: Name;
  /** null when written without a block. */
  readonly settings: RecordExpr | null;
  readonly span: Span;
}

export interface SourceDecl {
  readonly kind: "source";
  readonly name: Name;
  readonly connector: Name;
  readonly options: RecordExpr;
  readonly span: Span;
}

export interface SinkDecl {
  readonly kind: "sink";
  readonly name: Name;
  readonly connector: Name;
  readonly options: RecordExpr;
  readonly span: Span;
}

export interface LetDecl {
  readonly kind: "let";
  readonly name: Name;
  readonly value: Expr;
  readonly span: Span;
}

export interface FlowDecl {
  readonly kind: "flow";
  readonly source: Name;
  readonly steps: readonly Step[];
  readonly sinks: readonly Name[];
  readonly span: Span;
}

export type Step = FilterStep | MapStep | RouteStep | ValidateStep;

export interface FilterStep {
  readonly kind: "filter";
  readonly condition: Expr;
  readonly span: Span;
}

export interface MapStep {
  readonly kind: "map";
  readonly record: RecordExpr;
  readonly span: Span;
}

export interface RouteStep {
  readonly kind: "route";
  readonly target: Expr;
  readonly span: Span;
}

export interface ValidateStep {
  readonly kind: "validate";
  readonly schemaPath: StringLiteral;
  readonly span: Span;
}
