/**
 * AST expressions → plan expressions, one way only. The plan drops spans (a plan must not
 * change when a comment moves) and names with their own spans become plain strings. The
 * runtime compiles the plan's trees as they are (`expr/compile.ts`), so nothing turns a plan
 * back into an AST; a runtime error names its place with the step's or option's id and `text`.
 */
import type { Expr, RecordEntry } from "../ast/nodes.js";
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
