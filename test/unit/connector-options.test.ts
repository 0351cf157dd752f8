/**
 * Options are read once (src/connectors/options.ts): checked against the connector's spec,
 * defaulted from it and typed, when they are resolved at start; a connector's `optionsOf`
 * then gives that same object back, reading only options that did not come that way.
 */
import { describe, expect, it } from "vitest";
import { optionsOf, readOptions, withoutOption } from "../../src/connectors/options.js";
import { sinkSpec as postgresSink, sourceSpec as postgresSource } from "../../src/connectors/postgres/spec.js";
import { sourceSpec as datagen } from "../../src/connectors/datagen/spec.js";
import { DtsError } from "../../src/diagnostics/errors.js";
import { Decimal } from "../../src/model/decimal.js";
import { resolveStartValues } from "../../src/runtime/start-values.js";
import { planOf } from "./runtime-fixtures.js";

function failure(body: () => unknown): DtsError {
  try {
    body();
  } catch (error) {
    if (error instanceof DtsError) return error;
    throw error;
  }
  throw new Error("expected a DtsError");
}

describe("reading a connector's options", () => {
  it("fills the spec's defaults and gives integers as numbers (a big one as a bigint)", () => {
    const options = readOptions(postgresSink, { url: "postgres://x/db", batch_size: 500n }, "sink out");
    expect(options).toEqual({ url: "postgres://x/db", batch_size: 500, create_tables: false, snapshot_writers: 2 });
    expect(readOptions(datagen, { rows: new Decimal("20") }, "source gen")).toMatchObject({ rows: 20, seed: 1n, workload: "shop" });
  });

  it("refuses a value of the wrong kind, outside its bounds or its enum, naming the option (DTS7001, exit 1)", () => {
    const wrongKind = failure(() => readOptions(postgresSink, { url: "postgres://x/db", batch_size: "500" }, "sink out"));
    expect(wrongKind.message).toBe("sink out: option batch_size must be an integer, found string");
    expect(wrongKind).toMatchObject({ code: "DTS7001", exitCode: 1 });
    expect(failure(() => readOptions(postgresSink, { url: "u", batch_size: 0 }, "sink out")).message).toBe("sink out: option batch_size must be at least 1, found 0");
    expect(failure(() => readOptions(postgresSource, { url: "u", tables: ["t"], snapshot: "sometimes" }, "source s")).message).toBe(
      'source s: option snapshot must be one of "initial", "never", "only", found string',
    );
    expect(failure(() => readOptions(postgresSource, { tables: ["t"] }, "source s")).message).toBe("source s: option url is required");
    expect(failure(() => readOptions(postgresSource, { url: "u", tables: ["t"], slot: "Not A Slot" }, "source s")).message).toMatch(/^source s: option slot must be lower-case letters/);
  });

  it("reads once: optionsOf gives back what readOptions made, and reads options built by hand", () => {
    const read = readOptions(postgresSink, { url: "postgres://x/db" }, "sink out");
    expect(optionsOf(postgresSink, read)).toBe(read);
    expect(optionsOf(postgresSink, withoutOption(read, "retry_for"))).not.toHaveProperty("retry_for");
    const byHand = { url: "postgres://x/db" };
    const typed = optionsOf(postgresSink, byHand);
    expect(typed).not.toBe(byHand);
    expect(typed.batch_size).toBe(10000);
  });

  it("checks a value computed at start, which the checker could not see", () => {
    const plan = planOf(`
      pipeline test {}
      source gen = datagen { rows: env("DTS_TEST_ROWS", 10) }
      sink out = discard {}
      flow gen -> out
    `);
    expect(resolveStartValues(plan, () => undefined).sources.get("gen")!.options).toMatchObject({ rows: 10, changes_per_second: 0 });
    // env() makes "-5" an integer like its default; only the spec knows rows cannot be negative.
    const error = failure(() => resolveStartValues(plan, () => "-5"));
    expect(error).toMatchObject({ code: "DTS7001", exitCode: 1 });
    expect(error.message).toBe("source gen: option rows must be at least 0, found -5");
  });
});
