/**
 * What the Kafka tests share: the shared test broker (scripts/kafka.sh, 127.0.0.1:9092, or
 * DTS_TEST_KAFKA), names no other run uses, and reading a topic back whole — every message
 * with its partition and offset, key and value as text — to compare with the source.
 */
import { randomBytes } from "node:crypto";
import { Kafka, logLevel, type Admin } from "kafkajs";

export const BROKER = process.env.DTS_TEST_KAFKA ?? "127.0.0.1:9092";

export function kafkaClient(broker = BROKER): Kafka {
  return new Kafka({ clientId: "dts-test", brokers: [broker], logLevel: logLevel.NOTHING });
}

/** A name for topics and groups of this run: `dts_<label>_<random>`. */
export function uniqueName(label: string): string {
  return `dts_${label}_${randomBytes(4).toString("hex")}`;
}

/** An admin client of the shared broker; fails with the way to start it when it does not answer. */
export async function requireBroker(broker = BROKER): Promise<Admin> {
  const admin = kafkaClient(broker).admin();
  try {
    await admin.connect();
    await admin.describeCluster();
  } catch (error) {
    await admin.disconnect().catch(() => {});
    throw new Error(`the test Kafka broker at ${broker} is unreachable (${(error as Error).message}); run: bash scripts/kafka.sh`);
  }
  return admin;
}

export interface TopicMessage {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly key: string | null;
  /** null: a tombstone. */
  readonly value: string | null;
}

/**
 * Every message of the topics, read from the start until the topics' end offsets (as they are
 * when called) are reached, in (topic, partition, offset) order. A group of its own, deleted after.
 */
export async function readTopics(topics: readonly string[], options: { broker?: string; timeoutMs?: number } = {}): Promise<TopicMessage[]> {
  const kafka = kafkaClient(options.broker);
  const admin = kafka.admin();
  await admin.connect();
  const ends = new Map<string, number>();
  try {
    for (const topic of topics) {
      for (const p of await admin.fetchTopicOffsets(topic)) {
        if (Number(p.high) > Number(p.low)) ends.set(`${topic}/${p.partition}`, Number(p.high));
      }
    }
  } finally {
    await admin.disconnect();
  }
  const messages: TopicMessage[] = [];
  if (ends.size === 0) return messages;
  const groupId = uniqueName("read");
  const consumer = kafka.consumer({ groupId });
  const left = new Map(ends);
  try {
    await consumer.connect();
    for (const topic of topics) await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`reading ${topics.join(", ")}: ${messages.length} messages in ${options.timeoutMs ?? 60_000} ms, partitions not at their end: ${[...left.keys()].join(" ")}`)),
        options.timeoutMs ?? 60_000,
      );
      void consumer
        .run({
          autoCommit: false,
          eachMessage: async ({ topic, partition, message }) => {
            const id = `${topic}/${partition}`;
            const end = left.get(id);
            const offset = Number(message.offset);
            if (end === undefined || offset >= end) return;
            messages.push({ topic, partition, offset, key: message.key?.toString("utf8") ?? null, value: message.value?.toString("utf8") ?? null });
            if (offset + 1 >= end) left.delete(id);
            if (left.size === 0) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect().catch(() => {});
    const cleanup = kafka.admin();
    await cleanup.connect().catch(() => {});
    await cleanup.deleteGroups([groupId]).catch(() => {});
    await cleanup.disconnect().catch(() => {});
  }
  return messages.sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition || a.offset - b.offset);
}

/** How many messages the topics hold now (end offsets minus start offsets). */
export async function countMessages(admin: Admin, topics: readonly string[]): Promise<number> {
  let n = 0;
  for (const topic of topics) {
    try {
      for (const p of await admin.fetchTopicOffsets(topic)) n += Number(p.high) - Number(p.low);
    } catch {
      // not created yet
    }
  }
  return n;
}

/** The messages of each key, in the order its partition holds them. */
export function byKey(messages: readonly TopicMessage[]): Map<string, TopicMessage[]> {
  const keys = new Map<string, TopicMessage[]>();
  for (const message of messages) {
    const id = `${message.topic} ${message.key}`;
    let list = keys.get(id);
    if (list === undefined) keys.set(id, (list = []));
    list.push(message);
  }
  return keys;
}

export async function deleteTopics(admin: Admin, prefix: string): Promise<void> {
  const topics = (await admin.listTopics().catch(() => [] as string[])).filter((t) => t.startsWith(prefix));
  if (topics.length > 0) await admin.deleteTopics({ topics }).catch(() => {});
}
