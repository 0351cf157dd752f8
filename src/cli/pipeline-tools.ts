/**
 * What `dts verify`, `dts status` and `dts drop` share: the pipeline compiled, its
 * values fixed at start resolved (the URLs usually come from `env()`), and one error type that
 * carries the exit code, so each tool is a straight line and `runTool` turns any failure into a
 * one-line message and the exit code of its error code (src/diagnostics/errors.ts decides it:
 * 1 invalid pipeline, 2 usage, 3 server).
 */
import { dirname, resolve } from "node:path";
import { compileFile } from "../compile.js";
import type { Plan, SinkPlan, SourcePlan } from "../plan/types.js";
import { DtsError, exitCodeOf, type ErrorCode } from "../diagnostics/errors.js";
import { resolveStartValues, StartValueError, type StartValues } from "../runtime/start-values.js";
import type { ConnectorContext } from "../connectors/capabilities.js";

/** A tool's failure, reworded for its place; the code (and so the exit code) is the cause's where there is one. */
export class ToolError extends DtsError {
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = "ToolError";
  }
}

export interface LoadedPipeline {
  readonly file: string;
  readonly plan: Plan;
  readonly values: StartValues;
  /** The pipeline file's folder. */
  readonly baseDir: string;
}

export async function loadPipeline(file: string): Promise<LoadedPipeline> {
  let compiled;
  try {
    compiled = await compileFile(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ToolError("DTS7004", `cannot read ${file}: ${code === "ENOENT" ? "no such file" : (error as Error).message}`, { cause: error });
  }
  if (compiled.plan === undefined) {
    if (compiled.rendered !== "") process.stderr.write(`${compiled.rendered}\n\n`);
    throw new ToolError("DTS7003", `${file} has errors; run dts check ${file}`);
  }
  let values: StartValues;
  try {
    values = resolveStartValues(compiled.plan);
  } catch (error) {
    if (error instanceof StartValueError) throw new ToolError(error.code, error.message, { cause: error });
    throw error;
  }
  return { file, plan: compiled.plan, values, baseDir: dirname(resolve(file)) };
}

/** What a capability of `connector` is called with, in this pipeline. */
export function contextOf(pipeline: LoadedPipeline, connector: SourcePlan | SinkPlan, tool: string): ConnectorContext {
  const resolved = (connector.id.startsWith("source:") ? pipeline.values.sources : pipeline.values.sinks).get(connector.name);
  return { pipeline: pipeline.plan.pipeline.name, name: connector.name, options: resolved?.options ?? {}, baseDir: pipeline.baseDir, tool };
}

/** Runs a tool: a DtsError (a server, a bad pipeline, a refusal) becomes a one-line message and its exit code. */
export async function runTool(name: string, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (error) {
    if (!(error instanceof DtsError)) throw error;
    process.stderr.write(`dts ${name}: ${error.message}\n`);
    return exitCodeOf(error);
  }
}

/** Columns padded to their widest cell; the first row is the header. */
export function formatTable(rows: readonly (readonly string[])[], indent = "  "): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => indent + row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ")).join("\n");
}
