/**
 * The broker goes away for 30 s while PostgreSQL keeps changing: a private broker
 * (private-kafka.ts, never the shared one) is killed mid-stream and started again. The run
 * must say in its log that writes are failing and being retried, keep its memory bounded
 * while changes pile up in the slot, resume by itself when the broker is back, and lose
 * nothing: for every key, the changes made are found in the topic in their order (a write
 * retried after the outage may publish some of them twice — at-least-once — but never out of
 * order), and the last message of every key is the row's last state.
 */
import { readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireBuild, sleep, startDtsRun, tempFolder, waitFor, type Running } from "../cli-process.js";
import { expectedMessages, insert, publishedForm, tableModel, update } from "./kafka-expect.js";
import { byKey, kafkaClient, readTopics, uniqueName } from "./kafka-helpers.js";
import { createDatabase, slotName, type ThrowawayDatabase } from "./pg-helpers.js";
import { createPrivateKafka, type PrivateKafka } from "./private-kafka.js";

let kafka: PrivateKafka;
let db: ThrowawayDatabase;
let client: pg.Client;
let dts: Running | undefined;
const topic = uniqueName("outage");
const model = tableModel("public.t", `json_build_object('id', id, 'v', v, 'note', note)::text`, { fullIdentity: false });

beforeAll(async () => {
  requireBuild();
  kafka = await createPrivateKafka();
  db = await createDatabase("kafka_outage");
  client = await db.client();
  await client.query("CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL, note text)");
}, 120_000);

afterAll(async () => {
  dts?.child.kill("SIGKILL");
  await dts?.done;
  await client?.end().catch(() => {});
  await db?.drop();
  await kafka?.remove();
}, 120_000);

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

/** Whether `want` occurs in `got` in order (other elements may sit between). */
function isSubsequence(want: readonly string[], got: readonly string[]): boolean {
  let i = 0;
  for (const item of got) if (i < want.length && item === want[i]) i++;
  return i === want.length;
}

describe("kafka sink through a broker outage", () => {
  it("loses nothing when the broker is down for 30 s, resumes by itself, memory bounded", async () => {
    const dir = tempFolder("kafka-outage");
    const pipeline = join(dir, "p.dts");
    await writeFile(
      pipeline,
      `pipeline ${topic}

source pg = postgres {
  url: "${db.url}"
  tables: ["public.t"]
  snapshot: "never"
  slot: "${slotName("kafka_outage")}"
}

sink out = kafka {
  brokers: ["${kafka.broker}"]
  topic: "${topic}"
}

flow pg -> out
`,
    );
    dts = startDtsRun([pipeline], { cwd: dir });
    await dts.stderrContains("streaming changes");

    let next = 1;
    let writing = true;
    const writer = (async () => {
      while (writing) {
        await client.query("BEGIN");
        await insert(client, model, `INSERT INTO t SELECT i, 0, repeat('x', 100) FROM generate_series(${next}, ${next + 19}) AS i`);
        next += 20;
        const id = 1 + Math.floor(Math.random() * (next - 1));
        await update(client, model, `UPDATE t SET v = v + 1 WHERE id = ${id}`, ["v"]);
        await client.query("COMMIT");
        await sleep(20);
      }
    })();

    await sleep(3_000);
    await kafka.stop();
    const downAt = Date.now();
    let peakMb = 0;
    while (Date.now() - downAt < 30_000) {
      peakMb = Math.max(peakMb, rssMb(dts.child.pid!));
      await sleep(500);
    }
    await kafka.start();
    await sleep(3_000);
    writing = false;
    await writer;

    let want = 0;
    for (const changes of model.changes.values()) want += expectedMessages(changes, "debezium").length;
    const admin = kafkaClient(kafka.broker).admin();
    await admin.connect();
    try {
      await waitFor(
        `${want} messages in ${topic}`,
        async () => (await admin.fetchTopicOffsets(topic)).reduce((n, p) => n + Number(p.high), 0) >= want,
        120_000,
        1_000,
      ).catch((error) => {
        throw new Error(`${(error as Error).message}\n${dts!.stderr().slice(-3000)}`);
      });
    } finally {
      await admin.disconnect();
    }
    dts.child.kill("SIGTERM");
    const finished = await dts.done;
    expect(finished.code, finished.stderr.slice(-3000)).toBe(0);

    // The log says what happened: writes failed and were retried, then went through.
    expect(finished.stderr).toMatch(/sink out.*failed; retrying|failed; retrying.*kafka/s);
    expect(peakMb, "RSS of dts-run while the broker was down").toBeLessThan(400);

    const published = byKey(await readTopics([topic], { broker: kafka.broker, timeoutMs: 120_000 }));
    const problems: string[] = [];
    for (const [key, changes] of model.changes) {
      const wanted = expectedMessages(changes, "debezium");
      const got = (published.get(`${topic} ${key}`) ?? []).map((m) => publishedForm(m, "debezium"));
      if (!isSubsequence(wanted, got) || got.at(-1) !== wanted.at(-1) || got.some((m) => !wanted.includes(m))) {
        problems.push(`${key}: got ${got.join(" | ")}\n  want ${wanted.join(" | ")}`);
      }
    }
    expect(problems.slice(0, 3).join("\n")).toBe("");
    expect(model.changes.size).toBeGreaterThan(1000);
  }, 300_000);
});
