/**
 * `dts drop FILE.dts`: remove what an abandoned pipeline leaves behind — on each source's
 * server what its connector keeps for it (postgres: the replication slot, which makes the
 * server keep WAL for as long as it exists, and the publication), and the pipeline's
 * checkpoint (its entry in the checkpoint file, or its rows of dts.checkpoints).
 *
 * It first takes the pipeline's lock in its checkpoint store, as a run does (run-lock.ts):
 * while the pipeline runs, the lock is held and the drop is refused; while the drop works, no
 * run can start. Then it lists what it found, asks (on a terminal; otherwise --yes is
 * required), removes each thing in turn — the slot first, the checkpoint last — and says what
 * it removed. A second drop finds nothing and says so.
 *
 * Exit codes: 0 removed (or nothing to remove), 1 refused (the pipeline runs, or the answer
 * was no), 2 not confirmed (no --yes and no terminal), 3 a server could not be reached or
 * refused a statement.
 */
import { rm } from "node:fs/promises";
import { createInterface } from "node:readline/promises";
import type { DropItem } from "../connectors/capabilities.js";
import { findSink, findSource } from "../connectors/registry.js";
import type { Logger } from "../runtime/contracts.js";
import { pipelineCheckpoints } from "../runtime/pipeline-checkpoints.js";
import { PipelineLockedError } from "../runtime/run-lock.js";
import { runReportPath } from "../runtime/run-report.js";
import { contextOf, loadPipeline, runTool, ToolError } from "./pipeline-tools.js";

const TOOL = "dts drop";

export interface DropOptions {
  readonly yes: boolean;
}

export async function run(file: string, options: DropOptions): Promise<number> {
  return runTool("drop", async () => {
    const pipeline = await loadPipeline(file);
    const name = pipeline.plan.pipeline.name;
    const say = (text: string): void => void process.stdout.write(`${text}\n`);
    const located = await pipelineCheckpoints(pipeline.plan, pipeline.values, pipeline.baseDir, TOOL);
    if (located.store === undefined) throw new ToolError("DTS7101", `cannot open the checkpoints of pipeline "${name}" in ${located.where}: ${located.reason}`);
    const store = located.store;
    let release: (() => Promise<void>) | undefined;
    try {
      try {
        release = await store.lock?.({ log: stderrLogger, onLost: () => {} });
      } catch (error) {
        if (error instanceof PipelineLockedError) throw new ToolError("DTS7006", `refused: ${error.message}`, { cause: error });
        throw error;
      }
      const items: DropItem[] = [];
      for (const source of pipeline.plan.sources) {
        const capability = findSource(source.connector)?.drop;
        if (capability === undefined) {
          say(`source ${source.name} (${source.connector}): nothing to look for: the ${source.connector} connector has no drop capability`);
          continue;
        }
        for (const item of await (await capability())(contextOf(pipeline, source, TOOL))) items.push({ what: `source ${source.name}: ${item.what}`, remove: () => item.remove() });
      }
      for (const sink of pipeline.plan.sinks) {
        const capability = findSink(sink.connector)?.drop;
        if (capability === undefined) continue;
        for (const item of await (await capability())(contextOf(pipeline, sink, TOOL))) items.push({ what: `sink ${sink.name}: ${item.what}`, remove: () => item.remove() });
      }
      const checkpoints = Object.keys(await store.load());
      if (checkpoints.length > 0) {
        const forget = store.forget?.bind(store);
        if (forget === undefined) {
          say(`the checkpoint of pipeline "${name}" in ${located.where} stays: its store cannot remove it`);
        } else {
          items.push({
            what: `the checkpoint of pipeline "${name}" in ${located.where} (source${checkpoints.length === 1 ? "" : "s"} ${checkpoints.join(", ")})`,
            remove: async () => void (await forget()),
          });
        }
      }
      // The last run's figures (run-report.ts) describe a pipeline that is going: gone with it, unlisted.
      const report = runReportPath(pipeline.baseDir, name);
      if (items.length === 0) {
        await rm(report, { force: true });
        say(`nothing to remove: pipeline "${name}" keeps no slot, publication or checkpoint`);
        return 0;
      }
      say(`pipeline "${name}" keeps:\n${items.map((item) => `  ${item.what}`).join("\n")}`);
      if (!options.yes) {
        if (!process.stdin.isTTY || !process.stdout.isTTY) {
          process.stderr.write(`dts drop: nothing removed; to remove these, run again with --yes\n`);
          return 2;
        }
        if (!(await confirm("Remove them? [y/N] "))) {
          say("nothing removed");
          return 1;
        }
      }
      for (const item of items) {
        await item.remove();
        say(`removed ${item.what}`);
      }
      await rm(report, { force: true });
      return 0;
    } finally {
      await release?.().catch(() => {});
      await store.close?.().catch(() => {});
    }
  });
}

async function confirm(question: string): Promise<boolean> {
  const terminal = createInterface({ input: process.stdin, output: process.stdout });
  try {
    return /^y(es)?$/i.test((await terminal.question(question)).trim());
  } finally {
    terminal.close();
  }
}

/** The lock's own warnings (a stale lock taken over) go to stderr; the rest is not shown. */
const stderrLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: (message) => void process.stderr.write(`dts drop: ${message}\n`),
  error: (message) => void process.stderr.write(`dts drop: ${message}\n`),
};
