/**
 * `npm run bench redis [EVENTS] [CHANGES]`: the Redis sink against Redis's own benchmark, and
 * PostgreSQL → Redis against PostgreSQL → discard, as ratios in one run. Both use a private
 * redis-server on a free port (no persistence, like the shared one), so that nothing else
 * writes to it meanwhile.
 *
 *   sink alone   EVENTS orders rows (bench/support.ts) recorded as a jsonl stream (the jsonl
 *                sink's `event` format), read back, and written by the redis sink in batches
 *                of 2,000 (the PostgreSQL source's batch) with `format: "json"`; against
 *                `redis-benchmark -P 100 -t set -n EVENTS -r EVENTS -d SIZE`, SIZE being the
 *                mean size of the sink's JSON values. Target ≥ 0.25.
 *   end to end   `dts-run --until-caught-up` draining CHANGES changes (bench/pg.ts's workload:
 *                80% updates, 10% deletes, 10% inserts, transactions of 1000) into the redis
 *                sink, against the same drain into `discard`, each from its own slot made
 *                before the workload (the same WAL); each side drains twice, in the order
 *                discard, redis, redis, discard, and its faster run counts. Target ≥ 0.8.
 */
import { compared, type BenchContext } from "./report.js";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { createSink } from "../src/connectors/redis/sink.js";
import type { ChangeEvent } from "../src/model/event.js";
import { decodeEvent, encodeEvent, encodeJson } from "../src/model/json.js";
import { pgLsnPosition } from "../src/model/position.js";
import { Timestamp } from "../src/model/timestamp.js";
import type { SinkEvent } from "../src/runtime/contracts.js";
import { row, run, timed, workloadProcedure } from "./pg.js";
import { adminQuery, createBenchDatabase, fillOrdersSql, orderRow, ordersTableSql, quietLog } from "./support.js";

const DTS_RUN = fileURLToPath(new URL("../src/cli/dts-run.js", import.meta.url));
const BATCH = 2000;

