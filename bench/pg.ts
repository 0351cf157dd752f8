/**
 * `npm run bench pg [ROWS] [CHANGES]`: dts against PostgreSQL's own tools, on the same data in
 * one run, as ratios (dts ÷ tool; 1.0 is as fast).
 *
 *   full load   `psql -c "COPY orders TO STDOUT" | psql -c "COPY orders FROM STDIN"` between
 *               two databases, against `dts-run` of a pipeline with `snapshot: "only"` from
 *               the same source table to the same (emptied) target table;
 *   CDC drain   `pg_recvlogical` reading a pgoutput slot to /dev/null, against `dts-run
 *               --until-caught-up` of a pipeline from a slot created at the same point into a
 *               `discard` sink, over the same CHANGES changes (updates, inserts and deletes in
 *               transactions of 1000); each side drains twice (from two slots), in the order
 *               recv, dts, dts, recv, and its faster run counts.
 *
 * The table is ten columns of the common types (bench/support.ts), ROWS rows (default 1M).
 * Times are wall-clock times of the whole command, start-up included; every figure is the
 * better of two runs. Both servers are the local one, so the two sides share the machine's cores
 * with PostgreSQL, as they would in production on one host.
 */
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { adminQuery, createBenchDatabase, fillOrdersSql, ordersTableSql, PG_HOST, PG_PORT, type BenchDatabase } from "./support.js";

const DTS_RUN = fileURLToPath(new URL("../src/cli/dts-run.js", import.meta.url));
const TARGET = 0.8;

interface Timed {
  readonly seconds: number;
  readonly output: string;
}

