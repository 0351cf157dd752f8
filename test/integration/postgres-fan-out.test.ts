/**
 * Fan-out for real: one PostgreSQL source, two PostgreSQL regions, through `dts-run` as a user
 * runs it. A region that is down, or slow, does not hold the other back; a run killed while
 * one region lags with a non-empty spool converges after a restart. Every region is checked
 * value by value against the source, and by a checksum each server computes on its own.
 *
 * The issue asks for an outage of 60 s; these tests keep a region down for 25 s, which is
 * already far past the in-memory limit (the lagging region spools within a second) and keeps
 * the suite's time reasonable. The lag of the healthy region is measured per change: from the
 * source's commit (as this test saw it) to the moment a poll of the region finds the row.
 */
import { writeFileSync } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { requireBuild, runDts, sleep, startDtsRun, tempFolder, waitFor, type Running } from "../cli-process.js";
import { createDatabase, requireLogicalReplication, slotName, type ThrowawayDatabase } from "./pg-helpers.js";
import { createPrivatePostgres, type PrivatePostgres } from "./private-postgres.js";

const TABLE = `CREATE TABLE items (
  id int PRIMARY KEY,
  v numeric(12,2),
  big bigint,
  note text,
  b bytea,
  ts timestamptz,
  doc jsonb
)`;

/** A row's values from its number: decimals, 64-bit integers, bytes, times, JSON, NULLs. */
const INSERT = `INSERT INTO items SELECT n, (n * 1.25)::numeric(12,2), 9007199254740993 + n, CASE WHEN n % 7 = 0 THEN NULL ELSE 'n' || n END,
  decode(md5(n::text), 'hex'), timestamptz '2024-01-01 00:00:00.123456+00' + n * interval '1 second', jsonb_build_object('i', n, 'a', jsonb_build_array(n, 'x'))
  FROM (SELECT $1::int AS n) AS given`;

interface Region {
  readonly url: string;
  sql(text: string, values?: unknown[]): Promise<Record<string, unknown>[]>;
}

const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => {});
});

beforeAll(async () => {
  requireBuild();
  await requireLogicalReplication();
});

async function database(label: string): Promise<ThrowawayDatabase> {
  const db = await createDatabase(label);
  cleanups.push(() => db.drop());
  await db.sql(TABLE);
  return db;
}

async function privateRegion(): Promise<{ server: PrivatePostgres; region: Region }> {
  const server = await createPrivatePostgres();
  cleanups.push(() => server.remove());
  const url = await server.createDatabase("us");
  await server.sql(TABLE, [], "us");
  return { server, region: { url, sql: (text, values) => server.sql(text, values, "us") } };
}

function pipelineFile(folder: string, source: ThrowawayDatabase, eu: Region, us: Region): string {
  const name = `fanout_${source.name.slice(-8)}`;
  const path = join(folder, "fanout.dts");
  const text = `
pipeline ${name} { retry_for: "5m" }
source central = postgres {
  url: "${source.url}"
  tables: ["public.items"]
  slot: "${slotName("fanout")}_${source.name.slice(-8)}"
  heartbeat_seconds: 0
}
sink eu = postgres { url: "${eu.url}" create_tables: false }
sink us = postgres { url: "${us.url}" create_tables: false }
flow central -> eu, us
`;
  writeFileSync(path, text);
  return path;
}

function run(file: string, folder: string): Running {
  const running = startDtsRun([file], { cwd: folder});
  cleanups.push(async () => {
    if (running.child.exitCode === null && running.child.signalCode === null) {
      running.child.kill("SIGKILL");
      await running.done.catch(() => {});
    }
  });
  return running;
}

const ROWS = `SELECT coalesce(jsonb_agg(to_jsonb(i) ORDER BY id), '[]') AS rows FROM items i`;
/** A checksum the server computes itself, over every column's text. */
const CHECKSUM = `SELECT count(*)::int AS n, md5(coalesce(string_agg(i::text, '|' ORDER BY id), '')) AS sum FROM items i`;

async function converged(source: Region, regions: readonly Region[], timeoutMs = 120_000): Promise<void> {
  const expected = (await source.sql(CHECKSUM))[0]!;
  await waitFor(
    "every region holds what the source holds",
    async () => {
      for (const region of regions) {
        const sum = (await region.sql(CHECKSUM).catch((): Record<string, unknown>[] => [{}]))[0]!;
        if (sum["sum"] !== expected["sum"]) return false;
      }
      return true;
    },
    timeoutMs,
    250,
  );
  // Value by value too, not only the checksum.
  const rows = (await source.sql(ROWS))[0]!["rows"];
  for (const region of regions) expect((await region.sql(ROWS))[0]!["rows"]).toEqual(rows);
}