export async function benchRedis(args: readonly string[], bench: BenchContext): Promise<void> {
  const events = Number(args[0] ?? (bench.quick ? 50_000 : 500_000));
  const changes = Number(args[1] ?? (bench.quick ? 50_000 : 500_000));
  const line = (text: string) => process.stdout.write(`${text}\n`);
  const dir = await mkdtemp(join(tmpdir(), "dts-bench-redis-"));
  const server = await startRedis(dir);
  try {
    line(`dts bench redis: ${events.toLocaleString("en-US")} events for the sink alone, ${changes.toLocaleString("en-US")} changes end to end; ${cpus().length} cores, load ${loadavg()[0]!.toFixed(2)}`);

    // ---------------------------------------------------------------- sink alone
    const recorded = join(dir, "recorded.jsonl");
    let text = "";
    for (let id = 1; id <= events; id++) text += encodeEvent(orderEvent(id)) + "\n";
    await writeFile(recorded, text);
    text = "";
    const replayed = (await readFile(recorded, "utf8")).split("\n").filter((l) => l !== "").map(decodeEvent);
    const size = Math.round(replayed.reduce((sum, event) => sum + Buffer.byteLength(encodeJson(event.after!)), 0) / replayed.length);
    const sinkRuns: number[] = [];
    for (let attempt = 0; attempt < 2; attempt++) {
      await server.client.flushall();
      sinkRuns.push(await sinkAlone(server.url, replayed));
    }
    const sinkSeconds = Math.min(...sinkRuns);
    if ((await server.client.dbsize()) !== events) throw new Error(`expected ${events} keys, found ${await server.client.dbsize()}`);
    await server.client.flushall();
    const benchmarkRuns: number[] = [];
    for (let attempt = 0; attempt < 2; attempt++) {
      const output = (await run("redis-benchmark", ["-p", String(server.port), "-P", "100", "-t", "set", "-n", String(events), "-r", String(events), "-d", String(size), "-q"])).output;
      const match = /SET: ([\d.]+) requests per second/.exec(output);
      if (match === null) throw new Error(`redis-benchmark printed no SET rate:\n${output}`);
      benchmarkRuns.push(events / Number(match[1]));
    }
    const benchmarkSeconds = Math.min(...benchmarkRuns);
    await server.client.flushall();
    line("");
    line(row("SET", `redis-benchmark -P 100`, benchmarkSeconds, events) + `   (values of ${size} bytes, 50 connections)`);
    line(row("", "redis sink, json", sinkSeconds, events, benchmarkSeconds) + `   (1 connection, batches of ${BATCH})`);

    // ---------------------------------------------------------------- end to end
    const source = await createBenchDatabase("redis_src");
    try {
      const rows = Math.max(changes, 100_000);
      await adminQuery(source.url, ordersTableSql("public.orders"));
      await adminQuery(source.url, fillOrdersSql("public.orders", rows));
      await adminQuery(source.url, "VACUUM ANALYZE public.orders");
      const publication = `bench_redis_pub_${process.pid}`;
      const files = new Map<string, string>();
      for (const [name, sink] of [
        ["discard_a", "discard {}"],
        ["discard_b", "discard {}"],
        ["redis_a", `redis { url: "${server.url}", key: "a:\${key.id}" }`],
        ["redis_b", `redis { url: "${server.url}", key: "b:\${key.id}" }`],
      ] as const) {
        const slot = `bench_${name}_${process.pid}`;
        await mkdir(join(dir, slot));
        const file = join(dir, slot, "cdc.dts");
        await writeFile(
          file,
          `pipeline ${slot}
source s = postgres { url: "${source.url}", tables: ["public.orders"], snapshot: "never", slot: "${slot}", publication: "${publication}" }
sink out = ${sink}
flow s -> out
`,
        );
        // The first run creates the slot (and the publication) and stops at once.
        await run(process.execPath, [DTS_RUN, file, "--until-caught-up", "--log-level", "warn"]);
        files.set(name, file);
      }
      await adminQuery(source.url, workloadProcedure);
      const work = await timed(() => adminQuery(source.url, "CALL bench_changes($1, $2, 1000)", [changes, rows]));
      line(`\n(workload: ${changes.toLocaleString("en-US")} changes in ${work.toFixed(1)} s)`);
      const drain = (name: string) => run(process.execPath, [DTS_RUN, files.get(name)!, "--until-caught-up", "--log-level", "warn"]);
      const discardA = await drain("discard_a");
      const redisA = await drain("redis_a");
      const redisB = await drain("redis_b");
      const discardB = await drain("discard_b");
      const discard = Math.min(discardA.seconds, discardB.seconds);
      const redis = Math.min(redisA.seconds, redisB.seconds);
      line(row("CDC drain", "dts-run → discard", discard, changes) + `   (runs: ${discardA.seconds.toFixed(2)}, ${discardB.seconds.toFixed(2)} s)`);
      line(row("", "dts-run → redis (json)", redis, changes, discard) + `   (runs: ${redisA.seconds.toFixed(2)}, ${redisB.seconds.toFixed(2)} s)`);
      await expectKeys(server.client);
      await adminQuery(source.url, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE $1", [`bench_%_${process.pid}`]);
      line("");
      line(`sink alone ratio ${(benchmarkSeconds / sinkSeconds).toFixed(2)} (target 0.25); end to end ratio ${(discard / redis).toFixed(2)} (target 0.8)`);
      bench.record(compared("redis: sink alone vs redis-benchmark -P 100 -t set", Math.round(events / sinkSeconds), "events/s", Math.round(events / benchmarkSeconds), benchmarkSeconds / sinkSeconds, 0.25));
      bench.record(compared("redis: PG → Redis vs PG → discard", Math.round(changes / redis), "changes/s", Math.round(changes / discard), discard / redis, 0.8));
    } finally {
      await source.drop();
    }
  } finally {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

function orderEvent(id: number): ChangeEvent {
  return {
    op: "insert",
    before: null,
    after: orderRow(id),
    key: { id },
    source: { connector: "postgres", db: "bench", schema: "public", table: "orders", position: pgLsnPosition(BigInt(id)), ts: new Timestamp(1704067200000000n, true) },
  };
}

/** Seconds for the redis sink to write `events`, in batches as the runner gives them. */
async function sinkAlone(url: string, events: readonly ChangeEvent[]): Promise<number> {
  const sink = createSink({ pipeline: "bench", name: "cache", options: { url, format: "json" }, eventOptions: {}, log: quietLog });
  await sink.start();
  const batches: SinkEvent[][] = [];
  for (let i = 0; i < events.length; i += BATCH) batches.push(events.slice(i, i + BATCH).map((event) => ({ event, target: "public.orders" })));
  try {
    return await timed(async () => {
      for (const batch of batches) await sink.write({ events: batch });
    });
  } finally {
    await sink.close();
  }
}

/** The two redis drains of the same WAL left the same number of keys, each under its prefix. */
async function expectKeys(client: Redis): Promise<void> {
  const count = async (pattern: string): Promise<number> => {
    let cursor = "0";
    let n = 0;
    do {
      const [next, keys] = await client.scan(cursor, "MATCH", pattern, "COUNT", 10_000);
      n += keys.length;
      cursor = next;
    } while (cursor !== "0");
    return n;
  };
  const [a, b] = [await count("a:*"), await count("b:*")];
  if (a === 0 || a !== b) throw new Error(`the two redis drains of the same changes left ${a} and ${b} keys`);
}

interface PrivateServer {
  readonly port: number;
  readonly url: string;
  readonly client: Redis;
  stop(): Promise<void>;
}

async function startRedis(dir: string): Promise<PrivateServer> {
  const port = await new Promise<number>((resolve, reject) => {
    const probe = createServer();
    probe.on("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const found = typeof address === "object" && address !== null ? address.port : 0;
      probe.close(() => resolve(found));
    });
  });
  const child: ChildProcess = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no"], { stdio: "ignore" });
  const exited = new Promise((resolve) => child.on("exit", resolve));
  const url = `redis://127.0.0.1:${port}`;
  let client: Redis | undefined;
  for (let attempt = 0; client === undefined; attempt++) {
    const candidate = new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    candidate.on("error", () => {});
    try {
      await candidate.connect();
      await candidate.ping();
      client = candidate;
    } catch (error) {
      candidate.disconnect();
      if (attempt > 200) throw new Error(`redis-server on port ${port} did not start: ${(error as Error).message}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return {
    port,
    url,
    client: client!,
    async stop() {
      client!.disconnect();
      child.kill("SIGTERM");
      await exited;
    },
  };
}
