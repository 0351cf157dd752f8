/**
 * PostgreSQL → Kafka end to end through `dts-run`: a snapshot, then inserts, updates, deletes,
 * key changes, a key deleted and inserted again, an update that leaves a TOASTed column
 * unchanged, and a few thousand rows changed in bulk, published by two kafka sinks at once —
 * Debezium envelopes with tombstones, and plain gzip-compressed rows. Every message of every
 * key is compared value by value, in its partition's order, with what the statement's
 * RETURNING said the row was (kafka-expect.ts); nothing more, nothing less. Then the topics,
 * folded per key, must equal the table.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Admin } from "kafkajs";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeJson } from "../../src/model/json.js";
import { isRecord, type Row } from "../../src/model/value.js";
import { requireBuild, startDtsRun, tempFolder, waitFor, type Running } from "../cli-process.js";
import { canonical, expectedMessages, insert, publishedForm, remove, snapshotRows, tableModel, update, type TableModel } from "./kafka-expect.js";
import { BROKER, byKey, countMessages, deleteTopics, readTopics, requireBroker, uniqueName } from "./kafka-helpers.js";
import { createDatabase, slotName, type ThrowawayDatabase } from "./pg-helpers.js";

const ITEMS_PROJECTION = `json_build_object('id', id, 'name', name, 'price', price, 'qty', qty, 'active', active,
  'seen', to_char(seen AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), 'doc', doc,
  'blob', replace(encode(blob, 'base64'), E'\\n', ''), 'tags', tags, 'f', f)::text`;
const NOTES_PROJECTION = `json_build_object('id', id, 'title', title, 'body', body)::text`;

let admin: Admin;
let db: ThrowawayDatabase;
let client: pg.Client;
let dts: Running | undefined;
const prefix = uniqueName("sink");
const items = tableModel("public.items", ITEMS_PROJECTION, { fullIdentity: true });
const notes = tableModel("public.notes", NOTES_PROJECTION, { fullIdentity: false, toasted: ["body"] });

beforeAll(async () => {
  requireBuild();
  admin = await requireBroker();
  db = await createDatabase("kafka_sink");
  client = await db.client();
  await client.query(`
    CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, price numeric(12,2), qty bigint, active boolean,
                        seen timestamptz, doc jsonb, blob bytea, tags text[], f float8);
    ALTER TABLE items REPLICA IDENTITY FULL;
    CREATE TABLE notes (id int PRIMARY KEY, title text, body text);
    INSERT INTO items SELECT i, 'item ' || i, i * 1.25, 9007199254740993 + i, i % 2 = 0, timestamptz '2024-01-01 10:00:00.123456+00' + i * interval '1 day',
                             jsonb_build_object('n', i, 'list', jsonb_build_array(1.50, 'x')), decode(md5(i::text), 'hex'), ARRAY['t' || i, NULL], i / 3.0
                      FROM generate_series(1, 5) AS i;
    -- A body of 20 kB of hex digits: too large to stay in the row even compressed, so TOASTed.
    INSERT INTO notes SELECT i, 'note ' || i, (SELECT string_agg(md5(i::text || j::text), '') FROM generate_series(1, 640) AS j) FROM generate_series(1, 3) AS i;
  `);
  await snapshotRows(client, items);
  await snapshotRows(client, notes);
}, 60_000);

afterAll(async () => {
  dts?.child.kill("SIGKILL");
  await dts?.done;
  await client?.end().catch(() => {});
  await db?.drop();
  if (admin !== undefined) {
    await deleteTopics(admin, prefix);
    await admin.disconnect();
  }
});

async function changes(): Promise<void> {
  const q = (sql: string) => client.query(sql);
  await insert(client, items, `INSERT INTO items VALUES (6, 'six', 1234567890.99, -9223372036854775808, NULL, NULL, '{"deep": {"a": [null, true]}}', '\\x00ff', '{}', 'NaN')`);
  await update(client, items, `UPDATE items SET name = 'one', price = 0.01, tags = ARRAY['é', 'x,y "q"'] WHERE id = 1`, ["name", "price", "tags"]);
  await update(client, items, `UPDATE items SET id = 20 WHERE id = 2`, ["id"], (id) => (id === 20 ? 2 : id));
  await remove(client, items, `DELETE FROM items WHERE id = 3`);
  await insert(client, items, `INSERT INTO items (id, name, price) VALUES (3, 'three again', 3.00)`);
  // One transaction: a key changed twice, an update after a delete of another row.
  await q("BEGIN");
  await update(client, items, `UPDATE items SET id = 40 WHERE id = 4`, ["id"], (id) => (id === 40 ? 4 : id));
  await update(client, items, `UPDATE items SET id = 41, name = 'moved twice' WHERE id = 40`, ["id", "name"], (id) => (id === 41 ? 40 : id));
  await remove(client, items, `DELETE FROM items WHERE id = 5`);
  await update(client, items, `UPDATE items SET active = true WHERE id = 6`, ["active"]);
  await q("COMMIT");
  // notes: no REPLICA IDENTITY FULL; its body is TOASTed and absent when an update leaves it.
  await update(client, notes, `UPDATE notes SET title = 'renamed' WHERE id = 1`, ["title"]);
  await update(client, notes, `UPDATE notes SET body = 'short now' WHERE id = 2`, ["body"]);
  await update(client, notes, `UPDATE notes SET id = 30 WHERE id = 3`, ["id"], (id) => (id === 30 ? 3 : id));
  await remove(client, notes, `DELETE FROM notes WHERE id = 2`);
  // In bulk: enough for writes of several produce requests.
  await insert(client, items, `INSERT INTO items SELECT i, repeat('n', 200) || i, i, i, true, now(), NULL, NULL, NULL, i FROM generate_series(100, 3099) AS i`);
  await update(client, items, `UPDATE items SET price = price + 0.5, name = 'bulk ' || id WHERE id BETWEEN 100 AND 1099`, ["price", "name"]);
  await remove(client, items, `DELETE FROM items WHERE id BETWEEN 2000 AND 2499`);
  await update(client, items, `UPDATE items SET id = id + 10000 WHERE id BETWEEN 2500 AND 2599`, ["id"], (id) => id - 10000);
}

function total(model: TableModel, format: "debezium" | "json"): number {
  let n = 0;
  for (const list of model.changes.values()) n += expectedMessages(list, format).length;
  return n;
}

function compareTopic(messages: Awaited<ReturnType<typeof readTopics>>, model: TableModel, format: "debezium" | "json"): void {
  const published = byKey(messages);
  const problems: string[] = [];
  const keys = new Set([...model.changes.keys()]);
  for (const [id, list] of published) {
    const key = id.slice(id.indexOf(" ") + 1);
    if (!keys.has(key)) problems.push(`${id}: ${list.length} message(s) for a key never changed`);
  }
  for (const [key, changes] of model.changes) {
    const list = published.get(`${messages[0]!.topic} ${key}`) ?? [];
    if (new Set(list.map((m) => m.partition)).size > 1) problems.push(`${key}: spread over partitions ${[...new Set(list.map((m) => m.partition))]}`);
    const want = expectedMessages(changes, format);
    const got = list.map((m) => publishedForm(m, format));
    if (canonical(got) !== canonical(want)) problems.push(`${key}:\n  got  ${got.join("\n       ")}\n  want ${want.join("\n       ")}`);
  }
  expect(problems.slice(0, 5).join("\n")).toBe("");
}

/** The rows a topic of envelopes says the table holds: each key's last after, absent columns from before it. */
function fold(messages: Awaited<ReturnType<typeof readTopics>>): Map<string, Row> {
  const rows = new Map<string, Row>();
  for (const message of messages) {
    if (message.value === null) continue;
    const envelope = decodeJson(message.value);
    if (!isRecord(envelope)) continue;
    const after = envelope["after"];
    if (envelope["op"] === "d" || !isRecord(after)) rows.delete(message.key!);
    else rows.set(message.key!, { ...(rows.get(message.key!) ?? {}), ...after });
  }
  return rows;
}

