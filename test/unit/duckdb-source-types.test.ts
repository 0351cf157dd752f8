/**
 * The duckdb sink's view of declared source types: the column each makes, and whether a column
 * holds a (changed) type, widens to it, or cannot — the rules schema changes are applied with.
 */
import { describe, expect, it } from "vitest";
import { fitSourceType, sourceColumnType } from "../../src/connectors/duckdb/source-types.js";
import { sqlType, type ColumnType } from "../../src/connectors/duckdb/types.js";

const created = (dialect: "postgres" | "mysql", type: string) => {
  const mapped = sourceColumnType(dialect, type);
  return mapped === undefined ? undefined : sqlType(mapped.create);
};

const fit = (column: ColumnType, type: string) => {
  const result = fitSourceType(column, sourceColumnType("postgres", type)!);
  return result.kind === "widen" ? `widen to ${sqlType(result.to)}${result.offenders === null ? "" : ` unless ${result.offenders('"c"')}`}` : result.kind;
};

const BIGINT: ColumnType = { kind: "integer", sql: "BIGINT" };
const decimal = (precision: number, scale: number): ColumnType => ({ kind: "decimal", precision, scale });

describe("duckdb sink: declared source types", () => {
  it("makes the columns a value of the type would make", () => {
    expect(
      Object.fromEntries(
        [
          "smallint",
          "integer",
          "bigint",
          "numeric(12,2)",
          "numeric(38,0)",
          "numeric(50,2)",
          "numeric",
          "real",
          "double precision",
          "boolean",
          "text",
          "character varying(40)",
          "character(3)",
          "uuid",
          "interval",
          "time without time zone",
          "timestamp without time zone",
          "timestamp(3) with time zone",
          "date",
          "bytea",
          "json",
          "jsonb",
          "integer[]",
          "mood",
        ].map((type) => [type, created("postgres", type)]),
      ),
    ).toEqual({
      smallint: "BIGINT",
      integer: "BIGINT",
      bigint: "BIGINT",
      "numeric(12,2)": "DECIMAL(38,2)",
      "numeric(38,0)": "DECIMAL(38,0)",
      "numeric(50,2)": undefined,
      numeric: undefined,
      real: "DOUBLE",
      "double precision": "DOUBLE",
      boolean: "BOOLEAN",
      text: "VARCHAR",
      "character varying(40)": "VARCHAR",
      "character(3)": "VARCHAR",
      uuid: "VARCHAR",
      interval: "VARCHAR",
      "time without time zone": "VARCHAR",
      "timestamp without time zone": "TIMESTAMP",
      "timestamp(3) with time zone": "TIMESTAMPTZ",
      date: "TIMESTAMP",
      bytea: "BLOB",
      json: "JSON",
      jsonb: "JSON",
      "integer[]": "JSON",
      mood: undefined,
    });
    expect(["int(11)", "bigint(20) unsigned", "decimal(10,2)", "varchar(20)", "json", "longblob", "datetime(6)"].map((type) => created("mysql", type))).toEqual([
      "BIGINT",
      "HUGEINT",
      "DECIMAL(38,2)",
      "VARCHAR",
      "JSON",
      "BLOB",
      undefined,
    ]);
  });

  it("tells whether a column holds a type, widens to it, or cannot", () => {
    expect(fit(BIGINT, "integer")).toBe("holds");
    expect(fit(BIGINT, "bigint")).toBe("holds");
    expect(fit(BIGINT, "numeric(10,2)")).toBe(`widen to DECIMAL(38,2) unless ("c" IS NOT NULL AND TRY_CAST("c" AS DECIMAL(38,2)) IS NULL)`);
    expect(fit(BIGINT, "double precision")).toBe(`widen to DOUBLE unless ("c" > 9007199254740992 OR "c" < -9007199254740992)`);
    expect(fit(BIGINT, "text")).toBe("cannot");
    expect(fit(decimal(38, 2), "numeric(12,2)")).toBe("holds");
    expect(fit(decimal(38, 2), "numeric(10,0)")).toBe("holds");
    expect(fit(decimal(38, 2), "integer")).toBe("holds");
    expect(fit(decimal(38, 2), "numeric(14,4)")).toBe(`widen to DECIMAL(38,4) unless ("c" IS NOT NULL AND TRY_CAST("c" AS DECIMAL(38,4)) IS NULL)`);
    expect(fit({ kind: "varchar" }, "text")).toBe("holds");
    // A VARCHAR column made by nulls takes any type while it holds nothing else.
    expect(fit({ kind: "varchar" }, "jsonb")).toBe(`widen to JSON unless ("c" IS NOT NULL)`);
    expect(fit({ kind: "varchar" }, "integer")).toBe(`widen to BIGINT unless ("c" IS NOT NULL)`);
    expect(fit({ kind: "json" }, "json")).toBe("holds");
    expect(fit({ kind: "json" }, "integer[]")).toBe("holds");
    expect(fit({ kind: "json" }, "text")).toBe("cannot");
    expect(fit(BIGINT, "jsonb")).toBe("cannot");
    expect(fit({ kind: "timestamp", withZone: false }, "timestamp with time zone")).toBe("cannot");
    expect(fit({ kind: "timestamp", withZone: false }, "date")).toBe("holds");
    expect(fit({ kind: "double" }, "bigint")).toBe("cannot");
  });
});
