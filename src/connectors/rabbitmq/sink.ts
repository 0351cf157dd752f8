/**
 * The rabbitmq sink: one message per event, published to an exchange on one channel in
 * confirm mode.
 *
 * A write publishes every event of its batch without waiting (the channel's own buffer
 * applies backpressure: when `publish` says the socket is full, the write waits for `drain`)
 * and resolves when the broker has confirmed every message. Confirms of one channel come in
 * publish order, and writes come one at a time, so "this write is confirmed" means "this and
 * everything before it is", which is what lets the checkpoint move. A message the broker
 * returns (mandatory, no queue bound) is followed by its ack, so by the time every confirm is
 * in, the returns are known too; each message is found again by its `message_id`.
 *
 * A lost connection fails the write with a retriable error, whatever it had in flight: the
 * runtime gives the same batch again, and the sink publishes all of it on a new connection,
 * with the same message ids (message.ts). Heartbeats find a connection that went silent
 * (a cable pulled, a proxy that stopped forwarding) within two intervals.
 */
import type { ChannelModel, ConfirmChannel, Message } from "amqplib";
import { eventHeaders, EventIds, booleanOption, messageBody, messageFormat, perEventString, type MessageFormat } from "../message.js";
import { stringOption } from "../../runtime/connector-options.js";
import { ConnectorError, type Rejection, type SinkBatch, type SinkContext, type SinkEvent, type SinkFactory, type SinkWriter } from "../../runtime/contracts.js";

export const createSink: SinkFactory = (context) => new RabbitMqSink(context);

const HEARTBEAT_SECONDS = 10;
const EXCHANGE_TYPES = ["topic", "direct", "fanout", "headers"];

interface Settings {
  readonly url: string;
  readonly exchange: string;
  readonly exchangeType: string;
  readonly declare: boolean;
  readonly format: MessageFormat;
  readonly persistent: boolean;
  readonly mandatory: boolean;
  readonly deadLetterRefused: boolean;
}

function settings(context: SinkContext): Settings {
  const options = context.options;
  const exchangeType = stringOption(options, "rabbitmq", "exchange_type", "topic")!;
  if (!EXCHANGE_TYPES.includes(exchangeType)) {
    throw new ConnectorError(`rabbitmq: option exchange_type must be one of ${EXCHANGE_TYPES.join(", ")}, found "${exchangeType}"`, false);
  }
  const onRefused = stringOption(options, "rabbitmq", "on_refused", "error")!;
  if (onRefused !== "error" && onRefused !== "dead_letter") {
    throw new ConnectorError(`rabbitmq: option on_refused must be "error" or "dead_letter", found "${onRefused}"`, false);
  }
  return {
    url: stringOption(options, "rabbitmq", "url"),
    exchange: stringOption(options, "rabbitmq", "exchange", "")!,
    exchangeType,
    declare: booleanOption(options, "rabbitmq", "declare_exchange", true),
    format: messageFormat(options, "rabbitmq"),
    persistent: booleanOption(options, "rabbitmq", "persistent", true),
    mandatory: booleanOption(options, "rabbitmq", "mandatory", true),
    deadLetterRefused: onRefused === "dead_letter",
  };
}

/** `amqp://host:5672/vhost`, without the credentials, for messages. */
export function serverLabel(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = "";
    parsed.password = "";
    return parsed.toString();
  } catch {
    return "(an unparsable URL)";
  }
}

/** An open connection and its channel; `lost` is set once either closed or failed. */
interface Link {
  readonly model: ChannelModel;
  readonly channel: ConfirmChannel;
  lost: Error | undefined;
  /** Wakes a write waiting for confirms or drain when the link is lost. */
  onLost: (() => void) | undefined;
  /** Messages the broker returned in the current write: message id → why. */
  returned: Map<string, string>;
}

class RabbitMqSink implements SinkWriter {
  private readonly settings: Settings;
  private readonly server: string;
  private readonly ids: EventIds;
  private link: Link | undefined;
  private readonly routingKey: (event: SinkEvent) => string;

  constructor(private readonly context: SinkContext) {
    this.settings = settings(context);
    this.server = serverLabel(this.settings.url);
    this.ids = new EventIds(context.pipeline);
    this.routingKey = perEventString(context, "rabbitmq", "routing_key");
  }

  async start(): Promise<void> {
    await this.connect();
  }

