// Does the broker at argv[2] (default 127.0.0.1:9092) serve metadata? scripts/kafka.sh runs
// this after starting the broker and on every later call, because an open port is not enough:
// a KRaft broker accepts connections before its controller has elected itself and before it
// is unfenced. It uses kafkajs, the client dts's Kafka connectors use, so every run of
// scripts/services.sh also checks that this client still talks to this broker version.
// Prints "cluster ID, N broker(s), M topic(s)"; exits 1 with the client's error otherwise.
import { Kafka, logLevel } from "kafkajs";

const broker = process.argv[2] ?? "127.0.0.1:9092";
const kafka = new Kafka({
  clientId: "dts-kafka-probe",
  brokers: [broker],
  logLevel: logLevel.NOTHING,
  connectionTimeout: 2000,
  requestTimeout: 5000,
  retry: { retries: 0 },
});
const admin = kafka.admin();
try {
  await admin.connect();
  const cluster = await admin.describeCluster();
  const topics = await admin.listTopics();
  console.log(`cluster ${cluster.clusterId}, ${cluster.brokers.length} broker(s), ${topics.length} topic(s)`);
} catch (error) {
  console.error(`${error.name}: ${error.message}`);
  process.exitCode = 1;
} finally {
  await admin.disconnect().catch(() => {});
}
