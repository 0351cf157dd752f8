/**
 * The compile side end to end: text → tokens → CST → AST → checked pipeline → plan.
 * Pure apart from reading the pipeline file and the schema files it names.
 */
import { readFile } from "node:fs/promises";
import { parseFile } from "./ast/parse-file.js";
import type { PipelineFile } from "./ast/nodes.js";
import { checkPipeline, type CheckOptions } from "./check/check.js";
import { DiagnosticBag, type Diagnostic } from "./diagnostics/diagnostic.js";
import { renderDiagnostics } from "./diagnostics/render.js";
import { compilePlan } from "./plan/compile.js";
import type { Plan } from "./plan/types.js";

export interface CompileResult {
  /** Undefined when there is an error. */
  readonly plan: Plan | undefined;
  readonly ast: PipelineFile;
  /** Sorted by position. */
  readonly diagnostics: readonly Diagnostic[];
  /** The diagnostics as the user sees them (empty when there are none). */
  readonly rendered: string;
}

export function compileText(text: string, path: string, options: Pick<CheckOptions, "columns"> = {}): CompileResult {
  return checkParsed(parsePipelineText(text), text, path, options);
}

/** The syntax stages' result: the AST and what they reported. */
export interface ParsedPipeline {
  readonly file: PipelineFile;
  readonly diagnostics: readonly Diagnostic[];
}

export function parsePipelineText(text: string): ParsedPipeline {
  const diagnostics = new DiagnosticBag();
  const { file } = parseFile(text, diagnostics);
  return { file, diagnostics: diagnostics.items };
}

/**
 * A parsed file checked and compiled. `dts check --live` checks one parse twice: first to
 * know the servers (their URLs are values of the plan), then knowing the tables' columns.
 */
export function checkParsed(parsed: ParsedPipeline, text: string, path: string, options: Pick<CheckOptions, "columns"> = {}): CompileResult {
  const diagnostics = new DiagnosticBag();
  diagnostics.items.push(...parsed.diagnostics);
  // Names and types are checked even after syntax errors, in what did parse.
  const checked = checkPipeline(parsed.file, diagnostics, { path, text, ...options });
  const sorted = diagnostics.sorted();
  const plan = checked !== undefined && !diagnostics.hasErrors ? compilePlan(checked, text) : undefined;
  return { plan, ast: parsed.file, diagnostics: sorted, rendered: renderDiagnostics(sorted, { path, text }) };
}

export async function compileFile(path: string, options: Pick<CheckOptions, "columns"> = {}): Promise<CompileResult> {
  const text = await readFile(path, "utf8");
  return compileText(text, path, options);
}
