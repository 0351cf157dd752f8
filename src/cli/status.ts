/**
 * `dts status FILE.dts`: per source, the pipeline's checkpoint, then what the source's
 * connector reports through its status capability (for postgres: the snapshot's progress, the
 * server's WAL position, the slot, the lag — src/connectors/postgres/status.ts).
 *
 * The checkpoints are read from the store a run uses (src/runtime/pipeline-checkpoints.ts):
 * the checkpoint file beside the pipeline, or the sink `checkpoint: "postgres"` names. What a
 * source keeps on its server while no run reads it (an inactive slot holding WAL) is said as a
 * warning, with the `dts drop` command that removes it should the pipeline be abandoned.
 *
 * Then, for a source that feeds several sinks, each sink's own stored position (where it
 * resumes), and — while a run is going — its lag in events, bytes and seconds and its spool's
 * size, as the run writes them every two seconds beside its spools (runtime/sink-lag.ts).
 *
 * Exit codes: 0, 1 invalid pipeline, 3 a server could not be reached.
 */
import { readFile } from "node:fs/promises";
import { findSource } from "../connectors/registry.js";
import type { Plan } from "../plan/types.js";
import { sinksOfSources } from "../runtime/graph.js";
import { lagStatusPath, STATUS_WRITE_MS, type LagReport } from "../runtime/sink-lag.js";
import { sinkKey } from "../runtime/sink-positions.js";
import { spoolRoot } from "../runtime/sink-spool.js";
import type { SourceCheckpoint } from "../runtime/contracts.js";
import { pipelineCheckpoints } from "../runtime/pipeline-checkpoints.js";
import { runReportPath, type RunReport } from "../runtime/run-report.js";
import { contextOf, formatTable, loadPipeline, runTool } from "./pipeline-tools.js";

const TOOL = "dts status";

export async function run(file: string): Promise<number> {
  return runTool("status", async () => {
    const pipeline = await loadPipeline(file);
    const located = await pipelineCheckpoints(pipeline.plan, pipeline.values, pipeline.baseDir, TOOL);
    let checkpoints: Readonly<Record<string, SourceCheckpoint>> = {};
    let savedAt: ReadonlyMap<string, Date> = new Map();
    let where = `in ${located.where}`;
    if (located.store === undefined) {
      where += `: not readable (${located.reason})`;
    } else {
      try {
        checkpoints = await located.store.load();
        savedAt = (await located.store.savedAt?.()) ?? new Map();
      } finally {
        await located.store.close?.();
      }
      if (Object.keys(checkpoints).length === 0) where += " (none yet)";
    }
    process.stdout.write(`pipeline ${pipeline.plan.pipeline.name}: checkpoints ${where}\n`);
    process.stdout.write(await describeRun(runReportPath(pipeline.baseDir, pipeline.plan.pipeline.name)));
    const retained: string[] = [];
    for (const source of pipeline.plan.sources) {
      const checkpoint = checkpoints[source.name];
      const rows: (readonly [string, string])[] = [["checkpoint", describeCheckpoint(checkpoint, savedAt.get(source.name))]];
      const capability = findSource(source.connector)?.status;
      let heading = `source ${source.name} (${source.connector})`;
      if (capability === undefined) {
        rows.push(["source now", `not available: the ${source.connector} connector has no status capability`]);
      } else {
        const report = await (await capability())(contextOf(pipeline, source, TOOL), checkpoint);
        heading = `source ${source.name} (${source.connector}, ${report.where})`;
        rows.push(...report.rows);
        retained.push(...report.retained.map((what) => `source ${source.name}: ${what}`));
      }
      process.stdout.write(`\n${heading}\n${formatTable(rows)}\n`);
    }
    await describeSinks(pipeline.plan, pipeline.baseDir, checkpoints);
    if (retained.length > 0) {
      process.stdout.write(
        `\n${retained.map((what) => `warning: ${what}`).join("\n")}\n` +
          `  If the pipeline is abandoned, remove its slots, publications and checkpoint: dts drop ${file}\n`,
      );
    }
    return 0;
  });
}

