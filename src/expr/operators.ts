/**
 * The operators of the expression language, by the text they are written with. They are the
 * one vocabulary the AST, the checker, the plan and the evaluator share, so they live here,
 * with no import, rather than in the AST: the plan and the evaluator do not know syntax.
 */

export type BinaryOperator =
  | "??"
  | "or"
  | "and"
  | "=="
  | "!="
  | "<"
  | "<="
  | ">"
  | ">="
  | "in"
  | "matches"
  | "+"
  | "-"
  | "*"
  | "/"
  | "%";

export type UnaryOperator = "-" | "not";
