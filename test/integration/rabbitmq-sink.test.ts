/**
 * The rabbitmq sink against the shared RabbitMQ (127.0.0.1:5672, guest/guest; AMQP_URL to
 * change it), each test on an exchange and queue of its own. The broker is never stopped: an
 * outage is a TCP proxy of the test's own in front of it, cut for 25 s.
 *
 * Every stream is checked message by message against an uninterrupted reference run of the
 * same datagen stream into jsonl (queue-helpers.ts: bodies equal as text, so every value; no
 * event skipped; rewinds only to right after a saved checkpoint).
 */
import { writeFileSync } from "node:fs";
import { spawn } from "node:child_process";
import { join, resolve } from "node:path";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Channel, ChannelModel, ConsumeMessage } from "amqplib";
import { connect } from "amqplib";
import { decodeEvent } from "../../src/model/json.js";
import { DTS_RUN, ROOT, requireBuild, runDtsRun, sleep, startDtsRun, tempFolder, waitFor, type Finished } from "../cli-process.js";
import { checkStream, readLines, savedSeq, TcpProxy } from "./queue-helpers.js";

const AMQP_URL = process.env.AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672";
const PRELOAD = resolve(ROOT, "test/integration/peak-rss.cjs");

let model: ChannelModel;
let channel: Channel;
const cleanup: (() => Promise<unknown>)[] = [];

function unique(prefix: string): string {
  return `${prefix}_${process.pid}_${randomBytes(3).toString("hex")}`;
}

function datagen(rows: number, rate: number, seed: number): string {
  return `source g = datagen { rows: ${rows}, changes_per_second: ${rate}, seed: ${seed}, transaction_size: 4 }`;
}

/** The uninterrupted run's events, as jsonl lines. */
async function reference(rows: number, seed: number): Promise<string[]> {
  const folder = tempFolder("rabbit-ref");
  writeFileSync(join(folder, "p.dts"), `pipeline ref\n${datagen(rows, 0, seed)}\nsink out = jsonl { path: "out.jsonl" }\nflow g -> out\n`);
  const result = await runDtsRun(["p.dts"], { cwd: folder });
  expect(result.code, result.stderr).toBe(0);
  return readLines(join(folder, "out.jsonl"));
}

/** A queue of the test's own, bound to `exchange` (declared here as the sink declares it). */
async function boundQueue(exchange: string, pattern = "#"): Promise<string> {
  const queue = unique("dts_test_q");
  await channel.assertExchange(exchange, "topic", { durable: true });
  await channel.assertQueue(queue, { durable: true });
  await channel.bindQueue(queue, exchange, pattern);
  cleanup.push(() => channel.deleteQueue(queue), () => channel.deleteExchange(exchange));
  return queue;
}

/** Every message in `queue`, in order, once no more came for a second. */
async function drain(queue: string): Promise<ConsumeMessage[]> {
  const consumer = await model.createChannel();
  const messages: ConsumeMessage[] = [];
  await consumer.prefetch(1000);
  let last = Date.now();
  await consumer.consume(queue, (message) => {
    if (message === null) return;
    messages.push(message);
    last = Date.now();
    consumer.ack(message);
  });
  await waitFor("the queue to be drained", () => Date.now() - last > 1000, 60_000);
  await consumer.close();
  return messages;
}

function bodies(messages: readonly ConsumeMessage[]): string[] {
  return messages.map((message) => message.content.toString("utf8"));
}

/** The headers and properties of every message agree with its body; one id per event. */
function checkHeaders(messages: readonly ConsumeMessage[]): void {
  const idOf = new Map<string, string>();
  const bodyOf = new Map<string, string>();
  for (const message of messages) {
    const body = message.content.toString("utf8");
    const event = decodeEvent(body);
    const headers = message.properties.headers as Record<string, unknown>;
    expect(headers["dts-op"]).toBe(event.op);
    expect(headers["dts-table"]).toBe(`${event.source.schema}.${event.source.table}`);
    expect(headers["dts-position"]).toBe(`seq:${event.source.position.token}`);
    expect(headers["dts-event-id"]).toBe(message.properties.messageId);
    expect(message.properties.deliveryMode).toBe(2);
    expect(message.properties.contentType).toBe("application/json");
    const id = message.properties.messageId as string;
    // The same event keeps its id when sent again, and two events never share one.
    if (idOf.has(body)) expect(idOf.get(body)).toBe(id);
    idOf.set(body, id);
    if (bodyOf.has(id)) expect(bodyOf.get(id)).toBe(body);
    bodyOf.set(id, body);
  }
}

