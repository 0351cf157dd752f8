// Prints a topic's messages from the beginning as JSON lines: {partition, offset, key, value}
// with key and value parsed as JSON when they are JSON (Debezium's are, with the JSON
// converter), else as strings. For looking at what a pipeline or Debezium wrote; stops after
// COUNT messages or when nothing new came for IDLE_MS.
// Usage: node scripts/kafka/read-topic.mjs TOPIC [COUNT] [IDLE_MS=5000] [BROKER=127.0.0.1:9092]
import { Kafka, logLevel } from "kafkajs";

const [topic, countArg, idleArg, broker = "127.0.0.1:9092"] = process.argv.slice(2);
if (!topic) {
  console.error("usage: node scripts/kafka/read-topic.mjs TOPIC [COUNT] [IDLE_MS] [BROKER]");
  process.exit(2);
}
const want = countArg ? Number(countArg) : Infinity;
const idleMs = Number(idleArg ?? 5000);
const decode = (buffer) => {
  if (buffer === null) return null;
  const text = buffer.toString("utf8");
  try { return JSON.parse(text); } catch { return text; }
};

const kafka = new Kafka({ clientId: "dts-read-topic", brokers: [broker], logLevel: logLevel.ERROR });
const admin = kafka.admin();
await admin.connect();
const offsets = await admin.fetchTopicOffsets(topic);
await admin.disconnect();
// kafkajs reads only through a consumer group: a fresh one reads every partition from offset
// 0; it commits nothing and is deleted at the end, so it leaves nothing behind.
const groupId = `dts-read-topic-${process.pid}-${Date.now()}`;
const consumer = kafka.consumer({ groupId });
await consumer.connect();
await consumer.subscribe({ topic, fromBeginning: true });
let seen = 0;
let timer;
const done = new Promise((resolve) => {
  const arm = () => { clearTimeout(timer); timer = setTimeout(resolve, idleMs); };
  arm();
  consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      console.log(JSON.stringify({ partition, offset: message.offset, key: decode(message.key), value: decode(message.value) }));
      seen += 1;
      if (seen >= want) resolve(); else arm();
    },
  });
});
await done;
clearTimeout(timer);
await consumer.disconnect();
const admin2 = kafka.admin();
await admin2.connect();
await admin2.deleteGroups([groupId]).catch(() => {});
await admin2.disconnect();
console.error(`${seen} message(s); partitions ${offsets.map((o) => `${o.partition}:${o.low}-${o.high}`).join(" ")}`);
