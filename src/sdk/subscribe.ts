/**
 * The subscription SDK: an application reads change events from Kafka topics in the Debezium
 * envelope (what the `kafka` sink writes, or Debezium) as a typed async iterator, as a member
 * of a consumer group, so that many instances of the application share the partitions.
 *
 * Commit after processing: a message counts as processed when the application asks for the
 * next one (the next turn of its `for await` loop). A partition's offsets are committed once
 * every message of a fetched batch of it was processed, and when the subscription closes, up to
 * the last processed message. Backpressure: a partition is not fetched again until its batch is
 * processed, so the subscription holds at most one fetched batch per partition however slow the
 * application is. Delivery is at-least-once: after a crash, or a loop left by `break` or an
 * exception, the messages after the last commit — the one being processed included — come again.
 */
import type { Consumer, EachBatchPayload } from "kafkajs";
import { createKafka, kafkaError } from "../connectors/kafka/client.js";
import { decodeEnvelope } from "../connectors/kafka/envelope.js";
import type { ChangeEvent } from "../model/event.js";
import type { Row } from "../model/value.js";
import type { Logger } from "../runtime/contracts.js";

/** Where and how to subscribe. */
export interface SubscribeOptions {
  /** The bootstrap brokers, as `host:port`. */
  readonly brokers: readonly string[];
  /** The topics to read: Debezium envelopes, as the `kafka` sink writes them. */
  readonly topics: readonly string[];
  /** The consumer group: instances with the same group share the partitions. */
  readonly group: string;
  /** Where a group without committed offsets starts: the oldest message (default) or only new ones. */
  readonly start?: "earliest" | "latest";
  /** The client id the brokers see; `dts-sdk` by default. */
  readonly clientId?: string;
  /** Aborting it ends the iteration (after committing what was processed). */
  readonly signal?: AbortSignal;
  /** Where the client's own messages go; nowhere by default. */
  readonly log?: Logger;
}

/** One change event and where it is in Kafka. `T` is the row's shape, for typed `before` and `after`. */
export interface ChangeMessage<T extends Row = Row> {
  readonly event: ChangeEvent & { readonly before: T | null; readonly after: T | null };
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  /** The message key as text (the primary key as JSON, for the `kafka` sink and Debezium). */
  readonly key: string | null;
}

/** A running subscription: iterate it with `for await`; `close` ends it. */
export interface Subscription<T extends Row = Row> extends AsyncIterable<ChangeMessage<T>> {
  /** Commits what was processed and leaves the group. Iteration then ends. */
  close(): Promise<void>;
}

const noLog: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * Subscribes to change topics in a consumer group.
 *
 * ```ts
 * import { subscribe } from "dts";
 * const orders = subscribe<{ id: number; status: string }>({
 *   brokers: ["127.0.0.1:9092"], topics: ["shop.public.orders"], group: "mailer",
 * });
 * for await (const { event } of orders) {
 *   if (event.op === "update" && event.after?.status === "shipped") await sendMail(event.after.id);
 * }
 * ```
 *
 * The offsets of a message are committed only after the loop body finished with it and went
 * on to the next one, so a crash while processing never skips a message.
 */
export function subscribe<T extends Row = Row>(options: SubscribeOptions): Subscription<T> {
  return new KafkaSubscription<T>(options);
}

interface Pending {
  readonly message: ChangeMessage;
  /** The offset to commit once this message is processed: its own plus one. */
  readonly commit: { topic: string; partition: number; offset: string };
  /** The last message of its batch: processing it releases the batch. */
  readonly release?: () => void;
}

class KafkaSubscription<T extends Row> implements Subscription<T> {
  private readonly consumer: Consumer;
  private readonly queue: Pending[] = [];
  private wake: (() => void) | undefined;
  private started: Promise<void> | undefined;
  private closed = false;
  private failure: Error | undefined;
  /** The message handed out last, not yet known to be processed. */
  private current: Pending | undefined;
  private readonly releases = new Set<() => void>();
  /** Per partition, the offset after its last processed message whose batch is not yet released. */
  private readonly lastProcessed = new Map<string, { topic: string; partition: number; offset: string }>();

