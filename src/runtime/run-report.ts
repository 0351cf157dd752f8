/**
 * What a running `dts-run` tells `dts status`: the run's figures (the same ones /metrics
 * serves) in a small JSON file beside the pipeline, `.dts-state.<pipeline>.run.json`, rewritten
 * every few seconds (a temp file renamed over it, so a reader never sees half a file) and
 * once more when the run ends, saying how. `dts status` reads it without a connection to the
 * run; the process id tells whether the run is still there.
 */
import { rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Metrics } from "./metrics.js";

export interface RunReport {
  readonly pipeline: string;
  readonly run_id: string;
  readonly pid: number;
  readonly started: string;
  readonly updated: string;
  /** Set by the last write: how the run ended. */
  readonly ended?: { readonly at: string; readonly how: string };
  readonly sources: Readonly<Record<string, { connector: string; events: number; caught_up: boolean; failing: boolean; restarts: number; lag_seconds: number | null }>>;
  readonly sinks: Readonly<Record<string, { connector: string; events: number; writes: number; rejected: number; retries: number; failing: boolean }>>;
  readonly dead_lettered: number;
  readonly errors: Readonly<Record<string, number>>;
}

export function runReportPath(baseDir: string, pipeline: string): string {
  return join(baseDir, `.dts-state.${pipeline}.run.json`);
}

export interface RunReporter {
  /** The last write, with how the run ended. */
  end(how: string): Promise<void>;
}

const EVERY_MS = 5000;

export function startRunReports(options: { path: string; pipeline: string; runId: string; metrics: Metrics; connectors: ReadonlyMap<string, string> }): RunReporter {
  const started = new Date().toISOString();
  let writing: Promise<void> = Promise.resolve();
  const write = (ended?: RunReport["ended"]): Promise<void> => {
    const report = reportOf(options, started, ended);
    const temp = `${options.path}.${process.pid}.tmp`;
    // One write at a time, in order; a failed write (a full disk) must never stop the run.
    writing = writing.then(() => writeFile(temp, `${JSON.stringify(report, null, 2)}\n`).then(() => rename(temp, options.path))).catch(() => {});
    return writing;
  };
  void write();
  const timer = setInterval(() => void write(), EVERY_MS);
  timer.unref();
  return {
    async end(how) {
      clearInterval(timer);
      await write({ at: new Date().toISOString(), how });
    },
  };
}

function reportOf(options: { pipeline: string; runId: string; metrics: Metrics; connectors: ReadonlyMap<string, string> }, started: string, ended: RunReport["ended"]): RunReport {
  const { metrics } = options;
  const connector = (name: string) => options.connectors.get(name) ?? "";
  return {
    pipeline: options.pipeline,
    run_id: options.runId,
    pid: process.pid,
    started,
    updated: new Date().toISOString(),
    ...(ended !== undefined ? { ended } : {}),
    sources: Object.fromEntries(
      [...metrics.sources].map(([name, c]) => [
        name,
        {
          connector: connector(name),
          events: c.events,
          caught_up: c.caughtUp,
          failing: c.failing,
          restarts: c.restarts,
          lag_seconds: c.caughtUp ? 0 : c.lastCommitMs === undefined ? null : Math.max(0, Math.round((Date.now() - c.lastCommitMs) / 100) / 10),
        },
      ]),
    ),
    sinks: Object.fromEntries(
      [...metrics.sinks].map(([name, c]) => [name, { connector: connector(name), events: c.events, writes: c.writes, rejected: c.rejected, retries: c.retries, failing: c.failing }]),
    ),
    dead_lettered: metrics.deadLettered,
    errors: Object.fromEntries(metrics.errors),
  };
}
