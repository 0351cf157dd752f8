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
