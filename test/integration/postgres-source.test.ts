/**
 * The PostgreSQL source against the real server: snapshot + stream without gap or duplicate,
 * transactions and positions, resume (mid-stream and mid-snapshot), acknowledgements moving the
 * slot, the heartbeat, bounded memory on a backlog, "only" mode, and start-up errors.
 * Each test creates its own database and drops it (and its slots) at the end.
 */
import v8 from "node:v8";
import vm from "node:vm";
import { afterEach, describe, expect, it } from "vitest";
import type { ChangeEvent } from "../../src/model/event.js";
import { lsnToBigInt } from "../../src/model/position.js";
import type { Row } from "../../src/model/value.js";
import { ConnectorError, type SnapshotProgress, type SourceCheckpoint } from "../../src/runtime/contracts.js";
import { PostgresSource, type SourceTuning } from "../../src/connectors/postgres/source.js";
import { describeTables } from "../../src/connectors/postgres/tables.js";
import { rowsText } from "../../src/connectors/postgres/copy-wire.js";
import {
  BatchPuller,
  confirmedFlush,
  createDatabase,
  currentLsn,
  eventually,
  recordingLogger,
  requireLogicalReplication,
  slotName,
  sourceContext,
  type ThrowawayDatabase,
} from "./pg-helpers.js";

const fast: SourceTuning = { slotWaitMillis: 500, stream: { idleProbeMs: 20 } };

const databases: ThrowawayDatabase[] = [];
const sources: PostgresSource[] = [];

async function database(label: string): Promise<ThrowawayDatabase> {
  await requireLogicalReplication();
  const db = await createDatabase(label);
  databases.push(db);
  return db;
}

function source(
  db: ThrowawayDatabase,
  options: Record<string, unknown>,
  extra: {
    resume?: SourceCheckpoint | null;
    tuning?: SourceTuning;
    log?: ReturnType<typeof recordingLogger>;
    name?: string;
    snapshotProgress?: (progress: SnapshotProgress | null) => void;
  } = {},
): PostgresSource {
  const context = sourceContext(
    { url: db.url, tables: ["public.*"], snapshot: "initial", chunk_size: 10000, heartbeat_seconds: 10, ...options } as never,
    { resume: extra.resume ?? null, log: extra.log ?? recordingLogger(), name: extra.name ?? "pg" },
  );
  const created = new PostgresSource(extra.snapshotProgress !== undefined ? { ...context, snapshotProgress: extra.snapshotProgress } : context, extra.tuning ?? fast);
  sources.push(created);
  return created;
}

