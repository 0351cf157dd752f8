/**
 * Printers of a plan: canonical JSON (sorted keys, two-space indent, trailing newline — the
 * form golden files pin), and the graph of sources, steps and sinks as Graphviz dot or Mermaid.
 *
 * Printing is where secrets are removed: the password of a URL and every other value of an
 * option the plan marks secret (from its spec, at compile time) become "***". The in-memory plan keeps them, because the
 * runtime needs them; what is printed, stored or diffed never does.
 */
import type { JsonValue } from "../model/json-value.js";
import { lexTokens } from "../syntax/parse.js";
import { Colon, LParen, StringLiteral } from "../syntax/tokens.js";
import type { OptionPlan, Plan, PlanExpr, SinkPlan, SourcePlan } from "./types.js";

export function canonicalJson(value: unknown): string {
  return `${JSON.stringify(sortKeys(value), null, 2)}\n`;
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((key) => [key, sortKeys((value as Record<string, unknown>)[key])]),
    );
  }
  return value;
}

/** The plan as `dts plan` prints it. */
export function printPlanJson(plan: Plan): string {
  return canonicalJson(redactPlan(plan));
}

export function redactPlan(plan: Plan): Plan {
  const redact = <T extends SourcePlan | SinkPlan>(connector: T): T => {
    const options: Record<string, OptionPlan> = {};
    for (const [name, option] of Object.entries(connector.options)) {
      options[name] = option.secret === true ? redactOption(option) : option;
    }
    return { ...connector, options };
  };
  const redacted: Plan = {
    ...plan,
    lets: plan.lets.map((letPlan) => (letPlan.secret ? { ...letPlan, value: redactOption(letPlan.value) } : letPlan)),
    sources: plan.sources.map((s) => redact(s)),
    sinks: plan.sinks.map((s) => redact(s)),
  };
  // A password in a URL is a secret wherever it is written: an env() default, a let, a step.
  return hideUrlPasswords(redacted) as Plan;
}

/** A secret option or let: a constant is hidden; an expression keeps its shape and env() names, not its literals. */
function redactOption(option: OptionPlan): OptionPlan {
  if ("constant" in option) return { ...option, constant: redactValue(option.constant) };
  return { ...option, expr: redactExpr(option.expr), text: redactSourceText(option.text) };
}

function redactExpr(expr: PlanExpr): PlanExpr {
  switch (expr.kind) {
    case "string":
      return { kind: "string", value: redactString(expr.value) };
    case "template":
      return { kind: "template", parts: expr.parts.map((part) => (typeof part === "string" ? redactString(part) : redactExpr(part))) };
    case "list":
      return { kind: "list", items: expr.items.map(redactExpr) };
    case "record":
      return { kind: "record", entries: expr.entries.map((entry) => (entry.kind === "drop" ? entry : { ...entry, value: redactExpr(entry.value) })) };
    case "member":
      return { ...expr, object: redactExpr(expr.object) };
    case "index":
      return { ...expr, object: redactExpr(expr.object), index: redactExpr(expr.index) };
    case "unary":
    case "isNull":
      return { ...expr, operand: redactExpr(expr.operand) };
    case "binary":
      return { ...expr, left: redactExpr(expr.left), right: redactExpr(expr.right) };
    case "call":
      // env("NAME", default): the variable's name is not secret, its default may be.
      return { ...expr, args: expr.args.map((arg, index) => (expr.callee === "env" && index === 0 ? arg : redactExpr(arg))) };
    case "number":
    case "boolean":
    case "null":
    case "identifier":
      return expr;
    default: {
      const never: never = expr;
      throw new Error(`unknown plan expression ${JSON.stringify(never)}`);
    }
  }
}

