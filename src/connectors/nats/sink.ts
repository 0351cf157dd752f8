/**
 * The nats sink: one message per event, published to JetStream (or core NATS) on one
 * connection.
 *
 * A write publishes its events with at most `WINDOW` acknowledgements outstanding — enough to
 * keep the connection busy, few enough that a server that went away holds a bounded number of
 * messages in the client's buffer — and resolves when every one is acknowledged. Messages of
 * one connection reach the server in publish order, so the stream holds them in source order.
 *
 * Each message has `Nats-Msg-Id` set to the event's replay-stable id (message.ts): whatever
 * is published again — a write retried after a timeout, the events after the checkpoint after
 * a crash — JetStream drops as a duplicate within the stream's window, so a retry is always
 * safe and the sink can treat every failure of a write as "publish the whole batch again".
 *
 * The client reconnects by itself and without limit; a publish that gets no acknowledgement
 * in time fails the write with a retriable error, and the runtime's backoff does the rest. A
 * "no responders" answer is JetStream saying no stream holds the subject — or a server whose
 * JetStream is still starting — so the sink asks the server which it is before giving up.
 */
import type { JetStreamClient, JetStreamManager, NatsConnection, MsgHdrs, PubAck } from "nats";
import { parseDuration } from "../../model/duration.js";
import { booleanOption, eventHeaders, EventIds, messageBody, messageFormat, perEventString, type MessageFormat } from "../message.js";
import { stringOption } from "../../runtime/connector-options.js";
import { ConnectorError, type Rejection, type SinkBatch, type SinkContext, type SinkEvent, type SinkFactory, type SinkWriter } from "../../runtime/contracts.js";

export const createSink: SinkFactory = (context) => new NatsSink(context);

/** Acknowledgements outstanding at once. */
const WINDOW = 512;
const ACK_TIMEOUT_MS = 10_000;

interface Settings {
  readonly url: string;
  readonly jetstream: boolean;
  readonly format: MessageFormat;
  readonly stream: string | undefined;
  readonly createStream: boolean;
  readonly streamSubjects: readonly string[];
  readonly duplicateWindowMs: number;
}

function settings(context: SinkContext): Settings {
  const options = context.options;
  const subjects = options.stream_subjects ?? null;
  if (subjects !== null && (!Array.isArray(subjects) || !subjects.every((subject) => typeof subject === "string"))) {
    throw new ConnectorError("nats: option stream_subjects must be a list of subjects", false);
  }
  const windowText = stringOption(options, "nats", "duplicate_window", "2m")!;
  const window = parseDuration(windowText);
  if (!window.ok || !Number.isFinite(window.ms)) throw new ConnectorError(`nats: option duplicate_window must be a finite duration such as "2m", found "${windowText}"`, false);
  const result: Settings = {
    url: stringOption(options, "nats", "url", "nats://127.0.0.1:4222")!,
    jetstream: booleanOption(options, "nats", "jetstream", true),
    format: messageFormat(options, "nats"),
    stream: stringOption(options, "nats", "stream", undefined),
    createStream: booleanOption(options, "nats", "create_stream", false),
    streamSubjects: (subjects ?? []) as string[],
    duplicateWindowMs: window.ms,
  };
  if (result.createStream && (result.stream === undefined || result.streamSubjects.length === 0)) {
    throw new ConnectorError("nats: create_stream needs stream (its name) and stream_subjects (what it holds)", false);
  }
  return result;
}

/** The URL without credentials, for messages; the credentials apart, for the client. */
function parseServer(url: string): { server: string; label: string; user?: string; pass?: string } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConnectorError(`nats: option url is not a URL such as nats://127.0.0.1:4222`, false);
  }
  const user = decodeURIComponent(parsed.username);
  const pass = decodeURIComponent(parsed.password);
  parsed.username = "";
  parsed.password = "";
  const server = `${parsed.hostname.includes(":") ? `[${parsed.hostname}]` : parsed.hostname}:${parsed.port || 4222}`;
  return { server, label: `nats://${server}`, ...(user !== "" ? { user } : {}), ...(pass !== "" ? { pass } : {}) };
}

interface Link {
  readonly connection: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager | undefined;
}

