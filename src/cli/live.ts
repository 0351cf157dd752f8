/**
 * `dts check --live FILE.dts`: the check, knowing the servers.
 *
 * The file is parsed once and checked; then, with the plan's values fixed at start resolved
 * (the URLs usually come from env()), every source and sink is asked what its connector
 * declares (capabilities.ts):
 *
 *   describe    the tables a source captures, with their columns: the parsed file is checked
 *               again knowing them, so a misspelt column is an error with a suggestion
 *               (`row.amout`: no column "amout" in public.orders; did you mean "amount"?)
 *   preflight   what the server must give the pipeline — the checks a source's start makes
 *               too, with the same DTS code — each finding printed with the checker's
 *               diagnostics, `FILE:LINE:COL: severity CODE: message`, a caret at the option
 *               it is about (or at the flow's read of `before`), and the fix as help
 *
 * A connector that declares neither is named in the summary line ("not checked live"). A
 * server that cannot be reached is not a finding: a ToolError with the connector's code (exit 3).
 */
import type { Expr, FlowDecl, PipelineFile, SinkDecl, SourceDecl, Span } from "../ast/nodes.js";
import type { ColumnInfo } from "../check/expressions.js";
import { checkParsed, parsePipelineText } from "../compile.js";
import { findingMessage, findingSeverity, type ConnectorContext, type DescribedTable, type Finding } from "../connectors/capabilities.js";
import { findSink, findSource } from "../connectors/registry.js";
import type { Diagnostic } from "../diagnostics/diagnostic.js";
import type { StaticType } from "../expr/signatures.js";
import { ConnectorError } from "../runtime/contracts.js";
import { resolveStartValues, StartValueError } from "../runtime/start-values.js";
import { dirname, resolve } from "node:path";
import { ToolError } from "./pipeline-tools.js";

export interface LiveCheck {
  /** The checker's diagnostics (with the columns known) and the findings, sorted. */
  readonly diagnostics: readonly Diagnostic[];
  /** False when the file has errors: nothing was asked. */
  readonly checked: boolean;
  /** `source shop (postgres)`: asked. */
  readonly asked: readonly string[];
  /** `sink out (jsonl)`: its connector declares nothing to check live. */
  readonly notChecked: readonly string[];
}

export async function checkLive(file: string, text: string): Promise<LiveCheck> {
  const parsed = parsePipelineText(text);
  const first = checkParsed(parsed, text, file);
  // A pipeline with errors is reported by the ordinary check; there is nothing to ask about.
  if (first.plan === undefined) return { diagnostics: first.diagnostics, checked: false, asked: [], notChecked: [] };
  const plan = first.plan;
  let values;
  try {
    values = resolveStartValues(plan);
  } catch (error) {
    if (error instanceof StartValueError) throw new ToolError(error.code, `cannot compute the connectors' options: ${error.message}`, { cause: error });
    throw error;
  }
  const declarations = first.ast.declarations;
  const context = (name: string, options: ConnectorContext["options"]): ConnectorContext => ({
    pipeline: plan.pipeline.name,
    name,
    options,
    baseDir: dirname(resolve(file)),
    tool: "dts check",
  });
  const findings: Diagnostic[] = [];
  const described = new Map<string, ColumnInfo>();
  const asked: string[] = [];
  const notChecked: string[] = [];

  for (const source of plan.sources) {
    const label = `source ${source.name} (${source.connector})`;
    const capabilities = findSource(source.connector);
    if (capabilities?.preflight === undefined && capabilities?.describe === undefined) {
      notChecked.push(label);
      continue;
    }
    asked.push(label);
    const decl = declarations.find((d): d is SourceDecl => d.kind === "source" && d.name.text === source.name)!;
    const readsBefore = beforeReads(decl.name.text, declarations);
    const sourceContext = { ...context(source.name, values.sources.get(source.name)?.options ?? {}), readsBefore: readsBefore !== undefined };
    await asking(label, async () => {
      if (capabilities.preflight !== undefined) {
        const preflight = await capabilities.preflight();
        for (const finding of await preflight(sourceContext)) findings.push(diagnostic(finding, `source ${source.name}`, spanOf(finding, decl, readsBefore)));
      }
      if (capabilities.describe !== undefined) described.set(source.name, columnInfo(await (await capabilities.describe())(sourceContext)));
    });
  }
  for (const sink of plan.sinks) {
    const label = `sink ${sink.name} (${sink.connector})`;
    const preflight = findSink(sink.connector)?.preflight;
    if (preflight === undefined) {
      notChecked.push(label);
      continue;
    }
    asked.push(label);
    const decl = declarations.find((d): d is SinkDecl => d.kind === "sink" && d.name.text === sink.name)!;
    await asking(label, async () => {
      for (const finding of await (await preflight())(context(sink.name, values.sinks.get(sink.name)?.options ?? {}))) {
        findings.push(diagnostic(finding, `sink ${sink.name}`, spanOf(finding, decl, undefined)));
      }
    });
  }

  const second = described.size === 0 ? first : checkParsed(parsed, text, file, { columns: (name) => described.get(name) });
  const diagnostics = [...second.diagnostics, ...findings].sort((a, b) => a.span.start - b.span.start || (a.severity === b.severity ? 0 : a.severity === "error" ? -1 : 1));
  return { diagnostics, checked: true, asked, notChecked };
}

