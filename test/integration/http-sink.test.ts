/**
 * The http sink against a real HTTP receiver of the test's own, which can be told, request by
 * request, to answer 2xx, 500, 429 with Retry-After, 422, to hang, to close the connection,
 * or to refuse connections altogether for 25 s.
 *
 * What the receiver acknowledged (answered 2xx) is checked event by event against an
 * uninterrupted reference run of the same datagen stream into jsonl: nothing lost, in order,
 * and — since a retried write skips the requests already acknowledged — nothing twice.
 */
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DTS_RUN, ROOT, requireBuild, runDtsRun, sleep, tempFolder, waitFor, type Finished } from "../cli-process.js";
import { checkStream, freePort, readLines } from "./queue-helpers.js";

const PRELOAD = resolve(ROOT, "test/integration/peak-rss.cjs");

type Answer = "ok" | "hang" | "close" | { readonly status: number; readonly body?: string; readonly headers?: Record<string, string> };

interface Received {
  readonly n: number;
  readonly at: number;
  readonly headers: IncomingMessage["headers"];
  readonly body: string;
  answer: Answer;
}

class Receiver {
  readonly requests: Received[] = [];
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly hanging = new Set<ServerResponse>();

  private constructor(
    readonly port: number,
    private readonly plan: (request: Received) => Answer,
  ) {}

  static async start(plan: (request: Received) => Answer): Promise<Receiver> {
    const receiver = new Receiver(await freePort(), plan);
    await receiver.listen();
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }

  /** The requests answered 2xx, in order. */
  accepted(): Received[] {
    return this.requests.filter((request) => request.answer === "ok");
  }

  async listen(): Promise<void> {
    const server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        const received: Received = { n: this.requests.length, at: Date.now(), headers: request.headers, body: Buffer.concat(chunks).toString("utf8"), answer: "ok" };
        received.answer = this.plan(received);
        this.requests.push(received);
        const answer = received.answer;
        if (answer === "ok") response.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
        else if (answer === "hang") this.hanging.add(response);
        else if (answer === "close") request.socket.destroy();
        else response.writeHead(answer.status, answer.headers ?? {}).end(answer.body ?? "");
      });
    });
    server.on("connection", (socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => resolve());
    });
  }

  /** Stops listening (connections are refused) and drops every open one. */
  async refuse(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    this.hanging.clear();
    await closed;
  }
}

function datagen(rows: number, rate: number, seed: number): string {
  return `source g = datagen { rows: ${rows}, changes_per_second: ${rate}, seed: ${seed}, transaction_size: 4 }`;
}

/** JSON texts normalised the same way on both sides (key order as written, numbers as JSON reads them). */
const normal = (value: unknown): string => JSON.stringify(value);

async function reference(rows: number, seed: number): Promise<string[]> {
  const folder = tempFolder("http-ref");
  writeFileSync(join(folder, "p.dts"), `pipeline ref\n${datagen(rows, 0, seed)}\nsink out = jsonl { path: "out.jsonl" }\nflow g -> out\n`);
  const result = await runDtsRun(["p.dts"], { cwd: folder });
  expect(result.code, result.stderr).toBe(0);
  return readLines(join(folder, "out.jsonl")).map((line) => normal(JSON.parse(line)));
}

/** The events of the accepted requests, in order. */
function eventsOf(requests: readonly Received[], batchSize: number): string[] {
  return requests.flatMap((request) => {
    const body = JSON.parse(request.body) as unknown;
    return (batchSize === 1 ? [body] : (body as unknown[])).map(normal);
  });
}

function start(folder: string, env: Record<string, string> = {}): { done: Promise<Finished>; stderr: () => string } {
  const child = spawn(process.execPath, ["--require", PRELOAD, DTS_RUN, "p.dts"], { cwd: folder, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
  const done = new Promise<Finished>((resolve) =>
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: "", stderr });
    }),
  );
  return { done, stderr: () => stderr };
}

