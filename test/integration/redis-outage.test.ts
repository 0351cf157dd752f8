/**
 * A Redis cache that goes away, for real: `dts-run` streams the shared PostgreSQL into a
 * private redis-server (private-redis.ts), with `checkpoint: "redis"`, while changes keep
 * coming, and
 *
 *   - the server is stopped for 30 s: nothing is lost, the run's memory stays bounded while the
 *     changes made meanwhile (far more than it holds) wait in the source, it resumes by itself
 *     with backoff, and its log says that the connection was lost, that writes are retried
 *     (how long down, how much of retry_for left), and that it came back;
 *   - the run is killed (kill -9) and started again, then the server is killed (kill -9) and
 *     started again, mid-stream: the cache ends equal to the table, key by key.
 */
import { readFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireBuild, sleep, startDtsRun, waitFor, type Running } from "../cli-process.js";
import { createDatabase, requireLogicalReplication, type ThrowawayDatabase } from "./pg-helpers.js";
import { createPrivateRedis, type PrivateRedis } from "./private-redis.js";
import { bigText, cacheDifference, ITEMS_DDL, uniquePrefix } from "./redis-helpers.js";

let source: ThrowawayDatabase;
let redis: PrivateRedis;
let folder: string;

beforeAll(async () => {
  requireBuild();
  await requireLogicalReplication();
  source = await createDatabase("redis_outage");
  redis = await createPrivateRedis();
  folder = mkdtempSync(join(tmpdir(), "dts-redis-outage-"));
});

afterAll(async () => {
  await redis?.remove();
  await source?.drop();
  if (folder !== undefined) rmSync(folder, { recursive: true, force: true });
});

async function difference(table: string, prefix: string): Promise<string | undefined> {
  if (!redis.running) return "the server is stopped";
  const client = await redis.client();
  try {
    return await cacheDifference(client, source, table, prefix, "json");
  } finally {
    client.disconnect();
  }
}

async function untilEqual(table: string, prefix: string, timeoutMs = 120_000): Promise<void> {
  let last: string | undefined;
  try {
    await waitFor("the cache equals the table", async () => (last = await difference(table, prefix).catch((error: Error) => error.message)) === undefined, timeoutMs, 500);
  } catch (error) {
    throw new Error(`${(error as Error).message}: ${last}`);
  }
}

/** A table, a pipeline file streaming it into the private Redis, and its key prefix. */
async function setUp(label: string): Promise<{ table: string; prefix: string; file: string }> {
  const prefix = uniquePrefix(label);
  const table = `items_${prefix.slice(-8)}`;
  await source.sql(`CREATE TABLE ${table} ${ITEMS_DDL}`);
  await source.sql(`INSERT INTO ${table} (id, name, price, qty, flag, at, data, big) SELECT i, 'item ' || i, i * 1.5, i, true, now(), decode(md5(i::text), 'hex'), ${bigText("i::text")} FROM generate_series(1, 50) AS i`);
  const file = join(folder, `${prefix}.dts`);
  writeFileSync(
    file,
    `pipeline ${prefix} { checkpoint: "redis" }
source pg = postgres { url: "${source.url}", tables: ["public.${table}"], slot: "${prefix}" }
sink cache = redis { url: "${redis.url}", key: "${prefix}:\${key.id}", retry_for: "3m" }
flow pg -> cache
`,
  );
  return { table, prefix: `${prefix}:`, file };
}

/** One round of changes of every kind, in a few transactions. */
async function round(table: string, n: number): Promise<void> {
  const base = 1000 * n;
  await source.sql(`INSERT INTO ${table} (id, name, price, qty, flag, at, data, big) SELECT ${base} + i, 'r${n} ' || i, i, i, NULL, now(), NULL, ${bigText(`'${n}-' || i`)} FROM generate_series(1, 5) AS i`);
  await source.sql(`UPDATE ${table} SET name = name || '+', price = price + 1 WHERE id < 1000000 AND id % 4 = ${n % 4}`);
  await source.sql(`UPDATE ${table} SET id = id + 500 WHERE id = ${base + 1}`);
  await source.sql(`UPDATE ${table} SET big = ${bigText(`'b${n}' || id`)} WHERE id = ${base + 2}`);
  await source.sql(`DELETE FROM ${table} WHERE id = ${base + 3} OR (id < 1000000 AND id % 13 = ${n % 13})`);
}

/** Changes while `running` is true, a round every `everyMs`. */
function workload(table: string, everyMs: number): { stop(): Promise<number> } {
  let going = true;
  let rounds = 0;
  const done = (async () => {
    while (going) {
      rounds++;
      await round(table, rounds);
      await sleep(everyMs);
    }
  })();
  return {
    async stop() {
      going = false;
      await done;
      return rounds;
    },
  };
}

function rssKb(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match === null ? 0 : Number(match[1]);
}

function logLines(run: Running): { msg: string; [field: string]: unknown }[] {
  return run
    .stderr()
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as { msg: string });
}

