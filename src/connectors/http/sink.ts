/**
 * The http sink: events as JSON in requests to a webhook, `batch_size` at a time, one request
 * after another in source order, with Node's own fetch (undici).
 *
 * A write sends its events in requests of `batch_size` and resolves when every request was
 * answered 2xx. What a failure means is the status's to say: 408, 429, 5xx and a connection
 * or a timeout problem are passing (a retriable error: the runtime backs off, with jitter,
 * within `retry_for`, and a `Retry-After` sets the least wait); any other 4xx is the receiver
 * refusing these events for good, so they go to the dead-letter sink (or stop the pipeline).
 *
 * Each request's `Idempotency-Key` names its events (the first one's replay-stable id and the
 * count, message.ts), so a request sent again has the key it had. A retried write is the same
 * batch, cut into the same requests: those already answered 2xx are skipped, not sent twice.
 */
import { eventHeaders, EventIds, messageBody, messageFormat, positionText, type MessageFormat } from "../message.js";
import { integerOption, stringOption } from "../../runtime/connector-options.js";
import { ConnectorError, type Rejection, type SinkBatch, type SinkContext, type SinkEvent, type SinkFactory, type SinkWriter } from "../../runtime/contracts.js";

export const createSink: SinkFactory = (context) => new HttpSink(context);

/** How much of an answer's body a reason or an error message quotes. */
const BODY_QUOTE = 500;

interface Settings {
  readonly url: string;
  readonly method: "POST" | "PUT";
  readonly headers: Readonly<Record<string, string>>;
  readonly batchSize: number;
  readonly timeoutMs: number;
  readonly format: MessageFormat;
  readonly deadLetterClientErrors: boolean;
}

function settings(context: SinkContext): Settings {
  const options = context.options;
  const url = stringOption(options, "http", "url");
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConnectorError("http: option url is not a URL", false);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new ConnectorError(`http: option url must be http:// or https://, found ${parsed.protocol}//`, false);
  const method = stringOption(options, "http", "method", "POST")!;
  if (method !== "POST" && method !== "PUT") throw new ConnectorError(`http: option method must be "POST" or "PUT", found "${method}"`, false);
  const onClientError = stringOption(options, "http", "on_client_error", "dead_letter")!;
  if (onClientError !== "dead_letter" && onClientError !== "stop") {
    throw new ConnectorError(`http: option on_client_error must be "dead_letter" or "stop", found "${onClientError}"`, false);
  }
  const headers: Record<string, string> = {};
  const given = options.headers ?? null;
  if (given !== null) {
    if (typeof given !== "object" || Array.isArray(given) || given instanceof Uint8Array) throw new ConnectorError("http: option headers must be a record of strings", false);
    for (const [name, value] of Object.entries(given as Record<string, unknown>)) {
      if (typeof value !== "string") throw new ConnectorError(`http: header ${name} must be a string`, false);
      headers[name] = value;
    }
  }
  return {
    url,
    method,
    headers,
    batchSize: integerOption(options, "http", "batch_size", 1, 1),
    timeoutMs: integerOption(options, "http", "timeout_ms", 10_000, 1),
    format: messageFormat(options, "http"),
    deadLetterClientErrors: onClientError === "dead_letter",
  };
}

/** The endpoint without credentials or query (a token often hides there), for messages. */
function endpointLabel(url: string): string {
  const parsed = new URL(url);
  return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
}

class HttpSink implements SinkWriter {
  private readonly settings: Settings;
  private readonly ids: EventIds;
  private readonly endpoint: string;
  /**
   * Requests of the write being retried that were answered already: key → the rejections
   * they gave. Cleared when a write succeeds; a retry is given the same batch (sink-worker.ts).
   */
  private answered = new Map<string, readonly string[] | null>();
  private answeredFor: SinkBatch | undefined;

  constructor(private readonly context: SinkContext) {
    this.settings = settings(context);
    this.ids = new EventIds(context.pipeline);
    this.endpoint = endpointLabel(this.settings.url);
  }

  async start(): Promise<void> {}