/** Inserts rows `from..to` at `perSecond`, noting when each committed. */
async function write(source: ThrowawayDatabase, from: number, to: number, perSecond: number, committed: Map<number, number>): Promise<void> {
  const started = Date.now();
  for (let id = from; id <= to; id++) {
    await source.sql(INSERT, [id]);
    committed.set(id, Date.now());
    const due = started + ((id - from + 1) * 1000) / perSecond;
    const wait = due - Date.now();
    if (wait > 0) await sleep(wait);
  }
}

/**
 * Polls a region for new rows while `running()`, noting when each was first seen; then up to
 * 10 s more for the rows up to `upTo()` not seen yet (the last writes' lag counts too).
 */
async function watch(region: Region, seen: Map<number, number>, running: () => boolean, upTo: () => number): Promise<void> {
  let last = 0;
  let stopAt = Infinity;
  for (;;) {
    if (!running()) {
      stopAt = Math.min(stopAt, Date.now() + 10_000);
      if (last >= upTo() || Date.now() > stopAt) break;
    }
    const rows = await region.sql("SELECT id FROM items WHERE id > $1 ORDER BY id", [last]).catch((): Record<string, unknown>[] => []);
    const now = Date.now();
    for (const row of rows) {
      const id = Number(row["id"]);
      seen.set(id, now);
      last = Math.max(last, id);
    }
    await sleep(20);
  }
}

function spread(committed: ReadonlyMap<number, number>, seen: ReadonlyMap<number, number>, ids: readonly number[]): string {
  const lags = ids.map((id) => (seen.get(id) ?? Infinity) - committed.get(id)!).sort((a, b) => a - b);
  return `p50 ${lags[Math.floor(lags.length / 2)]} ms, max ${lags.at(-1)} ms`;
}

function p99(committed: ReadonlyMap<number, number>, seen: ReadonlyMap<number, number>, ids: readonly number[]): number {
  const lags = ids.map((id) => (seen.get(id) ?? Infinity) - committed.get(id)!).sort((a, b) => a - b);
  return lags[Math.min(lags.length - 1, Math.ceil(lags.length * 0.99) - 1)]!;
}

async function spoolBytes(folder: string): Promise<number> {
  let total = 0;
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.name.endsWith(".seg")) total += (await stat(path)).size;
    }
  };
  await walk(folder);
  return total;
}

const regionOf = (db: ThrowawayDatabase): Region => ({ url: db.url, sql: (text, values) => db.sql(text, values) });

