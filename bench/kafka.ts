/**
 * `npm run bench kafka [CHANGES]`: PostgreSQL → Kafka, dts against Debezium's PostgreSQL
 * connector (3.6.1 on Kafka Connect standalone, scripts/debezium.sh), on the same WAL and the
 * same broker, in the same envelope (Debezium's JSON converter without schemas,
 * `decimal.handling.mode=string`; dts's `format: "debezium"`; both with tombstones).
 *
 * Both slots are created before the workload (CHANGES changes, default 1M: 80% updates, 10%
 * deletes, 10% inserts in transactions of 1000, bench/pg.ts's procedure), so each side reads
 * the same changes from its own slot, one side after the other: dts, then Debezium. A side's
 * time runs from its start until the last of its messages (one per change, plus a tombstone
 * per delete) is in its topic, as the broker's end offsets say. For Debezium it is given twice:
 * from the JVM's start, and from the moment the connector reports RUNNING (after Kafka
 * Connect's start-up, which a long-running deployment pays once). The ratio uses the second,
 * the one more favourable to Debezium.
 */
import { compared, type BenchContext } from "./report.js";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Kafka, logLevel, type Admin } from "kafkajs";
import { workloadProcedure } from "./pg.js";
import { adminQuery, createBenchDatabase, fillOrdersSql, ordersTableSql } from "./support.js";

const DTS_RUN = fileURLToPath(new URL("../src/cli/dts-run.js", import.meta.url));
const DEBEZIUM = fileURLToPath(new URL("../../scripts/debezium.sh", import.meta.url));
const BROKER = process.env.DTS_BENCH_KAFKA ?? "127.0.0.1:9092";
const TARGET = 2;

