/**
 * `dts check --live FILE.dts`: the check, knowing the source databases.
 *
 * For every PostgreSQL source the tables its `tables` patterns name are described by the
 * server (src/connectors/postgres/tables.ts), and the checker is given their columns, so a
 * misspelt column is an error with a suggestion (`row.amout`: no column "amout" in
 * public.orders; did you mean "amount"?) before anything runs. The server is also asked what
 * the source will need at start-up, and what it cannot give is reported as findings, printed
 * after the checker's diagnostics in the same `FILE:LINE:COL: severity: message` form:
 *
 *   error    wal_level is not logical; the user may not replicate; a pattern matches no table
 *   warning  a flow reads `before` from a table whose REPLICA IDENTITY does not give it
 *            (DEFAULT: no before on updates and only the key on deletes; NOTHING, or no key)
 *
 * A server that cannot be reached is not a finding: `LiveCheckError`, exit code 3.
 */
import { readFile } from "node:fs/promises";
import type { Expr, FlowDecl, PipelineFile, SinkDecl, SourceDecl, Span } from "../ast/nodes.js";
import { compileText } from "../compile.js";
import type { ColumnInfo } from "../check/expressions.js";
import { describeServer, describeTables, type TableDescription } from "../connectors/postgres/tables.js";
import { LineMap } from "../diagnostics/render.js";
import type { StaticType } from "../expr/signatures.js";
import { ConnectorError } from "../runtime/contracts.js";
import { optionList, stringOptionOf, type LoadedPipeline } from "./pipeline-tools.js";
import { resolveStartValues, StartValueError } from "../runtime/start-values.js";
import { dirname, resolve } from "node:path";

export interface LiveFinding {
  readonly severity: "error" | "warning";
  readonly span: Span;
  readonly message: string;
  readonly help?: string;
}

export interface LiveInfo {
  /** For the checker: the columns of the tables each source captures. */
  readonly columns: (source: string) => ColumnInfo | undefined;
  readonly findings: readonly LiveFinding[];
  /** The findings as the user reads them (empty when there are none). */
  readonly rendered: string;
}

/** A server could not be reached (or refused us): dts check --live exits with `exitCode`. */
export class LiveCheckError extends Error {
  readonly exitCode = 3;
  constructor(message: string) {
    super(message);
    this.name = "LiveCheckError";
  }
}