describe("rabbitmq sink", () => {
  beforeAll(async () => {
    requireBuild();
    try {
      model = await connect(AMQP_URL);
    } catch (error) {
      throw new Error(`RabbitMQ is not reachable at ${AMQP_URL} (${(error as Error).message}): run scripts/services.sh`);
    }
    channel = await model.createChannel();
  });

  afterAll(async () => {
    for (const step of cleanup.reverse()) await step().catch(() => undefined);
    await model?.close();
  });

  it("delivers every event after kill -9 and resume, re-sending only what followed the last checkpoint", async () => {
    const rows = 12_000;
    const seed = 41;
    const expected = reference(rows, seed);
    const exchange = unique("dts_test_x");
    const queue = await boundQueue(exchange);
    const folder = tempFolder("rabbit-kill");
    writeFileSync(
      join(folder, "p.dts"),
      `pipeline rk\n${datagen(rows, 4000, seed)}\n` +
        `sink r = rabbitmq { url: "${AMQP_URL}", exchange: "${exchange}", routing_key: "\${source.table}.\${op}" }\nflow g -> r\n`,
    );
    const resumePoints = new Set<bigint>([0n]);
    let killed = 0;
    for (let i = 0; i < 4; i++) {
      const run = startDtsRun(["p.dts"], { cwd: folder });
      await run.stderrContains("source started");
      await sleep(200 + Math.floor(Math.random() * 500));
      run.child.kill("SIGKILL");
      const result = await run.done;
      if (result.signal === "SIGKILL") killed++;
      resumePoints.add(savedSeq(folder, "rk", "g") ?? 0n);
    }
    const last = await runDtsRun(["p.dts"], { cwd: folder });
    expect(last.code, last.stderr).toBe(0);
    const messages = await drain(queue);
    const check = checkStream(bodies(messages), await expected, resumePoints);
    checkHeaders(messages);
    expect(killed).toBeGreaterThanOrEqual(3);
    // The kills fell mid-stream, so something was in flight past a checkpoint at least once.
    console.log(`rabbitmq kill -9: ${messages.length} messages for ${rows} events, rewinds at ${check.rewinds.join(", ")}, ${check.duplicates} duplicates`);
  }, 180_000);

  it("rides out a 25 s outage of its connection: nothing lost, memory bounded, one log line per retry", async () => {
    const rows = 20_000;
    const seed = 42;
    const expected = reference(rows, seed);
    const exchange = unique("dts_test_x");
    const queue = await boundQueue(exchange);
    const amqp = new URL(AMQP_URL);
    const proxy = await TcpProxy.start({ host: amqp.hostname, port: Number(amqp.port || 5672) });
    cleanup.push(() => proxy.stop());
    const viaProxy = new URL(AMQP_URL);
    viaProxy.port = String(proxy.port);
    const folder = tempFolder("rabbit-outage");
    writeFileSync(
      join(folder, "p.dts"),
      `pipeline ro\n${datagen(rows, 1000, seed)}\n` +
        `sink r = rabbitmq { url: "${viaProxy.toString()}", exchange: "${exchange}", routing_key: "\${source.table}.\${op}" }\nflow g -> r\n`,
    );
    const rssFile = join(folder, "rss");
    const child = spawn(process.execPath, ["--require", PRELOAD, DTS_RUN, "p.dts"], { cwd: folder, env: { ...process.env, DTS_PEAK_RSS_FILE: rssFile }, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const done = new Promise<Finished>((resolve) => child.on("close", (code, signal) => resolve({ code, signal, stdout: "", stderr })));
    await waitFor("the source to start", () => stderr.includes("source started"));
    await sleep(3000);
    await proxy.cut();
    await sleep(25_000);
    await proxy.restore();
    const timer = setTimeout(() => child.kill("SIGKILL"), 90_000);
    const result = await done;
    clearTimeout(timer);
    expect(result.code, stderr.slice(-3000)).toBe(0);

    const retries = stderr.split("\n").filter((line) => line.includes("failed; retrying"));
    expect(retries.length, stderr.slice(-3000)).toBeGreaterThanOrEqual(3);
    // Each retry says how long the broker has been gone, and the last one most of the 25 s.
    for (const line of retries) expect(JSON.parse(line).down_for).toMatch(/\d/);
    const downFor = retries.map((line) => JSON.parse(line).down_for as string);
    expect(parseFloat(downFor.at(-1)!)).toBeGreaterThanOrEqual(12);
    const messages = await drain(queue);
    const check = checkStream(bodies(messages), await expected);
    checkHeaders(messages);
    // A rewind only republishes the write that was in flight when the connection went.
    expect(check.rewinds.length).toBeLessThanOrEqual(retries.length + 1);
    const peakKb = Number(readFileSync(rssFile, "utf8"));
    expect(peakKb).toBeLessThan(400 * 1024);
    console.log(`rabbitmq outage: ${retries.length} retries (last down_for ${downFor.at(-1)}), ${check.duplicates} duplicates, peak RSS ${Math.round(peakKb / 1024)} MB`);
  }, 180_000);

  it("sends unroutable messages to the dead-letter sink with on_refused: dead_letter, or stops", async () => {
    const rows = 3000;
    const seed = 43;
    const expected = await reference(rows, seed);
    const exchange = unique("dts_test_x");
    // Only order changes have a queue; customers and products come back from the broker.
    const queue = await boundQueue(exchange, "orders.#");
    const folder = tempFolder("rabbit-refused");
    const sink = (onRefused: string): string =>
      `sink r = rabbitmq { url: "${AMQP_URL}", exchange: "${exchange}", routing_key: "\${source.table}.\${op}", on_refused: "${onRefused}" }`;
    writeFileSync(join(folder, "dl.dts"), `pipeline rd {\n  dead_letter: rejected\n}\n${datagen(rows, 0, seed)}\n${sink("dead_letter")}\nsink rejected = jsonl { path: "rejected.jsonl" }\nflow g -> r\n`);
    const result = await runDtsRun(["dl.dts"], { cwd: folder });
    expect(result.code, result.stderr).toBe(0);
    const delivered = bodies(await drain(queue));
    const rejected = readLines(join(folder, "rejected.jsonl"));
    // Every event in exactly one place: the queue, or the dead-letter file with the reason.
    const expectedOrders = expected.filter((line) => decodeEvent(line).source.table === "orders");
    checkStream(delivered, expectedOrders);
    expect(delivered).toHaveLength(expectedOrders.length);
    const others = expected.filter((line) => decodeEvent(line).source.table !== "orders");
    expect(rejected).toHaveLength(others.length);
    expect(others.length).toBeGreaterThan(0);
    for (let i = 0; i < rejected.length; i++) {
      const line = JSON.parse(rejected[i]!) as { rejection: { reason: string; where: string } };
      expect(line.rejection.reason).toContain("312 NO_ROUTE");
      expect(line.rejection.where).toBe("sink r");
      const { rejection: _, ...event } = line;
      expect(JSON.parse(others[i]!)).toEqual(event);
    }

    writeFileSync(join(folder, "stop.dts"), `pipeline rs\n${datagen(rows, 0, seed)}\n${sink("error")}\nflow g -> r\n`);
    const stopped = await runDtsRun(["stop.dts"], { cwd: folder });
    expect(stopped.code).toBe(3);
    expect(stopped.stderr).toContain("312 NO_ROUTE");
    expect(stopped.stderr).toContain('on_refused: "dead_letter"');
  }, 120_000);

  it("checks the exchange instead of declaring it with declare_exchange: false", async () => {
    const folder = tempFolder("rabbit-check");
    const missing = unique("dts_test_missing");
    writeFileSync(
      join(folder, "p.dts"),
      `pipeline rc\n${datagen(10, 0, 1)}\nsink r = rabbitmq { url: "${AMQP_URL}", exchange: "${missing}", declare_exchange: false, routing_key: "k" }\nflow g -> r\n`,
    );
    const result = await runDtsRun(["p.dts"], { cwd: folder });
    expect(result.code).toBe(3);
    expect(result.stderr).toContain(`exchange "${missing}" does not exist`);
    // It was only checked, not created.
    const probe = await model.createChannel();
    probe.on("error", () => undefined);
    await expect(probe.checkExchange(missing)).rejects.toThrow(/NOT_FOUND/);
  }, 60_000);
});
