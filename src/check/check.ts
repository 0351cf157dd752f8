/**
 * AST → checked pipeline. One pass collects the declarations (one namespace for sources,
 * sinks and lets), then each declaration is checked against it: connector options against
 * their schemas, flows against the names, steps' expressions against the event, `validate`
 * schemas against the file system. Problems are reported, never thrown, and checking goes on
 * past them so that one run shows every mistake of a file.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { incompleteDeclarations } from "../ast/build.js";
import type { Expr, FlowDecl, LetDecl, Name, PipelineFile, RecordExpr, SinkDecl, SourceDecl, Span } from "../ast/nodes.js";
import { connectorNames, findSpec } from "../connectors/registry.js";
import type { ConnectorSpec, Role } from "../connectors/spec.js";
import { DiagnosticBag } from "../diagnostics/diagnostic.js";
import { LineMap } from "../diagnostics/render.js";
import { closestMatch, didYouMean } from "../diagnostics/suggest.js";
import type { StaticType } from "../expr/signatures.js";
import { DEFAULT_SPOOL_MAX, type CheckpointPlan, type SpoolPlan } from "../plan/types.js";
import { parseSize, SIZE_MEANING } from "../model/size.js";
import { describe, ExpressionChecker, type ColumnInfo } from "./expressions.js";
import { findJsonSyntaxError } from "./json-syntax.js";
import { parseDuration } from "../model/duration.js";
import { checkOptions, reportBadDuration, type CheckedOption } from "./options.js";
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
  /** The pipeline's `retry_for`, as written (a duration or "forever"); `DEFAULT_RETRY_FOR` when not. */
  readonly retryFor: string;
  /** The spool settings (`spool_max`, `on_spool_full`), when the file writes either. */
  readonly spool?: SpoolPlan;
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

/** How long a connector may stay unreachable when neither it nor the pipeline says. */
export const DEFAULT_RETRY_FOR = "10m";

const SETTINGS = ["checkpoint", "dead_letter", "retry_for", "spool_max", "on_spool_full"] as const;

