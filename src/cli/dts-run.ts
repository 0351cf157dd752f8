#!/usr/bin/env node
/**
 * `dts-run FILE.dts [--until-caught-up] [--log-level debug|info|warn|error] [--metrics PORT]` —
 * runs a pipeline.
 * `--help` and `--version` print the usage and the version.
 *
 * Exit codes (also in docs/running.md; a failure's is its error code's, decided in
 * src/diagnostics/errors.ts):
 *   0  stopped normally: the sources ended, --until-caught-up was reached, or SIGINT/SIGTERM
 *      (everything read was drained and checkpointed first)
 *   1  the pipeline cannot start: compile errors (printed), a value fixed at start cannot be
 *      computed (an unset environment variable without a default, an unreadable schema), or
 *      another dts-run of the same pipeline is running (it holds the pipeline's lock)
 *   2  bad usage: unknown option, no file, a file that cannot be read
 *   3  a connector failed for good (or the checkpoint store did), or a connector is specified
 *      but not built yet
 *   4  an event was rejected (by a step or a sink) and the pipeline has no dead_letter sink
 *   130 / 143  a second SIGINT / SIGTERM while draining: exited at once, without the last
 *      checkpoint (the next run repeats what was not checkpointed)
 *   70 an internal error (a bug in dts)
 *
 * On a terminal, stderr shows a progress line and short log lines; otherwise stderr carries
 * JSON log lines. Errors are one line (`dts-run: error: ...`); the stack trace only with
 * --log-level debug.
 */
import { randomBytes } from "node:crypto";
import { dirname, resolve } from "node:path";
import { compileFile } from "../compile.js";
import type { Plan } from "../plan/types.js";
import { createLogger, isLogLevel, LOG_LEVELS, streamLineSink, type LineSink, type LogLevel } from "../runtime/log.js";
import { Metrics } from "../runtime/metrics.js";
import { startMetricsEndpoint, type MetricsEndpoint } from "../runtime/metrics-endpoint.js";
import { runReportPath, startRunReports, type RunReporter } from "../runtime/run-report.js";
import { ProgressDisplay } from "../runtime/progress.js";
import { EXIT, exitCodeOf, runtimeErrors } from "../diagnostics/errors.js";
import { PipelineFailure, runPipeline, type RunSummary } from "../runtime/run.js";
import { describeOptions, dtsVersion, parseCommandLine, type OptionTable } from "./command-line.js";

const options: OptionTable = {
  "until-caught-up": { type: "boolean", description: "stop once every source has nothing more to send and everything read is durable" },
  "log-level": { type: "string", value: "LEVEL", description: `the least important log records shown: ${LOG_LEVELS.join(", ")} (default info)` },
  metrics: { type: "string", value: "PORT", description: "serve Prometheus metrics (/metrics) and the probes /healthz and /readyz on this port" },
};

const usage = `usage: dts-run FILE.dts [--until-caught-up] [--log-level ${LOG_LEVELS.join("|")}] [--metrics PORT]

Runs the pipeline: a snapshot, then changes, until stopped (or until caught up).

options:
${describeOptions(options)}

SIGINT or SIGTERM stops the run after draining and checkpointing; a second one exits at once.
Exit codes: docs/running.md.`;

interface Arguments {
  readonly file: string;
  readonly untilCaughtUp: boolean;
  readonly logLevel: LogLevel;
  readonly metricsPort: number | undefined;
}

type Invocation = { readonly kind: "run"; readonly args: Arguments } | { readonly kind: "help" | "version" } | { readonly kind: "usage-error"; readonly message: string };

function parseArguments(argv: readonly string[]): Invocation {
  const parsed = parseCommandLine(argv, options);
  if (parsed.kind !== "run") return parsed;
  const bad = (message: string): Invocation => ({ kind: "usage-error", message });
  const level = parsed.values["log-level"] ?? "info";
  if (typeof level !== "string" || !isLogLevel(level)) return bad(`--log-level is one of ${LOG_LEVELS.join(", ")}, not ${String(level)}`);
  if (parsed.positionals.length === 0) return bad("no pipeline file given");
  if (parsed.positionals.length > 1) return bad("dts-run takes one pipeline file");
  const port = parsed.values["metrics"];
  if (port !== undefined && (typeof port !== "string" || !/^\d{1,5}$/.test(port) || Number(port) > 65535)) return bad(`--metrics takes a port number (0 to 65535), not ${String(port)}`);
  return {
    kind: "run",
    args: { file: parsed.positionals[0]!, untilCaughtUp: parsed.values["until-caught-up"] === true, logLevel: level, metricsPort: port === undefined ? undefined : Number(port) },
  };
}

async function main(argv: readonly string[]): Promise<number> {
  const invocation = parseArguments(argv);
  switch (invocation.kind) {
    case "help":
      process.stdout.write(`${usage}\n`);
      return 0;
    case "version":
      process.stdout.write(`dts-run ${dtsVersion()}\n`);
      return 0;
    case "usage-error":
      process.stderr.write(`dts-run: ${invocation.message}\n${usage}\n`);
      return 2;
    case "run":
      return runFile(invocation.args);
  }
}

