/**
 * Every connector dts knows: one line per connector folder, each folder's `index.ts`
 * declaring its specs and capabilities (capabilities.ts). The compile side reads only the
 * specs; implementations and tool capabilities are loaded on first use, so checking a
 * pipeline never imports a database driver.
 */
import type { Connector, SinkConnector, SourceConnector } from "./capabilities.js";
import { connector as datagen } from "./datagen/index.js";
import { connector as discard } from "./discard/index.js";
import { connector as duckdb } from "./duckdb/index.js";
import { connector as http } from "./http/index.js";
import { connector as jsonl } from "./jsonl/index.js";
import { connector as kafka } from "./kafka/index.js";
import { connector as mysql } from "./mysql/index.js";
import { connector as nats } from "./nats/index.js";
import { connector as postgres } from "./postgres/index.js";
import { connector as rabbitmq } from "./rabbitmq/index.js";
import { connector as redis } from "./redis/index.js";
import type { ConnectorSpec, Role } from "./spec.js";
import type { SinkFactory, SourceFactory } from "../runtime/contracts.js";
import { DtsError } from "../diagnostics/errors.js";

export const connectors: readonly Connector[] = [datagen, discard, duckdb, http, jsonl, kafka, mysql, nats, postgres, rabbitmq, redis];

export function findConnector(name: string): Connector | undefined {
  return connectors.find((connector) => connector.name === name);
}

export function findSource(name: string): SourceConnector | undefined {
  return findConnector(name)?.source;
}

export function findSink(name: string): SinkConnector | undefined {
  return findConnector(name)?.sink;
}

export const sourceSpecs: readonly ConnectorSpec[] = connectors.flatMap((connector) => (connector.source !== undefined ? [connector.source.spec] : []));

export const sinkSpecs: readonly ConnectorSpec[] = connectors.flatMap((connector) => (connector.sink !== undefined ? [connector.sink.spec] : []));

export function specsFor(role: Role): readonly ConnectorSpec[] {
  return role === "source" ? sourceSpecs : sinkSpecs;
}

export function findSpec(role: Role, name: string): ConnectorSpec | undefined {
  return specsFor(role).find((spec) => spec.name === name);
}

export function connectorNames(role: Role): string[] {
  return specsFor(role).map((spec) => spec.name);
}

/** Whether a role of a connector has an implementation (docs/connectors/README.md says so). */
export function isBuilt(role: Role, name: string): boolean {
  return role === "source" ? findSource(name)?.createSource !== undefined : findSink(name)?.createSink !== undefined;
}

export class ConnectorNotBuiltError extends DtsError {
  constructor(
    readonly connector: string,
    readonly role: Role,
  ) {
    super("DTS7104", `the ${connector} ${role} is specified but not built yet; see docs/connectors/README.md for the status of each connector`);
    this.name = "ConnectorNotBuiltError";
  }
}

/** The source implementation, loaded on first use. */
export async function loadSource(name: string): Promise<SourceFactory> {
  const source = findSource(name);
  if (source === undefined) throw new Error(`unknown source connector "${name}"`);
  if (source.createSource === undefined) throw new ConnectorNotBuiltError(name, "source");
  return source.createSource();
}

/** The sink implementation, loaded on first use. */
export async function loadSink(name: string): Promise<SinkFactory> {
  const sink = findSink(name);
  if (sink === undefined) throw new Error(`unknown sink connector "${name}"`);
  if (sink.createSink === undefined) throw new ConnectorNotBuiltError(name, "sink");
  return sink.createSink();
}
