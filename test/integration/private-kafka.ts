/**
 * A Kafka broker of a test's own, for what must never be done to the shared one at 9092:
 * stopping it mid-stream. `createPrivateKafka()` runs one KRaft node (broker and controller)
 * from the jars scripts/kafka.sh caches (fetched by `bash scripts/kafka.sh fetch` when
 * missing), on two free ports of 127.0.0.1, with its data in a fresh temporary folder, and
 * returns it serving; `stop` kills it (SIGKILL: what a crash or a cut cable leaves — the log
 * is recovered on the next start), `start` runs it again on the same ports and data, `remove`
 * stops it and deletes the folder. Topics are auto-created with 3 partitions, as on the
 * shared broker. A broker a test forgot to remove is killed when the test process exits.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { Kafka, logLevel } from "kafkajs";
import { ROOT } from "../cli-process.js";
import { freePort } from "./private-postgres.js";

export interface PrivateKafka {
  /** `127.0.0.1:PORT`. */
  readonly broker: string;
  readonly dir: string;
  readonly running: boolean;
  start(): Promise<void>;
  /** Kills the broker process (SIGKILL) and waits until it is gone. */
  stop(): Promise<void>;
  remove(): Promise<void>;
  /** The broker's own log, for a failure message. */
  log(): string;
}

function jarsDir(): string {
  const cache = process.env.DTS_KAFKA_CACHE ?? (process.getuid?.() === 0 ? "/var/cache/dts/kafka" : join(homedir(), ".cache/dts/kafka"));
  const dir = join(cache, "broker-libs");
  if (!existsSync(join(dir, ".pom-sha"))) {
    try {
      execFileSync("bash", [join(ROOT, "scripts/kafka.sh"), "fetch"], { stdio: "pipe" });
    } catch (error) {
      throw new Error(`the Kafka jars are missing from ${dir} and bash scripts/kafka.sh fetch failed: ${(error as { stderr?: Buffer }).stderr?.toString() ?? error}`);
    }
  }
  return dir;
}

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

export async function createPrivateKafka(): Promise<PrivateKafka> {
  const jars = jarsDir();
  const dir = mkdtempSync(join(tmpdir(), "dts-private-kafka-"));
  const port = await freePort();
  const controller = await freePort();
  const broker = `127.0.0.1:${port}`;
  writeFileSync(
    join(dir, "server.properties"),
    `process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${controller}
listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controller}
advertised.listeners=PLAINTEXT://127.0.0.1:${port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=${join(dir, "data")}
auto.create.topics.enable=true
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=1
num.io.threads=2
num.recovery.threads.per.data.dir=1
`,
  );
  const classpath = `${jars}/*`;
  const id = execFileSync("java", ["-cp", classpath, "kafka.tools.StorageTool", "random-uuid"], { encoding: "utf8" }).trim();
  execFileSync("java", ["-cp", classpath, "kafka.tools.StorageTool", "format", "-t", id, "-c", join(dir, "server.properties")], { stdio: "pipe" });

  let child: ChildProcess | undefined;
  const logFile = join(dir, "broker.out");

  const waitServing = async (): Promise<void> => {
    const deadline = Date.now() + 90_000;
    const admin = new Kafka({ clientId: "dts-private-kafka", brokers: [broker], logLevel: logLevel.NOTHING, retry: { retries: 0 } }).admin();
    for (;;) {
      if (!kafka.running) throw new Error(`the private Kafka broker exited at start:\n${tail()}`);
      try {
        await admin.connect();
        await admin.describeCluster();
        await admin.disconnect();
        return;
      } catch {
        await admin.disconnect().catch(() => {});
      }
      if (Date.now() > deadline) throw new Error(`the private Kafka broker on ${broker} does not serve after 90 s:\n${tail()}`);
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  };
  const tail = (): string => (existsSync(logFile) ? readFileSync(logFile, "utf8").split("\n").slice(-20).join("\n") : "");

  const kafka: PrivateKafka = {
    broker,
    dir,
    get running() {
      return child !== undefined && child.exitCode === null && child.signalCode === null;
    },
    async start() {
      if (kafka.running) return;
      const out = openSync(logFile, "a");
      child = spawn(
        "java",
        ["-Xmx256m", "-Xms64m", "-XX:+UseSerialGC", "-Djava.awt.headless=true", `-Dlog4j2.configurationFile=${join(ROOT, "scripts/kafka/log4j2.properties")}`, `-Ddts.log.file=${join(dir, "broker.log")}`, "-cp", classpath, "kafka.Kafka", join(dir, "server.properties")],
        { stdio: ["ignore", out, out] },
      );
      live.add(child);
      await waitServing();
    },
    async stop() {
      const running = child;
      if (running === undefined || running.exitCode !== null || running.signalCode !== null) return;
      const exited = new Promise((resolve) => running.once("exit", resolve));
      running.kill("SIGKILL");
      await exited;
      live.delete(running);
    },
    async remove() {
      await kafka.stop();
      rmSync(dir, { recursive: true, force: true });
    },
    log: tail,
  };
  await kafka.start();
  return kafka;
}
