/**
 * Values fixed at start: lets in order, env() read once (an unset variable without a default
 * names itself), options resolved, per-event options compiled into closures.
 */
import { describe, expect, it } from "vitest";
import { Decimal } from "../../src/model/decimal.js";
import { resolveStartValues } from "../../src/runtime/start-values.js";
import { PipelineFailure, runPipeline } from "../../src/runtime/run.js";
import { orderEvent, planOf } from "./runtime-fixtures.js";

describe("start values", () => {
  it("evaluates lets and options, reading env() once", () => {
    const plan = planOf(`
      let rows = env("DTS_TEST_ROWS", 10)
      let factor = 1.1
      source shop = datagen { rows: rows, seed: env("DTS_TEST_SEED", 5) }
      sink out = redis { url: env("DTS_TEST_REDIS", "redis://localhost") + "/0", key: "order:\${row.id}:\${target}" }
      flow shop | map { x: row.amount * factor } -> out
    `);
    const env: Record<string, string> = { DTS_TEST_ROWS: "250", DTS_TEST_REDIS: "redis://cache" };
    const values = resolveStartValues(plan, (name) => env[name]);
    expect(values.scope.lets.get("rows")).toBe(250);
    expect(values.scope.lets.get("factor")).toEqual(new Decimal("1.1"));
    expect(values.sources.get("shop")!.options).toMatchObject({ rows: 250, seed: 5n }); // a `big` integer option is given as a bigint
    expect(values.sinks.get("out")!.options["url"]).toBe("redis://cache/0");
    const key = values.sinks.get("out")!.eventOptions["key"]!;
    expect(key({ event: orderEvent(7), target: "shop.orders" })).toBe("order:7:shop.orders");
    expect(key({ event: orderEvent(8), target: "elsewhere" })).toBe("order:8:elsewhere");
  });

  it("reads env() once at start inside a per-event option", () => {
    const plan = planOf(`
      source shop = datagen { rows: 1 }
      sink out = redis { url: "redis://localhost", key: env("DTS_TEST_PREFIX", "p") + ":\${row.id}" }
      flow shop -> out
    `);
    const values = resolveStartValues(plan, (name) => (name === "DTS_TEST_PREFIX" ? "orders" : undefined));
    const key = values.sinks.get("out")!.eventOptions["key"]!;
    expect(key({ event: orderEvent(7), target: "shop.orders" })).toBe("orders:7");
  });

  it("keeps the scale of a fractional let", () => {
    const plan = planOf(`
      let factor = 1.10
      source shop = datagen { rows: 1 }
      sink out = jsonl { path: "-" }
      flow shop | map { x: row.amount * factor } -> out
    `);
    const values = resolveStartValues(plan, () => undefined);
    expect(String(values.scope.lets.get("factor"))).toBe("1.10");
  });

  it("an unset variable without a default stops the start, naming it (exit kind 'start')", async () => {
    delete process.env["DTS_TEST_SURELY_UNSET"];
    const plan = planOf(`
      source shop = datagen { rows: 1 }
      sink out = jsonl { path: env("DTS_TEST_SURELY_UNSET") }
      flow shop -> out
    `);
    const failure = (await runPipeline(plan, { baseDir: "/tmp" }).catch((error: unknown) => error)) as PipelineFailure;
    expect(failure).toBeInstanceOf(PipelineFailure);
    expect(failure.kind).toBe("start");
    expect(failure.message).toContain('environment variable "DTS_TEST_SURELY_UNSET" is not set');
    expect(failure.message).toContain("sink out option path");
  });
});