/** The same redaction on the quoted source: every string but an env() variable name. */
function redactSourceText(text: string): string {
  const tokens = lexTokens(text);
  let out = "";
  let last = 0;
  tokens.forEach((token, index) => {
    if (token.tokenType !== StringLiteral) return;
    const isEnvName = tokens[index - 1]?.tokenType === LParen && tokens[index - 2]?.image === "env";
    const isFieldName = tokens[index + 1]?.tokenType === Colon;
    if (isEnvName || isFieldName) return;
    const body = token.image.slice(1, -1);
    const hidden = /^[a-z][a-z0-9+.-]*:\/\//i.test(body) && !body.includes("${") ? JSON.stringify(redactString(body)) : '"***"';
    out += text.slice(last, token.startOffset) + hidden;
    last = (token.endOffset ?? token.startOffset) + 1;
  });
  return out + text.slice(last);
}

const urlPassword = /([a-z][a-z0-9+.-]*:\/\/[^\s:/@"'?#]*):[^@\s/"'?#]*@/gi;

function hideUrlPasswords(value: unknown): unknown {
  if (typeof value === "string") return value.replace(urlPassword, "$1:***@");
  if (Array.isArray(value)) return value.map(hideUrlPasswords);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, hideUrlPasswords(inner)]));
  }
  return value;
}

/** A URL keeps everything but its password; any other secret text is hidden whole. */
function redactString(value: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return value.replace(urlPassword, "$1:***@");
  return value === "" ? value : "***";
}

function redactValue(value: JsonValue): JsonValue {
  if (typeof value === "string") return redactString(value);
  if (Array.isArray(value)) return value.map(redactValue);
  if (value !== null && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactValue(v)]));
  return value;
}

interface GraphNode {
  readonly id: string;
  readonly label: string;
  readonly shape: "source" | "step" | "sink";
}

function graph(plan: Plan): { nodes: GraphNode[]; edges: [string, string][] } {
  const nodes: GraphNode[] = [
    ...plan.sources.map((s): GraphNode => ({ id: s.id, label: `${s.name} (${s.connector})`, shape: "source" })),
    ...plan.sinks.map((s): GraphNode => ({ id: s.id, label: `${s.name} (${s.connector})`, shape: "sink" })),
  ];
  const edges: [string, string][] = [];
  for (const flow of plan.flows) {
    let previous = `source:${flow.source}`;
    for (const step of flow.steps) {
      nodes.push({ id: step.id, label: step.text, shape: "step" });
      edges.push([previous, step.id]);
      previous = step.id;
    }
    for (const sink of flow.sinks) edges.push([previous, `sink:${sink}`]);
  }
  if (plan.pipeline.dead_letter !== null) {
    for (const flow of plan.flows) {
      for (const step of flow.steps) if (step.kind === "validate") edges.push([step.id, `sink:${plan.pipeline.dead_letter}`]);
    }
  }
  return { nodes, edges };
}

export function printPlanDot(plan: Plan): string {
  const { nodes, edges } = graph(redactPlan(plan));
  const shapes = { source: "ellipse", step: "box", sink: "cylinder" };
  const quote = (text: string) => JSON.stringify(text);
  const lines = [`digraph ${quote(plan.pipeline.name)} {`, "  rankdir=LR;"];
  for (const node of nodes) lines.push(`  ${quote(node.id)} [label=${quote(node.label)}, shape=${shapes[node.shape]}];`);
  for (const [from, to] of edges) lines.push(`  ${quote(from)} -> ${quote(to)};`);
  lines.push("}");
  return `${lines.join("\n")}\n`;
}

export function printPlanMermaid(plan: Plan): string {
  const { nodes, edges } = graph(redactPlan(plan));
  const ids = new Map(nodes.map((node, index) => [node.id, `n${index}`]));
  const escape = (text: string) => text.replace(/"/g, "#quot;");
  const shape = (node: GraphNode) => {
    const label = `"${escape(node.label)}"`;
    return node.shape === "source" ? `([${label}])` : node.shape === "sink" ? `[(${label})]` : `[${label}]`;
  };
  const lines = ["flowchart LR"];
  for (const node of nodes) lines.push(`  ${ids.get(node.id)}${shape(node)}`);
  for (const [from, to] of edges) lines.push(`  ${ids.get(from)} --> ${ids.get(to)}`);
  return `${lines.join("\n")}\n`;
}
