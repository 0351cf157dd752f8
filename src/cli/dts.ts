#!/usr/bin/env node
/**
 * `dts check|plan|verify|status FILE.dts` — the tools around a pipeline file.
 *
 * Exit codes: 0 success (warnings allowed), 1 the pipeline has errors (or, for verify, the
 * copies differ), 2 bad usage, 3 a server could not be reached or answered with an error.
 * Diagnostics go to stderr, results to stdout; no input produces a stack trace.
 */
import { compileFile } from "../compile.js";
import { summarize } from "../diagnostics/render.js";
import { printPlanDot, printPlanJson, printPlanMermaid } from "../plan/print.js";

const usage = `usage:
  dts check FILE.dts...                 parse and check, print diagnostics
  dts plan FILE.dts [--format json|dot|mermaid]   print the compiled plan
  dts verify FILE.dts                   compare each source table with its copy
  dts status FILE.dts                   checkpoint positions and lag per source`;

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  const flags = rest.filter((arg) => arg.startsWith("--"));
  const files = rest.filter((arg, index) => !arg.startsWith("--") && !(rest[index - 1] === "--format"));
  switch (command) {
    case "check":
      return check(files, flags);
    case "plan":
      return plan(files, rest);
    case "verify":
    case "status": {
      if (files.length !== 1) return fail(`dts ${command} takes one pipeline file`);
      const module = await import(`./${command}.js`).catch(() => undefined);
      if (module === undefined) {
        process.stderr.write(`dts ${command}: not built yet; it arrives with the PostgreSQL connector\n`);
        return 2;
      }
      return (module as { run: (file: string, flags: readonly string[]) => Promise<number> }).run(files[0]!, flags);
    }
    case "--help":
    case "-h":
    case "help":
      process.stdout.write(`${usage}\n`);
      return 0;
    default:
      return fail(command === undefined ? "no command given" : `unknown command "${command}"`);
  }
}

function fail(message: string): number {
  process.stderr.write(`dts: ${message}\n${usage}\n`);
  return 2;
}

async function check(files: readonly string[], flags: readonly string[]): Promise<number> {
  if (files.length === 0) return fail("dts check needs a pipeline file");
  const live = flags.includes("--live");
  const unknown = flags.filter((flag) => flag !== "--live");
  if (unknown.length > 0) return fail(`unknown option ${unknown[0]}`);
  let failed = false;
  let unreadable = false;
  for (const file of files) {
    let result;
    try {
      result = await compileOrReport(file, live);
    } catch (error) {
      // dts check --live could not reach a server (src/cli/live.ts LiveCheckError).
      const exitCode = (error as { exitCode?: unknown }).exitCode;
      if (typeof exitCode !== "number") throw error;
      process.stderr.write(`dts check --live: ${(error as Error).message}\n`);
      return exitCode;
    }
    if (result === undefined) {
      unreadable = true;
      continue;
    }
    if (result.rendered !== "") process.stderr.write(`${result.rendered}\n\n`);
    // --live findings (server settings, replica identity) print after the diagnostics.
    if (result.live !== undefined && result.live.rendered !== "") process.stderr.write(`${result.live.rendered}\n\n`);
    const errors = result.diagnostics.some((d) => d.severity === "error") || result.live?.findings.some((f) => f.severity === "error") === true;
    failed ||= errors;
    const findings = result.live?.findings ?? [];
    const count = (severity: string, word: string) => {
      const n = findings.filter((f) => f.severity === severity).length;
      return `${n} ${word}${n === 1 ? "" : "s"}`;
    };
    const liveSummary = findings.length === 0 ? "" : `; --live: ${count("error", "error")}, ${count("warning", "warning")}`;
    process.stdout.write(`${file}: ${errors ? "failed" : "ok"} (${summarize(result.diagnostics)}${liveSummary})\n`);
  }
  return unreadable ? 2 : failed ? 1 : 0;
}

async function plan(files: readonly string[], args: readonly string[]): Promise<number> {
  if (files.length !== 1) return fail("dts plan takes one pipeline file");
  const formatIndex = args.indexOf("--format");
  const format = formatIndex === -1 ? "json" : args[formatIndex + 1];
  if (format !== "json" && format !== "dot" && format !== "mermaid") return fail(`--format is json, dot or mermaid, not ${String(format)}`);
  const result = await compileOrReport(files[0]!, false);
  if (result === undefined) return 2;
  if (result.rendered !== "") process.stderr.write(`${result.rendered}\n\n`);
  if (result.plan === undefined) {
    process.stderr.write(`${files[0]}: failed (${summarize(result.diagnostics)})\n`);
    return 1;
  }
  const printer = { json: printPlanJson, dot: printPlanDot, mermaid: printPlanMermaid }[format];
  process.stdout.write(printer(result.plan));
  return 0;
}

async function compileOrReport(file: string, live: boolean) {
  try {
    if (live) {
      const liveModule = "./live.js"; // built with the PostgreSQL connector; absent before
      const { liveColumns } = (await import(liveModule).catch(() => ({ liveColumns: undefined }))) as {
        liveColumns?: (file: string) => Promise<
          NonNullable<Parameters<typeof compileFile>[1]> & { findings: readonly { severity: "error" | "warning" }[]; rendered: string }
        >;
      };
      if (liveColumns === undefined) {
        process.stderr.write("dts check --live: not built yet; it arrives with the PostgreSQL connector\n");
        return undefined;
      }
      const info = await liveColumns(file);
      return { ...(await compileFile(file, info)), live: info };
    }
    return { ...(await compileFile(file)), live: undefined };
  } catch (error) {
    if (typeof (error as { exitCode?: unknown }).exitCode === "number") throw error;
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "it is a folder; name the .dts file" : code === "EACCES" ? "permission denied" : (error as Error).message;
    process.stderr.write(`dts: cannot read ${file}: ${reason}\n`);
    return undefined;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`dts: internal error: ${(error as Error).message}\n`);
    process.exitCode = 70;
  },
);
