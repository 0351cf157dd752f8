/**
 * Printers of a plan: canonical JSON (sorted keys, two-space indent, trailing newline — the
 * form golden files pin), and the graph of sources, steps and sinks as Graphviz dot or Mermaid.
 *
 * Printing is where secrets are removed: the password of a URL and every other value of an
 * option its spec marks secret become "***". The in-memory plan keeps them, because the
 * runtime needs them; what is printed, stored or diffed never does.
 */
import { findSpec } from "../connectors/registry.js";
import type { JsonValue } from "../connectors/spec.js";
import type { OptionPlan, Plan, SinkPlan, SourcePlan } from "./types.js";

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
  const redact = <T extends SourcePlan | SinkPlan>(connector: T, role: "source" | "sink"): T => {
    const spec = findSpec(role, connector.connector);
    const options: Record<string, OptionPlan> = {};
    for (const [name, option] of Object.entries(connector.options)) {
      options[name] = spec?.options[name]?.secret && "constant" in option ? { constant: redactValue(option.constant) } : option;
    }
    return { ...connector, options };
  };
  return { ...plan, sources: plan.sources.map((s) => redact(s, "source")), sinks: plan.sinks.map((s) => redact(s, "sink")) };
}

/** A URL keeps everything but its password; any other secret is hidden whole. */
function redactValue(value: JsonValue): JsonValue {
  if (typeof value === "string") {
    const url = /^([a-z][a-z0-9+.-]*:\/\/[^:/@]*):[^@/]*@/i.exec(value);
    if (url) return value.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*):[^@/]*@/i, "$1:***@");
    return /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : "***";
  }
  if (Array.isArray(value)) return value.map(redactValue);
  if (value !== null && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, typeof v === "string" ? "***" : redactValue(v)]));
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
  const { nodes, edges } = graph(plan);
  const shapes = { source: "ellipse", step: "box", sink: "cylinder" };
  const quote = (text: string) => JSON.stringify(text);
  const lines = [`digraph ${quote(plan.pipeline.name)} {`, "  rankdir=LR;"];
  for (const node of nodes) lines.push(`  ${quote(node.id)} [label=${quote(node.label)}, shape=${shapes[node.shape]}];`);
  for (const [from, to] of edges) lines.push(`  ${quote(from)} -> ${quote(to)};`);
  lines.push("}");
  return `${lines.join("\n")}\n`;
}

export function printPlanMermaid(plan: Plan): string {
  const { nodes, edges } = graph(plan);
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
