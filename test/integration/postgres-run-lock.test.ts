/**
 * The pipeline's lock when checkpoints live in PostgreSQL (`checkpoint: "postgres"`), on the
 * real server: a session-level advisory lock per pipeline and database. A second store of the
 * same pipeline is refused with who holds it until the first releases; other pipelines and
 * other databases are not in the way; a lock whose session ends is reported lost; and the
 * runner refuses to start a pipeline whose lock is held.
 */
import { spawn } from "node:child_process";
import { hostname } from "node:os";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { advisoryLockKey, PostgresCheckpointStore } from "../../src/connectors/postgres/checkpoint-store.js";
import { ConnectorError } from "../../src/runtime/contracts.js";
import { PipelineLockedError } from "../../src/runtime/run-lock.js";
import { PipelineFailure, runPipeline } from "../../src/runtime/run.js";
import { planOf, scriptedSources } from "../unit/runtime-fixtures.js";
import { createDatabase, recordingLogger, type ThrowawayDatabase } from "./pg-helpers.js";

const log = recordingLogger();
const noLoss = (error: Error): never => {
  throw new Error(`lock lost unexpectedly: ${error.message}`);
};

function storeOf(db: ThrowawayDatabase, pipeline: string): PostgresCheckpointStore {
  return new PostgresCheckpointStore(db.url, pipeline, "dts test checkpoints");
}

/** The sessions holding the pipeline's advisory lock in `db`. */
async function holders(db: ThrowawayDatabase, pipeline: string): Promise<number> {
  const key = BigInt.asUintN(64, advisoryLockKey(pipeline));
  const rows = await db.sql(
    `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1
       AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
       AND classid = $1::oid AND objid = $2::oid`,
    [(key >> 32n).toString(), (key & 0xffffffffn).toString()],
  );
  return rows.length;
}

