/**
 * Interop with Debezium: its PostgreSQL connector (3.6.1, in Kafka Connect standalone, started
 * by scripts/debezium.sh with the JSON converter, schemas off) and a dts pipeline capture the
 * same table — each with its own slot — through a snapshot and the same changes: updates, a
 * delete, an insert, a key change. Both topics must hold the same messages per key in the same
 * order — the same keys, tombstones in the same places, and envelopes equal field by field —
 * apart from the differences docs/guides/debezium-interop.md lists:
 *
 *   values       numeric: Debezium (decimal.handling.mode=string) a string, dts an exact JSON
 *                number with the same digits; jsonb: Debezium the JSON text, dts the JSON value
 *   source       version, connector ("postgresql" / "postgres"), name (topic prefix / pipeline),
 *                snapshot (Debezium marks the first and last row "first" / "last"), lsn and
 *                Debezium-only fields (sequence, xmin, ts_ns)
 *   ts_ms        when each tool processed the event
 *
 * The rest of `source` (db, schema, table, txId, ts_ms of the commit for streamed changes)
 * must be equal. Then a dts worker (the kafka source) reads Debezium's topic into a second
 * database, which must equal the source table (a jsonb column through `parse_json`, since
 * Debezium writes its JSON as text). Starting Kafka Connect takes 15–40 s on this machine; the whole test stays
 * within about a minute.
 */
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import type { Admin } from "kafkajs";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeJson, canonicalJson } from "../../src/model/json.js";
import { isRecord, type Row, type Value } from "../../src/model/value.js";
import { ROOT, requireBuild, runDtsRun, startDtsRun, tempFolder, waitFor, type Running } from "../cli-process.js";
import { BROKER, byKey, countMessages, deleteTopics, readTopics, requireBroker, uniqueName } from "./kafka-helpers.js";
import { createDatabase, slotName, type ThrowawayDatabase } from "./pg-helpers.js";

const run = promisify(execFile);
let admin: Admin;
let db: ThrowawayDatabase;
let client: pg.Client;
let dts: Running | undefined;
const name = uniqueName("interop");
const worker = name.replace(/_/g, "-");
const dbzTopic = `${name}_dbz.public.accounts`;
const dtsTopic = `${name}_dts.public.accounts`;
let debeziumStarted = false;
let target: ThrowawayDatabase | undefined;

beforeAll(async () => {
  requireBuild();
  admin = await requireBroker();
  db = await createDatabase("kafka_interop");
  client = await db.client();
  await client.query(`
    CREATE TABLE accounts (id int PRIMARY KEY, owner text NOT NULL, balance numeric(12,2), n bigint, active boolean,
                           tags text[], doc jsonb, score float8, seen timestamptz);
    ALTER TABLE accounts REPLICA IDENTITY FULL;
    INSERT INTO accounts VALUES
      (1, 'ada', 100.50, 9007199254740993, true, '{a,b}', '{"k": [1, "x"]}', 0.25, '2024-01-01 10:00:00.123456+00'),
      (2, 'bob', NULL, -5, NULL, NULL, NULL, NULL, NULL),
      (3, 'cy', 7.25, 0, false, '{}', '[]', -1.5, '2023-06-30 23:59:59.654321+00');
  `);
}, 60_000);

afterAll(async () => {
  dts?.child.kill("SIGKILL");
  await dts?.done;
  if (debeziumStarted) await run("bash", [join(ROOT, "scripts/debezium.sh"), "stop", worker]).catch(() => {});
  await client?.end().catch(() => {});
  await db?.drop();
  await target?.drop();
  if (admin !== undefined) {
    await deleteTopics(admin, name);
    await admin.disconnect();
  }
}, 60_000);

/** An envelope without what the two tools write differently by design (see the header). */
function comparable(value: string | null): string {
  if (value === null) return "tombstone";
  const envelope = decodeJson(value);
  if (!isRecord(envelope)) return `not an envelope: ${value}`;
  const source = envelope["source"] as Row;
  const row = (r: Value | undefined): Value => {
    if (!isRecord(r)) return r ?? null;
    const out: Row = {};
    for (const [k, v] of Object.entries(r)) {
      if (k === "balance" && v !== null) out[k] = String(v);
      else if (k === "doc" && typeof v === "string") out[k] = decodeJson(v);
      else out[k] = v;
    }
    return out;
  };
  const streamed = source["snapshot"] === "false";
  return canonicalJson({
    op: envelope["op"]!,
    before: row(envelope["before"]),
    after: row(envelope["after"]),
    source: {
      db: source["db"]!,
      schema: source["schema"]!,
      table: source["table"]!,
      snapshot: source["snapshot"] === "false" ? "false" : "true",
      txId: streamed ? source["txId"]! : null,
      ts_ms: streamed ? source["ts_ms"]! : null,
    },
  });
}