class NatsSink implements SinkWriter {
  private readonly settings: Settings;
  private readonly subject: (event: SinkEvent) => string;
  private readonly ids: EventIds;
  private readonly label: string;
  private link: Link | undefined;
  private connecting: Promise<Link> | undefined;

  constructor(private readonly context: SinkContext) {
    this.settings = settings(context);
    this.subject = perEventString(context, "nats", "subject");
    this.ids = new EventIds(context.pipeline);
    this.label = parseServer(this.settings.url).label;
  }

  async start(): Promise<void> {
    const link = await this.connect();
    if (link.jsm !== undefined && this.settings.stream !== undefined) await this.prepareStream(link.jsm, this.settings.stream);
  }

  async write(batch: SinkBatch): Promise<readonly Rejection[]> {
    const events = batch.events;
    if (events.length === 0) return [];
    const link = await this.connect();
    const ids = this.ids.ids(events);
    const { headers: makeHeaders } = await import("nats");
    const processedAtMs = Date.now();
    const messages = events.map((sinkEvent, i) => {
      const headers = makeHeaders();
      for (const [name, value] of Object.entries(eventHeaders(sinkEvent.event, ids[i]!))) headers.set(name, value);
      if (sinkEvent.rejection !== undefined) headers.set("dts-rejection", `${sinkEvent.rejection.where}: ${sinkEvent.rejection.reason}`);
      return { subject: this.subject(sinkEvent), body: Buffer.from(messageBody(sinkEvent, this.settings.format, this.context.pipeline, processedAtMs)), headers, id: ids[i]! };
    });
    if (this.settings.jetstream) await this.publishAcknowledged(link, messages);
    else await this.publishCore(link, messages);
    this.ids.commit();
    return [];
  }

  async close(): Promise<void> {
    const link = this.link;
    this.link = undefined;
    if (link === undefined) return;
    try {
      await link.connection.close();
    } catch {
      // Already closed: nothing to release.
    }
  }

  private async publishAcknowledged(link: Link, messages: readonly { subject: string; body: Buffer; headers: MsgHdrs; id: string }[]): Promise<void> {
    let next = 0;
    let failure: unknown;
    let duplicates = 0;
    const expected = this.settings.stream;
    const worker = async (): Promise<void> => {
      while (failure === undefined && next < messages.length) {
        const message = messages[next++]!;
        let ack: PubAck;
        try {
          ack = await link.js.publish(message.subject, message.body, { msgID: message.id, headers: message.headers, timeout: ACK_TIMEOUT_MS });
        } catch (error) {
          failure ??= { error, subject: message.subject };
          return;
        }
        if (ack.duplicate) duplicates++;
        if (expected !== undefined && ack.stream !== expected) {
          failure ??= {
            error: new ConnectorError(
              `nats sink ${this.context.name}: subject "${message.subject}" is held by stream "${ack.stream}", not by "${expected}"; change subject, or name "${ack.stream}" in stream`,
              false,
            ),
            subject: message.subject,
          };
          return;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(WINDOW, messages.length) }, worker));
    // Re-sends after a crash or a retry, dropped by the stream: worth knowing, not a problem.
    if (duplicates > 0) this.context.log.info("JetStream dropped messages it already had (re-sent after a restart or a retry)", { duplicates });
    if (failure !== undefined) {
      const { error, subject } = failure as { error: unknown; subject: string };
      if (error instanceof ConnectorError) throw error;
      throw await this.publishError(link, error, subject);
    }
  }

  private async publishCore(link: Link, messages: readonly { subject: string; body: Buffer; headers: MsgHdrs }[]): Promise<void> {
    try {
      for (const message of messages) link.connection.publish(message.subject, message.body, { headers: message.headers });
      // The server has read everything before the flush's answer.
      await link.connection.flush();
    } catch (error) {
      throw new ConnectorError(`nats sink ${this.context.name}: publishing to ${this.label} failed: ${(error as Error).message}`, true, { cause: error });
    }
  }