afterEach(async () => {
  for (const created of sources.splice(0)) await created.close();
  for (const db of databases.splice(0)) await db.drop();
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Applies events to a key → row map as an idempotent sink would (upsert / delete by key). */
function apply(model: Map<string, Row>, events: readonly ChangeEvent[]): void {
  for (const event of events) {
    const key = JSON.stringify(event.key);
    if (event.op === "delete") model.delete(key);
    else model.set(key, { ...model.get(key), ...event.after });
  }
}

async function tableModel(db: ThrowawayDatabase, sql: string): Promise<Map<string, Row>> {
  const rows = await db.sql(sql);
  return new Map(rows.map((row) => [JSON.stringify({ id: row.id }), row as Row]));
}

describe("postgres source", () => {
  it("copies inside the slot's exported snapshot and streams from its consistent point: no gap, no duplicate", async () => {
    const db = await database("boundary");
    await db.sql("CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL, note text)");
    await db.sql("INSERT INTO items SELECT g, 0, 'row ' || g FROM generate_series(1, 3000) g");

    // A writer commits transaction t = 0, 1, 2, ... in order, before, during and after start()
    // (which creates the slot and imports its snapshot) and while the chunks are read.
    const writerClient = await db.client();
    let committed = 0;
    let stopAfter = Infinity;
    const writer = (async () => {
      for (let t = 0; t < stopAfter; t++) {
        await writerClient.query("BEGIN");
        await writerClient.query("INSERT INTO items VALUES ($1, $2, 'new')", [100000 + t, t]);
        await writerClient.query("UPDATE items SET v = $1 WHERE id = $2", [t, 1 + ((t * 37) % 3000)]);
        if (t % 3 === 0) await writerClient.query("DELETE FROM items WHERE id = $1", [3000 - t]);
        await writerClient.query("COMMIT");
        committed = t + 1;
        await sleep(2);
      }
    })();
    await eventually("the writer is under way", async () => committed >= 20);

    const pg = source(db, { tables: ["public.items"], chunk_size: 250 });
    await pg.start();
    const puller = new BatchPuller(pg);
    await puller.until((batch) => {
      const state = (batch.checkpoint?.state as { snapshot?: { tablesDone: string[] } } | undefined)?.snapshot;
      return state !== undefined && state.tablesDone.includes("public.items");
    });
    stopAfter = committed + 30; // and a few more once streaming has begun
    await writer;
    await puller.untilCaughtUpPast(await currentLsn(db));

    const reads = puller.events.filter((event) => event.op === "read");
    const changes = puller.events.filter((event) => event.op !== "read");
    // Every row once in the copy.
    const readIds = reads.map((event) => event.key.id as number);
    expect(new Set(readIds).size).toBe(readIds.length);
    // The copy holds exactly the transactions before the consistent point: inserts 0..S...
    const copied = readIds.filter((id) => id >= 100000).map((id) => id - 100000).sort((a, b) => a - b);
    const s = copied.length - 1;
    expect(s).toBeGreaterThanOrEqual(19);
    expect(copied).toEqual([...Array(copied.length).keys()]);
    // ...and the stream exactly the ones after: each once, in commit order.
    const streamedInserts = changes.filter((event) => event.op === "insert").map((event) => (event.after!.id as number) - 100000);
    expect(streamedInserts).toEqual([...Array(committed - s - 1).keys()].map((i) => s + 1 + i));
    expect(committed - s - 1).toBeGreaterThan(20);
    // Applying everything in order gives the table as it is.
    const model = new Map<string, Row>();
    apply(model, puller.events);
    expect(model).toEqual(await tableModel(db, "SELECT id, v, note FROM items"));
  });

  it("gives every event of a transaction its commit position, ends batches at commits and splits a large transaction", async () => {
    const db = await database("transactions");
    await db.sql("CREATE TABLE t (id int PRIMARY KEY, v text)");
    const pg = source(db, { snapshot: "never" }, { tuning: { ...fast, stream: { idleProbeMs: 20, batchEvents: 100 } } });
    await pg.start();
    const puller = new BatchPuller(pg, { keepBatches: true });
    await puller.until((batch) => batch.caughtUp === true);
    for (let t = 0; t < 5; t++) await db.sql(`BEGIN; INSERT INTO t VALUES (${2 * t}, 'a'), (${2 * t + 1}, 'b'); COMMIT`);
    await db.sql("INSERT INTO t SELECT g, 'big' FROM generate_series(1000, 1249) g");
    await db.sql("BEGIN; UPDATE t SET v = 'c' WHERE id = 0; DELETE FROM t WHERE id = 1; COMMIT");
    await sleep(300); // let it all arrive and queue up before pulling
    puller.batches.length = 0;
    await puller.untilCaughtUpPast(await currentLsn(db));

    const sizes = puller.batches.map((batch) => [batch.events.length, batch.checkpoint !== undefined]);
    // Five small transactions in one batch, the large one in 100 + 100 + 50 (checkpoint on the last).
    // (the large one's last part shares its batch with the small transaction after it).
    expect(sizes.slice(0, 4)).toEqual([
      [10, true],
      [100, false],
      [100, false],
      [52, true],
    ]);
    const byPosition = new Map<string, ChangeEvent[]>();
    for (const event of puller.events) {
      const list = byPosition.get(event.source.position.token) ?? [];
      list.push(event);
      byPosition.set(event.source.position.token, list);
    }
    expect([...byPosition.values()].map((list) => list.length)).toEqual([2, 2, 2, 2, 2, 250, 2]);
    for (const list of byPosition.values()) expect(new Set(list.map((event) => event.source.txid)).size).toBe(1);
    // Positions increase with commits, and each checkpoint lies after the events it covers.
    const positions = [...byPosition.keys()].map(lsnToBigInt);
    expect([...positions].sort((a, b) => (a < b ? -1 : 1))).toEqual(positions);
    for (const batch of puller.batches) {
      if (batch.checkpoint === undefined) continue;
      for (const event of batch.events) expect(lsnToBigInt(event.source.position.token)).toBeLessThan(lsnToBigInt(batch.checkpoint.position!.token));
    }
    const last = puller.events.slice(-2);
    expect(last.map((event) => [event.op, event.before, event.after, event.key])).toEqual([
      ["update", null, { id: 0, v: "c" }, { id: 0 }],
      ["delete", { id: 1 }, null, { id: 1 }],
    ]);
    expect(last[0]!.source).toMatchObject({ connector: "postgres", db: db.name, schema: "public", table: "t" });
  });

  it("resumes after a stop mid-stream from the checkpoint: nothing skipped, nothing durable repeated", async () => {
    const db = await database("resume");
    await db.sql("CREATE TABLE t (id int PRIMARY KEY, v int)");
    // One transaction per batch (each has two events), so that there is a checkpoint after each.
    const oneEach: SourceTuning = { ...fast, stream: { idleProbeMs: 20, batchEvents: 2 } };
    const first = source(db, { snapshot: "never" }, { tuning: oneEach });
    await first.start();
    const puller = new BatchPuller(first, { acknowledge: false, keepBatches: true });
    await puller.until((batch) => batch.caughtUp === true);
    for (let t = 1; t <= 10; t++) await db.sql(`BEGIN; INSERT INTO t VALUES (${t}, 0); UPDATE t SET v = ${t} WHERE id = ${t}; COMMIT`);
    // Read up to transaction 6; the checkpoint after 5 is durable, but the run stops before
    // the slot is told (a crash between the two), so the server still holds transactions 1-5.
    await puller.until(() => puller.events.some((event) => event.key.id === 6));
    const batchOf5 = puller.batches.find((batch) => batch.events.some((event) => event.key.id === 5) && batch.checkpoint !== undefined)!;
    expect(batchOf5.events.at(-1)!.key.id).toBe(5);
    await first.close();
    const slot = (await db.sql("SELECT slot_name FROM pg_replication_slots WHERE database = current_database()"))[0]!.slot_name as string;
    expect(lsnToBigInt((await confirmedFlush(db, slot))!)).toBeLessThan(lsnToBigInt(batchOf5.checkpoint!.position!.token));

    const second = source(db, { snapshot: "never" }, { resume: batchOf5.checkpoint! });
    await second.start();
    const resumed = new BatchPuller(second);
    await resumed.untilCaughtUpPast(await currentLsn(db));
    expect(resumed.events.map((event) => [event.op, event.key.id])).toEqual(
      [6, 7, 8, 9, 10].flatMap((id) => [
        ["insert", id],
        ["update", id],
      ]),
    );
  });

  it("resumes an interrupted snapshot from its last chunk, then streams from the consistent point", async () => {
    const db = await database("snapshot_resume");
    await db.sql("CREATE TABLE t (id int PRIMARY KEY, v text)");
    await db.sql("INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 1000) g");
    const first = source(db, { chunk_size: 100 });
    await first.start();
    const puller = new BatchPuller(first);
    await puller.next();
    const second = await puller.next();
    expect(puller.events.map((event) => event.key.id)).toEqual([...Array(200).keys()].map((i) => i + 1));
    expect(second!.checkpoint!.state).toMatchObject({ snapshot: { table: "public.t", lastKey: ["200"], tablesDone: [] } });
    // Changes after the consistent point, then a crash (the exported snapshot dies with the run).
    await db.sql("BEGIN; INSERT INTO t VALUES (5000, 'late'); UPDATE t SET v = 'changed' WHERE id IN (50, 700); DELETE FROM t WHERE id = 900; COMMIT");
    await first.close();

    const log = recordingLogger();
    const restarted = source(db, { chunk_size: 100 }, { resume: second!.checkpoint!, log });
    await restarted.start();
    const again = new BatchPuller(restarted);
    await again.untilCaughtUpPast(await currentLsn(db));
    const reads = again.events.filter((event) => event.op === "read").map((event) => event.key.id as number);
    // The first two chunks are not read again; the rest are, in a new snapshot that already
    // shows the late changes (id 900 gone, 5000 there).
    expect(reads[0]).toBe(201);
    expect(reads).toEqual([...[...Array(800).keys()].map((i) => i + 201).filter((id) => id !== 900), 5000]);
    expect(log.lines.some((line) => line.message === "resuming the snapshot")).toBe(true);
    // The stream replays the late transaction from the consistent point; it all converges.
    expect(again.events.filter((event) => event.op !== "read").map((event) => [event.op, event.key.id])).toEqual([
      ["insert", 5000],
      ["update", 50],
      ["update", 700],
      ["delete", 900],
    ]);
    const model = new Map<string, Row>();
    apply(model, puller.events);
    apply(model, again.events);
    expect(model).toEqual(await tableModel(db, "SELECT id, v FROM t"));
  });

  it("streams a table's copy in chunks of whole lines, and closes at once in the middle of it", async () => {
    const db = await database("snapshot_stream");
    await db.sql("CREATE TABLE t (id int PRIMARY KEY, v text)");
    // Far more than the socket buffers hold, so the COPY is mid-stream, its socket paused, when closed.
    await db.sql("INSERT INTO t SELECT g, repeat('x', 200) || g FROM generate_series(1, 200000) g");
    const first = source(db, { chunk_size: 1000 });
    await first.start();
    const puller = new BatchPuller(first, { keepBatches: true });
    await puller.next();
    await puller.next();
    await puller.next();
    for (const batch of puller.batches) {
      const bulk = batch.bulk!;
      const text = rowsText({ data: [...bulk.data], count: bulk.count, bytes: bulk.data.reduce((n, b) => n + b.length, 0) });
      // Each chunk holds whole lines, as many as its events, the same rows.
      expect(text.endsWith("\n")).toBe(true);
      const lines = text.slice(0, -1).split("\n");
      expect(lines).toHaveLength(bulk.count);
      expect(bulk.count).toBe(batch.events.length);
      expect(lines.map((line) => line.split("\t")[0])).toEqual(batch.events.map((event) => String(event.key.id)));
      expect(bulk).toMatchObject({ format: "pg-copy-data", table: "public.t", columns: ["id", "v"], types: ["integer", "text"] });
    }
    expect(puller.events.map((event) => event.key.id)).toEqual([...Array(puller.events.length).keys()].map((i) => i + 1));
    const started = performance.now();
    await first.close();
    expect(performance.now() - started).toBeLessThan(2000);
    await eventually("the snapshot's server session to end", async () => {
      const [{ n }] = await db.sql<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'COPY (SELECT%'");
      return Number(n) === 0;
    });
    // The next run resumes after the last chunk handed over.
    const lastKey = puller.events[puller.events.length - 1]!.key.id as number;
    const restarted = source(db, { chunk_size: 50000 }, { resume: puller.lastCheckpoint! });
    await restarted.start();
    const again = new BatchPuller(restarted, { keepEvents: false });
    const next = await again.next();
    expect(next!.events[0]!.key.id).toBe(lastKey + 1);
    await restarted.close();
  });

  it("fails retriably, naming the server, when its session ends mid-copy; a new reader resumes after the last chunk", async () => {
    const db = await database("snapshot_cut");
    await db.sql("CREATE TABLE t (id int PRIMARY KEY, v text)");
    await db.sql("INSERT INTO t SELECT g, repeat('y', 300) FROM generate_series(1, 100000) g");
    const first = source(db, { chunk_size: 1000 });
    await first.start();
    const puller = new BatchPuller(first, { keepEvents: false });
    await puller.next();
    await puller.next();
    await db.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'COPY (SELECT%'");
    let failure: unknown;
    try {
      for (let i = 0; i < 200; i++) await puller.next();
    } catch (error) {
      failure = error;
    }
    expect(failure).toBeInstanceOf(ConnectorError);
    expect((failure as ConnectorError).retriable).toBe(true);
    expect((failure as ConnectorError).message).toContain("127.0.0.1:5432");
    await first.close();
    const lastKey = Number((puller.lastCheckpoint!.state as { snapshot: { lastKey: string[] } }).snapshot.lastKey[0]);
    const again = source(db, { chunk_size: 50000 }, { resume: puller.lastCheckpoint! });
    await again.start();
    const rest = new BatchPuller(again);
    await rest.untilCaughtUpPast(await currentLsn(db));
    const reads = rest.events.filter((event) => event.op === "read").map((event) => event.key.id as number);
    expect(reads[0]).toBe(lastKey + 1);
    expect(reads.at(-1)).toBe(100000);
    expect(reads).toHaveLength(100000 - lastKey);
  });

  it("reports the snapshot's progress table by table, and that it is done", async () => {
    const db = await database("snapshot_progress");
    await db.sql("CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY)");
    await db.sql("INSERT INTO a SELECT generate_series(1, 2500); INSERT INTO b SELECT generate_series(1, 10); ANALYZE a; ANALYZE b");
    const reports: (SnapshotProgress | null)[] = [];
    const pg = source(db, { chunk_size: 1000 }, { snapshotProgress: (progress) => reports.push(progress) });
    await pg.start();
    const puller = new BatchPuller(pg);
    await puller.untilCaughtUpPast(await currentLsn(db));
    const ofA = reports.filter((report) => report?.table === "public.a");
    expect(ofA[0]).toEqual({ table: "public.a", rows: 0, estimatedRows: 2500, tableNumber: 1, tables: 2 });
    expect(ofA.map((report) => report!.rows)).toEqual([0, 1000, 2000, 2500]);
    expect(reports.filter((report) => report?.table === "public.b").at(-1)).toEqual({ table: "public.b", rows: 10, estimatedRows: 10, tableNumber: 2, tables: 2 });
    expect(reports.at(-1)).toBeNull();
  });

  it("moves the slot's confirmed_flush_lsn to an acknowledged checkpoint, and only then", async () => {
    const db = await database("acknowledge");
    await db.sql("CREATE TABLE t (id int PRIMARY KEY)");
    const pg = source(db, { snapshot: "never", slot: slotName("dts_ack_test") });
    await pg.start();
    const puller = new BatchPuller(pg, { acknowledge: false });
    await puller.until((batch) => batch.caughtUp === true);
    await db.sql("INSERT INTO t VALUES (1)");
    const batch = await puller.until((candidate) => candidate.events.length > 0);
    const checkpoint = batch!.checkpoint!;
    const before = await confirmedFlush(db, slotName("dts_ack_test"));
    expect(lsnToBigInt(before!)).toBeLessThan(lsnToBigInt(checkpoint.position!.token));
    await pg.acknowledge(checkpoint);
    await eventually("confirmed_flush_lsn reaches the checkpoint", async () => (await confirmedFlush(db, slotName("dts_ack_test"))) === checkpoint.position!.token);
  });

  it("keeps the slot moving with heartbeats on a quiet database while another database writes WAL", async () => {
    const quiet = await database("quiet");
    const busy = await database("busy");
    await quiet.sql("CREATE TABLE t (id int PRIMARY KEY)");
    await busy.sql("CREATE TABLE noise (id serial PRIMARY KEY, payload text)");
    const pg = source(quiet, { snapshot: "never", slot: slotName("dts_heartbeat_test"), heartbeat_seconds: 1 });
    await pg.start();
    const puller = new BatchPuller(pg);
    await puller.until((batch) => batch.caughtUp === true);
    const start = await confirmedFlush(quiet, slotName("dts_heartbeat_test"));
    await busy.sql("INSERT INTO noise (payload) SELECT repeat('x', 500) FROM generate_series(1, 2000)");
    const busyEnd = await currentLsn(busy);
    // No captured change arrives; only heartbeats can move the slot past the other database's WAL.
    const pulling = puller.until(() => false, 10_000).catch(() => {});
    await eventually("the quiet slot passes the busy database's WAL", async () => lsnToBigInt((await confirmedFlush(quiet, slotName("dts_heartbeat_test")))!) >= lsnToBigInt(busyEnd), 8000);
    expect(puller.events).toEqual([]);
    expect(lsnToBigInt((await confirmedFlush(quiet, slotName("dts_heartbeat_test")))!)).toBeGreaterThan(lsnToBigInt(start!));
    await pg.close();
    await pulling;
  });

  it("bounds memory on a large backlog: the socket is paused while nobody pulls", async () => {
    const db = await database("backlog");
    await db.sql("CREATE TABLE big (id int PRIMARY KEY, payload text)");
    const pg = source(db, { snapshot: "never", slot: slotName("dts_backlog_test") }, { tuning: { slotWaitMillis: 500, stream: { idleProbeMs: 50 } } });
    await pg.start();
    const puller = new BatchPuller(pg, { keepEvents: false });
    await puller.until((batch) => batch.caughtUp === true);

    v8.setFlagsFromString("--expose-gc");
    const gc = vm.runInNewContext("gc") as () => void;
    const heap = (): number => {
      gc();
      return process.memoryUsage().heapUsed;
    };
    const baseline = heap();

    // 200k rows of ~1 KB (about 210 MB of WAL) in 20 transactions, while nothing is pulled.
    for (let t = 0; t < 20; t++) {
      await db.sql(`INSERT INTO big SELECT g, repeat(md5(g::text), 32) FROM generate_series(${t * 10000 + 1}, ${(t + 1) * 10000}) g`);
    }
    const end = await currentLsn(db);
    await eventually("the stream pauses its socket", async () => pg.streamStats()!.paused);
    await sleep(500);
    let peak = heap() - baseline;

    let events = 0;
    let batches = 0;
    let lastCaughtUp = false;
    while (!lastCaughtUp || lsnToBigInt(puller.lastCheckpoint!.position!.token) < lsnToBigInt(end)) {
      const batch = await puller.next();
      events += batch!.events.length;
      lastCaughtUp = batch!.caughtUp === true;
      if (++batches % 10 === 0) {
        peak = Math.max(peak, heap() - baseline);
        await sleep(5); // a slow consumer
      }
    }
    expect(events).toBe(200_000);
    const stats = pg.streamStats()!;
    console.log(
      `[bounded memory] 200k changes of ~1 KB (~210 MB WAL): queue paused ${stats.pauses} times; ` +
        `heap above baseline peaked at ${(peak / 1048576).toFixed(1)} MB (queue limit 16 MB / 10k events)`,
    );
    expect(stats.pauses).toBeGreaterThan(0);
    expect(peak).toBeLessThan(96 * 1048576);
  });

  it('"only" copies the tables and ends, creating neither slot nor publication, and does not copy again', async () => {
    const db = await database("only");
    await db.sql("CREATE TABLE a (id int PRIMARY KEY, v text); CREATE TABLE b (k text PRIMARY KEY)");
    await db.sql("INSERT INTO a SELECT g, 'x' FROM generate_series(1, 250) g; INSERT INTO b VALUES ('p'), ('q')");
    const pg = source(db, { snapshot: "only", chunk_size: 100 });
    await pg.start();
    const puller = new BatchPuller(pg);
    while ((await puller.next()) !== null);
    expect(puller.events.filter((event) => event.source.table === "a")).toHaveLength(250);
    expect(puller.events.filter((event) => event.source.table === "b").map((event) => event.key)).toEqual([{ k: "p" }, { k: "q" }]);
    expect(await db.sql("SELECT slot_name FROM pg_replication_slots WHERE database = current_database()")).toEqual([]);
    expect(await db.sql("SELECT pubname FROM pg_publication")).toEqual([]);

    const again = source(db, { snapshot: "only" }, { resume: puller.lastCheckpoint! });
    await again.start();
    const second = new BatchPuller(again);
    expect(await second.next()).toBeNull();
  });

  it("resolves globs, updates the publication when tables change, and copies a table added later", async () => {
    const db = await database("globs");
    await db.sql("CREATE SCHEMA sales; CREATE TABLE sales.orders (id int PRIMARY KEY); CREATE TABLE public.orders (id int PRIMARY KEY)");
    await db.sql("CREATE TABLE public.other (id int PRIMARY KEY); INSERT INTO public.other VALUES (1), (2)");
    const described = await describeTables(db.url, ["*.orders"]);
    expect(described.map((table) => table.qualifiedName)).toEqual(["public.orders", "sales.orders"]);

    const first = source(db, { tables: ["*.orders"], publication: "dts_globs" });
    await first.start();
    const puller = new BatchPuller(first);
    await puller.until((batch) => batch.caughtUp === true);
    await first.close();
    const published = async (): Promise<string[]> =>
      (await db.sql("SELECT schemaname || '.' || tablename AS name FROM pg_publication_tables WHERE pubname = 'dts_globs' ORDER BY 1")).map((row) => String(row.name));
    expect(await published()).toEqual(["public.orders", "sales.orders"]);

    expect(puller.lastCheckpoint!.state).toEqual({ tables: ["public.orders", "sales.orders"] });

    await db.sql("INSERT INTO public.other VALUES (3)"); // not captured yet, so not streamed; it is copied below
    const options = { tables: ["*.orders", "public.other"], publication: "dts_globs" };
    // A run that adds the table to the publication, then dies before its copy made a checkpoint...
    const crashed = source(db, options, { resume: puller.lastCheckpoint! });
    await crashed.start();
    expect(await published()).toEqual(["public.orders", "public.other", "sales.orders"]);
    await crashed.close();
    // ...does not make the next run believe the table was copied: the checkpoint says it was not.
    const second = source(db, options, { resume: puller.lastCheckpoint! });
    await second.start();
    const resumed = new BatchPuller(second);
    await resumed.until((batch) => batch.caughtUp === true);
    await db.sql("INSERT INTO public.other VALUES (4)");
    await resumed.untilCaughtUpPast(await currentLsn(db));
    expect(resumed.events.map((event) => [event.op, event.source.table, event.key.id])).toEqual([
      ["read", "other", 1],
      ["read", "other", 2],
      ["read", "other", 3],
      ["insert", "other", 4],
    ]);
    expect(resumed.lastCheckpoint!.state).toEqual({ tables: ["public.orders", "sales.orders", "public.other"] });
  });

  it("warns at start when the server lets a slot keep WAL without bound (max_slot_wal_keep_size = -1), saying how to bound it", async () => {
    const db = await database("src_walkeep");
    await db.sql("CREATE TABLE t (id int PRIMARY KEY)");
    const [{ setting }] = await db.sql<{ setting: string }>("SELECT current_setting('max_slot_wal_keep_size') AS setting");
    const log = recordingLogger();
    const reader = source(db, { snapshot: "never", slot: slotName("dts_walkeep") }, { log });
    await reader.start();
    const warnings = log.lines.filter((line) => line.level === "warn" && line.message.includes("max_slot_wal_keep_size")).map((line) => line.message);
    // The test server keeps the default; the warning follows whatever it says.
    expect(warnings).toEqual(
      setting === "-1"
        ? [
            `PostgreSQL at ${new URL(db.url).host} has max_slot_wal_keep_size = -1: while this pipeline is stopped or behind, its ` +
              `replication slot ${slotName("dts_walkeep")} keeps every WAL file written since its position, without bound, until the server's disk is full. Bound ` +
              "it: ALTER SYSTEM SET max_slot_wal_keep_size = '50GB'; SELECT pg_reload_conf(); (a slot that falls further behind is then invalidated: " +
              "the pipeline stops, and must copy its tables again). When the pipeline is retired, remove its slot: dts drop <pipeline file>, or " +
              `SELECT pg_drop_replication_slot('${slotName("dts_walkeep")}')`,
          ]
        : [],
    );
  });

  it("fails to start with errors that name the server, the table or the slot", async () => {
    const unreachable = new PostgresSource(sourceContext({ url: "postgres://postgres@127.0.0.1:1/shop", tables: ["public.orders"] }));
    const refused = await unreachable.start().then(
      () => null,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(ConnectorError);
    expect((refused as ConnectorError).message).toContain("127.0.0.1:1");
    expect((refused as ConnectorError).message).toContain("connection refused");
    expect((refused as ConnectorError).retriable).toBe(false);

    const db = await database("errors");
    await db.sql("CREATE TABLE orders (id int PRIMARY KEY); CREATE TABLE keyless (v int); CREATE TABLE full_keyless (v int)");
    await db.sql("ALTER TABLE full_keyless REPLICA IDENTITY FULL");
    const failure = async (options: Record<string, unknown>, tuning?: SourceTuning): Promise<ConnectorError> => {
      const created = source(db, options, tuning !== undefined ? { tuning } : {});
      const error = await created.start().then(
        () => null,
        (caught: unknown) => caught,
      );
      expect(error).toBeInstanceOf(ConnectorError);
      expect((error as ConnectorError).retriable).toBe(false);
      return error as ConnectorError;
    };
    expect((await failure({ tables: ["public.ordrs"] })).message).toMatch(/table public\.ordrs does not exist in database dts_test_errors_\w+ at 127\.0\.0\.1:5432; did you mean public\.orders\?/);
    expect((await failure({ tables: ["nothing.*"] })).message).toContain('no table matches "nothing.*"');
    expect((await failure({ tables: ["public.keyless"] })).message).toContain("table public.keyless has no primary key");
    // A table whose every column is the key (REPLICA IDENTITY FULL) is accepted.
    const full = source(db, { tables: ["public.full_keyless"], snapshot: "only" });
    await full.start();
    await full.close();

    // A slot held by another program stops the pipeline; held under this pipeline's own name
    // (another dts-run of it, or its previous connection) the error is retriable.
    const holder = source(db, { tables: ["public.orders"], slot: slotName("dts_busy_slot"), snapshot: "never" }, { name: "elsewhere" });
    await holder.start();
    const holding = new BatchPuller(holder);
    await holding.until((batch) => batch.caughtUp === true);
    expect((await failure({ tables: ["public.orders"], slot: slotName("dts_busy_slot"), snapshot: "never" })).message).toMatch(
      /replication slot dts_busy_slot_[0-9a-f]+ at 127\.0\.0\.1:5432 is in use by process \d+ \(dts test\.elsewhere/,
    );
    const twin = source(db, { tables: ["public.orders"], slot: slotName("dts_busy_slot"), snapshot: "never" }, { name: "elsewhere" });
    const busy = await twin.start().then(
      () => null,
      (error: unknown) => error as ConnectorError,
    );
    expect(busy?.retriable).toBe(true);
    expect(busy?.message).toContain("another dts-run of this pipeline");
  });

  it("measures snapshot and streaming throughput", async () => {
    const db = await database("throughput");
    await db.sql(
      "CREATE TABLE m (id bigint PRIMARY KEY, qty int, price numeric(12,2), label text, at timestamptz)",
    );
    const rows = 100_000;
    await db.sql(`INSERT INTO m SELECT g, g % 100, (g % 10000) / 100.0, 'label ' || g, now() FROM generate_series(1, ${rows}) g`);
    await db.sql("ANALYZE m");
    const pg = source(db, { tables: ["public.m"], chunk_size: 10000 });
    await pg.start();
    const puller = new BatchPuller(pg, { keepEvents: false });
    let copied = 0;
    const snapshotStart = performance.now();
    while (copied < rows) copied += (await puller.next())!.events.length;
    const snapshotSeconds = (performance.now() - snapshotStart) / 1000;
    await puller.until((batch) => batch.caughtUp === true);

    await db.sql("UPDATE m SET qty = qty + 1");
    await sleep(1000); // the WAL is written; now drain it as fast as the source decodes
    const end = await currentLsn(db);
    let streamed = 0;
    const streamStart = performance.now();
    while (streamed < rows) streamed += (await puller.next())!.events.length;
    const streamSeconds = (performance.now() - streamStart) / 1000;
    await puller.untilCaughtUpPast(end);
    console.log(
      `[throughput] snapshot ${rows} rows in ${snapshotSeconds.toFixed(2)} s = ${Math.round(rows / snapshotSeconds)} rows/s; ` +
        `stream ${rows} updates in ${streamSeconds.toFixed(2)} s = ${Math.round(rows / streamSeconds)} events/s`,
    );
    expect(streamed).toBe(rows);
  });
});