  async write(batch: SinkBatch): Promise<readonly Rejection[]> {
    const events = batch.events;
    if (events.length === 0) return [];
    const link = this.link !== undefined && this.link.lost === undefined ? this.link : await this.connect();
    const { exchange, format, persistent, mandatory } = this.settings;
    const routingKey = this.routingKey;
    const ids = this.ids.ids(events);
    const indexOf = new Map<string, number>();
    const nacked: number[] = [];
    let unconfirmed = 0;
    let allConfirmed: (() => void) | undefined;
    link.returned = new Map();
    const timestamp = Math.floor(Date.now() / 1000);
    const processedAtMs = Date.now();
    for (let i = 0; i < events.length; i++) {
      const sinkEvent = events[i]!;
      const key = routingKey(sinkEvent);
      const id = ids[i]!;
      indexOf.set(id, i);
      const body = Buffer.from(messageBody(sinkEvent, format, this.context.pipeline, processedAtMs));
      const headers: Record<string, string> = eventHeaders(sinkEvent.event, id);
      if (sinkEvent.rejection !== undefined) headers["dts-rejection"] = `${sinkEvent.rejection.where}: ${sinkEvent.rejection.reason}`;
      if (link.lost !== undefined) throw this.lostError(link);
      unconfirmed++;
      let room: boolean;
      try {
        room = link.channel.publish(
          exchange,
          key,
          body,
          { persistent, mandatory, messageId: id, contentType: "application/json", appId: "dts", timestamp, headers },
          (error) => {
            if (error != null && error.message === "message nacked") nacked.push(i);
            if (--unconfirmed === 0) allConfirmed?.();
          },
        );
      } catch (error) {
        // Publishing on a channel that just closed throws at once.
        link.lost ??= error as Error;
        throw this.lostError(link);
      }
      if (!room) await this.drained(link);
    }
    if (persistent) {
      await new Promise<void>((resolve) => {
        if (unconfirmed === 0 || link.lost !== undefined) return resolve();
        allConfirmed = resolve;
        link.onLost = resolve;
      });
      link.onLost = undefined;
      if (link.lost !== undefined) throw this.lostError(link);
    }
    const rejections = this.refusals(link, indexOf, nacked, events.length);
    this.ids.commit();
    return rejections;
  }

  async close(): Promise<void> {
    const link = this.link;
    this.link = undefined;
    if (link === undefined) return;
    link.lost ??= new Error("closed by the sink");
    try {
      await link.model.close();
    } catch {
      // Closing a connection that is already gone: nothing left to release.
    }
  }

  /** Returned and nacked messages: rejections for the dead-letter sink, or an error. */
  private refusals(link: Link, indexOf: ReadonlyMap<string, number>, nacked: readonly number[], count: number): Rejection[] {
    const rejections: Rejection[] = [];
    for (const [id, why] of link.returned) {
      const index = indexOf.get(id);
      if (index !== undefined) rejections.push({ index, reason: `RabbitMQ returned the message: ${why}` });
    }
    for (const index of nacked) rejections.push({ index, reason: "RabbitMQ refused the message (nack): a queue it routes to is full (overflow reject-publish) or the broker failed to store it" });
    if (rejections.length === 0 || this.settings.deadLetterRefused) return rejections.sort((a, b) => a.index - b.index);
    const first = rejections.sort((a, b) => a.index - b.index)[0]!;
    const returned = link.returned.size > 0;
    throw new ConnectorError(
      `rabbitmq sink ${this.context.name}: ${rejections.length} of ${count} messages were not taken by ${this.server} exchange "${this.settings.exchange}"; first: ${first.reason}. ` +
        (returned
          ? `Bind a queue to the exchange for these routing keys, or set on_refused: "dead_letter" to send such events to the dead-letter sink.`
          : `Make room in the queue, or set on_refused: "dead_letter".`),
      // A full queue may drain; an unroutable key stays unroutable until someone binds a queue.
      !returned,
    );
  }

  private drained(link: Link): Promise<void> {
    return new Promise<void>((resolve) => {
      if (link.lost !== undefined) return resolve();
      const done = (): void => {
        link.channel.off("drain", done);
        link.onLost = undefined;
        resolve();
      };
      link.channel.once("drain", done);
      link.onLost = done;
    }).then(() => {
      if (link.lost !== undefined) throw this.lostError(link);
    });
  }

  private lostError(link: Link): ConnectorError {
    if (this.link === link) this.link = undefined;
    void link.model.close().catch(() => undefined);
    return new ConnectorError(
      `rabbitmq sink ${this.context.name}: the connection to ${this.server} was lost before every message was confirmed (${link.lost?.message}); the batch is published again`,
      true,
      { cause: link.lost },
    );
  }