export async function benchKafka(args: readonly string[], bench: BenchContext): Promise<void> {
  const changes = Number(args[0] ?? (bench.quick ? 20_000 : 1_000_000));
  const rows = changes;
  const line = (text: string) => process.stdout.write(`${text}\n`);
  const id = `${process.pid}`;
  const source = await createBenchDatabase("kafka_src");
  const dir = await mkdtemp(join(tmpdir(), "dts-bench-kafka-"));
  const admin = new Kafka({ clientId: "dts-bench", brokers: [BROKER], logLevel: logLevel.NOTHING }).admin();
  await admin.connect().catch((error: Error) => {
    throw new Error(`the Kafka broker at ${BROKER} does not answer (${error.message}); run: bash scripts/kafka.sh`);
  });
  const publication = `bench_kafka_pub_${id}`;
  const dtsSlot = `bench_kafka_dts_${id}`;
  const dbzSlot = `bench_kafka_dbz_${id}`;
  const dtsTopic = `bench_dts_${id}.public.orders`;
  const dbzPrefix = `bench_dbz_${id}`;
  const dbzTopic = `${dbzPrefix}.public.orders`;
  const worker = `bench-${id}`;
  let debezium = false;
  try {
    line(`dts bench kafka: ${changes.toLocaleString("en-US")} changes of public.orders (10 columns); ${cpus().length} cores, load ${loadavg()[0]!.toFixed(2)}`);
    await adminQuery(source.url, ordersTableSql("public.orders"));
    await adminQuery(source.url, fillOrdersSql("public.orders", rows));
    await adminQuery(source.url, `CREATE PUBLICATION ${publication} FOR TABLE public.orders`);
    for (const topic of [dtsTopic, dbzTopic]) await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });

    const pipeline = join(dir, "bench.dts");
    await writeFile(
      pipeline,
      `pipeline bench_kafka_${id}
source s = postgres { url: "${source.url}", tables: ["public.orders"], snapshot: "never", slot: "${dtsSlot}", publication: "${publication}" }
sink k = kafka { brokers: ["${BROKER}"], topic: "${dtsTopic}" }
flow s -> k
`,
    );
    // The first run only creates dts's slot; Debezium's is created here, both before the workload.
    await runToEnd(process.execPath, [DTS_RUN, pipeline, "--until-caught-up", "--log-level", "warn"]);
    await adminQuery(source.url, "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [dbzSlot]);
    await adminQuery(source.url, workloadProcedure);
    const started = performance.now();
    await adminQuery(source.url, "CALL bench_changes($1, $2, 1000)", [changes, rows]);
    line(`(workload: ${changes.toLocaleString("en-US")} changes in ${((performance.now() - started) / 1000).toFixed(1)} s)`);
    // Per 1000 changes: 800 updates, 100 deletes (each with its tombstone), 100 inserts.
    const messages = Math.round(changes * 1.1);

    // ------------------------------------------------------------------ dts
    const dtsStart = performance.now();
    const dts = spawn(process.execPath, [DTS_RUN, pipeline, "--log-level", "warn"], { stdio: ["ignore", "ignore", "pipe"] });
    const dtsSeconds = (await untilMessages(admin, dtsTopic, messages, dts)) - dtsStart;
    await stop(dts);

    // ------------------------------------------------------------------ Debezium
    const dbzStart = performance.now();
    const started2 = await runToEnd("bash", [
      DEBEZIUM, "start", worker, "--database", source.name, "--topic-prefix", dbzPrefix, "--tables", "public.orders",
      "--slot", dbzSlot, "--publication", publication, "--snapshot-mode", "no_data",
      "--set", "decimal.handling.mode=string", "--set", "publication.autocreate.mode=disabled",
    ]);
    debezium = true;
    const dbzRunning = performance.now();
    const dbzEnd = await untilMessages(admin, dbzTopic, messages);
    const dbzFromStart = (dbzEnd - dbzStart) / 1000;
    const dbzFromRunning = (dbzEnd - dbzRunning) / 1000;
    const dtsS = dtsSeconds / 1000;

    const rate = (s: number) => `${Math.round(changes / s).toLocaleString("en-US").padStart(9)} changes/s`;
    line("");
    line(`dts-run → kafka                        ${dtsS.toFixed(2).padStart(7)} s ${rate(dtsS)}   (from its start)`);
    line(`Debezium on Kafka Connect              ${dbzFromRunning.toFixed(2).padStart(7)} s ${rate(dbzFromRunning)}   (from RUNNING; ${dbzFromStart.toFixed(1)} s from the JVM's start)`);
    line("");
    line(`ratio dts ÷ Debezium ${(dbzFromRunning / dtsS).toFixed(2)} (target ${TARGET}); from both starts ${(dbzFromStart / dtsS).toFixed(2)}`);
    bench.record(compared("kafka: PG → Kafka, dts vs Debezium (from RUNNING)", Math.round(changes / dtsS), "changes/s", Math.round(changes / dbzFromRunning), dbzFromRunning / dtsS, TARGET));
    line(`(${messages.toLocaleString("en-US")} messages in each topic; ${started2.split("\n")[0]})`);
  } finally {
    if (debezium) await runToEnd("bash", [DEBEZIUM, "stop", worker]).catch(() => "");
    await admin.deleteTopics({ topics: [dtsTopic, dbzTopic] }).catch(() => {});
    await admin.disconnect();
    await adminQuery(source.url, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = ANY($1) AND NOT active", [[dtsSlot, dbzSlot]]).catch(() => {});
    await rm(dir, { recursive: true, force: true });
    await source.drop();
  }
}

/** When (performance.now()) the topic's end offsets add up to `count`; fails if `child` exits first. */
async function untilMessages(admin: Admin, topic: string, count: number, child?: ChildProcess): Promise<number> {
  let stderr = "";
  child?.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  let last = -1;
  let lastChange = performance.now();
  for (;;) {
    const now = performance.now();
    const n = (await admin.fetchTopicOffsets(topic)).reduce((sum, p) => sum + Number(p.high), 0);
    if (n >= count) return now;
    if (n !== last) {
      last = n;
      lastChange = now;
    }
    if (child !== undefined && child.exitCode !== null) throw new Error(`the run exited with ${child.exitCode} after ${n} of ${count} messages:\n${stderr.slice(-3000)}`);
    if (now - lastChange > 120_000) throw new Error(`${topic}: stuck at ${n} of ${count} messages for 2 minutes\n${stderr.slice(-3000)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await exited;
}

function runToEnd(command: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(output) : reject(new Error(`${command} ${args.join(" ")} exited with ${code}:\n${output.slice(-3000)}`))));
  });
}
