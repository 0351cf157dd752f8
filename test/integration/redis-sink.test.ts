/**
 * PostgreSQL → Redis through the real runtime, source and sink, against the shared Redis: after
 * every round of changes — inserts, updates that leave a TOASTed value out (absent), updates of
 * it, NULLs, key changes with and without the large value, several changes of one key in one
 * transaction, deletes — the cache equals the table, key by key and value by value, in both
 * formats. Also: the default key, ttl, publish, and checkpoint: "redis" stored with the data.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runPipeline, type RunSummary } from "../../src/runtime/run.js";
import { planOf } from "../unit/runtime-fixtures.js";
import { requireBuild, runDts } from "../cli-process.js";
import { createDatabase, eventually, recordingLogger, requireLogicalReplication, type RecordingLogger, type ThrowawayDatabase } from "./pg-helpers.js";
import { bigText, cacheDifference, deleteMatching, ITEMS_DDL, REDIS_URL, sharedRedis, uniquePrefix } from "./redis-helpers.js";

let source: ThrowawayDatabase;
let redis: Redis;
let folder: string;
const prefixes: string[] = [];

beforeAll(async () => {
  await requireLogicalReplication();
  redis = await sharedRedis();
  source = await createDatabase("redis_src");
  folder = mkdtempSync(join(tmpdir(), "dts-redis-"));
});

afterAll(async () => {
  for (const prefix of prefixes) await deleteMatching(redis, `${prefix}*`).catch(() => {});
  redis?.disconnect();
  await source?.drop();
  if (folder !== undefined) rmSync(folder, { recursive: true, force: true });
});

interface Cache {
  readonly table: string;
  readonly prefix: string;
  readonly pipeline: string;
  run(): Promise<{ summary: RunSummary; log: RecordingLogger }>;
}

async function cache(format: "json" | "hash", settings = "", sinkOptions = "", key?: string): Promise<Cache> {
  const prefix = uniquePrefix(format);
  prefixes.push(prefix);
  const table = `items_${prefix.slice(-8)}`;
  await source.sql(`CREATE TABLE ${table} ${ITEMS_DDL}`);
  await source.sql(
    `INSERT INTO ${table} SELECT i, 'item ' || i, i * 1.5, 9007199254740993 + i, i % 2 = 0, '2024-03-01 10:00:00.123456+00'::timestamptz + i * interval '1 hour',
       decode(md5(i::text), 'hex'), ${bigText("i::text")} FROM generate_series(1, 20) AS i`,
  );
  const pipeline = prefix;
  const text = `
pipeline ${pipeline} { ${settings} }
source pg = postgres { url: "${source.url}", tables: ["public.${table}"], slot: "${pipeline}", heartbeat_seconds: 0 }
sink cache = redis { url: "${REDIS_URL}", format: "${format}", key: ${key ?? `"${prefix}:\${key.id}"`} ${sinkOptions} }
flow pg -> cache
`;
  const plan = planOf(text, join(folder, `${pipeline}.dts`));
  return {
    table,
    prefix: `${prefix}:`,
    pipeline,
    async run() {
      const log = recordingLogger();
      const summary = await runPipeline(plan, { baseDir: folder, untilCaughtUp: true, log, retry: { retryForMs: 0, initialDelayMs: 10, maxDelayMs: 10 } });
      return { summary, log };
    },
  };
}

/** Changes of every kind; `round` makes them differ from round to round. */
async function changes(table: string, round: number): Promise<void> {
  const base = 1000 * round;
  await source.sql(`INSERT INTO ${table} (id, name, price, qty, flag, at, data, big)
    SELECT ${base} + i, 'new ' || i, i * 0.01, -i, NULL, NULL, NULL, ${bigText(`'r${round}' || i`)} FROM generate_series(1, 10) AS i`);
  // Updates that leave the large value out of the change (absent).
  await source.sql(`UPDATE ${table} SET name = name || ' r${round}', price = price + 1 WHERE id % 3 = ${round % 3}`);
  await source.sql(`UPDATE ${table} SET flag = NULL, qty = NULL WHERE id % 5 = ${round % 5}`);
  // An update of the large value itself.
  await source.sql(`UPDATE ${table} SET big = ${bigText(`'changed${round}' || id`)} WHERE id % 7 = ${round % 7}`);
  // Key changes without the large value: it must come along from the old key.
  await source.sql(`UPDATE ${table} SET id = id + 100000 WHERE id IN (${base + 1}, ${base + 2})`);
  // One transaction changing a key several times, with and without the large value.
  await source.sql(`BEGIN;
    INSERT INTO ${table} VALUES (${base + 50}, 'tx', 1.00, 1, true, now(), '\\x00ff', ${bigText(`'tx${round}'`)});
    UPDATE ${table} SET name = 'tx moved' WHERE id = ${base + 50};
    UPDATE ${table} SET id = ${base + 51} WHERE id = ${base + 50};
    UPDATE ${table} SET price = 2.50 WHERE id = ${base + 51};
    UPDATE ${table} SET id = ${base + 52} WHERE id = ${base + 3};
    DELETE FROM ${table} WHERE id = ${base + 4};
    COMMIT`);
  await source.sql(`DELETE FROM ${table} WHERE id % 11 = ${round % 11}`);
}

