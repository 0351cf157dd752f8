/**
 * The kafka source: a member of a consumer group reading Debezium envelopes (envelope.ts).
 *
 * Each fetched batch of one partition becomes one `SourceBatch`, with a checkpoint that holds
 * the next offset of every partition read so far. Offsets are committed to the group only in
 * `acknowledge`, that is once every sink has the batch's events durable and the checkpoint is
 * saved, so a worker that dies loses nothing: the partition's next owner reads from the last
 * commit (at-least-once).
 *
 * The handler kafkajs calls for a batch (`eachBatch`) does not return until that batch is
 * acknowledged, sending heartbeats while it waits. That is the backpressure (a partition is
 * not fetched again while its batch is in flight, so memory holds at most one batch per
 * partition), and it is what keeps a rebalance safe: a member rejoins only after its batches
 * are durable and committed, so a partition's new owner never writes a key while its old
 * owner still has an older change of that key in flight, which would leave the older value
 * last. Partitions are fetched concurrently, so a slow partition does not hold the others.
 *
 * The checkpoint the runner saves is for `dts status`; the group's committed offsets are what
 * a worker resumes from, as any other member would.
 */
import type { Consumer, EachBatchPayload } from "kafkajs";
import type { ChangeEvent } from "../../model/event.js";
import { position } from "../../model/position.js";
import { stringOption } from "../../runtime/connector-options.js";
import { ConnectorError, type SourceBatch, type SourceCheckpoint, type SourceContext, type SourceFactory, type SourceReader } from "../../runtime/contracts.js";
import { createKafka, kafkaError, kafkaErrorMessage } from "./client.js";
import { decodeEnvelope, EnvelopeError } from "./envelope.js";
import { brokersOption, enumOption } from "./options.js";

/** A member that sends no heartbeat for this long leaves the group and its partitions move. */
const SESSION_TIMEOUT_MS = 10_000;
const HEARTBEAT_MS = 1_000;
/** With nothing fetched for this long, the source says it has caught up. */
const IDLE_MS = 2_000;

export const createSource: SourceFactory = (context) => new KafkaSource(context);

interface Fetched {
  readonly seq: number;
  readonly topic: string;
  readonly partition: number;
  readonly nextOffset: string;
  readonly lastOffset: string;
  readonly events: ChangeEvent[];
  /** Settled when the batch is acknowledged (or the source closes). */
  readonly done: () => void;
}

class KafkaSource implements SourceReader {
  private readonly consumer: Consumer;
  private readonly topics: string[];
  private readonly fromBeginning: boolean;
  private readonly group: string;
  private readonly queue: Fetched[] = [];
  /** Yielded and not yet acknowledged, oldest first. */
  private readonly inFlight: Fetched[] = [];
  private wake: (() => void) | undefined;
  private seq = 0;
  /** Next offset per `topic\u0000partition`, over every batch yielded so far. */
  private readonly offsets = new Map<string, string>();
  private assigned = new Set<string>();
  private failure: Error | undefined;
  private closed = false;

  constructor(private readonly context: SourceContext) {
    const { options } = context;
    const topics = options["topics"];
    if (!Array.isArray(topics) || topics.length === 0 || !topics.every((t) => typeof t === "string" && t !== "")) {
      throw new ConnectorError("kafka: option topics must be a non-empty list of topic names", false);
    }
    this.topics = topics as string[];
    enumOption(stringOption(options, "kafka", "format", "debezium")!, ["debezium"], "format");
    this.fromBeginning = enumOption(stringOption(options, "kafka", "start", "earliest")!, ["earliest", "latest"], "start") === "earliest";
    this.group = stringOption(options, "kafka", "group", context.pipeline)!;
    const kafka = createKafka({ brokers: brokersOption(options), clientId: stringOption(options, "kafka", "client_id", "dts")!, log: context.log });
    this.consumer = kafka.consumer({
      groupId: this.group,
      sessionTimeout: SESSION_TIMEOUT_MS,
      heartbeatInterval: HEARTBEAT_MS,
      allowAutoTopicCreation: false,
    });
    this.consumer.on(this.consumer.events.GROUP_JOIN, (event) => {
      const assignment = event.payload.memberAssignment;
      this.assigned = new Set(Object.entries(assignment).flatMap(([topic, partitions]) => partitions.map((p) => `${topic}\u0000${p}`)));
      this.context.log.info("kafka: joined the consumer group", {
        group: this.group,
        partitions: Object.entries(assignment).map(([topic, partitions]) => `${topic}: ${[...partitions].sort((a, b) => a - b).join(",")}`),
      });
    });
    this.consumer.on(this.consumer.events.CRASH, (event) => {
      // kafkajs restarts the consumer itself after a retriable failure (a broker gone).
      if (!event.payload.restart) this.fail(kafkaError("the consumer stopped", event.payload.error));
    });
  }