export async function benchPg(args: readonly string[]): Promise<void> {
  const rows = Number(args[0] ?? 1_000_000);
  const changes = Number(args[1] ?? rows);
  const source = await createBenchDatabase("pg_src");
  const target = await createBenchDatabase("pg_dst");
  const dir = await mkdtemp(join(tmpdir(), "dts-bench-"));
  const line = (text: string) => process.stdout.write(`${text}\n`);
  try {
    line(`dts bench pg: ${rows.toLocaleString("en-US")} rows of public.orders (10 columns), ${changes.toLocaleString("en-US")} changes; ${cpus().length} cores, load ${loadavg()[0]!.toFixed(2)}`);
    await adminQuery(source.url, ordersTableSql("public.orders"));
    await adminQuery(source.url, fillOrdersSql("public.orders", rows));
    await adminQuery(source.url, "VACUUM ANALYZE public.orders");
    await adminQuery(target.url, ordersTableSql("public.orders"));
    // Each side loads a million rows in turn; autovacuum would then vacuum and analyze the
    // target while the next side runs, at random, by as much as 40% of a run. Off for both.
    await adminQuery(target.url, "ALTER TABLE public.orders SET (autovacuum_enabled = off)");

    // ---------------------------------------------------------------- full load
    const pipe = await best(2, async () => {
      await adminQuery(target.url, "TRUNCATE public.orders");
      await adminQuery(target.url, "CHECKPOINT");
      return run("sh", ["-c", `${psql(source)} -c 'COPY public.orders TO STDOUT' | ${psql(target)} -c 'COPY public.orders FROM STDIN'`]);
    });
    await expectRows(target, rows);
    const snapshotFile = join(dir, "snapshot.dts");
    await writeFile(
      snapshotFile,
      `pipeline bench_snapshot
source s = postgres { url: "${source.url}", tables: ["public.orders"], snapshot: "only" }
sink d = postgres { url: "${target.url}" }
flow s -> d
`,
    );
    const snapshot = await best(2, async () => {
      await adminQuery(target.url, "TRUNCATE public.orders");
      await adminQuery(target.url, "CHECKPOINT");
      await rm(join(dir, ".dts-state"), { force: true });
      return run(process.execPath, [DTS_RUN, snapshotFile, "--log-level", "warn"]);
    });
    await expectRows(target, rows);
    line("");
    line(row("full load", "COPY | COPY (psql)", pipe.seconds, rows));
    line(row("", 'dts-run, snapshot "only"', snapshot.seconds, rows, pipe.seconds));

    // ---------------------------------------------------------------- CDC drain
    // Two slots for each side, all made before the workload, so that each side drains the same
    // WAL twice, in the order recv, dts, dts, recv (neither side always goes first).
    const publication = `bench_pub_${process.pid}`;
    const dtsSlots = [`bench_dts_a_${process.pid}`, `bench_dts_b_${process.pid}`];
    const recvSlots = [`bench_recv_a_${process.pid}`, `bench_recv_b_${process.pid}`];
    const cdcFiles: string[] = [];
    for (const slot of dtsSlots) {
      // Each in its own folder: the checkpoint file (.dts-state) lives beside the pipeline file.
      await mkdir(join(dir, slot));
      const file = join(dir, slot, "cdc.dts");
      await writeFile(
        file,
        `pipeline ${slot}
source s = postgres { url: "${source.url}", tables: ["public.orders"], snapshot: "never", slot: "${slot}", publication: "${publication}" }
sink nowhere = discard {}
flow s -> nowhere
`,
      );
      // The first run creates the slot (and the publication) and stops at once.
      await run(process.execPath, [DTS_RUN, file, "--until-caught-up", "--log-level", "warn"]);
      cdcFiles.push(file);
    }
    for (const slot of recvSlots) await adminQuery(source.url, "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [slot]);
    await adminQuery(source.url, workloadProcedure);
    const work = await timed(() => adminQuery(source.url, "CALL bench_changes($1, $2, 1000)", [changes, rows]));
    const [{ lsn }] = await adminQuery<{ lsn: string }>(source.url, "SELECT pg_current_wal_lsn()::text AS lsn");
    line(`\n(workload: ${changes.toLocaleString("en-US")} changes in ${work.toFixed(1)} s; WAL end ${lsn})`);
    const recvLogical = (slot: string) =>
      run("pg_recvlogical", [
        "-d",
        `host=${PG_HOST} port=${PG_PORT} user=postgres dbname=${source.name}`,
        "--slot",
        slot,
        "--start",
        "-o",
        "proto_version=1",
        "-o",
        `publication_names=${publication}`,
        "-E",
        lsn!,
        "--no-loop",
        "-f",
        "/dev/null",
      ]);
    const drainDts = (file: string) => run(process.execPath, [DTS_RUN, file, "--until-caught-up", "--log-level", "warn"]);
    const recvA = await recvLogical(recvSlots[0]!);
    const dtsA = await drainDts(cdcFiles[0]!);
    const dtsB = await drainDts(cdcFiles[1]!);
    const recvB = await recvLogical(recvSlots[1]!);
    const recv = recvA.seconds <= recvB.seconds ? recvA : recvB;
    const drain = dtsA.seconds <= dtsB.seconds ? dtsA : dtsB;
    line(row("CDC drain", "pg_recvlogical", recv.seconds, changes) + `   (runs: ${recvA.seconds.toFixed(2)}, ${recvB.seconds.toFixed(2)} s)`);
    line(row("", "dts-run → discard", drain.seconds, changes, recv.seconds) + `   (runs: ${dtsA.seconds.toFixed(2)}, ${dtsB.seconds.toFixed(2)} s)`);
    line("");
    line(`full load ratio ${(pipe.seconds / snapshot.seconds).toFixed(2)} (target ${TARGET}); CDC drain ratio ${(recv.seconds / drain.seconds).toFixed(2)} (target ${TARGET})`);
    await adminQuery(source.url, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = ANY($1)", [[...dtsSlots, ...recvSlots]]);
  } finally {
    await rm(dir, { recursive: true, force: true });
    await source.drop();
    await target.drop();
  }
}

/** Per transaction of `batch` rows: 80% updates, 10% deletes, 10% inserts of new keys. */
export const workloadProcedure = `
CREATE PROCEDURE bench_changes(total int, existing int, batch int) LANGUAGE plpgsql AS $$
DECLARE
  done int := 0;
  next_key bigint := existing;
  cursor_key bigint := 0;
  updates int := batch * 8 / 10;
  deletes int := batch / 10;
  inserts int := batch - updates - deletes;
BEGIN
  WHILE done < total LOOP
    UPDATE public.orders SET quantity = quantity + 1, status = 'paid', updated_at = updated_at + interval '1 second'
      WHERE id > cursor_key AND id <= cursor_key + updates;
    DELETE FROM public.orders WHERE id > cursor_key + updates AND id <= cursor_key + updates + deletes;
    INSERT INTO public.orders
      SELECT i, i % 100000, 'new', 9.99, 'EUR', 1, false, NULL, now(), now()
      FROM generate_series(next_key + 1, next_key + inserts) AS i;
    cursor_key := cursor_key + updates + deletes;
    next_key := next_key + inserts;
    done := done + batch;
    COMMIT;
  END LOOP;
END $$`;

function row(what: string, who: string, seconds: number, count: number, baseline?: number): string {
  const rate = Math.round(count / seconds).toLocaleString("en-US");
  const ratio = baseline === undefined ? "" : `   ratio ${(baseline / seconds).toFixed(2)}`;
  return `${what.padEnd(10)} ${who.padEnd(26)} ${seconds.toFixed(2).padStart(7)} s ${rate.padStart(10)} rows/s${ratio}`;
}

function psql(db: BenchDatabase): string {
  return `psql -X -q -h ${PG_HOST} -p ${PG_PORT} -U postgres -d ${db.name}`;
}

async function expectRows(db: BenchDatabase, rows: number): Promise<void> {
  const [{ n }] = await adminQuery<{ n: string }>(db.url, "SELECT count(*) AS n FROM public.orders");
  if (Number(n) !== rows) throw new Error(`expected ${rows} rows in ${db.name}.public.orders, found ${n}`);
}

async function best(times: number, attempt: () => Promise<Timed>): Promise<Timed> {
  let fastest: Timed | undefined;
  for (let i = 0; i < times; i++) {
    const result = await attempt();
    if (fastest === undefined || result.seconds < fastest.seconds) fastest = result;
  }
  return fastest!;
}

async function timed(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return (performance.now() - started) / 1000;
}

/** Runs a command to its end; a non-zero exit is an error with its output. */
function run(command: string, args: readonly string[]): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      const seconds = (performance.now() - started) / 1000;
      if (code === 0) resolve({ seconds, output });
      else reject(new Error(`${command} ${args.join(" ")} exited with ${code}:\n${output.slice(-3000)}`));
    });
  });
}
