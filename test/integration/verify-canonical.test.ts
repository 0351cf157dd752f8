/**
 * The canonical texts are defined once (src/model/canonical.ts) and printed by each engine in
 * its own SQL (the verify readers of src/connectors/postgres and src/connectors/duckdb): here
 * the same values are stored in a real PostgreSQL table and a real DuckDB file, read back
 * through each reader in each kind, and must print exactly as the reference does.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ConnectorContext, VerifyReader } from "../../src/connectors/capabilities.js";
import { verifySink as duckdbReader } from "../../src/connectors/duckdb/verify.js";
import { verifySink as postgresReader } from "../../src/connectors/postgres/verify.js";
import { canonicalText, parseRowText, type CanonicalKind } from "../../src/model/canonical.js";
import { Decimal } from "../../src/model/decimal.js";
import { encodeJson } from "../../src/model/json.js";
import { Timestamp } from "../../src/model/timestamp.js";
import { JSON_NULL, type Value } from "../../src/model/value.js";
import { createDatabase, type TestDatabase } from "./postgres-sink-helpers.js";

interface Case {
  readonly kind: CanonicalKind;
  readonly postgres: string;
  readonly duckdb: string;
  /** The values, as SQL literals for each engine, and as dts values for the reference. */
  readonly values: readonly { readonly pg: string; readonly duck: string; readonly value: Value }[];
}

const same = (literal: string, value: Value) => ({ pg: literal, duck: literal, value });
const json = (value: Value) => ({ pg: `'${encodeJson(value).replaceAll("'", "''")}'`, duck: `'${encodeJson(value).replaceAll("'", "''")}'`, value });

const cases: readonly Case[] = [
  { kind: "boolean", postgres: "boolean", duckdb: "BOOLEAN", values: [same("true", true), same("false", false), same("NULL", null)] },
  { kind: "integer", postgres: "bigint", duckdb: "BIGINT", values: [same("0", 0), same("-5", -5), same("9223372036854775807", 9223372036854775807n)] },
  {
    kind: "decimal",
    postgres: "numeric",
    duckdb: "DECIMAL(38,4)",
    values: [same("12.30", new Decimal("12.30")), same("1500", new Decimal("1500")), same("-0.50", new Decimal("-0.50")), same("0.00", new Decimal("0.00"))],
  },
  {
    kind: "float64",
    postgres: "float8",
    duckdb: "DOUBLE",
    values: [
      same("0.1", 0.1),
      same("1e20", 1e20),
      same("-2.5e-300", -2.5e-300),
      same("5e-324", 5e-324),
      same("123456789012345680000", 123456789012345680000),
      { pg: "'NaN'", duck: "'nan'", value: NaN },
      { pg: "'Infinity'", duck: "'inf'", value: Infinity },
      { pg: "'-Infinity'", duck: "'-inf'", value: -Infinity },
      { pg: "'-0'", duck: "'-0.0'", value: -0 },
    ],
  },
  { kind: "float32", postgres: "real", duckdb: "DOUBLE", values: [same("1.1", 1.1), same("3.4028235e38", 3.4028235e38), same("1e-45", 1e-45)] },
  { kind: "string", postgres: "text", duckdb: "VARCHAR", values: [same("'é \"q\"'", 'é "q"'), same("''", ""), same("'a,b:-'", "a,b:-")] },
  { kind: "bytes", postgres: "bytea", duckdb: "BLOB", values: [{ pg: "'\\x01ab00'", duck: "'\\x01\\xAB\\x00'", value: Buffer.from([1, 0xab, 0]) }] },
  {
    kind: "instant",
    postgres: "timestamptz",
    duckdb: "TIMESTAMPTZ",
    values: [same("'2024-01-01 10:00:01.5+00'", Timestamp.parse("2024-01-01T10:00:01.5Z")), same("'1999-12-31 23:59:59.999999+00'", Timestamp.parse("1999-12-31T23:59:59.999999Z"))],
  },
  {
    kind: "local-time",
    postgres: "timestamp",
    duckdb: "TIMESTAMP",
    values: [same("'2020-02-29 23:59:59.999999'", Timestamp.parse("2020-02-29T23:59:59.999999")), same("'0044-03-15 12:00:00'", Timestamp.parse("0044-03-15T12:00:00"))],
  },
  {
    kind: "json",
    postgres: "jsonb",
    duckdb: "JSON",
    // A JSON null document is the text null; SQL NULL is no text: the two never compare equal.
    values: [json({ a: [1, new Decimal("2.50"), null], b: "é \"q\"", c: { d: true } }), json([]), json("text"), json(JSON_NULL), same("NULL", null)],
  },
];

let db: TestDatabase;
let folder: string;
let postgres: VerifyReader;
let duckdb: VerifyReader;

const context = (options: ConnectorContext["options"]): ConnectorContext => ({ pipeline: "canonical", name: "reader", options, baseDir: folder, tool: "dts test" });

beforeAll(async () => {
  db = await createDatabase("verify_canonical");
  folder = await mkdtemp(join(tmpdir(), "dts-canonical-"));
  const instance = await DuckDBInstance.create(join(folder, "values.duckdb"));
  const connection = await instance.connect();
  for (const [index, item] of cases.entries()) {
    await db.sql(`CREATE TABLE t${index} (v ${item.postgres}); INSERT INTO t${index} VALUES ${item.values.map((v) => `(${v.pg})`).join(", ")}`);
    await connection.run(`CREATE TABLE t${index} (v ${item.duckdb}); INSERT INTO t${index} VALUES ${item.values.map((v) => `(${v.duck})`).join(", ")}`);
  }
  connection.closeSync();
  instance.closeSync();
  postgres = await postgresReader(context({ url: db.url }));
  duckdb = await duckdbReader(context({ path: "values.duckdb" }));
});

afterAll(async () => {
  await postgres?.close();
  await duckdb?.close();
  await db?.drop();
  if (folder !== undefined) await rm(folder, { recursive: true, force: true });
});

/** The texts a reader prints for a table's column `v` as `kind`: each row's key text, parsed back. */
async function printed(reader: VerifyReader, table: string, kind: CanonicalKind): Promise<(string | null)[]> {
  const described = await reader.table(table);
  const column = described!.column("v")!;
  const forms = [{ column, form: { kind: "canonical" as const, as: kind } }];
  const rows = await reader.rows({ table: described!, columns: forms, key: forms }, 1, [0]);
  return [...rows.keys()].map((key) => parseRowText(key)![0]!).sort();
}

describe("canonical texts in SQL", () => {
  it.each(cases.map((item, index) => [item.kind, index] as const))("%s: PostgreSQL and DuckDB print the reference", async (kind, index) => {
    const item = cases[index]!;
    const expected = item.values.map((v) => canonicalText(kind, v.value)).sort();
    expect(await printed(postgres, `public.t${index}`, kind)).toEqual(expected);
    expect(await printed(duckdb, `t${index}`, kind)).toEqual(expected);
  });
});
