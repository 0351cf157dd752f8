/**
 * `npm run bench mysql [ROWS] [CHANGES]`: the mysql source against the server's own tools, as
 * ratios measured in one run (docs/performance.md):
 *
 *   binlog drain   `mariadb-binlog --read-from-remote-server -v` decoding the binlog of CHANGES
 *                  row changes to /dev/null, against `dts-run --until-caught-up` of a pipeline
 *                  from the position before them into a `discard` sink
 *   full load      `mariadb --batch --quick -e "SELECT …" | psql -c "COPY … FROM STDIN"` of a
 *                  ROWS-row table, against `dts-run` of the same table with `snapshot: "only"`
 *                  into the postgres sink
 *
 * MariaDB at 127.0.0.1:3306 as root (DTS_BENCH_MYSQL_PORT), PostgreSQL as bench/support.ts.
 */
import { compared, type BenchContext } from "./report.js";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import mysql from "mysql2/promise";
import { adminQuery, createBenchDatabase, PG_HOST, PG_PORT } from "./support.js";

const DTS_RUN = fileURLToPath(new URL("../src/cli/dts-run.js", import.meta.url));
const MYSQL_PORT = Number(process.env.DTS_BENCH_MYSQL_PORT ?? 3306);

export async function benchMysql(args: readonly string[], bench: BenchContext): Promise<void> {
  const rows = Number(args[0] ?? (bench.quick ? 50_000 : 1_000_000));
  const changes = Number(args[1] ?? rows);
  const name = `dts_bench_my_${randomBytes(3).toString("hex")}`;
  const admin = await mysql.createConnection({ host: "127.0.0.1", port: MYSQL_PORT, user: "root", multipleStatements: true });
  const target = await createBenchDatabase("my_dst");
  const dir = await mkdtemp(join(tmpdir(), "dts-bench-"));
  const line = (text: string) => process.stdout.write(`${text}\n`);
  const url = `mysql://root@127.0.0.1:${MYSQL_PORT}/${name}`;
  try {
    line(`dts bench mysql: ${rows.toLocaleString("en-US")} rows of ${name}.orders (6 columns), ${changes.toLocaleString("en-US")} binlog row changes; ${cpus().length} cores, load ${loadavg()[0]!.toFixed(2)}`);
    await admin.query(`CREATE DATABASE ${name}; USE ${name};
      CREATE TABLE orders (id BIGINT PRIMARY KEY, customer INT NOT NULL, amount DECIMAL(12,2) NOT NULL, status VARCHAR(16) NOT NULL, note VARCHAR(100) NOT NULL, created DATETIME(6) NOT NULL)`);
    for (let from = 1; from <= rows; from += 100_000) {
      const to = Math.min(rows, from + 99_999);
      await admin.query(`INSERT INTO orders SELECT seq, seq % 5000, seq * 0.37, ELT(1 + seq % 4, 'new', 'paid', 'shipped', 'done'), CONCAT('order note ', seq), '2024-01-01' + INTERVAL seq SECOND FROM seq_${from}_to_${to}`);
    }
    const pgTable = `"${name}".orders`;
    await adminQuery(target.url, `CREATE SCHEMA "${name}"; CREATE TABLE ${pgTable} (id bigint PRIMARY KEY, customer integer NOT NULL, amount numeric(12,2) NOT NULL, status varchar(16) NOT NULL, note varchar(100) NOT NULL, created timestamp(6) NOT NULL); ALTER TABLE ${pgTable} SET (autovacuum_enabled = off)`);
    const psql = `psql -X -q -h ${PG_HOST} -p ${PG_PORT} -U postgres -d ${target.name}`;

    // ---------------------------------------------------------------- full load
    const pipe = await best(2, async () => {
      await adminQuery(target.url, `TRUNCATE ${pgTable}`);
      return run("sh", ["-c", `mariadb -h 127.0.0.1 -P ${MYSQL_PORT} -uroot --batch --quick -N -e "SELECT id, customer, amount, status, note, created FROM ${name}.orders" | ${psql} -c 'COPY ${pgTable} FROM STDIN'`]);
    });
    await expectRows(target.url, pgTable, rows);
    const snapshotFile = join(dir, "snapshot.dts");
    await writeFile(snapshotFile, `pipeline bench_my_snapshot\nsource s = mysql { url: "${url}", tables: ["${name}.orders"], snapshot: "only" }\nsink d = postgres { url: "${target.url}" }\nflow s -> d\n`);
    const load = await best(2, async () => {
      await adminQuery(target.url, `TRUNCATE ${pgTable}`);
      await rm(join(dir, ".dts-state"), { recursive: true, force: true });
      return run(process.execPath, [DTS_RUN, snapshotFile, "--log-level", "warn"]);
    });
    await expectRows(target.url, pgTable, rows);
    line("");
    line(row("full load", "mariadb | psql COPY", pipe.seconds, rows));
    line(row("", 'dts-run, snapshot "only"', load.seconds, rows, pipe.seconds));
    bench.record(compared("mysql: full load MariaDB → PG vs mariadb | psql COPY pipe", Math.round(rows / load.seconds), "rows/s", Math.round(rows / pipe.seconds), pipe.seconds / load.seconds, 0.7));

    // ---------------------------------------------------------------- binlog drain
    const drainFile = join(dir, "drain.dts");
    await writeFile(drainFile, `pipeline bench_my_drain\nsource s = mysql { url: "${url}", tables: ["${name}.orders"], snapshot: "never" }\nsink nowhere = discard {}\nflow s -> nowhere\n`);
    // A first run stores the position before the changes; the timed run drains them.
    await run(process.execPath, [DTS_RUN, drainFile, "--until-caught-up", "--log-level", "warn"]);
    const [[start]] = (await admin.query("SHOW MASTER STATUS")) as unknown as [Record<string, unknown>[]];
    let done = 0;
    while (done < changes) {
      const batch = Math.min(10_000, changes - done);
      const from = (done % rows) + 1;
      await admin.query(`UPDATE ${name}.orders SET amount = amount + 1, status = 'changed' WHERE id BETWEEN ${from} AND ${from + batch - 1}`);
      done += batch;
    }
    const recv = await run("sh", ["-c", `mariadb-binlog --read-from-remote-server -h 127.0.0.1 -P ${MYSQL_PORT} -uroot --start-position=${String(start!.Position)} --to-last-log -v ${String(start!.File)} > /dev/null`]);
    const drain = await run(process.execPath, [DTS_RUN, drainFile, "--until-caught-up", "--log-level", "warn"]);
    line(row("drain", "mariadb-binlog -v", recv.seconds, changes));
    line(row("", "dts-run → discard", drain.seconds, changes, recv.seconds));
    bench.record(compared("mysql: binlog drain vs mariadb-binlog", Math.round(changes / drain.seconds), "changes/s", Math.round(changes / recv.seconds), recv.seconds / drain.seconds, 0.5));
    line("\n(mariadb-binlog reads to the end of the server's binlog and waits for nothing; both read the same changes)");
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${name}`).catch(() => {});
    await admin.end();
    await target.drop();
    await rm(dir, { recursive: true, force: true });
  }
}

interface Timed {
  readonly seconds: number;
  readonly output: string;
}

function row(what: string, who: string, seconds: number, count: number, baseline?: number): string {
  const rate = Math.round(count / seconds).toLocaleString("en-US");
  const ratio = baseline === undefined ? "" : `   ratio ${(baseline / seconds).toFixed(2)}`;
  return `${what.padEnd(10)} ${who.padEnd(26)} ${seconds.toFixed(2).padStart(7)} s ${rate.padStart(10)} rows/s${ratio}`;
}

async function expectRows(url: string, table: string, rows: number): Promise<void> {
  const [{ n }] = await adminQuery<{ n: string }>(url, `SELECT count(*) AS n FROM ${table}`);
  if (Number(n) !== rows) throw new Error(`expected ${rows} rows in ${table}, found ${n}`);
}

async function best(times: number, attempt: () => Promise<Timed>): Promise<Timed> {
  let fastest: Timed | undefined;
  for (let i = 0; i < times; i++) {
    const result = await attempt();
    if (fastest === undefined || result.seconds < fastest.seconds) fastest = result;
  }
  return fastest!;
}

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
