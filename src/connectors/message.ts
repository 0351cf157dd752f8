/**
 * What the message sinks (rabbitmq, nats, http) send for an event: its body in the sink's
 * `format`, the headers that say where it came from, and an id that is the same every time
 * the same event is sent again — the key a broker (JetStream's `Nats-Msg-Id`) or a receiver
 * deduplicates on after a crash replays what followed the last checkpoint.
 *
 * Positions are not ids: every event of a PostgreSQL transaction carries the transaction's
 * commit position, and every snapshot row the snapshot's. So an event's id is its position
 * with its ordinal among the events of that position this sink received (`n`), and a
 * snapshot row's is its position with its table and key (a resumed snapshot starts mid-table,
 * where an ordinal would restart at another row). The ordinal is stable across a replay
 * because positions move only at transaction ends: a replay starts at the first event of a
 * transaction, and the same steps let the same events through.
 */
import { createHash } from "node:crypto";
import { encodeDebezium } from "../model/debezium.js";
import type { ChangeEvent } from "../model/event.js";
import { qualifiedTableName } from "../model/event.js";
import { encodeEvent, encodeJson } from "../model/json.js";
import type { Value } from "../model/value.js";
import { ConnectorError, type SinkContext, type SinkEvent } from "../runtime/contracts.js";

export type MessageFormat = "event" | "row" | "debezium";
const FORMATS: readonly MessageFormat[] = ["event", "row", "debezium"];

/** The `format` option, checked (a value from `env()` is only known at start). */
export function messageFormat(options: Readonly<Record<string, Value>>, connector: string): MessageFormat {
  const format = options.format ?? "event";
  if (typeof format !== "string" || !(FORMATS as readonly string[]).includes(format)) {
    throw new ConnectorError(`${connector}: option format must be one of ${FORMATS.join(", ")}, found ${JSON.stringify(format)}`, false);
  }
  return format as MessageFormat;
}

export function booleanOption(options: Readonly<Record<string, Value>>, connector: string, name: string, fallback: boolean): boolean {
  const value = Object.hasOwn(options, name) ? options[name]! : null;
  if (value === null) return fallback;
  if (typeof value !== "boolean") throw new ConnectorError(`${connector}: option ${name} must be true or false`, false);
  return value;
}

/**
 * An event's body as JSON text: `event` is the lossless event encoding (the jsonl format);
 * `row` the row after the steps (`after`, or `before` for a delete), absent columns left out;
 * `debezium` the Debezium envelope. An event sent to a dead-letter sink also carries
 * `"rejection":{"reason","where"}` as its last field.
 */
export function messageBody(sinkEvent: SinkEvent, format: MessageFormat, pipeline: string, processedAtMs: number): string {
  const event = sinkEvent.event;
  let text: string;
  switch (format) {
    case "event":
      text = encodeEvent(event);
      break;
    case "row":
      text = encodeJson(event.after ?? event.before ?? {});
      break;
    case "debezium":
      text = encodeDebezium(event, { name: pipeline, processedAtMs });
      break;
  }
  const rejection = sinkEvent.rejection;
  if (rejection === undefined) return text;
  const field = `"rejection":{"reason":${JSON.stringify(rejection.reason)},"where":${JSON.stringify(rejection.where)}}`;
  return text === "{}" ? `{${field}}` : `${text.slice(0, -1)},${field}}`;
}

/** `pg-lsn:0/16B3748`: the position as one header value. */
export function positionText(event: ChangeEvent): string {
  const position = event.source.position;
  return `${position.kind}:${position.token}`;
}

/**
 * The headers every message sink sets, by their names: where the event came from and what it
 * is, so a consumer can order, deduplicate and route without parsing the body.
 */
export function eventHeaders(event: ChangeEvent, id: string): Record<string, string> {
  return {
    "dts-event-id": id,
    "dts-op": event.op,
    "dts-table": qualifiedTableName(event.source),
    "dts-position": positionText(event),
  };
}

/**
 * Gives each event its replay-stable id (see the file's comment). One per sink. A write that
 * fails is given again with the same events, so the ids of a write count from the state the
 * last successful write left: `ids` computes them, `commit` keeps the state once it succeeded.
 */
export class EventIds {
  /** Per source (connector and database): the last position seen and how many events had it. */
  private last = new Map<string, { token: string; n: number }>();
  private pending: Map<string, { token: string; n: number }> | undefined;

  constructor(private readonly pipeline: string) {}

  ids(events: readonly SinkEvent[]): string[] {
    const last = new Map([...this.last].map(([stream, state]) => [stream, { ...state }]));
    const ids = events.map((sinkEvent) => this.id(sinkEvent.event, last));
    this.pending = last;
    return ids;
  }

  /** The write whose ids were computed last succeeded. */
  commit(): void {
    if (this.pending !== undefined) this.last = this.pending;
    this.pending = undefined;
  }

  private id(event: ChangeEvent, lastOf: Map<string, { token: string; n: number }>): string {
    const source = event.source;
    const position = `${source.position.kind}:${source.position.token}`;
    if (event.op === "read") {
      const row = createHash("sha256").update(`${qualifiedTableName(source)}\0${encodeJson(event.key)}`).digest("base64url").slice(0, 22);
      return `${this.pipeline}/${position}/r/${row}`;
    }
    const stream = `${source.connector}\0${source.db}`;
    const last = lastOf.get(stream);
    let n = 0;
    if (last !== undefined && last.token === position) n = ++last.n;
    else lastOf.set(stream, { token: position, n: 0 });
    return `${this.pipeline}/${position}/${n}`;
  }
}

/**
 * A per-event option (`routing_key`, `subject`) as a function of the event: compiled by the
 * runtime when it reads the event, a constant from the options when it does not.
 */
export function perEventString(context: SinkContext, connector: string, name: string): (event: SinkEvent) => string {
  const compiled = context.eventOptions[name];
  if (compiled === undefined) {
    const value = context.options[name];
    if (typeof value !== "string") throw new ConnectorError(`${connector}: option ${name} is required, as a string`, false);
    return () => value;
  }
  return (event) => {
    const value = compiled(event);
    if (typeof value !== "string") {
      throw new ConnectorError(`${connector} sink ${context.name}: ${name} must be a string, found ${value === null ? "null" : typeof value} for an event of ${event.target}`, false);
    }
    return value;
  };
}
