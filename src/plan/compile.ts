/**
 * Checked pipeline → plan. Options are listed whole (written ones, then defaults), so the
 * runtime never consults a spec; constants are inlined and everything else is kept as an
 * expression with its timing and source text. Ids are derived from names and file order
 * only, so a plan changes when the pipeline's meaning changes, not when a comment moves.
 */
import type { Expr, FlowDecl, Step } from "../ast/nodes.js";
import type { CheckedConnector, CheckedPipeline } from "../check/check.js";
import { toPlanExpr } from "./expr.js";
import { quoteSource } from "./source-text.js";
import { PLAN_VERSION, type FlowPlan, type OptionPlan, type Plan, type StepPlan } from "./types.js";

export function compilePlan(checked: CheckedPipeline, text: string): Plan {
  const slice = (expr: { span: { start: number; end: number } }) => quoteSource(text.slice(expr.span.start, expr.span.end));
  const valueOf = (expr: Expr, timing: "start" | "event"): OptionPlan => {
    const value = checked.staticValue(expr);
    return value.known ? { constant: value.value } : { expr: toPlanExpr(expr), timing, text: slice(expr) };
  };
  const connector = (c: CheckedConnector, prefix: "source" | "sink") => {
    const options: Record<string, OptionPlan> = {};
    for (const [name, spec] of Object.entries(c.spec.options)) {
      const written = c.options.get(name);
      const secret = spec.secret === true ? { secret: true as const } : {};
      if (written !== undefined) options[name] = { ...valueOf(written.field.value, spec.timing), ...secret };
      else if (spec.default !== undefined) options[name] = { constant: spec.default, ...secret };
    }
    return { id: `${prefix}:${c.decl.name.text}`, name: c.decl.name.text, connector: c.spec.name, options };
  };
  const flows = checked.flows.map((flow, index): FlowPlan => compileFlow(flow, index + 1, slice));
  // A let that a secret option reads (directly or through other lets) is a secret too.
  const letValues = new Map(checked.lets.map((decl) => [decl.name.text, decl.value]));
  const secretLets = new Set<string>();
  const markSecret = (expr: Expr): void => {
    for (const name of identifiersIn(expr)) {
      const value = letValues.get(name);
      if (value === undefined || secretLets.has(name)) continue;
      secretLets.add(name);
      markSecret(value);
    }
  };
  for (const c of [...checked.sources, ...checked.sinks]) {
    for (const option of c.options.values()) if (option.spec.secret) markSecret(option.field.value);
  }
  return {
    dts_plan: PLAN_VERSION,
    pipeline: {
      name: checked.name,
      checkpoint: checked.checkpoint,
      dead_letter: checked.deadLetter,
      retry_for: checked.retryFor,
      ...(checked.spool !== undefined ? { spool: checked.spool } : {}),
    },
    lets: checked.lets.map((decl) => ({
      name: decl.name.text,
      // A let is used in expressions, where 1.10 is an exact decimal of scale 2: a JSON
      // number would lose that, so a let holding a fraction stays an expression.
      value: holdsFraction(decl.value) ? { expr: toPlanExpr(decl.value), timing: "start" as const, text: slice(decl.value) } : valueOf(decl.value, "start"),
      ...(secretLets.has(decl.name.text) ? { secret: true as const } : {}),
    })),
    sources: checked.sources.map((c) => connector(c, "source")),
    sinks: checked.sinks.map((c) => connector(c, "sink")),
    flows,
  };
}

function compileFlow(flow: FlowDecl, number: number, slice: (node: { span: { start: number; end: number } }) => string): FlowPlan {
  const id = `flow:${number}`;
  // A step's text is what follows its "|", as the user wrote it.
  const steps = flow.steps.map((step, index): StepPlan => compileStep(step, `${id}/step:${index + 1}`, slice(step).replace(/^\|\s*/, "")));
  return { id, source: flow.source.text, steps, sinks: flow.sinks.map((sink) => sink.text) };
}

function compileStep(step: Step, id: string, oneLine: string): StepPlan {
  switch (step.kind) {
    case "filter":
      return { id, kind: "filter", condition: toPlanExpr(step.condition), text: oneLine };
    case "map":
      return { id, kind: "map", record: toPlanExpr(step.record), text: oneLine };
    case "route":
      return { id, kind: "route", target: toPlanExpr(step.target), text: oneLine };
    case "validate":
      return { id, kind: "validate", schema: step.schemaPath.value, text: oneLine };
    default: {
      const never: never = step;
      throw new Error(`unknown step ${JSON.stringify(never)}`);
    }
  }
}

function identifiersIn(expr: Expr): string[] {
  switch (expr.kind) {
    case "identifier":
      return [expr.name];
    case "template":
      return expr.parts.flatMap((part) => (typeof part === "string" ? [] : identifiersIn(part)));
    case "list":
      return expr.items.flatMap(identifiersIn);
    case "record":
      return expr.entries.flatMap((entry) => (entry.kind === "drop" ? [] : identifiersIn(entry.value)));
    case "member":
      return identifiersIn(expr.object);
    case "index":
      return [...identifiersIn(expr.object), ...identifiersIn(expr.index)];
    case "unary":
    case "isNull":
      return identifiersIn(expr.operand);
    case "binary":
      return [...identifiersIn(expr.left), ...identifiersIn(expr.right)];
    case "call":
      return expr.args.flatMap(identifiersIn);
    case "number":
    case "string":
    case "boolean":
    case "null":
      return [];
    default: {
      const never: never = expr;
      throw new Error(`unknown expression ${JSON.stringify(never)}`);
    }
  }
}

function holdsFraction(expr: Expr): boolean {
  return JSON.stringify(toPlanExpr(expr)).includes('"fractional":true');
}
