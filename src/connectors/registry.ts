/**
 * Every connector dts knows, by role and name. The compile side reads only the specs; the
 * runtime loads an implementation lazily (see `load`) so that checking a pipeline never
 * imports a database driver.
 */
import type { ConnectorSpec, Role } from "./spec.js";
import * as datagen from "./datagen/spec.js";
import * as discard from "./discard/spec.js";
import * as duckdb from "./duckdb/spec.js";
import * as http from "./http/spec.js";
import * as jsonl from "./jsonl/spec.js";
import * as kafka from "./kafka/spec.js";
import * as mysql from "./mysql/spec.js";
import * as nats from "./nats/spec.js";
import * as postgres from "./postgres/spec.js";
import * as rabbitmq from "./rabbitmq/spec.js";
import * as redis from "./redis/spec.js";

export const sourceSpecs: readonly ConnectorSpec[] = [
  datagen.sourceSpec,
  jsonl.sourceSpec,
  kafka.sourceSpec,
  mysql.sourceSpec,
  postgres.sourceSpec,
];

export const sinkSpecs: readonly ConnectorSpec[] = [
  discard.sinkSpec,
  duckdb.sinkSpec,
  http.sinkSpec,
  jsonl.sinkSpec,
  kafka.sinkSpec,
  mysql.sinkSpec,
  nats.sinkSpec,
  postgres.sinkSpec,
  rabbitmq.sinkSpec,
  redis.sinkSpec,
];

export function specsFor(role: Role): readonly ConnectorSpec[] {
  return role === "source" ? sourceSpecs : sinkSpecs;
}

export function findSpec(role: Role, name: string): ConnectorSpec | undefined {
  return specsFor(role).find((spec) => spec.name === name);
}

export function connectorNames(role: Role): string[] {
  return specsFor(role).map((spec) => spec.name);
}

/**
 * The implementation of a connector, loaded on first use. Each connector folder holds
 * `source.ts` exporting `createSource` and/or `sink.ts` exporting `createSink`; a connector
 * whose spec exists but whose implementation does not yet is reported as such, by name.
 */
export async function loadSource(name: string): Promise<import("../runtime/contracts.js").SourceFactory> {
  const module = (await importImplementation(name, "source")) as { createSource?: import("../runtime/contracts.js").SourceFactory };
  if (module.createSource === undefined) throw new Error(`src/connectors/${name}/source.ts does not export createSource`);
  return module.createSource;
}

export async function loadSink(name: string): Promise<import("../runtime/contracts.js").SinkFactory> {
  const module = (await importImplementation(name, "sink")) as { createSink?: import("../runtime/contracts.js").SinkFactory };
  if (module.createSink === undefined) throw new Error(`src/connectors/${name}/sink.ts does not export createSink`);
  return module.createSink;
}

export class ConnectorNotBuiltError extends Error {
  constructor(
    readonly connector: string,
    readonly role: Role,
  ) {
    super(`the ${connector} ${role} is specified but not built yet; see docs/connectors/README.md for the status of each connector`);
    this.name = "ConnectorNotBuiltError";
  }
}

async function importImplementation(name: string, role: Role): Promise<unknown> {
  if (findSpec(role, name) === undefined) throw new Error(`unknown ${role} connector "${name}"`);
  try {
    return await import(/* @vite-ignore */ `./${name}/${role}.js`);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "ERR_MODULE_NOT_FOUND" && String((error as Error).message).includes(`/${name}/${role}.js`)) {
      throw new ConnectorNotBuiltError(name, role);
    }
    throw error;
  }
}
