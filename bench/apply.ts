/**
 * `npm run bench apply [CHANGES] [SECONDS]`: the applied change stream PostgreSQL → PostgreSQL,
 * against PostgreSQL's own logical replication (`CREATE SUBSCRIPTION … copy_data = false`),
 * both reading the same WAL of the same source into identical target databases of one cluster.
 *
 *   apply rate   a backlog of CHANGES changes (80% updates, 10% deletes, 10% inserts, in
 *                transactions of 10), made while neither side runs; then the subscription is
 *                enabled and timed until the last transaction's marker row is in its target,
 *                and `dts-run --until-caught-up` is timed to its exit (start-up included: the
 *                conservative side). Both targets are then compared with the source.
 *   latency      pgbench inserts into a table at 2,500 rows/s for SECONDS seconds while both
 *                run live; each target table has an `applied_at` column defaulting to
 *                clock_timestamp(), and latency is applied_at − the source row's created_at
 *                (one server, one clock). The first second is left out (start-up).
 *
 * The subscription's slot and dts's slot are made before each workload, so both see the same
 * changes; each side runs alone for the rate, both together for latency (as they would in
 * production, sharing the machine).
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { workloadProcedure } from "./pg.js";
import { bounded, compared, type BenchContext } from "./report.js";
import { adminQuery, createBenchDatabase, fillOrdersSql, ordersTableSql, PG_HOST, PG_PORT, type BenchDatabase } from "./support.js";

const DTS_RUN = fileURLToPath(new URL("../src/cli/dts-run.js", import.meta.url));
const RATE_TARGET = 1.0;
const P50_MAX_MS = 3;
const P99_MAX_MS = 15;
const LOAD_PER_SECOND = 2500;

export async function benchApply(args: readonly string[], bench: BenchContext): Promise<void> {
  const changes = Number(args[0] ?? (bench.quick ? 30_000 : 200_000));
  const seconds = Number(args[1] ?? (bench.quick ? 8 : 20));
  const line = (text: string) => process.stdout.write(`${text}\n`);
  line(`dts bench apply: ${changes.toLocaleString("en-US")} changes in transactions of 10, then ${seconds} s at ${LOAD_PER_SECOND} rows/s; ${cpus().length} cores, load ${loadavg()[0]!.toFixed(2)}`);
  await applyRate(changes, bench, line);
  await latency(seconds, bench, line);
}

async function applyRate(changes: number, bench: BenchContext, line: (text: string) => void): Promise<void> {
  const rows = Math.max(changes, 10_000);
  const source = await createBenchDatabase("apply_src");
  const native = await createBenchDatabase("apply_native");
  const dts = await createBenchDatabase("apply_dts");
  const dir = await mkdtemp(join(tmpdir(), "dts-bench-apply-"));
  const slot = `bench_apply_dts_${process.pid}`;
  const subscription = `bench_apply_sub_${process.pid}`;
  try {
    for (const db of [source, native, dts]) {
      await adminQuery(db.url, ordersTableSql("public.orders"));
      await adminQuery(db.url, fillOrdersSql("public.orders", rows));
      await adminQuery(db.url, "VACUUM ANALYZE public.orders");
    }
    await adminQuery(source.url, "CREATE PUBLICATION bench_apply FOR TABLE public.orders");
    const file = await pipelineFile(dir, "rate", source, dts, slot, ["public.orders"]);
    await dtsRun(file, ["--until-caught-up"]); // makes the slot, at the WAL's end now
    await subscribe(native, source, subscription, "bench_apply");
    await adminQuery(source.url, workloadProcedure);
    await adminQuery(source.url, "CALL bench_changes($1, $2, 10)", [changes, rows]);
    await adminQuery(source.url, "INSERT INTO public.orders SELECT -1, 0, 'marker', 0, 'EUR', 1, false, NULL, now(), now()");

    const nativeStarted = performance.now();
    await adminQuery(native.url, `ALTER SUBSCRIPTION ${subscription} ENABLE`);
    await untilRow(native, "SELECT 1 FROM public.orders WHERE id = -1");
    const nativeSeconds = (performance.now() - nativeStarted) / 1000;
    const dtsSeconds = (await dtsRun(file, ["--until-caught-up"])).seconds;
    await untilRow(dts, "SELECT 1 FROM public.orders WHERE id = -1");
    await sameAs(source, [native, dts]);
    const nativeRate = Math.round(changes / nativeSeconds);
    const dtsRate = Math.round(changes / dtsSeconds);
    line(`apply rate  native logical replication ${nativeSeconds.toFixed(2)} s ${nativeRate.toLocaleString("en-US").padStart(9)} changes/s`);
    line(`            dts-run → postgres           ${dtsSeconds.toFixed(2)} s ${dtsRate.toLocaleString("en-US").padStart(9)} changes/s   ratio ${(nativeSeconds / dtsSeconds).toFixed(2)}`);
    bench.record(compared("apply: rate PG→PG vs native logical replication", dtsRate, "changes/s", nativeRate, nativeSeconds / dtsSeconds, RATE_TARGET));
  } finally {
    await dropSubscription(native, subscription);
    await adminQuery(source.url, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active", [slot]).catch(() => {});
    await rm(dir, { recursive: true, force: true });
    for (const db of [native, dts, source]) await db.drop();
  }
}

async function latency(seconds: number, bench: BenchContext, line: (text: string) => void): Promise<void> {
  const source = await createBenchDatabase("lat_src");
  const native = await createBenchDatabase("lat_native");
  const dts = await createBenchDatabase("lat_dts");
  const dir = await mkdtemp(join(tmpdir(), "dts-bench-lat-"));
  const slot = `bench_lat_dts_${process.pid}`;
  const subscription = `bench_lat_sub_${process.pid}`;
  let running: ReturnType<typeof spawn> | undefined;
  try {
    await adminQuery(source.url, "CREATE TABLE public.lat (id bigserial PRIMARY KEY, payload text NOT NULL, created_at timestamptz NOT NULL DEFAULT clock_timestamp())");
    for (const db of [native, dts]) {
      await adminQuery(db.url, "CREATE TABLE public.lat (id bigint PRIMARY KEY, payload text NOT NULL, created_at timestamptz NOT NULL, applied_at timestamptz NOT NULL DEFAULT clock_timestamp())");
    }
    await adminQuery(source.url, "CREATE PUBLICATION bench_lat FOR TABLE public.lat");
    const file = await pipelineFile(dir, "latency", source, dts, slot, ["public.lat"]);
    await dtsRun(file, ["--until-caught-up"]);
    await subscribe(native, source, subscription, "bench_lat");
    await adminQuery(native.url, `ALTER SUBSCRIPTION ${subscription} ENABLE`);
    running = spawn(process.execPath, [DTS_RUN, file, "--log-level", "warn"], { stdio: "ignore" });
    await sleep(1500); // both connected and streaming before the load starts
    const script = join(dir, "insert.sql");
    await writeFile(script, "INSERT INTO public.lat (payload) VALUES (repeat('x', 100));\n");
    await command("pgbench", ["-n", "-h", PG_HOST, "-p", String(PG_PORT), "-U", "postgres", "-c", "4", "-j", "2", "-R", String(LOAD_PER_SECOND), "-T", String(seconds), "-f", script, source.name]);
    const [{ n }] = await adminQuery<{ n: string }>(source.url, "SELECT count(*) AS n FROM public.lat");
    for (const db of [native, dts]) await untilRow(db, `SELECT 1 FROM public.lat HAVING count(*) >= ${Number(n)}`);
    const measure = async (db: BenchDatabase) => {
      const [r] = await adminQuery<{ p50: number; p99: number; max: number; n: string }>(
        db.url,
        `WITH l AS (SELECT (extract(epoch FROM applied_at - created_at) * 1000)::float8 AS ms FROM public.lat
                    WHERE created_at > (SELECT min(created_at) FROM public.lat) + interval '1 second')
         SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50, percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99, max(ms) AS max, count(*) AS n FROM l`,
      );
      return r!;
    };
    const ours = await measure(dts);
    const theirs = await measure(native);
    const ms = (x: number) => `${x.toFixed(1)} ms`;
    line(`latency     ${Number(n).toLocaleString("en-US")} rows in ${seconds} s: native p50 ${ms(theirs.p50)}, p99 ${ms(theirs.p99)}, max ${ms(theirs.max)}`);
    line(`            dts-run → postgres: p50 ${ms(ours.p50)}, p99 ${ms(ours.p99)}, max ${ms(ours.max)}`);
    const r1 = (x: number) => Math.round(x * 10) / 10;
    bench.record(bounded("apply: commit-to-target latency p50 at 2,500 rows/s", r1(ours.p50), "ms", P50_MAX_MS, r1(theirs.p50)));
    bench.record(bounded("apply: commit-to-target latency p99 at 2,500 rows/s", r1(ours.p99), "ms", P99_MAX_MS, r1(theirs.p99)));
  } finally {
    running?.kill("SIGTERM");
    if (running !== undefined && running.exitCode === null) await new Promise((resolve) => running!.once("exit", resolve));
    await dropSubscription(native, subscription);
    await adminQuery(source.url, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active", [slot]).catch(() => {});
    await rm(dir, { recursive: true, force: true });
    for (const db of [native, dts, source]) await db.drop();
  }
}

async function pipelineFile(dir: string, name: string, source: BenchDatabase, target: BenchDatabase, slot: string, tables: readonly string[]): Promise<string> {
  const file = join(dir, `${name}.dts`);
  await writeFile(
    file,
    `pipeline bench_${name}
source s = postgres { url: "${source.url}", tables: ${JSON.stringify(tables)}, snapshot: "never", slot: "${slot}", publication: "${slot}" }
sink t = postgres { url: "${target.url}" }
flow s -> t
`,
  );
  return file;
}

/** A disabled subscription on its own slot, made now: it will read the WAL written from here on. */
async function subscribe(target: BenchDatabase, source: BenchDatabase, name: string, publication: string): Promise<void> {
  // On one cluster CREATE SUBSCRIPTION cannot make its slot (it would wait for itself).
  await adminQuery(source.url, "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [name]);
  await adminQuery(
    target.url,
    `CREATE SUBSCRIPTION ${name} CONNECTION 'host=${PG_HOST} port=${PG_PORT} user=postgres dbname=${source.name}' PUBLICATION ${publication} WITH (create_slot = false, slot_name = '${name}', copy_data = false, enabled = false)`,
  );
}

async function dropSubscription(target: BenchDatabase, name: string): Promise<void> {
  await adminQuery(target.url, `ALTER SUBSCRIPTION ${name} DISABLE`).catch(() => {});
  await adminQuery(target.url, `ALTER SUBSCRIPTION ${name} SET (slot_name = NONE)`).catch(() => {});
  await adminQuery(target.url, `DROP SUBSCRIPTION IF EXISTS ${name}`).catch(() => {});
  await adminQuery(target.url.replace(/\/[^/]*$/, "/postgres"), "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active", [name]).catch(() => {});
}

/** The targets hold exactly the source's rows: one digest of every row, in key order. */
async function sameAs(source: BenchDatabase, targets: readonly BenchDatabase[]): Promise<void> {
  const digest = async (db: BenchDatabase) =>
    (await adminQuery<{ d: string }>(db.url, "SELECT md5(string_agg(o::text, ',' ORDER BY id)) AS d FROM public.orders o"))[0]!.d;
  const expected = await digest(source);
  for (const db of targets) {
    const got = await digest(db);
    if (got !== expected) throw new Error(`${db.name}.public.orders differs from the source after the apply run (md5 ${got}, source ${expected})`);
  }
}

async function untilRow(db: BenchDatabase, query: string, timeoutMs = 600_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await adminQuery(db.url, query)).length === 0) {
    if (Date.now() > deadline) throw new Error(`${db.name}: nothing for ${query} after ${timeoutMs / 1000} s`);
    await sleep(10);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** DTS_BENCH_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") profiles dts's side. */
const nodeArgs = (process.env.DTS_BENCH_NODE_ARGS ?? "").split(" ").filter((arg) => arg !== "");
const dtsRun = (file: string, extra: readonly string[]) => command(process.execPath, [...nodeArgs, DTS_RUN, file, "--log-level", "warn", ...extra]);

function command(program: string, args: readonly string[]): Promise<{ seconds: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(program, args, { stdio: ["ignore", "ignore", "pipe"] });
    let errors = "";
    child.stderr.on("data", (chunk: Buffer) => (errors += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve({ seconds: (performance.now() - started) / 1000 }) : reject(new Error(`${program} ${args.join(" ")} exited with ${code}:\n${errors.slice(-3000)}`))));
  });
}
