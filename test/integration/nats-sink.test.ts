/**
 * The nats sink (JetStream). Deduplication on the shared server (127.0.0.1:4222; NATS_URL to
 * change it), each test with a stream and subjects of its own; outages on a private
 * nats-server the test starts and stops itself (the shared one is never stopped).
 *
 * Because every message carries `Nats-Msg-Id`, a stream must hold every event of the
 * reference run exactly once, in order, however often the pipeline was killed or the server
 * went away — within the duplicate window.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type JsMsg, type NatsConnection } from "nats";
import { decodeEvent } from "../../src/model/json.js";
import { DTS_RUN, ROOT, requireBuild, runDtsRun, sleep, startDtsRun, tempFolder, waitFor, type Finished } from "../cli-process.js";
import { freePort, readLines } from "./queue-helpers.js";

const NATS_URL = process.env.NATS_URL ?? "nats://127.0.0.1:4222";
const NATS_SERVER = process.env.NATS_SERVER_BIN ?? "/usr/sbin/nats-server";
const PRELOAD = resolve(ROOT, "test/integration/peak-rss.cjs");

const cleanup: (() => Promise<unknown>)[] = [];

function unique(prefix: string): string {
  return `${prefix}_${process.pid}_${randomBytes(3).toString("hex")}`;
}

function datagen(rows: number, rate: number, seed: number): string {
  return `source g = datagen { rows: ${rows}, changes_per_second: ${rate}, seed: ${seed}, transaction_size: 4 }`;
}

async function reference(rows: number, seed: number): Promise<string[]> {
  const folder = tempFolder("nats-ref");
  writeFileSync(join(folder, "p.dts"), `pipeline ref\n${datagen(rows, 0, seed)}\nsink out = jsonl { path: "out.jsonl" }\nflow g -> out\n`);
  const result = await runDtsRun(["p.dts"], { cwd: folder });
  expect(result.code, result.stderr).toBe(0);
  return readLines(join(folder, "out.jsonl"));
}

function natsSink(url: string, stream: string, prefix: string): string {
  return `sink n = nats { url: "${url}", subject: "${prefix}.\${source.table}.\${op}", stream: "${stream}", create_stream: true, stream_subjects: ["${prefix}.>"] }`;
}

/** Every message of `stream`, in stream order. */
async function readStream(connection: NatsConnection, stream: string): Promise<JsMsg[]> {
  const jsm = await connection.jetstreamManager();
  const total = (await jsm.streams.info(stream)).state.messages;
  const consumer = await connection.jetstream().consumers.get(stream);
  const messages: JsMsg[] = [];
  while (messages.length < total) {
    const batch = await consumer.fetch({ max_messages: 1000, expires: 5000 });
    for await (const message of batch) messages.push(message);
  }
  return messages;
}

function checkMessages(messages: readonly JsMsg[], expected: readonly string[]): void {
  const bodies = messages.map((message) => Buffer.from(message.data).toString("utf8"));
  // Exactly once, in order, every value as in the reference.
  expect(bodies.length).toBe(expected.length);
  for (let i = 0; i < bodies.length; i++) if (bodies[i] !== expected[i]) expect(bodies[i], `message ${i}`).toBe(expected[i]);
  const ids = new Set<string>();
  for (const message of messages) {
    const event = decodeEvent(Buffer.from(message.data).toString("utf8"));
    const headers = message.headers!;
    expect(headers.get("dts-op")).toBe(event.op);
    expect(headers.get("dts-table")).toBe(`${event.source.schema}.${event.source.table}`);
    expect(headers.get("dts-position")).toBe(`seq:${event.source.position.token}`);
    expect(headers.get("Nats-Msg-Id")).toBe(headers.get("dts-event-id"));
    expect(message.subject).toBe(`${message.subject.split(".")[0]}.${event.source.table}.${event.op}`);
    ids.add(headers.get("Nats-Msg-Id"));
  }
  expect(ids.size).toBe(messages.length);
}

/** A nats-server of the test's own, on a free port, keeping JetStream in `dir` across restarts. */
class PrivateNats {
  private process: ChildProcess | undefined;
  private constructor(
    readonly port: number,
    private readonly dir: string,
  ) {}

  static async start(): Promise<PrivateNats> {
    const server = new PrivateNats(await freePort(), tempFolder("nats-private"));
    await server.start();
    return server;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const child = spawn(NATS_SERVER, ["-a", "127.0.0.1", "-p", String(this.port), "-js", "-sd", this.dir], { stdio: ["ignore", "ignore", "pipe"] });
    let log = "";
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (log += chunk));
    this.process = child;
    await waitFor(`the private nats-server on port ${this.port} (log: ${log.slice(-500)})`, () => log.includes("Server is ready"), 20_000);
  }

  async stop(): Promise<void> {
    const child = this.process;
    this.process = undefined;
    if (child === undefined || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
  }
}