/** The figures the pipeline's run reports (run-report.ts): the one running now, or the last. */
async function describeRun(path: string): Promise<string> {
  let report: RunReport;
  try {
    report = JSON.parse(await readFile(path, "utf8")) as RunReport;
  } catch {
    return "run: no report of a run here yet\n";
  }
  const age = seconds((Date.now() - Date.parse(report.updated)) / 1000);
  const state =
    report.ended !== undefined
      ? `last run ${report.run_id} (pid ${report.pid}) ${report.ended.how}, at ${report.ended.at}`
      : alive(report.pid)
        ? `running: run ${report.run_id}, pid ${report.pid}, since ${report.started}; figures as of ${age} ago`
        : `run ${report.run_id} (pid ${report.pid}) is gone without ending (killed?); its figures as of ${report.updated}`;
  const rows: string[][] = [["", "connector", "events", "state", "lag", "retries / restarts"]];
  for (const [name, s] of Object.entries(report.sources)) {
    rows.push([`source ${name}`, s.connector, String(s.events), s.failing ? "failing, retrying" : s.caught_up ? "caught up" : "reading", s.lag_seconds === null ? "-" : `${s.lag_seconds} s`, String(s.restarts)]);
  }
  for (const [name, s] of Object.entries(report.sinks)) {
    rows.push([`sink ${name}`, s.connector, `${s.events} written${s.rejected > 0 ? `, ${s.rejected} rejected` : ""}`, s.failing ? "failing, retrying" : "writing", "-", String(s.retries)]);
  }
  const errors = Object.entries(report.errors).map(([code, n]) => `${code} ×${n}`);
  return (
    `run: ${state}\n${formatTable(rows)}\n` +
    (report.dead_lettered > 0 ? `  dead-lettered: ${report.dead_lettered}\n` : "") +
    (errors.length > 0 ? `  errors met: ${errors.join(", ")}\n` : "")
  );
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

function describeCheckpoint(checkpoint: SourceCheckpoint | undefined, savedAt: Date | undefined): string {
  if (checkpoint === undefined) return "none (the pipeline has not made anything durable yet)";
  const position = checkpoint.position === null ? "no position yet" : `${checkpoint.position.token} (${checkpoint.position.kind})`;
  if (savedAt === undefined) return position;
  return `${position}, saved ${savedAt.toISOString()} (${seconds((Date.now() - savedAt.getTime()) / 1000)} ago)`;
}

function seconds(s: number): string {
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

/** Each sink's stored position per source feeding it, and its lag while a run is going. */
async function describeSinks(plan: Plan, baseDir: string, checkpoints: Readonly<Record<string, SourceCheckpoint>>): Promise<void> {
  const fanOut = [...sinksOfSources(plan)].filter(([, sinks]) => sinks.length > 1);
  if (fanOut.length === 0) return;
  let live: LagReport | undefined;
  try {
    const report = JSON.parse(await readFile(lagStatusPath(spoolRoot(plan, baseDir)), "utf8")) as LagReport;
    // A file older than a few writes belongs to a run that was killed.
    if (Date.now() - Date.parse(report.updated_at) < 5 * STATUS_WRITE_MS) live = report;
  } catch {
    live = undefined;
  }
  const sinks = new Set(fanOut.flatMap(([, list]) => list));
  for (const sink of plan.sinks) {
    if (!sinks.has(sink.name)) continue;
    const rows: (readonly [string, string])[] = [];
    for (const [source, list] of fanOut) {
      if (!list.includes(sink.name)) continue;
      // A sink without its own entry is at its source's position (a store from before per-sink positions).
      const own = checkpoints[sinkKey(source, sink.name)] ?? checkpoints[source];
      rows.push([`position in ${source}`, own === undefined ? "none yet" : own.position === null ? "no position yet" : `${own.position.token} (${own.position.kind})`]);
    }
    const lag = live?.sinks[sink.name];
    if (lag === undefined) rows.push(["lag", "not running"]);
    else {
      rows.push(["lag", `${lag.events} events, ${lag.bytes} bytes, ${lag.seconds.toFixed(1)} s${lag.spooling ? " (spooling)" : ""}`]);
      rows.push(["spool", `${lag.spoolBytes} bytes`]);
    }
    process.stdout.write(`\nsink ${sink.name} (${sink.connector})\n${formatTable(rows)}\n`);
  }
}
