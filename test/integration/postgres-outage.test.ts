/**
 * A PostgreSQL target that goes away, for real: a private cluster (private-postgres.ts) is
 * stopped and restarted under a running pipeline whose source is the shared server.
 *
 *   - an outage longer than the old budget of ten attempts is ridden out within retry_for,
 *     and the target ends equal to the source;
 *   - an outage longer than a short retry_for ends `dts-run` with exit 3 and how long the
 *     target was down;
 *   - with checkpoint: "postgres", a restart of the target ends the lock's session: the run
 *     takes the lock again and goes on;
 *   - a second run that takes the lock while it is away still stops the first, which writes
 *     nothing more;
 *   - a lock session that outlived its connection (the server has not noticed the client is
 *     gone) is recognised as this run's own, ended, and the lock taken again.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, connect as connectTcp, type Server, type Socket } from "node:net";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { advisoryLockKey } from "../../src/connectors/postgres/checkpoint-store.js";
import { PipelineFailure, runPipeline, type RunSummary } from "../../src/runtime/run.js";
import { planOf } from "../unit/runtime-fixtures.js";
import { createDatabase, eventually, recordingLogger, type RecordingLogger, type ThrowawayDatabase } from "./pg-helpers.js";
import { requireBuild, runDtsRun, startDtsRun } from "../cli-process.js";
import { createPrivatePostgres, freePort, type PrivatePostgres } from "./private-postgres.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const unique = (prefix: string) => `${prefix}_${randomBytes(4).toString("hex")}`;

/** Retries of a test's scale: a restored target is found within a second. */
const QUICK = { initialDelayMs: 100, maxDelayMs: 1000 };

let source: ThrowawayDatabase;
let target: PrivatePostgres;
let folder: string;

beforeAll(async () => {
  requireBuild();
  source = await createDatabase("outage_source");
  await source.sql("CREATE TABLE items (id integer PRIMARY KEY, note text NOT NULL, payload bytea)");
  await source.sql("INSERT INTO items SELECT i, 'item ' || i, decode(md5(i::text), 'hex') FROM generate_series(1, 200) AS i");
  target = await createPrivatePostgres();
  folder = mkdtempSync(join(tmpdir(), "dts-outage-"));
});

afterAll(async () => {
  await target?.remove();
  await source?.drop();
  if (folder !== undefined) rmSync(folder, { recursive: true, force: true });
});

type Item = { id: number; note: string; payload: string | null };

async function rowsOf(query: (sql: string) => Promise<Item[]>): Promise<Item[]> {
  return query("SELECT id, note, encode(payload, 'hex') AS payload FROM items ORDER BY id");
}

const sourceRows = () => rowsOf((sql) => source.sql<Item>(sql));

async function targetRows(database: string): Promise<Item[] | undefined> {
  try {
    return await rowsOf((sql) => target.sql<Item>(sql, [], database));
  } catch {
    return undefined; // stopped, or the table not there yet
  }
}

async function untilEqual(database: string, timeoutMs = 60_000): Promise<void> {
  await eventually("the target equals the source", async () => JSON.stringify(await targetRows(database)) === JSON.stringify(await sourceRows()), timeoutMs);
}

/** Changes of every kind, in a few transactions. */
async function change(round: number): Promise<void> {
  await source.sql(`INSERT INTO items SELECT i, 'round ${round} ' || i, NULL FROM generate_series(${1000 * round + 1}, ${1000 * round + 50}) AS i`);
  await source.sql(`UPDATE items SET note = note || ' changed in ${round}' WHERE id % 7 = ${round % 7}`);
  await source.sql(`DELETE FROM items WHERE id % 11 = ${round % 11}`);
}

interface Started {
  readonly database: string;
  readonly pipeline: string;
  readonly log: RecordingLogger;
  readonly stop: AbortController;
  readonly running: Promise<RunSummary>;
}

/** A pipeline from the shared server's items into a new database of the private target, running. */
async function start(settings: string, sinkOptions = ""): Promise<Started> {
  const database = unique("target");
  await target.createDatabase(database);
  const pipeline = unique("outage");
  const plan = planOf(
    `
    pipeline ${pipeline} { ${settings} }
    source shop = postgres { url: "${source.url}", tables: ["public.items"] }
    sink replica = postgres { url: "${target.url(database)}", create_tables: true ${sinkOptions} }
    flow shop -> replica
  `,
    join(folder, `${pipeline}.dts`),
  );
  const log = recordingLogger();
  const stop = new AbortController();
  const running = runPipeline(plan, { baseDir: folder, signal: stop.signal, log, retry: QUICK, checkpointSaveIntervalMs: 100 });
  running.catch(() => {}); // awaited by the test
  await untilEqual(database);
  return { database, pipeline, log, stop, running };
}