describe("the kafka sink's envelope against Debezium's", () => {
  it("writes the same messages per key as Debezium's PostgreSQL connector, field by field", async () => {
    const started = Date.now();
    // Debezium first: it snapshots the three rows, then streams.
    const debezium = await run(
      "bash",
      [join(ROOT, "scripts/debezium.sh"), "start", worker, "--database", db.name, "--topic-prefix", `${name}_dbz`, "--tables", "public.accounts", "--drop-slot-on-stop", "--set", "decimal.handling.mode=string"],
      { timeout: 150_000 },
    ).catch((error: { stderr?: string; message: string }) => {
      throw new Error(`scripts/debezium.sh start failed: ${error.stderr ?? error.message}`);
    });
    debeziumStarted = true;
    expect(debezium.stdout).toContain("running");

    const dir = tempFolder("kafka-interop");
    await writeFile(
      join(dir, "p.dts"),
      `pipeline ${name}
source pg = postgres {
  url: "${db.url}"
  tables: ["public.accounts"]
  snapshot: "initial"
  slot: "${slotName("kafka_interop")}"
}
sink out = kafka {
  brokers: ["${BROKER}"]
  topic: "${name}_dts.\${source.schema}.\${source.table}"
}
flow pg -> out
`,
    );
    dts = startDtsRun([join(dir, "p.dts")], { cwd: dir });
    await waitFor("both snapshots in Kafka", async () => (await countMessages(admin, [dbzTopic])) >= 3 && (await countMessages(admin, [dtsTopic])) >= 3, 60_000, 500);

    await client.query("UPDATE accounts SET balance = 200.00, tags = '{z}', doc = '{\"k\": null}' WHERE id = 1");
    await client.query("DELETE FROM accounts WHERE id = 2");
    await client.query("INSERT INTO accounts VALUES (4, 'dee', 0.01, 42, true, '{x,y}', '{}', 3.5, '2025-12-31 12:00:00.5+00')");
    await client.query("BEGIN");
    await client.query("UPDATE accounts SET id = 30, owner = 'cy moved' WHERE id = 3");
    await client.query("UPDATE accounts SET score = NULL, active = NULL WHERE id = 4");
    await client.query("COMMIT");
    // 3 reads, update, delete + tombstone, insert, key change (delete + tombstone + create), update.
    const want = 11;
    await waitFor(`${want} messages in each topic`, async () => (await countMessages(admin, [dbzTopic])) >= want && (await countMessages(admin, [dtsTopic])) >= want, 60_000, 500);

    const theirs = byKey(await readTopics([dbzTopic]));
    const ours = byKey(await readTopics([dtsTopic]));
    const keysOf = (m: Map<string, unknown>) => [...m.keys()].map((k) => k.slice(k.indexOf(" ") + 1)).sort();
    expect(keysOf(ours)).toEqual(keysOf(theirs));
    for (const [id, list] of theirs) {
      const key = id.slice(id.indexOf(" ") + 1);
      const mine = ours.get(`${dtsTopic} ${key}`)!;
      expect(mine.map((m) => comparable(m.value)), `key ${key}`).toEqual(list.map((m) => comparable(m.value)));
      // The key itself, byte for byte: the primary key as a JSON object.
      expect(mine.map((m) => m.key)).toEqual(list.map((m) => m.key));
    }
    expect(Date.now() - started).toBeLessThan(120_000);
  }, 180_000);

  it("reads Debezium's topic back with the kafka source into an equal table", async () => {
    target = await createDatabase("kafka_interop_dst");
    await target.sql(`CREATE TABLE accounts (id int PRIMARY KEY, owner text NOT NULL, balance numeric(12,2), n bigint, active boolean,
                                             tags text[], doc jsonb, score float8, seen timestamptz)`);
    const dir = tempFolder("kafka-interop-read");
    await writeFile(
      join(dir, "read.dts"),
      `pipeline ${name}_read
source debezium = kafka { brokers: ["${BROKER}"], topics: ["${dbzTopic}"], group: "${name}_read" }
sink copy = postgres { url: "${target.url}" }
# Debezium writes a jsonb value as its JSON text (docs/guides/debezium-interop.md).
flow debezium | map { ...row, doc: parse_json(row.doc) } -> copy
`,
    );
    const finished = await runDtsRun([join(dir, "read.dts"), "--until-caught-up"], { cwd: dir, timeoutMs: 60_000 });
    expect(finished.code, finished.stderr.slice(-2000)).toBe(0);
    const rows = (d: ThrowawayDatabase) => d.sql<{ r: string }>("SELECT row_to_json(a)::text AS r FROM accounts a ORDER BY id");
    expect(await rows(target)).toEqual(await rows(db));
    await admin.deleteGroups([`${name}_read`]).catch(() => {});
  }, 90_000);
});
