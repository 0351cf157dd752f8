/**
 * The mysql sink's tests: a throwaway MariaDB database per run (the server at 127.0.0.1:3306 is
 * shared), and PostgreSQL → MySQL pipelines run in this process through the real runtime, the
 * postgres source and the mysql sink, with the target's rows read back as the driver gives
 * them (text, bytes) for value-by-value comparisons.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mysql from "mysql2/promise";
import { runPipeline, type RunSummary } from "../../src/runtime/run.js";
import { planOf } from "../unit/runtime-fixtures.js";
import { recordingLogger, type RecordingLogger, type ThrowawayDatabase } from "./pg-helpers.js";

export const MYSQL_HOST = process.env.DTS_TEST_MYSQL_HOST ?? "127.0.0.1";
export const MYSQL_PORT = Number(process.env.DTS_TEST_MYSQL_PORT ?? 3306);
export const MYSQL_ROOT_URL = `mysql://root@${MYSQL_HOST}:${MYSQL_PORT}`;

export interface MysqlDatabase {
  readonly name: string;
  /** `mysql://root@host:port/name`. */
  readonly url: string;
  sql<T = Record<string, unknown>>(text: string, values?: unknown[]): Promise<T[]>;
  drop(): Promise<void>;
}

async function open(database?: string): Promise<mysql.Connection> {
  try {
    return await mysql.createConnection({
      host: MYSQL_HOST,
      port: MYSQL_PORT,
      user: "root",
      ...(database !== undefined ? { database } : {}),
      charset: "utf8mb4_bin",
      timezone: "Z",
      dateStrings: true,
      supportBigNumbers: true,
      bigNumberStrings: true,
      multipleStatements: true,
    });
  } catch (error) {
    throw new Error(`the mysql sink's tests need MariaDB at ${MYSQL_HOST}:${MYSQL_PORT} (root, no password; scripts/services.sh sets it up): ${(error as Error).message}`);
  }
}

/** Creates an empty database `dts_my_<label>_<random>`. */
export async function createMysqlDatabase(label: string): Promise<MysqlDatabase> {
  const name = `dts_my_${label.toLowerCase().replace(/[^a-z0-9_]+/g, "_").slice(0, 30)}_${randomBytes(4).toString("hex")}`;
  const admin = await open();
  await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`);
  await admin.end();
  let shared: mysql.Connection | undefined;
  return {
    name,
    url: `${MYSQL_ROOT_URL}/${name}`,
    async sql<T>(text: string, values?: unknown[]) {
      shared ??= await open(name);
      await shared.query("SET time_zone = '+00:00'");
      const [rows] = await shared.query(text, values);
      return rows as T[];
    },
    async drop() {
      await shared?.end().catch(() => {});
      const admin = await open();
      await admin.query(`DROP DATABASE IF EXISTS \`${name}\``);
      await admin.end();
    },
  };
}

export interface PipelineOptions {
  readonly createTables?: boolean;
  readonly deadLetter?: boolean;
  /** `checkpoint: "mysql"` instead of a file. */
  readonly checkpointInTarget?: boolean;
  readonly batchSize?: number;
}

export interface PgToMysql {
  readonly dir: string;
  readonly file: string;
  text(options?: PipelineOptions): string;
  runOnce(options?: PipelineOptions): Promise<{ log: RecordingLogger; error: Error | undefined; summary?: RunSummary }>;
  start(options?: PipelineOptions): { log: RecordingLogger; stop(): Promise<Error | undefined>; failed(): Error | undefined };
  rejections(): Promise<{ key: Record<string, unknown>; reason: string }[]>;
  remove(): Promise<void>;
}

/**
 * A pipeline copying `tables` of `source` into the MySQL database `target`, routed there by table
 * name — or, with `route: false`, into the database named by each table's PostgreSQL schema (a
 * flow that routes gets no schema changes).
 */
export async function pgToMysql(
  name: string,
  source: ThrowawayDatabase,
  target: MysqlDatabase,
  tables: readonly string[],
  shape: { readonly route?: boolean } = {},
): Promise<PgToMysql> {
  const dir = await mkdtemp(join(tmpdir(), "dts-pg2my-"));
  const slot = `${name}_${source.name.slice(-8)}`.toLowerCase().replace(/[^a-z0-9_]/g, "_");
  const text = (options: PipelineOptions = {}): string => `
pipeline ${name} { ${options.deadLetter === true ? "dead_letter: rejected" : ""} ${options.checkpointInTarget === true ? 'checkpoint: "mysql"' : ""} }
${options.deadLetter === true ? `sink rejected = jsonl { path: ${JSON.stringify(join(dir, "rejected.jsonl"))} }` : ""}
source src = postgres {
  url: "${source.url}"
  tables: [${tables.map((t) => JSON.stringify(t)).join(", ")}]
  slot: "${slot}"
  heartbeat_seconds: 0
}
sink dst = mysql {
  url: "${target.url}"
  create_tables: ${options.createTables ?? true}
  ${options.batchSize !== undefined ? `batch_size: ${options.batchSize}` : ""}
}
flow src ${shape.route === false ? "" : `| route "${target.name}." + source.table`} -> dst
`;
  const file = join(dir, `${name}.dts`);
  const run = (options: PipelineOptions, signal?: AbortSignal) => {
    const log = recordingLogger();
    const plan = planOf(text(options), file);
    const done = runPipeline(plan, { baseDir: dir, untilCaughtUp: signal === undefined, log, retry: { retryForMs: 0, initialDelayMs: 10, maxDelayMs: 10 }, ...(signal !== undefined ? { signal } : {}) });
    return { log, done };
  };
  return {
    dir,
    file,
    text,
    async runOnce(options = {}) {
      const { log, done } = run(options);
      try {
        return { log, error: undefined, summary: await done };
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
      const content = await readFile(join(dir, "rejected.jsonl"), "utf8").catch(() => "");
      return content
        .split("\n")
        .filter((line) => line !== "")
        .map((line) => JSON.parse(line) as { key: Record<string, unknown>; rejection: { reason: string } })
        .map((line) => ({ key: line.key, reason: line.rejection.reason }));
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
