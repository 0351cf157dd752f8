/** The progress line's snapshot bar: the table, its place among the tables, and how far it is. */
import { describe, expect, it } from "vitest";
import { snapshotBar } from "../../src/runtime/progress.js";

describe("snapshot progress bar", () => {
  it("shows the table, its number, a bar and the percent", () => {
    expect(snapshotBar({ table: "public.orders", rows: 610, estimatedRows: 1000, tableNumber: 2, tables: 5 })).toBe("snapshot 2/5 public.orders [######----] 61%");
    expect(snapshotBar({ table: "public.orders", rows: 0, estimatedRows: 1000, tableNumber: 1, tables: 1 })).toBe("snapshot 1/1 public.orders [----------] 0%");
  });

  it("waits at 99% when the estimate was too low, and counts rows when there is none", () => {
    expect(snapshotBar({ table: "t.x", rows: 5000, estimatedRows: 1000, tableNumber: 1, tables: 1 })).toBe("snapshot 1/1 t.x [##########] 99%");
    expect(snapshotBar({ table: "t.x", rows: 123_456, tableNumber: 1, tables: 3 })).toBe("snapshot 1/3 t.x 123k rows");
  });
});