describe.each(["json", "hash"] as const)("PostgreSQL → Redis, format %s", (format) => {
  it("equals the table after every round of inserts, absent-column updates, key changes and deletes", async () => {
    const c = await cache(format);
    const first = await c.run();
    expect(first.summary.stoppedBy).toBe("caught-up");
    expect(await cacheDifference(redis, source, c.table, c.prefix, format)).toBeUndefined();
    const [{ external }] = await source.sql<{ external: boolean }>(`SELECT pg_relation_size(reltoastrelid) > 0 AS external FROM pg_class WHERE relname = '${c.table}'`);
    expect(external).toBe(true);
    for (const round of [1, 2, 3]) {
      await changes(c.table, round);
      const { log } = await c.run();
      expect(await cacheDifference(redis, source, c.table, c.prefix, format), `round ${round}`).toBeUndefined();
      expect(log.lines.filter((line) => line.level === "warn" && line.fields?.["source"] === undefined)).toEqual([]);
    }
  });
});

describe("the redis sink's options", () => {
  it("names a key after the table and the primary key when no key is given", async () => {
    const prefix = uniquePrefix("default");
    prefixes.push(`public.${prefix}`);
    await source.sql(`CREATE TABLE ${prefix} (a int, b text, v text, PRIMARY KEY (a, b))`);
    await source.sql(`INSERT INTO ${prefix} VALUES (1, 'x', 'one'), (2, 'y:z', 'two')`);
    const plan = planOf(
      `pipeline ${prefix}
source pg = postgres { url: "${source.url}", tables: ["public.${prefix}"], slot: "${prefix}", heartbeat_seconds: 0 }
sink cache = redis { url: "${REDIS_URL}" }
flow pg -> cache`,
      join(folder, `${prefix}.dts`),
    );
    await runPipeline(plan, { baseDir: folder, untilCaughtUp: true });
    expect(await redis.get(`public.${prefix}:1:x`)).toBe('{"a":1,"b":"x","v":"one"}');
    expect(await redis.get(`public.${prefix}:2:y:z`)).toBe('{"a":2,"b":"y:z","v":"two"}');
  });

  it("sets ttl on every write and publishes every change in the write's transaction", async () => {
    const channel = uniquePrefix("channel");
    const c = await cache("hash", "", `, ttl: 600, publish: "${channel}"`);
    const subscriber = await sharedRedis();
    const messages: Record<string, string>[] = [];
    subscriber.on("message", (_channel: string, message: string) => messages.push(JSON.parse(message) as Record<string, string>));
    await subscriber.subscribe(channel);
    try {
      await c.run();
      await source.sql(`UPDATE ${c.table} SET name = 'renamed' WHERE id = 1`);
      await source.sql(`UPDATE ${c.table} SET id = 500 WHERE id = 2`);
      await source.sql(`DELETE FROM ${c.table} WHERE id = 3`);
      await c.run();
      expect(await cacheDifference(redis, source, c.table, c.prefix, "hash")).toBeUndefined();
      for (const id of [1, 4, 500]) {
        const ttl = await redis.ttl(`${c.prefix}${id}`);
        expect(ttl, `ttl of ${id}`).toBeGreaterThan(500);
        expect(ttl).toBeLessThanOrEqual(600);
      }
      const table = `public.${c.table}`;
      await eventually("the messages arrive", async () => messages.length >= 23);
      expect(messages.slice(0, 20).every((m) => m.op === "read" && m.table === table)).toBe(true);
      expect(messages.slice(20)).toEqual([
        { op: "update", key: `${c.prefix}1`, table },
        { op: "update", key: `${c.prefix}500`, table, from: `${c.prefix}2` },
        { op: "delete", key: `${c.prefix}3`, table },
      ]);
    } finally {
      subscriber.disconnect();
    }
  });

  it('with checkpoint: "redis", keeps the position beside the data and holds the lock while running', async () => {
    const c = await cache("json", `checkpoint: "redis"`);
    const first = await c.run();
    expect(first.summary.stoppedBy).toBe("caught-up");
    const stored = await redis.hgetall(`dts:checkpoints:${c.pipeline}`);
    expect(Object.keys(stored)).toEqual(["pg"]);
    const entry = JSON.parse(stored.pg!) as { checkpoint: { position: { kind: string; token: string } }; saved_at: string };
    expect(entry.checkpoint.position.kind).toBe("pg-lsn");
    // Released at the end of the run.
    expect(await redis.exists(`dts:lock:${c.pipeline}`)).toBe(0);
    await changes(c.table, 1);
    const second = await c.run();
    expect(second.summary.sources["pg"]!.events).toBeGreaterThan(0);
    expect(await cacheDifference(redis, source, c.table, c.prefix, "json")).toBeUndefined();
    const moved = JSON.parse((await redis.hget(`dts:checkpoints:${c.pipeline}`, "pg"))!) as typeof entry;
    const [{ later }] = await source.sql<{ later: boolean }>(`SELECT $1::pg_lsn > $2::pg_lsn AS later`, [moved.checkpoint.position.token, entry.checkpoint.position.token]);
    expect(later).toBe(true);
    // A run holding the lock keeps a second one out.
    await redis.set(`dts:lock:${c.pipeline}`, JSON.stringify({ id: Number(await redis.client("ID")), name: "held-by-test", pid: 1, host: "elsewhere", started: "now" }));
    await redis.client("SETNAME", "held-by-test");
    try {
      await expect(c.run()).rejects.toThrow(/is already running: dts-run pid 1 on host elsewhere holds its lock dts:lock:/);
    } finally {
      await redis.del(`dts:lock:${c.pipeline}`);
      await redis.client("SETNAME", "test");
    }
    prefixes.push(`dts:checkpoints:${c.pipeline}`);
  });

  it("is reported by dts verify as not verifiable (exit 4), saying why", async () => {
    requireBuild();
    const c = await cache("json");
    const file = join(folder, `${c.pipeline}-verify.dts`);
    writeFileSync(
      file,
      `pipeline ${c.pipeline}
source pg = postgres { url: "${source.url}", tables: ["public.${c.table}"], slot: "${c.pipeline}" }
sink cache = redis { url: "${REDIS_URL}", key: "${c.prefix}\${key.id}" }
flow pg -> cache
`,
    );
    const verify = await runDts(["verify", file]);
    expect(verify.code, verify.stdout + verify.stderr).toBe(4);
    expect(verify.stdout + verify.stderr).toMatch(/sink cache \(redis\) cannot be checked: the redis connector has no verify capability/);
  });
});