  async write(batch: SinkBatch): Promise<readonly Rejection[]> {
    const events = batch.events;
    if (events.length === 0) return [];
    if (this.answeredFor !== batch) {
      this.answered = new Map();
      this.answeredFor = batch;
    }
    const ids = this.ids.ids(events);
    const { batchSize } = this.settings;
    const rejections: Rejection[] = [];
    const processedAtMs = Date.now();
    for (let start = 0; start < events.length; start += batchSize) {
      const end = Math.min(events.length, start + batchSize);
      const key = end - start === 1 ? ids[start]! : `${ids[start]!}+${end - start}`;
      let refused = this.answered.get(key);
      if (refused === undefined) {
        refused = await this.send(events, start, end, key, processedAtMs);
        this.answered.set(key, refused);
      }
      if (refused !== null) for (let i = start; i < end; i++) rejections.push({ index: i, reason: refused[0]! });
    }
    this.ids.commit();
    this.answered = new Map();
    this.answeredFor = undefined;
    return rejections;
  }

  async close(): Promise<void> {}

  /** One request; null when it was acknowledged, the reason when the receiver refused it for good. */
  private async send(events: readonly SinkEvent[], start: number, end: number, key: string, processedAtMs: number): Promise<readonly string[] | null> {
    const { url, method, headers, batchSize, timeoutMs, format } = this.settings;
    const bodies: string[] = [];
    for (let i = start; i < end; i++) bodies.push(messageBody(events[i]!, format, this.context.pipeline, processedAtMs));
    const body = batchSize === 1 ? bodies[0]! : `[${bodies.join(",")}]`;
    const first = events[start]!.event;
    const last = events[end - 1]!.event;
    const requestHeaders: Record<string, string> = {
      ...headers,
      "content-type": "application/json",
      "idempotency-key": key,
      "dts-event-count": String(end - start),
      "dts-first-position": positionText(first),
      "dts-last-position": positionText(last),
    };
    if (batchSize === 1) {
      const single = eventHeaders(first, key);
      requestHeaders["dts-op"] = single["dts-op"]!;
      requestHeaders["dts-table"] = single["dts-table"]!;
    }
    let response: Response;
    let text: string;
    try {
      response = await fetch(url, { method, headers: requestHeaders, body, signal: AbortSignal.timeout(timeoutMs), redirect: "manual" });
      text = await response.text();
    } catch (error) {
      throw new ConnectorError(`http sink ${this.context.name}: ${method} ${this.endpoint} failed: ${requestProblem(error, timeoutMs)}; the request is sent again`, true, { cause: error });
    }
    const status = response.status;
    if (status >= 200 && status < 300) return null;
    const answer = `${status}${response.statusText ? ` ${response.statusText}` : ""}${text !== "" ? `: ${quote(text)}` : ""}`;
    if (status === 408 || status === 429 || status >= 500) {
      const retryAfterMs = status === 429 || status === 503 ? retryAfter(response.headers.get("retry-after")) : undefined;
      throw new ConnectorError(`http sink ${this.context.name}: ${this.endpoint} answered ${answer}; the request is sent again`, true, {
        ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      });
    }
    if (status < 400) {
      throw new ConnectorError(
        `http sink ${this.context.name}: ${this.endpoint} answered ${status}, a redirect${response.headers.get("location") ? ` to ${response.headers.get("location")}` : ""}; set url to where the receiver is`,
        false,
      );
    }
    const reason = `${method} ${this.endpoint} answered ${answer}`;
    if (!this.settings.deadLetterClientErrors) {
      throw new ConnectorError(
        `http sink ${this.context.name}: ${reason} (Idempotency-Key ${key}); the receiver refuses these events: fix them or the receiver, or set on_client_error: "dead_letter"`,
        false,
      );
    }
    return [reason];
  }
}

function quote(text: string): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > BODY_QUOTE ? `${flat.slice(0, BODY_QUOTE)}…` : flat;
}

/** `Retry-After` as milliseconds from now: delay-seconds or an HTTP date; undefined when absent or unreadable. */
export function retryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** What went wrong with a request, in words: a timeout, a refused or reset connection. */
function requestProblem(error: unknown, timeoutMs: number): string {
  const name = (error as Error).name;
  if (name === "TimeoutError" || name === "AbortError") return `no answer within timeout_ms (${timeoutMs} ms)`;
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code !== undefined) return `${cause.code}${cause.message ? ` (${cause.message})` : ""}`;
  return (error as Error).message ?? String(error);
}
