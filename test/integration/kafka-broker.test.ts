/**
 * The test Kafka broker that scripts/kafka.sh runs (127.0.0.1:9092, override with
 * DTS_TEST_KAFKA), seen through kafkajs, the client dts's Kafka connectors use: it is one
 * KRaft node, it auto-creates topics with 3 partitions, and kafkajs can do against this
 * broker version everything a sink and a source need (idempotent and transactional writes,
 * read-committed group reads, committed offsets). Kafka 4 dropped old protocol versions
 * (KIP-896); a broker or client upgrade that breaks kafkajs fails here, not in a connector test.
 */
import { Kafka, logLevel, type Admin } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const BROKER = process.env.DTS_TEST_KAFKA ?? "127.0.0.1:9092";
const kafka = new Kafka({ clientId: "dts-test-kafka-broker", brokers: [BROKER], logLevel: logLevel.NOTHING });
const run = `${process.pid}-${Date.now()}`;
const topic = `dts-test-broker-${run}`;
const group = `dts-test-broker-${run}`;
let admin: Admin;

beforeAll(async () => {
  admin = kafka.admin();
  try {
    await admin.connect();
  } catch (error) {
    throw new Error(`the test Kafka broker at ${BROKER} is unreachable (${(error as Error).message}); run: bash scripts/services.sh`);
  }
});

afterAll(async () => {
  await admin.deleteTopics({ topics: [topic] }).catch(() => {});
  await admin.deleteGroups([group]).catch(() => {});
  await admin.disconnect();
});

describe("the test Kafka broker", () => {
  it("is one KRaft node on the advertised address", async () => {
    const cluster = await admin.describeCluster();
    expect(cluster.brokers).toEqual([{ nodeId: 1, host: BROKER.split(":")[0], port: Number(BROKER.split(":")[1]) }]);
    expect(cluster.controller).toBe(1);
    expect(cluster.clusterId).toMatch(/^[\w-]{22}$/);
  });

  it("auto-creates topics and round-trips idempotent and transactional writes through a read-committed group", async () => {
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: true });
    const transactional = kafka.producer({ transactionalId: `tx-${run}`, idempotent: true, maxInFlightRequests: 1 });
    const consumer = kafka.consumer({ groupId: group });
    try {
      await producer.connect();
      const plain = Array.from({ length: 6 }, (_, i) => ({ key: `k${i % 3}`, value: `plain ${i}` }));
      await producer.send({ topic, acks: -1, messages: plain });

      const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
      expect(metadata.topics[0]!.partitions).toHaveLength(3);

      await transactional.connect();
      const committed = await transactional.transaction();
      await committed.send({ topic, messages: [{ key: "k0", value: "tx committed 0" }, { key: "k1", value: "tx committed 1" }] });
      await committed.commit();
      const aborted = await transactional.transaction();
      await aborted.send({ topic, messages: [{ key: "k2", value: "tx aborted" }] });
      await aborted.abort();

      const wanted = [...plain, { key: "k0", value: "tx committed 0" }, { key: "k1", value: "tx committed 1" }];
      const received: { key: string; value: string; partition: number; offset: string }[] = [];
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`read ${received.length} of ${wanted.length} messages in 30 s`)), 30_000);
        void consumer.run({
          eachMessage: async ({ partition, message }) => {
            received.push({ key: String(message.key), value: String(message.value), partition, offset: message.offset });
            if (received.length === wanted.length) {
              clearTimeout(timer);
              resolve();
            }
          },
        });
      });
      // Per key, one partition and the order written; across keys, no order.
      const byKey = (rows: { key: string; value: string }[]) =>
        Object.fromEntries(["k0", "k1", "k2"].map((k) => [k, rows.filter((r) => r.key === k).map((r) => r.value)]));
      expect(byKey(received)).toEqual(byKey(wanted));
      for (const key of ["k0", "k1", "k2"]) {
        expect(new Set(received.filter((r) => r.key === key).map((r) => r.partition)).size).toBe(1);
      }

      // stop() lets the batch finish, and kafkajs commits after each batch: the group's
      // offset in each partition is one past the last message it read there.
      await consumer.stop();
      const offsets = await admin.fetchOffsets({ groupId: group, topics: [topic] });
      const next = (partition: number) => {
        const read = received.filter((r) => r.partition === partition).map((r) => Number(r.offset));
        return read.length === 0 ? "-1" : String(Math.max(...read) + 1);
      };
      expect(Object.fromEntries(offsets[0]!.partitions.map((p) => [p.partition, p.offset]))).toEqual(
        Object.fromEntries([0, 1, 2].map((p) => [p, next(p)])),
      );
    } finally {
      await consumer.disconnect().catch(() => {});
      await transactional.disconnect().catch(() => {});
      await producer.disconnect().catch(() => {});
    }
  });
});