export function checkPipeline(file: PipelineFile, diagnostics: DiagnosticBag, options: CheckOptions): CheckedPipeline | undefined {
  const lines = new LineMap(options.text);
  const names = new Map<string, Declared>();
  const pipelines = file.declarations.filter((d) => d.kind === "pipeline");
  for (const extra of pipelines.slice(1)) {
    diagnostics.report("DTS2008", extra.span, { line: lines.position(pipelines[0]!.span.start).line }, { help: "merge their settings into one block" });
  }

  const duplicated = new Set<string>();
  for (const decl of file.declarations) {
    if (decl.kind !== "source" && decl.kind !== "sink" && decl.kind !== "let") continue;
    const first = names.get(decl.name.text);
    if (first !== undefined) {
      diagnostics.report("DTS2001", decl.name.span, { name: decl.name.text, line: lines.position(first.decl.name.span.start).line });
      duplicated.add(decl.name.text);
      continue;
    }
    names.set(decl.name.text, { kind: decl.kind, decl } as Declared);
  }
  const letDecls = new Map([...names.values()].filter((d) => d.kind === "let").map((d) => [d.decl.name.text, d.decl as LetDecl]));
  const used = new Set<string>();

  // Declarations that did not parse have had their error; what they declare and mention is
  // taken on trust, so that one mistake is reported once.
  const incomplete = incompleteDeclarations(file);
  const halfDeclared = new Set<string>();
  const nameless = new Set<string>();
  for (const decl of incomplete) {
    if (decl.kind !== undefined && decl.kind !== "pipeline" && decl.kind !== "flow") {
      if (decl.name !== undefined) halfDeclared.add(decl.name.text);
      else nameless.add(decl.kind);
    }
    for (const mention of decl.mentions) used.add(mention);
  }
  // A flow that did not parse may have meant any source and sink: none is "never used".
  const brokenFlow = incomplete.some((decl) => decl.kind === "flow");
  const resolution: Resolution = { names, duplicated, halfDeclared, nameless, used, unresolvedSource: brokenFlow, unresolvedSink: brokenFlow };

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
      const path = [...typing];
      const cycle = [...path.slice(path.indexOf(name)), name].join(" → ");
      diagnostics.report("DTS2015", span, { name, cycle }, { help: "a let may use other lets, but not in a circle" });
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
    isHalfDeclared: (name) => halfDeclared.has(name),
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
    const checked = checkOptions(decl.options, spec, decl.connector, { diagnostics, expressions, staticValue: valueOf, mention: (expr) => mentionAll(expr, used) });
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
  const settings = checkSettings(pipelineDecl?.settings ?? null, resolution, sinks, diagnostics, expressions, valueOf);

  const flows = file.declarations.filter((d): d is FlowDecl => d.kind === "flow");
  const baseDir = path.dirname(options.path);
  for (const flow of flows) checkFlow(flow, resolution, settings.deadLetter, diagnostics, expressions, baseDir, options.columns);
  const noFlow = flows.length === 0 && !incomplete.some((decl) => decl.kind === "flow");
  if (noFlow && !diagnostics.hasErrors) {
    const firstSource = [...names.values()].find((d) => d.kind === "source")?.decl.name.text ?? "SOURCE";
    const firstSink = [...names.values()].find((d) => d.kind === "sink")?.decl.name.text ?? "SINK";
    diagnostics.report("DTS2020", pipelineDecl?.span ?? { start: 0, end: 0 }, {}, { help: `add one, e.g. flow ${firstSource} -> ${firstSink}` });
  }

  for (const flow of flows) {
    used.add(flow.source.text);
    for (const sink of flow.sinks) used.add(sink.text);
  }
  if (settings.deadLetter !== null) used.add(settings.deadLetter);
  // "never used" is worth saying only about a file whose flows all make sense: a flow with an
  // unknown source or sink most likely meant the one that looks unused.
  for (const [name, declared] of noFlow ? [] : names) {
    if (used.has(name)) continue;
    if ((declared.kind === "source" && resolution.unresolvedSource) || (declared.kind === "sink" && resolution.unresolvedSink)) continue;
    diagnostics.report("DTS2007", declared.decl.name.span, { kind: declared.kind, name });
  }

  // A declaration is left out only for an error already reported; should none have been,
  // the file must still not compile as if the declaration were not there.
  const unexplained = incomplete[0];
  if (unexplained !== undefined && !diagnostics.hasErrors) diagnostics.report("DTS1016", unexplained.span);

  if (diagnostics.hasErrors) return undefined;
  return {
    name: pipelineDecl?.name.text ?? path.basename(options.path).replace(/\.dts$/, ""),
    checkpoint: settings.checkpoint,
    deadLetter: settings.deadLetter,
    retryFor: settings.retryFor,
    ...(settings.spool !== undefined ? { spool: settings.spool } : {}),
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
    diagnostics.report("DTS2021", connector.span, { name: connector.text, kind: other, wanted: role }, { help: `the ${role} connectors are ${connectorNames(role).join(", ")}` });
    return;
  }
  const known = connectorNames(role);
  const help = didYouMean(connector.text, known) ?? `known ${role} connectors: ${known.join(", ")}`;
  diagnostics.report("DTS2009", connector.span, { kind: role, name: connector.text }, { help });
}

/** What names resolve to, and what resolving them found out, shared by the checks of settings and flows. */
interface Resolution {
  readonly names: ReadonlyMap<string, Declared>;
  /** Names declared more than once: a use of one cannot be judged. */
  readonly duplicated: ReadonlySet<string>;
  /** Names declared by a declaration that did not parse. */
  readonly halfDeclared: ReadonlySet<string>;
  /** Kinds ("source", "sink", "let") of declarations that did not parse before their name: any unknown name of that kind may be theirs. */
  readonly nameless: ReadonlySet<string>;
  readonly used: Set<string>;
  unresolvedSource: boolean;
  unresolvedSink: boolean;
}

