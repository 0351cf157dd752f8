/**
 * AST → checked pipeline. One pass collects the declarations (one namespace for sources,
 * sinks and lets), then each declaration is checked against it: connector options against
 * their schemas, flows against the names, steps' expressions against the event, `validate`
 * schemas against the file system. Problems are reported, never thrown, and checking goes on
 * past them so that one run shows every mistake of a file.
 */
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import type { Expr, FlowDecl, LetDecl, Name, PipelineFile, RecordExpr, SinkDecl, SourceDecl, Span } from "../ast/nodes.js";
import { connectorNames, findSpec } from "../connectors/registry.js";
import type { ConnectorSpec, Role } from "../connectors/spec.js";
import { DiagnosticBag } from "../diagnostics/diagnostic.js";
import { LineMap } from "../diagnostics/render.js";
import { didYouMean } from "../diagnostics/suggest.js";
import type { StaticType } from "../expr/signatures.js";
import type { CheckpointPlan } from "../plan/types.js";
import { describe, ExpressionChecker, type ColumnInfo } from "./expressions.js";
import { checkOptions, type CheckedOption } from "./options.js";
import { staticValue, type StaticValue } from "./static-value.js";

const require = createRequire(import.meta.url);
const Ajv2020 = require("ajv/dist/2020.js") as typeof import("ajv/dist/2020.js").default;

export interface CheckedConnector {
  readonly decl: SourceDecl | SinkDecl;
  readonly spec: ConnectorSpec;
  readonly options: ReadonlyMap<string, CheckedOption>;
}

export interface CheckedPipeline {
  readonly name: string;
  readonly checkpoint: CheckpointPlan;
  readonly deadLetter: string | null;
  /** Each let after the lets it reads. */
  readonly lets: readonly LetDecl[];
  readonly sources: readonly CheckedConnector[];
  readonly sinks: readonly CheckedConnector[];
  readonly flows: readonly FlowDecl[];
  readonly staticValue: (expr: Expr) => StaticValue;
}

export interface CheckOptions {
  /** The pipeline file's path: its base name is the default pipeline name, its folder resolves relative paths. */
  readonly path: string;
  readonly text: string;
  /** Column types per source name and table, from `dts check --live`. */
  readonly columns?: (source: string) => ColumnInfo | undefined;
}

type Declared =
  | { readonly kind: "source"; readonly decl: SourceDecl }
  | { readonly kind: "sink"; readonly decl: SinkDecl }
  | { readonly kind: "let"; readonly decl: LetDecl };

const CHECKPOINT_KINDS = ["postgres", "mysql", "redis"] as const;

export function checkPipeline(file: PipelineFile, diagnostics: DiagnosticBag, options: CheckOptions): CheckedPipeline | undefined {
  const lines = new LineMap(options.text);
  const names = new Map<string, Declared>();
  const pipelines = file.declarations.filter((d) => d.kind === "pipeline");
  for (const extra of pipelines.slice(1)) diagnostics.report("DTS2008", extra.span);

  for (const decl of file.declarations) {
    if (decl.kind !== "source" && decl.kind !== "sink" && decl.kind !== "let") continue;
    const first = names.get(decl.name.text);
    if (first !== undefined) {
      diagnostics.report("DTS2001", decl.name.span, { name: decl.name.text, line: lines.position(first.decl.name.span.start).line });
      continue;
    }
    names.set(decl.name.text, { kind: decl.kind, decl } as Declared);
  }
  const letDecls = new Map([...names.values()].filter((d) => d.kind === "let").map((d) => [d.decl.name.text, d.decl as LetDecl]));
  const used = new Set<string>();

  // Lets are typed on demand, so they may be declared in any order; a cycle is an error.
  const letTypes = new Map<string, StaticType>();
  const letOrder: LetDecl[] = [];
  const typing = new Set<string>();
  const letType = (name: string, span: Span): StaticType | undefined => {
    const decl = letDecls.get(name);
    if (decl === undefined) return undefined;
    const known = letTypes.get(name);
    if (known !== undefined) return known;
    if (typing.has(name)) {
      diagnostics.report("DTS2015", span, { name });
      return "any";
    }
    typing.add(name);
    const type = expressions.check(decl.value, { kind: "start", what: `let "${name}"` });
    typing.delete(name);
    letTypes.set(name, type);
    letOrder.push(decl);
    return type;
  };
  const expressions: ExpressionChecker = new ExpressionChecker(diagnostics, {
    letType,
    letNames: () => letDecls.keys(),
    onUse: (name) => used.add(name),
  });
  for (const [name, decl] of letDecls) letType(name, decl.name.span);

  const letValues = new Map<string, StaticValue>();
  const valueOf = (expr: Expr): StaticValue =>
    staticValue(expr, (name) => {
      const decl = letDecls.get(name);
      if (decl === undefined) return undefined;
      if (!letValues.has(name)) {
        letValues.set(name, { known: false }); // guards against cycles, already reported
        letValues.set(name, valueOf(decl.value));
      }
      return letValues.get(name);
    });

  const checkConnector = (decl: SourceDecl | SinkDecl): CheckedConnector | undefined => {
    const spec = findSpec(decl.kind, decl.connector.text);
    if (spec === undefined) {
      reportUnknownConnector(decl.kind, decl.connector, diagnostics);
      return undefined;
    }
    const checked = checkOptions(decl.options, spec, decl.connector, { diagnostics, expressions, staticValue: valueOf });
    return { decl, spec, options: checked };
  };
  const sources: CheckedConnector[] = [];
  const sinks: CheckedConnector[] = [];
  for (const declared of names.values()) {
    if (declared.kind === "let") continue;
    const checked = checkConnector(declared.decl);
    if (checked !== undefined) (declared.kind === "source" ? sources : sinks).push(checked);
  }

  const pipelineDecl = pipelines[0];
  const settings = checkSettings(pipelineDecl?.settings ?? null, names, sinks, diagnostics, expressions, valueOf);

  const flows = file.declarations.filter((d): d is FlowDecl => d.kind === "flow");
  const baseDir = path.dirname(options.path);
  for (const flow of flows) checkFlow(flow, names, settings.deadLetter, diagnostics, expressions, baseDir, options.columns);
  if (flows.length === 0 && !diagnostics.hasErrors) diagnostics.report("DTS2020", pipelineDecl?.span ?? { start: 0, end: 0 });

  for (const flow of flows) {
    used.add(flow.source.text);
    for (const sink of flow.sinks) used.add(sink.text);
  }
  if (settings.deadLetter !== null) used.add(settings.deadLetter);
  for (const [name, declared] of names) {
    if (!used.has(name)) diagnostics.report("DTS2007", declared.decl.name.span, { kind: declared.kind, name });
  }

  if (diagnostics.hasErrors) return undefined;
  return {
    name: pipelineDecl?.name.text ?? path.basename(options.path).replace(/\.dts$/, ""),
    checkpoint: settings.checkpoint,
    deadLetter: settings.deadLetter,
    lets: letOrder,
    sources,
    sinks,
    flows,
    staticValue: valueOf,
  };
}

