/**
 * `npm run bench queues [EVENTS]`: messages per second of the rabbitmq, nats and http sinks
 * from a recorded jsonl stream, each against a minimal publisher of the same messages with
 * the same acknowledgements, in the same run, as ratios (dts ÷ minimal; 1.0 is as fast).
 *
 *   rabbitmq  `dts-run` jsonl → rabbitmq (persistent, mandatory, publisher confirms) against
 *             an amqplib confirm channel publishing the same lines, waiting for `drain` when
 *             the socket is full and for every confirm at the end;
 *   nats      `dts-run` jsonl → nats (JetStream acknowledgements, Nats-Msg-Id) against the
 *             nats client publishing the same lines to JetStream with 512 acks outstanding;
 *   http      `dts-run` jsonl → http (batch_size 100) against fetch posting the same lines
 *             in arrays of 100, one request at a time, to the same receiver in this process.
 *
 * The stream is EVENTS (default 20,000) events of the datagen shop workload, recorded once
 * into a jsonl file. Each contender is a child process timed as a whole, start-up included,
 * so dts pays for loading its pipeline and the baseline for loading its client; the better of
 * two runs counts, in the order baseline, dts, dts, baseline. The brokers are the shared ones
 * (RabbitMQ on 5672, NATS on 4222); the exchange, queue and stream are the run's own, and the
 * queue keeps at most one message, so the broker's memory does not grow with the run.
 */
import { compared, type BenchContext } from "./report.js";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const DTS_RUN = fileURLToPath(new URL("../src/cli/dts-run.js", import.meta.url));
const SELF = fileURLToPath(new URL("./run.js", import.meta.url));
const AMQP_URL = process.env.AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672";
const NATS_URL = process.env.NATS_URL ?? "nats://127.0.0.1:4222";
const TARGET = 0.7;