describe("a Redis cache that goes away", () => {
  it("rides out a 30 s outage with bounded memory, resumes by itself, and loses nothing", async () => {
    const { table, prefix, file } = await setUp("outage");
    const run = startDtsRun([file]);
    try {
      await untilEqual(table, prefix);
      const changes = workload(table, 300);
      await sleep(2000);
      const before = rssKb(run.child.pid!);
      await redis.stop("graceful");
      const downAt = Date.now();
      // Meanwhile, far more changes than the run holds: 100,000 rows of 1 kB.
      await source.sql(`INSERT INTO ${table} (id, name, price, qty, flag, at, data, big)
        SELECT 1000000 + i, repeat(md5(i::text), 30), i, i, false, now(), NULL, NULL FROM generate_series(1, 100000) AS i`);
      let peak = before;
      while (Date.now() - downAt < 30_000) {
        peak = Math.max(peak, rssKb(run.child.pid!));
        await sleep(250);
      }
      await redis.start();
      await sleep(3000);
      const rounds = await changes.stop();
      // Some of the rows made during the outage change again after it.
      await source.sql(`UPDATE ${table} SET name = 'after' WHERE id > 1000000 AND id % 1000 = 0`);
      await source.sql(`DELETE FROM ${table} WHERE id > 1000000 AND id % 1000 = 1`);
      expect(rounds).toBeGreaterThan(5);
      const outagePeak = peak;
      const sampler = setInterval(() => (peak = Math.max(peak, rssKb(run.child.pid!))), 250);
      try {
        await untilEqual(table, prefix, 180_000);
      } finally {
        clearInterval(sampler);
      }
      // The 100 MB of changes made during the outage waited in PostgreSQL, not in the run (here:
      // 93 MB before, 125-131 MB at most during the outage). Catching up allocates fast and V8
      // collects lazily (380-420 MB at most here), still far below the backlog's size in events.
      expect(outagePeak - before, `RSS grew from ${before} kB to ${outagePeak} kB during the outage`).toBeLessThan(60_000);
      expect(peak, `RSS peaked at ${peak} kB while catching up`).toBeLessThan(600_000);

      const lines = logLines(run);
      const messages = lines.map((line) => line.msg);
      expect(messages.some((m) => /^lost the connection to redis:\/\/127\.0\.0\.1:\d+; reconnecting in the background$/.test(m))).toBe(true);
      expect(messages.some((m) => /^connected to redis:\/\/127\.0\.0\.1:\d+ again$/.test(m))).toBe(true);
      // A write going out when the server went fails (if one was); then every write waits for
      // the lock, which is taken again with backoff once the server is back.
      for (const write of lines.filter((line) => line.msg === "writing to sink cache failed; retrying")) {
        expect(write).toMatchObject({ error: expect.stringMatching(/^writing to sink cache on redis:\/\/127\.0\.0\.1:\d+: the connection is down/) });
      }
      expect(messages).toContain("lost the pipeline's lock; holding every write until it is taken again");
      const retries = lines.filter((line) => line.msg === "taking the pipeline's lock again failed; retrying");
      expect(retries.length).toBeGreaterThan(3);
      expect(retries.at(-1)).toMatchObject({
        down_for: expect.stringMatching(/^(1\d|2\d|3\d)\.\ds$/),
        left: expect.stringMatching(/^\d+m\d\ds$/),
        error: expect.stringMatching(/^cannot connect to redis:\/\/127\.0\.0\.1:\d+: the connection is down \(connect ECONNREFUSED/),
      });
      expect(Number(String(retries.at(-1)!["delay_ms"]))).toBeLessThanOrEqual(10_000);
      expect(messages).toContain("took the pipeline's lock again; writes go on");
    } finally {
      run.child.kill("SIGTERM");
      await run.done;
    }
    expect((await run.done).code, run.stderr().slice(-2000)).toBe(0);
  }, 400_000);

  it("ends equal to the table after a kill -9 of the run and a kill -9 of the server, mid-stream", async () => {
    const { table, prefix, file } = await setUp("crash");
    let run = startDtsRun([file]);
    const changes = workload(table, 100);
    try {
      await run.stderrContains('"msg":"streaming changes"');
      await sleep(2000);
      run.child.kill("SIGKILL");
      await run.done;
      await sleep(1000);
      run = startDtsRun([file]);
      await run.stderrContains('"msg":"streaming changes"');
      await sleep(2000);
      await redis.stop("kill");
      await sleep(2000);
      await redis.start();
      await sleep(4000);
      const rounds = await changes.stop();
      expect(rounds).toBeGreaterThan(10);
      await untilEqual(table, prefix);
      expect(run.stderr()).toMatch(/lost the connection to redis:\/\/127\.0\.0\.1:\d+/);
    } finally {
      await changes.stop();
      run.child.kill("SIGTERM");
    }
    const finished = await run.done;
    expect(finished.code, finished.stderr.slice(-2000)).toBe(0);
  }, 300_000);
});
