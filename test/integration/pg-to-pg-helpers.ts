/**
 * PostgreSQL → PostgreSQL runs in this process, through the real runtime, source and sink: a
 * pipeline text compiled as `dts-run` would, run until caught up (or until stopped), and both
 * sides' rows read back as JSON for a value-by-value comparison.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runPipeline, type RunSummary } from "../../src/runtime/run.js";
import { planOf } from "../unit/runtime-fixtures.js";
import { recordingLogger, type RecordingLogger, type ThrowawayDatabase } from "./pg-helpers.js";

export interface RunOptions {
  readonly createTables?: boolean;
  /** Steps between source and sink, e.g. `| filter row.id > 0`. */
  readonly flow?: string;
  /** Rejected events go to `rejected.jsonl` in `dir` (see `rejections`) instead of stopping the run. */
  readonly deadLetter?: boolean;
  /** Keep the checkpoint in the target (`checkpoint: "postgres"`) instead of a file. */
  readonly checkpointInTarget?: boolean;
}

export interface PgToPg {
  /** The folder holding the pipeline's checkpoint file. */
  readonly dir: string;
  /** The pipeline text for these options. */
  text(options?: RunOptions): string;
  /** Runs until caught up; resolves to the log and the failure, if the run failed. */
  runOnce(options?: RunOptions): Promise<{ log: RecordingLogger; error: Error | undefined; summary?: RunSummary }>;
  /** Starts a run that streams until `stop()`. */
  start(options?: RunOptions): { log: RecordingLogger; stop(): Promise<Error | undefined>; failed(): Error | undefined };
  /** The dead-lettered events so far (`deadLetter: true`): key and reason. */
  rejections(): Promise<{ key: Record<string, unknown>; reason: string }[]>;
  remove(): Promise<void>;
}

/** A pipeline copying `tables` from `source` to `target` with a slot of its own. */
export async function pgToPg(name: string, source: ThrowawayDatabase, target: ThrowawayDatabase, tables: readonly string[]): Promise<PgToPg> {
  const dir = await mkdtemp(join(tmpdir(), "dts-pg2pg-"));
  const slot = `${name}_${source.name.slice(-8)}`.toLowerCase().replace(/[^a-z0-9_]/g, "_");
  const text = (options: RunOptions = {}): string => `
pipeline ${name} { ${options.deadLetter === true ? "dead_letter: rejected" : ""} ${options.checkpointInTarget === true ? 'checkpoint: "postgres"' : ""} }
${options.deadLetter === true ? `sink rejected = jsonl { path: ${JSON.stringify(join(dir, "rejected.jsonl"))} }` : ""}
source src = postgres {
  url: "${source.url}"
  tables: [${tables.map((t) => JSON.stringify(t)).join(", ")}]
  slot: "${slot}"
  heartbeat_seconds: 0
}
sink dst = postgres {
  url: "${target.url}"
  create_tables: ${options.createTables ?? true}
}
flow src ${options.flow ?? ""} -> dst
`;
  const run = (options: RunOptions, signal?: AbortSignal) => {
    const log = recordingLogger();
    const plan = planOf(text(options), join(dir, `${name}.dts`));
    const done = runPipeline(plan, { baseDir: dir, untilCaughtUp: signal === undefined, log, retry: { retryForMs: 0, initialDelayMs: 10, maxDelayMs: 10 }, ...(signal !== undefined ? { signal } : {}) });
    return { log, done };
  };
  return {
    dir,
    text,
    async runOnce(options = {}) {
      const { log, done } = run(options);
      try {
        const summary = await done;
        return { log, error: undefined, summary };
      } catch (error) {
        return { log, error: error as Error };
      }
    },
    start(options = {}) {
      const controller = new AbortController();
      const { log, done } = run(options, controller.signal);
      let failure: Error | undefined;
      const settled = done.then(
        () => undefined,
        (error: unknown) => {
          failure = error as Error;
          return failure;
        },
      );
      return {
        log,
        failed: () => failure,
        async stop() {
          controller.abort();
          return settled;
        },
      };
    },
    async rejections() {
      const text = await readFile(join(dir, "rejected.jsonl"), "utf8").catch(() => "");
      return text
        .split("\n")
        .filter((line) => line !== "")
        .map((line) => JSON.parse(line) as { key: Record<string, unknown>; rejection: { reason: string } })
        .map((line) => ({ key: line.key, reason: line.rejection.reason }));
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/** Every row of a table as JSON (`to_jsonb`), in key order; `columns` picks some of them. */
export async function rowsOf(db: ThrowawayDatabase, table: string, order: string, columns?: readonly string[]): Promise<Record<string, unknown>[]> {
  const rows = await db.sql<{ r: Record<string, unknown> }>(`SELECT to_jsonb(t) AS r FROM ${table} t ORDER BY ${order}`);
  return rows.map(({ r }) => (columns === undefined ? r : Object.fromEntries(columns.map((c) => [c, r[c]]))));
}

/** The columns of a table, `name type` in table order. */
export async function columnsOf(db: ThrowawayDatabase, table: string): Promise<string[]> {
  const rows = await db.sql<{ c: string }>(
    `SELECT attname || ' ' || format_type(atttypid, atttypmod) AS c FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
    [table],
  );
  return rows.map((row) => row.c);
}
