/**
 * What the PostgreSQL sink makes of a source table's schema change, without a server: which
 * type changes widen a column (and so are applied), which narrow it or change it otherwise (and
 * are refused), and the statements it runs.
 */
import { describe, expect, it } from "vitest";
import type { TargetColumn, TargetTable } from "../../src/connectors/postgres/ddl.js";
import { planSync, syncStatements, widens } from "../../src/connectors/postgres/schema-sync.js";
import type { SchemaChange } from "../../src/runtime/contracts.js";

describe("widens", () => {
  it.each([
    ["smallint", "integer"],
    ["integer", "bigint"],
    ["smallint", "bigint"],
    ["integer", "numeric"],
    ["integer", "numeric(10,0)"],
    ["bigint", "numeric(21,2)"],
    ["numeric(10,2)", "numeric(12,2)"],
    ["numeric(10,2)", "numeric(12,4)"],
    ["numeric(10,2)", "numeric"],
    ["real", "double precision"],
    ["character varying(3)", "character varying(10)"],
    ["character varying(3)", "character varying"],
    ["character varying(3)", "text"],
    ["text", "character varying"],
    ["timestamp(3) without time zone", "timestamp without time zone"],
    ["timestamp(0) with time zone", "timestamp(3) with time zone"],
    ["time(2) without time zone", "time(5) without time zone"],
    ["integer[]", "bigint[]"],
  ])("%s to %s", (from, to) => {
    expect(widens(from, to)).toBe(true);
  });

  it.each([
    ["integer", "integer"],
    ["bigint", "integer"],
    ["integer", "numeric(9,0)"],
    ["bigint", "numeric(20,2)"],
    ["numeric(12,4)", "numeric(12,2)"],
    ["numeric(12,4)", "numeric(10,2)"],
    ["numeric(10,2)", "numeric(10,3)"],
    ["numeric", "numeric(30,10)"],
    ["double precision", "real"],
    ["integer", "double precision"],
    ["character varying(10)", "character varying(3)"],
    ["text", "character varying(10)"],
    ["character(3)", "text"],
    ["integer", "text"],
    ["text", "integer"],
    ["timestamp without time zone", "timestamp with time zone"],
    ["timestamp without time zone", "timestamp(3) without time zone"],
    ["integer[]", "bigint"],
    ["public.mood", "text"],
  ])("not %s to %s", (from, to) => {
    expect(widens(from, to)).toBe(false);
  });
});

function table(columns: Record<string, string>): TargetTable {
  const map = new Map<string, TargetColumn>(
    Object.entries(columns).map(([name, typeName]) => [name, { name, typeName, castType: typeName, arrayType: null, encoding: { kind: "other", typeName }, encode: () => null, notNull: false }]),
  );
  return { schema: "public", table: "t", sql: `"public"."t"`, display: "public.t", columns: map, primaryKey: ["id"], identityAlways: false };
}

const schemaOf = (columns: Record<string, string>): SchemaChange["schema"] => ({
  dialect: "postgres",
  columns: Object.entries(columns).map(([name, type]) => ({ name, type, nullable: true })),
  primaryKey: ["id"],
});

