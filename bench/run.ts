/**
 * `npm run bench [NAME ...] [-- --quick] [-- ARGS]`: the benchmarks, all of them when no name
 * is given. Every row they measure is written to bench-results.json at the repository root
 * (bench/report.ts says the shape). `--quick` runs each suite on small data (the whole set in
 * about three minutes); the figures are then indicative only. See docs/performance.md for what
 * each suite measures and the figures on the reference machine.
 *
 *   pg      PostgreSQL: snapshot PG→PG against a psql COPY pipe, and the CDC drain against
 *           pg_recvlogical, as ratios
 *   apply   the applied stream PG→PG against PostgreSQL's own logical replication: apply rate
 *           on a backlog, and commit-to-target latency under a steady load
 *   upsert  the PostgreSQL sink's UNNEST and COPY upserts, at 10k and 100k rows per batch
 *           (a study of two methods, no target: not in the default set)
 *   redis   the Redis sink against redis-benchmark, and PG → Redis against PG → discard
 *   kafka   PostgreSQL → Kafka: dts against Debezium's PostgreSQL connector on Kafka Connect,
 *           same WAL, same broker, time until the last message is in the topic
 *   mysql   MariaDB: binlog drain against mariadb-binlog, full load MariaDB→PG against a
 *           mariadb | psql COPY pipe, as ratios
 *   queues  the rabbitmq, nats and http sinks from a recorded jsonl stream, against minimal
 *           publishers with the same acknowledgements, as ratios
 */
import { writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type { BenchContext, BenchRow } from "./report.js";

type Suite = (args: readonly string[], context: BenchContext) => Promise<void>;

const suites: Readonly<Record<string, { load: () => Promise<Suite>; byDefault: boolean }>> = {
  pg: { load: async () => (await import("./pg.js")).benchPg, byDefault: true },
  apply: { load: async () => (await import("./apply.js")).benchApply, byDefault: true },
  redis: { load: async () => (await import("./redis.js")).benchRedis, byDefault: true },
  kafka: { load: async () => (await import("./kafka.js")).benchKafka, byDefault: true },
  mysql: { load: async () => (await import("./mysql.js")).benchMysql, byDefault: true },
  queues: { load: async () => (await import("./queues.js")).benchQueues, byDefault: true },
  upsert: { load: async () => (await import("./upsert.js")).benchUpsert, byDefault: false },
};

const RESULTS = fileURLToPath(new URL("../../bench-results.json", import.meta.url));

async function main(argv: readonly string[]): Promise<number> {
  const quick = argv.includes("--quick");
  const words = argv.filter((word) => word !== "--quick");
  const unknown = words.length > 0 && suites[words[0]!] === undefined;
  if (unknown || argv.includes("--help")) {
    process.stderr.write(`usage: npm run bench [${Object.keys(suites).join("|")}] [-- --quick] [-- ARGS]\n`);
    return unknown ? 2 : 0;
  }
  // One name with arguments (`npm run bench pg 200000`), or every default suite.
  const chosen = words.length > 0 ? [[words[0]!, words.slice(1)] as const] : Object.entries(suites).filter(([, s]) => s.byDefault).map(([name]) => [name, []] as const);
  const rows: BenchRow[] = [];
  const context: BenchContext = { quick, record: (row) => void rows.push(row) };
  let failed = 0;
  for (const [name, args] of chosen) {
    process.stdout.write(`\n== bench ${name}${quick ? " (quick)" : ""}\n`);
    try {
      await (await suites[name]!.load())(args, context);
    } catch (error) {
      failed++;
      process.stderr.write(`bench ${name} failed: ${(error as Error).stack ?? String(error)}\n`);
    }
  }
  await writeFile(RESULTS, `${JSON.stringify(rows, null, 2)}\n`);
  process.stdout.write(`\n${rows.length} rows (${rows.filter((r) => r.pass === false).length} below target) written to bench-results.json\n`);
  for (const row of rows) {
    const ratio = row.ratio === null ? "" : ` ratio ${row.ratio}`;
    process.stdout.write(`  ${row.pass === false ? "BELOW" : row.pass === true ? "ok   " : "     "} ${row.name}: ${row.value} ${row.unit}${ratio}${row.target === null ? "" : ` (target ${row.target})`}\n`);
  }
  return failed > 0 ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`bench: ${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = 1;
  },
);