  /** A failed publish, classified: retriable unless the server says no stream holds the subject. */
  private async publishError(link: Link, error: unknown, subject: string): Promise<ConnectorError> {
    const code = (error as { code?: string }).code;
    const message = (error as Error).message ?? String(error);
    if (code === "503" && link.jsm !== undefined) {
      try {
        await link.jsm.streams.find(subject);
      } catch (lookup) {
        if (/no stream matches subject/i.test((lookup as Error).message)) {
          return new ConnectorError(
            `nats sink ${this.context.name}: no JetStream stream on ${this.label} holds subject "${subject}"; add the subject to a stream, or set stream, create_stream: true and stream_subjects`,
            false,
            { cause: error },
          );
        }
      }
    }
    return new ConnectorError(`nats sink ${this.context.name}: publishing to ${this.label} was not acknowledged (${code ?? ""} ${message}); the batch is published again`, true, { cause: error });
  }

  private async prepareStream(jsm: JetStreamManager, stream: string): Promise<void> {
    try {
      await jsm.streams.info(stream);
      return;
    } catch (error) {
      if (!/stream not found/i.test((error as Error).message)) {
        throw new ConnectorError(`nats: cannot read stream "${stream}" on ${this.label}: ${(error as Error).message}`, true, { cause: error });
      }
      if (!this.settings.createStream) {
        throw new ConnectorError(`nats: stream "${stream}" does not exist on ${this.label}; create it, or set create_stream: true with stream_subjects`, false, { cause: error });
      }
    }
    const { nanos, StorageType } = await import("nats");
    try {
      await jsm.streams.add({
        name: stream,
        subjects: [...this.settings.streamSubjects],
        storage: StorageType.File,
        duplicate_window: nanos(this.settings.duplicateWindowMs),
      });
      this.context.log.info("created the JetStream stream", { stream, subjects: this.settings.streamSubjects, server: this.label });
    } catch (error) {
      throw new ConnectorError(`nats: cannot create stream "${stream}" on ${this.label}: ${(error as Error).message}`, false, { cause: error });
    }
  }

  private connect(): Promise<Link> {
    if (this.link !== undefined && !this.link.connection.isClosed()) return Promise.resolve(this.link);
    this.connecting ??= this.open().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private async open(): Promise<Link> {
    const { connect } = await import("nats");
    const { server, user, pass } = parseServer(this.settings.url);
    let connection: NatsConnection;
    try {
      connection = await connect({
        servers: server,
        ...(user !== undefined ? { user } : {}),
        ...(pass !== undefined ? { pass } : {}),
        name: `dts ${this.context.pipeline} sink ${this.context.name}`,
        // Reconnecting is the client's job while the connection lives; the runtime's retry
        // budget decides when an outage is too long.
        maxReconnectAttempts: -1,
        reconnectTimeWait: 500,
      });
    } catch (error) {
      const code = (error as { code?: string }).code;
      const message = (error as Error).message ?? String(error);
      const auth = code === "AUTHORIZATION_VIOLATION" || /authori[sz]ation/i.test(message);
      throw new ConnectorError(
        auth ? `nats: ${this.label} refused the credentials (${message}); check user and password in url` : `nats: cannot connect to ${this.label}: ${message}`,
        !auth,
        { cause: error },
      );
    }
    void this.watch(connection);
    let jsm: JetStreamManager | undefined;
    if (this.settings.jetstream) {
      try {
        jsm = await connection.jetstreamManager();
      } catch (error) {
        await connection.close().catch(() => undefined);
        const message = (error as Error).message ?? String(error);
        const retriable = !/jetstream not enabled/i.test(message);
        throw new ConnectorError(`nats: JetStream is not available on ${this.label} (${message})${retriable ? "" : "; enable it (nats-server -js), or set jetstream: false"}`, retriable, { cause: error });
      }
    }
    this.link = { connection, js: connection.jetstream(), jsm };
    return this.link;
  }

  /** Logs the connection's disconnects and reconnects, which the client handles by itself. */
  private async watch(connection: NatsConnection): Promise<void> {
    for await (const status of connection.status()) {
      if (status.type === "disconnect") this.context.log.warn("the connection to NATS was lost; reconnecting", { server: this.label });
      else if (status.type === "reconnect") this.context.log.info("reconnected to NATS", { server: this.label });
    }
  }
}