function retryLines(stderr: string): Record<string, unknown>[] {
  return stderr
    .split("\n")
    .filter((line) => line.includes("failed; retrying"))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe("http sink", () => {
  const receivers: Receiver[] = [];
  beforeAll(requireBuild);
  afterAll(async () => {
    for (const receiver of receivers) await receiver.refuse();
  });

  it("retries 500s, hangs, closed connections and 429s, honouring Retry-After, and delivers each event once", async () => {
    const rows = 1200;
    const seed = 61;
    const batchSize = 20;
    const expected = reference(rows, seed);
    const plan = (request: Received): Answer => {
      if (request.n >= 5 && request.n <= 7) return { status: 500, body: "internal trouble" };
      if (request.n === 8 || request.n === 9) return "hang";
      if (request.n === 10 || request.n === 11) return "close";
      if (request.n === 12) return { status: 429, body: "slow down", headers: { "retry-after": "3" } };
      if (request.n === 13) return { status: 503, body: "maintenance" };
      return "ok";
    };
    const receiver = await Receiver.start(plan);
    receivers.push(receiver);
    const folder = tempFolder("http-faults");
    writeFileSync(
      join(folder, "p.dts"),
      `pipeline hf\n${datagen(rows, 300, seed)}\n` +
        `sink h = http { url: "${receiver.url}", batch_size: ${batchSize}, timeout_ms: 1000, headers: { Authorization: "Bearer t0ken" } }\nflow g -> h\n`,
    );
    const run = start(folder);
    const result = await run.done;
    expect(result.code, result.stderr.slice(-3000)).toBe(0);

    const accepted = receiver.accepted();
    const check = checkStream(eventsOf(accepted, batchSize), await expected);
    expect(check.duplicates).toBe(0);
    for (const request of receiver.requests) {
      expect(request.headers["authorization"]).toBe("Bearer t0ken");
      expect(request.headers["content-type"]).toBe("application/json");
      const count = Number(request.headers["dts-event-count"]);
      expect(JSON.parse(request.body)).toHaveLength(count);
      expect(request.headers["idempotency-key"]).toMatch(new RegExp(`^hf/seq:\\d+/0\\+${count}$`));
    }
    // A failed request comes again with the same key and the same body, until it is accepted.
    const failed = receiver.requests.filter((request) => request.answer !== "ok");
    expect(failed).toHaveLength(9);
    for (const request of failed) {
      const again = accepted.find((other) => other.headers["idempotency-key"] === request.headers["idempotency-key"]);
      expect(again?.body).toBe(request.body);
    }
    // Retry-After: 3 was waited for.
    const after429 = receiver.requests[13]!;
    expect(after429.at - receiver.requests[12]!.at).toBeGreaterThanOrEqual(2900);
    const retries = retryLines(result.stderr);
    expect(retries).toHaveLength(9);
    for (const line of retries) expect(line.down_for).toMatch(/\d/);
    expect(retries.some((line) => (line.delay_ms as number) >= 3000 && String(line.error).includes("429"))).toBe(true);
    expect(result.stderr).not.toContain("t0ken");
  }, 120_000);

  it("sends events a receiver refuses with a 4xx to the dead-letter sink with status and body, or stops", async () => {
    const rows = 400;
    const seed = 62;
    const expected = await reference(rows, seed);
    const plan = (request: Received): Answer =>
      request.body.includes('"table":"customers"') ? { status: 422, body: '{"error":"customers are not taken here"}' } : "ok";
    const receiver = await Receiver.start(plan);
    receivers.push(receiver);
    const folder = tempFolder("http-4xx");
    writeFileSync(
      join(folder, "p.dts"),
      `pipeline h4 {\n  dead_letter: rejected\n}\n${datagen(rows, 0, seed)}\n` +
        `sink h = http { url: "${receiver.url}" }\nsink rejected = jsonl { path: "rejected.jsonl" }\nflow g -> h\n`,
    );
    const result = await start(folder).done;
    expect(result.code, result.stderr.slice(-3000)).toBe(0);
    const isCustomer = (line: string): boolean => (JSON.parse(line) as { source: { table: string } }).source.table === "customers";
    // Every event in exactly one place: taken by the receiver, or dead-lettered with the reason.
    checkStream(eventsOf(receiver.accepted(), 1), expected.filter((line) => !isCustomer(line)));
    const rejected = readLines(join(folder, "rejected.jsonl")).map((line) => JSON.parse(line) as Record<string, unknown> & { rejection: { reason: string; where: string } });
    const customers = expected.filter(isCustomer);
    expect(customers.length).toBeGreaterThan(0);
    expect(rejected).toHaveLength(customers.length);
    rejected.forEach((line, i) => {
      expect(line.rejection.reason).toBe(`POST http://127.0.0.1:${receiver.port}/hook answered 422 Unprocessable Entity: {"error":"customers are not taken here"}`);
      expect(line.rejection.where).toBe("sink h");
      const { rejection: _, ...event } = line;
      expect(normal(event)).toBe(customers[i]);
    });

    writeFileSync(join(folder, "p.dts"), `pipeline h4s\n${datagen(rows, 0, seed)}\nsink h = http { url: "${receiver.url}", on_client_error: "stop" }\nflow g -> h\n`);
    const stopped = await start(folder).done;
    expect(stopped.code).toBe(3);
    expect(stopped.stderr).toContain("answered 422 Unprocessable Entity");
    expect(stopped.stderr).toContain('on_client_error: "dead_letter"');
  }, 120_000);

  it("rides out a receiver refusing connections for 25 s: nothing lost, memory bounded, one log line per retry", async () => {
    const rows = 2000;
    const seed = 63;
    const expected = reference(rows, seed);
    const receiver = await Receiver.start(() => "ok");
    receivers.push(receiver);
    const folder = tempFolder("http-outage");
    writeFileSync(join(folder, "p.dts"), `pipeline ho\n${datagen(rows, 100, seed)}\nsink h = http { url: "${receiver.url}", batch_size: 10 }\nflow g -> h\n`);
    const rssFile = join(folder, "rss");
    const run = start(folder, { DTS_PEAK_RSS_FILE: rssFile });
    await waitFor("the source to start", () => run.stderr().includes("source started"));
    await sleep(3000);
    await receiver.refuse();
    await sleep(25_000);
    await receiver.listen();
    const result = await run.done;
    expect(result.code, result.stderr.slice(-3000)).toBe(0);
    const check = checkStream(eventsOf(receiver.accepted(), 10), await expected);
    expect(check.duplicates).toBe(0);
    const retries = retryLines(result.stderr);
    expect(retries.length).toBeGreaterThanOrEqual(3);
    expect(retries.some((line) => String(line.error).includes("ECONNREFUSED"))).toBe(true);
    expect(parseFloat(String(retries.at(-1)!.down_for))).toBeGreaterThanOrEqual(12);
    const peakKb = Number(readFileSync(rssFile, "utf8"));
    expect(peakKb).toBeLessThan(400 * 1024);
    console.log(`http outage: ${retries.length} retries (last down_for ${String(retries.at(-1)!.down_for)}), peak RSS ${Math.round(peakKb / 1024)} MB`);
  }, 120_000);
});