describe("kafka sink from PostgreSQL", () => {
  it("publishes every change as Debezium envelopes and as rows, per key in order, value by value", async () => {
    const dir = tempFolder("kafka-sink");
    const pipeline = join(dir, "p.dts");
    const slot = slotName("kafka_sink");
    await writeFile(
      pipeline,
      `pipeline ${prefix}

source pg = postgres {
  url: "${db.url}"
  tables: ["public.items", "public.notes"]
  snapshot: "initial"
  slot: "${slot}"
}

sink envelopes = kafka {
  brokers: ["${BROKER}"]
  topic: "${prefix}.dbz.\${source.table}"
}

sink rows = kafka {
  brokers: ["${BROKER}"]
  topic: "${prefix}.rows.\${source.table}"
  format: "json"
  compression: "gzip"
}

flow pg -> envelopes, rows
`,
    );
    dts = startDtsRun([pipeline], { cwd: dir });
    const topics = (kind: string) => [`${prefix}.${kind}.items`, `${prefix}.${kind}.notes`];
    const snapshot = total(items, "debezium") + total(notes, "debezium");
    await waitFor("the snapshot in Kafka", async () => (await countMessages(admin, topics("dbz"))) >= snapshot, 60_000, 500).catch((error) => {
      throw new Error(`${(error as Error).message}\n${dts!.stderr()}`);
    });
    await changes();
    const want = { dbz: total(items, "debezium") + total(notes, "debezium"), rows: total(items, "json") + total(notes, "json") };
    await waitFor(
      `${want.dbz} envelopes and ${want.rows} rows in Kafka`,
      async () => (await countMessages(admin, topics("dbz"))) >= want.dbz && (await countMessages(admin, topics("rows"))) >= want.rows,
      90_000,
      500,
    ).catch(async (error) => {
      throw new Error(`${(error as Error).message} (have ${await countMessages(admin, topics("dbz"))} and ${await countMessages(admin, topics("rows"))})\n${dts!.stderr()}`);
    });
    dts.child.kill("SIGTERM");
    const finished = await dts.done;
    expect(finished.code, finished.stderr).toBe(0);

    for (const [kind, format] of [["dbz", "debezium"], ["rows", "json"]] as const) {
      const [itemsTopic, notesTopic] = topics(kind);
      const itemMessages = await readTopics([itemsTopic!]);
      const noteMessages = await readTopics([notesTopic!]);
      expect(itemMessages.length).toBe(total(items, format));
      expect(noteMessages.length).toBe(total(notes, format));
      compareTopic(itemMessages, items, format);
      compareTopic(noteMessages, notes, format);
    }

    // The envelope's frame: source fields, ts_ms, and the key is the primary key.
    const [first] = await readTopics([`${prefix}.dbz.items`]);
    const envelope = decodeJson(first!.value!) as Row;
    const source = envelope["source"] as Row;
    expect({ connector: source["connector"], name: source["name"], db: source["db"], schema: source["schema"], table: source["table"], snapshot: source["snapshot"] }).toEqual({
      connector: "postgres",
      name: prefix,
      db: db.name,
      schema: "public",
      table: "items",
      snapshot: "true",
    });
    expect(typeof source["lsn"] === "number" || typeof source["lsn"] === "bigint").toBe(true);
    expect(typeof envelope["ts_ms"]).toBe("number");

    // Folded, the topic of envelopes is the table. (Not so for notes: the row that moved to
    // key 30 kept its TOASTed body, which no message under the new key carries.)
    for (const model of [items]) {
      const folded = fold(await readTopics([`${prefix}.dbz.${model.table.split(".")[1]}`]));
      const table = new Map([...model.rows].map(([id, row]) => [`{"id":${id}}`, row]));
      expect(new Set(folded.keys())).toEqual(new Set(table.keys()));
      for (const [key, row] of table) expect(canonical(folded.get(key)!), key).toBe(canonical(row));
    }
  }, 240_000);
});