function reportUnknownConnector(role: Role, connector: Name, diagnostics: DiagnosticBag): void {
  const other: Role = role === "source" ? "sink" : "source";
  if (findSpec(other, connector.text) !== undefined) {
    diagnostics.report("DTS2021", connector.span, { name: connector.text, kind: other, wanted: role });
    return;
  }
  const known = connectorNames(role);
  const help = didYouMean(connector.text, known) ?? `known ${role} connectors: ${known.join(", ")}`;
  diagnostics.report("DTS2009", connector.span, { kind: role, name: connector.text }, { help });
}

function checkSettings(
  settings: RecordExpr | null,
  names: ReadonlyMap<string, Declared>,
  sinks: readonly CheckedConnector[],
  diagnostics: DiagnosticBag,
  expressions: ExpressionChecker,
  valueOf: (expr: Expr) => StaticValue,
): { checkpoint: CheckpointPlan; deadLetter: string | null } {
  let checkpoint: CheckpointPlan = { kind: "file", path: ".dts-state" };
  let deadLetter: string | null = null;
  const seen = new Set<string>();
  for (const entry of settings?.entries ?? []) {
    if (entry.kind !== "field") {
      diagnostics.report("DTS3009", entry.span, { found: entry.kind === "spread" ? "a spread (...)" : "a drop (-name)" });
      continue;
    }
    const name = entry.name.text;
    if (seen.has(name)) {
      diagnostics.report("DTS2017", entry.name.span, { name });
      continue;
    }
    seen.add(name);
    if (name === "dead_letter") {
      const target = entry.value.kind === "identifier" ? entry.value.name : entry.value.kind === "string" ? entry.value.value : undefined;
      if (target === undefined) {
        diagnostics.report("DTS3003", entry.value.span, { name, expected: "the name of a sink", found: "an expression" });
        continue;
      }
      const declared = names.get(target);
      if (declared?.kind === "sink") deadLetter = target;
      else if (declared?.kind === "source") diagnostics.report("DTS2006", entry.value.span, { name: target });
      else {
        const sinkNames = [...names.values()].filter((d) => d.kind === "sink").map((d) => d.decl.name.text);
        const help = didYouMean(target, sinkNames);
        diagnostics.report("DTS2003", entry.value.span, { name: target }, help === undefined ? {} : { help });
      }
      continue;
    }
    if (name === "checkpoint") {
      const type = expressions.check(entry.value, { kind: "start", what: 'the pipeline setting "checkpoint"' });
      const value = valueOf(entry.value);
      if (!value.known || typeof value.value !== "string") {
        diagnostics.report("DTS3003", entry.value.span, { name, expected: "a string known when the file is written", found: describe(type) });
        continue;
      }
      const text = value.value;
      if (text.startsWith("file:") && text.length > 5) {
        checkpoint = { kind: "file", path: text.slice(5) };
        continue;
      }
      const kind = CHECKPOINT_KINDS.find((k) => k === text);
      if (kind === undefined) {
        const allowed = ['"file:PATH"', ...CHECKPOINT_KINDS.map((k) => `"${k}"`)].join(", ");
        const help = didYouMean(text, CHECKPOINT_KINDS);
        diagnostics.report("DTS3004", entry.value.span, { name, allowed, found: JSON.stringify(text) }, help === undefined ? {} : { help });
        continue;
      }
      const holder = sinks.find((sink) => sink.spec.name === kind);
      if (holder === undefined) {
        diagnostics.report("DTS3008", entry.value.span, { value: kind, connector: kind });
        continue;
      }
      checkpoint = { kind, sink: holder.decl.name.text };
      continue;
    }
    const help = didYouMean(name, ["checkpoint", "dead_letter"]) ?? "the settings are checkpoint and dead_letter";
    diagnostics.report("DTS3007", entry.name.span, { name }, { help });
  }
  return { checkpoint, deadLetter };
}