async function runFile(args: Arguments): Promise<number> {
  let compiled;
  try {
    compiled = await compileFile(args.file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    process.stderr.write(`dts-run: cannot read ${args.file}: ${code === "ENOENT" ? "no such file" : (error as Error).message}\n`);
    return 2;
  }
  if (compiled.rendered !== "") process.stderr.write(`${compiled.rendered}\n\n`);
  const plan = compiled.plan;
  if (plan === undefined) return 1;

  const metrics = new Metrics(plan.sources.map((s) => s.name), plan.sinks.map((s) => s.name));
  const terminal = process.stderr.isTTY === true;
  // The progress line would be torn apart by a sink printing to the same terminal.
  const progress = terminal && !(process.stdout.isTTY && writesToStdout(plan)) ? new ProgressDisplay(metrics, process.stderr) : undefined;
  const lines: LineSink = progress ?? streamLineSink(process.stderr);
  // Every record names the pipeline and this run, so that the logs of several runs can be told apart.
  const runId = randomBytes(6).toString("hex");
  const log = createLogger({ level: args.logLevel, format: terminal ? "text" : "json", out: lines }, { pipeline: plan.pipeline.name, run_id: runId });
  const connectors = new Map([...plan.sources, ...plan.sinks].map((c) => [c.name, c.connector]));
  let endpoint: MetricsEndpoint | undefined;
  if (args.metricsPort !== undefined) {
    try {
      endpoint = await startMetricsEndpoint({
        port: args.metricsPort,
        pipeline: plan.pipeline.name,
        runId,
        metrics,
        connectors,
      });
      log.info("serving metrics", { url: `http://127.0.0.1:${endpoint.port}/metrics`, probes: ["/healthz", "/readyz"] });
    } catch (error) {
      process.stderr.write(`dts-run: error: cannot serve metrics on port ${args.metricsPort}: ${(error as Error).message}\n`);
      return 1;
    }
  }

  const stop = new AbortController();
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      process.stderr.write(`\ndts-run: ${signal} again: exiting without the last checkpoint\n`);
      process.exit(signal === "SIGINT" ? 130 : 143);
    }
    log.info(`${signal}: stopping after what was read is durable (${signal} again exits at once)`);
    stop.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  // Started once the run holds the pipeline's lock, so that a refused second run leaves the report alone.
  let reporter: RunReporter | undefined;
  let how = "ended by an internal error";
  progress?.start();
  try {
    const summary = await runPipeline(plan, {
      baseDir: dirname(resolve(args.file)),
      untilCaughtUp: args.untilCaughtUp,
      signal: stop.signal,
      log,
      metrics,
      onLocked: () => {
        reporter = startRunReports({ path: runReportPath(dirname(resolve(args.file)), plan.pipeline.name), pipeline: plan.pipeline.name, runId, metrics, connectors });
      },
    });
    progress?.stop();
    logSummary(log, summary);
    how = `stopped normally (${summary.stoppedBy})`;
    return 0;
  } catch (error) {
    progress?.stop();
    if (!(error instanceof PipelineFailure)) throw error;
    how = `failed: ${error.message}`;
    process.stderr.write(`dts-run: error: ${error.message}\n`);
    if (args.logLevel === "debug") process.stderr.write(`${stackOf(error)}\n`);
    if (error.summary !== undefined) {
      process.stderr.write(`dts-run: last durable positions: ${describePositions(error.summary)}\n`);
    }
    // The code is what a supervisor or a search of the docs goes by; the message is for a person.
    process.stderr.write(`dts-run: error code ${error.code}, exit ${error.exitCode}: ${runtimeErrors[error.code].meaning}\n`);
    return exitCodeOf(error);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await endpoint?.close();
    await reporter?.end(how);
  }
}

function writesToStdout(plan: Plan): boolean {
  return plan.sinks.some((sink) => {
    const path = sink.options["path"];
    return path !== undefined && "constant" in path && path.constant === "-";
  });
}

function logSummary(log: ReturnType<typeof createLogger>, summary: RunSummary): void {
  const read = Object.values(summary.sources).reduce((n, s) => n + s.events, 0);
  log.info("done", {
    stopped_by: summary.stoppedBy,
    seconds: summary.seconds,
    events_per_second: summary.seconds > 0 ? Math.round(read / summary.seconds) : read,
    read: Object.fromEntries(Object.entries(summary.sources).map(([name, s]) => [name, s.events])),
    written: Object.fromEntries(Object.entries(summary.sinks).map(([name, s]) => [name, s.events])),
    dead_lettered: summary.deadLettered,
    positions: Object.fromEntries(
      Object.entries(summary.sources).map(([name, s]) => [name, s.checkpoint?.position ?? null]),
    ),
    sink_positions: Object.fromEntries(
      Object.entries(summary.sinks).map(([name, s]) => [name, Object.fromEntries(Object.entries(s.positions).map(([source, c]) => [source, c?.position ?? null]))]),
    ),
  });
}

function describePositions(summary: RunSummary): string {
  const parts = Object.entries(summary.sources).map(([name, source]) => {
    const position = source.checkpoint?.position;
    return position === undefined || position === null ? `${name} at its beginning` : `${name} at ${position.kind} ${position.token}`;
  });
  return parts.length === 0 ? "none" : `${parts.join(", ")} (the next run resumes there)`;
}

function stackOf(error: Error): string {
  let text = error.stack ?? String(error);
  let cause = error.cause;
  while (cause instanceof Error) {
    text += `\ncaused by: ${cause.stack ?? cause.message}`;
    cause = cause.cause;
  }
  return text;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Everything is closed by now; a connector that left a handle open must not keep the
    // process alive, so a last timer (which itself does not) ends it.
    setTimeout(() => process.exit(code), 2000).unref();
  },
  (error: unknown) => {
    process.stderr.write(`dts-run: internal error: ${(error as Error).message}\n`);
    if (process.argv.includes("debug")) process.stderr.write(`${(error as Error).stack}\n`);
    process.exitCode = EXIT.internal;
  },
);