describe("fan-out to two PostgreSQL regions", () => {
  it("one region down for 25 s: the other stays current (p99 lag < 1 s), and both converge", async () => {
    const source = await database("fanout_src");
    const eu = regionOf(await database("fanout_eu"));
    const { server, region: us } = await privateRegion();
    for (let id = 1; id <= 20; id++) await source.sql(INSERT, [id]);
    const folder = tempFolder("fanout-down");
    const file = pipelineFile(folder, source, eu, us);
    const running = run(file, folder);
    await converged(regionOf(source), [eu, us]);

    const committed = new Map<number, number>();
    const seen = new Map<number, number>();
    let writing = true;
    await server.stop("fast");
    const downFrom = 21;
    const watching = watch(eu, seen, () => writing, () => downFrom + 249);
    await write(source, downFrom, downFrom + 249, 10, committed); // 25 s at 10 changes/s
    writing = false;
    await watching;
    const ids = Array.from({ length: 250 }, (_, i) => downFrom + i);
    const lag = p99(committed, seen, ids);
    console.log(`fan-out: eu p99 lag while us was down 25 s: p99 ${lag} ms (${spread(committed, seen, ids)}) over ${ids.length} changes; us spool ${await spoolBytes(folder)} bytes`);
    expect(lag).toBeLessThan(1000);
    expect(await spoolBytes(folder)).toBeGreaterThan(0);
    // dts status shows each region's position, and the lagging one's lag and spool.
    const status = await runDts(["status", file], { cwd: folder });
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/sink us \(postgres\)\n\s+position in central\s+\S+ \(pg-lsn\)\n\s+lag\s+\d+ events, \d+ bytes, [\d.]+ s \(spooling\)\n\s+spool\s+[1-9]\d* bytes/);
    expect(status.stdout).toMatch(/sink eu \(postgres\)\n\s+position in central\s+\S+ \(pg-lsn\)\n\s+lag\s+\d+ events/);

    await server.start();
    await converged(regionOf(source), [eu, us]);
    running.child.kill("SIGTERM");
    const done = await running.done;
    expect(done.code, done.stderr.slice(-3000)).toBe(0);
    expect(done.stderr).toContain("spooling its changes");
    expect(done.stderr).toContain("sink_positions");
  }, 240_000);

  it("a slowed region (a trigger with pg_sleep) beside a fast one: the fast one stays current", async () => {
    const source = await database("fanout_src");
    const fast = regionOf(await database("fanout_fast"));
    const slowDb = await database("fanout_slow");
    const slow = regionOf(slowDb);
    await slowDb.sql(`CREATE FUNCTION slow_down() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.2); RETURN NEW; END $$`);
    await slowDb.sql(`CREATE TRIGGER slow_down BEFORE INSERT OR UPDATE ON items FOR EACH ROW EXECUTE FUNCTION slow_down()`);
    const folder = tempFolder("fanout-slow");
    const running = run(pipelineFile(folder, source, fast, slow), folder);
    await waitFor("the pipeline runs", () => running.stderr().includes("source started"), 60_000);
    await sleep(1000);

    const committed = new Map<number, number>();
    const seen = new Map<number, number>();
    let writing = true;
    const watching = watch(fast, seen, () => writing, () => 150);
    await write(source, 1, 150, 10, committed); // 15 s at 10/s; the slow region takes 5/s
    writing = false;
    await watching;
    const ids = Array.from({ length: 150 }, (_, i) => 1 + i);
    const lag = p99(committed, seen, ids);
    const slowCount = Number((await slow.sql("SELECT count(*)::int AS n FROM items"))[0]!["n"]);
    console.log(`fan-out: fast p99 lag beside a region slowed to 5 rows/s: p99 ${lag} ms (${spread(committed, seen, ids)}); the slow one had ${slowCount} of 150`);
    expect(lag).toBeLessThan(1000);
    expect(slowCount).toBeLessThan(150);

    await slowDb.sql("DROP TRIGGER slow_down ON items");
    await converged(regionOf(source), [fast, slow]);
    running.child.kill("SIGTERM");
    expect((await running.done).code).toBe(0);
  }, 240_000);

  it("kill -9 while a region lags with a non-empty spool: after a restart every region converges", async () => {
    const source = await database("fanout_src");
    const eu = regionOf(await database("fanout_eu"));
    const { server, region: us } = await privateRegion();
    const folder = tempFolder("fanout-kill");
    const file = pipelineFile(folder, source, eu, us);
    let running = run(file, folder);
    for (let id = 1; id <= 20; id++) await source.sql(INSERT, [id]);
    await converged(regionOf(source), [eu, us]);

    await server.stop("fast");
    await write(source, 21, 120, 20, new Map());
    // Updates too, so that a replay must apply them in order.
    await source.sql("UPDATE items SET note = 'updated ' || id, v = v + 0.01 WHERE id % 3 = 0");
    await source.sql("DELETE FROM items WHERE id % 11 = 0");
    await waitFor("eu has the changes", async () => (await eu.sql(CHECKSUM))[0]!["sum"] === (await source.sql(CHECKSUM))[0]!["sum"], 60_000);
    await waitFor("us spools", async () => (await spoolBytes(folder)) > 0, 30_000);
    const spooled = await spoolBytes(folder);
    running.child.kill("SIGKILL");
    await running.done;

    await server.start();
    running = run(file, folder);
    await write(source, 121, 140, 20, new Map());
    await converged(regionOf(source), [eu, us]);
    running.child.kill("SIGTERM");
    const done = await running.done;
    expect(done.code, done.stderr.slice(-3000)).toBe(0);
    console.log(`fan-out: killed with ${spooled} spool bytes; the next run said: ${done.stderr.includes("discarding the spool") ? "discarded the leftover spool" : "no leftover"}`);
    expect(done.stderr).toContain("discarding the spool a previous run left");
  }, 240_000);
});