  private async connect(): Promise<Link> {
    const { connect } = await import("amqplib");
    const { url, exchange, exchangeType, declare } = this.settings;
    let model: ChannelModel;
    try {
      model = await connect(withHeartbeat(url), {
        clientProperties: { connection_name: `dts ${this.context.pipeline} sink ${this.context.name}` },
      });
    } catch (error) {
      throw connectError(error, this.server);
    }
    // Until the link's own listeners are on, errors come through the calls' rejections; an
    // 'error' event nobody listens to would end the process.
    const early = (): void => undefined;
    model.on("error", early);
    let channel: ConfirmChannel;
    try {
      channel = await model.createConfirmChannel();
      channel.on("error", early);
      if (exchange !== "") {
        if (declare) await channel.assertExchange(exchange, exchangeType, { durable: true });
        else await channel.checkExchange(exchange);
      }
    } catch (error) {
      await model.close().catch(() => undefined);
      throw setupError(error, this.server, exchange, exchangeType, declare);
    }
    const link: Link = { model, channel, lost: undefined, onLost: undefined, returned: new Map() };
    const lose = (error: Error): void => {
      if (link.lost === undefined) {
        link.lost = error;
        this.context.log.warn("the connection to RabbitMQ was lost", { server: this.server, error: error.message });
      }
      const wake = link.onLost;
      link.onLost = undefined;
      wake?.();
    };
    model.on("error", (error: Error) => lose(error));
    model.on("close", () => lose(new Error("connection closed")));
    channel.on("error", (error: Error) => lose(error));
    channel.on("close", () => lose(new Error("channel closed")));
    channel.on("return", (message: Message) => {
      const id = message.properties.messageId as string | undefined;
      const fields = message.fields as unknown as { replyCode: number; replyText: string; routingKey: string };
      const why = `${fields.replyCode} ${fields.replyText} (routing key "${message.fields.routingKey}")`;
      if (id !== undefined) link.returned.set(id, why);
      if (!this.settings.persistent) this.context.log.warn("RabbitMQ returned a message no queue took", { why });
    });
    this.link = link;
    return link;
  }
}

/** The URL with a heartbeat, unless it sets one: a connection that went silent is found in two intervals. */
function withHeartbeat(url: string): string {
  if (/[?&]heartbeat=/.test(url)) return url;
  return `${url}${url.includes("?") ? "&" : "?"}heartbeat=${HEARTBEAT_SECONDS}`;
}

/** Whether a connection failure can pass: a server restarting or unreachable, not bad credentials. */
function connectError(error: unknown, server: string): ConnectorError {
  const message = (error as Error).message ?? String(error);
  const code = (error as NodeJS.ErrnoException).code;
  if (/ACCESS[-_]REFUSED|403/.test(message)) {
    return new ConnectorError(`rabbitmq: ${server} refused the credentials (${message}); check the user and password in url`, false, { cause: error });
  }
  if (/NOT[-_]ALLOWED|530/.test(message)) {
    return new ConnectorError(`rabbitmq: ${server} does not allow this virtual host (${message}); check the vhost in url and the user's permissions`, false, { cause: error });
  }
  if (code === "ERR_INVALID_URL" || /Expected amqp/.test(message)) {
    return new ConnectorError(`rabbitmq: option url is not an AMQP URL: ${message}`, false, { cause: error });
  }
  return new ConnectorError(`rabbitmq: cannot connect to ${server}: ${message}`, true, { cause: error });
}

function setupError(error: unknown, server: string, exchange: string, type: string, declare: boolean): ConnectorError {
  const message = (error as Error).message ?? String(error);
  if (/PRECONDITION[-_]FAILED|406/.test(message)) {
    return new ConnectorError(
      `rabbitmq: exchange "${exchange}" on ${server} exists with other settings than type "${type}", durable (${message}); set exchange_type to its type, or publish to another exchange`,
      false,
      { cause: error },
    );
  }
  if (/NOT[-_]FOUND|404/.test(message)) {
    return new ConnectorError(
      `rabbitmq: exchange "${exchange}" does not exist on ${server}${declare ? "" : " (declare_exchange is false)"}; declare it, or set declare_exchange: true`,
      false,
      { cause: error },
    );
  }
  if (/ACCESS[-_]REFUSED|403/.test(message)) {
    return new ConnectorError(`rabbitmq: the user may not ${declare ? "declare" : "use"} exchange "${exchange}" on ${server} (${message}); grant it configure and write permissions`, false, { cause: error });
  }
  return new ConnectorError(`rabbitmq: setting up the channel on ${server} failed: ${message}`, true, { cause: error });
}