describe("planSync", () => {
  it("adds, widens, refuses and keeps, and says so in statements", () => {
    const target = table({ id: "integer", n: "integer", label: "character varying(3)", amount: "numeric(12,4)", gone: "text", mine: "text" });
    const change: SchemaChange = {
      table: "public.t",
      schema: schemaOf({ id: "integer", n: "bigint", label: "character varying(9)", amount: "numeric(10,2)", note: "text", quote: "text", mine: "text" }),
      columns: [
        { kind: "retyped", column: "n", from: "integer", to: "bigint" },
        { kind: "retyped", column: "label", from: "character varying(3)", to: "character varying(9)" },
        { kind: "retyped", column: "amount", from: "numeric(12,4)", to: "numeric(10,2)" },
        { kind: "added", column: "note", type: "text", existing: { value: "it's" } },
        { kind: "added", column: "quote", type: "text", existing: "computed" },
        { kind: "dropped", column: "gone", type: "text" },
      ],
    };
    const steps = planSync(target, change, new Map());
    expect(steps).toEqual([
      { kind: "widen", column: "n", from: "integer", to: "bigint" },
      { kind: "widen", column: "label", from: "character varying(3)", to: "character varying(9)" },
      { kind: "refuse", column: "amount", from: "numeric(12,4)", to: "numeric(10,2)", narrowing: true },
      { kind: "add", column: "note", type: "text", existing: { value: "it's" } },
      { kind: "add", column: "quote", type: "text", existing: "computed" },
      { kind: "keep", column: "gone" },
    ]);
    expect(syncStatements(target, steps)).toEqual([
      `ALTER TABLE "public"."t" ALTER COLUMN "n" TYPE bigint`,
      `ALTER TABLE "public"."t" ALTER COLUMN "label" TYPE character varying(9)`,
      `ALTER TABLE "public"."t" ADD COLUMN IF NOT EXISTS "note" text DEFAULT 'it''s'`,
      `ALTER TABLE "public"."t" ALTER COLUMN "note" DROP DEFAULT`,
      `ALTER TABLE "public"."t" ADD COLUMN IF NOT EXISTS "quote" text`,
    ]);
  });

  it("leaves alone what the target has already: a replayed change, or a type of the target's own", () => {
    const target = table({ id: "integer", n: "bigint", note: "text", label: "text" });
    const change: SchemaChange = {
      table: "public.t",
      schema: schemaOf({ id: "integer", n: "bigint", note: "text", label: "character varying(5)" }),
      columns: [
        { kind: "retyped", column: "n", from: "integer", to: "bigint" },
        { kind: "added", column: "note", type: "text" },
      ],
    };
    expect(planSync(target, change, new Map())).toEqual([]);
  });

  it("follows a widening only where the target does not hold the new type already; refuses any other change unless the target has the new type", () => {
    const target = table({ id: "integer", a: "text", b: "bigint", c: "integer", d: "integer", e: "character varying(3)" });
    const change: SchemaChange = {
      table: "public.t",
      schema: schemaOf({ id: "integer", a: "bigint", b: "integer", c: "text", d: "smallint", e: "character varying(2)" }),
      columns: [
        { kind: "retyped", column: "a", from: "integer", to: "bigint" }, // a widening the target's text holds
        { kind: "retyped", column: "b", from: "bigint", to: "integer" }, // a narrowing: the target's wider column is no excuse
        { kind: "retyped", column: "c", from: "integer", to: "text" }, // neither
        { kind: "retyped", column: "e", from: "character varying(3)", to: "character varying(2)" },
      ],
    };
    expect(planSync(target, change, new Map())).toEqual([
      { kind: "refuse", column: "b", from: "bigint", to: "integer", narrowing: true },
      { kind: "refuse", column: "c", from: "integer", to: "text", narrowing: false },
      { kind: "refuse", column: "e", from: "character varying(3)", to: "character varying(2)", narrowing: true },
    ]);
    // Once the target has the new types, the same change asks nothing.
    expect(planSync(table({ id: "integer", a: "text", b: "integer", c: "text", d: "integer", e: "character varying(2)" }), change, new Map())).toEqual([]);
  });

  it("spells a type the target lacks as the target would create it, and compares with that", () => {
    const target = table({ id: "integer", mood: "text" });
    const change: SchemaChange = {
      table: "public.t",
      schema: schemaOf({ id: "integer", mood: "public.mood2", extra: "public.mood2" }),
      columns: [
        { kind: "retyped", column: "mood", from: "public.mood", to: "public.mood2" },
        { kind: "added", column: "extra", type: "public.mood2" },
      ],
    };
    expect(planSync(target, change, new Map([["mood", "text"], ["extra", "text"], ["id", "integer"]]))).toEqual([{ kind: "add", column: "extra", type: "text" }]);
  });
});
