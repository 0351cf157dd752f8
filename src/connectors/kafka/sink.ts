/**
 * The kafka sink: each write publishes its events' messages (messages.ts) with the idempotent
 * producer and `acks: all`, and resolves only when the broker has acknowledged every one of
 * them. The runner gives a sink one write at a time, in order, so when a write resolves
 * everything before it is acknowledged too: that is what lets the checkpoint move.
 *
 * A write's messages go out in requests of at most `REQUEST_BYTES` of keys and values, one
 * after the other: a broker refuses a record batch over its `message.max.bytes` (1 MB by
 * default), and kafkajs puts a request's messages for one partition into one batch. A single
 * message larger than `max_message_bytes` is rejected (dead-lettered with the reason) rather
 * than failing the whole pipeline on the broker's refusal.
 *
 * When a send fails, the producer is dropped and the next attempt starts a new one: an
 * idempotent producer whose send failed half-way may hold sequence numbers the broker never
 * saw, and would then fail every later send. The retried write publishes its messages again,
 * so after an outage some messages may be in a topic twice, in order (at-least-once).
 */
import { CompressionTypes, type Kafka, type Message, type Producer, type TopicMessages } from "kafkajs";
import { integerOption, stringOption } from "../../runtime/connector-options.js";
import { ConnectorError, type Rejection, type SinkBatch, type SinkContext, type SinkFactory, type SinkWriter } from "../../runtime/contracts.js";
import { createKafka, kafkaError } from "./client.js";
import { booleanOption, brokersOption, enumOption } from "./options.js";
import { EncodeError, encodeMessages, type Format, type OutMessage } from "./messages.js";

/** Keys and values per produce request: under the broker's default 1 MB batch limit. */
const REQUEST_BYTES = 900 * 1024;

export const createSink: SinkFactory = (context) => new KafkaSink(context);

class KafkaSink implements SinkWriter {
  private readonly kafka: Kafka;
  private readonly format: Format;
  private readonly tombstones: boolean;
  private readonly compression: CompressionTypes;
  private readonly maxMessageBytes: number;
  private producer: Producer | undefined;

  constructor(private readonly context: SinkContext) {
    const { options } = context;
    this.format = enumOption(stringOption(options, "kafka", "format", "debezium")!, ["debezium", "json"], "format");
    this.tombstones = booleanOption(options, "tombstones", true);
    const compression = enumOption(stringOption(options, "kafka", "compression", "none")!, ["none", "gzip"], "compression");
    this.compression = compression === "gzip" ? CompressionTypes.GZIP : CompressionTypes.None;
    this.maxMessageBytes = integerOption(options, "kafka", "max_message_bytes", 1_000_000, 1);
    if (context.eventOptions["topic"] === undefined && typeof options["topic"] !== "string") {
      throw new ConnectorError("kafka: option topic is required", false);
    }
    this.kafka = createKafka({
      brokers: brokersOption(options),
      clientId: stringOption(options, "kafka", "client_id", "dts")!,
      log: context.log,
    });
  }

  async start(): Promise<void> {
    await this.connected();
  }

  async write(batch: SinkBatch): Promise<readonly Rejection[]> {
    if (batch.events.length === 0) return [];
    const processedAtMs = Date.now();
    const fixedTopic = this.context.options["topic"];
    const encode = {
      format: this.format,
      tombstones: this.tombstones,
      name: this.context.pipeline,
      processedAtMs,
      topic: this.context.eventOptions["topic"] ?? (() => fixedTopic ?? null),
      key: this.context.eventOptions["key"] ?? (this.context.options["key"] !== undefined ? () => this.context.options["key"]! : undefined),
    };
    const rejections: Rejection[] = [];
    const messages: OutMessage[] = [];
    batch.events.forEach((sinkEvent, index) => {
      try {
        const out = encodeMessages(sinkEvent, encode);
        const size = Math.max(...out.map(messageBytes));
        if (size > this.maxMessageBytes) {
          rejections.push({ index, reason: `kafka: the message is ${size} bytes, over max_message_bytes (${this.maxMessageBytes}); the broker would refuse it` });
          return;
        }
        messages.push(...out);
      } catch (error) {
        if (!(error instanceof EncodeError)) throw error;
        rejections.push({ index, reason: `kafka: ${error.message}` });
      }
    });
    await this.send(messages);
    return rejections;
  }

  async close(): Promise<void> {
    const producer = this.producer;
    this.producer = undefined;
    await producer?.disconnect().catch(() => {});
  }

  private async connected(): Promise<Producer> {
    if (this.producer !== undefined) return this.producer;
    const producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: true });
    try {
      await producer.connect();
    } catch (error) {
      await producer.disconnect().catch(() => {});
      throw kafkaError("cannot connect to the brokers", error);
    }
    this.producer = producer;
    return producer;
  }

  private async send(messages: readonly OutMessage[]): Promise<void> {
    let start = 0;
    while (start < messages.length) {
      let bytes = 0;
      let end = start;
      while (end < messages.length && (end === start || bytes + messageBytes(messages[end]!) <= REQUEST_BYTES)) {
        bytes += messageBytes(messages[end]!);
        end++;
      }
      const producer = await this.connected();
      try {
        await producer.sendBatch({ topicMessages: byTopic(messages, start, end), acks: -1, compression: this.compression });
      } catch (error) {
        this.producer = undefined;
        await producer.disconnect().catch(() => {});
        throw kafkaError(`cannot publish ${end - start} message(s)`, error);
      }
      start = end;
    }
  }
}

/** Messages `start` to `end` grouped by topic, each topic's in their order. */
function byTopic(messages: readonly OutMessage[], start: number, end: number): TopicMessages[] {
  const topics = new Map<string, Message[]>();
  for (let i = start; i < end; i++) {
    const message = messages[i]!;
    let list = topics.get(message.topic);
    if (list === undefined) topics.set(message.topic, (list = []));
    list.push({ key: message.key, value: message.value });
  }
  return [...topics].map(([topic, list]) => ({ topic, messages: list }));
}

function messageBytes(message: OutMessage): number {
  return (message.key === null ? 0 : Buffer.byteLength(message.key)) + (message.value === null ? 0 : Buffer.byteLength(message.value));
}