  async start(): Promise<void> {
    try {
      await this.consumer.connect();
      for (const topic of this.topics) await this.consumer.subscribe({ topic, fromBeginning: this.fromBeginning });
    } catch (error) {
      throw kafkaError(`cannot join consumer group ${this.group}`, error);
    }
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: true,
      partitionsConsumedConcurrently: 64,
      eachBatch: (payload) => this.onBatch(payload),
    });
  }

  batches(): AsyncIterable<SourceBatch> {
    return this.read();
  }

  private async *read(): AsyncGenerator<SourceBatch> {
    const { signal } = this.context;
    const onAbort = (): void => this.wake?.();
    signal.addEventListener("abort", onAbort);
    try {
      let idleSince = Date.now();
      let saidCaughtUp = false;
      for (;;) {
        if (this.failure !== undefined) throw this.failure;
        if (signal.aborted) return;
        const fetched = this.queue.shift();
        if (fetched === undefined) {
          const waited = await this.nextFetch(saidCaughtUp ? 1_000 : Math.max(0, IDLE_MS - (Date.now() - idleSince)));
          if (!waited && !saidCaughtUp && Date.now() - idleSince >= IDLE_MS) {
            saidCaughtUp = true;
            yield { events: [], caughtUp: true };
          }
          continue;
        }
        idleSince = Date.now();
        saidCaughtUp = false;
        this.offsets.set(`${fetched.topic}\u0000${fetched.partition}`, fetched.nextOffset);
        this.inFlight.push(fetched);
        yield { events: fetched.events, checkpoint: this.checkpoint(fetched) };
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  /** Resolves true when a batch arrived, false after `ms`. */
  private nextFetch(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve(false);
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve(true);
      };
    });
  }

  private checkpoint(fetched: Fetched): SourceCheckpoint {
    const offsets: Record<string, Record<string, string>> = {};
    for (const [id, offset] of this.offsets) {
      const [topic, partition] = id.split("\u0000") as [string, string];
      (offsets[topic] ??= {})[partition] = offset;
    }
    return {
      position: position("kafka", `${fetched.topic}/${fetched.partition}/${fetched.lastOffset}`),
      state: { group: this.group, seq: fetched.seq, offsets },
    };
  }

  private async onBatch({ batch, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    if (!isRunning() || isStale() || batch.isEmpty()) return;
    const events: ChangeEvent[] = [];
    for (const message of batch.messages) {
      try {
        const event = decodeEnvelope({ topic: batch.topic, partition: batch.partition, offset: message.offset, key: message.key, value: message.value });
        if (event !== undefined) events.push(event);
      } catch (error) {
        if (!(error instanceof EnvelopeError)) throw error;
        this.fail(
          new ConnectorError(
            `kafka: ${batch.topic} partition ${batch.partition} offset ${message.offset}: ${error.message}; the source reads only Debezium JSON envelopes (the kafka sink's format "debezium", or Debezium with the JSON converter)`,
            false,
          ),
        );
        return;
      }
    }
    let acknowledged = false;
    const done = new Promise<void>((resolve) => {
      this.queue.push({
        seq: ++this.seq,
        topic: batch.topic,
        partition: batch.partition,
        nextOffset: (BigInt(batch.lastOffset()) + 1n).toString(),
        lastOffset: batch.lastOffset(),
        events,
        done: () => {
          acknowledged = true;
          resolve();
        },
      });
    });
    this.wake?.();
    // Hold the partition until the batch is durable, beating the group's heart meanwhile. A
    // heartbeat failing because a rebalance started is expected: the member rejoins once the
    // batch is committed.
    while (!acknowledged && !this.closed) {
      await Promise.race([done, new Promise((resolve) => setTimeout(resolve, HEARTBEAT_MS))]);
      if (!acknowledged && !this.closed) await heartbeat().catch(() => {});
    }
  }

  async acknowledge(checkpoint: SourceCheckpoint): Promise<void> {
    const state = checkpoint.state;
    if (typeof state !== "object" || state === null || Array.isArray(state)) return;
    const seq = state["seq"];
    const offsets = state["offsets"];
    if (typeof seq !== "number" || typeof offsets !== "object" || offsets === null || Array.isArray(offsets)) return;
    const commits: { topic: string; partition: number; offset: string }[] = [];
    for (const [topic, partitions] of Object.entries(offsets)) {
      if (typeof partitions !== "object" || partitions === null || Array.isArray(partitions)) continue;
      for (const [partition, offset] of Object.entries(partitions)) {
        // A partition that moved to another member is that member's to commit now.
        if (typeof offset === "string" && this.assigned.has(`${topic}\u0000${partition}`)) commits.push({ topic, partition: Number(partition), offset });
      }
    }
    if (commits.length > 0) {
      try {
        await this.consumer.commitOffsets(commits);
      } catch (error) {
        const message = kafkaErrorMessage(error);
        if (/generation|member|rebalanc/i.test(message)) {
          // This member left the group meanwhile: the partitions' new owners read these
          // events again from the last commit.
          this.context.log.warn("kafka: could not commit offsets, the partitions moved to another member; it reads them again", { group: this.group, reason: message });
        } else {
          throw kafkaError(`cannot commit offsets of group ${this.group}`, error);
        }
      }
    }
    while (this.inFlight.length > 0 && this.inFlight[0]!.seq <= seq) this.inFlight.shift()!.done();
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.wake?.();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const fetched of [...this.inFlight.splice(0), ...this.queue.splice(0)]) fetched.done();
    await this.consumer.disconnect().catch(() => {});
  }
}