export async function benchQueues(args: readonly string[], bench: BenchContext): Promise<void> {
  if (args[0] === "baseline") return baseline(args.slice(1));
  const events = Number(args[0] ?? (bench.quick ? 5_000 : 20_000));
  const dir = await mkdtemp(join(tmpdir(), "dts-bench-queues-"));
  const line = (text: string) => process.stdout.write(`${text}\n`);
  const tag = randomBytes(3).toString("hex");
  try {
    line(`dts bench queues: ${events.toLocaleString("en-US")} events from a recorded jsonl stream; ${cpus().length} cores, load ${loadavg()[0]!.toFixed(2)}`);
    await writeFile(join(dir, "record.dts"), `pipeline record\nsource g = datagen { rows: ${events}, seed: 7 }\nsink out = jsonl { path: "stream.jsonl" }\nflow g -> out\n`);
    await run(process.execPath, [DTS_RUN, join(dir, "record.dts")], dir);
    const stream = join(dir, "stream.jsonl");

    // RabbitMQ: an exchange and a queue of this run's own; the queue drops what it cannot keep.
    const { connect } = await import("amqplib");
    const model = await connect(AMQP_URL);
    const channel = await model.createChannel();
    const exchange = `dts_bench_${tag}`;
    const queue = `dts_bench_${tag}`;
    await channel.assertExchange(exchange, "topic", { durable: true });
    await channel.assertQueue(queue, { durable: true, arguments: { "x-max-length": 1, "x-overflow": "drop-head" } });
    await channel.bindQueue(queue, exchange, "#");
    const results: [string, number, number][] = [];
    try {
      await writeFile(
        join(dir, "rabbit.dts"),
        `pipeline bench_rabbit\nsource s = jsonl { path: "stream.jsonl" }\nsink r = rabbitmq { url: "${AMQP_URL}", exchange: "${exchange}", routing_key: "\${source.table}.\${op}" }\nflow s -> r\n`,
      );
      results.push(["rabbitmq", ...(await contest(dir, "rabbit.dts", ["rabbitmq", stream, exchange]))]);
    } finally {
      await channel.deleteQueue(queue).catch(() => undefined);
      await channel.deleteExchange(exchange).catch(() => undefined);
      await model.close();
    }

    // NATS: a stream of this run's own, file-stored as a durable stream is.
    const nats = await import("nats");
    const nc = await nats.connect({ servers: new URL(NATS_URL).host });
    const jsm = await nc.jetstreamManager();
    const streamName = `DTS_BENCH_${tag}`;
    const prefix = `dts_bench_${tag}`;
    await jsm.streams.add({ name: streamName, subjects: [`${prefix}.>`], storage: nats.StorageType.File, max_msgs: events * 4 });
    try {
      await writeFile(
        join(dir, "nats.dts"),
        `pipeline bench_nats\nsource s = jsonl { path: "stream.jsonl" }\nsink n = nats { url: "${NATS_URL}", subject: "${prefix}.\${source.table}.\${op}", stream: "${streamName}" }\nflow s -> n\n`,
      );
      // Each contender publishes under its own ids: dts's are its event ids, so its second run
      // would be dropped as duplicates; a purge between runs keeps every run a real one.
      results.push(["nats", ...(await contest(dir, "nats.dts", ["nats", stream, prefix], () => jsm.streams.purge(streamName).then(() => undefined)))]);
    } finally {
      await jsm.streams.delete(streamName).catch(() => undefined);
      await nc.close();
    }

    // HTTP: a receiver in this process that reads each body and answers 200.
    const server = createServer((request, response) => {
      request.resume();
      request.on("end", () => response.writeHead(200).end());
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    const address = server.address();
    const url = `http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}/hook`;
    try {
      await writeFile(join(dir, "http.dts"), `pipeline bench_http\nsource s = jsonl { path: "stream.jsonl" }\nsink h = http { url: "${url}", batch_size: 100 }\nflow s -> h\n`);
      results.push(["http", ...(await contest(dir, "http.dts", ["http", stream, url]))]);
    } finally {
      server.close();
    }

    line("");
    line("| sink | minimal publisher msgs/s | dts msgs/s | ratio |");
    line("|---|---:|---:|---:|");
    for (const [name, base, dts] of results) {
      const ratio = base / dts;
      line(`| ${name} | ${Math.round(events / base).toLocaleString("en-US")} | ${Math.round(events / dts).toLocaleString("en-US")} | ${ratio.toFixed(2)} ${ratio >= TARGET ? "(met)" : `(target ${TARGET})`} |`);
      bench.record(compared(`queues: ${name} sink vs a minimal publisher with confirms`, Math.round(events / dts), "msgs/s", Math.round(events / base), ratio, TARGET));
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Baseline, dts, dts, baseline; the better time of each. */
async function contest(dir: string, pipeline: string, baselineArgs: readonly string[], between?: () => Promise<void>): Promise<[number, number]> {
  const base: number[] = [];
  const dts: number[] = [];
  for (const who of ["base", "dts", "dts", "base"] as const) {
    await between?.();
    if (who === "base") base.push(await run(process.execPath, [SELF, "queues", "baseline", ...baselineArgs], dir));
    else dts.push(await run(process.execPath, [DTS_RUN, join(dir, pipeline), "--log-level", "warn"], dir));
    // A new pipeline run starts from the beginning of the file.
    await rm(join(dir, ".dts-state"), { force: true });
  }
  return [Math.min(...base), Math.min(...dts)];
}

function run(command: string, args: readonly string[], cwd: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve((performance.now() - started) / 1000);
      else reject(new Error(`${command} ${args.join(" ")} exited with ${code}:\n${output.slice(-3000)}`));
    });
  });
}

/** The minimal publishers, run in a child process of their own: `baseline KIND FILE TARGET`. */
async function baseline(args: readonly string[]): Promise<void> {
  const [kind, file, target] = args as [string, string, string];
  const lines = readFileSync(file, "utf8").split("\n").filter((text) => text !== "");
  const routing = (text: string): string => {
    const event = JSON.parse(text) as { op: string; source: { table: string } };
    return `${event.source.table}.${event.op}`;
  };
  if (kind === "rabbitmq") {
    const { connect } = await import("amqplib");
    const model = await connect(AMQP_URL);
    const channel = await model.createConfirmChannel();
    for (const text of lines) {
      const room = channel.publish(target, routing(text), Buffer.from(text), { persistent: true, mandatory: true, contentType: "application/json" });
      if (!room) await new Promise((resolve) => channel.once("drain", resolve));
    }
    await channel.waitForConfirms();
    await model.close();
  } else if (kind === "nats") {
    const nats = await import("nats");
    const nc = await nats.connect({ servers: new URL(NATS_URL).host });
    const js = nc.jetstream();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < lines.length) {
        const i = next++;
        await js.publish(`${target}.${routing(lines[i]!)}`, Buffer.from(lines[i]!), { msgID: `baseline-${i}` });
      }
    };
    await Promise.all(Array.from({ length: 512 }, worker));
    await nc.close();
  } else {
    for (let i = 0; i < lines.length; i += 100) {
      const response = await fetch(target, { method: "POST", headers: { "content-type": "application/json" }, body: `[${lines.slice(i, i + 100).join(",")}]` });
      await response.text();
      if (!response.ok) throw new Error(`the receiver answered ${response.status}`);
    }
  }
}