function checkFlow(
  flow: FlowDecl,
  names: ReadonlyMap<string, Declared>,
  deadLetter: string | null,
  diagnostics: DiagnosticBag,
  expressions: ExpressionChecker,
  baseDir: string,
  columns: CheckOptions["columns"],
): void {
  const nameList = (kind: Declared["kind"]) => [...names.values()].filter((d) => d.kind === kind).map((d) => d.decl.name.text);
  const source = names.get(flow.source.text);
  if (source === undefined) {
    const help = didYouMean(flow.source.text, nameList("source"));
    diagnostics.report("DTS2002", flow.source.span, { name: flow.source.text }, help === undefined ? {} : { help });
  } else if (source.kind === "sink") {
    diagnostics.report("DTS2005", flow.source.span, { name: flow.source.text });
  } else if (source.kind === "let") {
    diagnostics.report("DTS2002", flow.source.span, { name: flow.source.text }, { help: `"${flow.source.text}" is a let` });
  }
  const listed = new Set<string>();
  for (const sink of flow.sinks) {
    const declared = names.get(sink.text);
    if (listed.has(sink.text)) diagnostics.report("DTS2016", sink.span, { name: sink.text });
    listed.add(sink.text);
    if (declared === undefined) {
      const help = didYouMean(sink.text, nameList("sink"));
      diagnostics.report("DTS2003", sink.span, { name: sink.text }, help === undefined ? {} : { help });
    } else if (declared.kind === "source") {
      diagnostics.report("DTS2006", sink.span, { name: sink.text });
    } else if (declared.kind === "let") {
      diagnostics.report("DTS2003", sink.span, { name: sink.text }, { help: `"${sink.text}" is a let` });
    } else if (sink.text === deadLetter) {
      diagnostics.report("DTS2019", sink.span, { name: sink.text });
    }
  }

  const flowColumns = columns?.(flow.source.text);
  const checker = flowColumns === undefined ? expressions : expressions.withColumns(flowColumns);
  for (const step of flow.steps) {
    switch (step.kind) {
      case "filter": {
        const type = checker.check(step.condition, { kind: "event" });
        if (type !== "boolean" && type !== "any" && type !== "null") {
          diagnostics.report("DTS4003", step.condition.span, { found: describe(type) }, { help: 'compare it with something, e.g. row.status == "paid"' });
        }
        break;
      }
      case "map":
        checker.checkRecord(step.record, { kind: "event" });
        break;
      case "route": {
        const type = checker.check(step.target, { kind: "event" });
        if (type !== "string" && type !== "any" && type !== "null") {
          diagnostics.report("DTS4004", step.target.span, { found: describe(type) });
        }
        break;
      }
      case "validate":
        checkSchemaFile(step.schemaPath.value, step.schemaPath.span, baseDir, diagnostics);
        break;
      default: {
        const never: never = step;
        throw new Error(`unknown step ${JSON.stringify(never)}`);
      }
    }
  }
}

function checkSchemaFile(file: string, span: Span, baseDir: string, diagnostics: DiagnosticBag): void {
  const resolved = path.resolve(baseDir, file);
  if (!existsSync(resolved)) {
    diagnostics.report("DTS5001", span, { path: file }, { help: `paths are relative to the pipeline file's folder (${baseDir || "."})` });
    return;
  }
  let schema: unknown;
  try {
    schema = JSON.parse(readFileSync(resolved, "utf8"));
  } catch (error) {
    diagnostics.report("DTS5002", span, { path: file, problem: (error as Error).message });
    return;
  }
  try {
    new Ajv2020({ strict: false }).compile(schema as object);
  } catch (error) {
    diagnostics.report("DTS5003", span, { path: file, problem: (error as Error).message });
  }
}
