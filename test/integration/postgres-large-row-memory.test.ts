/**
 * One very large value must not take many times its size in memory: a bytea row of
 * `ROW_MB` goes through dts-run (the built CLI, in a child process whose peak RSS is read from
 * /proc at its exit) by each of the three ways a PostgreSQL row travels to a PostgreSQL sink —
 * the snapshot's COPY bytes loaded as they are, the snapshot's rows made into events (a `map`
 * step), and the change stream — and each run's peak must stay within the peak of the same
 * pipeline over a small row plus four times the row. Before the work recorded in
 * docs/performance.md, a 50 MB row took 6, 15 and 10 times its size on these three ways.
 *
 * The row is 32 MB rather than 50 to keep the test to seconds; the bound is the same ratio.
 * The value must arrive intact too: the target's md5 is the source's.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDatabase, type ThrowawayDatabase } from "./pg-helpers.js";
import { requireBuild, ROOT } from "../cli-process.js";

const ROW_MB = 32;
const ROW_BYTES = ROW_MB * 1024 * 1024;
const PRELOAD = resolve(ROOT, "test/integration/peak-rss.cjs");
const DTS_RUN = resolve(ROOT, "dist/src/cli/dts-run.js");

let source: ThrowawayDatabase;
let target: ThrowawayDatabase;
let folder: string;
let baselineKb = 0;

/** Runs `dts-run FILE --until-caught-up` in a child process; its exit code, stderr and peak RSS in kB. */
async function measured(file: string): Promise<{ code: number | null; stderr: string; peakKb: number }> {
  const rssFile = join(folder, `${Math.random().toString(36).slice(2)}.rss`);
  const child = spawn(process.execPath, ["--require", PRELOAD, DTS_RUN, file, "--until-caught-up", "--log-level", "warn"], {
    env: { ...process.env, DTS_PEAK_RSS_FILE: rssFile },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((done) => child.on("close", done));
  return { code, stderr, peakKb: Number(readFileSync(rssFile, "utf8")) };
}

function pipeline(name: string, tables: string, steps: string, targetUrl: string): string {
  const file = join(folder, `${name}.dts`);
  writeFileSync(
    file,
    `pipeline ${name}
source shop = postgres { url: "${source.url}", tables: [${tables}], slot: "${name}_${source.name.slice(-8)}" }
sink copy = postgres { url: "${targetUrl}", create_tables: true }
flow shop ${steps} -> copy
`,
  );
  return file;
}

async function md5s(db: ThrowawayDatabase, table: string): Promise<{ id: number; md5: string; length: number }[]> {
  return db.sql(`SELECT id, md5(data) AS md5, length(data) AS length FROM ${table} ORDER BY id`);
}

function withinBound(peakKb: number, what: string): void {
  const boundKb = baselineKb + (4 * ROW_BYTES) / 1024;
  const overMb = (peakKb - baselineKb) / 1024;
  if (process.env.DTS_TEST_LOG) console.error(`${what}: peak ${Math.round(peakKb / 1024)} MB = small row's ${Math.round(baselineKb / 1024)} MB + ${(overMb / ROW_MB).toFixed(2)}× the row`);
  expect(peakKb, `${what}: peak ${Math.round(peakKb / 1024)} MB, ${(overMb / ROW_MB).toFixed(2)}× the row over the small row's ${Math.round(baselineKb / 1024)} MB`).toBeLessThanOrEqual(boundKb);
}

beforeAll(async () => {
  requireBuild();
  folder = mkdtempSync(join(tmpdir(), "dts-large-row-"));
  source = await createDatabase("large_row_source");
  target = await createDatabase("large_row_target");
  await source.sql("CREATE TABLE big (id integer PRIMARY KEY, data bytea); ALTER TABLE big ALTER data SET STORAGE EXTERNAL");
  await source.sql("CREATE TABLE small (id integer PRIMARY KEY, data bytea)");
  // Stored uncompressed (STORAGE EXTERNAL), so the bytes need not look random.
  await source.sql(`INSERT INTO big SELECT 1, decode(repeat(md5('1'), ${ROW_BYTES / 16}), 'hex')`);
  await source.sql("INSERT INTO small SELECT 1, decode(repeat('ab', 1024), 'hex')");
}, 120_000);

afterAll(async () => {
  await source?.drop();
  await target?.drop();
  if (folder !== undefined) rmSync(folder, { recursive: true, force: true });
});

describe(`a ${ROW_MB} MB bytea row, PostgreSQL to PostgreSQL`, () => {
  it("first, the same pipeline's peak over a small row", async () => {
    const run = await measured(pipeline("small_row", `"public.small"`, "| map { ...row }", target.url));
    expect(run.code, run.stderr).toBe(0);
    baselineKb = run.peakKb;
    expect(await md5s(target, "small")).toEqual(await md5s(source, "small"));
  }, 120_000);

  it("snapshot, COPY bytes loaded as they are: within the small row's peak plus four times the row", async () => {
    expect(baselineKb).toBeGreaterThan(0);
    const run = await measured(pipeline("bulk", `"public.big"`, "", target.url));
    expect(run.code, run.stderr).toBe(0);
    expect(await md5s(target, "big")).toEqual(await md5s(source, "big"));
    withinBound(run.peakKb, "snapshot, bulk");
  }, 120_000);

  it("snapshot, rows made into events by a map step: within the same bound", async () => {
    const events = await createDatabase("large_row_events");
    try {
      const run = await measured(pipeline("events", `"public.big"`, "| map { ...row }", events.url));
      expect(run.code, run.stderr).toBe(0);
      expect(await md5s(events, "big")).toEqual(await md5s(source, "big"));
      withinBound(run.peakKb, "snapshot, events");
    } finally {
      await events.drop();
    }
  }, 120_000);

  it("change stream: within the same bound", async () => {
    // The bulk pipeline has copied the table; its next run streams what changed since.
    await source.sql(`INSERT INTO big SELECT 2, decode(repeat(md5('2'), ${ROW_BYTES / 16}), 'hex')`);
    const run = await measured(join(folder, "bulk.dts"));
    expect(run.code, run.stderr).toBe(0);
    const copied = await md5s(target, "big");
    expect(copied).toEqual(await md5s(source, "big"));
    expect(copied.map((row) => row.length)).toEqual([ROW_BYTES, ROW_BYTES]);
    withinBound(run.peakKb, "stream");
  }, 120_000);
});
