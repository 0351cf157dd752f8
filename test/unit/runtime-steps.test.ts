/**
 * Steps at run time: filter, map (on both images), route, validate, and where a rejected
 * event goes — the dead-letter sink with its reason and place, or a stop of the pipeline.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Decimal } from "../../src/model/decimal.js";
import type { SourceBatch } from "../../src/runtime/contracts.js";
import { PipelineFailure, runPipeline, type RunOptions } from "../../src/runtime/run.js";
import { compileFlow, emptyFlowOutput } from "../../src/runtime/steps.js";
import { silentLogger } from "../../src/runtime/log.js";
import { fastRetry, MemoryStore, orderEvent, planOf, recordingSinks, scriptedSources, type SinkBehaviour } from "./runtime-fixtures.js";

async function run(text: string, batches: SourceBatch[], options: { behaviours?: Record<string, SinkBehaviour>; baseDir?: string } = {}) {
  const plan = planOf(text, join(options.baseDir ?? "/tmp", "test.dts"));
  const { factory: sinkFactory, sinks } = recordingSinks(options.behaviours);
  const runOptions: RunOptions = {
    baseDir: options.baseDir ?? "/tmp",
    connectors: { sources: { jsonl: scriptedSources({ s: batches }).factory }, sinks: { discard: sinkFactory, jsonl: sinkFactory } },
    checkpointStore: new MemoryStore(),
    retry: fastRetry,
  };
  const summary = await runPipeline(plan, runOptions);
  return { summary, sinks };
}

const oneBatch = (...events: ReturnType<typeof orderEvent>[]): SourceBatch[] => [
  { events, checkpoint: { position: events.at(-1)!.source.position }, caughtUp: true },
];

describe("steps", () => {
  it("filter keeps true, drops false and null", async () => {
    const events = [
      orderEvent(1, { row: { id: 1, vip: true } }),
      orderEvent(2, { row: { id: 2, vip: false } }),
      orderEvent(3, { row: { id: 3, vip: null } }),
      orderEvent(4, { row: { id: 4 } }),
    ];
    const { sinks } = await run(
      `source s = jsonl { path: "in" }
       sink out = discard {}
       flow s | filter row.vip -> out`,
      oneBatch(...events),
    );
    expect(sinks.get("out")!.events.map((e) => e.event.key["id"])).toEqual([1]);
  });

  it("map reshapes the before and the after image alike; the key is unchanged", async () => {
    const update = orderEvent(7, {
      op: "update",
      before: { id: 7, amount: new Decimal("10.50"), status: "pending" },
      row: { id: 7, amount: new Decimal("12.25"), status: "paid" },
    });
    const remove = orderEvent(8, { op: "delete", row: { id: 8, amount: new Decimal("1.00"), status: "cancelled" } });
    const { sinks } = await run(
      `source s = jsonl { path: "in" }
       sink out = discard {}
       flow s | map { order: row.id, doubled: row.amount * 2, state: upper(row.status), was_op: op } -> out`,
      oneBatch(update, remove),
    );
    const [mappedUpdate, mappedDelete] = sinks.get("out")!.events.map((e) => e.event);
    expect(mappedUpdate!.before).toEqual({ order: 7, doubled: new Decimal("21.00"), state: "PENDING", was_op: "update" });
    expect(mappedUpdate!.after).toEqual({ order: 7, doubled: new Decimal("24.50"), state: "PAID", was_op: "update" });
    expect(mappedUpdate!.key).toEqual({ id: 7 });
    expect(mappedUpdate!.source).toBe(update.source);
    expect(mappedDelete!.before).toEqual({ order: 8, doubled: new Decimal("2.00"), state: "CANCELLED", was_op: "delete" });
    expect(mappedDelete!.after).toBeNull();
  });

  it("later steps see the mapped row; route sets the target the sinks get", async () => {
    const { sinks } = await run(
      `source s = jsonl { path: "in" }
       sink out = discard {}
       flow s
         | map { ...row, region: "eu" }
         | route "archive." + row.region + "_" + source.table
         | filter target == "archive.eu_orders"
         -> out`,
      oneBatch(orderEvent(1), orderEvent(2, { table: "customers" })),
    );
    const events = sinks.get("out")!.events;
    expect(events.map((e) => e.target)).toEqual(["archive.eu_orders"]);
    expect(events[0]!.event.after).toMatchObject({ id: 1, region: "eu" });
  });

  it("the target is the source table when no route step set it", async () => {
    const { sinks } = await run(
      `source s = jsonl { path: "in" }
       sink out = discard {}
       flow s -> out`,
      oneBatch(orderEvent(1)),
    );
    expect(sinks.get("out")!.events[0]!.target).toBe("shop.orders");
  });

  it("validate passes matching rows and dead-letters the others with the schema's complaint", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dts-validate-"));
    writeFileSync(
      join(dir, "order.schema.json"),
      JSON.stringify({
        $schema: "https://json-schema.org/draft/2020-12/schema",
        type: "object",
        required: ["id", "amount"],
        properties: { id: { type: "integer" }, amount: { type: "number", maximum: 100 }, status: { enum: ["paid", "pending"] } },
      }),
    );
    const events = [
      orderEvent(1, { row: { id: 1, amount: new Decimal("99.99"), status: "paid" } }),
      orderEvent(2, { row: { id: 2, amount: new Decimal("100.01"), status: "paid" } }),
      orderEvent(3, { row: { id: 3, status: "paid" } }),
      orderEvent(4, { row: { id: 4, amount: 5, status: "lost" } }),
    ];
    const { sinks, summary } = await run(
      `pipeline p { dead_letter: rejected }
       source s = jsonl { path: "in" }
       sink out = discard {}
       sink rejected = jsonl { path: "rejected.jsonl" }
       flow s | validate "order.schema.json" -> out`,
      oneBatch(...events),
      { baseDir: dir },
    );
    expect(sinks.get("out")!.events.map((e) => e.event.key["id"])).toEqual([1]);
    const rejected = sinks.get("rejected")!.events;
    expect(rejected.map((e) => e.event.key["id"])).toEqual([2, 3, 4]);
    expect(rejected[0]!.rejection).toEqual({
      reason: "the row does not match order.schema.json: row/amount must be <= 100 (schema #/properties/amount/maximum)",
      where: 'flow:1/step:1: validate "order.schema.json"',
    });
    expect(rejected[1]!.rejection!.reason).toContain("must have required property 'amount'");
    expect(rejected[2]!.rejection!.reason).toContain("row/status must be equal to one of the allowed values");
    expect(summary.deadLettered).toBe(3);
  });

  it("an expression error dead-letters the event as it entered the flow, in order with the others", async () => {
    const events = [orderEvent(1, { row: { id: 1, qty: 2 } }), orderEvent(2, { row: { id: 2, qty: 0 } }), orderEvent(3, { row: { id: 3, qty: "many" } })];
    const { sinks, summary } = await run(
      `pipeline p { dead_letter: rejected }
       source s = jsonl { path: "in" }
       sink out = discard {}
       sink rejected = discard {}
       flow s | map { id: row.id, per_item: 10 / row.qty } -> out`,
      oneBatch(...events),
    );
    expect(sinks.get("out")!.events.map((e) => String(e.event.after!["per_item"]))).toEqual(["5"]);
    const rejected = sinks.get("rejected")!.events;
    expect(rejected.map((e) => e.event)).toEqual([events[1], events[2]]);
    expect(rejected[0]!.rejection!.where).toBe("flow:1/step:1: map { id: row.id, per_item: 10 / row.qty }");
    expect(rejected[0]!.rejection!.reason).toMatch(/division by zero/);
    expect(rejected[1]!.rejection!.reason).toMatch(/cannot apply to integer and string/);
    expect(rejected.every((e) => e.target === "shop.orders")).toBe(true);
    // The rejected events count towards the checkpoint like any other.
    expect(summary.sources["s"]!.checkpoint).toEqual({ position: events[2]!.source.position });
  });

  it("a route that gives no string rejects; a filter that gives no boolean rejects", async () => {
    const { sinks } = await run(
      `pipeline p { dead_letter: rejected }
       source s = jsonl { path: "in" }
       sink out = discard {}
       sink rejected = discard {}
       flow s | route row.destination -> out
       flow s | filter row.flag -> out`,
      oneBatch(orderEvent(1, { row: { id: 1, destination: "t1", flag: true } }), orderEvent(2, { row: { id: 2, destination: null, flag: 3 } })),
    );
    expect(sinks.get("out")!.events.map((e) => [e.event.key["id"], e.target])).toEqual([
      [1, "t1"],
      [1, "shop.orders"],
    ]);
    expect(sinks.get("rejected")!.events.map((e) => e.rejection!.reason)).toEqual([
      "a route target must be a string, found null",
      "a filter condition must be a boolean, found integer",
    ]);
  });

  it("without a dead_letter sink, a rejection stops the pipeline before the batch is written", async () => {
    const events = [orderEvent(1, { row: { id: 1, qty: 1 } }), orderEvent(2, { row: { id: 2, qty: 0 } })];
    const plan = planOf(`
      source s = jsonl { path: "in" }
      sink out = discard {}
      flow s | map { x: 1 / row.qty } -> out
    `);
    const { factory: sinkFactory, sinks } = recordingSinks();
    const failure = (await runPipeline(plan, {
      baseDir: "/tmp",
      connectors: { sources: { jsonl: scriptedSources({ s: oneBatch(...events) }).factory }, sinks: { discard: sinkFactory } },
      checkpointStore: new MemoryStore(),
    }).catch((error: unknown) => error)) as PipelineFailure;
    expect(failure).toBeInstanceOf(PipelineFailure);
    expect(failure.kind).toBe("rejected");
    expect(failure.message).toBe(
      'flow:1/step:1: map { x: 1 / row.qty } rejected the insert on shop.orders key {"id":2} at seq 2: division by zero',
    );
    expect(sinks.get("out")!.events).toEqual([]);
    expect(failure.summary!.sources["s"]!.checkpoint).toBeNull();
  });

  it("events a sink refuses go to the dead-letter sink, and the position waits for them", async () => {
    const events = [orderEvent(1), orderEvent(2), orderEvent(3)];
    const { sinks, summary } = await run(
      `pipeline p { dead_letter: rejected }
       source s = jsonl { path: "in" }
       sink out = discard {}
       sink rejected = discard {}
       flow s | map { ...row, note: "x" } -> out`,
      oneBatch(...events),
      { behaviours: { out: { reject: (event) => (event.key["id"] === 2 ? "value too long for type character varying(3)" : undefined) } } },
    );
    expect(sinks.get("out")!.events.map((e) => e.event.key["id"])).toEqual([1, 3]);
    const rejected = sinks.get("rejected")!.events;
    expect(rejected).toEqual([
      { event: events[1], target: "shop.orders", sourceName: "s", rejection: { reason: "value too long for type character varying(3)", where: "sink out" } },
    ]);
    expect(summary.sinks["out"]!.rejected).toBe(1);
    expect(summary.deadLettered).toBe(1);
    expect(summary.sources["s"]!.checkpoint).toEqual({ position: events[2]!.source.position });
  });

  it("without a dead_letter sink, a sink's refusal stops the pipeline (exit kind 'rejected')", async () => {
    const plan = planOf(`
      source s = jsonl { path: "in" }
      sink out = discard {}
      flow s -> out
    `);
    const { factory: sinkFactory } = recordingSinks({ out: { reject: () => "numeric field overflow" } });
    const failure = (await runPipeline(plan, {
      baseDir: "/tmp",
      connectors: { sources: { jsonl: scriptedSources({ s: oneBatch(orderEvent(1)) }).factory }, sinks: { discard: sinkFactory } },
      checkpointStore: new MemoryStore(),
    }).catch((error: unknown) => error)) as PipelineFailure;
    expect(failure.kind).toBe("rejected");
    expect(failure.message).toContain("sink out rejected the insert on shop.orders");
    expect(failure.summary!.sources["s"]!.checkpoint).toBeNull();
  });

  it("compiles to one function over a batch, reusing its context", () => {
    const plan = planOf(`
      source s = jsonl { path: "in" }
      sink out = discard {}
      flow s | filter row.id > 1 | map { id: row.id } -> out
    `);
    const flow = compileFlow(plan.flows[0]!, { scope: { lets: new Map() }, baseDir: "/tmp", log: silentLogger });
    const out = emptyFlowOutput();
    flow.run([orderEvent(1), orderEvent(2), orderEvent(3)], out);
    expect(out.keptIndex).toEqual([1, 2]);
    expect(out.kept.map((e) => e.event.after)).toEqual([{ id: 2 }, { id: 3 }]);
  });
});