/** Every name an expression reads counts as used (for expressions not checked otherwise). */
function mentionAll(expr: Expr, used: Set<string>): void {
  const visit = (node: Expr): void => {
    switch (node.kind) {
      case "identifier":
        used.add(node.name);
        return;
      case "template":
        for (const part of node.parts) if (typeof part !== "string") visit(part);
        return;
      case "list":
        node.items.forEach(visit);
        return;
      case "record":
        for (const entry of node.entries) if (entry.kind !== "drop") visit(entry.value);
        return;
      case "member":
        visit(node.object);
        return;
      case "index":
        visit(node.object);
        visit(node.index);
        return;
      case "unary":
      case "isNull":
        visit(node.operand);
        return;
      case "binary":
        visit(node.left);
        visit(node.right);
        return;
      case "call":
        node.args.forEach(visit);
        return;
      case "number":
      case "string":
      case "boolean":
      case "null":
        return;
      default: {
        const never: never = node;
        throw new Error(`unknown expression ${JSON.stringify(never)}`);
      }
    }
  };
  visit(expr);
}

function checkSettings(
  settings: RecordExpr | null,
  resolution: Resolution,
  sinks: readonly CheckedConnector[],
  diagnostics: DiagnosticBag,
  expressions: ExpressionChecker,
  valueOf: (expr: Expr) => StaticValue,
): { checkpoint: CheckpointPlan; deadLetter: string | null; retryFor: string; spool?: SpoolPlan } {
  let checkpoint: CheckpointPlan = { kind: "file", path: ".dts-state" };
  let deadLetter: string | null = null;
  let retryFor = DEFAULT_RETRY_FOR;
  let spoolMax: string | undefined;
  let onSpoolFull: SpoolPlan["on_full"] | undefined;
  const seen = new Set<string>();
  const { names } = resolution;
  for (const entry of settings?.entries ?? []) {
    if (entry.kind !== "field") {
      diagnostics.report("DTS3009", entry.span, { found: entry.kind === "spread" ? "a spread (...)" : "a drop (-name)" });
      if (entry.kind === "spread") mentionAll(entry.value, resolution.used);
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
        diagnostics.report("DTS3011", entry.value.span, { name, expected: "the name of a sink", found: "an expression" }, { help: "name a sink of this file, e.g. dead_letter: rejected" });
        continue;
      }
      const declared = names.get(target);
      if (declared?.kind === "sink") deadLetter = target;
      else if (resolution.halfDeclared.has(target) || resolution.duplicated.has(target)) continue;
      else if (declared?.kind === "source") diagnostics.report("DTS2006", entry.value.span, { name: target });
      else {
        const sinkNames = [...names.values()].filter((d) => d.kind === "sink").map((d) => d.decl.name.text);
        reportUnknown("DTS2003", entry.value.span, target, sinkNames, resolution, diagnostics);
      }
      continue;
    }
    if (name === "checkpoint") {
      const type = expressions.check(entry.value, { kind: "start", what: 'the pipeline setting "checkpoint"' });
      const value = valueOf(entry.value);
      if (!value.known || typeof value.value !== "string") {
        diagnostics.report("DTS3011", entry.value.span, { name, expected: "a string known when the file is written", found: describe(type) });
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
        diagnostics.report("DTS3011", entry.value.span, { name, expected: `one of ${allowed}`, found: JSON.stringify(text) }, help === undefined ? {} : { help });
        continue;
      }
      const holder = sinks.find((sink) => sink.spec.name === kind);
      if (holder === undefined) {
        diagnostics.report(
          "DTS3008",
          entry.value.span,
          { value: kind, connector: kind },
          { help: `the position is stored inside a ${kind} sink, in the same transaction as the data; without one, use "file:.dts-state"` },
        );
        continue;
      }
      checkpoint = { kind, sink: holder.decl.name.text };
      continue;
    }
    if (name === "retry_for") {
      const type = expressions.check(entry.value, { kind: "start", what: 'the pipeline setting "retry_for"' });
      const value = valueOf(entry.value);
      if (!value.known) {
        diagnostics.report("DTS3011", entry.value.span, { name, expected: "a duration known when the file is written", found: describe(type) }, { help: 'write it in the file, e.g. retry_for: "10m"; a connector\'s own retry_for may read env()' });
        continue;
      }
      if (typeof value.value !== "string" || !parseDuration(value.value).ok) {
        reportBadDuration(diagnostics, entry.value.span, 'the pipeline setting "retry_for"', value.value);
        continue;
      }
      retryFor = value.value;
      continue;
    }
    if (name === "spool_max" || name === "on_spool_full") {
      const type = expressions.check(entry.value, { kind: "start", what: `the pipeline setting "${name}"` });
      const value = valueOf(entry.value);
      const expected = name === "spool_max" ? `${SIZE_MEANING}, known when the file is written` : '"wait" or "stop"';
      if (!value.known || typeof value.value !== "string") {
        diagnostics.report("DTS3011", entry.value.span, { name, expected, found: describe(type) });
        continue;
      }
      if (name === "spool_max") {
        const parsed = parseSize(value.value);
        if (!parsed.ok) {
          diagnostics.report("DTS3011", entry.value.span, { name, expected, found: JSON.stringify(value.value) }, { help: parsed.problem });
          continue;
        }
        spoolMax = value.value;
      } else {
        if (value.value !== "wait" && value.value !== "stop") {
          diagnostics.report("DTS3011", entry.value.span, { name, expected, found: JSON.stringify(value.value) });
          continue;
        }
        onSpoolFull = value.value;
      }
      continue;
    }
    const help = didYouMean(name, SETTINGS) ?? `the settings are ${SETTINGS.join(", ")}`;
    diagnostics.report("DTS3007", entry.name.span, { name }, { help });
    mentionAll(entry.value, resolution.used);
  }
  const spool = spoolMax === undefined && onSpoolFull === undefined ? undefined : { max: spoolMax ?? DEFAULT_SPOOL_MAX, on_full: onSpoolFull ?? "wait" };
  return { checkpoint, deadLetter, retryFor, ...(spool !== undefined ? { spool } : {}) };
}