function retries(log: RecordingLogger, what: string) {
  return log.lines.filter((line) => line.level === "warn" && line.message === `${what} failed; retrying`);
}

/** The server processes holding the pipeline's advisory lock in `database` of the target. */
async function lockHolders(database: string, pipeline: string): Promise<number[]> {
  const key = BigInt.asUintN(64, advisoryLockKey(pipeline));
  const rows = await target.sql<{ pid: number }>(
    `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1
       AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
       AND classid = $1::oid AND objid = $2::oid`,
    [(key >> 32n).toString(), (key & 0xffffffffn).toString()],
    database,
  );
  return rows.map((row) => row.pid);
}

describe("a PostgreSQL target that goes away", () => {
  it("rides out a 15 s outage — longer than the old ten attempts — within retry_for, and ends equal", async () => {
    const run = await start("", `, retry_for: "2m"`);
    await target.stop();
    const downAt = performance.now();
    await change(1);
    await change(2);
    await sleep(15_000 - (performance.now() - downAt));
    await target.start();
    await change(3);
    await untilEqual(run.database);
    run.stop.abort();
    const summary = await run.running;
    expect(summary.stoppedBy).toBe("signal");

    const attempts = retries(run.log, "writing to sink replica");
    // Ten attempts were the whole budget before; capped at 1 s apart, 15 s take more.
    expect(attempts.length).toBeGreaterThan(10);
    for (const attempt of attempts) {
      expect(attempt.fields).toMatchObject({ sink: "replica", down_for: expect.stringMatching(/^[\d.]+m?s$/), left: expect.stringMatching(/^\d+m\d\ds$|^[\d.]+m?s$/) });
    }
    expect(attempts.at(-1)!.fields!["down_for"]).toMatch(/^1\d\.\ds$/);
  });

  it("ends dts-run with exit 3 and how long the target was down, once the outage outlasts retry_for", async () => {
    const database = unique("target");
    await target.createDatabase(database);
    const pipeline = unique("outage");
    const file = join(folder, `${pipeline}.dts`);
    writeFileSync(
      file,
      `pipeline ${pipeline} { retry_for: "1h" }
source shop = postgres { url: "${source.url}", tables: ["public.items"] }
sink replica = postgres { url: "${target.url(database)}", create_tables: true, retry_for: "4s" }
flow shop -> replica
`,
    );
    const running = startDtsRun([file]);
    try {
      await untilEqual(database);
      await target.stop();
      await change(4);
      const finished = await Promise.race([running.done, sleep(60_000).then(() => undefined)]);
      expect(finished, "dts-run still running a minute after its target went away").toBeDefined();
      expect(finished!.code).toBe(3);
      expect(finished!.stderr).toMatch(/dts-run: error: sink replica: writing to sink replica failed for 4\.\ds \(\d+ attempts\), longer than its retry_for of 4s; last error: .*ECONNREFUSED/);
      expect(finished!.stderr).toMatch(/"msg":"writing to sink replica failed; retrying".*"down_for":"[\d.]+m?s","left":"[\d.]+m?s"/);
    } finally {
      running.child.kill("SIGKILL");
      await target.start();
    }
    // What was durable stays; a run after the outage brings the target level again.
    const again = await runDtsRun([file, "--until-caught-up"]);
    expect(again.code, again.stderr).toBe(0);
    expect(await targetRows(database)).toEqual(await sourceRows());
  });

  it('with checkpoint: "postgres", takes the lock again after the target restarts, and goes on', async () => {
    const run = await start(`checkpoint: "postgres"`);
    const before = await lockHolders(run.database, run.pipeline);
    expect(before).toHaveLength(1);
    await target.stop();
    await change(5);
    await sleep(3000);
    await target.start();
    await change(6);
    await untilEqual(run.database);
    await eventually("the lock is held again", async () => (await lockHolders(run.database, run.pipeline)).length === 1);
    expect(run.log.lines.map((line) => line.message)).toContain("took the pipeline's lock again; writes go on");
    expect(run.log.lines.some((line) => line.message === "lost the pipeline's lock; holding every write until it is taken again")).toBe(true);
    run.stop.abort();
    const summary = await run.running;
    expect(summary.stoppedBy).toBe("signal");
    // The checkpoint kept in the target moved past the restart.
    const [stored] = await target.sql<{ token: string }>("SELECT checkpoint->'position'->>'token' AS token FROM dts.checkpoints", [], run.database);
    expect(stored!.token).toBe(summary.sources["shop"]!.checkpoint!.position!.token);
    expect(await lockHolders(run.database, run.pipeline)).toEqual([]);
  });

  it("stops, writing nothing more, when another run takes the lock while it is away", async () => {
    const run = await start(`checkpoint: "postgres"`);
    const [holder] = await lockHolders(run.database, run.pipeline);
    // Another dts-run (the parent of this process stands for one: it exists) queues for the lock.
    const other = new pg.Client({ connectionString: target.url(run.database), application_name: `dts pid ${process.ppid} on ${hostname()}` });
    other.on("error", () => {});
    await other.connect();
    try {
      const otherPid = (await other.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
      const granted = other.query("SELECT pg_advisory_lock($1::bigint)", [advisoryLockKey(run.pipeline).toString()]);
      await eventually("the other run waits for the lock", async () => {
        const rows = await target.sql("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND pid = $1", [otherPid], run.database);
        return rows.length === 1;
      });
      const rowsBefore = await targetRows(run.database);
      await target.sql("SELECT pg_terminate_backend($1)", [holder], run.database);
      await granted;
      await change(7);
      const failure = await run.running.catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(PipelineFailure);
      expect((failure as PipelineFailure).kind).toBe("connector");
      expect((failure as Error).message).toMatch(
        new RegExp(
          `^checkpoint store: lost the pipeline's lock, and another run took it meanwhile; stopping this run, which wrote nothing since\\. ` +
            `pipeline "${run.pipeline}" is already running: dts-run pid ${process.ppid} on host `,
        ),
      );
      expect(await targetRows(run.database)).toEqual(rowsBefore);
      expect(await lockHolders(run.database, run.pipeline)).toEqual([otherPid]);
    } finally {
      await other.end();
    }
  });

  it("ends this run's own lock session when it outlived its connection, and takes the lock again", async () => {
    // The lock's connection goes through a proxy that can drop the client's side alone: the
    // server keeps the session, and the lock, as it would after a network cut.
    const proxy = await tcpProxy(target.port);
    try {
      const database = unique("target");
      await target.createDatabase(database);
      const pipeline = unique("outage");
      const log = recordingLogger();
      const stop = new AbortController();
      const running = runPipeline(
        planOf(
          `
          pipeline ${pipeline} { checkpoint: "postgres" }
          source shop = postgres { url: "${source.url}", tables: ["public.items"] }
          sink replica = postgres { url: "postgres://postgres@127.0.0.1:${proxy.port}/${database}", create_tables: true }
          flow shop -> replica
        `,
          join(folder, `${pipeline}.dts`),
        ),
        { baseDir: folder, signal: stop.signal, log, retry: QUICK },
      );
      running.catch(() => {});
      await untilEqual(database);
      const [holder] = await lockHolders(database, pipeline);
      const lockSocket = proxy.connectionOf(holder!);
      expect(lockSocket, "the lock's connection goes through the proxy").toBeDefined();
      proxy.cutClientSide(lockSocket!);
      await eventually("the lock is held by a new session", async () => {
        const holders = await lockHolders(database, pipeline);
        return holders.length === 1 && holders[0] !== holder;
      });
      expect(log.lines.map((line) => line.message)).toContain("the pipeline's lock is still held by this run's previous session, whose connection dropped; ending it");
      await change(8);
      await untilEqual(database);
      stop.abort();
      expect((await running).stoppedBy).toBe("signal");
    } finally {
      await proxy.close();
    }
  });
});

/**
 * A TCP proxy to the target that knows which server process each connection is (from the
 * BackendKeyData message the server sends at start-up) and can close a connection's client
 * side while leaving its server side open.
 */
async function tcpProxy(serverPort: number): Promise<{
  readonly port: number;
  connectionOf(serverProcess: number): Socket | undefined;
  cutClientSide(client: Socket): void;
  close(): Promise<void>;
}> {
  const byProcess = new Map<number, Socket>();
  const upstreams = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connectTcp(serverPort, "127.0.0.1");
    upstreams.add(upstream);
    let seen = Buffer.alloc(0);
    let found = false;
    upstream.on("data", (chunk: Buffer) => {
      if (!found) {
        seen = Buffer.concat([seen, chunk]);
        // BackendKeyData: 'K', length 12, process id, secret key.
        for (let at = seen.indexOf(0x4b); at >= 0 && at + 9 <= seen.length; at = seen.indexOf(0x4b, at + 1)) {
          if (seen.readInt32BE(at + 1) === 12) {
            byProcess.set(seen.readInt32BE(at + 5), client);
            found = true;
            break;
          }
        }
      }
      if (!client.destroyed) client.write(chunk);
    });
    client.on("data", (chunk: Buffer) => upstream.write(chunk));
    client.on("error", () => {});
    upstream.on("error", () => client.destroy());
    upstream.on("close", () => client.destroy());
    client.on("close", () => {
      if (!(client as Socket & { cut?: boolean }).cut) upstream.destroy();
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    port,
    connectionOf: (serverProcess) => byProcess.get(serverProcess),
    cutClientSide(client) {
      (client as Socket & { cut?: boolean }).cut = true;
      client.destroy();
    },
    async close() {
      for (const upstream of upstreams) upstream.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