describe("nats sink (JetStream)", () => {
  let shared: NatsConnection;

  beforeAll(async () => {
    requireBuild();
    try {
      shared = await connect({ servers: new URL(NATS_URL).host });
    } catch (error) {
      throw new Error(`NATS is not reachable at ${NATS_URL} (${(error as Error).message}): run scripts/services.sh`);
    }
  });

  afterAll(async () => {
    for (const step of cleanup.reverse()) await step().catch(() => undefined);
    await shared?.close();
  });

  it("stores every event exactly once after kill -9 and resume: re-sends fall in the duplicate window", async () => {
    const rows = 3000;
    const seed = 51;
    const expected = reference(rows, seed);
    const stream = unique("DTS_TEST");
    const prefix = unique("dts_test");
    cleanup.push(async () => (await shared.jetstreamManager()).streams.delete(stream));
    const folder = tempFolder("nats-kill");
    writeFileSync(join(folder, "p.dts"), `pipeline nk\n${datagen(rows, 1000, seed)}\n${natsSink(NATS_URL, stream, prefix)}\nflow g -> n\n`);
    let killed = 0;
    let dropped = 0;
    const droppedIn = (stderr: string): number =>
      stderr
        .split("\n")
        .filter((line) => line.includes("JetStream dropped messages"))
        .reduce((sum, line) => sum + (JSON.parse(line).duplicates as number), 0);
    for (let i = 0; i < 3; i++) {
      const run = startDtsRun(["p.dts"], { cwd: folder });
      await run.stderrContains("source started");
      await sleep(300 + Math.floor(Math.random() * 700));
      run.child.kill("SIGKILL");
      const result = await run.done;
      if (result.signal === "SIGKILL") killed++;
      dropped += droppedIn(result.stderr);
    }
    const last = await runDtsRun(["p.dts"], { cwd: folder });
    expect(last.code, last.stderr).toBe(0);
    dropped += droppedIn(last.stderr);
    expect(killed).toBeGreaterThanOrEqual(2);
    // The resumed runs did publish again what followed the checkpoints, and the stream dropped it.
    expect(dropped).toBeGreaterThan(0);
    const messages = await readStream(shared, stream);
    checkMessages(messages, await expected);
  }, 180_000);

  it("rides out a 25 s restart of its server: nothing lost, nothing twice, memory bounded, one log line per retry", async () => {
    const server = await PrivateNats.start();
    cleanup.push(() => server.stop());
    const rows = 4000;
    const seed = 52;
    const expected = reference(rows, seed);
    const stream = "DTS_OUTAGE";
    const folder = tempFolder("nats-outage");
    writeFileSync(join(folder, "p.dts"), `pipeline no\n${datagen(rows, 250, seed)}\n${natsSink(server.url, stream, "outage")}\nflow g -> n\n`);
    const rssFile = join(folder, "rss");
    const child = spawn(process.execPath, ["--require", PRELOAD, DTS_RUN, "p.dts"], { cwd: folder, env: { ...process.env, DTS_PEAK_RSS_FILE: rssFile }, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const done = new Promise<Finished>((resolve) => child.on("close", (code, signal) => resolve({ code, signal, stdout: "", stderr })));
    await waitFor("the source to start", () => stderr.includes("source started"));
    await sleep(3000);
    await server.stop();
    await sleep(25_000);
    await server.start();
    const timer = setTimeout(() => child.kill("SIGKILL"), 90_000);
    const result = await done;
    clearTimeout(timer);
    expect(result.code, stderr.slice(-3000)).toBe(0);
    const retries = stderr.split("\n").filter((line) => line.includes("failed; retrying"));
    expect(retries.length, stderr.slice(-3000)).toBeGreaterThanOrEqual(1);
    for (const line of retries) expect(JSON.parse(line).down_for).toMatch(/\d/);
    const connection = await connect({ servers: `127.0.0.1:${server.port}` });
    try {
      checkMessages(await readStream(connection, stream), await expected);
    } finally {
      await connection.close();
    }
    const peakKb = Number(readFileSync(rssFile, "utf8"));
    expect(peakKb).toBeLessThan(400 * 1024);
    console.log(`nats outage: ${retries.length} retries (last down_for ${JSON.parse(retries.at(-1)!).down_for}), peak RSS ${Math.round(peakKb / 1024)} MB`);
  }, 180_000);

  it("stops at start on a missing stream, and on a subject no stream holds", async () => {
    const folder = tempFolder("nats-missing");
    const missing = unique("DTS_MISSING");
    writeFileSync(join(folder, "a.dts"), `pipeline na\n${datagen(10, 0, 1)}\nsink n = nats { url: "${NATS_URL}", subject: "x.y", stream: "${missing}" }\nflow g -> n\n`);
    const a = await runDtsRun(["a.dts"], { cwd: folder });
    expect(a.code).toBe(3);
    expect(a.stderr).toContain(`stream "${missing}" does not exist`);
    const subject = unique("dts_nowhere");
    writeFileSync(join(folder, "b.dts"), `pipeline nb\n${datagen(10, 0, 1)}\nsink n = nats { url: "${NATS_URL}", subject: "${subject}" }\nflow g -> n\n`);
    const b = await runDtsRun(["b.dts"], { cwd: folder });
    expect(b.code).toBe(3);
    expect(b.stderr).toContain(`no JetStream stream on nats://127.0.0.1:4222 holds subject "${subject}"`);
  }, 60_000);
});
