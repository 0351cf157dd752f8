/**
 * Scale-out through Kafka: one `dts-run` captures a PostgreSQL table into a topic of 3
 * partitions (the kafka sink), three `dts-run` workers read it in one consumer group (the
 * kafka source) and write a second database (the postgres sink). While changes stream, one
 * worker is killed with SIGKILL: the group gives its partitions to the other two, which read
 * from the last committed offsets. In the end the target equals the source, row by row and
 * value by value, and the group has two members holding all three partitions.
 */
import { mkdirSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Admin } from "kafkajs";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireBuild, sleep, startDtsRun, tempFolder, waitFor, type Running } from "../cli-process.js";
import { BROKER, deleteTopics, requireBroker, uniqueName } from "./kafka-helpers.js";
import { createDatabase, slotName, type ThrowawayDatabase } from "./pg-helpers.js";

const SCHEMA = "CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL, amount numeric(12,2), note text, at timestamptz)";
let admin: Admin;
let source: ThrowawayDatabase;
let target: ThrowawayDatabase;
let client: pg.Client;
const runs: Running[] = [];
const name = uniqueName("scale");
const topic = `${name}.public.t`;

beforeAll(async () => {
  requireBuild();
  admin = await requireBroker();
  source = await createDatabase("kafka_scale_src");
  target = await createDatabase("kafka_scale_dst");
  client = await source.client();
  await client.query(SCHEMA);
  await target.sql(SCHEMA);
  // The topic exists before the workers subscribe, with the broker's 3 partitions.
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
}, 60_000);

afterAll(async () => {
  for (const run of runs) run.child.kill("SIGKILL");
  await Promise.all(runs.map((run) => run.done));
  await client?.end().catch(() => {});
  await source?.drop();
  await target?.drop();
  if (admin !== undefined) {
    await deleteTopics(admin, name);
    await admin.deleteGroups([name]).catch(() => {});
    await admin.disconnect();
  }
}, 60_000);

const rowsOf = async (db: ThrowawayDatabase): Promise<string[]> =>
  (await db.sql<{ r: string }>("SELECT row_to_json(t)::text AS r FROM t ORDER BY id")).map((row) => row.r);

describe("kafka source: workers in a consumer group", () => {
  it("three workers share the partitions; one killed mid-stream, the others take its partitions and nothing is lost", async () => {
    const dir = tempFolder("kafka-scale");
    const capture = join(dir, "capture.dts");
    await writeFile(
      capture,
      `pipeline ${name}_capture
source pg = postgres {
  url: "${source.url}"
  tables: ["public.t"]
  snapshot: "never"
  slot: "${slotName("kafka_scale")}"
}
sink topic = kafka {
  brokers: ["${BROKER}"]
  topic: "${name}.\${source.schema}.\${source.table}"
}
flow pg -> topic
`,
    );
    const worker = `pipeline ${name}
source changes = kafka {
  brokers: ["${BROKER}"]
  topics: ["${topic}"]
  group: "${name}"
}
sink target = postgres { url: "${target.url}" }
flow changes -> target
`;
    const captureRun = startDtsRun([capture], { cwd: dir });
    runs.push(captureRun);
    await captureRun.stderrContains("streaming changes");
    // Each worker in its own folder, as on its own machine: its own checkpoint file and lock.
    const workers: Running[] = [];
    for (let i = 0; i < 3; i++) {
      const folder = join(dir, `worker${i}`);
      mkdirSync(folder);
      await writeFile(join(folder, "worker.dts"), worker);
      const run = startDtsRun([join(folder, "worker.dts")], { cwd: folder });
      runs.push(run);
      workers.push(run);
    }
    await Promise.all(workers.map((run) => run.stderrContains("joined the consumer group")));

    let next = 1;
    let writing = true;
    const writer = (async () => {
      for (let round = 0; writing; round++) {
        await client.query("BEGIN");
        await client.query(`INSERT INTO t SELECT i, 0, i * 1.10, 'n' || i, now() FROM generate_series(${next}, ${next + 29}) AS i`);
        next += 30;
        await client.query(`UPDATE t SET v = v + 1, amount = amount + 0.01 WHERE id % 17 = ${round % 17}`);
        await client.query(`DELETE FROM t WHERE id IN (SELECT id FROM t WHERE id % 41 = ${round % 41} LIMIT 2)`);
        await client.query(`UPDATE t SET id = id + 1000000 WHERE id = (SELECT max(id) FROM t WHERE id < 1000000 AND id % 13 = 0)`);
        await client.query("COMMIT");
        await sleep(30);
      }
    })();

    await sleep(8_000);
    const killed = workers[0]!;
    killed.child.kill("SIGKILL");
    await killed.done;
    await sleep(15_000);
    writing = false;
    await writer;

    const want = await rowsOf(source);
    expect(want.length).toBeGreaterThan(1000);
    await waitFor("the target to equal the source", async () => (await rowsOf(target)).join("\n") === want.join("\n"), 120_000, 2_000).catch(async (error) => {
      const got = await rowsOf(target);
      throw new Error(
        `${(error as Error).message}: target has ${got.length} rows, source ${want.length}; first difference: ${want.find((r, i) => got[i] !== r)}\n` +
          workers.map((w, i) => `worker ${i}:\n${w.stderr().slice(-1500)}`).join("\n"),
      );
    });
    expect(await rowsOf(target)).toEqual(want);

    const [group] = (await admin.describeGroups([name])).groups;
    expect(group!.members).toHaveLength(2);
    const held = group!.members.flatMap((m) => {
      const assignment = m.memberAssignment;
      // Consumer protocol assignment: version (2), topics (4+len+name, 4 + 4 per partition)...
      const partitions: number[] = [];
      let at = 2;
      const topics = assignment.readInt32BE(at);
      at += 4;
      for (let t = 0; t < topics; t++) {
        const length = assignment.readInt16BE(at);
        at += 2 + length;
        const count = assignment.readInt32BE(at);
        at += 4;
        for (let p = 0; p < count; p++, at += 4) partitions.push(assignment.readInt32BE(at));
      }
      return partitions;
    });
    expect(held.sort()).toEqual([0, 1, 2]);
    // The survivors' logs say they were given partitions again after the kill.
    expect(workers.slice(1).some((w) => w.stderr().split("joined the consumer group").length > 2)).toBe(true);

    for (const run of [captureRun, ...workers.slice(1)]) run.child.kill("SIGTERM");
    for (const run of [captureRun, ...workers.slice(1)]) {
      const finished = await run.done;
      expect(finished.code, finished.stderr.slice(-2000)).toBe(0);
    }
  }, 300_000);
});
