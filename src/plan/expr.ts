/**
 * AST expressions ↔ plan expressions. The plan drops spans (a plan must not change when a
 * comment moves); the runtime rebuilds an AST with empty spans to compile it, and reports
 * runtime errors with the step's `text` instead of a position.
 */
import type { Expr, RecordEntry, Span } from "../ast/nodes.js";
import type { PlanExpr, PlanRecordEntry } from "./types.js";

export function toPlanExpr(expr: Expr): PlanExpr {
  switch (expr.kind) {
    case "number":
      return { kind: "number", text: expr.text, fractional: expr.fractional };
    case "string":
      return { kind: "string", value: expr.value };
    case "template":
      return { kind: "template", parts: expr.parts.map((part) => (typeof part === "string" ? part : toPlanExpr(part))) };
    case "boolean":
      return { kind: "boolean", value: expr.value };
    case "null":
      return { kind: "null" };
    case "list":
      return { kind: "list", items: expr.items.map(toPlanExpr) };
    case "record":
      return { kind: "record", entries: expr.entries.map(toPlanEntry) };
    case "identifier":
      return { kind: "identifier", name: expr.name };
    case "member":
      return { kind: "member", object: toPlanExpr(expr.object), property: expr.property.text };
    case "index":
      return { kind: "index", object: toPlanExpr(expr.object), index: toPlanExpr(expr.index) };
    case "unary":
      return { kind: "unary", operator: expr.operator, operand: toPlanExpr(expr.operand) };
    case "binary":
      return { kind: "binary", operator: expr.operator, left: toPlanExpr(expr.left), right: toPlanExpr(expr.right) };
    case "isNull":
      return { kind: "isNull", operand: toPlanExpr(expr.operand), negated: expr.negated };
    case "call":
      return { kind: "call", callee: expr.callee.text, args: expr.args.map(toPlanExpr) };
    default: {
      const never: never = expr;
      throw new Error(`unknown expression ${JSON.stringify(never)}`);
    }
  }
}

function toPlanEntry(entry: RecordEntry): PlanRecordEntry {
  switch (entry.kind) {
    case "field":
      return { kind: "field", name: entry.name.text, value: toPlanExpr(entry.value) };
    case "spread":
      return { kind: "spread", value: toPlanExpr(entry.value) };
    case "drop":
      return { kind: "drop", name: entry.name.text };
  }
}

const nowhere: Span = { start: 0, end: 0 };

export function fromPlanExpr(expr: PlanExpr): Expr {
  const span = nowhere;
  switch (expr.kind) {
    case "number":
    case "string":
    case "boolean":
    case "null":
      return { ...expr, span } as Expr;
    case "template":
      return { kind: "template", parts: expr.parts.map((part) => (typeof part === "string" ? part : fromPlanExpr(part))), span };
    case "list":
      return { kind: "list", items: expr.items.map(fromPlanExpr), span };
    case "record":
      return {
        kind: "record",
        entries: expr.entries.map((entry): RecordEntry => {
          switch (entry.kind) {
            case "field":
              return { kind: "field", name: { text: entry.name, span }, value: fromPlanExpr(entry.value), span };
            case "spread":
              return { kind: "spread", value: fromPlanExpr(entry.value), span };
            case "drop":
              return { kind: "drop", name: { text: entry.name, span }, span };
          }
        }),
        span,
      };
    case "identifier":
      return { kind: "identifier", name: expr.name, span };
    case "member":
      return { kind: "member", object: fromPlanExpr(expr.object), property: { text: expr.property, span }, span };
    case "index":
      return { kind: "index", object: fromPlanExpr(expr.object), index: fromPlanExpr(expr.index), span };
    case "unary":
      return { kind: "unary", operator: expr.operator, operand: fromPlanExpr(expr.operand), span };
    case "binary":
      return { kind: "binary", operator: expr.operator, left: fromPlanExpr(expr.left), right: fromPlanExpr(expr.right), operatorSpan: span, span };
    case "isNull":
      return { kind: "isNull", operand: fromPlanExpr(expr.operand), negated: expr.negated, span };
    case "call":
      return { kind: "call", callee: { text: expr.callee, span }, args: expr.args.map(fromPlanExpr), span };
    default: {
      const never: never = expr;
      throw new Error(`unknown plan expression ${JSON.stringify(never)}`);
    }
  }
}
