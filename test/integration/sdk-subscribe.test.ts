/**
 * The subscription SDK through its example app (docs/examples/order-status/app.mjs), run as a
 * user runs it — `import { subscribe } from "dts"` — against the test broker, on a topic of
 * Debezium envelopes with tombstones. A first run stops after 4 changes (leaving its loop with
 * `break`); a second run of the same group goes on from there: it sees the change that was in
 * hand at the break again (not known to be processed) and every later one, none before.
 * Together the two runs print every change once per order in order, plus that one repeat.
 */
import { execFile } from "node:child_process";
import { copyFileSync, mkdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import type { Admin } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, requireBuild, tempFolder } from "../cli-process.js";
import { BROKER, kafkaClient, requireBroker, uniqueName } from "./kafka-helpers.js";

const run = promisify(execFile);
let admin: Admin;
const topic = uniqueName("sdk");
const group = `${topic}_group`;

function envelope(op: string, before: object | null, after: object | null, ts: number): string {
  return JSON.stringify({
    before,
    after,
    source: { version: "3.6.1.Final", connector: "postgresql", name: "shop", ts_ms: ts, snapshot: "false", db: "shop", schema: "public", table: "orders", txId: ts, lsn: ts },
    op,
    ts_ms: ts,
  });
}

/** The changes, and the line the app prints for each. */
const changes: { id: number; op: string; before: object | null; after: object | null; line: string }[] = [];
for (let id = 1; id <= 6; id++) changes.push({ id, op: "c", before: null, after: { id, status: "pending" }, line: `order ${id}: new -> pending` });
for (const id of [1, 2, 3, 5]) changes.push({ id, op: "u", before: { id, status: "pending" }, after: { id, status: "paid" }, line: `order ${id}: pending -> paid` });
for (const id of [1, 5]) changes.push({ id, op: "u", before: { id, status: "paid" }, after: { id, status: "shipped" }, line: `order ${id}: paid -> shipped` });
changes.push({ id: 4, op: "d", before: { id: 4, status: "pending" }, after: null, line: "order 4: pending -> deleted" });

beforeAll(async () => {
  requireBuild();
  admin = await requireBroker();
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
  const producer = kafkaClient().producer();
  await producer.connect();
  const messages = changes.flatMap((c, i) => {
    const key = JSON.stringify({ id: c.id });
    const message = { key, value: envelope(c.op, c.before, c.after, 1_700_000_000_000 + i) };
    return c.op === "d" ? [message, { key, value: null }] : [message];
  });
  await producer.send({ topic, acks: -1, messages });
  await producer.disconnect();
}, 60_000);

afterAll(async () => {
  await admin?.deleteTopics({ topics: [topic] }).catch(() => {});
  await admin?.deleteGroups([group]).catch(() => {});
  await admin?.disconnect();
}, 30_000);

/** Lines per order, in the order printed. */
function perOrder(lines: readonly string[]): Map<string, string[]> {
  const orders = new Map<string, string[]>();
  for (const line of lines) {
    const id = /^order (\d+):/.exec(line)?.[1];
    if (id === undefined) continue;
    orders.set(id, [...(orders.get(id) ?? []), line]);
  }
  return orders;
}

describe("subscription SDK: the order-status example app", () => {
  it("prints every change once per order in order, committing only what it processed", async () => {
    // The app imports "dts": give it a node_modules with this checkout as the package.
    const dir = tempFolder("sdk-example");
    mkdirSync(join(dir, "node_modules"));
    symlinkSync(ROOT, join(dir, "node_modules", "dts"));
    copyFileSync(join(ROOT, "docs/examples/order-status/app.mjs"), join(dir, "app.mjs"));
    const app = (limit: number) =>
      run(process.execPath, ["app.mjs"], { cwd: dir, timeout: 60_000, env: { ...process.env, KAFKA_BROKERS: BROKER, ORDERS_TOPIC: topic, GROUP: group, LIMIT: String(limit) } });

    const first = (await app(4)).stdout.trim().split("\n");
    const printedFirst = first.filter((l) => l.startsWith("order "));
    expect(printedFirst).toHaveLength(4);
    expect(first.at(-1)).toMatch(/^statuses: /);

    const rest = changes.length - 4 + 1;
    const second = (await app(rest)).stdout.trim().split("\n").filter((l) => l.startsWith("order "));
    expect(second).toHaveLength(rest);
    // The change in hand at the break comes again; nothing else does.
    const repeated = printedFirst.at(-1)!;
    expect(second).toContain(repeated);
    const all = [...printedFirst.slice(0, -1), ...second];
    const want = perOrder(changes.map((c) => c.line));
    const got = perOrder(all);
    expect(Object.fromEntries(got)).toEqual(Object.fromEntries(want));
  }, 120_000);
});