export async function liveColumns(file: string): Promise<LiveInfo> {
  const text = await readFile(file, "utf8");
  const compiled = compileText(text, file);
  // A pipeline with errors is reported by the ordinary check; there is nothing to ask about.
  if (compiled.plan === undefined) return { columns: () => undefined, findings: [], rendered: "" };
  let values;
  try {
    values = resolveStartValues(compiled.plan);
  } catch (error) {
    if (error instanceof StartValueError) throw new LiveCheckError(`cannot compute the source URLs: ${error.message}`);
    throw error;
  }
  const pipeline: LoadedPipeline = { file, plan: compiled.plan, values, baseDir: dirname(resolve(file)) };
  const declarations = compiled.ast.declarations;
  const findings: LiveFinding[] = [];
  const bySource = new Map<string, ColumnInfo>();
  for (const source of compiled.plan.sources) {
    if (source.connector !== "postgres") continue;
    const decl = declarations.find((d): d is SourceDecl => d.kind === "source" && d.name.text === source.name)!;
    const url = stringOptionOf(pipeline, source, "url");
    if (url === undefined) continue;
    let server;
    try {
      server = await describeServer(url);
    } catch (error) {
      throw new LiveCheckError(`source ${source.name}: ${(error as Error).message}`);
    }
    if (server.walLevel !== "logical") {
      findings.push({
        severity: "error",
        span: decl.name.span,
        message: `source ${source.name}: the server has wal_level = ${server.walLevel}; logical replication needs wal_level = logical`,
        help: "ALTER SYSTEM SET wal_level = logical, then restart the server (locally: bash scripts/services.sh)",
      });
    }
    if (!server.replication) {
      findings.push({
        severity: "error",
        span: decl.name.span,
        message: `source ${source.name}: the user may not open replication connections`,
        help: "ALTER ROLE <user> REPLICATION",
      });
    }
    let tables: TableDescription[];
    try {
      tables = await describeTables(url, optionList(pipeline, source, "tables"));
    } catch (error) {
      if (!(error instanceof ConnectorError) || /cannot connect/.test(error.message)) throw new LiveCheckError(`source ${source.name}: ${(error as Error).message}`);
      findings.push({ severity: "error", span: optionSpan(decl, "tables") ?? decl.name.span, message: `source ${source.name}: ${error.message}` });
      continue;
    }
    bySource.set(source.name, columnInfo(tables));
    for (const table of tables) {
      if (table.keyColumns.length === 0) {
        findings.push({
          severity: "warning",
          span: optionSpan(decl, "tables") ?? decl.name.span,
          message: `source ${source.name}: ${table.qualifiedName} has no primary key and no replica identity index: its updates and deletes cannot be applied by key`,
          help: `add a primary key, or ALTER TABLE ${table.qualifiedName} REPLICA IDENTITY FULL`,
        });
      }
    }
    for (const flow of declarations.filter((d): d is FlowDecl => d.kind === "flow" && d.source.text === source.name)) {
      const reads = readsOfBefore(flow, declarations);
      if (reads === undefined) continue;
      for (const table of tables) {
        const problem = beforeProblem(table);
        if (problem === undefined) continue;
        findings.push({
          severity: "warning",
          span: reads,
          message: `this flow reads before, but ${table.qualifiedName} has ${problem}`,
          help: `ALTER TABLE ${table.qualifiedName} REPLICA IDENTITY FULL`,
        });
      }
    }
  }
  return { columns: (name) => bySource.get(name), findings, rendered: renderFindings(findings, file, text) };
}

/** The union of the tables' columns; a name with different types in two tables is "any". */
function columnInfo(tables: readonly TableDescription[]): ColumnInfo {
  const columns = new Map<string, StaticType>();
  for (const table of tables) {
    for (const column of table.columns) {
      const known = columns.get(column.name);
      columns.set(column.name, known === undefined || known === column.staticType ? column.staticType : "any");
    }
  }
  return { columns, tables: tables.map((t) => t.qualifiedName) };
}

function beforeProblem(table: TableDescription): string | undefined {
  switch (table.replicaIdentity) {
    case "full":
      return undefined;
    case "default":
      return table.primaryKey.length > 0
        ? "REPLICA IDENTITY DEFAULT: updates carry no before image and deletes only the key"
        : "no primary key and REPLICA IDENTITY DEFAULT: updates and deletes carry no before image";
    case "index":
      return "REPLICA IDENTITY USING INDEX: updates carry no before image and deletes only the index's columns";
    case "nothing":
      return "REPLICA IDENTITY NOTHING: no change carries a before image";
  }
}

/** Where a flow (its steps, or the options of the sinks it feeds) first reads `before`. */
function readsOfBefore(flow: FlowDecl, declarations: PipelineFile["declarations"]): Span | undefined {
  const sinks = declarations.filter((d): d is SinkDecl => d.kind === "sink" && flow.sinks.some((s) => s.text === d.name.text));
  return findIdentifier(flow.steps, "before") ?? findIdentifier(sinks.map((s) => s.options), "before");
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

function optionSpan(decl: SourceDecl, option: string): Span | undefined {
  for (const entry of decl.options.entries) if (entry.kind === "field" && entry.name.text === option) return entry.value.span;
  return undefined;
}

function renderFindings(findings: readonly LiveFinding[], path: string, text: string): string {
  const lines = new LineMap(text);
  return [...findings]
    .sort((a, b) => a.span.start - b.span.start)
    .map((finding) => {
      const { line, column } = lines.position(finding.span.start);
      const head = `${path}:${line}:${column}: ${finding.severity}: ${finding.message}`;
      return finding.help === undefined ? head : `${head}\n   = help: ${finding.help}`;
    })
    .join("\n");
}