/** Reports an unknown source or sink; a "did you mean" names the one meant, which is then not "never used". */
function reportUnknown(code: "DTS2002" | "DTS2003", span: Span, name: string, candidates: readonly string[], resolution: Resolution, diagnostics: DiagnosticBag, help?: string): void {
  const match = closestMatch(name, candidates);
  if (match !== undefined) resolution.used.add(match);
  else if (code === "DTS2002") resolution.unresolvedSource = true;
  else resolution.unresolvedSink = true;
  const text = help ?? (match === undefined ? undefined : `did you mean "${match}"?`);
  diagnostics.report(code, span, { name }, text === undefined ? {} : { help: text });
}

function checkFlow(
  flow: FlowDecl,
  resolution: Resolution,
  deadLetter: string | null,
  diagnostics: DiagnosticBag,
  expressions: ExpressionChecker,
  baseDir: string,
  columns: CheckOptions["columns"],
): void {
  const { names } = resolution;
  const nameList = (kind: Declared["kind"]) => [...names.values()].filter((d) => d.kind === kind).map((d) => d.decl.name.text);
  const unsure = (name: string) => resolution.halfDeclared.has(name) || resolution.duplicated.has(name);
  const source = names.get(flow.source.text);
  if (unsure(flow.source.text)) {
    // its declaration has an error of its own
  } else if (source === undefined) {
    if (!resolution.nameless.has("source")) reportUnknown("DTS2002", flow.source.span, flow.source.text, nameList("source"), resolution, diagnostics);
  } else if (source.kind === "sink") {
    diagnostics.report("DTS2005", flow.source.span, { name: flow.source.text });
  } else if (source.kind === "let") {
    const sources = nameList("source");
    reportUnknown("DTS2002", flow.source.span, flow.source.text, [], resolution, diagnostics, `"${flow.source.text}" is a let; the sources are ${sources.join(", ") || "not declared yet"}`);
  }
  const listed = new Set<string>();
  for (const sink of flow.sinks) {
    const declared = names.get(sink.text);
    if (listed.has(sink.text)) diagnostics.report("DTS2016", sink.span, { name: sink.text }, { help: "each sink receives every event of the flow once" });
    listed.add(sink.text);
    if (unsure(sink.text)) continue;
    if (declared === undefined) {
      if (!resolution.nameless.has("sink")) reportUnknown("DTS2003", sink.span, sink.text, nameList("sink"), resolution, diagnostics);
    } else if (declared.kind === "source") {
      diagnostics.report("DTS2006", sink.span, { name: sink.text });
    } else if (declared.kind === "let") {
      reportUnknown("DTS2003", sink.span, sink.text, [], resolution, diagnostics, `"${sink.text}" is a let`);
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
          diagnostics.report("DTS4004", step.target.span, { found: describe(type) }, { help: 'name the target table, e.g. route "archive." + source.table' });
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
  if (!isFile(resolved)) {
    diagnostics.report("DTS5001", span, { path: file }, { help: `paths are relative to the pipeline file's folder (${baseDir || "."})` });
    return;
  }
  let schema: unknown;
  let text: string;
  try {
    text = readFileSync(resolved, "utf8");
  } catch (error) {
    diagnostics.report("DTS5001", span, { path: file }, { help: (error as Error).message });
    return;
  }
  try {
    schema = JSON.parse(text);
  } catch (error) {
    const where = findJsonSyntaxError(text);
    const problem = where === undefined ? oneLine((error as Error).message) : `${where.problem} at line ${where.line}, column ${where.column}`;
    diagnostics.report("DTS5002", span, { path: file, problem });
    return;
  }
  if (typeof schema !== "object" && typeof schema !== "boolean") {
    diagnostics.report("DTS5003", span, { path: file, problem: "a schema is an object (or true/false)" });
    return;
  }
  const ajv = new Ajv2020({ strict: false });
  if (ajv.validateSchema(schema as object) !== true) {
    const first = ajv.errors?.[0];
    const at = first === undefined || first.instancePath === "" ? "the schema" : first.instancePath;
    const allowed = first?.keyword === "enum" ? (first.params as { allowedValues?: unknown[] }).allowedValues : undefined;
    const value = first === undefined ? undefined : valueAtPointer(schema, first.instancePath);
    const problem =
      allowed !== undefined
        ? `${at} must be one of ${allowed.map((v) => JSON.stringify(v)).join(", ")}, found ${JSON.stringify(value)}`
        : `${at} ${first?.message ?? "does not follow the JSON Schema meta-schema"}`;
    const help = typeof value === "string" && allowed !== undefined ? didYouMean(value, allowed.filter((v): v is string => typeof v === "string")) : undefined;
    diagnostics.report("DTS5003", span, { path: file, problem }, help === undefined ? {} : { help });
    return;
  }
  try {
    ajv.compile(schema as object);
  } catch (error) {
    diagnostics.report("DTS5003", span, { path: file, problem: oneLine((error as Error).message) });
  }
}

function isFile(file: string): boolean {
  try {
    return existsSync(file) && statSync(file).isFile();
  } catch {
    return false;
  }
}

function oneLine(text: string): string {
  const first = text.split("\n")[0]!.trim();
  return first.length > 200 ? `${first.slice(0, 200)}...` : first;
}

/** The value a JSON pointer (`/properties/id/type`) names inside `root`. */
function valueAtPointer(root: unknown, pointer: string): unknown {
  let current = root;
  for (const raw of pointer.split("/").slice(1)) {
    const key = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (current === null || typeof current !== "object") return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}