/** A server that cannot be reached ends the check: exit 3, one line naming the connector. */
async function asking(label: string, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (error) {
    if (error instanceof ConnectorError) throw new ToolError(error.code, `${label.replace(/ \(.*\)$/, "")}: ${error.message}`, { cause: error });
    throw error;
  }
}

function diagnostic(finding: Finding, who: string, span: Span): Diagnostic {
  return {
    code: finding.code,
    severity: findingSeverity(finding),
    span,
    message: `${who}: ${findingMessage(finding)}`,
    notes: [],
    ...(finding.fix !== undefined ? { help: finding.fix } : {}),
  };
}

function spanOf(finding: Finding, decl: SourceDecl | SinkDecl, before: Span | undefined): Span {
  if (finding.about === "before") return before ?? decl.name.span;
  if (finding.about !== undefined) {
    for (const entry of decl.options.entries) if (entry.kind === "field" && entry.name.text === finding.about.option) return entry.value.span;
  }
  return decl.name.span;
}

/** The union of the tables' columns; a name with different types in two tables is "any". */
function columnInfo(tables: readonly DescribedTable[]): ColumnInfo {
  const columns = new Map<string, StaticType>();
  for (const table of tables) {
    for (const column of table.columns) {
      const known = columns.get(column.name);
      columns.set(column.name, known === undefined || known === column.valueType ? column.valueType : "any");
    }
  }
  return { columns, tables: tables.map((t) => t.name) };
}

/** Where a flow from `source` (its steps, or the options of the sinks it feeds) first reads `before`. */
function beforeReads(source: string, declarations: PipelineFile["declarations"]): Span | undefined {
  for (const flow of declarations.filter((d): d is FlowDecl => d.kind === "flow" && d.source.text === source)) {
    const sinks = declarations.filter((d): d is SinkDecl => d.kind === "sink" && flow.sinks.some((s) => s.text === d.name.text));
    const found = findIdentifier(flow.steps, "before") ?? findIdentifier(sinks.map((s) => s.options), "before");
    if (found !== undefined) return found;
  }
  return undefined;
}

function findIdentifier(node: unknown, name: string): Span | undefined {
  if (Array.isArray(node)) {
    for (const item of node) {
      const found = findIdentifier(item, name);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (typeof node !== "object" || node === null) return undefined;
  const expr = node as Expr;
  if (expr.kind === "identifier" && expr.name === name) return expr.span;
  for (const [key, value] of Object.entries(node)) {
    if (key === "span") continue;
    const found = findIdentifier(value, name);
    if (found !== undefined) return found;
  }
  return undefined;
}