  constructor(private readonly options: SubscribeOptions) {
    const kafka = createKafka({ brokers: options.brokers, clientId: options.clientId ?? "dts-sdk", log: options.log ?? noLog });
    this.consumer = kafka.consumer({ groupId: options.group, sessionTimeout: 10_000, heartbeatInterval: 1_000 });
    this.consumer.on(this.consumer.events.CRASH, (event) => {
      if (!event.payload.restart) this.fail(kafkaError("the consumer stopped", event.payload.error));
    });
    options.signal?.addEventListener("abort", () => void this.close(), { once: true });
  }

  private start(): Promise<void> {
    this.started ??= (async () => {
      try {
        await this.consumer.connect();
        for (const topic of this.options.topics) await this.consumer.subscribe({ topic, fromBeginning: (this.options.start ?? "earliest") === "earliest" });
        await this.consumer.run({ autoCommit: false, partitionsConsumedConcurrently: 64, eachBatch: (payload) => this.onBatch(payload) });
      } catch (error) {
        throw kafkaError(`cannot join consumer group ${this.options.group}`, error);
      }
    })();
    return this.started;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<ChangeMessage<T>> {
    await this.start();
    try {
      for (;;) {
        // Asking for the next message means the last one is processed.
        await this.processed();
        if (this.failure !== undefined) throw this.failure;
        if (this.closed) return;
        const next = this.queue.shift();
        if (next === undefined) {
          await new Promise<void>((resolve) => (this.wake = resolve));
          this.wake = undefined;
          continue;
        }
        this.current = next;
        yield next.message as ChangeMessage<T>;
      }
    } finally {
      // Left by break or an exception: the message in hand counts as not processed.
      this.current = undefined;
      await this.close();
    }
  }

  private async processed(): Promise<void> {
    const done = this.current;
    this.current = undefined;
    if (done === undefined) return;
    if (done.release !== undefined) {
      this.lastProcessed.delete(`${done.commit.topic}\u0000${done.commit.partition}`);
      await this.consumer.commitOffsets([done.commit]).catch((error: unknown) => this.fail(kafkaError("cannot commit offsets", error)));
      this.releases.delete(done.release);
      done.release();
    } else {
      this.lastProcessed.set(`${done.commit.topic}\u0000${done.commit.partition}`, done.commit);
    }
  }

  private async onBatch({ batch, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    if (!isRunning() || isStale() || batch.isEmpty()) return;
    const messages: Pending[] = [];
    for (const message of batch.messages) {
      let event: ChangeEvent | undefined;
      try {
        event = decodeEnvelope({ topic: batch.topic, partition: batch.partition, offset: message.offset, key: message.key, value: message.value });
      } catch (error) {
        this.fail(new Error(`${batch.topic} partition ${batch.partition} offset ${message.offset}: ${(error as Error).message}`));
        return;
      }
      const commit = { topic: batch.topic, partition: batch.partition, offset: (BigInt(message.offset) + 1n).toString() };
      if (event === undefined) continue;
      messages.push({ message: { event, topic: batch.topic, partition: batch.partition, offset: message.offset, key: message.key?.toString("utf8") ?? null }, commit });
    }
    const last = { topic: batch.topic, partition: batch.partition, offset: (BigInt(batch.lastOffset()) + 1n).toString() };
    if (messages.length === 0) {
      // Only tombstones and non-row events: nothing to hand out, so past them at once.
      await this.consumer.commitOffsets([last]).catch((error: unknown) => this.fail(kafkaError("cannot commit offsets", error)));
      return;
    }
    let released = false;
    const done = new Promise<void>((resolve) => {
      const release = (): void => {
        released = true;
        resolve();
      };
      this.releases.add(release);
      // Processing the batch's last event commits the whole batch and releases the partition.
      messages[messages.length - 1] = { ...messages[messages.length - 1]!, commit: last, release };
    });
    this.queue.push(...messages);
    this.wake?.();
    while (!released && !this.closed) {
      await Promise.race([done, new Promise((resolve) => setTimeout(resolve, 1_000))]);
      if (!released && !this.closed) await heartbeat().catch(() => {});
    }
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.wake?.();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.wake?.();
    const commits = [...this.lastProcessed.values()];
    this.lastProcessed.clear();
    for (const release of this.releases) release();
    this.releases.clear();
    this.queue.length = 0;
    if (this.started !== undefined) {
      if (commits.length > 0) await this.consumer.commitOffsets(commits).catch(() => {});
      await this.consumer.disconnect().catch(() => {});
    }
  }
}