describe("postgres checkpoint store: the pipeline's lock", () => {
  let db: ThrowawayDatabase;
  let other: ThrowawayDatabase;

  beforeAll(async () => {
    db = await createDatabase("run_lock");
    other = await createDatabase("run_lock_other");
  });
  afterAll(async () => {
    await db?.drop();
    await other?.drop();
  });

  it("keys the lock by a hash of the pipeline's name that never changes", () => {
    expect(advisoryLockKey("quickstart")).toBe(-3715110539513213132n);
    expect(advisoryLockKey("quickstart")).not.toBe(advisoryLockKey("quickstart2"));
  });

  it("refuses a second lock of the pipeline, naming the holder, until the first is released", async () => {
    const first = storeOf(db, "orders");
    const second = storeOf(db, "orders");
    try {
      const release = await first.lock({ log, onLost: noLoss });
      expect(await holders(db, "orders")).toBe(1);
      const error = await second.lock({ log, onLost: noLoss }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PipelineLockedError);
      expect((error as Error).message).toMatch(
        new RegExp(
          `^pipeline "orders" is already running: dts-run pid ${process.pid} on host ${hostname()} holds its lock in ` +
            `postgres://postgres@[^ ]+/${db.name} \\(advisory lock ${advisoryLockKey("orders")}\\), in server process \\d+; ` +
            `stop the other dts-run \\(pid ${process.pid}\\) or, if it is gone, end its session: SELECT pg_terminate_backend\\(\\d+\\)$`,
        ),
      );
      await release();
      await release(); // twice is harmless
      expect(await holders(db, "orders")).toBe(0);
      const releaseSecond = await second.lock({ log, onLost: noLoss });
      expect(await holders(db, "orders")).toBe(1);
      await releaseSecond();
      expect(await holders(db, "orders")).toBe(0);
    } finally {
      await first.close();
      await second.close();
    }
  });

  it("lets other pipelines, and the same pipeline in another database, hold their locks at once", async () => {
    const releases = await Promise.all([
      storeOf(db, "orders").lock({ log, onLost: noLoss }),
      storeOf(db, "payments").lock({ log, onLost: noLoss }),
      storeOf(other, "orders").lock({ log, onLost: noLoss }),
    ]);
    expect(await holders(db, "orders")).toBe(1);
    expect(await holders(db, "payments")).toBe(1);
    expect(await holders(other, "orders")).toBe(1);
    for (const release of releases) await release();
  });

  it("names a holder that is not a dts run by its server process", async () => {
    await db.sql("SELECT pg_advisory_lock($1::bigint)", [advisoryLockKey("orders").toString()]);
    try {
      await expect(storeOf(db, "orders").lock({ log, onLost: noLoss })).rejects.toThrow(
        /^pipeline "orders" is already running: server process (\d+) holds its lock in .*; stop the other dts-run of it, or end that session: SELECT pg_terminate_backend\(\1\)$/,
      );
    } finally {
      await db.sql("SELECT pg_advisory_unlock($1::bigint)", [advisoryLockKey("orders").toString()]);
    }
  });

  it("waits, with retries, for the session of a run that no longer exists to go", async () => {
    const child = spawn(process.execPath, ["-e", "0"], { stdio: "ignore" });
    await new Promise((resolve) => child.on("exit", resolve));
    // What a run killed a moment ago leaves behind until the server notices.
    const lingering = new pg.Client({ connectionString: db.url, application_name: `dts pid ${child.pid} on ${hostname()}` });
    await lingering.connect();
    try {
      await lingering.query("SELECT pg_advisory_lock($1::bigint)", [advisoryLockKey("orders").toString()]);
      const error = await storeOf(db, "orders").lock({ log, onLost: noLoss }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConnectorError);
      expect((error as ConnectorError).retriable).toBe(true);
      expect((error as Error).message).toMatch(
        new RegExp(`^the lock of pipeline "orders" in .* is still held by server process \\d+ of dts-run pid ${child.pid}, which no longer runs; `),
      );
    } finally {
      await lingering.end();
    }
    const release = await storeOf(db, "orders").lock({ log, onLost: noLoss });
    await release();
  });

  it("reports the lock lost when its session ends, and the next run can take it", async () => {
    const lost: Error[] = [];
    const release = await storeOf(db, "orders").lock({ log, onLost: (error) => lost.push(error) });
    await db.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()", [
      `dts pid ${process.pid} on ${hostname()}`.slice(0, 63),
    ]);
    for (let i = 0; i < 50 && lost.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(lost).toHaveLength(1);
    expect(lost[0]).toBeInstanceOf(ConnectorError);
    expect(lost[0]!.message).toMatch(/^the session holding the lock of pipeline "orders" on .* ended$/);
    await release(); // after the loss: nothing left to do, and no second report
    expect(lost).toHaveLength(1);
    const next = await storeOf(db, "orders").lock({ log, onLost: noLoss });
    await next();
  });

  it("keeps the runner from starting a pipeline whose lock is held, and is released after a run", async () => {
    const plan = planOf(`
      pipeline pg_locked { checkpoint: "postgres" }
      source s = jsonl { path: "in.jsonl" }
      sink standby = postgres { url: "${db.url}" }
      flow s -> standby
    `);
    const run = () => runPipeline(plan, { baseDir: "/tmp", connectors: { sources: { jsonl: scriptedSources({ s: [] }).factory } } });
    const holder = storeOf(db, "pg_locked");
    const release = await holder.lock({ log, onLost: noLoss });
    const refused = await run().catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(PipelineFailure);
    expect((refused as PipelineFailure).kind).toBe("start");
    expect((refused as Error).message).toMatch(/^pipeline "pg_locked" is already running: dts-run pid \d+ on host /);
    await release();
    await holder.close();

    const summary = await run();
    expect(summary.stoppedBy).toBe("end");
    expect(await holders(db, "pg_locked")).toBe(0);
  });
});
