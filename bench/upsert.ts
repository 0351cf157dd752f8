/**
 * `npm run bench upsert`: the PostgreSQL sink's two ways of batching upserts, on this machine.
 *
 * The same rows (a realistic ten-column orders table) go through `PostgresSink.write` in
 * batches of 10k and 100k rows, with each method, in three situations:
 *   - fresh:  snapshot reads into an empty table (copy tries a straight COPY into the table),
 *   - insert: upserts of keys the table does not have (forced through the upsert statement),
 *   - update: upserts of keys it has (every row conflicts and is updated).
 * Each figure is the best of `RUNS` passes, in rows per second, sink encoding included.
 */
import { performance } from "node:perf_hooks";
import { PostgresSink, type UpsertMethod } from "../src/connectors/postgres/sink.js";
import type { SinkEvent } from "../src/runtime/contracts.js";
import { adminQuery, createBenchDatabase, ordersTableSql, orderRow, quietLog } from "./support.js";
import { pgLsnPosition } from "../src/model/position.js";
import { Timestamp } from "../src/model/timestamp.js";
import type { Op } from "../src/model/event.js";

const RUNS = 3;

export async function benchUpsert(args: readonly string[]): Promise<void> {
  const rows = Number(args[0] ?? 200_000);
  const db = await createBenchDatabase("upsert");
  try {
    await adminQuery(db.url, ordersTableSql("public.orders"));
    const results: { method: UpsertMethod; batch: number; situation: string; rowsPerSecond: number }[] = [];
    for (const batch of [10_000, 100_000]) {
      for (const method of ["unnest", "copy"] as const) {
        for (const situation of ["fresh", "insert", "update"] as const) {
          let best = 0;
          for (let run = 0; run < RUNS; run++) {
            if (situation !== "update") await adminQuery(db.url, "TRUNCATE public.orders");
            const op: Op = situation === "fresh" ? "read" : "update";
            const batches = makeBatches(rows, batch, op, run);
            const sink = new PostgresSink({ url: db.url, createTables: false, batchSize: batch, pipeline: "bench", name: "bench", log: quietLog, method });
            await sink.start();
            const started = performance.now();
            for (const events of batches) await sink.write({ events });
            const seconds = (performance.now() - started) / 1000;
            await sink.close();
            best = Math.max(best, rows / seconds);
          }
          results.push({ method, batch, situation, rowsPerSecond: best });
          process.stdout.write(`upsert ${method.padEnd(6)} batch ${String(batch).padStart(6)} ${situation.padEnd(6)} ${Math.round(best).toLocaleString("en-US").padStart(9)} rows/s\n`);
        }
      }
    }
    process.stdout.write("\nunnest / copy (higher: unnest faster)\n");
    for (const batch of [10_000, 100_000]) {
      for (const situation of ["fresh", "insert", "update"]) {
        const of = (m: UpsertMethod) => results.find((r) => r.method === m && r.batch === batch && r.situation === situation)!.rowsPerSecond;
        process.stdout.write(`  batch ${String(batch).padStart(6)} ${situation.padEnd(6)} ${(of("unnest") / of("copy")).toFixed(2)}\n`);
      }
    }
  } finally {
    await db.drop();
  }
}

function makeBatches(rows: number, batch: number, op: Op, run: number): SinkEvent[][] {
  const batches: SinkEvent[][] = [];
  const ts = Timestamp.fromEpochMillis(Date.now());
  for (let start = 0; start < rows; start += batch) {
    const events: SinkEvent[] = [];
    for (let id = start + 1; id <= Math.min(rows, start + batch); id++) {
      const after = orderRow(id, run);
      events.push({
        target: "public.orders",
        event: {
          op,
          before: null,
          after,
          key: { id },
          source: { connector: "postgres", db: "bench", schema: "public", table: "orders", position: pgLsnPosition(BigInt(id)), ts },
        },
      });
    }
    batches.push(events);
  }
  return batches;
}


